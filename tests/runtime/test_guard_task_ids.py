"""Decisions under task ids the caller chose (what the HTTP service passes through)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from failwise import Policy, store
from failwise.exceptions import InputError
from failwise.runtime import DecisionNotRecordedError, Guard


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.4), size=1000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    events = store.open(f"sqlite:///{tmp_path / 'events.db'}")
    return Guard(lambda x: np.asarray(x), None, policy, store=events)


def test_a_decision_opens_the_task_the_caller_named(guard: Guard) -> None:
    assert guard.store is not None
    one = guard.decide([0.98, 0.01, 0.01], task_id="order-17")
    batch = guard.decide_batch([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3]], task_ids=["order-18", None])
    assert one.task_id == "order-17"
    assert batch[0].task_id == "order-18"
    assert batch[1].task_id is not None
    assert len(batch[1].task_id) == 32
    events: store.Store = guard.store  # type: ignore[assignment]
    assert events.task("order-17").action == one.action.value
    assert events.task("order-18").action == batch[0].action.value


def test_a_taken_task_id_records_nothing(guard: Guard) -> None:
    guard.decide([0.98, 0.01, 0.01], task_id="t1")
    with pytest.raises(DecisionNotRecordedError) as caught:
        guard.decide_batch([[0.98, 0.01, 0.01]] * 2, task_ids=["t2", "t1"])
    assert isinstance(caught.value.__cause__, store.DuplicateTaskError)
    events: store.Store = guard.store  # type: ignore[assignment]
    with pytest.raises(store.UnknownTaskError):
        events.task("t2")


@pytest.mark.parametrize(
    ("task_ids", "message"),
    [
        ("t1", "must be a sequence"),
        (["t1"], "has 1 entries for 2 inputs"),
        (["t1", 7], r"`task_ids\[1\]` must be None or a non-empty str"),
        (["t1", " "], r"`task_ids\[1\]`"),
        (["t1", "x" * 257], r"`task_ids\[1\]`"),
    ],
)
def test_task_ids_are_checked(guard: Guard, task_ids: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        guard.decide_batch([[0.98, 0.01, 0.01]] * 2, task_ids=task_ids)  # type: ignore[arg-type]
