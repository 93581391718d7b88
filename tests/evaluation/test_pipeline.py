"""`evaluate_scores` calibrates and certifies on every validation row by default."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from failwise.calibration import softmax
from failwise.evaluation import MAX_NEIGHBOUR_ROWS, ModelScores, evaluate_scores
from failwise.exceptions import InputError, UncertifiedWarning
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


def test_the_reference_keeps_the_models_features_and_other_training_rows() -> None:
    models, y_val, y_test = _case()
    rng = np.random.default_rng(4)
    val_features = rng.normal(size=(y_val.size, 3))
    train = np.vstack([val_features[:7], rng.normal(size=(MAX_NEIGHBOUR_ROWS + 50, 3))])
    with_features = replace(
        models[0],
        val_features=val_features,
        train_features=train,
        feature_metric="euclidean",
        feature_source="three numbers",
    )
    result = evaluate_scores(
        [with_features],
        y_val,
        y_test,
        policy=Policy(target_risk=0.1),
        n_bootstrap=10,
        calibration="split",
    )
    reference = result.models[0].reference
    assert reference is not None
    policy_rows = result.models[0].policy.validation_["n_samples"]
    assert reference.features is not None
    assert reference.features.shape == (policy_rows, 3)
    assert reference.feature_metric == "euclidean"
    assert reference.feature_source == "three numbers"
    neighbours = reference.neighbour_features
    assert neighbours is not None
    assert neighbours.shape == (MAX_NEIGHBOUR_ROWS, 3)
    repeats = {row.tobytes() for row in reference.features} & {r.tobytes() for r in neighbours}
    assert not repeats  # a training row that repeats a reference row is dropped
    bare = evaluate_scores(models, y_val, y_test, policy=Policy(target_risk=0.1), n_bootstrap=10)
    assert bare.models[0].reference is not None
    assert bare.models[0].reference.features is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"train_features": np.ones((5, 3))}, "`train_features` needs `val_features`"),
        ({"val_features": np.ones((5, 3))}, "one row per validation input"),
    ],
)
def test_features_that_do_not_fit_the_validation_rows_are_refused(
    fields: dict[str, object], message: str
) -> None:
    models, y_val, y_test = _case()
    with pytest.raises(InputError, match=message):
        evaluate_scores(
            [replace(models[0], **fields)],  # type: ignore[arg-type]
            y_val,
            y_test,
            policy=Policy(target_risk=0.1),
            n_bootstrap=10,
        )
