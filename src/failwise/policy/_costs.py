"""Explicit costs of each kind of outcome, for policies fitted by expected cost."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from failwise.exceptions import InputError

__all__ = ["OutcomeCosts"]


@dataclass(frozen=True)
class OutcomeCosts:
    """What each outcome of the ladder costs, in any unit the product owner likes.

    Only ratios matter. The defaults say: a wrong automatic answer (a silent failure) is
    the worst outcome; abstaining loses the task but is honest; a human is expensive but
    fixes the task; asking the user to pick among a few labels is a small nuisance.

    Parameters
    ----------
    wrong_answer : float, default=10.0
        An incorrect label delivered automatically (answer or fallback).
    clarify : float, default=1.0
        Asking the user to choose among a prediction set.
    failed_clarification : float, default=5.0
        Extra cost when the set did not contain the right label.
    fallback : float, default=0.5
        Running the deterministic fallback (on top of ``wrong_answer`` when it is wrong).
    escalate : float, default=3.0
        A human handles the input.
    abstain : float, default=5.0
        The system says it is not sure; the user's task is not completed.

    Examples
    --------
    >>> OutcomeCosts(escalate=2.0).escalate
    2.0
    """

    wrong_answer: float = 10.0
    clarify: float = 1.0
    failed_clarification: float = 5.0
    fallback: float = 0.5
    escalate: float = 3.0
    abstain: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"OutcomeCosts.{f.name} must be a number; got {value!r}.")
            if not math.isfinite(value) or value < 0:
                raise InputError(
                    f"OutcomeCosts.{f.name} must be a finite number ≥ 0; got {value!r}."
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary of the costs."""
        return asdict(self)
