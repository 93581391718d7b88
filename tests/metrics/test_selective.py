"""Risk–coverage curve, AURC and E-AURC."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from failwise.exceptions import InputError
from failwise.metrics import aurc, excess_aurc, risk_coverage_curve


def _slow_aurc(confidence: list[float], correct: list[bool]) -> float:
    """Mean over samples of the error rate among all samples at least as confident."""
    scores = np.asarray(confidence, dtype=float)
    errors = 1 - np.asarray(correct, dtype=float)
    risks = [errors[scores >= s].mean() for s in scores]
    return float(np.mean(risks))


pairs = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 8).map(lambda v: v / 8), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@given(pairs)
def test_aurc_matches_the_mean_of_risks_over_coverage_points(
    pair: tuple[list[float], list[bool]],
) -> None:
    confidence, correct = pair
    assert aurc(confidence, correct) == pytest.approx(_slow_aurc(confidence, correct), abs=1e-12)


@given(pairs)
def test_curve_accepts_tied_samples_together_and_matches_a_slow_reference(
    pair: tuple[list[float], list[bool]],
) -> None:
    confidence, correct = pair
    curve = risk_coverage_curve(confidence, correct)
    scores, ok = np.asarray(confidence), np.asarray(correct)
    np.testing.assert_array_equal(curve.thresholds, np.unique(scores)[::-1])
    for threshold, coverage, risk in zip(curve.thresholds, curve.coverage, curve.risk, strict=True):
        accepted = scores >= threshold
        assert coverage == pytest.approx(accepted.mean())
        assert risk == pytest.approx(1 - ok[accepted].mean())
    assert curve.coverage[-1] == 1.0
    assert np.all(np.diff(curve.coverage) > 0)


@given(pairs)
def test_excess_aurc_is_non_negative_and_zero_for_an_ideal_ranking(
    pair: tuple[list[float], list[bool]],
) -> None:
    confidence, correct = pair
    assert excess_aurc(confidence, correct) >= 0.0
    ideal = np.asarray(correct, dtype=float) + np.linspace(0, 0.5, len(correct))
    assert excess_aurc(ideal, correct) == pytest.approx(0.0, abs=1e-12)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_risk_is_zero_everywhere_when_every_prediction_is_correct(scores: list[float]) -> None:
    correct = [True] * len(scores)
    curve = risk_coverage_curve(scores, correct)
    assert np.all(curve.risk == 0.0)
    assert aurc(scores, correct) == 0.0
    assert excess_aurc(scores, correct) == 0.0


@given(pairs, st.randoms(use_true_random=False))
def test_aurc_does_not_depend_on_input_order(
    pair: tuple[list[float], list[bool]], random: object
) -> None:
    confidence, correct = pair
    order = list(range(len(confidence)))
    random.shuffle(order)  # type: ignore[attr-defined]
    assert aurc([confidence[i] for i in order], [correct[i] for i in order]) == pytest.approx(
        aurc(confidence, correct), abs=1e-12
    )


def test_aurc_of_a_constant_score_is_the_error_rate() -> None:
    correct = [1, 0, 1, 1, 0]
    assert aurc([0.5] * 5, correct) == pytest.approx(0.4)
    curve = risk_coverage_curve([0.5] * 5, correct)
    assert curve.coverage.tolist() == [1.0]


def test_ideal_aurc_approaches_geifmans_closed_form_for_large_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    correct = rng.uniform(size=200_000) > 0.2
    ideal_scores = correct + rng.uniform(0, 0.5, size=correct.size)
    r = 1 - correct.mean()
    closed_form = r + (1 - r) * np.log(1 - r)
    assert aurc(ideal_scores, correct) == pytest.approx(closed_form, abs=1e-4)


def test_better_ranking_has_lower_aurc_on_cifar10(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]], seed: int
) -> None:
    proba, y = cifar10_probs
    correct = proba.argmax(axis=1) == y
    softmax_response = proba.max(axis=1)
    random_scores = np.random.default_rng(seed).uniform(size=len(y))
    assert aurc(softmax_response, correct) < aurc(random_scores, correct)
    assert excess_aurc(softmax_response, correct) < excess_aurc(random_scores, correct)
    assert aurc(random_scores, correct) == pytest.approx(1 - correct.mean(), abs=0.01)


def test_curve_accepts_any_real_score_and_booleans() -> None:
    curve = risk_coverage_curve(np.array([-3.0, 7.5, 0.0]), np.array([False, True, True]))
    assert curve.thresholds.tolist() == [7.5, 0.0, -3.0]
    assert curve.risk.tolist() == pytest.approx([0.0, 0.0, 1 / 3])


def test_curve_is_read_only_pickles_and_serialises() -> None:
    curve = risk_coverage_curve([0.9, 0.1], [1, 0])
    with pytest.raises(ValueError, match="read-only"):
        curve.risk[0] = 1.0
    restored = pickle.loads(pickle.dumps(curve))
    np.testing.assert_array_equal(restored.coverage, curve.coverage)
    assert curve.to_dict() == {"thresholds": [0.9, 0.1], "coverage": [0.5, 1.0], "risk": [0.0, 0.5]}


def test_non_binary_correctness_is_rejected() -> None:
    with pytest.raises(
        InputError, match=r"`correct` must be binary \(0/1 or bool\); got values \[0, 1, 2\]"
    ):
        aurc([0.1, 0.2, 0.3], [0, 1, 2])


def test_nan_confidence_is_rejected() -> None:
    with pytest.raises(InputError, match="`confidence` contains NaN"):
        risk_coverage_curve([0.1, np.nan], [0, 1])


def test_two_dimensional_confidence_is_rejected() -> None:
    with pytest.raises(InputError, match=r"`confidence` must be 1-D; got shape \(2, 2\)"):
        aurc([[0.1, 0.9], [0.2, 0.8]], [0, 1])


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(InputError, match="`confidence` has 3, `correct` has 2"):
        excess_aurc([0.1, 0.2, 0.3], [0, 1])


def test_empty_input_is_rejected() -> None:
    with pytest.raises(InputError, match="empty"):
        aurc([], [])
