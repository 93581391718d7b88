from __future__ import annotations

import numpy as np
import pytest

from failwise.calibration import HistogramBinning
from failwise.exceptions import InputError
from tests.calibration.conftest import Split


def top_label_ece(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return float(
        sum(
            abs(correct[bins == b].mean() - confidence[bins == b].mean()) * np.mean(bins == b)
            for b in np.unique(bins)
        )
    )


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_histogram_binning_lowers_ece_of_overconfident_naive_bayes(
    digits_probs: Split, strategy: str
) -> None:
    data = digits_probs
    calibrated = (
        HistogramBinning(strategy=strategy)
        .fit(data.scores_cal, data.y_cal)
        .predict_proba(data.scores_test)
    )
    assert top_label_ece(calibrated, data.y_test) < 0.6 * top_label_ece(
        data.scores_test, data.y_test
    )


def test_histogram_binning_lowers_ece_on_cifar_probabilities(cifar_probs: Split) -> None:
    data = cifar_probs
    calibrated = HistogramBinning().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    assert top_label_ece(calibrated, data.y_test) < 0.7 * top_label_ece(
        data.scores_test, data.y_test
    )


def test_histogram_binning_bin_value_is_the_positive_rate_in_the_bin() -> None:
    p = np.array([0.05, 0.05, 0.15, 0.55, 0.55, 0.55, 0.95])
    y = np.array([0, 1, 0, 1, 1, 0, 1])
    fitted = HistogramBinning(n_bins=10).fit(p, y)
    np.testing.assert_allclose(
        fitted.predict_proba([0.01, 0.12, 0.58, 1.0])[:, 1], [0.5, 0.0, 2 / 3, 1.0]
    )


def test_histogram_binning_maps_empty_bins_to_their_midpoint() -> None:
    fitted = HistogramBinning(n_bins=4).fit([0.1, 0.9, 0.8], [0, 1, 1])
    assert fitted.bin_counts_[0].tolist() == [1.0, 0.0, 0.0, 2.0]
    np.testing.assert_allclose(fitted.predict_proba([0.3, 0.6])[:, 1], [0.375, 0.625])


def test_histogram_binning_quantile_bins_hold_equal_counts() -> None:
    p = np.random.default_rng(0).beta(5, 1, size=1000)
    fitted = HistogramBinning(n_bins=4, strategy="quantile").fit(p, (p > 0.8).astype(int))
    np.testing.assert_allclose(fitted.bin_counts_[0], 250, atol=1)


def test_histogram_binning_rejects_an_unknown_strategy() -> None:
    with pytest.raises(InputError, match="`strategy` must be one of 'uniform', 'quantile'"):
        HistogramBinning(strategy="kmeans").fit([0.1, 0.9], [0, 1])


def test_histogram_binning_rejects_scores_outside_unit_interval() -> None:
    with pytest.raises(InputError, match=r"positive-class probabilities in \[0, 1\]"):
        HistogramBinning().fit([0.1, 2.0], [0, 1])
