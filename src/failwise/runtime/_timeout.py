"""Model calls with a time limit: daemon worker threads that a hung model cannot pin.

Python cannot kill a thread. A model call that overruns its time limit is *abandoned*: the
caller stops waiting and goes down the ladder, while the call keeps running in its worker
thread until it returns by itself. The workers here are daemon threads, so an abandoned
call never keeps the interpreter from exiting (the standard library's
``ThreadPoolExecutor``, which ``asyncio.to_thread`` uses, joins its threads at exit and
would wait for a hung model forever). The pool grows while every worker is busy, up to
``max_workers``; past that, calls wait in a queue, and with a time limit they time out there
without ever reaching the model.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["ModelThreads", "call_within", "default_max_workers"]

T = TypeVar("T")


def default_max_workers() -> int:
    """Same default as ``concurrent.futures.ThreadPoolExecutor``: min(32, CPUs + 4)."""
    return min(32, (os.cpu_count() or 1) + 4)


class ModelThreads(Executor):
    """A small executor of daemon threads for model calls (see the module docstring).

    Parameters
    ----------
    max_workers : int
        Most threads alive at once, abandoned (still running) calls included.
    name : str
        Prefix of the thread names.
    """

    def __init__(self, max_workers: int, name: str = "failwise-model") -> None:
        self._tasks: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._max_workers = max_workers
        self._name = name
        self._workers = 0
        self._idle = 0
        self._pending = 0
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker thread; return its future."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit a model call: the Guard was closed")
            self._pending += 1
            start = self._pending > self._idle and self._workers < self._max_workers
            if start:
                self._workers += 1
        if start:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{self._workers}", daemon=True
            )
            thread.start()
        self._tasks.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._tasks.get()
            with self._lock:
                self._idle -= 1
                if item is None:
                    self._workers -= 1
                    return
                self._pending -= 1
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue  # the caller gave up before the call started
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)
            else:
                future.set_result(result)
            del item, future, fn, args, kwargs

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop idle workers; calls still running are left to finish (never joined)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = self._workers
        for _ in range(workers):
            self._tasks.put(None)

    @property
    def n_workers(self) -> int:
        """Threads alive now, including those running abandoned calls."""
        with self._lock:
            return self._workers


def call_within(
    threads: Callable[[], Executor],
    call: Callable[[Any], Any],
    argument: Any,
    timeout: float | None,
    error: Callable[[str], Exception],
) -> Any:
    """``call(argument)``, on a worker thread when ``timeout`` (seconds) is set.

    Past the time limit the call is abandoned (a thread cannot be killed) and ``error``
    is raised; a ``TimeoutError`` the call itself raises propagates unchanged.
    """
    if timeout is None:
        return call(argument)
    future = threads().submit(call, argument)
    try:
        return future.result(timeout=timeout)
    except TimeoutError:
        if future.done():
            raise
        future.cancel()
        raise error(f"TimeoutError after {timeout:g} s") from None
