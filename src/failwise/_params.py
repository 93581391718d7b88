"""The one parameter-validation path: constraint types and the checks that use them.

Each estimator declares ``_parameter_constraints``, mapping a constructor argument to the
constraints it may satisfy; :func:`validate_params` checks them at the top of ``fit``
(``__init__`` only stores arguments, as in scikit-learn). Functions check a keyword
argument with :func:`check_param`. A value is valid when any of its constraints accepts it;
a constraint is

- ``None`` — the value None;
- a type — ``isinstance`` (``bool`` also accepts ``numpy.bool_``);
- :class:`Interval` and its named forms :class:`Probability`, :class:`Count` and
  :class:`Seconds` — a finite number in a range: NaN and infinities of every float type
  (Python, ``numpy.float16`` … ``numpy.float64``) are refused, NumPy integers are accepted,
  booleans are not numbers;
- :class:`Options` — one of a fixed set of values;
- :class:`Constraint` — any other predicate with the phrase that describes it.

Every error names the parameter, the value received (with its type), what was expected
and how to fix it.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from numbers import Integral, Real
from typing import Any, Final

import numpy as np

from failwise.exceptions import InputError

__all__ = [
    "Constraint",
    "Count",
    "Interval",
    "Options",
    "Probability",
    "Seconds",
    "check_param",
    "describe_value",
    "validate_params",
]

_CLOSED: Final = ("both", "left", "right", "neither")
#: Marks a parameter without a default value.
_NO_DEFAULT: Final = inspect.Parameter.empty


def describe_value(value: Any) -> str:
    """``repr`` of a received value with its type where the repr hides it (NumPy scalars)."""
    kind = type(value)
    numpy_scalar = isinstance(value, np.generic)
    text = repr(value.item() if numpy_scalar else value)
    if len(text) > 80:
        text = text[:77] + "..."
    if numpy_scalar:
        return f"{text} (numpy.{kind.__name__})"
    if value is None or kind in (int, float, str, bool):
        return text
    return f"{text} ({kind.__name__})"


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _format_number(value: float) -> str:
    return f"{value:g}"


class Interval:
    """A finite number in a range.

    Parameters
    ----------
    kind : type
        :class:`numbers.Integral` (Python and NumPy integers) or :class:`numbers.Real`
        (any real number, integers included).
    low, high : float or None
        Bounds; None means unbounded on that side.
    closed : {"both", "left", "right", "neither"}, default="both"
        Which bounds belong to the interval.

    Examples
    --------
    >>> import numpy as np
    >>> from numbers import Real
    >>> unit = Interval(Real, 0, 1, closed="neither")
    >>> unit.accepts(0.5), unit.accepts(np.float32("nan")), unit.accepts(1.0)
    (True, False, False)
    >>> str(unit)
    'a number in (0, 1)'
    """

    __slots__ = ("closed", "high", "kind", "low")

    kind: type
    low: float | None
    high: float | None
    closed: str

    def __init__(
        self,
        kind: type,
        low: float | None = None,
        high: float | None = None,
        closed: str = "both",
    ) -> None:
        if kind not in (Integral, Real):
            raise TypeError(f"Interval kind must be numbers.Integral or numbers.Real; got {kind}.")
        if closed not in _CLOSED:
            raise TypeError(f"Interval closed must be one of {_CLOSED}; got {closed!r}.")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "closed", closed)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def _key(self) -> tuple[Any, ...]:
        return (self.kind, self.low, self.high, self.closed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.kind.__name__}, {self.low!r}, {self.high!r}, "
            f"closed={self.closed!r})"
        )

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a finite number of the right kind inside the range."""
        if _is_bool(value) or not isinstance(value, self.kind):
            return False
        raw: Any = value
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):
            return False
        if not math.isfinite(number):
            return False
        if self.low is not None:
            if self.closed in ("both", "left") and number < self.low:
                return False
            if self.closed in ("right", "neither") and number <= self.low:
                return False
        if self.high is not None:
            if self.closed in ("both", "right") and number > self.high:
                return False
            if self.closed in ("left", "neither") and number >= self.high:
                return False
        return True

    def _noun(self) -> str:
        return "an int" if self.kind is Integral else "a number"

    def _range(self) -> str:
        low_in = self.closed in ("both", "left")
        high_in = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            left = "[" if low_in else "("
            right = "]" if high_in else ")"
            return f"in {left}{_format_number(self.low)}, {_format_number(self.high)}{right}"
        if self.low is not None:
            return f"{'>=' if low_in else '>'} {_format_number(self.low)}"
        if self.high is not None:
            return f"{'<=' if high_in else '<'} {_format_number(self.high)}"
        return "(finite)"

    def __str__(self) -> str:
        return f"{self._noun()} {self._range()}"

    def example(self) -> Any:
        """A value the interval accepts, for the "how to fix" part of a message."""
        low, high = self.low, self.high
        if self.kind is Integral:
            start = 0 if low is None else math.ceil(low)
            if low is not None and start == low and self.closed in ("right", "neither"):
                start += 1
            return start
        if low is not None and high is not None:
            return (low + high) / 2
        if low is not None:
            return low + 1.0
        if high is not None:
            return high - 1.0
        return 0.0

    def why_not(self, value: Any) -> str:
        """A short reason why ``value`` is refused ("" when there is nothing to add)."""
        if _is_bool(value):
            return "booleans are not numbers here"
        if isinstance(value, Real) and not isinstance(value, self.kind):
            return "a whole number is needed"
        if isinstance(value, Real):
            number = float(value)
            if math.isnan(number):
                return "NaN is not a valid value"
            if math.isinf(number):
                return "infinite values are not accepted"
        return ""


