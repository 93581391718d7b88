from __future__ import annotations

import numpy as np
import pytest

from failwise.calibration import BetaCalibration
from failwise.exceptions import InputError
from tests.calibration.conftest import Split


def nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))))


def test_beta_calibration_lowers_nll_of_overconfident_naive_bayes(cancer_probs: Split) -> None:
    data = cancer_probs
    calibrated = BetaCalibration().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    assert nll(calibrated, data.y_test) < 0.5 * nll(data.scores_test, data.y_test)


def test_beta_calibration_leaves_calibrated_probabilities_nearly_unchanged() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    fitted = BetaCalibration().fit(p, y)
    np.testing.assert_allclose(fitted.coef_, [1.0, 1.0], atol=0.05)
    assert fitted.intercept_ == pytest.approx(0.0, abs=0.05)


def test_beta_calibration_recovers_a_skewed_map_platt_cannot_express() -> None:
    # q = expit(2 ln p - 0.5 ln(1 - p) + 0.3): a, b and c differ, so the map is asymmetric.
    rng = np.random.default_rng(1)
    p = rng.uniform(0.001, 0.999, size=100_000)
    q = 1 / (1 + np.exp(-(2.0 * np.log(p) - 0.5 * np.log(1 - p) + 0.3)))
    y = (rng.uniform(size=p.size) < q).astype(int)
    fitted = BetaCalibration().fit(p, y)
    np.testing.assert_allclose(fitted.coef_, [2.0, 0.5], atol=0.1)
    assert fitted.intercept_ == pytest.approx(0.3, abs=0.1)


def test_beta_calibration_keeps_the_map_monotone_when_the_fit_wants_a_negative_a() -> None:
    # Low probabilities are as often positive as middle ones: the free fit has a < 0.
    rng = np.random.default_rng(2)
    p = rng.uniform(0.001, 0.999, size=20_000)
    q = np.where(p < 0.2, 0.5, p)
    y = (rng.uniform(size=p.size) < q).astype(int)
    fitted = BetaCalibration().fit(p, y)
    assert np.all(fitted.coef_ >= 0.0)
    grid = np.linspace(0.001, 0.999, 200)
    assert np.all(np.diff(fitted.predict_proba(grid)[:, 1]) >= -1e-12)


def test_beta_calibration_rejects_scores_outside_unit_interval() -> None:
    with pytest.raises(InputError, match=r"positive-class probabilities in \[0, 1\]"):
        BetaCalibration().fit([-0.5, 0.2, 1.5], [0, 1, 1])
