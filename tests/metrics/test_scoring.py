"""Brier score and negative log-likelihood."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.metrics import brier_score_loss, log_loss

from failwise.exceptions import InputError
from failwise.metrics import brier_score, negative_log_likelihood


def _problem(
    rng: np.random.Generator, n: int, n_classes: int
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    proba = rng.dirichlet(np.full(n_classes, 0.5), size=n)
    return proba, rng.integers(0, n_classes, size=n)


@pytest.mark.parametrize("n_classes", [3, 7, 50])
def test_brier_score_equals_sklearn_unhalved_multiclass_brier(
    rng: np.random.Generator, n_classes: int
) -> None:
    proba, y = _problem(rng, 2000, n_classes)
    expected = brier_score_loss(y, proba, labels=np.arange(n_classes), scale_by_half=False)
    assert brier_score(proba, y) == pytest.approx(expected, abs=1e-12)
    # sklearn's default keeps the full sum for three or more classes
    assert brier_score(proba, y) == pytest.approx(
        brier_score_loss(y, proba, labels=np.arange(n_classes)), abs=1e-12
    )


def test_binary_brier_score_is_twice_sklearns_default_binary_brier(
    rng: np.random.Generator,
) -> None:
    p = rng.uniform(size=1000)
    proba = np.column_stack([1 - p, p])
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert brier_score(proba, y) / 2 == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_brier_score_spans_zero_to_two() -> None:
    assert brier_score([[1.0, 0.0], [0.0, 1.0]], [0, 1]) == 0.0
    assert brier_score([[1.0, 0.0], [0.0, 1.0]], [1, 0]) == pytest.approx(2.0)
    assert brier_score(np.full((4, 4), 0.25), [0, 1, 2, 3]) == pytest.approx(1 - 1 / 4)


@pytest.mark.parametrize("n_classes", [2, 5, 100])
def test_negative_log_likelihood_equals_sklearn_log_loss(
    rng: np.random.Generator, n_classes: int
) -> None:
    proba, y = _problem(rng, 3000, n_classes)
    expected = log_loss(y, proba, labels=np.arange(n_classes))
    assert negative_log_likelihood(proba, y) == pytest.approx(expected, rel=1e-12)


def test_negative_log_likelihood_on_cifar10_matches_log_loss(
    cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]],
) -> None:
    proba, y = cifar10_probs
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 rows: sklearn warns beyond 1.5e-8
    assert negative_log_likelihood(proba, y) == pytest.approx(
        log_loss(y, proba, labels=np.arange(10)), rel=1e-9
    )


def test_zero_probability_on_the_true_class_costs_minus_log_eps() -> None:
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert np.isfinite(negative_log_likelihood(proba, [1, 1]))
    assert negative_log_likelihood(proba, [1, 1], eps=1e-6) == pytest.approx(-np.log(1e-6))
    assert negative_log_likelihood(proba, [1, 1]) == pytest.approx(
        log_loss([1, 1], proba, labels=[0, 1])
    )


@given(
    n=st.integers(1, 30),
    n_classes=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_scores_are_non_negative_and_brier_is_at_most_two(
    n: int, n_classes: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    proba, y = _problem(rng, n, n_classes)
    assert 0.0 <= brier_score(proba, y) <= 2.0
    assert negative_log_likelihood(proba, y) >= 0.0


@given(n_classes=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_relabelling_the_classes_changes_no_score(n_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba, y = _problem(rng, 50, n_classes)
    perm = rng.permutation(n_classes)
    inverse = np.argsort(perm)
    assert brier_score(proba[:, perm], inverse[y]) == pytest.approx(brier_score(proba, y))
    assert negative_log_likelihood(proba[:, perm], inverse[y]) == pytest.approx(
        negative_log_likelihood(proba, y)
    )


@pytest.mark.parametrize("eps", [0.0, 0.5, -1e-3, True, "small"])
def test_invalid_eps_is_rejected(eps: object) -> None:
    with pytest.raises(InputError, match=r"`eps` must be None or a number in \(0, 0.5\)"):
        negative_log_likelihood([[0.5, 0.5]], [0], eps=eps)  # type: ignore[arg-type]


def test_probabilities_outside_the_unit_interval_are_rejected_as_logits() -> None:
    with pytest.raises(InputError, match=r"must lie in \[0, 1\].*look like logits"):
        brier_score([[2.0, -1.0]], [0])


def test_string_labels_are_rejected_with_an_encoding_hint() -> None:
    with pytest.raises(InputError, match="LabelEncoder"):
        negative_log_likelihood([[0.5, 0.5]], ["cat"])
