"""Renewing a lease, undoing a recent resolution, and what the metrics make of an undo."""

from __future__ import annotations

import pytest

from failwise import store
from failwise.outcomes import measure


def _escalated(events: store.Store, task_id: str = "t1", at: float = 0.0) -> int:
    request = store.QueueRequest(task_id, "escalation", "low confidence", 0.5)
    return events.record_decision(task_id, {"action": "escalate"}, at=at, enqueue=[request])[0]


def test_renew_extends_the_holders_lease_even_after_it_ran_out(events: store.Store) -> None:
    item_id = _escalated(events)
    events.queue.claim("ann", lease_s=10, at=1.0)
    renewed = events.queue.renew(item_id, 100, reviewer="ann", at=50.0)
    assert (renewed.state, renewed.lease_expires_at) == ("claimed", 150.0)
    with pytest.raises(store.QueueStateError, match="held by 'ann'"):
        events.queue.renew(item_id, reviewer="bob", at=60.0)
    events.queue.release(item_id, at=70.0)
    with pytest.raises(store.QueueStateError, match="only a claimed item's lease"):
        events.queue.renew(item_id, at=80.0)
    assert [e.kind for e in events.events("t1")][-2:] == [
        "escalation_renewed",
        "escalation_released",
    ]


def test_undo_reopens_the_item_for_its_reviewer_and_appends_an_event(
    events: store.Store,
) -> None:
    item_id = _escalated(events)
    events.queue.claim("ann", at=1.0)
    events.queue.resolve(item_id, 3, note="sure", reviewer="ann", at=2.0)
    reopened = events.queue.reopen(item_id, reviewer="ann", window_s=60, lease_s=30, at=10.0)
    assert reopened.state == "claimed"
    assert (reopened.claimed_by, reopened.lease_expires_at) == ("ann", 40.0)
    assert (reopened.label, reopened.note, reopened.resolved_at) == (None, None, None)
    events.queue.resolve(item_id, 4, reviewer="ann", at=12.0)
    log = events.events("t1")
    assert [e.kind for e in log] == [
        "decision",
        "escalation_created",
        "escalation_claimed",
        "escalation_resolved",
        "escalation_reopened",
        "escalation_resolved",
    ]
    assert log[4].payload["undone_label"] == 3
    assert [(t.label, t.labelled_at) for t in events.labelled_tasks()] == [(4, 12.0)]


def test_undo_is_refused_too_late_by_someone_else_or_when_not_resolved(
    events: store.Store,
) -> None:
    item_id = _escalated(events)
    with pytest.raises(store.QueueStateError, match="not resolved"):
        events.queue.reopen(item_id, at=1.0)
    events.queue.claim("ann", at=1.0)
    events.queue.resolve(item_id, 3, at=2.0)
    with pytest.raises(store.QueueStateError, match="resolved by 'ann', not 'bob'"):
        events.queue.reopen(item_id, reviewer="bob", at=3.0)
    with pytest.raises(store.QueueStateError, match="can be undone for 300 s only"):
        events.queue.reopen(item_id, at=400.0)
    with pytest.raises(store.UnknownItemError):
        events.queue.reopen(item_id + 100, at=3.0)
    assert events.queue.get(item_id).state == "resolved"


def test_undo_is_refused_when_the_task_has_opened_another_item(events: store.Store) -> None:
    item_id = _escalated(events)
    events.queue.claim("ann", at=1.0)
    events.queue.resolve(item_id, 3, at=2.0)
    events.queue.enqueue("t1", "escalation", "the user asked again", at=3.0)
    with pytest.raises(store.QueueStateError, match="opened another escalation item"):
        events.queue.reopen(item_id, at=4.0)


def test_an_undone_resolution_is_not_counted_until_resolved_again(events: store.Store) -> None:
    item_id = _escalated(events)
    events.queue.claim("ann", at=1.0)
    events.queue.resolve(item_id, 3, at=5.0)
    assert measure(events).time_to_correct_output_median_s.value == 5.0
    events.queue.reopen(item_id, at=6.0)
    undone = measure(events)
    assert undone.n_tasks == 1
    assert undone.task_completion_rate.value == 0.0
    assert list(events.labelled_tasks()) == []
    events.queue.resolve(item_id, 3, at=9.0)
    assert measure(events).time_to_correct_output_median_s.value == 9.0


def test_an_undone_audit_label_gives_way_to_the_new_one(events: store.Store) -> None:
    request = store.QueueRequest("a1", "audit", "sampled", 0.1)
    decision = {"action": "answer", "label": 2, "review_probability": 0.5}
    item_id = events.record_decision("a1", decision, at=0.0, enqueue=[request])[0]
    events.queue.claim("ann", at=1.0)
    events.queue.resolve(item_id, 5, at=2.0)
    assert measure(events).silent_failure_rate.value == 1.0
    events.queue.reopen(item_id, at=3.0)
    assert list(events.labelled_tasks()) == []
    events.queue.resolve(item_id, 2, at=4.0)
    assert measure(events).silent_failure_rate.value == 0.0
    assert [(t.label, t.source) for t in events.labelled_tasks()] == [(2, "audit")]


def test_the_items_of_a_task_include_resolved_ones(events: store.Store) -> None:
    item_id = _escalated(events)
    events.queue.claim("ann", at=1.0)
    events.queue.resolve(item_id, 3, at=2.0)
    second = events.queue.enqueue("t1", "escalation", "again", at=3.0)
    assert [i.id for i in events.queue.of_task("t1")] == [item_id, second]
    assert events.queue.of_task("nobody") == []
