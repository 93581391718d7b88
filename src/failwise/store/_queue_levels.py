"""Service levels of the review queue: when an item is due, from its kind and priority.

An escalation keeps a user waiting, so its due time is short and shrinks as its priority
grows (the guard sets the priority of an escalation to one minus its confidence, and to 1
for a model failure); an audit sample keeps nobody waiting and is due within a day.
:class:`ServiceLevels` holds the table; every read of the queue (the reviewer page, the
dashboard, the CLI) derives due times and breaches from the same instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from failwise._params import Seconds, check_param
from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["ServiceLevels"]

_DEFAULT_TIERS: tuple[tuple[float, float], ...] = ((0.8, 15.0), (0.5, 30.0), (0.0, 60.0))


@dataclass(frozen=True)
class ServiceLevels:
    """Due times of queue items, in minutes after they were queued.

    Parameters
    ----------
    escalation_minutes : sequence of (min_priority, minutes)
        Default ``((0.8, 15), (0.5, 30), (0.0, 60))``.
        An escalation whose priority is at least ``min_priority`` is due ``minutes`` after
        it was queued; the first matching row wins, rows sorted by ``min_priority``
        descending. An escalation below every row gets ``default_minutes``.
    default_minutes : float, default=120.0
        Due time of an escalation below every ``min_priority``.
    audit_minutes : float or None, default=1440.0
        Due time of an audit sample (nobody waits for it); None: audits are due like
        escalations of the same priority.

    Examples
    --------
    >>> levels = ServiceLevels()
    >>> levels.due_s("escalation", 0.9), levels.due_s("escalation", 0.2), levels.due_s("audit", 1)
    (900.0, 3600.0, 86400.0)
    """

    escalation_minutes: Sequence[tuple[float, float]] = _DEFAULT_TIERS
    default_minutes: float = 120.0
    audit_minutes: float | None = 1440.0

    def __post_init__(self) -> None:
        where = "ServiceLevels"
        for name in ("default_minutes", "audit_minutes"):
            value = getattr(self, name)
            if name == "audit_minutes" and value is None:
                continue
            value = check_param(name, value, [Seconds()], where=where)
            object.__setattr__(self, name, float(value))
        rows = self.escalation_minutes
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
            raise InputError(
                f"ServiceLevels: `escalation_minutes` must be a non-empty list of "
                f"(min_priority, minutes) pairs; got {describe(rows)}. Pass e.g. "
                "[(0.8, 15), (0.0, 60)]."
            )
        tiers: list[tuple[float, float]] = []
        for position, row in enumerate(rows):
            if not isinstance(row, Sequence) or isinstance(row, (str, bytes)) or len(row) != 2:
                raise InputError(
                    f"ServiceLevels: `escalation_minutes[{position}]` must be a "
                    f"(min_priority, minutes) pair; got {describe(row)}."
                )
            low, minutes = row
            if isinstance(low, bool) or not isinstance(low, Real) or not math.isfinite(low):
                raise InputError(
                    f"ServiceLevels: `escalation_minutes[{position}]` has min_priority "
                    f"{low!r}; it must be a finite number (e.g. 0.8)."
                )
            check_param(
                f"escalation_minutes[{position}] minutes", minutes, [Seconds()], where=where
            )
            tiers.append((float(low), float(minutes)))
        object.__setattr__(self, "escalation_minutes", tuple(sorted(tiers, key=lambda t: -t[0])))

    def due_s(self, kind: str, priority: float) -> float:
        """Seconds from queueing to the due time of an item of ``kind`` and ``priority``."""
        if kind == "audit" and self.audit_minutes is not None:
            return self.audit_minutes * 60.0
        for low, minutes in self.escalation_minutes:
            if priority >= low:
                return minutes * 60.0
        return self.default_minutes * 60.0

    def sql(self, alias: str = "qi") -> tuple[str, tuple[Any, ...]]:
        """A SQL expression of an item's due time (Unix seconds) and its parameters."""
        parts: list[str] = []
        params: list[Any] = []
        if self.audit_minutes is not None:
            parts.append(f"WHEN {alias}.kind = 'audit' THEN ?")
            params.append(self.audit_minutes * 60.0)
        for low, minutes in self.escalation_minutes:
            parts.append(f"WHEN {alias}.priority >= ? THEN ?")
            params += [low, minutes * 60.0]
        case = f"({alias}.created_at + CASE {' '.join(parts)} ELSE ? END)"
        return case, (*params, self.default_minutes * 60.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the table as lists."""
        return {
            "escalation_minutes": [list(row) for row in self.escalation_minutes],
            "default_minutes": self.default_minutes,
            "audit_minutes": self.audit_minutes,
        }
