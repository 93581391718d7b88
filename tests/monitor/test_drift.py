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


def _two_groups(
    rng: np.random.Generator, n_first: int, n_second: int, *, second: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of two groups with different distributions, and each row's group."""
    scores = np.concatenate([rng.beta(9, 1, n_first), rng.beta(second, 1, n_second)])
    return scores, np.repeat([0, 1], [n_first, n_second])


def test_ks_drift_reweighted_to_the_window_groups_ignores_a_prior_shift() -> None:
    rng = np.random.default_rng(2)
    plain = reweighted = 0
    for _ in range(SIMULATIONS // 3):
        ref, ref_groups = _two_groups(rng, 1000, 1000)
        win, win_groups = _two_groups(rng, 100, 400)  # the second group four times as often
        plain += ks_drift(ref, win).p_value < 0.05
        reweighted += (
            ks_drift(ref, win, reference_groups=ref_groups, window_groups=win_groups).p_value < 0.05
        )
    assert plain / (SIMULATIONS // 3) > 0.9
    assert reweighted / (SIMULATIONS // 3) <= 0.05 + SLACK


def test_ks_drift_reweighted_still_sees_a_change_within_a_group() -> None:
    rng = np.random.default_rng(3)
    ref, ref_groups = _two_groups(rng, 1000, 1000)
    win, win_groups = _two_groups(rng, 100, 400, second=1.0)  # the second group less sure
    result = ks_drift(
        ref, win, reference_groups=ref_groups, window_groups=win_groups, reference_confidence=0.9
    )
    assert result.method == "ks-reference-bound"
    assert result.p_value < 1e-3
    assert result.detail["median_shift"] < 0


def test_ks_drift_with_the_reference_bound_keeps_every_reference_draw_at_its_level() -> None:
    # A small reference next to the window: the two-sample test's false-alarm rate depends
    # on the draw; the bounded test stays under alpha for (about) 9 draws in 10.
    rng = np.random.default_rng(4)
    plain_rates, bounded_rates = [], []
    for _ in range(10):
        reference = rng.beta(8, 1, 300)
        windows = [rng.beta(8, 1, 500) for _ in range(100)]
        plain_rates.append(np.mean([ks_drift(reference, w).p_value < 0.05 for w in windows]))
        bounded_rates.append(
            np.mean(
                [ks_drift(reference, w, reference_confidence=0.9).p_value < 0.05 for w in windows]
            )
        )
    assert max(plain_rates) > 0.1
    assert sum(rate > 0.05 + 0.03 for rate in bounded_rates) <= 2
    assert max(bounded_rates) <= 0.15


def test_ks_drift_groups_are_only_labels() -> None:
    rng = np.random.default_rng(5)
    ref, ref_groups = _two_groups(rng, 300, 200)
    win, win_groups = _two_groups(rng, 150, 350)
    same = ks_drift(ref, win, reference_groups=ref_groups, window_groups=win_groups)
    renamed = ks_drift(
        ref,
        win,
        reference_groups=np.where(ref_groups, "b", "a"),
        window_groups=np.where(win_groups, "b", "a"),
    )
    assert renamed.statistic == pytest.approx(same.statistic)
    assert renamed.p_value == pytest.approx(same.p_value)
    # One group everywhere: the plain statistic, and the reference counts in full.
    one = ks_drift(ref, win, reference_groups=np.zeros(500), window_groups=np.zeros(500))
    assert one.statistic == pytest.approx(ks_drift(ref, win).statistic)
    assert one.detail["effective_reference_size"] == pytest.approx(500)


def test_ks_drift_leaves_out_window_rows_of_groups_the_reference_lacks() -> None:
    rng = np.random.default_rng(6)
    ref, ref_groups = _two_groups(rng, 300, 300)
    win, win_groups = _two_groups(rng, 200, 200)
    win_groups[:20] = 9
    result = ks_drift(ref, win, reference_groups=ref_groups, window_groups=win_groups)
    assert result.detail["n_left_out"] == 20
    assert result.n_window == 380


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
        (lambda: ks_drift([0.5, 0.6], [0.5], reference_groups=[0, 1]), "Pass both"),
        (
            lambda: ks_drift([0.5, 0.6], [0.5], reference_groups=[0], window_groups=[0]),
            "one group per row \\(2\\)",
        ),
        (
            lambda: ks_drift([0.5, 0.6], [0.5], reference_groups=[0, 0], window_groups=[1]),
            "No window row",
        ),
        (
            lambda: ks_drift([0.5], [0.5], reference_confidence=1.0),
            "`reference_confidence` must be a probability",
        ),
    ],
)
def test_bad_inputs_name_the_problem(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]
