"""Errors raised by the event log and the review queue.

Every store error is a :class:`StoreError`. Rejected calls (a duplicate task id, an
unknown task, a queue item in the wrong state) are also :class:`~failwise.InputError`,
because the argument is what is wrong, and they write nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from failwise.exceptions import FailwiseError, InputError

__all__ = [
    "DuplicateTaskError",
    "QueueStateError",
    "StoreError",
    "UnknownItemError",
    "UnknownTaskError",
    "format_time",
    "no_store",
    "unknown_task",
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


def format_time(at: float | None) -> str:
    """Unix seconds as an ISO 8601 UTC time, for messages."""
    if at is None:
        return "an unknown time"
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def unknown_task(task_id: str, backend: str) -> UnknownTaskError:
    """The refusal for an event or queue item naming a task that does not exist."""
    return UnknownTaskError(
        f"No task {task_id!r} in the {backend} store; nothing was written. A task exists once "
        "its decision is recorded with store.record_decision(task_id, decision): check the "
        "id, and record the decision first."
    )


def no_store(url: str, why: str) -> StoreError:
    """The refusal of ``open(url, create=False)`` when there is no store at ``url``."""
    return StoreError(
        f"No failwise store at {url}: {why}. Expected the URL of an existing store (the one "
        "the Guard records to); check the path or database name for a typo. Reading does "
        "not create a store."
    )
