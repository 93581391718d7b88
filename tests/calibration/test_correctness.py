from __future__ import annotations

import numpy as np
import pytest

from failwise.calibration import CorrectnessCalibration
from failwise.exceptions import InputError, NotFittedError
from tests.calibration.conftest import Split


def brier(confidence: np.ndarray, correct: np.ndarray) -> float:
    return float(np.mean((confidence - correct) ** 2))


def digits_signals(
    digits_split: Split,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Signals from a real model: top probability, margin, entropy; correctness of its answer."""

    def signals(p: np.ndarray) -> np.ndarray:
        top2 = np.sort(p, axis=1)[:, -2:]
        entropy = -np.sum(p * np.log(np.maximum(p, 1e-12)), axis=1)
        return np.column_stack([top2[:, 1], top2[:, 1] - top2[:, 0], entropy])

    d = digits_split
    return (
        signals(d.scores_cal),
        d.scores_cal.argmax(axis=1) == d.y_cal,
        signals(d.scores_test),
        d.scores_test.argmax(axis=1) == d.y_test,
    )


def test_correctness_calibration_beats_raw_top_probability_as_confidence(
    digits_probs: Split,
) -> None:
    s_cal, c_cal, s_test, c_test = digits_signals(digits_probs)
    fitted = CorrectnessCalibration().fit(s_cal, c_cal)
    confidence = fitted.predict_confidence(s_test)
    assert brier(confidence, c_test) < brier(s_test[:, 0], c_test)
    assert abs(confidence.mean() - c_test.mean()) < 0.05


def test_correctness_isotonic_learns_a_decreasing_map_for_entropy(digits_probs: Split) -> None:
    s_cal, c_cal, s_test, c_test = digits_signals(digits_probs)
    fitted = CorrectnessCalibration(method="isotonic").fit(s_cal[:, 2], c_cal)
    assert fitted.increasing_ is False
    grid = np.linspace(0.0, 2.0, 50)
    assert np.all(np.diff(fitted.predict_confidence(grid)) <= 0.0)
    assert brier(fitted.predict_confidence(s_test[:, 2]), c_test) < brier(s_test[:, 0], c_test)


def test_correctness_calibration_maps_mean_log_probability_to_probability_correct() -> None:
    rng = np.random.default_rng(0)
    mean_logprob = rng.normal(-1.0, 0.5, size=20_000)
    correct = rng.uniform(size=mean_logprob.size) < 1 / (1 + np.exp(-4 * (mean_logprob + 1)))
    fitted = CorrectnessCalibration().fit(mean_logprob, correct)
    expected = 1 / (1 + np.exp(-4 * (np.array([-1.5, -1.0, -0.5]) + 1)))
    np.testing.assert_allclose(fitted.predict_confidence([-1.5, -1.0, -0.5]), expected, atol=0.03)
    proba = fitted.predict_proba([-1.0])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_correctness_isotonic_rejects_several_signal_columns() -> None:
    with pytest.raises(InputError, match="takes a single signal column; got 2 columns"):
        CorrectnessCalibration(method="isotonic").fit([[0.1, 1.0], [0.9, 2.0]], [0, 1])


def test_correctness_calibration_rejects_labels_other_than_correct_or_wrong() -> None:
    with pytest.raises(InputError, match=r"`correct` must be binary \(0/1 or bool\)"):
        CorrectnessCalibration().fit([0.1, 0.5, 0.9], [0, 1, 2])


def test_correctness_calibration_needs_both_correct_and_wrong_outputs() -> None:
    with pytest.raises(InputError, match="`correct` holds only class 1"):
        CorrectnessCalibration().fit([0.1, 0.5, 0.9], [True, True, True])


def test_correctness_calibration_rejects_a_different_number_of_signals_than_in_fit() -> None:
    fitted = CorrectnessCalibration().fit([[0.1, 1.0], [0.9, 2.0], [0.5, 0.0]], [0, 1, 1])
    with pytest.raises(InputError, match="has 1 columns but 2 signal"):
        fitted.predict_confidence([0.3])


def test_correctness_calibration_before_fit_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match="call fit before predict_confidence"):
        CorrectnessCalibration().predict_confidence([0.3])
