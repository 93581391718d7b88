"""The certification frontier: coverage per target risk and the data a target needs."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from failwise.exceptions import InputError, UncertifiedWarning
from failwise.policy import Policy, RiskThreshold, certification_frontier
from failwise.policy._bounds import required_answered_samples


def _clean_top_half(
    rng: np.random.Generator, n: int, top_error_rate: float = 0.004
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Few errors in the more confident half, 30 % in the other half."""
    confidence = rng.uniform(size=n)
    noise = rng.uniform(size=n)
    return confidence, np.where(confidence > 0.5, noise > top_error_rate, noise > 0.3)


def _certifies(confidence: NDArray[np.float64], correct: NDArray[np.bool_]) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        return bool(RiskThreshold().fit(confidence, correct).certified_)


def test_each_point_is_what_risk_threshold_certifies_at_that_target() -> None:
    confidence, correct = _clean_top_half(np.random.default_rng(0), 3000)
    frontier = certification_frontier(confidence, correct, target_risk=0.02)
    assert [p.target_risk for p in frontier.points] == sorted(
        p.target_risk for p in frontier.points
    )
    assert 0.02 in [p.target_risk for p in frontier.points]
    for point in frontier.points:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncertifiedWarning)
            fitted = RiskThreshold(target_risk=point.target_risk).fit(confidence, correct)
        assert point.certified == fitted.certified_
        assert point.coverage == fitted.coverage_
        assert point.threshold == fitted.threshold_
        assert point.risk_upper_bound == fitted.risk_upper_bound_


def test_a_certified_target_needs_no_more_rows() -> None:
    frontier = certification_frontier(*_clean_top_half(np.random.default_rng(1), 4000, 0.002))
    assert frontier.certified
    assert frontier.additional_rows == 0
    assert frontier.rows_needed is not None


