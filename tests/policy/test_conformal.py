"""ConformalPredictionSets: split-conformal LAC and APS prediction sets."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from failwise.exceptions import InputError, NotFittedError, UncertifiedWarning
from failwise.policy import ClarifyRung, ConformalPredictionSets, LadderState, run_ladder


def _dirichlet_sample(
    rng: np.random.Generator, n: int, n_classes: int, concentration: float = 0.5
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Probabilities and labels drawn from them (a calibrated model)."""
    proba = rng.dirichlet(np.full(n_classes, concentration), size=n)
    labels = (proba.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    return proba, labels


def _true_label_row(p_true: float) -> list[float]:
    rest = (1.0 - p_true) / 2
    return [p_true, rest, rest]


# ---------------------------------------------------------------------------------------
# Known cases


def test_lac_quantile_is_the_finite_sample_corrected_order_statistic() -> None:
    # Scores 1 − p_y = 0.1, 0.2, ..., 0.9; coverage 0.8 with n = 9 takes the
    # ⌈(9 + 1)·0.8⌉ = 8th smallest, 0.8.
    p_true = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    proba = np.array([_true_label_row(p) for p in p_true])
    sets = ConformalPredictionSets(method="lac", coverage=0.8).fit(proba, np.zeros(9, dtype=int))
    assert sets.quantile_ == pytest.approx(0.8)
    assert sets.n_classes_ == 3
    assert sets.n_samples_ == 9
    # LAC keeps every label with probability ≥ 1 − 0.8 = 0.2.
    mask = sets.predict_set(np.array([[0.5, 0.3, 0.2], [0.7, 0.15, 0.15], [0.1, 0.1, 0.8]]))
    assert mask.tolist() == [[True, True, True], [True, False, False], [False, False, True]]


def test_aps_score_is_the_mass_of_more_likely_labels_plus_the_true_label() -> None:
    # One calibration row per case, coverage high enough to take the largest score (n = 1:
    # ⌈2·0.5⌉ = 1st smallest = the only score).
    cases = [
        ([0.5, 0.3, 0.2], 1, 0.8),
        ([0.5, 0.3, 0.2], 0, 0.5),
        ([0.4, 0.4, 0.2], 1, 0.4),  # tied labels do not count each other
        ([0.4, 0.4, 0.2], 2, 1.0),
    ]
    for row, label, score in cases:
        sets = ConformalPredictionSets(method="aps", coverage=0.5).fit([row], [label])
        assert sets.quantile_ == pytest.approx(score)


def test_aps_set_takes_labels_until_their_mass_reaches_the_quantile() -> None:
    sets = ConformalPredictionSets(method="aps", coverage=0.5).fit([[0.6, 0.3, 0.1]], [1])
    assert sets.quantile_ == pytest.approx(0.9)
    rows = np.array([[0.5, 0.3, 0.2], [0.95, 0.04, 0.01], [0.2, 0.7, 0.1]])
    # 0.5 → 0.8 → 1.0 crosses 0.9 at the third label; 0.95 crosses at once; 0.7 → 0.9.
    assert sets.predict_set(rows).tolist() == [
        [True, True, True],
        [True, False, False],
        [True, True, False],
    ]
    assert sets.set_size(rows).tolist() == [3, 1, 2]


def test_too_few_calibration_samples_give_every_label_and_warn() -> None:
    proba = np.array([[0.7, 0.2, 0.1]] * 5)
    with pytest.warns(
        UncertifiedWarning, match=r"5 calibration samples cannot certify.*at least 9"
    ):
        sets = ConformalPredictionSets(coverage=0.9).fit(proba, [0, 1, 0, 0, 2])
    assert sets.quantile_ == np.inf
    assert sets.predict_set(proba).all()


def test_lac_set_can_be_empty_when_no_label_is_likely_enough() -> None:
    proba = np.array([_true_label_row(p) for p in np.linspace(0.95, 0.99, 50)])
    sets = ConformalPredictionSets(method="lac", coverage=0.9).fit(proba, np.zeros(50, dtype=int))
    assert sets.set_size(np.array([[0.34, 0.33, 0.33]])).tolist() == [0]


def test_randomized_aps_is_reproducible_with_a_seed_and_needs_aps() -> None:
    rng = np.random.default_rng(0)
    proba, labels = _dirichlet_sample(rng, 500, 5)
    first = ConformalPredictionSets(randomized=True, random_state=7).fit(proba, labels)
    second = ConformalPredictionSets(randomized=True, random_state=7).fit(proba, labels)
    assert first.quantile_ == second.quantile_
    assert (first.predict_set(proba) == second.predict_set(proba)).all()
    with pytest.raises(InputError, match="`randomized=True` applies to method='aps' only"):
        ConformalPredictionSets(method="lac", randomized=True).fit(proba, labels)


def test_randomized_aps_sets_are_smaller_than_deterministic_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba, labels = _dirichlet_sample(rng, 4000, 8)
    deterministic = ConformalPredictionSets().fit(proba[:2000], labels[:2000])
    randomized = ConformalPredictionSets(randomized=True, random_state=seed)
    randomized.fit(proba[:2000], labels[:2000])
    assert randomized.set_size(proba[2000:]).mean() < deterministic.set_size(proba[2000:]).mean()


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_sets_cover_the_true_label_at_the_requested_rate(seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    proba, labels = _dirichlet_sample(rng, 20_000, 6)
    sets = ConformalPredictionSets(method=method, coverage=0.9).fit(proba[:5000], labels[:5000])
    mask = sets.predict_set(proba[5000:])
    covered = mask[np.arange(15_000), labels[5000:]].mean()
    # One split: coverage ≈ 0.9 up to the spread of the calibration quantile (sd ≈ 0.004).
    assert 0.88 <= covered <= 0.93 if method == "lac" else covered >= 0.88


def test_subset_of_rows_gets_the_same_sets_as_the_whole_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba, labels = _dirichlet_sample(rng, 1000, 4)
    sets = ConformalPredictionSets().fit(proba[:500], labels[:500])
    rows = rng.choice(1000, size=37, replace=False)
    assert (sets.predict_set(proba[rows]) == sets.predict_set(proba)[rows]).all()
    singles = np.vstack([sets.predict_set(proba[[r]]) for r in rows])
    assert (singles == sets.predict_set(proba)[rows]).all()


def test_float32_probabilities_are_accepted(seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba, labels = _dirichlet_sample(rng, 600, 4)
    sets = ConformalPredictionSets().fit(proba.astype(np.float32), labels)
    assert sets.predict_set(proba.astype(np.float32)).shape == (600, 4)


def test_fitted_sets_pickle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba, labels = _dirichlet_sample(rng, 300, 3)
    sets = ConformalPredictionSets(method="lac").fit(proba, labels)
    clone = pickle.loads(pickle.dumps(sets))
    assert clone.quantile_ == sets.quantile_
    assert (clone.predict_set(proba) == sets.predict_set(proba)).all()


# ---------------------------------------------------------------------------------------
# Errors


def test_predict_set_before_fit_spells_out_the_call_order() -> None:
    with pytest.raises(NotFittedError, match="call fit before predict_set"):
        ConformalPredictionSets().predict_set([[0.5, 0.5]])
    with pytest.raises(NotFittedError, match="call fit before set_size"):
        ConformalPredictionSets().set_size([[0.5, 0.5]])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"method": "raps"}, r"`method` must be one of 'lac', 'aps'; got 'raps'"),
        ({"coverage": 1.0}, r"`coverage` must be a number in \(0, 1\); got 1.0"),
        ({"randomized": 1}, r"`randomized` must be a bool"),
        ({"random_state": -3}, r"`random_state` must be None, an int >= 0"),
    ],
)
def test_invalid_parameters_are_named_at_fit(params: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        ConformalPredictionSets(**params).fit([[0.6, 0.4]], [0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("proba", "y", "match"),
    [
        ([0.6, 0.4], [0, 1], r"`proba` must have shape \(n_samples, n_classes\)"),
        (
            [[0.6, np.nan], [0.5, 0.5]],
            [0, 1],
            r"`proba` contains NaN in 1 row\(s\), first at row 0",
        ),
        (np.empty((0, 3)), [], r"`proba` is empty"),
        ([[0.6, 0.4], [0.5, 0.5]], [0, 1, 1], r"`proba` has 2, `y` has 3"),
        ([[1.4, -0.4], [0.5, 0.5]], [0, 1], r"`proba` must lie in \[0, 1\]; got values from -0.4"),
        ([[0.6, 0.6], [0.5, 0.5]], [0, 1], r"`proba` rows must sum to 1"),
        (
            [[0.6, 0.4], [0.5, 0.5]],
            [0, 2],
            r"`y` holds label\(s\) \[2\] but the scores have only 2",
        ),
        ([[0.6, 0.4], [0.5, 0.5]], [0, -1], r"`y` must hold class indices >= 0; got -1"),
    ],
)
def test_bad_calibration_inputs_say_what_arrived(proba: object, y: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ConformalPredictionSets().fit(proba, y)  # type: ignore[arg-type]


def test_predict_set_rejects_probabilities_of_another_model() -> None:
    sets = ConformalPredictionSets().fit([[0.6, 0.3, 0.1]] * 20, [0] * 20)
    with pytest.raises(InputError, match="`proba` has 2 columns but 3 classes were seen in fit"):
        sets.predict_set([[0.5, 0.5]])
    with pytest.raises(InputError, match=r"`proba` must lie in \[0, 1\]"):
        sets.predict_set([[1.2, -0.1, -0.1]])


# ---------------------------------------------------------------------------------------
# Properties


@st.composite
def _calibration(draw: st.DrawFn) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    n = draw(st.integers(min_value=1, max_value=300))
    n_classes = draw(st.integers(min_value=2, max_value=8))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    proba, labels = _dirichlet_sample(rng, n, n_classes, draw(st.sampled_from([0.1, 1.0, 5.0])))
    if draw(st.booleans()):  # coarse probabilities: many ties
        proba = np.round(proba * 4) + 1e-3
        proba /= proba.sum(axis=1, keepdims=True)
    return proba, labels


def _fit(method: str, randomized: bool, coverage: float, data: tuple) -> ConformalPredictionSets:  # type: ignore[type-arg]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        return ConformalPredictionSets(
            method=method, coverage=coverage, randomized=randomized, random_state=0
        ).fit(*data)


_METHODS = st.sampled_from([("lac", False), ("aps", False), ("aps", True)])


@given(
    data=_calibration(),
    method=_METHODS,
    coverages=st.tuples(st.floats(0.05, 0.99), st.floats(0.05, 0.99)),
)
def test_higher_coverage_gives_nested_larger_sets(
    data: tuple[NDArray[np.float64], NDArray[np.intp]],
    method: tuple[str, bool],
    coverages: tuple[float, float],
) -> None:
    low, high = sorted(coverages)
    small = _fit(*method, low, data)
    large = _fit(*method, high, data)
    assert large.quantile_ >= small.quantile_
    small_sets, large_sets = small.predict_set(data[0]), large.predict_set(data[0])
    assert not (small_sets & ~large_sets).any()
    assert (large.set_size(data[0]) >= small.set_size(data[0])).all()


@given(data=_calibration(), coverage=st.floats(0.05, 0.99))
def test_deterministic_aps_sets_always_hold_the_most_likely_labels(
    data: tuple[NDArray[np.float64], NDArray[np.intp]], coverage: float
) -> None:
    proba = data[0]
    mask = _fit("aps", False, coverage, data).predict_set(proba)
    most_likely = proba == proba.max(axis=1, keepdims=True)
    assert not (most_likely & ~mask).any()


@given(data=_calibration(), coverage=st.floats(0.05, 0.99))
def test_lac_sets_hold_exactly_the_labels_above_one_minus_the_quantile(
    data: tuple[NDArray[np.float64], NDArray[np.intp]], coverage: float
) -> None:
    sets = _fit("lac", False, coverage, data)
    assert (sets.predict_set(data[0]) == (1.0 - data[0] <= sets.quantile_)).all()
    assert math.isinf(sets.quantile_) or 0.0 <= sets.quantile_ <= 1.0


@given(
    data=_calibration(), method=_METHODS, seed=st.integers(0, 1000), coverage=st.floats(0.1, 0.95)
)
def test_relabelling_the_classes_permutes_the_sets(
    data: tuple[NDArray[np.float64], NDArray[np.intp]],
    method: tuple[str, bool],
    seed: int,
    coverage: float,
) -> None:
    proba, labels = data
    perm = np.random.default_rng(seed).permutation(proba.shape[1])
    base = _fit(*method, coverage, data)
    moved = _fit(*method, coverage, (proba[:, perm], np.argsort(perm)[labels]))
    assert moved.quantile_ == base.quantile_
    assert (moved.predict_set(proba[:, perm]) == base.predict_set(proba)[:, perm]).all()


def test_clones_and_parameters_follow_scikit_learn() -> None:
    from sklearn.base import clone

    sets = ConformalPredictionSets(method="lac", coverage=0.8)
    assert clone(sets).get_params() == sets.get_params()
    with pytest.raises(InputError, match="ConformalPredictionSets has no parameter `alpha`"):
        sets.set_params(alpha=0.1)


@given(data=_calibration(), coverage=st.floats(0.05, 0.99), max_set_size=st.integers(1, 7))
def test_clarify_rung_aps_sets_equal_predict_set_bit_for_bit(
    data: tuple[NDArray[np.float64], NDArray[np.intp]], coverage: float, max_set_size: int
) -> None:
    # The calibration rows themselves: scores equal to the quantile, ties, every boundary.
    proba = data[0]
    sets = _fit("aps", False, coverage, data)
    state = LadderState(proba, proba.max(axis=1), proba.argmax(axis=1))
    run_ladder(state, [ClarifyRung(sets, max_set_size)])
    reference = sets.predict_set(proba)
    sizes = reference.sum(axis=1)
    expected = np.flatnonzero((sizes >= 1) & (sizes <= max_set_size))
    order = np.argsort(state.set_rows)
    np.testing.assert_array_equal(state.set_rows[order], expected)
    np.testing.assert_array_equal(state.set_masks[order], reference[expected])
