"""The queue's change feed: what changed after a cursor, and PostgreSQL's wake-up."""

from __future__ import annotations

import time

import pytest

from failwise import store
from failwise.exceptions import InputError


def _escalate(events: store.Store, task_id: str, kind: str = "escalation") -> int:
    request = store.QueueRequest(task_id, kind, reason="low confidence")
    return events.record_decision(task_id, {"action": "escalate"}, enqueue=[request])[0]


def test_changes_after_a_cursor_are_the_queue_events_in_order(events: store.Store) -> None:
    start = events.queue.last_event_id()
    first = _escalate(events, "c1")
    second = _escalate(events, "c2", "audit")
    events.feedback("c1", "accepted")  # not a queue change
    events.queue.claim_item(first, "ann", 60.0)
    events.queue.renew(first, 120.0, reviewer="ann")  # changes nothing a reviewer sees
    events.queue.resolve(first, 2, reviewer="ann")
    events.queue.reopen(first, reviewer="ann")
    changes = events.queue.changes(start)
    assert [(c.item_id, c.kind, c.change, c.reviewer, c.label) for c in changes] == [
        (first, "escalation", "created", None, None),
        (second, "audit", "created", None, None),
        (first, "escalation", "claimed", "ann", None),
        (first, "escalation", "resolved", "ann", 2),
        (first, "escalation", "reopened", "ann", None),
    ]
    assert [c.id for c in changes] == sorted(c.id for c in changes)
    assert {c.task_id for c in changes} == {"c1", "c2"}
    # two decisions, the feedback and the renewal are events too, but not changes
    assert events.queue.last_event_id() - start == len(changes) + 4
    assert events.queue.changes(changes[1].id, limit=1) == [changes[2]]
    assert events.queue.changes(events.queue.last_event_id()) == []
    assert changes[0].to_dict()["change"] == "created"


def test_a_lease_that_ran_out_is_a_change_naming_its_holder(events: store.Store) -> None:
    item = _escalate(events, "lease")
    start = events.queue.last_event_id()
    events.queue.claim_item(item, "bob", 0.05)
    time.sleep(0.1)
    assert events.queue.expire() == 1
    changes = events.queue.changes(start)
    assert [(c.change, c.reviewer) for c in changes] == [("claimed", "bob"), ("expired", "bob")]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"after": -1}, "`after`"),
        ({"after": 1.5}, "`after`"),
        ({"after": 0, "limit": 0}, "`limit`"),
        ({"after": 0, "limit": 10_001}, "`limit`"),
    ],
)
def test_changes_refuse_a_bad_cursor_or_limit(
    sqlite_url: str, arguments: dict[str, float], match: str
) -> None:
    with store.open(sqlite_url) as events, pytest.raises(InputError, match=match):
        events.queue.changes(**arguments)  # type: ignore[arg-type]


def test_sqlite_has_no_notifications_so_its_listener_always_says_maybe(sqlite_url: str) -> None:
    listener = store.listen_queue(sqlite_url)
    assert listener.changed()
    assert listener.changed()
    assert not listener.listening
    listener.close()


def _wait_for(listener: store.QueueListener, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if listener.changed():
            return True
        time.sleep(0.02)
    return False


def test_postgres_notifies_a_listener_of_queue_changes_only(postgres_url: str) -> None:
    with store.open(postgres_url) as events:
        listener = store.listen_queue(postgres_url)
        try:
            assert listener.changed()  # the first call connects: it cannot know yet
            assert listener.listening
            assert not listener.changed()
            item = _escalate(events, "n1")
            assert _wait_for(listener)
            assert not listener.changed()  # one commit, one wake-up
            events.feedback("n1", "accepted")
            events.record_decision("n2", {"action": "answer"})
            time.sleep(0.3)
            assert not listener.changed()  # no queue change, no wake-up
            events.queue.claim_item(item, "ann", 60.0)
            assert _wait_for(listener)
        finally:
            listener.close()
        assert not listener.listening


def test_a_listener_whose_connection_broke_says_maybe_and_reconnects(postgres_url: str) -> None:
    import psycopg

    with store.open(postgres_url) as events:
        listener = store.listen_queue(postgres_url)
        try:
            listener.changed()
            assert listener.listening
            pid = listener._connection.info.backend_pid
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            time.sleep(0.2)
            # the break shows by the next read of the socket: then "maybe changed"
            assert any(listener.changed() for _ in range(3))
            listener.changed()  # reconnects if it has not yet
            assert listener.listening
            _escalate(events, "after-break")
            assert _wait_for(listener)
        finally:
            listener.close()


def test_a_store_in_another_schema_of_the_database_does_not_wake_the_listener(
    postgres_server: str, postgres_url: str
) -> None:
    from tests.store.conftest import temporary_schema

    with (
        temporary_schema(postgres_server, "failwise_other") as other_url,
        store.open(postgres_url) as events,
        store.open(other_url) as other,
    ):
        listener = store.listen_queue(postgres_url)
        try:
            listener.changed()
            assert listener.listening
            _escalate(other, "elsewhere")
            time.sleep(0.3)
            assert not listener.changed()  # another store's change
            _escalate(events, "here")
            assert _wait_for(listener)
        finally:
            listener.close()
