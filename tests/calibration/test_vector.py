from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import logsumexp

from failwise.calibration import TemperatureScaling, VectorScaling
from failwise.exceptions import InputError
from tests.calibration.conftest import Split


def nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-300, 1.0))))


def test_vector_scaling_lowers_nll_on_cifar_logits(cifar_logits: Split) -> None:
    data = cifar_logits
    calibrated = VectorScaling().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    assert nll(calibrated, data.y_test) < 0.9 * nll(np.exp(data.scores_test), data.y_test)


def test_vector_scaling_fits_calibration_data_at_least_as_well_as_temperature_scaling(
    cifar_logits: Split,
) -> None:
    data = cifar_logits
    vector = VectorScaling(l2_penalty=0.0).fit(data.scores_cal, data.y_cal)
    temperature = TemperatureScaling().fit(data.scores_cal, data.y_cal)
    # Temperature scaling is the special case coef = 1/T, intercept = 0.
    assert vector.nll_ <= temperature.nll_ + 1e-9


def mean_nll(logits: np.ndarray, y: np.ndarray, params: np.ndarray) -> float:
    k = logits.shape[1]
    scaled = logits * params[:k] + params[k:]
    return float(np.mean(logsumexp(scaled, axis=1) - scaled[np.arange(len(y)), y]))


def test_vector_scaling_reaches_a_stationary_point_of_the_penalised_nll(
    digits_probs: Split,
) -> None:
    data = digits_probs
    logits = np.log(np.maximum(data.scores_cal, 1e-12))
    fitted = VectorScaling(l2_penalty=1e-3).fit(logits, data.y_cal)
    identity = np.concatenate([np.ones(10), np.zeros(10)])

    def objective(params: np.ndarray) -> float:
        offset = params - identity
        return mean_nll(logits, data.y_cal, params) + 0.5e-3 * float(offset @ offset)

    optimum = np.concatenate([fitted.coef_, fitted.intercept_])
    gradient = approx_fprime(optimum, objective, 1e-7)
    assert np.max(np.abs(gradient)) < 1e-4
    assert fitted.nll_ == pytest.approx(mean_nll(logits, data.y_cal, optimum), rel=1e-9)


def test_vector_scaling_keeps_scales_finite_when_a_class_is_perfectly_separated() -> None:
    # Class 0 has logit 0 on its own samples and -27.6 (log 1e-12) elsewhere.
    logits = np.log(
        np.maximum(np.array([[1.0, 0, 0], [0, 0.7, 0.3], [0, 0.4, 0.6], [0, 0.6, 0.4]]), 1e-12)
    )
    fitted = VectorScaling().fit(logits, [0, 1, 2, 2])
    assert np.all(np.isfinite(fitted.coef_))
    assert np.all(np.abs(fitted.coef_) < 1e3)


def test_vector_scaling_intercept_sums_to_zero(cifar_logits: Split) -> None:
    fitted = VectorScaling().fit(cifar_logits.scores_cal, cifar_logits.y_cal)
    assert abs(fitted.intercept_.sum()) < 1e-9
    assert fitted.coef_.shape == fitted.intercept_.shape == (10,)


def test_vector_scaling_rejects_labels_absent_from_the_scores() -> None:
    with pytest.raises(InputError, match=r"holds label\(s\) \[3\] but the scores have only 3"):
        VectorScaling().fit([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0, 3])


def test_vector_scaling_rejects_a_different_number_of_columns_than_in_fit(
    cifar_logits: Split,
) -> None:
    fitted = VectorScaling().fit(cifar_logits.scores_cal, cifar_logits.y_cal)
    with pytest.raises(InputError, match="has 9 columns but 10 classes were seen in fit"):
        fitted.predict_proba(cifar_logits.scores_test[:, :9])
