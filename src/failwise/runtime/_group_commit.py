"""`GroupCommit`: concurrent single decisions, recorded a group per transaction.

A service thread that calls :meth:`Guard.decide` waits for its own transaction to commit
(with SQLite's ``synchronous=FULL``, for an fsync). Under concurrent load most of that
time is the commit, not the decision. :class:`GroupCommit` lets the threads that arrive
while a commit is running share the next one: the first caller becomes the *leader*,
takes every decision waiting (up to ``max_group``), runs them through
:meth:`Guard.decide_batch` — one model call, one ladder, one transaction — hands each
caller its own decision, and then passes the lead to the first caller that arrived
meanwhile. Nobody waits on a timer: a caller alone is decided at once, and a group is
exactly what queued up during the previous commit.

What a caller gets back is unchanged. ``decide_batch`` gives each input the decision
``decide`` would have given it (apart from ids and timings: a grouped decision's timings
are its group's, divided by the group's size), and each caller returns only after the
transaction holding its decision has committed, so an acknowledged decision is durable
exactly as before. A batch is all-or-nothing, so when a group fails (one caller's bad
context, a task id that already exists, a store error), every caller of that group is
decided again on its own and gets its own result or its own error.

Asyncio services call :meth:`GroupCommit.adecide` from the event loop instead: callers
that arrive while a group is being recorded wait on futures, not threads, and each group
costs one trip to a worker thread, where a threaded call costs one per caller.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from failwise._params import Count, check_param
from failwise.policy import Decision
from failwise.runtime._guard import Guard

__all__ = ["GroupCommit"]


class _Waiter:
    """One caller's input, and then its decision or its error."""

    __slots__ = ("context", "decision", "error", "future", "task_id", "wake", "x")

    def __init__(
        self,
        x: Any,
        context: Mapping[str, Any] | None,
        task_id: str | None,
        future: asyncio.Future[Decision] | None = None,
    ) -> None:
        self.x = x
        self.context = context
        self.task_id = task_id
        self.decision: Decision | None = None
        self.error: BaseException | None = None
        self.future = future
        self.wake = threading.Event()

    def settle(self) -> None:
        """Hand the result to the awaiting caller (on its event loop), if it still waits."""
        future = self.future
        if future is None or future.done():
            return
        if self.error is not None:
            future.set_exception(self.error)
        else:
            future.set_result(self.result())

    @property
    def done(self) -> bool:
        return self.decision is not None or self.error is not None

    def result(self) -> Decision:
        if self.error is not None:
            raise self.error
        assert self.decision is not None
        return self.decision


class GroupCommit:
    """Share commits between threads that decide one input each through one guard.

    Parameters
    ----------
    guard : Guard
        The guard that decides and records.
    max_group : int, default 64
        Most decisions recorded in one transaction; 1 decides every call on its own.

    Examples
    --------
    In a threaded server, call ``commits.decide(x)`` where you would call
    ``guard.decide(x)``::

        commits = GroupCommit(guard)
        decision = commits.decide(scores, {"user": "u1"})
    """

    def __init__(self, guard: Guard, *, max_group: int = 64) -> None:
        if not isinstance(guard, Guard):
            raise TypeError(
                f"GroupCommit takes a failwise Guard; got {type(guard).__name__}. Build one "
                "with Guard(model, calibrator, policy, store=...)."
            )
        self.guard = guard
        self.max_group = int(
            check_param("max_group", max_group, [Count(1)], where="GroupCommit", default=64)
        )
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._leading = False
        self._pending: list[_Waiter] = []
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None
        self.groups = 0
        self.grouped = 0

    def decide(
        self, x: Any, context: Mapping[str, Any] | None = None, *, task_id: str | None = None
    ) -> Decision:
        """:meth:`Guard.decide`, recorded together with the calls made at the same time.

        Returns once the decision is durable; raises what :meth:`Guard.decide` would
        raise for this input.
        """
        me = _Waiter(x, context, task_id)
        with self._lock:
            # Invariant: callers are waiting only while someone leads, so the lead is
            # taken by a caller that finds nobody leading, and that caller is first.
            self._waiting.append(me)
            lead = not self._leading
            self._leading = True
        if not lead:
            me.wake.wait()
            if me.done:
                return me.result()
        self._lead()
        return me.result()

    async def adecide(
        self, x: Any, context: Mapping[str, Any] | None = None, *, task_id: str | None = None
    ) -> Decision:
        """:meth:`decide` for asyncio services, called from one event loop.

        The first caller starts recording at once (in a worker thread); callers that
        arrive meanwhile wait on the loop and are recorded together next, up to
        ``max_group`` at a time. Returns once the decision is durable; a caller that is
        cancelled stops waiting, but a decision already handed over is still recorded.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._pending.append(_Waiter(x, context, task_id, future))
        if not self._flushing:
            self._flushing = True
            self._flusher = loop.create_task(self._flush())  # referenced while it runs
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                group = self._pending[: self.max_group]
                del self._pending[: self.max_group]
                try:
                    await asyncio.to_thread(self._decide, group)
                finally:
                    for waiter in group:
                        if not waiter.done:
                            waiter.error = RuntimeError("the group stopped before deciding")
                        waiter.settle()
        finally:
            self._flushing = False
            for waiter in self._pending:  # only when the loop is going away
                waiter.error = RuntimeError("the event loop stopped before deciding")
                waiter.settle()
            self._pending.clear()

    def _lead(self) -> None:
        with self._lock:
            group = self._waiting[: self.max_group]
            del self._waiting[: self.max_group]
        try:
            self._decide(group)
        finally:
            for waiter in group:
                if not waiter.done:
                    waiter.error = RuntimeError("the group's leader stopped before deciding")
                waiter.wake.set()
            with self._lock:
                if self._waiting:
                    self._waiting[0].wake.set()  # the next leader: woken, not done
                else:
                    self._leading = False

    def _decide(self, group: list[_Waiter]) -> None:
        if len(group) > 1:
            try:
                decisions = self.guard.decide_batch(
                    [w.x for w in group],
                    [w.context for w in group],
                    task_ids=[w.task_id for w in group],
                )
            except Exception:  # each caller of a failed group is decided again on its own
                pass
            else:
                for waiter, decision in zip(group, decisions, strict=True):
                    waiter.decision = decision
                self.groups += 1
                self.grouped += len(group)
                return
        for waiter in group:
            try:
                waiter.decision = self.guard.decide(
                    waiter.x, waiter.context, task_id=waiter.task_id
                )
            except Exception as error:  # handed to the caller it belongs to
                waiter.error = error

    def __repr__(self) -> str:
        return f"GroupCommit({self.guard!r}, max_group={self.max_group})"
