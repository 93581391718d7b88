"""Behaviour of the fitted decision ladder (`Policy`)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from failwise import Action, NotFittedError, OutcomeCosts, Policy
from failwise.exceptions import InputError, UncertifiedWarning


def calibrated_sample(
    rng: np.random.Generator, n: int, k: int = 5, concentration: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with labels drawn from them: calibrated by construction."""
    proba = rng.dirichlet(np.full(k, concentration), size=n)
    cumulative = proba.cumsum(axis=1)
    y = (rng.random((n, 1)) > cumulative).sum(axis=1)
    return proba, np.minimum(y, k - 1)


def test_answers_meet_the_target_risk_on_fresh_data(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 20_000, concentration=0.1)
    policy = Policy(target_risk=0.05, confidence_level=0.95).fit(proba[:5000], y[:5000])
    decisions = policy.decide(proba[5000:])
    answered = decisions.mask(Action.ANSWER)
    risk = np.mean(decisions.label[answered] != y[5000:][answered])
    assert policy.certified_
    assert answered.mean() > 0.3
    assert risk <= 0.05


def test_decide_batch_equals_one_by_one(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 3000)
    policy = Policy(target_risk=0.1).fit(proba[:2000], y[:2000])
    batch = policy.decide(proba[2000:2100])
    for i in range(100):
        single = policy.decide_one(proba[2000 + i])
        assert single.action == batch[i].action
        assert single.label == batch[i].label
        assert single.prediction_set == batch[i].prediction_set


def test_relabelling_classes_changes_no_action(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 4000)
    perm = rng.permutation(proba.shape[1])
    inverse = np.argsort(perm)
    a = Policy(target_risk=0.1).fit(proba[:3000], y[:3000]).decide(proba[3000:])
    b = Policy(target_risk=0.1).fit(proba[:3000, perm], inverse[y[:3000]])
    b_dec = b.decide(proba[3000:, perm])
    np.testing.assert_array_equal(a.action_codes, b_dec.action_codes)
    answered = a.mask("answer")
    np.testing.assert_array_equal(perm[b_dec.label[answered]], a.label[answered])


def test_out_of_scope_rows_are_never_answered(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 4000)
    ood = rng.normal(size=4000)
    oos = rng.random(4000) < 0.1
    ood[oos] += 4.0
    y = np.where(oos, -1, y)
    policy = Policy(target_risk=0.1).fit(proba[:2000], y[:2000], ood_score=ood[:2000])
    decisions = policy.decide(proba[2000:], ood_score=ood[2000:])
    flagged = ood[2000:] > policy.ood_threshold_
    assert np.isfinite(policy.ood_threshold_)
    assert not decisions.mask("answer")[flagged].any()
    assert not decisions.mask("clarify")[flagged].any()
    assert "out-of-scope score" in decisions[int(np.flatnonzero(flagged)[0])].reason


def test_human_capacity_bounds_the_escalation_rate(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 5000)
    policy = Policy(target_risk=None, max_escalation_rate=0.1, clarify_max_set_size=0)
    policy.fit(proba, y)
    assert policy.mode_ == "capacity"
    assert policy.validation_["rates"]["escalate"] <= 0.1 + 1e-9
    looser = Policy(target_risk=None, max_escalation_rate=0.3, clarify_max_set_size=0)
    looser.fit(proba, y)
    assert looser.answer_threshold_ >= policy.answer_threshold_


def test_capacity_on_top_of_a_risk_target_abstains_instead_of_answering(
    rng: np.random.Generator,
) -> None:
    proba, y = calibrated_sample(rng, 5000)
    free = Policy(target_risk=0.05, clarify_max_set_size=0).fit(proba, y)
    capped = Policy(target_risk=0.05, max_escalation_rate=0.05, clarify_max_set_size=0)
    capped.fit(proba, y)
    assert capped.answer_threshold_ == free.answer_threshold_
    assert capped.validation_["rates"]["escalate"] <= 0.05 + 1e-9
    assert capped.validation_["rates"]["abstain"] > 0


def test_cost_mode_is_no_worse_than_answering_everything_or_nothing(
    rng: np.random.Generator,
) -> None:
    proba, y = calibrated_sample(rng, 4000)
    costs = OutcomeCosts(wrong_answer=10, escalate=2, clarify=1)
    policy = Policy(target_risk=None, costs=costs, clarify_max_set_size=0).fit(proba, y)
    confidence = proba.max(axis=1)
    wrong = proba.argmax(axis=1) != y

    def total(threshold: float) -> float:
        answered = confidence >= threshold
        return float(np.sum(np.where(answered, wrong * 10.0, 2.0)))

    best = total(policy.answer_threshold_)
    assert best <= total(0.0)
    assert best <= total(np.inf)


def test_trusted_fallback_handles_rows_the_model_does_not_answer(
    rng: np.random.Generator,
) -> None:
    proba, y = calibrated_sample(rng, 4000)
    good_rule = np.where(rng.random(4000) < 0.5, y, -2)  # right whenever it fires
    bad_rule = np.where(rng.random(4000) < 0.5, rng.integers(0, 5, 4000), -2)
    good = Policy(target_risk=0.05, clarify_max_set_size=0).fit(proba, y, fallback=good_rule)
    bad = Policy(target_risk=0.05, clarify_max_set_size=0).fit(proba, y, fallback=bad_rule)
    assert good.fallback_trusted_[1:].all()
    assert not bad.fallback_trusted_[1:].any()
    decisions = good.decide(proba, fallback=good_rule)
    used = decisions.mask("fallback")
    assert used.any()
    np.testing.assert_array_equal(decisions.label[used], y[used])


