from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from scipy.special import log_softmax as scipy_log_softmax
from scipy.special import softmax as scipy_softmax

from failwise.calibration import log_softmax, softmax
from failwise.exceptions import InputError

logit_matrices = arrays(
    np.float64,
    st.tuples(st.integers(1, 20), st.integers(1, 8)),
    elements=st.floats(-1e4, 1e4, allow_nan=False),
)


@given(logits=logit_matrices)
def test_softmax_rows_are_probabilities_matching_scipy(logits: NDArray[np.float64]) -> None:
    proba = softmax(logits)
    assert proba.dtype == np.float64
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(proba, scipy_softmax(logits, axis=1), atol=1e-12)


@given(logits=logit_matrices)
def test_log_softmax_matches_scipy_and_the_log_of_softmax(logits: NDArray[np.float64]) -> None:
    result = log_softmax(logits)
    np.testing.assert_allclose(result, scipy_log_softmax(logits, axis=1), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.exp(result), softmax(logits), atol=1e-12)


def test_softmax_does_not_overflow_on_huge_logits() -> None:
    np.testing.assert_allclose(softmax([[1e308, 1e308, 0.0]]), [[0.5, 0.5, 0.0]])


def test_log_softmax_keeps_tiny_probabilities_accurate() -> None:
    assert log_softmax([[0.0, -800.0]])[0, 1] == pytest.approx(-800.0)


def test_softmax_upcasts_float32_and_respects_the_axis() -> None:
    logits = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    proba = softmax(logits, axis=0)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=0), 1.0)


def test_softmax_treats_negative_infinity_as_probability_zero() -> None:
    np.testing.assert_allclose(softmax([[0.0, -np.inf]]), [[1.0, 0.0]])
    assert log_softmax([[0.0, -np.inf]])[0, 1] == -np.inf


def test_softmax_rejects_nan() -> None:
    with pytest.raises(InputError, match="contains NaN"):
        softmax([[0.0, np.nan]])


def test_softmax_rejects_a_row_of_negative_infinity() -> None:
    with pytest.raises(InputError, match="every entry is -inf"):
        softmax([[-np.inf, -np.inf]])


def test_softmax_rejects_empty_input_and_bad_axis() -> None:
    with pytest.raises(InputError, match="is empty"):
        softmax(np.empty((0, 3)))
    with pytest.raises(InputError, match="`axis` must index a dimension"):
        log_softmax([[1.0, 2.0]], axis=2)
