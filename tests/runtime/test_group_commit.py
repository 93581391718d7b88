"""`GroupCommit`: callers that arrive together share one transaction and keep their own result.

The model of these guards blocks its first call until the test has queued every other
caller behind it, so the second group is known to hold all of them: nothing depends on
thread timing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from failwise import InputError, Policy, store
from failwise.runtime import DecisionNotRecordedError, GroupCommit, Guard
from tests.runtime import _digits as helper
from tests.runtime.test_guard_store import events  # noqa: F401 - the store fixture

N_CALLERS = 12


class _HeldModel:
    """Scores by row index; the first call waits until ``release`` is set."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, index: Any) -> np.ndarray:
        self.calls += 1
        if self.calls == 1:
            assert self.release.wait(30), "the test never released the first call"
        rows = np.atleast_1d(np.asarray(index, dtype=int))
        out: np.ndarray = self.proba[rows]
        return out if np.ndim(index) else np.asarray(out[0])


def _run_together(
    commits: GroupCommit, model: _HeldModel, calls: list[dict[str, Any]]
) -> list[Any]:
    """Run ``calls`` from threads: the first alone, the others queued behind it."""
    results: list[Any] = [None] * len(calls)

    def call(i: int) -> None:
        try:
            results[i] = commits.decide(**calls[i])
        except Exception as error:  # the test reads each caller's error
            results[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    threads[0].start()
    while model.calls == 0:
        threading.Event().wait(0.001)
    for thread in threads[1:]:
        thread.start()
    while len(commits._waiting) < len(calls) - 1:
        threading.Event().wait(0.001)
    model.release.set()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def model(data: helper.Digits) -> _HeldModel:
    return _HeldModel(data.proba(data.X_test))


def test_callers_queued_behind_a_commit_share_the_next_one(
    model: _HeldModel,
    policies: dict[str, Policy],
    events: store.Store,  # noqa: F811
) -> None:
    guard = Guard(model, None, policies["risk"], store=events, batch_model=True)
    commits = GroupCommit(guard)
    calls = [{"x": i, "context": {"caller": i}, "task_id": f"task-{i}"} for i in range(N_CALLERS)]
    results = _run_together(commits, model, calls)

    assert commits.groups == 1
    assert commits.grouped == N_CALLERS - 1
    alone = Guard(lambda i: model.proba[i], None, policies["risk"])
    for i, decision in enumerate(results):
        assert decision.task_id == f"task-{i}"
        assert decision.extra["context"] == {"caller": i}
        expected = alone.decide(i)
        assert (decision.action, decision.label, decision.reason) == (
            expected.action,
            expected.label,
            expected.reason,
        )
        recorded = events.task(f"task-{i}")
        assert recorded.action == decision.action.value
    decided = [e for e in events.iter_events() if e.kind == "decision"]
    assert len(decided) == N_CALLERS


def test_a_failing_caller_fails_alone(
    model: _HeldModel,
    policies: dict[str, Policy],
    events: store.Store,  # noqa: F811
) -> None:
    guard = Guard(model, None, policies["risk"], store=events, batch_model=True)
    commits = GroupCommit(guard)
    other = Guard(lambda i: model.proba[i], None, policies["risk"], store=events)
    other.decide(0, task_id="taken")
    calls: list[dict[str, Any]] = [{"x": i, "task_id": f"ok-{i}"} for i in range(N_CALLERS)]
    calls[3] = {"x": 3, "context": ["not", "a", "mapping"]}
    calls[5] = {"x": 5, "task_id": "taken"}
    calls[7] = {"x": 7, "task_id": "twice"}
    calls[8] = {"x": 8, "task_id": "twice"}
    results = _run_together(commits, model, calls)

    assert isinstance(results[3], InputError)
    assert isinstance(results[5], DecisionNotRecordedError)
    assert isinstance(results[5].__cause__, store.DuplicateTaskError)
    twice = [results[7], results[8]]
    assert sum(isinstance(r, DecisionNotRecordedError) for r in twice) == 1
    good = [r for i, r in enumerate(results) if i not in (3, 5, 7, 8)]
    assert all(r.task_id.startswith("ok-") for r in good)
    for decision in good:
        assert events.task(decision.task_id).action == decision.action.value
    (kept,) = [r for r in twice if not isinstance(r, Exception)]
    assert events.task("twice").action == kept.action.value


def test_one_caller_at_a_time_is_decided_on_its_own(
    data: helper.Digits, policies: dict[str, Policy], tmp_path: Path
) -> None:
    proba = data.proba(data.X_test)
    with store.open(f"sqlite:///{tmp_path}/one.db") as opened:
        commits = GroupCommit(Guard(lambda i: proba[i], None, policies["risk"], store=opened))
        decisions = [commits.decide(i) for i in range(5)]
        assert commits.groups == 0
        assert not commits._leading
        for decision in decisions:
            assert decision.task_id is not None
            assert opened.task(decision.task_id).action == decision.action.value
    assert "max_group=64" in repr(commits)


def test_arguments_are_checked(data: helper.Digits, policies: dict[str, Policy]) -> None:
    guard = Guard(lambda i: data.proba(data.X_test)[i], None, policies["risk"])
    with pytest.raises(InputError, match="max_group"):
        GroupCommit(guard, max_group=0)
    with pytest.raises(TypeError, match="takes a failwise Guard; got function"):
        GroupCommit(lambda x: x)  # type: ignore[arg-type]
