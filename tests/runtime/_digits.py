"""A real guarded system on scikit-learn's digits, shared by the runtime and artefact tests.

Digits 0–7 are the model's classes; 8 and 9 are out of scope (label -1). A logistic
regression gives logits, temperature scaling calibrates them, a k-nearest-neighbour
distance on the pixels scores out-of-scope inputs, and a nearest-centroid rule is the
deterministic fallback (it answers only when one centroid is clearly nearest).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from failwise import KNNDistance, OutcomeCosts, Policy, TemperatureScaling
from failwise.exceptions import UncertifiedWarning
from failwise.policy import apply_fallback

N_CLASSES = 8


class CentroidRule:
    """Nearest class centroid, when it is clearly nearer than the second nearest."""

    def __init__(self, X: NDArray[np.float64], y: NDArray[np.intp], margin: float = 1.25):
        self.centroids = np.stack([X[y == k].mean(axis=0) for k in range(N_CLASSES)])
        self.margin = margin

    def __call__(self, x: Any) -> int | None:
        distances = np.linalg.norm(self.centroids - np.asarray(x, dtype=float), axis=1)
        first, second = np.sort(distances)[:2]
        return int(distances.argmin()) if second > self.margin * first else None


@dataclass
class Digits:
    X_val: NDArray[np.float64]
    y_val: NDArray[np.intp]
    X_test: NDArray[np.float64]
    y_test: NDArray[np.intp]
    model: LogisticRegression
    calibrator: TemperatureScaling
    knn: KNNDistance
    rule: CentroidRule

    def logits(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.model.decision_function(X), dtype=np.float64)

    def proba(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.calibrator.predict_proba(self.logits(X))

    def ood(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.knn.score(X)

    def fallback_labels(self, X: NDArray[np.float64]) -> NDArray[np.intp]:
        return apply_fallback(self.rule, list(X)).labels


@cache
def digits() -> Digits:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    labels = np.where(y >= N_CLASSES, -1, y).astype(np.intp)
    in_scope = labels >= 0
    train = np.flatnonzero(in_scope)[:600]
    rest = np.setdiff1d(np.arange(len(y)), train)
    val, test = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    model = LogisticRegression(C=0.05, max_iter=2000).fit(X[train], labels[train])
    val_in = val[labels[val] >= 0]
    calibrator = TemperatureScaling().fit(model.decision_function(X[val_in]), labels[val_in])
    knn = KNNDistance(n_neighbors=5, metric="euclidean").fit(X[train])
    rule = CentroidRule(X[train], labels[train])
    return Digits(X[val], labels[val], X[test], labels[test], model, calibrator, knn, rule)


def fit_policy(data: Digits, *, ood: bool = False, fallback: bool = False, **params: Any) -> Policy:
    """A policy fitted on the validation split (with OOD scores and fallback labels if asked)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        return Policy(**params).fit(
            data.proba(data.X_val),
            data.y_val,
            ood_score=data.ood(data.X_val) if ood else None,
            fallback=data.fallback_labels(data.X_val) if fallback else None,
        )


#: Policies covering every rung: (constructor arguments, fit with OOD scores, with fallback).
POLICIES: dict[str, tuple[dict[str, Any], bool, bool]] = {
    "risk": ({"target_risk": 0.05}, False, False),
    "risk_ood_fallback_capacity": (
        {"target_risk": 0.05, "fallback_min_accuracy": 0.6, "max_escalation_rate": 0.15},
        True,
        True,
    ),
    "cost_aps_ood_fallback_capacity": (
        {
            "target_risk": None,
            "costs": OutcomeCosts(),
            "max_escalation_rate": 0.15,
            "clarify_method": "aps",
        },
        True,
        True,
    ),
    "no_humans": ({"target_risk": 0.05, "escalate": False}, True, False),
    "capacity": ({"target_risk": None, "max_escalation_rate": 0.2}, False, False),
}


def named_policy(name: str) -> Policy:
    params, ood, fallback = POLICIES[name]
    return fit_policy(digits(), ood=ood, fallback=fallback, **params)
