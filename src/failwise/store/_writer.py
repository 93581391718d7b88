"""Group commit: one writer thread turns concurrent callers into few durable transactions.

Callers hand an operation to :meth:`GroupCommitWriter.submit` and block. The writer
thread takes the first waiting operation, drains every other one that is already
waiting (up to ``max_batch``), runs them all in one transaction, commits, and only then
wakes each caller with its own result. A call therefore returns after its data is
committed (durable), while one commit — one ``fsync`` — serves every caller that arrived
during the previous one.

A refused operation (duplicate task, unknown item…) fails only its own call. If the
transaction fails on the data of one operation, the batch is retried one operation per
transaction, so only the culprit sees the error. Connection failures fail the batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

from failwise.store._backend import Backend, Op
from failwise.store._errors import StoreError

__all__ = ["GroupCommitWriter"]


class _Request:
    __slots__ = ("done", "error", "op", "value")

    def __init__(self, op: Op) -> None:
        self.op = op
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class GroupCommitWriter:
    """The single writer thread of one store.

    Parameters
    ----------
    backend : Backend
        Where to write.
    max_batch : int, default=512
        Most operations committed in one transaction.
    """

    def __init__(self, backend: Backend, *, max_batch: int = 512) -> None:
        self._backend = backend
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(
            target=self._loop, name=f"failwise-store-writer[{backend.redacted_url}]", daemon=True
        )
        self._thread.start()

    # ---------------------------------------------------------------- callers
    def submit(self, op: Op) -> Any:
        """Run ``op`` in the next batch; return its result once the batch has committed."""
        request = _Request(op)
        with self._lock:
            if self._closed:
                raise StoreError(
                    f"The store for {self._backend.redacted_url} is closed; open a new one "
                    "with failwise.store.open(url)."
                )
            self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.value

    def close(self) -> None:
        """Finish the operations already submitted, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    # ---------------------------------------------------------------- writer thread
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._run(batch)

    def _run(self, batch: Sequence[_Request]) -> None:
        ops = [request.op for request in batch]
        try:
            outcomes = self._backend.run_batch(ops)
        except BaseException as error:
            if len(batch) > 1 and self._backend.is_data_error(error):
                for request in batch:
                    self._run([request])
                return
            for request in batch:
                request.error = self._as_store_error(error)
                request.done.set()
            if not isinstance(error, Exception):
                raise
            return
        for request, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                request.value = value
            else:
                request.error = value
            request.done.set()

    def _as_store_error(self, error: BaseException) -> BaseException:
        if isinstance(error, StoreError):
            return error
        if not isinstance(error, Exception):
            return StoreError(
                f"The write to {self._backend.redacted_url} was interrupted "
                f"({type(error).__name__}); it was not committed."
            )
        failure = StoreError(
            f"Writing to {self._backend.redacted_url} failed: "
            f"{self._backend.describe_error(error)}. Nothing from this call was committed "
            "unless the connection broke during the commit itself; check the database and "
            "retry."
        )
        failure.__cause__ = error
        return failure
