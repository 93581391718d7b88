"""Behaviour every calibrator shares: output shape and range, metamorphic relations,
serialisation, the fit-before-predict order and input validation."""

from __future__ import annotations

import io
import json
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone

from failwise.calibration import (
    BaseCalibrator,
    BetaCalibration,
    CorrectnessCalibration,
    HistogramBinning,
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
    VectorScaling,
    softmax,
)
from failwise.exceptions import InputError, NotFittedError

# --------------------------------------------------------------------------- input kinds
#
# Each calibrator is exercised with the kind of input it takes:
#   "logits"  (n, K) real scores         "probs"   (n, K) probabilities, K >= 2
#   "probs3"  (n, K) probabilities, K >= 3
#   "score"   (n,) real binary score     "p1d"     (n,) positive-class probability
#   "probs2"  (n, 2) probabilities       "signals" (n, m) real confidence signals

CALIBRATORS: dict[str, tuple[Callable[[], BaseCalibrator], str]] = {
    "temperature": (TemperatureScaling, "logits"),
    "temperature-probabilities": (lambda: TemperatureScaling(from_probabilities=True), "probs"),
    "vector": (VectorScaling, "logits"),
    "platt": (PlattScaling, "score"),
    "platt-probabilities": (PlattScaling, "probs2"),
    "isotonic-binary": (IsotonicCalibration, "score"),
    "isotonic-multiclass": (IsotonicCalibration, "probs3"),
    "histogram-binary": (HistogramBinning, "p1d"),
    "histogram-multiclass": (lambda: HistogramBinning(strategy="quantile"), "probs3"),
    "beta": (BetaCalibration, "p1d"),
    "correctness-logistic": (CorrectnessCalibration, "signals"),
    "correctness-isotonic": (lambda: CorrectnessCalibration(method="isotonic"), "score"),
}

BINARY_KINDS = {"score", "p1d", "probs2", "signals"}


def make_data(kind: str, rng: np.random.Generator, n: int = 60) -> tuple[Any, Any, Any]:
    """Fit scores, fit labels and new scores of the given kind, with signal in the scores."""
    n_classes = 2 if kind in BINARY_KINDS else (4 if kind == "probs3" else 3)
    y = rng.integers(0, n_classes, size=n)
    y[:n_classes] = np.arange(n_classes)
    logits = 2.0 * np.eye(n_classes)[y] + rng.normal(size=(n, n_classes))
    new_logits = rng.normal(size=(25, n_classes)) * 2.0
    if kind == "logits":
        return logits, y, new_logits
    if kind in ("probs", "probs3", "probs2"):
        return softmax(logits), y, softmax(new_logits)
    if kind == "score":
        return logits[:, 1] - logits[:, 0], y, new_logits[:, 1] - new_logits[:, 0]
    if kind == "p1d":
        return softmax(logits)[:, 1], y, softmax(new_logits)[:, 1]
    signals = np.column_stack([logits[:, 1] - logits[:, 0], rng.normal(size=n)])
    return signals, y, rng.normal(size=(25, 2))


@pytest.fixture(params=sorted(CALIBRATORS))
def case(request: pytest.FixtureRequest) -> tuple[str, Callable[[], BaseCalibrator], str]:
    factory, kind = CALIBRATORS[request.param]
    return request.param, factory, kind


def fitted_case(case: Any, seed: int = 0) -> tuple[BaseCalibrator, Any]:
    _, factory, kind = case
    X, y, X_new = make_data(kind, np.random.default_rng(seed))
    return factory().fit(X, y), X_new


# --------------------------------------------------------------------------- properties


