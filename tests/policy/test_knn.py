"""Mahalanobis distance to the nearest class centre (the k-NN distance is tested with the
other out-of-scope scores in test_ood.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.covariance import LedoitWolf

from failwise.exceptions import InputError, NotFittedError
from failwise.policy import MahalanobisDistance


def _classes(rng: np.random.Generator, n_per_class: int = 40) -> tuple[np.ndarray, np.ndarray]:
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    y = np.repeat(np.arange(3), n_per_class)
    spread = np.array([1.0, 0.2, 0.5])  # not isotropic: Mahalanobis differs from Euclidean
    return centres[y] + rng.normal(size=(y.size, 3)) * spread, y


def test_mahalanobis_matches_a_direct_computation(rng: np.random.Generator) -> None:
    X, y = _classes(rng)
    query = rng.normal(size=(7, 3)) * 4
    centres = np.stack([X[y == c].mean(axis=0) for c in range(3)])
    precision = np.linalg.inv(LedoitWolf(assume_centered=True).fit(X - centres[y]).covariance_)
    expected = np.min(
        [np.einsum("ij,jk,ik->i", query - m, precision, query - m) for m in centres], axis=0
    )
    distance = MahalanobisDistance(normalise=False).fit(X, y)
    assert distance.score(query) == pytest.approx(expected, rel=1e-8)
    assert 0.0 <= distance.shrinkage_ <= 1.0
    assert distance.classes_.tolist() == [0, 1, 2]


def test_mahalanobis_follows_the_spread_of_the_classes(rng: np.random.Generator) -> None:
    X, y = _classes(rng)
    distance = MahalanobisDistance(normalise=False).fit(X, y)
    # Equally far in Euclidean terms, but along the narrow axis the step is unusual.
    wide, narrow = distance.score([[1.5, 0.0, 0.0], [0.0, 1.5, 0.0]])
    assert narrow > 10 * wide
    assert distance.score([[30.0, 30.0, 30.0]])[0] > distance.score(X).max()


def test_mahalanobis_ignores_class_names_and_row_order(rng: np.random.Generator) -> None:
    X, y = _classes(rng)
    query = rng.normal(size=(20, 3)) * 3
    base = MahalanobisDistance(normalise=False).fit(X, y).score(query)
    order = rng.permutation(y.size)
    names = np.array(["c", "a", "b"])[y]
    renamed = MahalanobisDistance(normalise=False).fit(X[order], names[order])
    assert renamed.score(query) == pytest.approx(base, rel=1e-8)
    assert renamed.classes_.tolist() == ["a", "b", "c"]


def test_mahalanobis_batch_equals_one_by_one_and_pickles(rng: np.random.Generator) -> None:
    X, y = _classes(rng)
    distance = MahalanobisDistance().fit(X, y)
    query = rng.normal(size=(5, 3))
    batch = distance.score(query)
    assert [distance.score(row[None, :])[0] for row in query] == pytest.approx(batch)
    assert pickle.loads(pickle.dumps(distance)).score(query) == pytest.approx(batch)


def test_normalised_mahalanobis_ignores_the_length_of_each_row(
    rng: np.random.Generator,
) -> None:
    X, y = _classes(rng)
    X = X + 1.0  # keep rows away from the origin
    distance = MahalanobisDistance().fit(X, y)
    query = rng.normal(size=(6, 3)) + 1.0
    assert distance.score(query * 7.5) == pytest.approx(distance.score(query))


def test_mahalanobis_errors_name_the_problem(rng: np.random.Generator) -> None:
    X, y = _classes(rng)
    with pytest.raises(NotFittedError, match="fit"):
        MahalanobisDistance().score(X)
    with pytest.raises(InputError, match=r"dense.*KNNDistance"):
        MahalanobisDistance().fit(sp.csr_matrix(X), y)
    with pytest.raises(InputError, match="one label per row"):
        MahalanobisDistance().fit(X, y[:-1])
    with pytest.raises(InputError, match="more training rows than classes"):
        MahalanobisDistance().fit(X[:3], [0, 1, 2])
    with pytest.raises(InputError, match="2 features but MahalanobisDistance was fitted on 3"):
        MahalanobisDistance().fit(X, y).score(X[:, :2])
    with pytest.raises(InputError, match="NaN"):
        MahalanobisDistance().fit(X, y).score([[np.nan, 0.0, 0.0]])
    with pytest.raises(InputError, match="normalise"):
        MahalanobisDistance(normalise="yes").fit(X, y)  # type: ignore[arg-type]
