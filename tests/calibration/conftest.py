"""Real-data fixtures for the calibrator tests: model outputs split into calibration and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB


@dataclass(frozen=True)
class Split:
    """Model scores and labels, halved into a calibration part and a test part."""

    scores_cal: NDArray[np.float64]
    y_cal: NDArray[np.intp]
    scores_test: NDArray[np.float64]
    y_test: NDArray[np.intp]


def _halves(scores: NDArray[np.float64], y: NDArray[np.intp], seed: int) -> Split:
    order = np.random.default_rng(seed).permutation(len(y))
    cal, test = order[: len(y) // 2], order[len(y) // 2 :]
    return Split(scores[cal], y[cal], scores[test], y[test])


@pytest.fixture
def cifar_logits(cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]], seed: int) -> Split:
    """CIFAR-10 VGG log-probabilities used as logits, split into random halves."""
    probs, labels = cifar10_probs
    return _halves(np.log(probs), labels, seed)


@pytest.fixture
def cifar_probs(cifar10_probs: tuple[NDArray[np.float64], NDArray[np.intp]], seed: int) -> Split:
    """CIFAR-10 VGG softmax probabilities, split into random halves."""
    probs, labels = cifar10_probs
    return _halves(probs, labels, seed)


@pytest.fixture(scope="session")
def _digits_nb() -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Gaussian naive Bayes on half of ``load_digits``: probabilities on the other half."""
    X, y = load_digits(return_X_y=True)
    X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, test_size=0.5, random_state=0)
    model = GaussianNB().fit(X_fit, y_fit)
    return model.predict_proba(X_rest), np.asarray(y_rest, dtype=np.intp)


@pytest.fixture
def digits_probs(_digits_nb: tuple[NDArray[np.float64], NDArray[np.intp]], seed: int) -> Split:
    """An overconfident 10-class model (naive Bayes on digits): probabilities, split in halves."""
    probs, labels = _digits_nb
    return _halves(probs, labels, seed)


@pytest.fixture(scope="session")
def _cancer_nb() -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    X, y = load_breast_cancer(return_X_y=True)
    X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, test_size=0.6, random_state=0)
    model = GaussianNB().fit(X_fit, y_fit)
    return model.predict_proba(X_rest), np.asarray(y_rest, dtype=np.intp)


@pytest.fixture
def cancer_probs(_cancer_nb: tuple[NDArray[np.float64], NDArray[np.intp]], seed: int) -> Split:
    """An overconfident binary model (naive Bayes on breast cancer): (n, 2) probabilities."""
    probs, labels = _cancer_nb
    return _halves(probs, labels, seed)
