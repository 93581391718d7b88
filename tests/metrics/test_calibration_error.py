"""Binned calibration errors and the reliability table."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from failwise.exceptions import InputError
from failwise.metrics import (
    ReliabilityTable,
    classwise_ece,
    debiased_expected_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_table,
)

netcal_metrics = pytest.importorskip("netcal.metrics")

ESTIMATORS = [
    expected_calibration_error,
    maximum_calibration_error,
    classwise_ece,
    debiased_expected_calibration_error,
]


def _dirichlet_problem(
    rng: np.random.Generator, n: int, n_classes: int, concentration: float = 0.5
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    proba = rng.dirichlet(np.full(n_classes, concentration), size=n)
    y = rng.integers(0, n_classes, size=n)
    return proba, y


def _calibrated_problem(
    rng: np.random.Generator, n: int, n_classes: int
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Labels drawn from the predicted distribution: calibrated by construction."""
    proba = rng.dirichlet(np.full(n_classes, 0.3), size=n)
    cumulative = proba.cumsum(axis=1)
    u = rng.uniform(size=(n, 1))
    y = np.minimum((u > cumulative).sum(axis=1), n_classes - 1)
    return proba, y


def _plugin_l2(proba: NDArray[np.float64], y: NDArray[np.intp], n_bins: int) -> float:
    table = reliability_table(proba, y, n_bins=n_bins, strategy="quantile")
    weights = table.count / table.n_samples
    return float(np.sqrt(np.nansum(weights * table.gap**2)))