@st.composite
def random_problem(draw: st.DrawFn, kind: str) -> tuple[Any, Any, Any]:
    n_classes = 2 if kind in BINARY_KINDS else draw(st.integers(3 if kind == "probs3" else 2, 5))
    n = draw(st.integers(n_classes, 40))
    values = st.floats(-20.0, 20.0, allow_nan=False, allow_infinity=False)
    logits = draw(arrays(np.float64, (n, n_classes), elements=values))
    new = draw(arrays(np.float64, (draw(st.integers(1, 10)), n_classes), elements=values))
    y = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    y[:n_classes] = np.arange(n_classes)  # every class present
    if kind == "logits":
        return logits, y, new
    if kind in ("probs", "probs3", "probs2"):
        return softmax(logits), y, softmax(new)
    if kind == "score":
        return logits[:, 1], y, new[:, 1]
    if kind == "p1d":
        return softmax(logits)[:, 1], y, softmax(new)[:, 1]
    return logits, y, new


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
@given(data=st.data())
def test_calibrated_rows_lie_in_unit_interval_and_sum_to_one(
    name: str, data: st.DataObject
) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, X_new = data.draw(random_problem(kind))
    with warnings.catch_warnings():
        # Tiny random problems often hit a temperature bound, which warns by design.
        warnings.simplefilter("ignore", UserWarning)
        proba = factory().fit(X, y).predict_proba(X_new)
    assert proba.dtype == np.float64
    assert proba.shape[0] == np.shape(X_new)[0]
    assert np.all(proba >= 0.0)
    assert np.all(proba <= 1.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


@given(
    scores=arrays(np.float64, st.integers(2, 50), elements=st.floats(-1e3, 1e3)),
    labels=st.lists(st.integers(0, 1), min_size=50, max_size=50),
    grid=arrays(np.float64, st.integers(2, 30), elements=st.floats(-2e3, 2e3)),
)
def test_isotonic_output_is_monotone_in_the_score(scores: Any, labels: Any, grid: Any) -> None:
    y = np.array(labels[: scores.size])
    y[:2] = [0, 1]
    fitted = IsotonicCalibration().fit(scores, y)
    ordered = np.sort(grid)
    assert np.all(np.diff(fitted.predict_proba(ordered)[:, 1]) >= 0.0)


@pytest.mark.parametrize(
    ("name", "factory", "kind"),
    [
        ("temperature", TemperatureScaling, "logits"),
        ("isotonic", IsotonicCalibration, "probs3"),
        ("histogram-uniform", HistogramBinning, "probs3"),
        ("histogram-quantile", lambda: HistogramBinning(strategy="quantile"), "probs3"),
    ],
)
@given(data=st.data())
def test_permuting_class_columns_and_labels_permutes_the_output(
    name: Any, factory: Any, kind: Any, data: Any
) -> None:
    X, y, X_new = data.draw(random_problem(kind))
    perm = np.array(data.draw(st.permutations(range(X.shape[1]))))
    relabel = np.argsort(perm)  # old label -> new column position
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        original = factory().fit(X, y).predict_proba(X_new)
        permuted = factory().fit(X[:, perm], relabel[y]).predict_proba(X_new[:, perm])
    np.testing.assert_allclose(permuted, original[:, perm], rtol=1e-9, atol=1e-12)


def test_vector_scaling_permuting_classes_permutes_the_output(cifar_logits: Any) -> None:
    data = cifar_logits
    perm = np.random.default_rng(3).permutation(10)
    relabel = np.argsort(perm)
    original = VectorScaling().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    permuted = (
        VectorScaling()
        .fit(data.scores_cal[:, perm], relabel[data.y_cal])
        .predict_proba(data.scores_test[:, perm])
    )
    np.testing.assert_allclose(permuted, original[:, perm], atol=1e-6)


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
@given(data=st.data())
def test_batch_prediction_equals_one_by_one_prediction(name: str, data: st.DataObject) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, X_new = data.draw(random_problem(kind))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        calibrator = factory().fit(X, y)
    batch = calibrator.predict_proba(X_new)
    single = np.vstack([calibrator.predict_proba(X_new[i : i + 1]) for i in range(len(X_new))])
    np.testing.assert_allclose(single, batch, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- contract


def test_calibrator_pickles_and_predicts_identically(case: Any) -> None:
    calibrator, X_new = fitted_case(case)
    restored = pickle.loads(pickle.dumps(calibrator))
    np.testing.assert_array_equal(restored.predict_proba(X_new), calibrator.predict_proba(X_new))
    assert restored.get_params() == calibrator.get_params()


def split_state(state: dict[str, Any]) -> tuple[str, bytes]:
    """Write a state as JSON plus an .npz archive, the way a model store would."""
    fitted = state["fitted"]
    arrays_ = {k: v for k, v in fitted.items() if isinstance(v, np.ndarray)}
    plain = {**state, "fitted": {k: v for k, v in fitted.items() if k not in arrays_}}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays_)  # type: ignore[arg-type]  # numpy's stub types **kwds too narrowly
    return json.dumps(plain), buffer.getvalue()


def join_state(text: str, archive: bytes) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(text)
    with np.load(io.BytesIO(archive), allow_pickle=False) as stored:
        state["fitted"].update({k: stored[k] for k in stored.files})
    return state


def test_state_round_trip_through_json_and_arrays_predicts_identically(case: Any) -> None:
    calibrator, X_new = fitted_case(case)
    text, archive = split_state(calibrator.to_state())
    restored = type(calibrator).from_state(join_state(text, archive))
    np.testing.assert_array_equal(restored.predict_proba(X_new), calibrator.predict_proba(X_new))
    generic = BaseCalibrator.from_state(join_state(text, archive))
    assert type(generic) is type(calibrator)
    assert repr(generic) == repr(calibrator)


def test_from_state_rejects_a_state_of_another_calibrator() -> None:
    state = TemperatureScaling().fit([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]], [0, 1, 1]).to_state()
    with pytest.raises(InputError, match="holds a TemperatureScaling, not a PlattScaling"):
        PlattScaling.from_state(state)


