"""The queue's read models: list with due times and filters, item detail, reviewer stats,
bulk actions — on both backends."""

from __future__ import annotations

import math
from typing import Any

import pytest

from failwise import store
from failwise.exceptions import InputError


def _escalate(
    events: store.Store,
    task_id: str,
    *,
    at: float,
    priority: float,
    predicted: int = 1,
    context: Any = None,
    kind: str = "escalation",
    reason: str = "low confidence",
    **extra: Any,
) -> int:
    decision: dict[str, Any] = {
        "action": "escalate" if kind == "escalation" else "answer",
        "predicted": predicted,
        "confidence": 1.0 - priority if 0 <= priority <= 1 else 0.5,
        "prediction_set": [predicted, predicted + 1],
        "reason": f"escalate: {reason}",
        **extra,
    }
    if kind == "audit":
        decision["label"] = predicted
    if context is not None:
        decision["context"] = context
    request = store.QueueRequest(task_id, kind, reason, priority)
    return events.record_decision(task_id, decision, at=at, enqueue=[request])[0]


def test_the_list_is_by_priority_then_age_with_due_times_and_breaches(
    events: store.Store,
) -> None:
    _escalate(events, "low", at=0.0, priority=0.1)
    _escalate(events, "high-new", at=50.0, priority=0.9)
    _escalate(events, "high-old", at=10.0, priority=0.9)
    _escalate(events, "audit", at=0.0, priority=0.05, kind="audit")
    page = events.queue.view(at=930.0)
    assert [r.item.task_id for r in page.rows] == ["high-old", "high-new", "low", "audit"]
    assert page.total == 4
    due = {r.item.task_id: r.due_at for r in page.rows}
    assert due == {"high-old": 910.0, "high-new": 950.0, "low": 3600.0, "audit": 86400.0}
    assert {r.item.task_id for r in page.rows if r.breached} == {"high-old"}
    second = events.queue.view(limit=2, offset=2, at=1000.0)
    assert [r.item.task_id for r in second.rows] == ["low", "audit"]
    assert second.total == 4


def test_service_levels_are_configurable_and_validated(events: store.Store) -> None:
    _escalate(events, "t", at=0.0, priority=0.3)
    levels = store.ServiceLevels(escalation_minutes=[(0.2, 1.0)], audit_minutes=5.0)
    assert levels.escalation_minutes == ((0.2, 1.0),)
    row = events.queue.view(levels=levels, at=61.0).rows[0]
    assert (row.due_at, row.breached) == (60.0, True)
    assert levels.due_s("escalation", 0.1) == 7200.0
    alike = store.ServiceLevels(escalation_minutes=[(0.0, 2.0)], audit_minutes=None)
    assert alike.due_s("audit", 0.5) == alike.due_s("escalation", 0.5) == 120.0
    _escalate(events, "a", at=0.0, priority=0.5, kind="audit")
    rows = events.queue.view(store.QueueFilter(kind="audit"), levels=alike, at=1.0).rows
    assert rows[0].due_at == 120.0
    with pytest.raises(InputError, match="escalation_minutes"):
        store.ServiceLevels(escalation_minutes=[])
    with pytest.raises(InputError, match="min_priority"):
        store.ServiceLevels(escalation_minutes=[(math.nan, 1.0)])
    with pytest.raises(InputError, match="audit_minutes"):
        store.ServiceLevels(audit_minutes=-1)
    with pytest.raises(InputError, match="pair"):
        store.ServiceLevels(escalation_minutes=[(1.0,)])  # type: ignore[list-item]


def test_filters_select_by_kind_reason_label_age_assignee_state_text_and_breach(
    events: store.Store,
) -> None:
    _escalate(events, "a", at=0.0, priority=0.9, predicted=3, context={"text": "Refund please"})
    _escalate(events, "b", at=500.0, priority=0.5, predicted=4, context={"text": "100% sure_"})
    _escalate(events, "c", at=900.0, priority=0.1, kind="audit", reason="audit: sampled")
    _escalate(events, "d", at=900.0, priority=0.2, context={"text": "Ünïcödé façade"})
    claimed = events.queue.claim("ann", lease_s=1000.0, at=950.0)
    assert claimed is not None
    assert claimed.task_id == "a"

    def ids(**fields: Any) -> list[str]:
        page = events.queue.view(store.QueueFilter(**fields), at=1000.0)
        return sorted(r.item.task_id for r in page.rows)

    assert ids() == ["a", "b", "c", "d"]
    assert ids(kind="audit") == ["c"]
    assert ids(reason="SAMPLED") == ["c"]
    assert ids(predicted=4) == ["b"]
    assert ids(min_age_s=400.0) == ["a", "b"]
    assert ids(max_age_s=100.0) == ["c", "d"]
    assert ids(assignee="ann") == ["a"]
    assert ids(state="claimed") == ["a"]
    assert ids(state="waiting") == ["b", "c", "d"]
    assert ids(text="refund") == ["a"]
    assert ids(text="100%") == ["b"]  # LIKE wildcards are literal
    assert ids(text="sure_") == ["b"]
    assert ids(text="%") == ["b"]
    assert ids(text="Ünïcödé") == ids(text="FAçADE") == ["d"]
    assert ids(text="low confidence") == []  # the reason is not the context
    assert ids(text="B") == ["b"]  # the task id
    assert ids(breached=True) == ["a"]
    assert ids(breached=False) == ["b", "c", "d"]
    assert events.queue.view(store.QueueFilter(kind="audit"), at=1000.0).rows[0].preview == ""


