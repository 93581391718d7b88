"""Audit sampling: a random share of every non-escalated action also goes to human review.

Silent failures (wrong answers nobody corrects, wrong fallbacks, needless abstentions) are
invisible online unless someone looks. The guard draws a Bernoulli(rate of its action) for
every answer, clarify, fallback and abstain decision; the sampled ones are queued as
``audit`` items, which reviewers label without blocking the user. Escalations are always
reviewed. Each decision records its inclusion probability (``review_probability``), so the
labels gathered are a sample with known weights: the wrong ones among them estimate each
action's error rate without bias (weighted by ``1 / review_probability``).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, Final

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["AuditSampler", "audit_reason"]


#: The actions audit sampling applies to (escalations are always reviewed).
AUDITED_ACTIONS: Final = ("answer", "clarify", "fallback", "abstain")


def _is_rate(rate: Any) -> bool:
    return (
        not isinstance(rate, bool)
        and isinstance(rate, Real)
        and math.isfinite(float(rate))
        and 0.0 <= float(rate) <= 1.0
    )


def check_audit_rates(rate: Any) -> dict[str, float]:
    """The audit rate per action from a number or a mapping action -> rate (checked)."""
    if isinstance(rate, Mapping):
        unknown = [k for k in rate if k not in AUDITED_ACTIONS]
        if unknown:
            hint = (
                " Escalations are always reviewed (review probability 1), so they take no "
                "audit rate."
                if "escalate" in unknown
                else ""
            )
            raise InputError(
                f"`audit_rate` names unknown action(s) {unknown}; expected keys among "
                f"{list(AUDITED_ACTIONS)}.{hint}"
            )
        bad = {k: v for k, v in rate.items() if not _is_rate(v)}
        if bad:
            key, value = next(iter(bad.items()))
            raise InputError(
                f"`audit_rate[{key!r}]` must be a number in [0, 1] (the share of {key} "
                f"decisions sent to human review, e.g. 0.02); got {describe(value)}."
            )
        return {a: float(rate.get(a, 0.0)) for a in AUDITED_ACTIONS}
    if not _is_rate(rate):
        raise InputError(
            f"`audit_rate` must be a number in [0, 1] (the share of non-escalated decisions "
            f"sent to human review, e.g. 0.02) or a mapping action -> rate such as "
            f"{{'answer': 0.02, 'fallback': 0.1}}; got {describe(rate)}."
        )
    return dict.fromkeys(AUDITED_ACTIONS, float(rate))


class AuditSampler:
    """Thread-safe Bernoulli draws for audit sampling.

    Parameters
    ----------
    rate : float in [0, 1] or mapping of action name to float
        Probability that one decision is audited: the same for every non-escalated action
        (answer, clarify, fallback, abstain), or per action (missing actions: 0).
    random_state : int, numpy.random.Generator or None
        Seed of the draws; an int makes the sequence of draws reproducible.

    Examples
    --------
    >>> from failwise.runtime import AuditSampler
    >>> sampler = AuditSampler(0.25, random_state=0)
    >>> draws = [sampler.draw() for _ in range(10_000)]
    >>> round(sum(draws) / len(draws), 2)
    0.25
    >>> AuditSampler({"fallback": 0.5}).rate_for("answer")
    0.0
    """

    def __init__(
        self,
        rate: float | Mapping[str, float],
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.rates = check_audit_rates(rate)
        #: The answer rate (the only rate before per-action auditing).
        self.rate = self.rates["answer"]
        self._lock = threading.Lock()
        self._generator: np.random.Generator | None = None
        if isinstance(random_state, np.random.Generator):
            self._generator = random_state
            self._random = random.Random()
        elif random_state is None or (
            isinstance(random_state, Integral)
            and not isinstance(random_state, bool)
            and int(random_state) >= 0
        ):
            self._random = random.Random(None if random_state is None else int(random_state))
        else:
            raise InputError(
                f"`random_state` must be None, an int >= 0 or a numpy.random.Generator; got "
                f"{describe(random_state)}."
            )

    @property
    def enabled(self) -> bool:
        """Whether any action is audited."""
        return any(r > 0.0 for r in self.rates.values())

    def rate_for(self, action: str) -> float:
        """The audit rate of ``action`` (0.0 for escalate, which is always reviewed)."""
        return self.rates.get(action, 0.0)

    def draw(self, action: str = "answer") -> bool:
        """One draw for a decision of ``action``: True with that action's rate."""
        rate = self.rates.get(action, 0.0)
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._lock:
            if self._generator is not None:
                return bool(self._generator.random() < rate)
            return self._random.random() < rate


def audit_reason(rate: float, confidence: float, action: str = "answer") -> str:
    """The reason an audit item carries in the review queue."""
    return (
        f"audit: a random {rate:.3g} share of {action} decisions is reviewed; this one had "
        f"confidence {confidence:.3f}"
    )