def test_from_state_names_a_missing_fitted_attribute() -> None:
    state = TemperatureScaling().fit([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]], [0, 1, 1]).to_state()
    del state["fitted"]["temperature_"]
    with pytest.raises(InputError, match="lacks `temperature_`"):
        TemperatureScaling.from_state(state)


def test_unfitted_calibrator_says_to_call_fit_before_predict_proba(case: Any) -> None:
    _, factory, kind = case
    _, _, X_new = make_data(kind, np.random.default_rng(0))
    with pytest.raises(NotFittedError, match="call fit before predict_proba"):
        factory().predict_proba(X_new)
    with pytest.raises(NotFittedError, match="call fit before to_state"):
        factory().to_state()


def test_repr_shows_only_non_default_parameters() -> None:
    assert repr(TemperatureScaling()) == "TemperatureScaling()"
    assert repr(HistogramBinning(n_bins=10)) == "HistogramBinning(n_bins=10)"
    assert (
        repr(CorrectnessCalibration(method="isotonic"))
        == "CorrectnessCalibration(method='isotonic')"
    )


def test_scikit_learn_clone_gives_an_unfitted_copy_with_the_same_parameters(case: Any) -> None:
    calibrator, _ = fitted_case(case)
    copy = clone(calibrator)
    assert type(copy) is type(calibrator)
    assert copy.get_params() == calibrator.get_params()
    assert not hasattr(copy, "n_classes_")


def test_set_params_changes_parameters_and_rejects_unknown_ones() -> None:
    calibrator = HistogramBinning().set_params(n_bins=5)
    assert calibrator.get_params() == {"n_bins": 5, "strategy": "uniform"}
    with pytest.raises(InputError, match="has no parameter `bins`"):
        calibrator.set_params(bins=5)


# --------------------------------------------------------------------------- bad input


def test_fit_rejects_nan_scores(case: Any) -> None:
    _, factory, kind = case
    X, y, _ = make_data(kind, np.random.default_rng(0))
    X = np.array(X, dtype=np.float64)
    X[3] = np.nan
    with pytest.raises(InputError, match="contains NaN in 1 row"):
        factory().fit(X, y)


def test_fit_rejects_infinite_scores(case: Any) -> None:
    _, factory, kind = case
    X, y, _ = make_data(kind, np.random.default_rng(0))
    X = np.array(X, dtype=np.float64)
    X[5] = np.inf
    with pytest.raises(InputError, match="contains infinite values in 1 row"):
        factory().fit(X, y)


