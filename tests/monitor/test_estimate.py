"""The label-free estimate and its audit check, judged by their frequency properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from failwise.exceptions import InputError
from failwise.monitor import estimate_accuracy, poisson_binomial_cdf

WINDOWS = 400


def _window(rng: np.random.Generator, m: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences of ``m`` answers and whether each was right (right w.p. ``c - shift``)."""
    confidence = rng.beta(9.0, 1.0, size=m)
    correct = rng.random(m) < np.clip(confidence - shift, 0.0, 1.0)
    return confidence, correct


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=0, max_size=12))
def test_poisson_binomial_cdf_matches_brute_force_enumeration(p: list[float]) -> None:
    cdf = poisson_binomial_cdf(np.array(p, dtype=float))
    pmf = np.zeros(len(p) + 1)
    for outcome in range(2 ** len(p)):
        bits = [(outcome >> i) & 1 for i in range(len(p))]
        pmf[sum(bits)] += np.prod([q if b else 1 - q for q, b in zip(p, bits, strict=True)])
    assert cdf == pytest.approx(np.cumsum(pmf), abs=1e-12)
    assert np.all(np.diff(cdf) >= -1e-15)


def test_poisson_binomial_cdf_with_equal_probabilities_is_the_binomial() -> None:
    cdf = poisson_binomial_cdf(np.full(300, 0.83))
    assert cdf == pytest.approx(stats.binom.cdf(np.arange(301), 300, 0.83), abs=1e-10)


def test_label_free_interval_covers_realised_accuracy_when_calibration_holds() -> None:
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(WINDOWS):
        confidence, correct = _window(rng, 350)
        result = estimate_accuracy(confidence)
        covered += result.low <= correct.mean() <= result.high
    assert covered / WINDOWS >= 0.93


def test_calibration_broken_alarms_at_most_at_its_level_when_calibration_holds() -> None:
    rng = np.random.default_rng(1)
    alarms = 0
    for _ in range(WINDOWS):
        confidence, correct = _window(rng, 350)
        result = estimate_accuracy(
            confidence, audit_confidence=confidence[:200], audit_correct=correct[:200]
        )
        alarms += result.calibration_broken
    # Exact test at 5 %: allow three standard errors of 400 Bernoulli(0.05) draws.
    assert alarms / WINDOWS <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / WINDOWS)


def test_calibration_broken_fires_when_answers_are_ten_points_worse_than_confidence() -> None:
    rng = np.random.default_rng(2)
    fired = sum(
        estimate_accuracy(c, audit_confidence=c[:200], audit_correct=y[:200]).calibration_broken
        for c, y in (_window(rng, 350, shift=0.10) for _ in range(100))
    )
    assert fired >= 90


def test_weighted_calibration_test_matches_brute_force_and_keeps_its_level() -> None:
    rng = np.random.default_rng(5)
    confidence = rng.uniform(0.6, 1.0, size=8)
    flagged = np.array([True, False, True, False, False, True, False, False])
    correct = np.array([1, 1, 0, 1, 1, 0, 1, 1])
    result = estimate_accuracy(
        confidence,
        audit_confidence=confidence,
        audit_correct=correct,
        audit_unseen=flagged,
        unseen_weight=3,
    )
    weights = np.where(flagged, 3, 1)
    observed = int(weights @ correct)
    tail = 0.0
    for outcome in range(2**8):
        bits = np.array([(outcome >> i) & 1 for i in range(8)])
        if weights @ bits <= observed:
            tail += float(np.prod(np.where(bits == 1, confidence, 1 - confidence)))
    assert result.calibration_p_value == pytest.approx(tail, abs=1e-12)
    # Calibrated answers, a third of them flagged at random: the weighted test keeps 5 %.
    alarms = 0
    for _ in range(WINDOWS):
        confidence, right = _window(rng, 350)
        alarms += estimate_accuracy(
            confidence,
            audit_confidence=confidence[:200],
            audit_correct=right[:200],
            audit_unseen=rng.random(200) < 1 / 3,
        ).calibration_broken
    assert alarms / WINDOWS <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / WINDOWS)


def test_weighting_flagged_answers_finds_errors_concentrated_among_them() -> None:
    rng = np.random.default_rng(6)
    plain = weighted = 0
    for _ in range(100):
        confidence, right = _window(rng, 350)
        flagged = np.zeros(350, dtype=bool)
        flagged[:40] = True
        right[:40] &= rng.random(40) < 0.7  # a fifth of the flagged answers go wrong
        kwargs = {"audit_confidence": confidence[:200], "audit_correct": right[:200]}
        plain += estimate_accuracy(confidence, **kwargs).calibration_broken  # type: ignore[arg-type]
        weighted += estimate_accuracy(
            confidence,
            audit_unseen=flagged[:200],
            unseen_weight=3,
            **kwargs,  # type: ignore[arg-type]
        ).calibration_broken
    assert weighted > plain + 10


