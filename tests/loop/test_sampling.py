"""Labels with known, unequal inclusion probabilities: thinning and inverse-probability weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.typing import NDArray

from failwise.exceptions import InputError, UncertifiedWarning
from failwise.loop import inverse_probability_resample, uniform_subsample
from failwise.policy import RiskThreshold


def _selection(
    n: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Confidences of calibrated answers, the old policy's review probability, the draws."""
    confidence = rng.beta(5.0, 1.2, size=n)
    probability = np.where(confidence < 0.6, 1.0, 0.1)  # low confidence is escalated
    selected = rng.random(n) < probability
    return confidence, probability, selected


def test_thinning_gives_every_task_the_same_inclusion_probability() -> None:
    rng = np.random.default_rng(0)
    confidence, probability, selected = _selection(200_000, rng)
    kept = uniform_subsample(probability, selected, rng)
    assert not (kept & ~selected).any()
    for stratum in (probability == 1.0, probability == 0.1):
        assert kept[stratum].mean() == pytest.approx(0.1, abs=0.005)
    # ... so the kept confidences follow traffic, while the selected ones do not.
    assert np.median(confidence[kept]) == pytest.approx(np.median(confidence), abs=0.01)
    assert np.median(confidence[selected]) < np.median(confidence) - 0.05


def test_a_task_that_can_never_be_labelled_leaves_no_uniform_sample() -> None:
    probability = np.array([0.0, 0.5, 1.0])
    kept = uniform_subsample(probability, np.array([False, True, True]), np.random.default_rng(0))
    assert not kept.any()


def test_inverse_probability_resample_estimates_traffic_averages() -> None:
    rng = np.random.default_rng(1)
    confidence, probability, selected = _selection(100_000, rng)
    rows = np.flatnonzero(selected)
    drawn = rows[inverse_probability_resample(1.0 / probability[rows], 200_000, rng)]
    assert confidence[drawn].mean() == pytest.approx(confidence.mean(), abs=0.005)
    assert confidence[rows].mean() < confidence.mean() - 0.05  # unweighted is biased


def test_resampling_refuses_negative_or_empty_weights() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match=r"non-empty 1-D array"):
        inverse_probability_resample(np.array([]), 3, rng)
    with pytest.raises(InputError, match=r">= 0 with a positive sum"):
        inverse_probability_resample(np.array([1.0, -1.0]), 3, rng)


@pytest.mark.slow
def test_the_certificate_on_the_thinned_sample_holds_under_unequal_inclusion() -> None:
    """Over many logs, P(certified threshold has true risk > target) ≤ δ (+ slack)."""
    target, level, seeds = 0.1, 0.9, 300
    reference = np.sort(np.random.default_rng(99).beta(5.0, 1.2, size=1_000_000))[::-1]
    # True selective risk of "answer confidence >= t" for calibrated confidences.
    risk_at = np.cumsum(1.0 - reference) / np.arange(1, reference.size + 1)
    violations = certified = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        confidence, probability, selected = _selection(3000, rng)
        correct = rng.random(confidence.size) < confidence
        kept = uniform_subsample(probability, selected, rng)
        fit = RiskThreshold(target_risk=target, confidence_level=level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncertifiedWarning)  # counted below instead
            fit.fit(confidence[kept], correct[kept])
        if not fit.certified_:
            continue
        certified += 1
        answered = int(np.searchsorted(-reference, -fit.threshold_, side="right"))
        violations += bool(risk_at[max(answered - 1, 0)] > target)
    delta = 1.0 - level
    assert certified > 0.5 * seeds, certified
    assert violations / seeds <= delta + 3.0 * np.sqrt(delta * (1.0 - delta) / seeds)
