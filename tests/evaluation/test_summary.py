"""What a ladder automates on the test rows, in the words the CLI, JSON and report share."""

from __future__ import annotations

import warnings

import numpy as np

from failwise import Policy
from failwise.evaluation import ModelScores, evaluate_scores, summarise_automation
from failwise.exceptions import UncertifiedWarning


def _calibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    proba = rng.dirichlet(np.full(3, 0.3), size=n)
    y = np.array([rng.choice(3, p=p) for p in proba])
    return proba, y


def test_nothing_automated_is_the_headline(rng: np.random.Generator) -> None:
    proba, y = _calibrated(rng, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        policy = Policy(target_risk=0.001).fit(proba, y)
    summary = summarise_automation("toy", policy.decide(proba), y, policy)
    assert summary.automates_nothing
    assert summary.headline.startswith("toy answers nothing automatically: ")
    assert summary.test_risk is None
    assert summary.to_dict()["answered_automatically"] == 0.0


def test_out_of_scope_inputs_that_push_risk_over_the_target_are_named(
    rng: np.random.Generator,
) -> None:
    proba, y = _calibrated(rng, 3000)
    policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    test_proba, test_y = _calibrated(rng, 2000)
    decisions = policy.decide(test_proba)
    answered = np.flatnonzero(decisions.action == "answer")
    test_y = test_y.copy()
    test_y[answered[: answered.size // 5]] = -1  # a fifth of the answers were out of scope
    summary = summarise_automation("toy", decisions, test_y, policy)
    assert summary.test_risk is not None
    assert summary.test_risk > 0.1
    assert summary.test_risk_in_scope is not None
    assert summary.test_risk_in_scope <= 0.1
    assert summary.out_of_scope_over_target
    assert summary.risk_note is not None
    assert f"because {answered.size // 5} out-of-scope test input(s) were answered" in (
        summary.risk_note
    )


def test_evaluation_json_carries_headline_and_automation(rng: np.random.Generator) -> None:
    y = rng.integers(0, 3, 800)
    logits = rng.normal(size=(800, 3)) + 3 * np.eye(3)[y]
    result = evaluate_scores(
        [ModelScores("m", logits[:400], logits[400:])], y[:400], y[400:], n_bootstrap=10
    )
    summary = result.to_dict()
    auto = summary["models"][0]["automation"]
    assert summary["headline"] == [auto["headline"]]
    assert auto["target_risk"] == 0.02
    assert (
        summary["models"][0]["frontier"] == []
        or "certified_coverage" in (summary["models"][0]["frontier"][0])
    )
