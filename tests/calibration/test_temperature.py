from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from failwise.calibration import TemperatureScaling
from failwise.exceptions import InputError, NotFittedError
from tests.calibration.conftest import Split


def exact_nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T), in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    return float(np.mean(logsumexp(scaled, axis=1) - scaled[np.arange(len(y)), y]))


def top_label_ece(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return float(
        sum(
            abs(correct[bins == b].mean() - confidence[bins == b].mean()) * np.mean(bins == b)
            for b in np.unique(bins)
        )
    )


def test_temperature_scaling_matches_brute_force_optimum_to_1e6(cifar_logits: Split) -> None:
    data = cifar_logits
    reference = minimize_scalar(
        lambda t: exact_nll(data.scores_cal, data.y_cal, t),
        bounds=(0.05, 20.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    fitted = TemperatureScaling().fit(data.scores_cal, data.y_cal)
    assert fitted.temperature_ == pytest.approx(reference.x, rel=1e-6)
    assert fitted.nll_ == pytest.approx(reference.fun, rel=1e-9)


def test_temperature_scaling_lowers_nll_and_ece_on_overconfident_cifar_model(
    cifar_logits: Split,
) -> None:
    data = cifar_logits
    raw = np.exp(data.scores_test)
    calibrated = (
        TemperatureScaling().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    )
    assert exact_nll(data.scores_test, data.y_test, 1.0) > exact_nll(
        np.log(calibrated), data.y_test, 1.0
    )
    assert top_label_ece(calibrated, data.y_test) < 0.6 * top_label_ece(raw, data.y_test)


def test_temperature_scaling_softens_overconfident_naive_bayes_on_digits(
    digits_probs: Split,
) -> None:
    data = digits_probs
    ts = TemperatureScaling(from_probabilities=True).fit(data.scores_cal, data.y_cal)
    calibrated = ts.predict_proba(data.scores_test)
    assert ts.temperature_ > 2.0
    assert top_label_ece(calibrated, data.y_test) < 0.5 * top_label_ece(
        data.scores_test, data.y_test
    )


def test_temperature_scaling_never_changes_the_predicted_class(cifar_logits: Split) -> None:
    data = cifar_logits
    calibrated = (
        TemperatureScaling().fit(data.scores_cal, data.y_cal).predict_proba(data.scores_test)
    )
    np.testing.assert_array_equal(calibrated.argmax(axis=1), data.scores_test.argmax(axis=1))


def test_temperature_scaling_nll_is_not_worse_than_netcal(cifar_probs: Split) -> None:
    netcal_scaling = pytest.importorskip("netcal.scaling")
    data = cifar_probs
    ours = TemperatureScaling(from_probabilities=True).fit(data.scores_cal, data.y_cal)
    peer = netcal_scaling.TemperatureScaling().fit(data.scores_cal, data.y_cal)
    # netcal's `temperature` property holds the inverse temperature (its logistic weight).
    peer_temperature = 1.0 / float(np.ravel(np.asarray(peer.temperature))[0])
    logits = np.log(data.scores_cal)
    ours_nll = exact_nll(logits, data.y_cal, ours.temperature_)
    assert ours_nll <= exact_nll(logits, data.y_cal, peer_temperature) + 1e-12


def test_temperature_scaling_chunked_fit_equals_unchunked(cifar_logits: Split) -> None:
    data = cifar_logits
    whole = TemperatureScaling(chunk_size=10_000_000).fit(data.scores_cal, data.y_cal)
    chunked = TemperatureScaling(chunk_size=97).fit(data.scores_cal, data.y_cal)
    assert chunked.temperature_ == pytest.approx(whole.temperature_, rel=1e-9)
    np.testing.assert_allclose(
        chunked.predict_proba(data.scores_test), whole.predict_proba(data.scores_test), atol=1e-12
    )


def test_temperature_scaling_result_does_not_depend_on_the_number_of_threads(
    rng: np.random.Generator,
) -> None:
    y = rng.integers(0, 4, size=6000)
    logits = 2.0 * (np.eye(4)[y] + rng.normal(size=(6000, 4)))
    one = TemperatureScaling(chunk_size=100, n_threads=1).fit(logits, y)
    three = TemperatureScaling(chunk_size=100, n_threads=3).fit(logits, y)
    assert three.temperature_ == pytest.approx(one.temperature_, rel=1e-12)
    assert three.nll_ == pytest.approx(one.nll_, rel=1e-12)


def test_temperature_scaling_accepts_float32_logits_without_losing_the_optimum(
    cifar_logits: Split,
) -> None:
    data = cifar_logits
    logits32 = data.scores_cal.astype(np.float32)
    fitted32 = TemperatureScaling().fit(logits32, data.y_cal)
    fitted64 = TemperatureScaling().fit(data.scores_cal, data.y_cal)
    assert fitted32.temperature_ == pytest.approx(fitted64.temperature_, rel=1e-5)
    proba = fitted32.predict_proba(logits32)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


def test_temperature_scaling_streams_large_inputs_from_a_subsample_start(
    rng: np.random.Generator,
) -> None:
    n, k = 150_000, 8
    y = rng.integers(0, k, size=n)
    logits = (3.0 * (np.eye(k)[y] + rng.normal(size=(n, k)))).astype(np.float32)
    fitted = TemperatureScaling().fit(logits, y)
    rows = rng.choice(n, size=20_000, replace=False)
    reference = minimize_scalar(
        lambda t: exact_nll(logits, y, t),
        bounds=(0.1, 20.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert fitted.temperature_ == pytest.approx(reference.x, rel=1e-5)
    assert fitted.n_iter_ <= 3
    assert fitted.predict_proba(logits[rows]).shape == (20_000, k)


def test_temperature_scaling_from_probabilities_equals_fit_on_log_probabilities(
    cifar_probs: Split,
) -> None:
    data = cifar_probs
    from_probs = TemperatureScaling(from_probabilities=True).fit(data.scores_cal, data.y_cal)
    from_logs = TemperatureScaling().fit(np.log(data.scores_cal), data.y_cal)
    assert from_probs.temperature_ == pytest.approx(from_logs.temperature_, rel=1e-9)
    np.testing.assert_allclose(
        from_probs.predict_proba(data.scores_test),
        from_logs.predict_proba(np.log(data.scores_test)),
        atol=1e-12,
    )


def test_temperature_scaling_warns_when_calibration_data_has_no_errors() -> None:
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 1.0]])
    with pytest.warns(UserWarning, match="predicted class is always right"):
        fitted = TemperatureScaling().fit(logits, [0, 1, 2])
    assert fitted.temperature_ < 1e-3


def test_temperature_scaling_warns_when_logits_carry_no_information() -> None:
    logits = np.array([[3.0, 0.0], [0.0, 3.0]])
    with pytest.warns(UserWarning, match="carry no information"):
        fitted = TemperatureScaling().fit(logits, [1, 0])
    assert fitted.temperature_ > 1e3


def test_temperature_scaling_rejects_a_different_number_of_columns_than_in_fit() -> None:
    fitted = TemperatureScaling().fit([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]], [0, 2])
    with pytest.raises(InputError, match="has 2 columns but 3 classes were seen in fit"):
        fitted.predict_proba([[1.0, 0.0]])


def test_temperature_scaling_rejects_probabilities_that_do_not_sum_to_one() -> None:
    with pytest.raises(InputError, match="rows must sum to 1"):
        TemperatureScaling(from_probabilities=True).fit([[0.5, 0.6], [0.5, 0.5]], [0, 1])


def test_temperature_scaling_rejects_a_single_column() -> None:
    with pytest.raises(InputError, match=r"at least 2 columns.*PlattScaling"):
        TemperatureScaling().fit([[1.0], [2.0]], [0, 0])


def test_temperature_scaling_rejects_a_zero_chunk_size() -> None:
    with pytest.raises(InputError, match="`chunk_size` must be an int >= 1"):
        TemperatureScaling(chunk_size=0).fit([[1.0, 0.0], [0.0, 1.0]], [0, 1])


def test_temperature_scaling_before_fit_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match="call fit before predict_proba"):
        TemperatureScaling().predict_proba([[1.0, 0.0]])
