"""`GroupCommit`: callers that arrive together share one transaction and keep their own result.

The model of these guards blocks its first call until the test has queued every other
caller behind it, so the second group is known to hold all of them: nothing depends on
thread timing.
"""

from __future__ import annotations

import asyncio
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


def _group_commit(
    model: _HeldModel, policies: dict[str, Policy], recorded: store.Store, **options: Any
) -> GroupCommit:
    """A GroupCommit over a batch-model guard of the risk policy recording in ``recorded``."""
    guard = Guard(model, None, policies["risk"], store=recorded, batch_model=True)
    return GroupCommit(guard, **options)


def _callers() -> list[dict[str, Any]]:
    """One call per caller, each with its own context and task id."""
    return [{"x": i, "context": {"caller": i}, "task_id": f"task-{i}"} for i in range(N_CALLERS)]


def test_callers_queued_behind_a_commit_share_the_next_one(
    model: _HeldModel,
    policies: dict[str, Policy],
    events: store.Store,  # noqa: F811
) -> None:
    commits = _group_commit(model, policies, events)
    calls = _callers()
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
    commits = _group_commit(model, policies, events)
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


# ------------------------------------------------------------------ from an event loop
def _run_together_async(
    commits: GroupCommit, model: _HeldModel, calls: list[dict[str, Any]], cancel: int = -1
) -> list[Any]:
    """:func:`_run_together` with ``adecide`` tasks; the task of ``cancel`` is cancelled
    while it waits."""

    async def call(i: int) -> Any:
        try:
            return await commits.adecide(**calls[i])
        except Exception as error:  # the test reads each caller's error
            return error

    async def scenario() -> list[Any]:
        tasks = [asyncio.create_task(call(0))]
        while model.calls == 0:
            await asyncio.sleep(0.001)
        tasks += [asyncio.create_task(call(i)) for i in range(1, len(calls))]
        while len(commits._pending) < len(calls) - 1:
            await asyncio.sleep(0.001)
        if cancel >= 0:
            tasks[cancel].cancel()
        model.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        while commits._flushing:
            await asyncio.sleep(0.001)
        return list(results)

    return asyncio.run(scenario())


def test_async_callers_queued_behind_a_commit_share_the_next_one(
    model: _HeldModel,
    policies: dict[str, Policy],
    events: store.Store,  # noqa: F811
) -> None:
    commits = _group_commit(model, policies, events)
    calls = _callers()
    results = _run_together_async(commits, model, calls)

    assert (commits.groups, commits.grouped) == (1, N_CALLERS - 1)
    alone = Guard(lambda i: model.proba[i], None, policies["risk"])
    for i, decision in enumerate(results):
        assert (decision.task_id, decision.extra["context"]) == (f"task-{i}", {"caller": i})
        assert (decision.action, decision.reason) == (
            alone.decide(i).action,
            alone.decide(i).reason,
        )
        assert events.task(f"task-{i}").action == decision.action.value


def test_an_async_caller_fails_alone_and_a_cancelled_one_is_still_recorded(
    model: _HeldModel,
    policies: dict[str, Policy],
    events: store.Store,  # noqa: F811
) -> None:
    commits = _group_commit(model, policies, events, max_group=4)
    Guard(lambda i: model.proba[i], None, policies["risk"], store=events).decide(0, task_id="taken")
    calls: list[dict[str, Any]] = [{"x": i, "task_id": f"ok-{i}"} for i in range(N_CALLERS)]
    calls[3] = {"x": 3, "context": ["not", "a", "mapping"]}
    calls[5] = {"x": 5, "task_id": "taken"}
    results = _run_together_async(commits, model, calls, cancel=9)

    assert isinstance(results[3], InputError)
    assert isinstance(results[5], DecisionNotRecordedError)
    assert isinstance(results[9], asyncio.CancelledError)
    assert events.task("ok-9").action in {"answer", "clarify", "fallback", "escalate", "abstain"}
    for i, decision in enumerate(results):
        if i not in (3, 5, 9):
            assert events.task(f"ok-{i}").action == decision.action.value
    # Groups of at most 4: [1-4] and [5-8] each hold a failing caller and were decided one
    # by one; [9-11] was recorded together, with the cancelled caller in it.
    assert (commits.groups, commits.grouped) == (1, 3)