def test_without_humans_the_last_rung_abstains(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 2000)
    policy = Policy(target_risk=0.05, escalate=False, clarify_max_set_size=0)
    decisions = policy.fit(proba, y).decide(proba)
    assert decisions.counts()[Action.ESCALATE] == 0
    assert decisions.counts()[Action.ABSTAIN] > 0


def test_clarify_offers_a_small_set(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 4000, k=10, concentration=0.05)
    policy = Policy(target_risk=0.1, clarify_max_set_size=3).fit(proba[:2000], y[:2000])
    decisions = policy.decide(proba[2000:])
    rows = np.flatnonzero(decisions.mask("clarify"))
    assert rows.size > 0
    for row in rows[:50]:
        offered = decisions[int(row)].prediction_set
        assert 1 <= len(offered) <= 3
        assert "prediction set" in decisions[int(row)].reason


def test_uncertifiable_target_warns_and_answers_nothing(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 50, concentration=2.0)
    with pytest.warns(UncertifiedWarning, match="answer nothing automatically"):
        policy = Policy(target_risk=0.001, confidence_level=0.99).fit(proba, y)
    assert not policy.certified_
    assert policy.decide(proba).counts()[Action.ANSWER] == 0


def test_policy_pickles_and_decides_the_same(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 2000)
    policy = Policy(target_risk=0.1).fit(proba, y)
    clone = pickle.loads(pickle.dumps(policy))
    np.testing.assert_array_equal(
        clone.decide(proba).action_codes, policy.decide(proba).action_codes
    )


@given(low=st.floats(0.02, 0.2), delta=st.floats(0.0, 0.2))
def test_higher_target_risk_never_lowers_coverage(low: float, delta: float) -> None:
    rng = np.random.default_rng(7)
    proba, y = calibrated_sample(rng, 1500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        strict = Policy(target_risk=low, clarify_max_set_size=0).fit(proba, y)
        loose = Policy(target_risk=min(low + delta, 0.99), clarify_max_set_size=0).fit(proba, y)
    assert loose.validation_["coverage"] >= strict.validation_["coverage"]


def test_decide_before_fit_spells_out_the_order() -> None:
    with pytest.raises(NotFittedError, match="call fit before decide"):
        Policy().decide(np.full((2, 2), 0.5))


def test_policy_needs_an_objective() -> None:
    with pytest.raises(InputError, match="needs an objective"):
        Policy(target_risk=None).fit(np.full((4, 2), 0.5), [0, 1, 0, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_risk": 1.5}, "target_risk"),
        ({"confidence_level": 0}, "confidence_level"),
        ({"clarify_method": "raps"}, "clarify_method"),
        ({"clarify_max_set_size": -1}, "clarify_max_set_size"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        Policy(**kwargs).fit(np.full((4, 2), 0.5), [0, 1, 0, 1])  # type: ignore[arg-type]


def test_decide_rejects_probabilities_of_another_model(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 500)
    policy = Policy(target_risk=0.2).fit(proba, y)
    with pytest.raises(InputError, match="5 classes were seen in fit"):
        policy.decide(np.full((2, 3), 1 / 3))
    with pytest.raises(InputError, match="rows must sum to 1"):
        policy.decide(np.full((2, 5), 0.3))
    with pytest.raises(InputError, match="look like logits"):
        policy.decide(rng.normal(size=(2, 5)))
    with pytest.raises(InputError, match="NaN"):
        policy.decide(np.full((2, 5), np.nan))


def test_fit_rejects_labels_the_model_does_not_have() -> None:
    with pytest.raises(InputError, match=r"label\(s\) \[3\]"):
        Policy().fit(np.full((3, 2), 0.5), [0, 1, 3])


def test_decide_needs_ood_scores_when_fitted_with_them(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 500)
    policy = Policy(target_risk=0.2).fit(proba, y, ood_score=rng.normal(size=500))
    with pytest.raises(InputError, match="needs `ood_score` too"):
        policy.decide(proba)


def test_fallback_must_be_labels_not_a_callable(rng: np.random.Generator) -> None:
    proba, y = calibrated_sample(rng, 100)
    with pytest.raises(InputError, match="not the callable itself"):
        Policy(target_risk=0.2).fit(proba, y, fallback=lambda x: None)  # type: ignore[arg-type]


def test_all_fields_equal_the_fields_of_each_row() -> None:
    rng = np.random.default_rng(5)
    proba = rng.dirichlet(np.full(4, 0.4), size=3000)
    y = np.array([rng.choice(4, p=p) for p in proba])
    test = rng.dirichlet(np.full(4, 0.4), size=400)
    for ood in (rng.normal(size=3000), None):
        policy = Policy(target_risk=0.1, confidence_level=0.9, clarify_max_set_size=2)
        policy.fit(proba, y, ood_score=ood)
        decisions = policy.decide(test, None if ood is None else rng.normal(size=400))
        every = decisions.all_fields()
        assert every == [decisions.fields(i) for i in range(len(decisions))]
        assert {field["action"] for field in every} >= {Action.ANSWER, Action.ESCALATE}
