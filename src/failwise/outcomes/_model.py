"""`OutcomeModel`: the stated assumptions that turn an evaluation set into product metrics.

Every assumption has a default and a one-line reason, and is printed next to every projection
it produced, so a reader can disagree with a number and change it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from failwise.exceptions import InputError

__all__ = ["Assumption", "OutcomeModel"]


def _assumption(default: float, unit: str, reason: str) -> Any:
    return field(default=default, metadata={"unit": unit, "reason": reason})


@dataclass(frozen=True)
class Assumption:
    """One assumption of an outcome model, as printed beside a projection."""

    name: str
    value: float
    unit: str
    reason: str

    def formatted(self) -> str:
        """The value with its unit, for display."""
        if self.unit == "probability":
            return f"{self.value:.0%}"
        if self.unit == "s":
            return _format_seconds(self.value)
        return f"{self.value:g} {self.unit}".strip()


def _format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


@dataclass(frozen=True)
class OutcomeModel:
    """Assumptions about users, humans and latencies behind projected product metrics.

    Defaults describe a text assistant with a support team behind it; change any of them with
    ``OutcomeModel(human_accuracy=0.99)`` or ``model.replace(...)``. ``assumptions()`` lists
    them with their reasons.

    Parameters
    ----------
    answer_latency_s : float, default=1.0
        Time to deliver an automatic answer.
    user_notices_wrong_answer : float, default=0.5
        Probability that a user notices that an automatic answer is wrong.
    time_to_notice_s : float, default=60.0
        Time a user spends before noticing a wrong answer.
    user_escalates_after_noticing : float, default=0.7
        Probability that a user who noticed a wrong answer asks for a human (else gives up).
    clarify_latency_s : float, default=10.0
        Time for a user to read a short list of options and pick one.
    user_picks_right_label : float, default=0.95
        Probability that a user picks the right label when it is among the options.
    user_flags_none_of_these : float, default=0.8
        Probability that a user says "none of these" (and is escalated) when the right label is
        not offered; otherwise the user picks a wrong option.
    fallback_latency_s : float, default=1.0
        Time for the deterministic fallback to respond.
    human_accuracy : float, default=0.97
        Probability that a human reviewer resolves an escalated task correctly.
    human_response_median_s : float, default=900.0
        Median time from escalation to a human's resolution.
    human_response_p90_s : float, default=3600.0
        90th percentile of that time (response times are log-normal).
    human_handling_s : float, default=120.0
        Reviewer working time per escalated task (for human hours and capacity).
    reviewers : float, default=2.0
        Reviewers on duty.
    tasks_per_hour : float, default=200.0
        Incoming tasks per hour (with ``reviewers`` and ``human_handling_s``, sets how much of
        the escalated work humans can absorb).
    abstain_latency_s : float, default=1.0
        Time to tell the user that the system is not sure.
    deadline_s : float, default=14400.0
        A task counts as completed only if the correct output arrives within this time.

    Examples
    --------
    >>> model = OutcomeModel(human_accuracy=0.99)
    >>> [a.name for a in model.assumptions()][:2]
    ['answer_latency_s', 'user_notices_wrong_answer']
    """

    answer_latency_s: float = _assumption(1.0, "s", "model inference plus rendering in a chat UI")
    user_notices_wrong_answer: float = _assumption(
        0.5,
        "probability",
        "users catch about half of wrong intents; confident wording hides the rest",
    )
    time_to_notice_s: float = _assumption(
        60.0, "s", "a user reads the answer and tries to act on it before noticing"
    )
    user_escalates_after_noticing: float = _assumption(
        0.7, "probability", "most users who notice a wrong answer ask for a person; some give up"
    )
    clarify_latency_s: float = _assumption(
        10.0, "s", "reading two or three options and tapping one"
    )
    user_picks_right_label: float = _assumption(
        0.95, "probability", "users know what they meant when shown it"
    )
    user_flags_none_of_these: float = _assumption(
        0.8, "probability", "when their intent is not listed most users say so"
    )
    fallback_latency_s: float = _assumption(1.0, "s", "rules and lookups are as fast as the model")
    human_accuracy: float = _assumption(
        0.97, "probability", "trained reviewers with the full conversation rarely err"
    )
    human_response_median_s: float = _assumption(
        900.0, "s", "a staffed queue answers within a quarter of an hour"
    )
    human_response_p90_s: float = _assumption(
        3600.0, "s", "queues have a long tail at shift changes and peaks"
    )
    human_handling_s: float = _assumption(
        120.0, "s", "reading the request and choosing the right label"
    )
    reviewers: float = _assumption(2.0, "people", "a small support team on shift")
    tasks_per_hour: float = _assumption(200.0, "tasks/h", "traffic of a mid-sized assistant")
    abstain_latency_s: float = _assumption(1.0, "s", "an honest 'not sure' is immediate")
    deadline_s: float = _assumption(
        14400.0, "s", "a correct output after four hours no longer completes the task"
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"OutcomeModel.{f.name} must be a number; got {value!r}.")
            if not math.isfinite(value) or value < 0:
                raise InputError(f"OutcomeModel.{f.name} must be finite and ≥ 0; got {value!r}.")
            if f.metadata["unit"] == "probability" and value > 1:
                raise InputError(
                    f"OutcomeModel.{f.name} is a probability and must lie in [0, 1]; got {value!r}."
                )
        if self.human_response_p90_s < self.human_response_median_s:
            raise InputError(
                "OutcomeModel.human_response_p90_s must be ≥ human_response_median_s; got "
                f"{self.human_response_p90_s!r} < {self.human_response_median_s!r}."
            )
        if self.reviewers <= 0 or self.tasks_per_hour <= 0:
            raise InputError(
                "OutcomeModel.reviewers and tasks_per_hour must be > 0; got "
                f"{self.reviewers!r} and {self.tasks_per_hour!r}."
            )

    def assumptions(self) -> list[Assumption]:
        """Every assumption with its value, unit and reason, in declaration order."""
        return [
            Assumption(
                f.name, float(getattr(self, f.name)), f.metadata["unit"], f.metadata["reason"]
            )
            for f in fields(self)
        ]

    def replace(self, **changes: float) -> OutcomeModel:
        """A copy with some assumptions changed."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(
                f"Unknown OutcomeModel assumption(s) {sorted(unknown)}; known: "
                f"{[f.name for f in fields(self)]}."
            )
        return replace(self, **changes)

    def human_capacity_share(self, escalation_rate: float) -> float:
        """Share of escalations humans can absorb at this escalation rate (1 = all of them)."""
        load = self.tasks_per_hour * escalation_rate * self.human_handling_s
        capacity = self.reviewers * 3600.0
        return 1.0 if load <= capacity else capacity / load

    def to_dict(self) -> dict[str, float]:
        """Plain dictionary of the assumptions."""
        return {k: float(v) for k, v in asdict(self).items()}
