"""The review queue: claim order, leases, resolution and every refusal, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from failwise import store
from failwise.exceptions import InputError


def _open_tasks(events: store.Store, *task_ids: str) -> None:
    events.record_decisions(
        [(t, {"action": "escalate", "confidence": 0.3}) for t in task_ids], at=0.0
    )


def _queue_kinds(events: store.Store, task_id: str) -> list[tuple[str, float, int | None]]:
    return [(e.kind, e.at, e.label) for e in events.events(task_id) if e.kind != "decision"]


def test_an_item_goes_from_created_to_claimed_to_resolved(events: store.Store) -> None:
    _open_tasks(events, "t")
    item_id = events.queue.enqueue("t", "escalation", "confidence 0.30 < 0.90", 2.5, at=10.0)
    assert events.queue.pending() == 1
    assert events.queue.get(item_id, at=10.0).state == "pending"
    item = events.queue.claim("alice", lease_s=60.0, at=11.0)
    assert item is not None
    assert (item.id, item.task_id, item.kind, item.reason) == (
        item_id,
        "t",
        "escalation",
        "confidence 0.30 < 0.90",
    )
    assert (item.priority, item.created_at, item.state) == (2.5, 10.0, "claimed")
    assert (item.claimed_by, item.claimed_at, item.lease_expires_at) == ("alice", 11.0, 71.0)
    assert events.queue.pending(at=12.0) == 0
    resolved = events.queue.resolve(item_id, 3, note="refund request", reviewer="alice", at=20.0)
    assert (resolved.state, resolved.label, resolved.note) == ("resolved", 3, "refund request")
    assert (resolved.resolved_by, resolved.resolved_at) == ("alice", 20.0)
    assert events.queue.get(item_id) == resolved
    assert _queue_kinds(events, "t") == [
        ("escalation_created", 10.0, None),
        ("escalation_claimed", 11.0, None),
        ("escalation_resolved", 20.0, 3),
    ]
    payloads = [e.payload for e in events.events("t")[1:]]
    assert payloads[0] == {"item_id": item_id, "reason": "confidence 0.30 < 0.90", "priority": 2.5}
    assert payloads[1] == {"item_id": item_id, "reviewer": "alice", "lease_expires_at": 71.0}
    assert payloads[2] == {"item_id": item_id, "reviewer": "alice", "note": "refund request"}
    assert events.queue.claim("bob", at=21.0) is None


def test_claims_come_by_priority_then_age(events: store.Store) -> None:
    _open_tasks(events, "low", "high-old", "high-new", "mid", "audit")
    events.queue.enqueue("low", "escalation", "r", priority=1.0, at=1.0)
    events.queue.enqueue("high-new", "escalation", "r", priority=5.0, at=3.0)
    events.queue.enqueue("high-old", "escalation", "r", priority=5.0, at=2.0)
    events.queue.enqueue("mid", "escalation", "r", priority=3.0, at=0.5)
    events.queue.enqueue("audit", "audit", "sampled", priority=4.0, at=0.1)
    assert [i.task_id for i in events.queue.items(kind="escalation")] == [
        "high-old",
        "high-new",
        "mid",
        "low",
    ]
    order = []
    while (item := events.queue.claim("r", at=10.0)) is not None:
        order.append(item.task_id)
    assert order == ["high-old", "high-new", "audit", "mid", "low"]


def test_claim_can_take_one_kind_only(events: store.Store) -> None:
    _open_tasks(events, "a", "b")
    events.queue.enqueue("a", "audit", "sampled", priority=9.0, at=1.0)
    events.queue.enqueue("b", "escalation", "low confidence", at=2.0)
    assert events.queue.pending("audit") == 1
    assert events.queue.pending("escalation") == 1
    item = events.queue.claim("alice", kind="escalation", at=3.0)
    assert item is not None
    assert item.task_id == "b"
    assert events.queue.claim("alice", kind="escalation", at=3.0) is None


def test_an_expired_lease_returns_the_item_to_the_queue(events: store.Store) -> None:
    _open_tasks(events, "t")
    item_id = events.queue.enqueue("t", "escalation", "r", at=0.0)
    first = events.queue.claim("alice", lease_s=10.0, at=1.0)
    assert first is not None
    assert events.queue.claim("bob", at=5.0) is None  # alice's lease still runs
    assert events.queue.pending(at=5.0) == 0
    assert events.queue.pending(at=11.0) == 1  # counted back as soon as the lease ends
    assert events.queue.get(item_id, at=11.0).state == "expired"
    second = events.queue.claim("bob", lease_s=10.0, at=12.0)
    assert second is not None
    assert (second.id, second.claimed_by) == (item_id, "bob")
    assert _queue_kinds(events, "t") == [
        ("escalation_created", 0.0, None),
        ("escalation_claimed", 1.0, None),
        ("escalation_expired", 11.0, None),
        ("escalation_claimed", 12.0, None),
    ]
    with pytest.raises(store.QueueStateError, match=r"held by 'bob' .*not by 'alice'"):
        events.queue.resolve(item_id, 1, reviewer="alice", at=13.0)
    events.queue.resolve(item_id, 1, reviewer="bob", at=14.0)


def test_a_reviewer_may_resolve_after_the_lease_until_someone_else_claims(
    events: store.Store,
) -> None:
    _open_tasks(events, "late", "swept")
    late = events.queue.enqueue("late", "audit", "r", at=0.0)
    swept = events.queue.enqueue("swept", "audit", "r", at=0.0, priority=-1.0)
    events.queue.claim("alice", lease_s=5.0, at=1.0)
    events.queue.claim("carol", lease_s=5.0, at=1.0)
    # Lease over, not yet swept: still claimed in the table, reported as expired.
    assert events.queue.get(late, at=30.0).state == "expired"
    assert events.queue.resolve(late, 2, reviewer="alice", at=30.0).state == "resolved"
    # Swept back to the queue, but nobody claimed it since: carol may still resolve it.
    assert events.queue.expire(at=40.0) == 1
    assert events.queue.get(swept, at=40.0).state == "expired"
    assert events.queue.resolve(swept, 4, reviewer="carol", at=41.0).resolved_by == "carol"
    assert _queue_kinds(events, "swept") == [
        ("audit_created", 0.0, None),
        ("audit_claimed", 1.0, None),
        ("audit_expired", 6.0, None),
        ("audit_resolved", 41.0, 4),
    ]


def test_release_hands_an_item_back(events: store.Store) -> None:
    _open_tasks(events, "t")
    item_id = events.queue.enqueue("t", "escalation", "r", at=0.0)
    events.queue.claim("alice", at=1.0)
    with pytest.raises(store.QueueStateError, match=r"held by 'alice' .*only the reviewer"):
        events.queue.release(item_id, reviewer="bob", at=2.0)
    released = events.queue.release(item_id, reviewer="alice", at=2.0)
    assert (released.state, released.claimed_by, released.lease_expires_at) == (
        "pending",
        None,
        None,
    )
    assert events.queue.pending() == 1
    assert _queue_kinds(events, "t")[-1] == ("escalation_released", 2.0, None)
    with pytest.raises(store.QueueStateError, match=r"item \d+ is pending, not claimed"):
        events.queue.release(item_id)


def test_double_resolution_is_refused_and_nothing_is_written(events: store.Store) -> None:
    _open_tasks(events, "t")
    item_id = events.queue.enqueue("t", "escalation", "r", at=0.0)
    events.queue.claim("alice", at=1.0)
    events.queue.resolve(item_id, 3, at=2.0)
    with pytest.raises(
        store.QueueStateError,
        match=r"already resolved by 'alice' with label 3 at 1970-01-01T00:00:02.000\+00:00",
    ):
        events.queue.resolve(item_id, 5, at=3.0)
    assert events.queue.get(item_id).label == 3
    assert [k for k, _, _ in _queue_kinds(events, "t")].count("escalation_resolved") == 1


def test_resolving_an_unclaimed_or_unknown_item_is_refused(events: store.Store) -> None:
    _open_tasks(events, "t")
    item_id = events.queue.enqueue("t", "audit", "r", at=0.0)
    with pytest.raises(store.QueueStateError, match=r"is pending: nobody has claimed it"):
        events.queue.resolve(item_id, 1)
    with pytest.raises(store.UnknownItemError, match=r"No queue item 999 .*nothing was written"):
        events.queue.resolve(999, 1)
    with pytest.raises(store.UnknownItemError, match=r"No queue item 999"):
        events.queue.release(999)
    with pytest.raises(store.UnknownItemError, match=r"No queue item 999"):
        events.queue.get(999)
    assert _queue_kinds(events, "t") == [("audit_created", 0.0, None)]


def test_enqueue_refuses_unknown_tasks_and_a_second_open_item(events: store.Store) -> None:
    with pytest.raises(store.UnknownTaskError, match=r"No task 'ghost'"):
        events.queue.enqueue("ghost", "escalation", "r")
    _open_tasks(events, "t")
    first = events.queue.enqueue("t", "escalation", "r", at=1.0)
    with pytest.raises(
        store.QueueStateError, match=rf"already has an open escalation item \({first}, pending\)"
    ):
        events.queue.enqueue("t", "escalation", "again", at=2.0)
    events.queue.enqueue("t", "audit", "the other kind is fine", at=2.0)
    events.queue.claim("alice", kind="escalation", at=3.0)
    events.queue.resolve(first, 0, at=4.0)
    events.queue.enqueue("t", "escalation", "reopened after resolution", at=5.0)
    assert events.queue.pending() == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "review"}, r"`kind` must be one of \['escalation', 'audit'\]; got 'review'"),
        ({"reason": ""}, r"`reason` must be a non-empty string"),
        ({"reason": None}, r"`reason` must be a non-empty string; got NoneType"),
        ({"priority": float("nan")}, r"`priority` must be a finite number; got nan"),
        ({"priority": "high"}, r"`priority` must be a finite number; got 'high'"),
        ({"task_id": ""}, r"`task_id` must be a non-empty string"),
        ({"at": -1.0}, r"`at` must be a finite, non-negative time"),
    ],
)
def test_bad_enqueue_arguments_are_refused(
    events: store.Store, kwargs: dict[str, Any], message: str
) -> None:
    _open_tasks(events, "t")
    arguments = {"task_id": "t", "kind": "escalation", "reason": "r", **kwargs}
    with pytest.raises(InputError, match=message):
        events.queue.enqueue(**arguments)
    assert events.queue.pending() == 0


@pytest.mark.parametrize(
    ("call", "kwargs", "message"),
    [
        ("claim", {"reviewer": ""}, r"`reviewer` must be a non-empty string"),
        (
            "claim",
            {"reviewer": "a", "lease_s": 0},
            r"`lease_s` must be a finite number of seconds > 0",
        ),
        ("claim", {"reviewer": "a", "kind": "x"}, r"`kind` must be one of .* or None for both"),
        ("resolve", {"item_id": 0, "label": 1}, r"`item_id` must be a positive int"),
        ("resolve", {"item_id": "1", "label": 1}, r"`item_id` must be a positive int .* got str"),
        ("resolve", {"item_id": 1, "label": None}, r"`label` is required"),
        ("resolve", {"item_id": 1, "label": 1, "note": ""}, r"`note` must be a non-empty string"),
        ("release", {"item_id": True}, r"`item_id` must be a positive int"),
        ("pending", {"kind": "all"}, r"`kind` must be one of"),
        ("items", {"state": "open"}, r"`state` must be one of \['pending', 'claimed'"),
        ("items", {"limit": 0}, r"`limit` must be an int >= 1"),
    ],
)
def test_bad_queue_arguments_are_refused(
    events: store.Store, call: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        getattr(events.queue, call)(**kwargs)


def test_items_lists_each_state(events: store.Store) -> None:
    _open_tasks(events, "a", "b", "c", "d")
    ids = {t: events.queue.enqueue(t, "escalation", "r", at=0.0) for t in "abcd"}
    events.queue.claim("r1", lease_s=100.0, at=1.0)  # a
    events.queue.claim("r2", lease_s=5.0, at=1.0)  # b: expires at 6
    item = events.queue.claim("r3", lease_s=100.0, at=1.0)  # c
    assert item is not None
    events.queue.resolve(item.id, 0, at=2.0)

    def states(state: str) -> list[str]:
        return [i.task_id for i in events.queue.items(state, at=10.0)]

    assert states("pending") == ["d"]
    assert states("claimed") == ["a"]
    assert states("expired") == ["b"]
    assert states("resolved") == ["c"]
    assert [i.id for i in events.queue.items(at=10.0, limit=2)] == [ids["a"], ids["b"]]


def test_the_lease_sweep_of_every_claim_reads_the_lease_index(sqlite_url: str) -> None:
    """The sweep reads only the expired leases (`queue_leases`), not the whole table."""
    import sqlite3

    from failwise.store._backend import render_sql
    from failwise.store._queue import _SWEEP

    store.open(sqlite_url).close()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN " + render_sql(_SWEEP, "sqlite"), (1.0,)
        ).fetchall()
    details = [str(row[-1]) for row in plan]
    assert any("USING INDEX queue_leases" in detail for detail in details), details
    assert not any(detail.startswith("SCAN queue_items") for detail in details), details