def test_the_rows_a_target_needs_usually_certify_it_and_a_quarter_of_them_rarely_do() -> None:
    rng = np.random.default_rng(2)
    frontier = certification_frontier(*_clean_top_half(rng, 400))
    assert not frontier.certified
    assert frontier.rows_needed is not None
    assert frontier.additional_rows is not None
    assert frontier.additional_rows == frontier.rows_needed - 400
    enough = np.mean([_certifies(*_clean_top_half(rng, frontier.rows_needed)) for _ in range(30)])
    quarter = np.mean(
        [_certifies(*_clean_top_half(rng, frontier.rows_needed // 4)) for _ in range(30)]
    )
    assert enough >= 0.6
    assert quarter <= 0.6 * enough


def test_rows_needed_follow_the_documented_formula() -> None:
    confidence, correct = _clean_top_half(np.random.default_rng(6), 500, top_error_rate=0.01)
    frontier = certification_frontier(confidence, correct)
    assert frontier.planned_coverage is not None
    assert frontier.rows_needed is not None
    answered = math.ceil(frontier.planned_coverage * 500)
    top = np.argsort(confidence)[::-1][:answered]
    errors = int((~correct[top]).sum())
    assert frontier.observed_error_rate == errors / answered
    median_rate = float(stats.beta.ppf(0.5, errors + 1, answered - errors))
    needed = required_answered_samples(0.02, 1 - 0.5 * 0.05, error_rate=median_rate)
    assert frontier.rows_needed == math.ceil(needed / frontier.planned_coverage)


def test_more_errors_never_lower_the_rows_a_target_needs() -> None:
    rng = np.random.default_rng(7)
    confidence, correct = _clean_top_half(rng, 800, top_error_rate=0.006)
    before = certification_frontier(confidence, correct).rows_needed
    worse = correct.copy()
    worse[rng.choice(np.flatnonzero(correct & (confidence > 0.5)), size=2, replace=False)] = False
    after = certification_frontier(confidence, worse).rows_needed
    assert before is not None
    assert after is not None
    assert after >= before


def test_an_error_rate_at_the_target_everywhere_needs_a_better_model_not_more_rows() -> None:
    rng = np.random.default_rng(3)
    confidence = rng.uniform(size=1000)
    correct = rng.uniform(size=1000) > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        frontier = certification_frontier(confidence, correct, target_risk=0.05)
    assert frontier.rows_needed is None
    assert frontier.additional_rows is None
    assert frontier.planned_coverage is None
    best = frontier.best_target()
    assert best is not None
    assert best.target_risk >= 0.1


def test_frontier_is_plain_json_without_infinities() -> None:
    rng = np.random.default_rng(4)
    frontier = certification_frontier(*_clean_top_half(rng, 200), target_risks=[0.01, 0.3])
    payload = json.loads(json.dumps(frontier.to_dict(), allow_nan=False))
    assert [p["target_risk"] for p in payload["points"]] == [0.01, 0.02, 0.3]
    uncertified = payload["points"][0]
    assert uncertified["certified"] is False
    assert uncertified["threshold"] is None
    assert payload["confidence_level"] == 0.95
    assert payload["n_samples"] == 200


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_risk": 0.0}, r"`target_risk` must be a number in \(0, 1\); got 0.0"),
        ({"confidence_level": 1.5}, r"`confidence_level` must be a number in \(0, 1\)"),
        ({"target_risks": []}, r"`target_risks` is empty"),
        ({"target_risks": [0.1, math.nan]}, r"`target_risks\[...\]` must be a number"),
        ({"bound": "hoeffding"}, r"`bound` must be one of 'binomial', 'hoeffding_bentkus'"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        certification_frontier([0.9, 0.8], [1, 0], **kwargs)  # type: ignore[arg-type]


def test_mismatched_lengths_are_named() -> None:
    with pytest.raises(InputError, match="confidence"):
        certification_frontier([0.9, 0.8, 0.7], [1, 0])


def test_policy_reports_the_frontier_and_says_what_the_data_certifies() -> None:
    rng = np.random.default_rng(5)
    n = 400
    labels = rng.integers(0, 3, size=n)
    confidence = rng.uniform(0.4, 1.0, size=n)
    wrong = rng.uniform(size=n) > np.minimum(confidence + 0.03, 1.0)
    predicted = np.where(wrong, (labels + 1) % 3, labels)
    proba = np.full((n, 3), 0.0)
    proba[np.arange(n), predicted] = confidence
    proba[np.arange(n), (predicted + 1) % 3] = 1.0 - confidence
    with pytest.warns(
        UncertifiedWarning, match=r"This data would certify .* at target_risk=0\.\d+.*fresh labels"
    ):
        policy = Policy(clarify_max_set_size=0).fit(proba, labels)
    assert policy.frontier_ is not None
    assert not policy.frontier_.certified
    described = policy.describe()["frontier"]
    assert described == policy.frontier_.to_dict()
    json.dumps(described, allow_nan=False)
    capacity = Policy(target_risk=None, max_escalation_rate=0.5).fit(proba, labels)
    assert capacity.frontier_ is None
    assert capacity.describe()["frontier"] is None


def test_saved_policy_keeps_its_frontier() -> None:
    from failwise.artifacts import policy_from_state, policy_to_state

    rng = np.random.default_rng(8)
    proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    labels = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, labels)
    copy = policy_from_state(policy_to_state(policy))
    assert copy.frontier_ == policy.frontier_
    assert copy.describe()["frontier"] == policy.describe()["frontier"]


def test_each_target_says_how_many_more_rows_it_needs() -> None:
    frontier = certification_frontier(*_clean_top_half(np.random.default_rng(2), 400))
    records = frontier.to_records()
    assert [r["target_risk"] for r in records] == list(frontier.target_risks)
    for record, point in zip(records, frontier.points, strict=True):
        assert record["coverage"] == point.coverage
        assert record["extra_rows"] == point.additional_rows
        if point.certified:
            assert point.additional_rows == 0
    requested = next(p for p in frontier.points if p.target_risk == 0.02)
    assert requested.additional_rows == frontier.additional_rows
    # A looser target never needs more rows than a stricter one, here.
    needs = [p.additional_rows for p in frontier.points if p.additional_rows is not None]
    assert needs == sorted(needs, reverse=True)