def test_a_filter_refuses_malformed_fields() -> None:
    with pytest.raises(InputError, match="state"):
        store.QueueFilter(state="done")
    with pytest.raises(InputError, match="kind"):
        store.QueueFilter(kind="urgent")
    with pytest.raises(InputError, match="predicted"):
        store.QueueFilter(predicted="3")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="min_age_s"):
        store.QueueFilter(min_age_s=-1.0)
    with pytest.raises(InputError, match="max_age_s"):
        store.QueueFilter(max_age_s=math.inf)
    with pytest.raises(InputError, match="Swap"):
        store.QueueFilter(min_age_s=10.0, max_age_s=5.0)
    with pytest.raises(InputError, match="text"):
        store.QueueFilter(text="x" * 501)
    with pytest.raises(InputError, match="text"):
        store.QueueFilter(text=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="breached"):
        store.QueueFilter(breached=1)  # type: ignore[arg-type]
    assert store.QueueFilter(text="   ").text is None


def test_view_refuses_malformed_arguments(events: store.Store) -> None:
    with pytest.raises(InputError, match="selection"):
        events.queue.view({"kind": "audit"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="levels"):
        events.queue.view(levels={"audit_minutes": 1})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="limit"):
        events.queue.view(limit=0)
    with pytest.raises(InputError, match="offset"):
        events.queue.view(offset=-1)


def test_detail_shows_input_top_labels_prediction_set_reason_and_history(
    events: store.Store,
) -> None:
    item_id = _escalate(
        events,
        "t",
        at=0.0,
        priority=0.6,
        predicted=7,
        context={"text": "where is my card", "user": "u1"},
        top_labels=[[7, 0.4], [2, 0.35], [9, 0.1]],
    )
    events.queue.claim("ann", at=5.0)
    detail = events.queue.detail(item_id, at=10.0)
    assert detail.input_text == "where is my card"
    assert detail.context == {"text": "where is my card", "user": "u1"}
    assert detail.top_labels == [(7, 0.4), (2, 0.35), (9, 0.1)]
    assert detail.prediction_set == [7, 8]
    assert detail.reason == "escalate: low confidence"
    assert [e.kind for e in detail.events] == [
        "decision",
        "escalation_created",
        "escalation_claimed",
    ]
    assert (detail.due_at, detail.breached) == (1800.0, False)
    other = _escalate(events, "u", at=0.0, priority=0.6, predicted=5)
    plain = events.queue.detail(other, at=10.0)
    assert plain.top_labels == [(5, 0.4)]
    assert (plain.context, plain.input_text) == (None, "")


def test_claim_item_leases_that_item_once(events: store.Store) -> None:
    first = _escalate(events, "a", at=0.0, priority=0.9)
    second = _escalate(events, "b", at=0.0, priority=0.1)
    item = events.queue.claim_item(second, "ann", lease_s=60.0, at=1.0)
    assert (item.id, item.state, item.claimed_by) == (second, "claimed", "ann")
    with pytest.raises(store.QueueStateError, match="'ann'"):
        events.queue.claim_item(second, "bob", at=2.0)
    # a lease that ran out: the next reviewer takes it over, and the expiry is logged
    taken = events.queue.claim_item(second, "bob", at=100.0)
    assert taken.claimed_by == "bob"
    kinds = [e.kind for e in events.events("b")]
    assert kinds[-2:] == ["escalation_expired", "escalation_claimed"]
    events.queue.resolve(second, 3, reviewer="bob", at=101.0)
    with pytest.raises(store.QueueStateError, match="resolved"):
        events.queue.claim_item(second, "ann", at=102.0)
    with pytest.raises(store.UnknownItemError):
        events.queue.claim_item(999, "ann")
    assert events.queue.claim("cy", at=103.0).id == first  # type: ignore[union-attr]