def test_audit_corrected_estimate_is_unbiased_and_covers_when_calibration_is_broken() -> None:
    rng = np.random.default_rng(3)
    errors, covered = [], 0
    for _ in range(WINDOWS):
        confidence, correct = _window(rng, 350, shift=0.15)
        audited = rng.choice(350, size=200, replace=False)
        result = estimate_accuracy(
            confidence, audit_confidence=confidence[audited], audit_correct=correct[audited]
        )
        assert result.corrected is not None
        assert result.corrected_low is not None
        assert result.corrected_high is not None
        truth = correct.mean()
        errors.append(result.corrected - truth)
        covered += result.corrected_low <= truth <= result.corrected_high
        # The label-free estimate alone is far off: that is what the audit is for.
        assert result.estimate - truth > 0.05
    assert abs(np.mean(errors)) <= 0.01
    assert covered / WINDOWS >= 0.93


@pytest.mark.parametrize(("low", "n_audited"), [(0.95, 200), (0.9, 50)])
def test_audit_corrected_interval_covers_when_the_audits_hold_few_errors(
    low: float, n_audited: int
) -> None:
    # Confident, calibrated answers: a handful of audited errors, a skewed residual mean
    # (the normal interval alone covered about 0.92 and 0.88 here).
    rng = np.random.default_rng(4)
    covered, halves = 0, []
    simulations = 1000
    for _ in range(simulations):
        confidence = rng.uniform(low, 1.0, 400)
        correct = rng.random(400) < confidence
        audited = rng.choice(400, size=n_audited, replace=False)
        result = estimate_accuracy(
            confidence, audit_confidence=confidence[audited], audit_correct=correct[audited]
        )
        assert result.corrected_low is not None
        assert result.corrected_high is not None
        assert result.corrected_low <= (result.corrected or 0.0) <= result.corrected_high
        covered += result.corrected_low <= correct.mean() <= result.corrected_high
        halves.append((result.corrected_high - result.corrected_low) / 2)
    assert covered / simulations >= 0.94
    assert np.mean(halves) <= (0.025 if n_audited == 200 else 0.08)


def test_without_answers_the_estimate_says_so_instead_of_crashing() -> None:
    result = estimate_accuracy(np.empty(0))
    assert result.n_answers == 0
    assert np.isnan(result.estimate)
    assert any("no automatic answers" in note for note in result.notes)
    assert result.to_dict()["estimate"] is None


def test_without_audits_the_estimate_names_what_it_cannot_see() -> None:
    result = estimate_accuracy(np.array([0.9, 0.95]))
    assert result.calibration_p_value is None
    assert not result.calibration_broken
    assert any("audit_rate" in note for note in result.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"audit_confidence": [0.9]}, "Pass both `audit_confidence` and `audit_correct`"),
        ({"audit_confidence": [0.9], "audit_correct": [2]}, "must hold 0/1 or booleans"),
        ({"audit_confidence": [0.9, 0.8], "audit_correct": [1]}, "same number of samples"),
        ({"confidence_level": 1.0}, r"`confidence_level` must be a number in \(0, 1\)"),
        ({"alternative": "lower"}, "`alternative` must be one of"),
        (
            {"audit_confidence": [0.9], "audit_correct": [1], "audit_unseen": [2]},
            "`audit_unseen` must be 1-D booleans",
        ),
        (
            {"audit_confidence": [0.9], "audit_correct": [1], "audit_unseen": [True, False]},
            "same number of samples",
        ),
        ({"unseen_weight": 0}, "`unseen_weight` must be"),
    ],
)
def test_bad_arguments_are_named_with_what_was_expected(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        estimate_accuracy(np.array([0.9, 0.8, 0.7]), **kwargs)  # type: ignore[arg-type]


def test_more_audits_than_answers_is_an_input_error() -> None:
    with pytest.raises(InputError, match="audited answers are a subset"):
        estimate_accuracy([0.9], audit_confidence=[0.9, 0.8], audit_correct=[1, 0])


def test_confidence_outside_unit_interval_is_rejected() -> None:
    with pytest.raises(InputError, match=r"must lie in \[0, 1\]"):
        estimate_accuracy([0.5, 1.5])
