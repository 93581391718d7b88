"""Answering by top-two log-odds: an order over rows that temperature scaling never changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from failwise import Policy
from failwise.artifacts import load, save
from failwise.calibration import TemperatureScaling, softmax
from failwise.exceptions import InputError
from failwise.policy import AnswerRung


def _logits(n: int = 3000, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model that is right about 80 % of the time."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 4.0
    y = np.array([rng.choice(k, p=p) for p in softmax(z)])
    return z, y


def test_top_two_log_odds_is_the_log_ratio_of_the_two_largest_probabilities() -> None:
    from failwise.policy import top_two_log_odds

    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    got = top_two_log_odds(proba)
    np.testing.assert_allclose(got[:2], [np.log(0.7 / 0.2), np.log(0.6 / 0.3)])
    saturated = -np.log(np.finfo(np.float64).tiny)
    assert got[2] == pytest.approx(saturated)  # finite: the certificate needs finite scores
    assert got[3] == 0.0
    np.testing.assert_allclose(top_two_log_odds(np.ones((2, 1))), [saturated, saturated])


def test_temperature_keeps_the_log_odds_order_but_not_the_probability_order() -> None:
    from failwise.policy import top_two_log_odds

    z, _ = _logits()
    cold, hot = softmax(z / 0.5), softmax(z / 3.0)
    np.testing.assert_array_equal(
        np.argsort(top_two_log_odds(cold)), np.argsort(top_two_log_odds(hot))
    )
    np.testing.assert_allclose(top_two_log_odds(cold) * 0.5, top_two_log_odds(hot) * 3.0)
    # The top label's probability is reordered: the reason the certificate ranks by log-odds.
    assert (np.argsort(cold.max(axis=1)) != np.argsort(hot.max(axis=1))).any()


def _fit(proba: np.ndarray, y: np.ndarray, score: str) -> Policy:
    return Policy(
        target_risk=0.05, confidence_level=0.9, clarify_max_set_size=0, answer_score=score
    ).fit(proba, y)


def test_the_log_odds_certificate_is_the_same_whatever_temperature_was_fitted() -> None:
    z, y = _logits()
    fitted = TemperatureScaling().fit(z, y)  # fitted on the very rows the policy sees
    answered = []
    for temperature in (0.4, fitted.temperature_, 5.0):
        policy = _fit(softmax(z / temperature), y, "log_odds")
        control = policy.risk_control_
        assert control is not None
        assert policy.certified_
        answered.append(policy.decide(softmax(z / temperature)).action == "answer")
        np.testing.assert_array_equal(answered[-1], answered[0])
        assert control.n_answered_ == int(answered[0].sum())
        assert policy.answer_threshold_ * temperature == pytest.approx(
            _fit(softmax(z), y, "log_odds").answer_threshold_
        )
    by_probability = [
        _fit(softmax(z / t), y, "confidence").decide(softmax(z / t)).action == "answer"
        for t in (0.4, 5.0)
    ]
    assert (by_probability[0] != by_probability[1]).any()


def test_a_log_odds_policy_decides_rows_bands_and_reasons_by_log_odds(tmp_path: Path) -> None:
    z, y = _logits()
    proba = softmax(z / 2.0)
    policy = _fit(proba, y, "log_odds")
    decisions = policy.decide(proba)
    answered = decisions.action == "answer"
    assert 0 < answered.mean() < 1
    np.testing.assert_array_equal(decisions.band == "high", answered)
    first = int(np.flatnonzero(answered)[0])
    other = int(np.flatnonzero(~answered)[0])
    assert decisions[first].reason.startswith("answer: top-two log-odds ≥ answer threshold")
    assert "top-two log-odds < answer threshold" in decisions[other].reason
    for i in (first, other):
        assert policy.decide_one(proba[i]) == decisions[i]
    assert policy.describe()["answer_score"] == "log_odds"
    save(policy, tmp_path / "policy")
    loaded = load(tmp_path / "policy")
    np.testing.assert_array_equal(loaded.decide(proba).action, decisions.action)


def test_unknown_answer_scores_are_refused() -> None:
    with pytest.raises(InputError, match="score"):
        AnswerRung(0.5, "margin")
    z, y = _logits(n=200)
    with pytest.raises(InputError, match="answer_score"):
        Policy(answer_score="margin").fit(softmax(z), y)