def test_reviewer_stats_count_pace_handling_time_and_overturns(events: store.Store) -> None:
    for i, (reviewer, claim_at, resolve_at, label) in enumerate(
        [
            ("ann", 0.0, 10.0, 1),
            ("ann", 10.0, 40.0, 2),
            ("ann", 40.0, 3600.0, 3),
            ("bob", 0.0, 100.0, 4),
        ]
    ):
        item_id = _escalate(events, f"t{i}", at=0.0, priority=0.5)
        events.queue.claim_item(item_id, reviewer, lease_s=10_000.0, at=claim_at)
        events.queue.resolve(item_id, label, reviewer=reviewer, at=resolve_at)
    # later audits: t0 confirmed, t1 overturned; an audit before the resolution is ignored
    events.record_event("t0", "audit_label", label=1, at=5000.0)
    events.record_event("t1", "audit_label", label=9, at=5000.0)
    events.record_event("t3", "audit_label", label=0, at=50.0)
    stats = {s.reviewer: s for s in events.queue.reviewer_stats()}
    ann, bob = stats["ann"], stats["bob"]
    assert (ann.resolved, ann.median_handling_s) == (3, 30.0)
    assert ann.resolved_per_hour == pytest.approx(3.0)
    assert (ann.audited, ann.overturned, ann.overturn_rate) == (2, 1, 0.5)
    assert (bob.resolved, bob.median_handling_s, bob.audited) == (1, 100.0, 0)
    assert math.isnan(bob.resolved_per_hour)
    assert math.isnan(bob.overturn_rate)
    assert [s.reviewer for s in events.queue.reviewer_stats(since=50.0)] == ["ann", "bob"]
    quick = [_escalate(events, f"q{i}", at=0.0, priority=0.5) for i in range(2)]
    for k, item_id in enumerate(quick):
        events.queue.claim_item(item_id, "cy", at=9000.0 + k)
        events.queue.resolve(item_id, 1, reviewer="cy", at=9001.0 + k)
    cy = {s.reviewer: s for s in events.queue.reviewer_stats()}["cy"]
    assert cy.resolved == 2
    assert math.isnan(cy.resolved_per_hour)  # two seconds of work say nothing of a pace
    assert [s.resolved for s in events.queue.reviewer_stats(since=50.0, until=200.0)] == [1]
    with pytest.raises(InputError, match="after"):
        events.queue.reviewer_stats(since=2.0, until=1.0)


def test_bulk_release_counts_first_then_releases_each_claimed_item_once(
    events: store.Store,
) -> None:
    ids = [_escalate(events, f"t{i}", at=0.0, priority=0.5, predicted=i % 2) for i in range(4)]
    for item_id, reviewer in zip(ids, ["ann", "ann", "bob", "bob"], strict=True):
        events.queue.claim_item(item_id, reviewer, lease_s=1000.0, at=1.0)
    dry = events.queue.bulk_release(store.QueueFilter(predicted=0), dry_run=True, at=2.0)
    assert (dry.matched, dry.changed, dry.dry_run) == (2, [], True)
    assert events.queue.get(ids[0], at=2.0).state == "claimed"
    mine = events.queue.bulk_release(reviewer="ann", at=3.0)
    assert (mine.matched, sorted(mine.changed)) == (2, sorted(ids[:2]))
    rest = events.queue.bulk_release(at=4.0)
    assert sorted(rest.changed) == sorted(ids[2:])
    assert rest.skipped == []
    assert events.queue.bulk_release(at=5.0).matched == 0
    assert events.queue.pending(at=5.0) == 4