class Probability(Interval):
    """A probability: a finite number in [0, 1] (``closed`` says which ends belong).

    Examples
    --------
    >>> str(Probability(closed="neither"))
    'a probability in (0, 1)'
    """

    __slots__ = ()

    def __init__(self, closed: str = "both") -> None:
        super().__init__(Real, 0.0, 1.0, closed)

    def __repr__(self) -> str:
        return f"Probability(closed={self.closed!r})"

    def _noun(self) -> str:
        return "a probability"


class Count(Interval):
    """A whole number (Python or NumPy integer) >= ``low``, optionally <= ``high``.

    Examples
    --------
    >>> str(Count(1))
    'a whole number >= 1'
    """

    __slots__ = ()

    def __init__(self, low: int = 0, high: int | None = None) -> None:
        super().__init__(Integral, low, high, "both")

    def __repr__(self) -> str:
        return f"Count({self.low!r}, {self.high!r})"

    def _noun(self) -> str:
        return "a whole number"


class Seconds(Interval):
    """A finite duration in seconds: > 0, or >= 0 with ``allow_zero=True``.

    Examples
    --------
    >>> str(Seconds())
    'a finite number of seconds > 0'
    """

    __slots__ = ()

    def __init__(self, *, allow_zero: bool = False, high: float | None = None) -> None:
        super().__init__(Real, 0.0, high, "both" if allow_zero else "right")

    def __repr__(self) -> str:
        return f"Seconds(allow_zero={self.closed == 'both'}, high={self.high!r})"

    def _noun(self) -> str:
        return "a finite number of seconds"

    def example(self) -> Any:
        return 1.0 if self.high is None or self.high >= 1.0 else self.high


class Options:
    """A value from a fixed set (a string option also accepts ``numpy.str_``).

    Examples
    --------
    >>> Options(("lac", "aps")).accepts("lac"), str(Options(("lac", "aps")))
    (True, "one of 'lac', 'aps'")
    """

    __slots__ = ("values",)

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]) -> None:
        object.__setattr__(self, "values", tuple(values))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Options is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Options) and self.values == other.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"Options({self.values!r})"

    def accepts(self, value: Any) -> bool:
        for option in self.values:
            if value is option:
                return True
            if _is_bool(value) != _is_bool(option):
                continue
            try:
                if isinstance(value, type(option)) and bool(value == option):
                    return True
            except (TypeError, ValueError):
                continue
        return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def example(self) -> Any:
        return self.values[0] if self.values else None

    def why_not(self, value: Any) -> str:
        if isinstance(value, str):
            words = [v for v in self.values if isinstance(v, str)]
            close = difflib.get_close_matches(value, words, n=1)
            if close:
                return f"did you mean {close[0]!r}?"
        return ""


