"""A small, exact logistic regression used by Platt, beta and correctness calibration.

Newton's method with a backtracking line search on the mean cross-entropy against soft
targets in [0, 1], with an optional ridge penalty on the slopes (never on the intercept).
The problems it solves have at most a few dozen columns, so each Newton step solves a
small linear system; convergence is quadratic and needs no learning rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

__all__ = ["fit_logistic", "logistic_loss"]

_MAX_ITER = 100
_GRADIENT_TOL = 1e-10


def logistic_loss(
    weights: NDArray[np.float64],
    design: NDArray[np.float64],
    targets: NDArray[np.float64],
    l2_penalty: float,
) -> float:
    """Mean cross-entropy of ``expit(design @ weights)`` plus the ridge term.

    The last column of ``design`` is the intercept and is not penalised.
    """
    eta = design @ weights
    loss = float(np.mean(np.logaddexp(0.0, eta) - targets * eta))
    return loss + 0.5 * l2_penalty * float(weights[:-1] @ weights[:-1])


def fit_logistic(
    features: NDArray[np.float64],
    targets: NDArray[np.float64],
    *,
    l2_penalty: float = 0.0,
) -> tuple[NDArray[np.float64], float]:
    """Fit P(target) = expit(features @ coef + intercept) by Newton's method.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    targets : ndarray of shape (n_samples,)
        Targets in [0, 1]; soft targets (Platt's smoothing) are allowed.
    l2_penalty : float, default=0.0
        Ridge penalty ``0.5 * l2_penalty * ||coef||**2`` added to the mean loss. A small
        positive value keeps the solution finite when the classes are separable.

    Returns
    -------
    coef : ndarray of shape (n_features,)
    intercept : float
    """
    n_samples, n_features = features.shape
    design = np.empty((n_samples, n_features + 1))
    design[:, :n_features] = features
    design[:, n_features] = 1.0
    ridge = np.full(n_features + 1, l2_penalty)
    ridge[-1] = 0.0
    # Start from the intercept that matches the base rate: the optimum when coef = 0.
    rate = float(np.clip(np.mean(targets), 1e-6, 1.0 - 1e-6))
    weights = np.zeros(n_features + 1)
    weights[-1] = np.log(rate / (1.0 - rate))
    loss = logistic_loss(weights, design, targets, l2_penalty)
    for _ in range(_MAX_ITER):
        p = expit(design @ weights)
        gradient = design.T @ (p - targets) / n_samples + ridge * weights
        if float(np.max(np.abs(gradient))) <= _GRADIENT_TOL:
            break
        curvature = p * (1.0 - p)
        hessian = (design.T * curvature) @ design / n_samples + np.diag(ridge)
        # A tiny Levenberg term keeps the system solvable when a column is constant or the
        # data are separable (the curvature then vanishes along the separating direction).
        hessian[np.diag_indices_from(hessian)] += 1e-12 * (1.0 + np.abs(np.diag(hessian)))
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:  # pragma: no cover - prevented by the Levenberg term
            step = gradient
        decrement = float(gradient @ step)
        size = 1.0
        while True:
            candidate = weights - size * step
            candidate_loss = logistic_loss(candidate, design, targets, l2_penalty)
            if candidate_loss <= loss - 1e-4 * size * decrement or size < 1e-10:
                break
            size *= 0.5
        if candidate_loss > loss:
            break
        weights, previous = candidate, loss
        loss = candidate_loss
        if decrement <= 1e-20 or previous - loss <= 1e-16 * max(1.0, abs(loss)):
            break
    return weights[:-1].copy(), float(weights[-1])
