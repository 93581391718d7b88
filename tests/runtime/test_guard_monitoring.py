"""The guard records input features and escalates inputs inside the store's quarantines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from failwise import Policy, store
from failwise.exceptions import InputError
from failwise.runtime import Guard
from failwise.testing import InMemoryEventSink

RNG = np.random.default_rng(3)
PROBA = RNG.dirichlet(np.full(3, 0.3), size=2000)
Y = np.array([RNG.choice(3, p=p) for p in PROBA])
X: NDArray[np.float64] = RNG.normal(size=(2000, 8))
POLICY = Policy(target_risk=0.1).fit(PROBA, Y)


def model(i: int) -> NDArray[np.float64]:
    return np.asarray(PROBA[i], dtype=np.float64)


@pytest.fixture
def events(tmp_path: Path) -> Iterator[store.Store]:
    with store.open(f"sqlite:///{tmp_path / 'events.db'}") as opened:
        yield opened


def _finding(events: store.Store) -> int:
    _, ids = events.append_monitor_window(
        "m",
        after=None,
        window_start=0,
        window_end=1,
        last_task=None,
        n_tasks=0,
        stats={},
        findings=[{"kind": "blind_spot", "severity": "alert"}],
    )
    return ids[0]


def test_features_are_recorded_with_every_decision(events: store.Store) -> None:
    guard = Guard(model, None, POLICY, store=events, features=lambda i: X[i])
    batch = guard.decide_batch(range(5))
    one = guard.decide(7)
    later = asyncio.run(guard.adecide(9))
    ids = [str(d.task_id) for d in [*batch, one, later]]
    rows = events.task_features(ids)
    assert set(rows.task_ids) == set(ids)
    order = [rows.task_ids.index(t) for t in ids]
    np.testing.assert_allclose(rows.features[order], X[[0, 1, 2, 3, 4, 7, 9]], atol=2e-3)


def test_a_batch_feature_function_is_called_once_per_batch(events: store.Store) -> None:
    calls: list[int] = []

    def encode(items: list[int]) -> NDArray[np.float64]:
        calls.append(len(items))
        return X[items]

    guard = Guard(model, None, POLICY, store=events, features=encode, batch_features=True)
    decisions = guard.decide_batch(range(6))
    assert calls == [6]
    assert len(events.task_features([str(d.task_id) for d in decisions]).task_ids) == 6


@pytest.mark.parametrize(
    "broken",
    [lambda i: 1 / 0, lambda i: np.full(3, np.nan), lambda i: "text", lambda i: np.ones((2, 2))],
)
def test_a_failing_feature_function_never_fails_the_request(
    events: store.Store, broken: Any
) -> None:
    guard = Guard(model, None, POLICY, store=events, features=broken)
    decision = guard.decide(3)
    assert decision.extra["features_error"]
    assert events.task_features([str(decision.task_id)]).task_ids == ()
    assert events.task(str(decision.task_id)).action == decision.action.value


def test_a_batch_function_with_the_wrong_row_count_records_no_features() -> None:
    sink = InMemoryEventSink()
    guard = Guard(model, None, POLICY, store=sink, features=lambda xs: X[:1], batch_features=True)
    decisions = guard.decide_batch([1, 2])
    assert all("one row per input" in d.extra["features_error"] for d in decisions)
    assert sink.features == {}


def test_the_in_memory_sink_keeps_the_features() -> None:
    sink = InMemoryEventSink()
    decision = Guard(model, None, POLICY, store=sink, features=lambda i: X[i]).decide(4)
    np.testing.assert_array_equal(sink.features[str(decision.task_id)], X[4])


def test_a_quarantined_zone_escalates_its_inputs_and_names_the_finding(
    events: store.Store,
) -> None:
    clock = [0.0]
    guard = Guard(
        model,
        None,
        POLICY,
        store=events,
        features=lambda i: X[i],
        quarantine=True,
        quarantine_refresh_s=5.0,
    )
    guard._zones.clock = lambda: clock[0]  # type: ignore[union-attr]
    confident = int(np.flatnonzero(PROBA.max(axis=1) > 0.95)[0])
    assert guard.decide(confident).action.value == "answer"
    finding = _finding(events)
    zone = events.quarantine(finding, centre=X[confident], radius=0.05)
    assert guard.decide(confident).action.value == "answer"  # the zones are read again in 5 s
    clock[0] = 5.0
    single = guard.decide(confident)
    batch = guard.decide_batch([confident, (confident + 1) % 2000])
    for decision in (single, batch[0]):
        assert decision.action.value == "escalate"
        assert f"(quarantine {zone}, finding {finding})" in decision.reason
        assert decision.extra["quarantine"] == {"quarantine_id": zone, "finding_id": finding}
    assert "quarantine" not in batch[1].extra
    (item,) = [i for i in events.queue.items(state="pending") if i.task_id == single.task_id]
    assert f"quarantine {zone}" in item.reason
    events.release_quarantine(zone, by="alice")
    clock[0] = 10.0
    assert guard.decide(confident).action.value == "answer"


def test_quarantine_needs_a_store_and_features() -> None:
    with pytest.raises(InputError, match="pass both `store=` and `features=`"):
        Guard(model, None, POLICY, features=lambda i: X[i], quarantine=True)
    with pytest.raises(InputError, match="callable"):
        Guard(model, None, POLICY, features=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="keeps quarantines"):
        Guard(
            model, None, POLICY, store=InMemoryEventSink(), features=lambda i: X[i], quarantine=True
        )
