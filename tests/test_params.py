"""The constraint types of the one parameter-validation path."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from failwise._params import (
    Constraint,
    Count,
    Interval,
    Options,
    Probability,
    Seconds,
    check_param,
    validate_params,
)
from failwise.exceptions import InputError

FLOAT_TYPES = [float, np.float16, np.float32, np.float64]
INT_TYPES = [int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64]
CLOSED = ["both", "left", "right", "neither"]


def _inside(x: float, low: float, high: float, closed: str) -> bool:
    above = x >= low if closed in ("both", "left") else x > low
    below = x <= high if closed in ("both", "right") else x < high
    return above and below


@given(
    x=st.floats(allow_nan=False, allow_infinity=False, width=16),
    kind=st.sampled_from(FLOAT_TYPES),
    closed=st.sampled_from(CLOSED),
)
def test_a_real_interval_accepts_exactly_the_finite_values_inside_it(
    x: Any, kind: Any, closed: Any
) -> None:
    value = kind(x)
    interval = Interval(Real, -1.0, 1.0, closed=closed)
    assert interval.accepts(value) == _inside(float(value), -1.0, 1.0, closed)


@given(
    x=st.integers(min_value=0, max_value=127),
    kind=st.sampled_from(INT_TYPES),
    low=st.integers(min_value=0, max_value=100),
)
def test_integer_intervals_accept_numpy_integers(x: Any, kind: Any, low: Any) -> None:
    assert Count(low).accepts(kind(x)) == (x >= low)
    assert Interval(Real, low, None).accepts(kind(x)) == (x >= low)


@pytest.mark.parametrize("kind", FLOAT_TYPES)
@pytest.mark.parametrize("special", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "constraint",
    [
        Interval(Real, None, None),
        Interval(Real, 0, 1, closed="neither"),
        Probability(),
        Seconds(allow_zero=True),
    ],
)
def test_nan_and_infinities_of_every_float_type_are_refused(
    kind: Any, special: Any, constraint: Any
) -> None:
    assert not constraint.accepts(kind(special))


@given(x=st.floats(min_value=0.0, max_value=10.0))
def test_whole_floats_are_not_counts(x: Any) -> None:
    assert not Count(0).accepts(x)
    assert not Interval(Integral, 0, None).accepts(np.float64(x))


@pytest.mark.parametrize("flag", [True, False, np.True_, np.False_])
def test_booleans_are_not_numbers(flag: Any) -> None:
    assert not Interval(Real, None, None).accepts(flag)
    assert not Count(0).accepts(flag)


@pytest.mark.parametrize("flag", [True, np.False_])
def test_the_bool_type_accepts_numpy_booleans(flag: Any) -> None:
    assert check_param("escalate", flag, [bool]) is flag


@given(x=st.floats(min_value=-10, max_value=10, allow_nan=False))
def test_seconds_are_positive_unless_zero_is_allowed(x: Any) -> None:
    assert Seconds().accepts(x) == (x > 0)
    assert Seconds(allow_zero=True).accepts(x) == (x >= 0)


@given(value=st.one_of(st.text(max_size=5), st.integers(), st.none(), st.booleans()))
def test_options_accept_exactly_their_values(value: Any) -> None:
    options = Options(("lac", "aps", 3))
    assert options.accepts(value) == (
        value in ("lac", "aps") or (value == 3 and not isinstance(value, bool))
    )


def test_options_accept_numpy_strings() -> None:
    assert Options(("lac", "aps")).accepts(np.str_("lac"))


@given(
    x=st.floats(allow_nan=False, allow_infinity=False, width=16),
    kind=st.sampled_from(FLOAT_TYPES),
)
def test_every_refusal_names_the_parameter_the_value_and_a_fix(x: Any, kind: Any) -> None:
    value = kind(x)
    constraint = Probability(closed="neither")
    if constraint.accepts(value):
        assert check_param("target_risk", value, [constraint]) is value
        return
    with pytest.raises(InputError) as raised:
        check_param("target_risk", value, [None, constraint], where="Policy")
    message = str(raised.value)
    assert message.startswith("Policy: `target_risk` must be None or a probability in (0, 1)")
    assert "; got " in message
    assert "Fix: pass e.g. `Policy(target_risk=" in message


@pytest.mark.parametrize("kind", [np.float16, np.float32, np.float64, float])
def test_nan_is_named_in_the_message(kind: Any) -> None:
    with pytest.raises(InputError, match=r"got nan.*NaN is not a valid value"):
        check_param("level", kind("nan"), [Probability()])


def test_numpy_scalars_are_shown_with_their_type() -> None:
    with pytest.raises(InputError, match=r"got -1 \(numpy.int64\)"):
        check_param("n_bins", np.int64(-1), [Count(1)])


def test_a_misspelt_option_gets_a_suggestion() -> None:
    with pytest.raises(InputError, match=r"got 'lak'. Did you mean 'lac'\? Fix"):
        check_param("method", "lak", [Options(("lac", "aps"))])


class _Knob:
    def __init__(self, *, level: float = 0.25, mode: str = "fast") -> None:
        self.level = level
        self.mode = mode


def test_the_fix_suggests_the_default_when_it_is_valid() -> None:
    knob = _Knob(level=2.0)
    with pytest.raises(InputError, match=r"_Knob: `level` .* Fix: pass e.g. `_Knob\(level=0.25\)`"):
        validate_params(knob, {"level": [Probability()], "mode": [str]})


def test_a_function_owner_is_named_by_string() -> None:
    with pytest.raises(InputError, match=r"^tfidf: `C` must be a number > 0; got 0"):
        validate_params("tfidf", {"C": [Interval(Real, 0, None, closed="neither")]}, {"C": 0})


def test_a_custom_constraint_describes_itself() -> None:
    is_pair = Constraint(lambda v: isinstance(v, tuple) and len(v) == 2, "a pair")
    with pytest.raises(InputError, match="`span` must be a pair; got 3"):
        check_param("span", 3, [is_pair])


def test_constraint_types_describe_their_range() -> None:
    described: dict[str, Any] = {
        "an int >= 1": Interval(Integral, 1, None),
        "a number in (0, 1]": Interval(Real, 0, 1, closed="right"),
        "a number < 5": Interval(Real, None, 5, closed="left"),
        "a whole number in [2, 9]": Count(2, 9),
        "a finite number of seconds >= 0": Seconds(allow_zero=True),
    }
    for text, constraint in described.items():
        assert str(constraint) == text