def test_bulk_resolve_resolves_each_selected_item_exactly_once(events: store.Store) -> None:
    spam = [
        _escalate(events, f"s{i}", at=0.0, priority=0.5, context={"text": "win crypto"})
        for i in range(3)
    ]
    keep = _escalate(events, "k", at=0.0, priority=0.5, context={"text": "lost card"})
    held = _escalate(events, "h", at=0.0, priority=0.5, context={"text": "crypto refund"})
    events.queue.claim_item(held, "bob", lease_s=1000.0, at=1.0)
    selection = store.QueueFilter(text="crypto")
    dry = events.queue.bulk_resolve(selection, -1, reviewer="ann", dry_run=True, at=2.0)
    assert (dry.matched, dry.changed) == (3, [])  # bob's item is left to bob
    done = events.queue.bulk_resolve(selection, -1, reviewer="ann", note="spam", at=3.0)
    assert sorted(done.changed) == sorted(spam)
    assert done.skipped == []
    for item_id in spam:
        item = events.queue.get(item_id)
        assert (item.state, item.label, item.resolved_by, item.note) == (
            "resolved",
            -1,
            "ann",
            "spam",
        )
    assert events.queue.get(keep).state == "pending"
    assert events.queue.get(held, at=5.0).state == "claimed"
    again = events.queue.bulk_resolve(selection, -1, reviewer="ann", at=4.0)
    assert again.matched == 0
    bobs = events.queue.bulk_resolve(selection, 2, reviewer="bob", at=5.0)
    assert bobs.changed == [held]
    resolved = [e for e in events.iter_events() if e.kind == "escalation_resolved"]
    assert len(resolved) == 4 == len({e.task_id for e in resolved})
    with pytest.raises(InputError, match="dry_run"):
        events.queue.bulk_resolve(selection, 1, reviewer="ann", dry_run="yes")  # type: ignore[arg-type]


def test_context_preview_reads_the_input_field_or_the_json() -> None:
    assert store.context_preview({"text": "  many\n spaces  "}) == "many spaces"
    assert store.context_preview({"user": "u1"}) == '{"user": "u1"}'
    assert store.context_preview("plain") == "plain"
    assert store.context_preview([1, 2]) == "[1, 2]"
    assert store.context_preview(None) == ""
    assert store.context_preview({"input": "x" * 500}, limit=10) == "x" * 9 + "…"


def test_health_has_the_snapshot_and_depth_flow_reviewers_and_breaches_per_bucket(
    events: store.Store,
) -> None:
    levels = store.ServiceLevels(escalation_minutes=[(0.0, 1.0)])
    old = _escalate(events, "old", at=500.0, priority=0.5)
    first = _escalate(events, "a", at=1010.0, priority=0.5)
    second = _escalate(events, "b", at=1050.0, priority=0.5)
    _escalate(events, "c", at=1150.0, priority=0.5)
    events.queue.claim_item(first, "ann", lease_s=1000.0, at=1020.0)
    events.queue.resolve(first, 1, reviewer="ann", at=1120.0)
    events.queue.claim_item(second, "bob", lease_s=1000.0, at=1200.0)
    health = events.queue.health(1000.0, 1300.0, 100.0, levels=levels, at=1250.0)
    assert health.starts == [1000.0, 1100.0, 1200.0]
    assert health.depth == [3, 3, 3]
    assert (health.created, health.resolved, health.reviewers) == ([2, 1, 0], [0, 1, 0], [0, 1, 0])
    assert health.breaches == [1, 1, 1]
    assert health.resolved_per_hour == [0.0, 36.0, 0.0]
    assert (health.waiting, health.claimed, health.breached) == (2, 1, 3)
    assert (health.oldest_age_s, health.median_age_s) == (750.0, 200.0)
    assert health.to_dict()["depth"] == [3, 3, 3]
    assert old > 0
    with pytest.raises(InputError, match="before"):
        events.queue.health(5.0, 5.0)
    with pytest.raises(InputError, match="bucket_s"):
        events.queue.health(0.0, 10.0, 0.5)
    with pytest.raises(InputError, match="at most"):
        events.queue.health(0.0, 1.0e9, 1.0)
    with pytest.raises(InputError, match="levels"):
        events.queue.health(0.0, 10.0, levels="fast")  # type: ignore[arg-type]
    empty = events.queue.health(1.0e6, 1.0e6 + 10.0, 10.0, at=1.0e6)
    assert empty.depth == [3]
    assert (
        store.QueueHealth(**{**empty.__dict__, "median_age_s": math.nan}).to_dict()["median_age_s"]
        is None
    )


def test_recent_resolutions_are_the_reviewers_latest_within_the_window(
    events: store.Store,
) -> None:
    ids = [_escalate(events, f"t{i}", at=0.0, priority=0.5) for i in range(4)]
    for k, item_id in enumerate(ids):
        reviewer = "bob" if k == 3 else "ann"
        events.queue.claim_item(item_id, reviewer, lease_s=1000.0, at=1.0)
        events.queue.resolve(item_id, 1, reviewer=reviewer, at=100.0 * (k + 1))
    recent = events.queue.recent_resolutions("ann", 150.0, at=300.0)
    assert [item.id for item in recent] == [ids[2], ids[1]]
    assert [i.id for i in events.queue.recent_resolutions("ann", 1000.0, limit=1, at=300.0)] == [
        ids[2]
    ]
    with pytest.raises(InputError, match="window_s"):
        events.queue.recent_resolutions("ann", 0.0)