class Constraint:
    """Any other check: a predicate and the phrase that describes what it accepts.

    Examples
    --------
    >>> callable_ = Constraint(callable, "a callable")
    >>> callable_.accepts(print), str(callable_)
    (True, 'a callable')
    """

    __slots__ = ("description", "predicate")

    predicate: Callable[[Any], bool]
    description: str

    def __init__(self, predicate: Callable[[Any], bool], description: str) -> None:
        object.__setattr__(self, "predicate", predicate)
        object.__setattr__(self, "description", description)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Constraint is immutable")

    def __repr__(self) -> str:
        return f"Constraint({self.description!r})"

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.description


def _describe_constraint(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        article = "an" if constraint.__name__[:1].lower() in "aeiou" else "a"
        return f"{article} {constraint.__name__}"
    return str(constraint)


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint is bool:
        return _is_bool(value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return bool(constraint.accepts(value))


def _fix(
    name: str, allowed: list[Any], value: Any, where: str | None, default: Any = _NO_DEFAULT
) -> str:
    reasons = [r for c in allowed if (r := getattr(c, "why_not", lambda _v: "")(value))]
    examples = [c.example() for c in allowed if hasattr(c, "example")]
    if default is not _NO_DEFAULT and any(_accepts(c, default) for c in allowed):
        shown = f"{name}={default!r}"
    elif examples:
        shown = f"{name}={examples[0]!r}"
    elif None in allowed:
        shown = f"{name}=None"
    else:
        shown = ""
    call = f"{where}({shown})" if where else shown
    fix = f"Fix: pass e.g. `{call}`." if shown else f"Fix: pass {name} of the accepted kind."
    if not reasons:
        return fix
    reason = reasons[0][:1].upper() + reasons[0][1:]
    return f"{reason}{'' if reason.endswith('?') else '.'} {fix}"


def check_param(
    name: str,
    value: Any,
    allowed: Iterable[Any],
    *,
    where: str | None = None,
    default: Any = _NO_DEFAULT,
) -> Any:
    """Check one argument against its constraints and return it unchanged.

    Parameters
    ----------
    name : str
        The argument's name, as the caller wrote it.
    value : object
        The value received.
    allowed : iterable of constraints
        The value is valid when any of them accepts it (see the module docstring).
    where : str, optional
        The class or function the argument belongs to, named in the message.
    default : object, optional
        The argument's default, suggested as the fix when it is valid.

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    InputError
        Naming the argument, the value received and its type, every accepted form and a
        value that would work.

    Examples
    --------
    >>> check_param("confidence_level", 0.9, [Probability(closed="neither")])
    0.9
    >>> check_param("level", float("nan"), [Probability()])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    failwise.exceptions.InputError: `level` must be a probability in [0, 1]; got nan. NaN ...
    """
    constraints = list(allowed)
    if any(_accepts(c, value) for c in constraints):
        return value
    accepted = " or ".join(_describe_constraint(c) for c in constraints)
    prefix = f"{where}: " if where else ""
    raise InputError(
        f"{prefix}`{name}` must be {accepted}; got {describe_value(value)}. "
        + _fix(name, constraints, value, where, default)
    )


def validate_params(
    owner: object,
    constraints: Mapping[str, Iterable[Any]],
    params: Mapping[str, Any] | None = None,
) -> None:
    """Check every parameter of ``owner`` against its constraints.

    Parameters
    ----------
    owner : object or str
        The estimator, whose attributes are read unless ``params`` is given; or the name
        of the function whose arguments ``params`` holds.
    constraints : mapping of str to iterable of constraints
        A parameter is valid when any of its constraints accepts it.
    params : mapping, optional
        Values to check instead of the attributes of ``owner``.

    Raises
    ------
    InputError
        Naming the owner, the parameter, the value received and every accepted form.

    Examples
    --------
    >>> class Knob:
    ...     def __init__(self, level=0.5):
    ...         self.level = level
    >>> validate_params(Knob(2.0), {"level": [Probability()]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    failwise.exceptions.InputError: Knob: `level` must be a probability in [0, 1]; got 2.0. ...
    """
    where = owner if isinstance(owner, str) else type(owner).__name__
    defaults = {} if isinstance(owner, str) else _defaults(type(owner))
    for param, allowed in constraints.items():
        value = params[param] if params is not None else getattr(owner, param)
        check_param(param, value, allowed, where=where, default=defaults.get(param, _NO_DEFAULT))


def _defaults(cls: type) -> dict[str, Any]:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return {}
    return {name: p.default for name, p in signature.parameters.items()}
