"""Drift tests: nominal false-alarm rates on unchanged windows, power on changed ones."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.monitor import holm, ks_drift, mix_drift, mmd_drift

SIMULATIONS = 300
# Three standard errors of a Bernoulli(0.05) rate over SIMULATIONS draws.
SLACK = 3 * np.sqrt(0.05 * 0.95 / SIMULATIONS)


def test_ks_drift_false_alarm_rate_is_nominal_with_the_reference_resampled_each_time() -> None:
    rng = np.random.default_rng(0)
    alarms = sum(
        ks_drift(rng.beta(8, 1, 1500), rng.beta(8, 1, 500)).p_value < 0.05
        for _ in range(SIMULATIONS)
    )
    assert alarms / SIMULATIONS <= 0.05 + SLACK


def test_mix_drift_false_alarm_rate_is_nominal_with_many_sparse_classes() -> None:
    rng = np.random.default_rng(1)
    weights = rng.dirichlet(np.full(60, 0.3))  # many classes with a handful of rows each
    alarms = 0
    for _ in range(SIMULATIONS):
        reference = rng.choice(60, size=1500, p=weights)
        window = rng.choice(60, size=500, p=weights)
        alarms += mix_drift(reference, window).p_value < 0.05
    assert alarms / SIMULATIONS <= 0.05 + SLACK


def test_mix_drift_pools_sparse_categories_and_reports_them() -> None:
    reference = np.array([0] * 500 + [1] * 500 + [2] * 3 + [3] * 2)
    window = np.array([0] * 100 + [1] * 100 + [7])
    result = mix_drift(reference, window)
    assert set(result.detail["pooled"]) == {"2", "3", "7"}
    assert result.detail["degrees_of_freedom"] == 2


def test_mix_drift_accepts_count_mappings_and_detects_a_prior_shift() -> None:
    reference = {"answer": 700, "clarify": 200, "escalate": 100}
    assert mix_drift(reference, {"answer": 70, "clarify": 20, "escalate": 10}).p_value > 0.5
    shifted = mix_drift(reference, {"answer": 40, "clarify": 20, "escalate": 40}, name="action")
    assert shifted.p_value < 1e-6
    assert shifted.name == "action"


def test_mmd_drift_false_alarm_rate_is_nominal_and_it_detects_a_mean_shift() -> None:
    rng = np.random.default_rng(2)
    alarms = sum(
        mmd_drift(
            rng.normal(size=(120, 4)),
            rng.normal(size=(60, 4)),
            n_permutations=99,
            random_state=rng,
        ).p_value
        < 0.05
        for _ in range(100)
    )
    assert alarms <= 5 + 3 * np.sqrt(100 * 0.05 * 0.95)
    shifted = mmd_drift(rng.normal(size=(120, 4)), rng.normal(0.8, size=(60, 4)))
    assert shifted.p_value < 0.01


def test_holm_controls_family_wise_error_across_independent_null_tests() -> None:
    rng = np.random.default_rng(3)
    false = sum(holm(rng.random(6), alpha=0.05).any() for _ in range(2000))
    assert false / 2000 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 2000)


def test_holm_accepts_numpy_levels() -> None:
    assert holm([0.01, 0.5], alpha=np.float32(0.05)).tolist() == [True, False]


def test_holm_steps_down_in_order_of_p_values() -> None:
    assert holm([0.04, 0.001, 0.02], alpha=0.05).tolist() == [True, True, True]
    assert holm([0.04, 0.001, 0.03], alpha=0.05).tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ks_drift([], [0.5]), "`reference` is empty"),
        (lambda: ks_drift([0.5, np.nan], [0.5]), "NaN"),
        (lambda: mix_drift([], [1, 2]), "holds no category"),
        (lambda: mix_drift({"a": -1}, {"a": 1}), "counts \\(ints >= 0\\)"),
        (lambda: mmd_drift(np.ones((5, 2)), np.ones((5, 3))), "2 feature columns"),
        (lambda: holm([0.5, 1.5], alpha=0.05), "values in \\[0, 1\\]"),
        (lambda: holm([0.5], alpha=1.0), "`alpha` must be a probability in \\(0, 1\\)"),
        (lambda: mmd_drift(np.ones((1, 2)), np.ones((5, 2))), "needs at least two"),
    ],
)
def test_bad_inputs_name_the_problem(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]
