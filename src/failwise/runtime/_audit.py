"""Audit sampling: a random share of confident answers also goes to human review.

Silent failures (wrong answers nobody corrects) are invisible online unless someone looks.
The guard draws a Bernoulli(``rate``) for every ``answer`` decision; the sampled ones are
queued as ``audit`` items, which reviewers label without blocking the user. The audited
share is an unbiased sample of confident answers, so the wrong ones among them estimate the
silent-failure rate with a binomial confidence interval.
"""

from __future__ import annotations

import random
import threading
from numbers import Integral, Real
from typing import Any

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["AuditSampler", "audit_reason"]


def _check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, Real) or not 0.0 <= float(rate) <= 1.0:
        raise InputError(
            f"`audit_rate` must be a number in [0, 1] (the share of confident answers sent "
            f"to human review, e.g. 0.02); got {describe(rate)}."
        )
    return float(rate)


class AuditSampler:
    """Thread-safe Bernoulli draws for audit sampling.

    Parameters
    ----------
    rate : float in [0, 1]
        Probability that one answer is audited.
    random_state : int, numpy.random.Generator or None
        Seed of the draws; an int makes the sequence of draws reproducible.

    Examples
    --------
    >>> from failwise.runtime import AuditSampler
    >>> sampler = AuditSampler(0.25, random_state=0)
    >>> draws = [sampler.draw() for _ in range(10_000)]
    >>> round(sum(draws) / len(draws), 2)
    0.25
    """

    def __init__(self, rate: float, random_state: int | np.random.Generator | None = None) -> None:
        self.rate = _check_rate(rate)
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

    def draw(self) -> bool:
        """One draw: True with probability ``rate``."""
        if self.rate <= 0.0:
            return False
        if self.rate >= 1.0:
            return True
        with self._lock:
            if self._generator is not None:
                return bool(self._generator.random() < self.rate)
            return self._random.random() < self.rate


def audit_reason(rate: float, confidence: float) -> str:
    """The reason an audit item carries in the review queue."""
    return (
        f"audit: a random {rate:.3g} share of confident answers is reviewed; this answer had "
        f"confidence {confidence:.3f}"
    )
