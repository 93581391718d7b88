"""Field checks shared by the report's plain-data types, and their value semantics.

Each check raises :class:`~failwise.exceptions.InputError` naming the owner, the field,
what arrived and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = [
    "PlainData",
    "check_fraction",
    "check_text",
    "check_unit_range",
    "float_tuple",
]


def float_tuple(value: Any, owner: str, field: str) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or value is None:
        raise InputError(
            f"{owner}: `{field}` must be a sequence of numbers; got {describe(value)}. "
            "Pass a list or a 1-D NumPy array."
        )
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{owner}: `{field}` must be a sequence of numbers; got {describe(value)}. "
            "Pass a list or a 1-D NumPy array of floats."
        ) from None
    if array.ndim != 1:
        raise InputError(
            f"{owner}: `{field}` must be 1-D; got shape {array.shape}. Pass one value per bin "
            "or per point."
        )
    if array.size == 0:
        raise InputError(f"{owner}: `{field}` is empty; at least one value is needed.")
    return tuple(array.tolist())


def check_unit_range(
    values: NDArray[np.float64], owner: str, field: str, *, allow_nan: bool
) -> None:
    bad_nan = np.isnan(values)
    if bad_nan.any() and not allow_nan:
        raise InputError(
            f"{owner}: `{field}` contains NaN at position {int(np.flatnonzero(bad_nan)[0])}; "
            "a value in [0, 1] is needed there."
        )
    finite = values[~bad_nan]
    if finite.size and (not np.isfinite(finite).all() or finite.min() < 0 or finite.max() > 1):
        raise InputError(
            f"{owner}: `{field}` must lie in [0, 1]; got values from {float(finite.min()):.4g} "
            f"to {float(finite.max()):.4g}. Pass fractions (0.873), not percentages (87.3)."
        )


def check_fraction(value: Any, owner: str, field: str, *, allow_nan: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{owner}: `{field}` must be a number in [0, 1]; got {describe(value)}.")
    number = float(value)
    if math.isnan(number) and allow_nan:
        return number
    if not 0.0 <= number <= 1.0:
        raise InputError(
            f"{owner}: `{field}` must be a number in [0, 1]; got {number!r}. Pass fractions "
            "(0.873), not percentages (87.3)."
        )
    return number


def check_text(value: Any, owner: str, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"{owner}: `{field}` must be a string; got {describe(value)}.")
    if not allow_empty and not value.strip():
        raise InputError(f"{owner}: `{field}` is empty; give it a short, readable text.")
    return value


def _canonical(value: Any) -> Any:
    """A hashable stand-in for a field value in which every NaN reads as None."""
    if isinstance(value, PlainData):
        return value._key()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, Mapping):
        return tuple((k, _canonical(v)) for k, v in value.items())
    return value


class PlainData:
    """Value semantics for frozen dataclasses whose fields may hold NaN.

    ``float("nan") != float("nan")``, so the generated ``__eq__`` would call a
    copy of a diagram with an empty bin different from the original; here two
    instances are equal when their fields are, NaN matching NaN.
    """

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        values = (getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]
        return (type(self).__name__, *(_canonical(v) for v in values))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlainData) or type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())