def _equal_count_debiased_reference(
    proba: NDArray[np.float64], y: NDArray[np.intp], n_bins: int
) -> float:
    """Kumar et al.'s binning (chunks of ceil(n/B) sorted values, midpoint edges) and estimator."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    ordered = np.sort(confidence)
    size = int(np.ceil(len(ordered) / n_bins))
    chunks = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    edges = sorted({(a[-1] + b[0]) / 2.0 for a, b in itertools.pairwise(chunks)})
    ids = np.searchsorted([*edges, 1.0], confidence)
    total = 0.0
    for b in np.unique(ids):
        members = ids == b
        count = int(members.sum())
        if count < 2:
            continue
        accuracy = correct[members].mean()
        gap = confidence[members].mean() - accuracy
        total += count / len(y) * (gap**2 - accuracy * (1 - accuracy) / (count - 1))
    return float(np.sqrt(max(total, 0.0)))


# --------------------------------------------------------------------------- agreement with peers


@pytest.mark.parametrize("n_bins", [10, 15, 20])
def test_ece_and_mce_match_netcal_on_cifar10_vgg_outputs(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]], n_bins: int
) -> None:
    proba, y = cifar10_probs
    ece = expected_calibration_error(proba, y, n_bins=n_bins)
    mce = maximum_calibration_error(proba, y, n_bins=n_bins)
    assert ece == pytest.approx(netcal_metrics.ECE(bins=n_bins).measure(proba, y), abs=1e-6)
    assert mce == pytest.approx(netcal_metrics.MCE(bins=n_bins).measure(proba, y), abs=1e-6)
    assert 0.035 < ece < 0.045  # the VGG network is overconfident, as the paper reports


@pytest.mark.parametrize("n_classes", [3, 10, 100])
def test_ece_and_mce_match_netcal_on_random_multiclass_data(
    rng: np.random.Generator, n_classes: int
) -> None:
    proba, y = _dirichlet_problem(rng, 4000, n_classes)
    assert expected_calibration_error(proba, y) == pytest.approx(
        netcal_metrics.ECE(bins=15).measure(proba, y), abs=1e-6
    )
    assert maximum_calibration_error(proba, y) == pytest.approx(
        netcal_metrics.MCE(bins=15).measure(proba, y), abs=1e-6
    )


def test_netcal_binary_ece_equals_classwise_ece_not_top_label_ece(rng: np.random.Generator) -> None:
    # netcal treats labels with two values as binary and bins the positive-class probability.
    p = rng.uniform(size=3000)
    proba = np.column_stack([1 - p, p])
    y = (rng.uniform(size=p.size) < p**1.5).astype(int)
    netcal_value = netcal_metrics.ECE(bins=15).measure(proba, y)
    assert classwise_ece(proba, y) == pytest.approx(netcal_value, abs=1e-6)
    assert abs(expected_calibration_error(proba, y) - netcal_value) > 0.01


def test_ece_of_float32_probabilities_matches_float64(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]],
) -> None:
    proba, y = cifar10_probs
    proba32 = proba.astype(np.float32)
    assert expected_calibration_error(proba32, y) == pytest.approx(
        expected_calibration_error(proba, y), abs=1e-6
    )


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_one_vs_rest_table_matches_sklearn_calibration_curve_on_breast_cancer(
    strategy: str, n_bins: int
) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    proba = model.fit(X_train, y_train).predict_proba(X_test)
    table = reliability_table(proba, y_test, n_bins=n_bins, strategy=strategy, class_index=1)
    prob_true, prob_pred = calibration_curve(y_test, proba[:, 1], n_bins=n_bins, strategy=strategy)
    filled = table.count > 0
    np.testing.assert_allclose(table.accuracy[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(table.mean_confidence[filled], prob_pred, atol=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_one_vs_rest_table_matches_sklearn_calibration_curve_on_random_data(
    rng: np.random.Generator, strategy: str
) -> None:
    p = rng.beta(0.5, 0.5, size=2000)
    proba = np.column_stack([1 - p, p])
    y = (rng.uniform(size=p.size) < p).astype(int)
    table = reliability_table(proba, y, n_bins=12, strategy=strategy, class_index=1)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=12, strategy=strategy)
    filled = table.count > 0
    np.testing.assert_allclose(table.accuracy[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(table.mean_confidence[filled], prob_pred, atol=1e-12)


# --------------------------------------------------------------------------- debiased estimator


@pytest.mark.parametrize("n_bins", [5, 10, 20, 50, 100])
def test_debiased_ce_equals_the_papers_estimator_when_bins_divide_the_sample(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]], n_bins: int
) -> None:
    proba, y = cifar10_probs
    assert debiased_expected_calibration_error(proba, y, n_bins=n_bins) == pytest.approx(
        _equal_count_debiased_reference(proba, y, n_bins), abs=1e-12
    )


@pytest.mark.parametrize("n_bins", [7, 15, 30])
def test_debiased_ce_is_close_to_the_papers_estimator_for_any_bin_count(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]], n_bins: int
) -> None:
    proba, y = cifar10_probs
    assert debiased_expected_calibration_error(proba, y, n_bins=n_bins) == pytest.approx(
        _equal_count_debiased_reference(proba, y, n_bins), abs=2e-4
    )


def test_debiased_ce_is_below_plugin_and_more_stable_in_n_bins_on_cifar10(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]],
) -> None:
    proba, y = cifar10_probs
    bin_counts = [5, 10, 15, 30, 50, 100]
    debiased = np.array(
        [debiased_expected_calibration_error(proba, y, n_bins=b) for b in bin_counts]
    )
    plugin = np.array([_plugin_l2(proba, y, b) for b in bin_counts])
    assert np.all(debiased <= plugin)
    assert np.ptp(debiased) < np.ptp(plugin)
    ece = expected_calibration_error(proba, y, n_bins=15, strategy="quantile")
    assert ece <= debiased[2] <= plugin[2]  # ℓ1 <= ℓ2 on the same bins


def test_debiased_ce_is_nearly_unbiased_where_the_plugin_overestimates(seed: int) -> None:
    # Confidence uniform on [0.5, 1] and accuracy 0.05 below it: the binned ℓ2 error is 0.05.
    rng = np.random.default_rng(seed)
    plugin, debiased = [], []
    for _ in range(200):
        p = rng.uniform(0.5, 1.0, size=500)
        correct = rng.uniform(size=p.size) < p - 0.05
        proba = np.column_stack([p, 1 - p])
        y = np.where(correct, 0, 1)
        plugin.append(_plugin_l2(proba, y, 15))
        debiased.append(debiased_expected_calibration_error(proba, y, n_bins=15))
    plugin_bias = np.mean(plugin) - 0.05
    debiased_bias = np.mean(debiased) - 0.05
    assert plugin_bias > 0.01
    assert abs(debiased_bias) < plugin_bias / 3


def test_debiased_ce_is_near_zero_on_calibrated_data(rng: np.random.Generator) -> None:
    proba, y = _calibrated_problem(rng, 100_000, 5)
    assert debiased_expected_calibration_error(proba, y) < 0.01
    assert debiased_expected_calibration_error(proba, y) < _plugin_l2(proba, y, 15)


# --------------------------------------------------------------------------- properties


@st.composite
def problems(draw: st.DrawFn) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    n = draw(st.integers(1, 40))
    n_classes = draw(st.integers(2, 6))
    raw = draw(hnp.arrays(np.float64, (n, n_classes), elements=st.floats(0.0, 1.0, width=32)))
    raw = raw + 1e-3
    proba = raw / raw.sum(axis=1, keepdims=True)
    y = np.asarray(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    return proba, y


@given(
    problem=problems(), n_bins=st.integers(1, 30), strategy=st.sampled_from(["uniform", "quantile"])
)
def test_calibration_errors_lie_in_unit_interval_and_mce_bounds_ece(
    problem: tuple[NDArray[np.float64], NDArray[np.intp]], n_bins: int, strategy: str
) -> None:
    proba, y = problem
    values = [f(proba, y, n_bins=n_bins, strategy=strategy) for f in ESTIMATORS]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in values)
    ece, mce = values[0], values[1]
    assert ece <= mce + 1e-12


@given(problem=problems(), data=st.data())
def test_relabelling_the_classes_changes_no_calibration_error(
    problem: tuple[NDArray[np.float64], NDArray[np.intp]], data: st.DataObject
) -> None:
    proba, y = problem
    n_classes = proba.shape[1]
    # argmax ties break by column order, so make the largest probability unique
    proba = proba + 1e-4 * np.arange(1, n_classes + 1) / n_classes
    proba = proba / proba.sum(axis=1, keepdims=True)
    top_two = np.sort(proba, axis=1)[:, -2:]
    assume(np.all(top_two[:, 1] > top_two[:, 0] + 1e-9))
    perm = np.asarray(data.draw(st.permutations(range(n_classes))))
    inverse = np.argsort(perm)
    proba_relabelled, y_relabelled = proba[:, perm], inverse[y]
    for f in ESTIMATORS:
        for strategy in ("uniform", "quantile"):
            assert f(proba_relabelled, y_relabelled, strategy=strategy) == pytest.approx(
                f(proba, y, strategy=strategy), abs=1e-12
            )


@given(problem=problems(), n_bins=st.integers(1, 20))
def test_ece_equals_the_weighted_gap_of_its_reliability_table(
    problem: tuple[NDArray[np.float64], NDArray[np.intp]], n_bins: int
) -> None:
    proba, y = problem
    table = reliability_table(proba, y, n_bins=n_bins)
    assert table.n_samples == len(y)
    weighted = float(np.nansum(table.count / table.n_samples * np.abs(table.gap)))
    assert expected_calibration_error(proba, y, n_bins=n_bins) == pytest.approx(weighted, abs=1e-12)
    assert maximum_calibration_error(proba, y, n_bins=n_bins) == pytest.approx(
        float(np.nanmax(np.abs(table.gap))), abs=1e-12
    )


def test_ece_of_calibrated_data_shrinks_towards_zero_as_n_grows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    eces = [
        expected_calibration_error(*_calibrated_problem(rng, n, 4)) for n in (500, 5000, 100_000)
    ]
    assert eces[2] < eces[0]
    assert eces[2] < 0.01
    assert classwise_ece(*_calibrated_problem(rng, 100_000, 4)) < 0.01


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_classwise_ece_is_the_mean_of_one_vs_rest_table_errors(
    rng: np.random.Generator, strategy: str
) -> None:
    proba, y = _dirichlet_problem(rng, 30_000, 60)  # larger than one processing block
    per_class = []
    for k in range(proba.shape[1]):
        table = reliability_table(proba, y, n_bins=15, strategy=strategy, class_index=k)
        per_class.append(np.nansum(table.count / table.n_samples * np.abs(table.gap)))
    assert classwise_ece(proba, y, strategy=strategy) == pytest.approx(
        np.mean(per_class), abs=1e-12
    )


def test_ece_is_zero_when_confidence_equals_accuracy_in_every_bin() -> None:
    proba = np.array([[0.75, 0.25]] * 4 + [[0.5, 0.5]] * 2)
    y = np.array([0, 0, 0, 1, 0, 1])
    assert expected_calibration_error(proba, y) == pytest.approx(0.0, abs=1e-12)
    assert maximum_calibration_error(proba, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_is_large_for_confident_wrong_predictions() -> None:
    proba = np.array([[0.99, 0.01], [0.01, 0.99]])
    assert expected_calibration_error(proba, [1, 0]) == pytest.approx(0.99)


def test_quantile_ece_handles_heavily_tied_confidences() -> None:
    proba = np.array([[1.0, 0.0]] * 50 + [[0.6, 0.4]] * 50)
    y = np.array([0] * 50 + [0] * 30 + [1] * 20)
    assert expected_calibration_error(proba, y, strategy="quantile") == pytest.approx(
        0.0, abs=1e-12
    )
    table = reliability_table(proba, y, strategy="quantile")
    assert table.count.sum() == 100
    assert np.isnan(table.accuracy[table.count == 0]).all()


# --------------------------------------------------------------------------- reliability table


def test_reliability_table_marks_empty_bins_with_zero_count_and_nan() -> None:
    proba = np.array([[0.95, 0.05], [0.55, 0.45], [0.52, 0.48]])
    table = reliability_table(proba, [0, 1, 0], n_bins=10)
    assert table.n_bins == 10
    assert table.count.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 1]
    assert np.isnan(table.mean_confidence[:5]).all()
    assert table.accuracy[5] == pytest.approx(0.5)
    assert table.gap[5] == pytest.approx(0.535 - 0.5)
    np.testing.assert_allclose(table.bin_lower, np.linspace(0, 0.9, 10))
    np.testing.assert_allclose(table.bin_upper, np.linspace(0.1, 1.0, 10))


def test_reliability_table_to_dict_serialises_as_json_with_none_for_empty_bins() -> None:
    table = reliability_table(np.array([[0.95, 0.05], [0.55, 0.45]]), [0, 1], n_bins=4)
    as_dict = table.to_dict()
    assert set(as_dict) == {"bin_lower", "bin_upper", "count", "mean_confidence", "accuracy", "gap"}
    assert as_dict["accuracy"] == [None, None, 0.0, 1.0]
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict


def test_reliability_table_is_read_only_and_pickles() -> None:
    table = reliability_table(np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 0])
    with pytest.raises(ValueError, match="read-only"):
        table.count[0] = 3
    with pytest.raises(AttributeError):
        table.count = np.zeros(15, dtype=np.intp)  # type: ignore[misc]
    restored = pickle.loads(pickle.dumps(table))
    assert isinstance(restored, ReliabilityTable)
    np.testing.assert_array_equal(restored.count, table.count)


def test_reliability_table_quantile_bins_hold_equal_mass(rng: np.random.Generator) -> None:
    proba, y = _dirichlet_problem(rng, 1500, 4)
    table = reliability_table(proba, y, n_bins=10, strategy="quantile")
    assert table.count.tolist() == [150] * 10
    assert table.bin_lower[0] == 0.0
    assert table.bin_upper[-1] == 1.0


# --------------------------------------------------------------------------- errors


def test_probabilities_that_do_not_sum_to_one_are_rejected() -> None:
    with pytest.raises(InputError, match="rows must sum to 1; 1 row"):
        expected_calibration_error([[0.5, 0.6], [0.5, 0.5]], [0, 1])


def test_one_dimensional_probabilities_are_rejected_with_a_binary_hint() -> None:
    with pytest.raises(InputError, match=r"shape \(n_samples, n_classes\)"):
        expected_calibration_error([0.2, 0.9], [0, 1])
    with pytest.raises(InputError, match=r"at least 2 columns.*np.column_stack"):
        expected_calibration_error([[1.0], [1.0]], [0, 0])


def test_nan_probabilities_are_named_with_their_row() -> None:
    with pytest.raises(InputError, match=r"contains NaN in 1 row.*first at row 1"):
        classwise_ece([[0.5, 0.5], [np.nan, 0.5]], [0, 1])


def test_labels_beyond_the_columns_are_rejected() -> None:
    with pytest.raises(InputError, match=r"label\(s\) \[2\] but the scores have only 2 classes"):
        maximum_calibration_error([[0.5, 0.5], [0.4, 0.6]], [0, 2])


def test_out_of_scope_labels_are_rejected_with_the_fix() -> None:
    with pytest.raises(InputError, match=r"contains -1 \(out of scope\) in 1 row.*y != -1"):
        expected_calibration_error([[0.5, 0.5], [0.4, 0.6]], [0, -1])


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(InputError, match="`proba` has 2, `y` has 3"):
        debiased_expected_calibration_error([[0.5, 0.5], [0.4, 0.6]], [0, 1, 1])


def test_empty_input_is_rejected() -> None:
    with pytest.raises(InputError, match="empty"):
        expected_calibration_error(np.empty((0, 3)), np.empty(0, dtype=int))


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True, "15"])
def test_invalid_bin_counts_are_rejected(n_bins: object) -> None:
    with pytest.raises(InputError, match="`n_bins` must be an int >= 1"):
        expected_calibration_error([[0.5, 0.5]], [0], n_bins=n_bins)  # type: ignore[arg-type]


def test_unknown_strategy_is_rejected_with_the_choices() -> None:
    with pytest.raises(
        InputError, match="`strategy` must be one of 'uniform', 'quantile'; got 'equal'"
    ):
        reliability_table([[0.5, 0.5]], [0], strategy="equal")


@pytest.mark.parametrize("class_index", [2, -1, 1.0])
def test_class_index_outside_the_columns_is_rejected(class_index: object) -> None:
    with pytest.raises(InputError, match="`class_index` must be"):
        reliability_table([[0.5, 0.5]], [0], class_index=class_index)  # type: ignore[arg-type]
