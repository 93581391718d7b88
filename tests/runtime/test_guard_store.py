"""`Guard` with a real event store: every decision recorded, escalations and audits queued.

Runs on a SQLite file, and on PostgreSQL too when ``FAILWISE_TEST_POSTGRES_URL`` names a
server (``scripts/postgres start`` prints one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

from failwise import Action, InputError, Policy, store
from failwise.runtime import DecisionNotRecordedError, Guard
from failwise.store import StoreError

POSTGRES_URL = os.environ.get("FAILWISE_TEST_POSTGRES_URL")


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server (dropped afterwards): tests never share queues."""
    psycopg = pytest.importorskip("psycopg")
    name = f"guard_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(server_url)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def events(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[store.Store]:
    if request.param == "sqlite":
        with store.open(f"sqlite:///{tmp_path}/events.db") as opened:
            yield opened
        return
    if not POSTGRES_URL:
        pytest.skip("set FAILWISE_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
    with fresh_postgres_database(POSTGRES_URL) as url, store.open(url) as opened:
        yield opened


def proba_guard(data: Any, policy: Policy, events: store.Store, **kwargs: Any) -> Guard:
    proba = data.proba(data.X_test)
    return Guard(lambda i: proba[i], None, policy, store=events, **kwargs)


def test_every_decision_is_recorded_with_its_payload(
    data: Any, policies: dict[str, Policy], events: store.Store
) -> None:
    guard = proba_guard(data, policies["risk"], events, labels=[str(k) for k in range(8)])
    decisions = [guard.decide(i, context={"user": f"u{i}"}) for i in range(30)]
    for decision in decisions:
        event, *queued = events.events(decision.task_id)  # type: ignore[arg-type]
        assert event.kind == "decision"
        assert [e.kind for e in queued] == (
            ["escalation_created"] if decision.action is Action.ESCALATE else []
        )
        assert event.label == decision.label
        assert event.payload["action"] == decision.action.value
        assert event.payload["policy_version"] == guard.policy_version
        assert event.payload["reason"] == decision.reason
        assert event.payload["context"] == decision.extra["context"]
        assert event.payload == decision.to_dict()
        assert "store_s" not in decision.timings


def test_escalations_are_queued_by_expected_cost(
    data: Any, policies: dict[str, Policy], events: store.Store
) -> None:
    guard = proba_guard(data, policies["risk"], events)
    decisions = guard.decide_batch(list(range(120)))
    escalated = {d.task_id: d for d in decisions if d.action is Action.ESCALATE}
    assert escalated
    items = events.queue.items("pending", kind="escalation", limit=1000)
    assert {item.task_id for item in items} == set(escalated)
    for item in items:
        decision = escalated[item.task_id]
        assert item.reason == decision.reason
        assert item.priority == pytest.approx(1.0 - decision.confidence)
    claimed = events.queue.claim("alice")
    assert claimed is not None
    assert claimed.priority == max(item.priority for item in items)


def test_model_failures_are_escalated_first(
    data: Any, policies: dict[str, Policy], events: store.Store
) -> None:
    def broken(x: Any) -> Any:
        raise ConnectionError("model server down")

    healthy = proba_guard(data, policies["risk"], events)
    for i in range(60):
        healthy.decide(i)
    failed = Guard(broken, None, policies["risk"], store=events).decide(0)
    item = events.queue.claim("bob")
    assert item is not None
    assert item.task_id == failed.task_id
    assert item.priority == 1.0
    assert "model failed: ConnectionError: model server down" in item.reason
    (event, *_) = events.events(failed.task_id)
    assert event.payload["failure"] == "exception"


def test_audit_samples_are_queued_as_audit_items(
    data: Any, policies: dict[str, Policy], events: store.Store
) -> None:
    guard = proba_guard(data, policies["risk"], events, audit_rate=0.5, random_state=3)
    decisions = guard.decide_batch(list(range(100))) + [guard.decide(i) for i in range(100, 200)]
    audited = {d.task_id for d in decisions if d.review == "audit"}
    assert audited == {d.task_id for d in decisions if d.extra["audit"]}
    assert {d.action for d in decisions if d.task_id in audited} > {Action.ANSWER}
    assert not any(d.action is Action.ESCALATE for d in decisions if d.task_id in audited)
    items = events.queue.items("pending", kind="audit", limit=1000)
    assert {item.task_id for item in items} == audited
    assert all(item.reason.startswith("audit: a random 0.5 share of") for item in items)
    for decision in decisions:
        assert events.events(decision.task_id)[0].payload == decision.to_dict()  # type: ignore[arg-type]


def test_adecide_records_too(data: Any, policies: dict[str, Policy], events: store.Store) -> None:
    guard = proba_guard(data, policies["risk"], events)

    async def run() -> list[Any]:
        return list(await asyncio.gather(*(guard.adecide(i) for i in range(20))))

    for decision in asyncio.run(run()):
        assert events.events(decision.task_id)[0].kind == "decision"


def test_a_store_that_cannot_record_raises_with_the_decision_attached(
    data: Any, policies: dict[str, Policy], tmp_path: Path
) -> None:
    events = store.open(f"sqlite:///{tmp_path}/closed.db")
    guard = proba_guard(data, policies["risk"], events)
    events.close()
    with pytest.raises(DecisionNotRecordedError, match=r"did not record 1 decision\(s\)") as info:
        guard.decide(0)
    assert isinstance(info.value, StoreError)
    assert not info.value.decision_recorded
    assert info.value.decision.task_id is not None
    assert info.value.decision.action in set(Action)
    with pytest.raises(DecisionNotRecordedError, match=r"did not record 5 decision\(s\)") as batch:
        guard.decide_batch([0, 1, 2, 3, 4])
    assert len(batch.value.decisions) == 5
    with pytest.raises(DecisionNotRecordedError):
        asyncio.run(guard.adecide(0))


def test_unrecordable_decision_can_be_recorded_again_later(
    data: Any, policies: dict[str, Policy], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/retry.db"
    events = store.open(url)
    guard = proba_guard(data, policies["risk"], events)
    events.close()
    with pytest.raises(DecisionNotRecordedError) as info:
        guard.decide(1)
    decision = info.value.decision
    with store.open(url) as again:
        again.record_decision(decision.task_id, decision.to_dict())  # type: ignore[arg-type]
        assert again.events(decision.task_id)[0].payload["action"] == decision.action.value  # type: ignore[arg-type]


def test_context_must_be_json_when_recorded(
    data: Any, policies: dict[str, Policy], events: store.Store
) -> None:
    guard = proba_guard(data, policies["risk"], events)
    with pytest.raises(InputError, match="`context` is recorded with the decision, so it must be"):
        guard.decide(0, context={"when": object()})
    with pytest.raises(InputError, match="must be JSON-serialisable"):
        guard.decide(0, context={"score": float("nan")})
    assert guard.decide(0, context={"user": str(uuid.uuid4())}).extra["context"]["user"]


def test_batch_is_one_transaction_of_decisions(
    data: Any, policies: dict[str, Policy], events: store.Store
) -> None:
    guard = proba_guard(data, policies["risk"], events)
    decisions = guard.decide_batch(list(np.arange(50)))
    assert len({d.timings["total_s"] for d in decisions}) == 1
    for decision in decisions:
        assert events.events(decision.task_id)[0].payload == decision.to_dict()  # type: ignore[arg-type]
