"""The MMD permutation test: the statistic of the pooled formula, the full test's p-values."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.monitor import mmd_drift


def _pooled(reference: np.ndarray, window: np.ndarray, max_reference: int) -> np.ndarray:
    """The reference rows mmd_drift uses, then the window (same seed, same draw)."""
    rng = np.random.default_rng(0)
    if reference.shape[0] > max_reference:
        reference = reference[rng.choice(reference.shape[0], size=max_reference, replace=False)]
    return np.concatenate([reference, window])


def _statistic(pooled: np.ndarray, n: int, bandwidth: float) -> float:
    sq = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(axis=2)
    kernel = np.exp(-sq / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    m = pooled.shape[0] - n
    within_ref, within_win = kernel[:n, :n].sum(), kernel[n:, n:].sum()
    between = kernel[:n, n:].sum()
    return float(within_ref / (n * (n - 1)) + within_win / (m * (m - 1)) - 2.0 * between / (n * m))


def _median_bandwidth(pooled: np.ndarray) -> float:
    sq = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(axis=2)
    upper = sq[np.triu_indices(pooled.shape[0], k=1)]
    return float(np.median(upper[upper > 0]))


@pytest.mark.parametrize(
    ("n_reference", "shift", "max_reference"),
    [(300, 0.0, 1000), (700, 0.3, 400), (500, 6.0, 500), (400, 0.0, 120)],
)
def test_mmd_statistic_and_bandwidth_are_those_of_the_pooled_sample(
    n_reference: int, shift: float, max_reference: int
) -> None:
    rng = np.random.default_rng(n_reference)
    reference = rng.normal(size=(n_reference, 6))
    window = rng.normal(shift, size=(90, 6))
    result = mmd_drift(reference, window, max_reference=max_reference, n_permutations=50)
    pooled = _pooled(reference, window, max_reference)
    n = pooled.shape[0] - 90
    assert result.n_reference == n
    assert result.detail["bandwidth"] == pytest.approx(_median_bandwidth(pooled), rel=1e-12)
    expected = _statistic(pooled, n, _median_bandwidth(pooled))
    assert result.statistic == pytest.approx(expected, rel=1e-9, abs=1e-15)


def _full_p_value(reference: np.ndarray, window: np.ndarray, n_permutations: int) -> float:
    pooled = _pooled(reference, window, 1000)
    n = reference.shape[0]
    bandwidth = _median_bandwidth(pooled)
    observed = _statistic(pooled, n, bandwidth)
    rng = np.random.default_rng(0)  # no reference subsample below 1000 rows
    exceed = 0
    for _ in range(n_permutations):
        order = rng.permutation(pooled.shape[0])
        shuffled = pooled[np.concatenate([order[:n], order[n:]])]
        exceed += _statistic(shuffled, n, bandwidth) >= observed
    return (1 + exceed) / (1 + n_permutations)


@pytest.mark.parametrize("shift", [0.0, 0.15, 0.4])
def test_mmd_p_value_is_the_full_permutation_tests_unless_it_stops_early(shift: float) -> None:
    rng = np.random.default_rng(7)
    reference, window = rng.normal(size=(60, 3)), rng.normal(shift, size=(30, 3))
    full = _full_p_value(reference, window, 99)
    assert mmd_drift(reference, window, n_permutations=99, stop_after=None).p_value == full
    early = mmd_drift(reference, window, n_permutations=99)
    if full <= 11 / 100:  # fewer than stop_after + 1 exceedances: never stops early
        assert early.p_value == full
        assert not early.detail["stopped_early"]
    else:
        assert early.detail["stopped_early"]
        assert early.p_value == 10 / early.detail["n_permutations"]


def test_mmd_on_a_window_like_the_reference_stops_after_few_permutations() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(1500, 8))
    result = mmd_drift(reference, rng.normal(size=(300, 8)), n_permutations=960)
    assert result.detail["stopped_early"]
    assert result.detail["n_permutations"] < 200
    assert result.p_value == 10 / result.detail["n_permutations"]
    shifted = mmd_drift(reference, rng.normal(0.5, size=(300, 8)), n_permutations=960)
    assert shifted.p_value == 1 / 961
    assert shifted.detail["n_permutations"] == 960


def test_mmd_reuses_a_reference_but_never_a_stale_one() -> None:
    rng = np.random.default_rng(4)
    reference, window = rng.normal(size=(200, 4)), rng.normal(size=(50, 4))
    first = mmd_drift(reference, window, n_permutations=20)
    assert mmd_drift(reference.copy(), window, n_permutations=20) == first
    reference[:, 0] += 3.0  # the same array, changed in place
    changed = mmd_drift(reference, window, n_permutations=20)
    pooled = _pooled(reference, window, 1000)
    expected = _statistic(pooled, 200, _median_bandwidth(pooled))
    assert changed.statistic == pytest.approx(expected, rel=1e-9)
    assert changed.statistic > 10 * abs(first.statistic)


def test_mmd_accepts_float32_features_and_rejects_a_bad_stop_after() -> None:
    rng = np.random.default_rng(5)
    reference, window = rng.normal(size=(80, 4)), rng.normal(size=(40, 4))
    as_float32 = mmd_drift(reference.astype(np.float32), window.astype(np.float32))
    exact = mmd_drift(reference.astype(np.float32).astype(np.float64), window.astype(np.float32))
    assert as_float32 == exact
    with pytest.raises(InputError, match="`stop_after` must be an int >= 1; got int 0"):
        mmd_drift(reference, window, stop_after=0)
