"""Errors raised by the event log and the review queue.

Every store error is a :class:`StoreError`. Rejected calls (a duplicate task id, an
unknown task, a queue item in the wrong state) are also :class:`~failwise.InputError`,
because the argument is what is wrong, and they write nothing.
"""

from __future__ import annotations

from failwise.exceptions import FailwiseError, InputError

__all__ = [
    "DuplicateTaskError",
    "QueueStateError",
    "StoreError",
    "UnknownItemError",
    "UnknownTaskError",
]


class StoreError(FailwiseError):
    """The database cannot be reached, opened, migrated or written, or the store is closed.

    Messages name the database URL without its password.
    """


class DuplicateTaskError(StoreError, InputError):
    """A decision was recorded for a task id that already exists; nothing was written."""


class UnknownTaskError(StoreError, InputError):
    """An event refers to a task that no decision opened; nothing was written."""


class UnknownItemError(StoreError, InputError):
    """A queue call names an item id that does not exist; nothing was written."""


class QueueStateError(StoreError, InputError):
    """A queue item is not in a state that allows the call (e.g. resolved twice)."""
