"""Out-of-scope scores for a guard: one scorer call per batch, under the guard's time limit.

:class:`ScorerCalls` calls the guard's out-of-scope scorer the way
:class:`~failwise.runtime._attempt.Attempts` calls the model. A batch-capable scorer — an
object with ``score(X)`` (:class:`~failwise._protocols.OutOfScopeScorer`, e.g. a fitted
:class:`~failwise.policy.KNNDistance`), a bound ``score`` / ``score_samples`` method, or a
callable declared with ``Guard(..., batch_ood=True)`` — is called ONCE per batch with the
list of inputs and returns one score per input; a plain callable ``x -> float`` is called
per input. With ``timeout_s`` the scorer runs in the guard's worker threads and is
abandoned when it overruns, like the model.

It never raises: every input gets ``(score, None)`` or ``(None, why)``. When a batch call
raises or returns the wrong number of scores, the rows are scored again one by one, so
that only the rows that fail lose their score; rows whose batch score is not finite are
retried on their own too. A batch that times out is not retried (that would wait again
per row): every row gets the time-out.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.runtime._attempt import short
from failwise.runtime._timeout import ModelThreads, call_within

__all__ = ["ScorerCalls"]

#: Bound methods that take a list of inputs and return one score per input.
_BATCH_METHODS: Final = frozenset({"score", "score_samples"})

#: ``(score, None)`` or ``(None, why the input has no score)``.
Signal = tuple[float | None, str | None]


class _ScorerTimeoutError(TimeoutError):
    """The scorer did not return within ``timeout_s``."""


def _callers(ood: Any, batch_ood: bool) -> tuple[Callable[[Any], Any] | None, Any]:
    """``(one, many)``: the per-input call, or None when the scorer takes batches."""
    score = getattr(ood, "score", None)
    if score is not None and callable(score) and not inspect.isfunction(ood):
        return None, score
    if not callable(ood):
        raise InputError(
            f"`ood` must be a callable x -> float (higher = more likely out of scope) or an "
            f"object with `.score`, such as a fitted KNNDistance; got {describe(ood)}."
        )
    if batch_ood or (inspect.ismethod(ood) and getattr(ood, "__name__", "") in _BATCH_METHODS):
        return None, ood
    return ood, None


class ScorerCalls:
    """Calls to a guard's out-of-scope scorer (see the module docstring).

    Parameters
    ----------
    ood : OutOfScopeScorer or callable
    timeout : float or None
        Longest wait for one scorer call, in seconds.
    threads : callable returning the guard's ModelThreads
    batch_ood : bool
        Whether a callable ``ood`` takes a list of inputs.
    """

    def __init__(
        self,
        ood: Any,
        *,
        timeout: float | None,
        threads: Callable[[], ModelThreads],
        batch_ood: bool,
    ) -> None:
        self._one, self._many = _callers(ood, batch_ood)
        self.timeout = timeout
        self._threads = threads

    @property
    def batched(self) -> bool:
        """Whether the scorer is called once per batch."""
        return self._many is not None

    def _call(self, xs: list[Any]) -> Any:
        if self._many is not None:
            return self._many(xs)
        return self._one(xs[0])  # type: ignore[misc]  # set whenever _many is None

    def _raw(self, xs: list[Any]) -> Any:
        return call_within(self._threads, self._call, xs, self.timeout, _ScorerTimeoutError)

    def one(self, x: Any) -> Signal:
        """The out-of-scope score of one input, or why there is none."""
        try:
            values = np.asarray(self._raw([x]), dtype=np.float64).reshape(-1)
        except _ScorerTimeoutError as exc:
            return None, str(exc)
        except Exception as exc:  # a failing scorer degrades the input
            return None, short(exc)
        if values.size != 1:
            return None, f"the scorer returned {values.size} values for one input"
        return self._finite(float(values[0]))

    @staticmethod
    def _finite(value: float) -> Signal:
        if not math.isfinite(value):
            return None, f"the scorer returned {value}"
        return value, None

    def many(self, xs: list[Any]) -> list[Signal]:
        """Scores for a batch: one scorer call if it takes batches (module docstring)."""
        if self._many is None or len(xs) <= 1:
            return [self.one(x) for x in xs]
        try:
            values = np.asarray(self._raw(xs), dtype=np.float64).reshape(-1)
        except _ScorerTimeoutError as exc:
            return [(None, str(exc))] * len(xs)
        except Exception:  # find the rows that fail, one by one
            return [self.one(x) for x in xs]
        if values.size != len(xs):
            return [self.one(x) for x in xs]
        out: list[Signal] = []
        for x, value in zip(xs, values.tolist(), strict=True):
            out.append((value, None) if math.isfinite(value) else self.one(x))
        return out
