from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from failwise.calibration import IsotonicCalibration
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


def test_isotonic_calibration_lowers_ece_on_cifar_probabilities(cifar_probs: Split) -> None:
    data = cifar_probs
    calibrated = (
        IsotonicCalibration().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    )
    assert top_label_ece(calibrated, data.y_test) < 0.6 * top_label_ece(
        data.scores_test, data.y_test
    )


def test_isotonic_calibration_lowers_ece_of_overconfident_naive_bayes(digits_probs: Split) -> None:
    data = digits_probs
    calibrated = (
        IsotonicCalibration().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    )
    assert top_label_ece(calibrated, data.y_test) < 0.5 * top_label_ece(
        data.scores_test, data.y_test
    )


def test_isotonic_binary_calibration_matches_scikit_learn_isotonic_regression(
    cancer_probs: Split,
) -> None:
    data = cancer_probs
    ours = IsotonicCalibration().fit(data.scores_cal, data.y_cal)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        data.scores_cal[:, 1], data.y_cal
    )
    np.testing.assert_allclose(
        ours.predict_proba(data.scores_test)[:, 1],
        reference.predict(data.scores_test[:, 1]),
        atol=1e-12,
    )


def test_isotonic_calibration_accepts_any_real_binary_score() -> None:
    scores = np.array([-3.0, -1.0, 0.5, 2.0, 4.0, 5.0])
    fitted = IsotonicCalibration().fit(scores, [0, 0, 1, 0, 1, 1])
    np.testing.assert_allclose(fitted.predict_proba([-10.0, 10.0])[:, 1], [0.0, 1.0])


def test_isotonic_calibration_keeps_uncalibrated_row_when_every_class_maps_to_zero() -> None:
    # Each class is right at probability 0.6 and above and wrong at 0.4 and below, so a row
    # with every probability at most 0.4 maps to zeros and falls back to the uncalibrated row.
    scores = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.05, 0.9, 0.05],
            [0.05, 0.05, 0.9],
            [0.4, 0.6, 0.0],
            [0.0, 0.4, 0.6],
            [0.6, 0.0, 0.4],
        ]
    )
    fitted = IsotonicCalibration().fit(scores, [0, 1, 2, 1, 2, 0])
    row = np.array([[0.35, 0.35, 0.3]])
    np.testing.assert_allclose(fitted.predict_proba(row), row)


def test_isotonic_calibration_rejects_logits_for_multiclass() -> None:
    with pytest.raises(InputError, match=r"must lie in \[0, 1\].*look like logits"):
        IsotonicCalibration().fit([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0]], [0, 1])


def test_isotonic_calibration_rejects_a_single_column_matrix() -> None:
    with pytest.raises(InputError, match=r"shape \(3, 1\); pass one score per sample"):
        IsotonicCalibration().fit([[0.1], [0.5], [0.9]], [0, 1, 1])


def test_isotonic_calibration_rejects_mismatched_lengths() -> None:
    with pytest.raises(InputError, match="`scores` has 3, `y` has 2"):
        IsotonicCalibration().fit([0.1, 0.5, 0.9], [0, 1])
