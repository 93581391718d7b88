"""Binomial bounds and p-values: properties, agreement with SciPy, coverage by simulation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from failwise._stats import (
    binomial_cdf,
    binomial_p_value,
    binomial_sf,
    clopper_pearson_interval,
    clopper_pearson_lower,
    clopper_pearson_upper,
    hoeffding_bentkus_p_value,
    hoeffding_bentkus_upper,
    hoeffding_p_value,
    normal_quantile,
    wilson_interval,
    wilson_lower,
    wilson_upper,
)
from failwise.exceptions import InputError


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=5_000))
    k = draw(st.integers(min_value=0, max_value=n))
    return k, n


levels = st.floats(min_value=0.5, max_value=0.999)
rates = st.floats(min_value=1e-4, max_value=1 - 1e-4)

INTERVALS = [clopper_pearson_interval, wilson_interval]
LOWERS = [clopper_pearson_lower, wilson_lower]
UPPERS = [clopper_pearson_upper, wilson_upper, hoeffding_bentkus_upper]


@pytest.mark.parametrize("interval", INTERVALS)
@given(kn=counts(), level=levels)
def test_two_sided_intervals_hold_the_observed_rate_inside_the_unit_interval(
    interval: Any, kn: Any, level: Any
) -> None:
    k, n = kn
    low, high = interval(k, n, level)
    assert 0.0 <= float(low) <= k / n <= float(high) <= 1.0


@pytest.mark.parametrize("lower", LOWERS)
@given(kn=counts(), level=levels)
def test_lower_bounds_never_exceed_the_observed_rate(lower: Any, kn: Any, level: Any) -> None:
    k, n = kn
    assert 0.0 <= float(lower(k, n, level)) <= k / n


@pytest.mark.parametrize("upper", UPPERS)
@given(kn=counts(), level=levels)
def test_upper_bounds_never_fall_below_the_observed_rate(upper: Any, kn: Any, level: Any) -> None:
    k, n = kn
    assert k / n <= float(upper(k, n, level)) + 1e-12 <= 1.0 + 1e-12


@pytest.mark.parametrize("bound", [*LOWERS, *UPPERS])
@given(n=st.integers(min_value=1, max_value=2_000), level=levels)
def test_bounds_grow_with_the_number_of_successes(bound: Any, n: Any, level: Any) -> None:
    values = bound(np.arange(n + 1), n, level)
    assert np.all(np.diff(values) >= -1e-12)


@pytest.mark.parametrize("bound", [clopper_pearson_upper, wilson_upper, hoeffding_bentkus_upper])
@given(kn=counts(), level=st.floats(min_value=0.5, max_value=0.99))
def test_a_higher_confidence_level_widens_an_upper_bound(bound: Any, kn: Any, level: Any) -> None:
    k, n = kn
    assert float(bound(k, n, level)) <= float(bound(k, n, level + 0.005)) + 1e-12


@given(kn=counts(), level=levels)
def test_clopper_pearson_matches_beta_quantiles(kn: Any, level: Any) -> None:
    k, n = kn
    expected_low = stats.beta.ppf(1 - level, k, n - k + 1) if k > 0 else 0.0
    expected_high = stats.beta.ppf(level, k + 1, n - k) if k < n else 1.0
    assert float(clopper_pearson_lower(k, n, level)) == pytest.approx(expected_low, abs=1e-10)
    assert float(clopper_pearson_upper(k, n, level)) == pytest.approx(expected_high, abs=1e-10)


@given(kn=counts(), level=st.floats(min_value=0.5, max_value=0.99))
def test_two_sided_clopper_pearson_matches_scipy_binomtest(kn: Any, level: Any) -> None:
    k, n = kn
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    low, high = clopper_pearson_interval(k, n, level)
    assert float(low) == pytest.approx(expected.low, abs=1e-9)
    assert float(high) == pytest.approx(expected.high, abs=1e-9)


@given(kn=counts(), level=st.floats(min_value=0.5, max_value=0.99))
def test_wilson_matches_scipy_binomtest(kn: Any, level: Any) -> None:
    k, n = kn
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    low, high = wilson_interval(k, n, level)
    assert float(low) == pytest.approx(expected.low, abs=1e-9)
    assert float(high) == pytest.approx(expected.high, abs=1e-9)


@given(kn=counts(), rate=rates)
def test_binomial_p_value_matches_scipy_binomtest(kn: Any, rate: Any) -> None:
    k, n = kn
    expected = stats.binomtest(k, n, rate, alternative="less").pvalue
    assert float(binomial_p_value(k, n, rate)) == pytest.approx(expected, rel=1e-7, abs=1e-300)
    assert float(binomial_cdf(k, n, rate)) == pytest.approx(expected, rel=1e-7, abs=1e-300)


@given(kn=counts(), rate=rates)
def test_binomial_sf_matches_scipy(kn: Any, rate: Any) -> None:
    k, n = kn
    expected = stats.binom.sf(k - 1, n, rate)
    assert float(binomial_sf(k, n, rate)) == pytest.approx(expected, rel=1e-7, abs=1e-300)


@given(kn=counts(), rate=rates, level=levels)
def test_the_upper_bound_is_where_the_p_value_crosses_the_level(
    kn: Any, rate: Any, level: Any
) -> None:
    # A rate at or above the bound is rejected at 1 - level; below it, not.
    k, n = kn
    for upper, p_value in (
        (clopper_pearson_upper, binomial_p_value),
        (hoeffding_bentkus_upper, hoeffding_bentkus_p_value),
    ):
        bound = float(upper(k, n, level))
        if bound < 1.0 and abs(rate - bound) > 1e-6:
            rejected = float(p_value(k, n, rate)) <= 1 - level
            assert rejected == (rate > bound)


@given(kn=counts(), rate=rates)
def test_hoeffding_bentkus_is_at_least_as_conservative_as_the_exact_p_value(
    kn: Any, rate: Any
) -> None:
    k, n = kn
    exact = float(binomial_p_value(k, n, rate))
    assert exact <= float(hoeffding_bentkus_p_value(k, n, rate)) + 1e-12
    assert float(hoeffding_bentkus_p_value(k, n, rate)) <= float(hoeffding_p_value(k, n, rate))


def test_no_trials_means_no_evidence() -> None:
    assert [float(v) for v in clopper_pearson_interval(0, 0)] == [0.0, 1.0]
    assert [float(v) for v in wilson_interval(0, 0)] == [0.0, 1.0]
    assert float(binomial_p_value(0, 0, 0.1)) == 1.0
    assert float(hoeffding_bentkus_p_value(0, 0, 0.1)) == 1.0
    assert float(hoeffding_bentkus_upper(0, 0)) == 1.0


def test_functions_are_vectorised_and_broadcast() -> None:
    low, high = clopper_pearson_interval([0, 5, 10], 10, 0.9)
    assert low.shape == high.shape == (3,)
    assert wilson_lower(np.arange(4), np.full((2, 4), 10)).shape == (2, 4)


def test_wilson_accepts_fractional_counts() -> None:
    low, high = wilson_interval(2.5, 10.0, 0.95)
    assert 0.0 < float(low) < 0.25 < float(high) < 1.0


@pytest.mark.parametrize("level", [0.0, 1.0, float("nan"), np.float32("nan"), np.float16(2.0)])
def test_a_confidence_level_outside_the_open_unit_interval_is_refused(level: Any) -> None:
    with pytest.raises(InputError, match=r"`confidence_level` must be a number in \(0, 1\)"):
        clopper_pearson_upper(1, 10, level)


@pytest.mark.parametrize(
    ("successes", "trials", "match"),
    [
        (11, 10, "must lie between 0 and `trials`"),
        (-1, 10, "must lie between 0 and `trials`"),
        (float("nan"), 10, "NaN or infinite"),
        ("3", 10, "finite non-negative counts"),
    ],
)
def test_impossible_counts_are_named(successes: Any, trials: Any, match: Any) -> None:
    with pytest.raises(InputError, match=match):
        wilson_interval(successes, trials)


def test_normal_quantile_is_the_standard_normal_inverse() -> None:
    assert normal_quantile(0.95) == pytest.approx(stats.norm.ppf(0.95), rel=1e-12)


@pytest.mark.parametrize("interval", INTERVALS)
def test_two_sided_intervals_cover_the_true_rate_by_simulation(interval: Any) -> None:
    # 2,000 binomial draws per rate; coverage at 0.9 must not fall far below it (Wilson is
    # approximate, so allow a few points; Clopper–Pearson is conservative).
    rng = np.random.default_rng(0)
    n = 60
    for rate in (0.05, 0.3, 0.5):
        k = rng.binomial(n, rate, size=2_000)
        low, high = interval(k, n, 0.9)
        coverage = float(np.mean((low <= rate) & (rate <= high)))
        assert coverage >= 0.86


def test_one_sided_clopper_pearson_upper_covers_by_simulation() -> None:
    rng = np.random.default_rng(1)
    n, rate = 200, 0.03
    k = rng.binomial(n, rate, size=4_000)
    assert float(np.mean(clopper_pearson_upper(k, n, 0.95) >= rate)) >= 0.95
