from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from failwise.calibration import PlattScaling
from failwise.exceptions import InputError
from tests.calibration.conftest import Split


def nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))))


def test_platt_scaling_lowers_nll_of_overconfident_naive_bayes(cancer_probs: Split) -> None:
    data = cancer_probs
    calibrated = PlattScaling().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    assert nll(calibrated, data.y_test) < 0.5 * nll(data.scores_test, data.y_test)


def test_platt_scaling_matches_scikit_learn_sigmoid_calibration_of_an_svm() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, test_size=0.5, random_state=0)
    svm = make_pipeline(StandardScaler(), LinearSVC(C=0.01)).fit(X_fit, y_fit)
    reference = CalibratedClassifierCV(FrozenEstimator(svm), method="sigmoid").fit(X_cal, y_cal)
    ours = PlattScaling().fit(svm.decision_function(X_cal), y_cal)
    np.testing.assert_allclose(
        ours.predict_proba(svm.decision_function(X_fit)), reference.predict_proba(X_fit), atol=1e-4
    )


def test_platt_scaling_on_probabilities_can_represent_the_identity() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    fitted = PlattScaling(target_smoothing=False).fit(np.column_stack([1 - p, p]), y)
    assert fitted.coef_ == pytest.approx(1.0, abs=0.05)
    assert fitted.intercept_ == pytest.approx(0.0, abs=0.05)


def test_platt_target_smoothing_keeps_separable_scores_finite() -> None:
    fitted = PlattScaling().fit([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1])
    assert np.isfinite(fitted.coef_)
    # Platt's targets for 2 positives are 3/4, so the fit cannot promise certainty.
    assert fitted.predict_proba([2.0])[0, 1] < 0.95


def test_platt_scaling_rejects_a_single_class() -> None:
    with pytest.raises(InputError, match=r"holds only class 1.*both"):
        PlattScaling().fit([0.1, 0.2, 0.3], [1, 1, 1])


def test_platt_scaling_rejects_multiclass_labels() -> None:
    with pytest.raises(InputError, match=r"must be binary \(0/1 or bool\)"):
        PlattScaling().fit([0.1, 0.2, 0.3], [0, 1, 2])


def test_platt_scaling_rejects_three_columns() -> None:
    with pytest.raises(InputError, match=r"1-D scores or \(n_samples, 2\) probabilities"):
        PlattScaling().fit(np.full((3, 3), 1 / 3), [0, 1, 0])


def test_platt_scaling_predict_needs_the_same_input_form_as_fit() -> None:
    fitted = PlattScaling().fit([-1.0, 0.0, 1.0, 2.0], [0, 0, 1, 1])
    with pytest.raises(InputError, match="fit saw 1-D scores"):
        fitted.predict_proba([[0.5, 0.5]])
