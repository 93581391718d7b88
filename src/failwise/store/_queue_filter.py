"""Which queue items a reviewer is looking at: :class:`QueueFilter` and its SQL.

The reviewer page, the JSON API, the bulk actions and the CLI select items with the same
filter, turned into one ``WHERE`` clause here, so a dry-run count and the action it
previews select the same items.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._events import QUEUE_KINDS
from failwise.store._queue_levels import ServiceLevels

__all__ = ["FILTER_STATES", "QueueFilter", "filter_sql"]

#: States a filter may select: the queue's four, plus ``open`` (not resolved: the
#: default), ``waiting`` (claimable: pending, or a lease that ran out) and ``all``.
FILTER_STATES: tuple[str, ...] = (
    "open",
    "waiting",
    "pending",
    "claimed",
    "expired",
    "resolved",
    "all",
)

#: Longest search text accepted.
_MAX_SEARCH = 500


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"QueueFilter: `{name}` must be a string or None; got {describe(value)}.")
    if "\x00" in value or len(value) > _MAX_SEARCH:
        raise InputError(
            f"QueueFilter: `{name}` must be at most {_MAX_SEARCH} characters without NUL; got "
            f"{len(value)} characters."
        )
    return value.strip() or None


def _optional_age(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(
            f"QueueFilter: `{name}` must be a number of seconds >= 0 or None; got "
            f"{describe(value)}."
        )
    if value < 0:
        raise InputError(f"QueueFilter: `{name}` must be >= 0 seconds; got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class QueueFilter:
    """A selection of review-queue items.

    Every field narrows the selection; None (the default) does not filter on it.

    Parameters
    ----------
    state : str, default="open"
        One of :data:`FILTER_STATES`: ``open`` (not resolved), ``waiting`` (claimable),
        ``pending``, ``claimed`` (lease running), ``expired``, ``resolved`` or ``all``.
    kind : {"escalation", "audit"}, optional
    reason : str, optional
        Text the item's reason contains (case-insensitive for ASCII letters).
    predicted : int, optional
        The model's top label of the task's decision.
    min_age_s, max_age_s : float, optional
        Items queued at least / at most this many seconds ago.
    assignee : str, optional
        The reviewer holding (or who last held) the item.
    text : str, optional
        Text the decision's ``context`` (the recorded input) or the task id contains
        (case-insensitive for ASCII letters).
    breached : bool, optional
        Only items past their due time (True) or within it (False); see
        :class:`ServiceLevels`.

    Examples
    --------
    >>> QueueFilter(kind="escalation", text="refund").kind
    'escalation'
    """

    state: str = "open"
    kind: str | None = None
    reason: str | None = None
    predicted: int | None = None
    min_age_s: float | None = None
    max_age_s: float | None = None
    assignee: str | None = None
    text: str | None = None
    breached: bool | None = None

    def __post_init__(self) -> None:
        if self.state not in FILTER_STATES:
            raise InputError(
                f"QueueFilter: `state` must be one of {list(FILTER_STATES)}; got {self.state!r}."
            )
        if self.kind is not None and self.kind not in QUEUE_KINDS:
            raise InputError(
                f"QueueFilter: `kind` must be one of {list(QUEUE_KINDS)} or None; got "
                f"{self.kind!r}."
            )
        predicted = self.predicted
        if predicted is not None and (
            isinstance(predicted, bool) or not isinstance(predicted, Integral)
        ):
            raise InputError(
                f"QueueFilter: `predicted` must be a label (an int) or None; got "
                f"{describe(predicted)}."
            )
        if predicted is not None:
            object.__setattr__(self, "predicted", int(predicted))
        for name in ("reason", "assignee", "text"):
            object.__setattr__(self, name, _optional_text(getattr(self, name), name))
        for name in ("min_age_s", "max_age_s"):
            object.__setattr__(self, name, _optional_age(getattr(self, name), name))
        if self.breached is not None and not isinstance(self.breached, bool):
            raise InputError(
                f"QueueFilter: `breached` must be True, False or None; got "
                f"{describe(self.breached)}."
            )
        low, high = self.min_age_s, self.max_age_s
        if low is not None and high is not None and low > high:
            raise InputError(
                f"QueueFilter: `min_age_s` ({low:g}) is above `max_age_s` ({high:g}); no item "
                "can match. Swap them."
            )


def _like(text: str) -> str:
    """A ``LIKE … ESCAPE '!'`` pattern for ``text`` as stored: JSON-escaped, lowercase."""
    escaped = json.dumps(text)[1:-1].lower()
    for special in ("!", "%", "_"):
        escaped = escaped.replace(special, "!" + special)
    return f"%{escaped}%"


def filter_sql(
    selection: QueueFilter, levels: ServiceLevels, now: float, backend: str
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (over ``qi`` queue items, ``t`` tasks, ``d`` decision events)."""
    where: list[str] = []
    params: list[Any] = []
    state = selection.state
    if state == "open":
        where.append("qi.state <> 'resolved'")
    elif state == "waiting":
        where.append(
            "(qi.state IN ('pending', 'expired') OR "
            "(qi.state = 'claimed' AND qi.lease_expires_at <= ?))"
        )
        params.append(now)
    elif state in ("pending", "resolved"):
        where.append("qi.state = ?")
        params.append(state)
    elif state == "claimed":
        where.append("qi.state = 'claimed' AND qi.lease_expires_at > ?")
        params.append(now)
    elif state == "expired":
        where.append(
            "(qi.state = 'expired' OR (qi.state = 'claimed' AND qi.lease_expires_at <= ?))"
        )
        params.append(now)
    if selection.kind is not None:
        where.append("qi.kind = ?")
        params.append(selection.kind)
    if selection.reason is not None:
        where.append("LOWER(qi.reason) LIKE ? ESCAPE '!'")
        pattern = selection.reason.lower()
        for special in ("!", "%", "_"):
            pattern = pattern.replace(special, "!" + special)
        params.append(f"%{pattern}%")
    if selection.predicted is not None:
        where.append("t.predicted = ?")
        params.append(selection.predicted)
    if selection.min_age_s is not None:
        where.append("qi.created_at <= ?")
        params.append(now - selection.min_age_s)
    if selection.max_age_s is not None:
        where.append("qi.created_at >= ?")
        params.append(now - selection.max_age_s)
    if selection.assignee is not None:
        where.append("qi.claimed_by = ?")
        params.append(selection.assignee)
    if selection.text is not None:
        find = "INSTR(d.payload, ?)" if backend == "sqlite" else "STRPOS(d.payload, ?)"
        where.append(
            f"((({find}) > 0 AND LOWER(SUBSTR(d.payload, {find})) LIKE ? ESCAPE '!') "
            "OR LOWER(qi.task_id) LIKE ? ESCAPE '!')"
        )
        pattern = _like(selection.text)
        plain = selection.text.lower()
        for special in ("!", "%", "_"):
            plain = plain.replace(special, "!" + special)
        params += ['"context":', '"context":', pattern, f"%{plain}%"]
    if selection.breached is not None:
        due, due_params = levels.sql("qi")
        breached = (
            f"((qi.state = 'resolved' AND qi.resolved_at > {due}) OR "
            f"(qi.state <> 'resolved' AND {due} <= ?))"
        )
        where.append(breached if selection.breached else f"NOT {breached}")
        params += [*due_params, *due_params, now]
    return (" WHERE " + " AND ".join(where)) if where else "", params
