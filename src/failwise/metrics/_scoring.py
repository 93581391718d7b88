"""Proper scoring rules for probabilistic classifiers: Brier score and negative log-likelihood."""

from __future__ import annotations

from numbers import Real

import numpy as np
from numpy.typing import ArrayLike

from failwise._params import Interval, check_param
from failwise.metrics._calibration_error import _check_proba_and_labels

__all__ = ["brier_score", "negative_log_likelihood"]


def brier_score(proba: ArrayLike, y: ArrayLike) -> float:
    """Multiclass Brier score: mean over samples of the squared error summed over classes.

    ``BS = (1/n) sum_i sum_k (proba[i, k] - [y_i == k])^2`` (Brier 1950). It ranges
    from 0 (certain and right) to 2 (certain and wrong); a uniform guess over ``K``
    classes scores ``1 - 1/K``. Lower is better; it is a strictly proper scoring
    rule, so it rewards calibration and sharpness together.

    Relation to scikit-learn: :func:`sklearn.metrics.brier_score_loss` (>= 1.7)
    computes the same sum for three or more classes; for two classes it halves it
    by default (``scale_by_half="auto"``) to the classic binary score
    ``mean((y - p)^2)`` in [0, 1]. So ``brier_score(proba, y) ==
    brier_score_loss(y, proba, labels=range(K), scale_by_half=False)`` for any
    ``K``, and for a binary model ``brier_score(proba, y) / 2 ==
    brier_score_loss(y, proba[:, 1])``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.

    Returns
    -------
    float
        The Brier score, in [0, 2].

    References
    ----------
    Brier, "Verification of forecasts expressed in terms of probability",
    Monthly Weather Review, 1950.

    Examples
    --------
    >>> from failwise.metrics import brier_score
    >>> round(brier_score([[0.8, 0.2], [0.3, 0.7]], [0, 0]), 3)
    0.53
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    rows = np.arange(labels.shape[0])
    squared_norm = np.square(probabilities).sum(axis=1, dtype=np.float64)
    true_proba = probabilities[rows, labels].astype(np.float64)
    return float(np.mean(squared_norm - 2.0 * true_proba + 1.0))


def negative_log_likelihood(proba: ArrayLike, y: ArrayLike, eps: float | None = None) -> float:
    """Mean negative log-likelihood (cross-entropy, natural log) of the true classes.

    ``NLL = -(1/n) sum_i log(clip(proba[i, y_i], eps, 1 - eps))``. Equal to
    :func:`sklearn.metrics.log_loss` with the same clipping. Lower is better; it is a
    strictly proper scoring rule and punishes confident mistakes without bound, up
    to ``-log(eps)`` per sample.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]`` so that a zero probability on
        the true class costs ``-log(eps)`` instead of infinity. Default: the machine
        epsilon of ``proba``'s dtype, as scikit-learn does (about 2.2e-16 for float64,
        giving at most about 36 per sample).

    Returns
    -------
    float
        The mean negative log-likelihood, >= 0.

    Examples
    --------
    >>> from failwise.metrics import negative_log_likelihood
    >>> round(negative_log_likelihood([[0.9, 0.1], [0.5, 0.5]], [0, 1]), 4)
    0.3993
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    if eps is None:
        floor = float(np.finfo(probabilities.dtype).eps)
    else:
        # eps is the smallest probability used in the log; None means machine precision.
        check_param("eps", eps, [None, Interval(Real, 0, 0.5, closed="neither")])
        floor = float(eps)
    rows = np.arange(labels.shape[0])
    true_proba = probabilities[rows, labels].astype(np.float64)
    return float(-np.mean(np.log(np.clip(true_proba, floor, 1.0 - floor))))
