"""Cross-fitted calibration gives every labelled row an out-of-fold probability."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from failwise.calibration import TemperatureScaling, cross_fit_calibrate
from failwise.exceptions import InputError


def _overconfident(seed: int, n: int = 600) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 4)) * 3.0
    scaled = np.exp(logits / 3.0)
    proba = scaled / scaled.sum(axis=1, keepdims=True)
    return logits, np.array([rng.choice(4, p=p) for p in proba])


def test_every_row_gets_probabilities_and_the_refit_sees_all_rows() -> None:
    logits, y = _overconfident(0)
    proba, refitted = cross_fit_calibrate(TemperatureScaling(), logits, y, n_folds=4)
    assert proba.shape == (600, 4)
    assert np.allclose(proba.sum(axis=1), 1.0)
    direct = TemperatureScaling().fit(logits, y)
    assert refitted.temperature_ == pytest.approx(direct.temperature_)
    # Out of fold, yet close to the in-sample fit: one parameter moves little.
    in_sample = direct.predict_proba(logits)
    assert not np.allclose(proba, in_sample)
    assert np.abs(proba - in_sample).max() < 0.05


def test_the_template_is_left_unfitted_and_the_folds_follow_the_seed() -> None:
    logits, y = _overconfident(1)
    template = TemperatureScaling()
    first, _ = cross_fit_calibrate(template, logits, y, random_state=3)
    again, _ = cross_fit_calibrate(template, logits, y, random_state=3)
    other, _ = cross_fit_calibrate(template, logits, y, random_state=4)
    assert not hasattr(template, "temperature_")
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_folds": 1}, r"`n_folds` must be an integer ≥ 2; got 1"),
        ({"n_folds": 400}, r"needs at least 800 rows; got 600"),
    ],
)
def test_bad_fold_counts_are_named(kwargs: dict[str, int], match: str) -> None:
    logits, y = _overconfident(2)
    with pytest.raises(InputError, match=match):
        cross_fit_calibrate(TemperatureScaling(), logits, y, **kwargs)


def test_a_calibrator_is_required_and_rows_must_match() -> None:
    logits, y = _overconfident(2)
    with pytest.raises(InputError, match="must be a failwise calibrator"):
        cross_fit_calibrate("temperature", logits, y)  # type: ignore[type-var]
    with pytest.raises(InputError, match="one row per sample"):
        cross_fit_calibrate(TemperatureScaling(), logits, y[:-1])


def test_cross_fitted_evaluation_fits_the_policy_on_every_validation_row() -> None:
    from failwise.evaluation import ModelScores, evaluate_scores
    from failwise.policy import Policy

    logits, y = _overconfident(5, n=1400)
    val, test = slice(0, 800), slice(800, None)
    models = [ModelScores(name="m", val=logits[val], test=logits[test], kind="logits")]
    template = Policy(target_risk=0.3, clarify_max_set_size=0)
    split = evaluate_scores(
        models, y[val], y[test], policy=template, n_bootstrap=10, calibration="split"
    )
    crossed = evaluate_scores(
        models, y[val], y[test], policy=template, n_bootstrap=10, calibration="cross_fit"
    )
    split_control = split.models[0].policy.risk_control_
    crossed_control = crossed.models[0].policy.risk_control_
    assert split_control is not None
    assert crossed_control is not None
    assert split_control.n_samples_ == 560  # 70 % of the rows
    assert crossed_control.n_samples_ == 800
    with pytest.raises(InputError, match="`calibration` must be 'all', 'split' or 'cross_fit'"):
        evaluate_scores(models, y[val], y[test], calibration="folds")
