"""Declarative parameter validation: one constraint table per class.

Each estimator declares ``_parameter_constraints`` mapping a constructor
argument to the constraints it must satisfy; :func:`validate_params` checks them
at ``fit`` time (``__init__`` only stores arguments, as in scikit-learn).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from failwise.exceptions import InputError

__all__ = ["Constraint", "Interval", "Options", "validate_params"]


@dataclass(frozen=True)
class Interval:
    """A numeric range. ``closed`` is one of "both", "left", "right", "neither"."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is Integral and not isinstance(value, Integral):
            return False
        if self.kind is Real and not isinstance(value, Real):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None:
            if self.closed in ("both", "left") and value < self.low:
                return False
            if self.closed in ("right", "neither") and value <= self.low:
                return False
        if self.high is not None:
            if self.closed in ("both", "right") and value > self.high:
                return False
            if self.closed in ("left", "neither") and value >= self.high:
                return False
        return True

    def __str__(self) -> str:
        kind = "an int" if self.kind is Integral else "a number"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{kind} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options:
    """A value from a fixed set."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Constraint:
    """Any other check: a predicate and the phrase that describes it."""

    predicate: Callable[[Any], bool]
    description: str

    def accepts(self, value: Any) -> bool:
        return bool(self.predicate(value))

    def __str__(self) -> str:
        return self.description


def _describe_constraint(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return bool(constraint.accepts(value))


def validate_params(
    owner: object,
    constraints: Mapping[str, Iterable[Any]],
    params: Mapping[str, Any] | None = None,
) -> None:
    """Check every parameter against its constraints.

    Parameters
    ----------
    owner : object
        The estimator; its attributes are read unless ``params`` is given.
    constraints : mapping of str to iterable of constraints
        A parameter is valid when any of its constraints accepts it. A
        constraint is ``None`` (the value None), a type (``isinstance``), an
        :class:`Interval`, an :class:`Options` or a :class:`Constraint`.
    params : mapping, optional
        Values to check instead of the attributes of ``owner``.

    Raises
    ------
    InputError
        Naming the parameter, the value received and every accepted form.
    """
    name = type(owner).__name__
    for param, allowed in constraints.items():
        value = params[param] if params is not None else getattr(owner, param)
        allowed = list(allowed)
        if any(_accepts(c, value) for c in allowed):
            continue
        accepted = " or ".join(_describe_constraint(c) for c in allowed)
        raise InputError(
            f"{name}: `{param}` must be {accepted}; got {value!r}. "
            f"Fix the argument passed to {name}(...)."
        )
