"""`evaluate_scores` calibrates and certifies on every validation row by default."""

from __future__ import annotations

import warnings

import numpy as np

from failwise.calibration import softmax
from failwise.evaluation import ModelScores, evaluate_scores
from failwise.exceptions import UncertifiedWarning
from failwise.policy import Policy, RiskThreshold


def _case() -> tuple[list[ModelScores], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2400, 5)) * 4.0
    y = np.array([rng.choice(5, p=p) for p in softmax(z / 1.6)])  # overconfident logits
    val, test = slice(0, 1400), slice(1400, None)
    return [ModelScores(name="m", val=z[val], test=z[test])], y[val], y[test]


def test_the_default_certificate_is_the_raw_margins_one_on_every_validation_row() -> None:
    models, y_val, y_test = _case()
    template = Policy(target_risk=0.1, confidence_level=0.9)
    result = evaluate_scores(models, y_val, y_test, policy=template, n_bootstrap=10)
    evaluation = result.models[0]
    policy = evaluation.policy
    assert policy.answer_score == "log_odds"
    assert policy.validation_["n_samples"] == y_val.size
    assert evaluation.calibrator.temperature_ > 1.2  # fitted on the same rows
    # No calibrator in the loop: the same certificate on the raw logit margins.
    z = models[0].val
    top = np.sort(z, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        raw = RiskThreshold(target_risk=0.1, confidence_level=0.9).fit(
            top[:, -1] - top[:, -2], z.argmax(axis=1) == y_val
        )
    control = policy.risk_control_
    assert control is not None
    assert control.certified_
    assert control.n_answered_ == raw.n_answered_
    np.testing.assert_array_equal(control.errors_path_, raw.errors_path_)
    answered = evaluation.decisions.action == "answer"
    test_top = np.sort(models[0].test, axis=1)
    np.testing.assert_array_equal(answered, test_top[:, -1] - test_top[:, -2] >= raw.threshold_)


def test_the_split_design_keeps_the_templates_answer_score_and_a_calibration_part() -> None:
    models, y_val, y_test = _case()
    result = evaluate_scores(
        models,
        y_val,
        y_test,
        policy=Policy(target_risk=0.1),
        n_bootstrap=10,
        calibration="split",
    )
    policy = result.models[0].policy
    assert policy.answer_score == "confidence"
    assert abs(policy.validation_["n_samples"] - 0.7 * y_val.size) <= 5  # stratified by class