def test_fit_rejects_empty_scores(case: Any) -> None:
    _, factory, kind = case
    X, y, _ = make_data(kind, np.random.default_rng(0))
    with pytest.raises(InputError, match="is empty"):
        factory().fit(np.asarray(X)[:0], y[:0])


def test_fit_rejects_mismatched_lengths(case: Any) -> None:
    _, factory, kind = case
    X, y, _ = make_data(kind, np.random.default_rng(0))
    with pytest.raises(InputError, match="must have the same number of samples"):
        factory().fit(X, y[:-1])


def test_fit_rejects_three_dimensional_scores(case: Any) -> None:
    _, factory, kind = case
    X, y, _ = make_data(kind, np.random.default_rng(0))
    with pytest.raises(
        InputError, match=r"must (be 2-D|be 1-D or 2-D|have shape).*got shape \(60, 1, "
    ):
        factory().fit(np.asarray(X).reshape(len(y), 1, -1), y)


def test_fit_rejects_non_numeric_scores(case: Any) -> None:
    _, factory, _ = case
    with pytest.raises(InputError, match="must hold numbers; got dtype <U"):
        factory().fit(np.array([["a", "b"], ["c", "d"]]), [0, 1])


def test_fit_rejects_non_integer_labels(case: Any) -> None:
    _, factory, kind = case
    X, y, _ = make_data(kind, np.random.default_rng(0))
    with pytest.raises(InputError, match="must hold integer class indices"):
        factory().fit(X, y + 0.5)


@pytest.mark.parametrize("name", ["temperature", "vector", "isotonic-multiclass"])
def test_multiclass_fit_rejects_labels_not_among_the_score_columns(name: Any) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, _ = make_data(kind, np.random.default_rng(0))
    y = y.copy()
    y[0] = np.shape(X)[1]
    with pytest.raises(InputError, match=r"holds label\(s\) \[\d\] but the scores have only"):
        factory().fit(X, y)


@pytest.mark.parametrize(
    "name",
    [
        "temperature-probabilities",
        "platt-probabilities",
        "isotonic-multiclass",
        "histogram-multiclass",
    ],
)
def test_probability_input_rejects_rows_that_do_not_sum_to_one(name: Any) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, _ = make_data(kind, np.random.default_rng(0))
    X = X.copy()
    X[2] *= 0.5
    with pytest.raises(InputError, match="rows must sum to 1; 1 row"):
        factory().fit(X, y)


@pytest.mark.parametrize(
    "name",
    [
        "temperature-probabilities",
        "platt-probabilities",
        "isotonic-multiclass",
        "histogram-multiclass",
        "histogram-binary",
        "beta",
    ],
)
def test_probability_input_rejects_values_outside_unit_interval(name: Any) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, _ = make_data(kind, np.random.default_rng(0))
    X = X.copy()
    X[1] = -X[1]
    with pytest.raises(InputError, match=r"in \[0, 1\]; got values from -"):
        factory().fit(X, y)


@pytest.mark.parametrize("name", ["platt", "isotonic-binary", "histogram-binary", "beta"])
def test_binary_calibrator_rejects_a_single_class(name: Any) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, _ = make_data(kind, np.random.default_rng(0))
    with pytest.raises(InputError, match="holds only class 0"):
        factory().fit(X, np.zeros_like(y))


@pytest.mark.parametrize(
    "name",
    [
        "temperature",
        "temperature-probabilities",
        "vector",
        "isotonic-multiclass",
        "histogram-multiclass",
    ],
)
def test_predict_rejects_a_different_number_of_columns_than_fit(name: Any) -> None:
    factory, kind = CALIBRATORS[name]
    X, y, X_new = make_data(kind, np.random.default_rng(0))
    fitted = factory().fit(X, y)
    extra = np.hstack([X_new, np.zeros((len(X_new), 1))])
    with pytest.raises(InputError, match=r"has \d columns but \d classes were seen in fit"):
        fitted.predict_proba(extra)
