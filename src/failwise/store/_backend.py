"""What a database backend offers the store: transactions for the writer, reads for the rest.

Write operations are plain callables ``op(tx) -> result`` over a :class:`Tx`. An operation
either writes what it was asked to or, when the call must be refused (a duplicate task
id, an unknown task, a queue item in the wrong state), raises an :class:`InputError`
*before* it has written anything. The writer relies on this to run many callers'
operations in one transaction: a refused call leaves the others untouched.

SQL is written once, with ``?`` placeholders and ``{float}``, ``{skip_locked}`` and
``{lock}`` slots that :func:`render_sql` fills per backend.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from failwise.exceptions import InputError

__all__ = ["Backend", "Tx", "render_sql"]

T = TypeVar("T")

Row = tuple[Any, ...]

_SLOTS: dict[str, dict[str, str]] = {
    "sqlite": {"{float}": "REAL", "{skip_locked}": "", "{lock}": ""},
    "postgresql": {
        "{float}": "DOUBLE PRECISION",
        "{skip_locked}": "FOR UPDATE SKIP LOCKED",
        "{lock}": "FOR UPDATE",
    },
}


@functools.cache
def render_sql(template: str, backend: str) -> str:
    """``template`` in the backend's dialect (placeholders, types, row locks)."""
    text = template
    for slot, value in _SLOTS[backend].items():
        text = text.replace(slot, value)
    if backend == "postgresql":
        text = text.replace("?", "%s")
    return text


class Tx(Protocol):
    """An open write transaction."""

    backend: str

    def execute(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; return its rows (empty without ``RETURNING``/``SELECT``)."""
        ...

    def executemany(self, template: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...


Op = Callable[[Tx], Any]


class Backend(abc.ABC):
    """A database the store writes to (from its writer thread) and reads from (any thread)."""

    #: ``"sqlite"`` or ``"postgresql"``.
    name: str
    #: The URL without its password.
    redacted_url: str

    @abc.abstractmethod
    def transact(self, body: Callable[[Tx], T]) -> T:
        """Run ``body`` in one durable transaction and return its result.

        Transient conflicts (deadlocks, serialisation failures) are retried by running
        ``body`` again from the start, so it must depend on nothing but the database.
        """

    def run_batch(self, ops: Sequence[Op]) -> list[tuple[bool, Any]]:
        """Run ``ops`` together durably; one outcome per operation (see :meth:`apply`)."""
        return self.transact(lambda tx: self.apply(tx, ops))

    def apply(self, tx: Tx, ops: Sequence[Op]) -> list[tuple[bool, Any]]:
        """Run ``ops`` in ``tx``; each outcome is ``(True, result)`` or ``(False, error)``.

        Only refusals (:class:`~failwise.InputError`) become outcomes; any other error
        aborts the transaction.
        """
        outcomes: list[tuple[bool, Any]] = []
        for op in ops:
            try:
                outcomes.append((True, op(tx)))
            except InputError as refusal:
                outcomes.append((False, refusal))
        return outcomes

    @abc.abstractmethod
    def read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a read-only query outside the writer and return its rows."""

    @abc.abstractmethod
    def is_data_error(self, error: BaseException) -> bool:
        """Whether ``error`` comes from the data of one operation (not the connection)."""

    @abc.abstractmethod
    def describe_error(self, error: BaseException) -> str:
        """A one-line description of a driver error, without the password."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection."""
