"""Circuit breaking with :mod:`pybreaker`, without serialising model calls.

``pybreaker.CircuitBreaker.call`` holds the breaker's lock for the whole call, so every
thread of a service would wait for every other thread's model call. The gate here calls the
model outside the lock and then reports the outcome through ``breaker.call`` (a call that
only returns the result or raises the error), so the breaker counts failures, opens after
``fail_max`` of them in a row and closes after a successful trial exactly as pybreaker
defines, while closed-state calls run concurrently. Only the trial call of an open breaker
whose reset time-out has passed runs inside ``breaker.call``: one trial at a time, as
pybreaker intends.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, Protocol, TypeVar

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["BreakerGate", "HasError", "circuit_breaker", "is_circuit_breaker"]


class HasError(Protocol):
    """An attempt's outcome: ``error`` is None on success."""

    @property
    def error(self) -> BaseException | None: ...


O = TypeVar("O", bound=HasError)  # noqa: E741 - short type variable name, as in typing docs


def _pybreaker() -> Any:
    try:
        return importlib.import_module("pybreaker")
    except ImportError:
        raise ImportError(
            "circuit breaking needs pybreaker, which is in the `runtime` extra: "
            "pip install 'failwise[runtime]' (or pip install pybreaker)."
        ) from None


def circuit_breaker(
    fail_max: int = 5, reset_timeout_s: float = 30.0, *, name: str | None = None
) -> Any:
    """A :class:`pybreaker.CircuitBreaker` for :class:`~failwise.Guard`.

    Parameters
    ----------
    fail_max : int, default=5
        Consecutive model failures (exceptions, time-outs, invalid scores) that open the
        breaker; while open, inputs go down the ladder without calling the model.
    reset_timeout_s : float, default=30.0
        Seconds the breaker stays open before letting one trial call through ("half-open");
        a successful trial closes it, a failed one opens it again.
    name : str, optional
        Name shown by pybreaker listeners.

    Returns
    -------
    pybreaker.CircuitBreaker

    Examples
    --------
    >>> from failwise.runtime import circuit_breaker
    >>> breaker = circuit_breaker(fail_max=3, reset_timeout_s=10)
    >>> breaker.fail_max, breaker.reset_timeout, breaker.current_state
    (3, 10.0, 'closed')
    """
    if isinstance(fail_max, bool) or not isinstance(fail_max, Integral) or fail_max < 1:
        raise InputError(f"`fail_max` must be an int >= 1; got {describe(fail_max)}.")
    if (
        isinstance(reset_timeout_s, bool)
        or not isinstance(reset_timeout_s, Real)
        or not math.isfinite(float(reset_timeout_s))
        or reset_timeout_s <= 0
    ):
        raise InputError(
            f"`reset_timeout_s` must be a positive number of seconds; got "
            f"{describe(reset_timeout_s)}."
        )
    return _pybreaker().CircuitBreaker(
        fail_max=int(fail_max), reset_timeout=float(reset_timeout_s), name=name
    )


def is_circuit_breaker(value: Any) -> bool:
    """Whether ``value`` behaves like a pybreaker breaker (``call`` and ``current_state``)."""
    return callable(getattr(value, "call", None)) and hasattr(value, "current_state")


def _replay(outcome: HasError) -> HasError:
    if outcome.error is not None:
        raise outcome.error
    return outcome


class BreakerGate:
    """Runs attempts under a pybreaker breaker; never raises.

    Parameters
    ----------
    breaker : pybreaker.CircuitBreaker
    """

    def __init__(self, breaker: Any) -> None:
        self.breaker = breaker
        self._open = _pybreaker().STATE_OPEN

    @property
    def is_open(self) -> bool:
        """Whether the breaker is open now (a trial may still be due)."""
        return bool(self.breaker.current_state == self._open)

    def describe_open(self) -> str:
        """Why the model was not called, for reason sentences."""
        breaker = self.breaker
        return (
            f"circuit breaker open after {breaker.fail_max} consecutive failures, model not "
            f"called (next trial within {float(breaker.reset_timeout):g} s)"
        )

    def run(self, attempt: Callable[[], O], when_open: Callable[[], O]) -> O:
        """Return ``attempt()``'s outcome, or ``when_open()`` while the breaker is open."""
        if not self.is_open:
            outcome = attempt()
            self.report(outcome)
            return outcome
        tried: list[O] = []

        def trial() -> O:
            tried.append(attempt())
            return _replay(tried[0])  # type: ignore[return-value]

        # Raises while still open, or when the trial failed and the breaker opened again.
        with contextlib.suppress(Exception):
            self.breaker.call(trial)
        return tried[0] if tried else when_open()

    def report(self, outcome: HasError) -> None:
        """Count a finished attempt (success or failure) in the breaker."""
        # Raises the failure itself, or the breaker's error when it trips on it.
        with contextlib.suppress(Exception):
            self.breaker.call(_replay, outcome)
