"""Beta calibration of binary probabilities (Kull, Silva Filho & Flach 2017)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from failwise._validation import check_consistent_length
from failwise.calibration._base import (
    LOG_EPSILON,
    BaseCalibrator,
    StateKind,
    binary_labels,
    binary_scores,
    positive_to_proba,
)
from failwise.calibration._logistic import fit_logistic

__all__ = ["BetaCalibration"]

#: A vanishing ridge penalty keeps the fit finite when the classes are separable.
_L2_PENALTY = 1e-10


def _features(p: NDArray[np.float64]) -> NDArray[np.float64]:
    clipped = np.clip(p, LOG_EPSILON, 1.0 - LOG_EPSILON)
    return np.column_stack([np.log(clipped), -np.log1p(-clipped)])


class BetaCalibration(BaseCalibrator):
    r"""Beta calibration of a binary probability (Kull, Silva Filho & Flach, AISTATS 2017).

    The three-parameter ("abm") family maps a positive-class probability ``p`` to

    .. math:: q = \operatorname{expit}(a \ln p - b \ln(1 - p) + c),

    fitted as a logistic regression on the two features :math:`\ln p` and
    :math:`-\ln(1 - p)`. It contains the identity (a = b = 1, c = 0) and sigmoid-shaped,
    inverse-sigmoid and skewed maps that Platt scaling cannot express, which suits
    probabilities from naive Bayes or boosted trees. As in the paper, the map is kept
    monotone: if the fit gives ``a < 0`` it is refitted without the :math:`\ln p` feature
    (``a = 0``), and likewise for ``b``.

    Attributes
    ----------
    coef_ : ndarray of shape (2,)
        ``[a, b]``, both >= 0.
    intercept_ : float
        ``c``.
    n_classes_ : int
        Always 2.
    input_ndim_ : int
        1 when fit on 1-D probabilities, 2 when fit on (n_samples, 2) probabilities.

    References
    ----------
    M. Kull, T. Silva Filho and P. Flach, "Beta calibration: a well-founded and easily
    implemented improvement on logistic calibration for binary classifiers", AISTATS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import BetaCalibration
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p).astype(int)  # already calibrated
    >>> beta = BetaCalibration().fit(p, y)
    >>> beta.predict_proba([0.2, 0.8])[:, 1].round(1)
    array([0.2, 0.8])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    coef_: NDArray[np.float64]
    intercept_: float
    input_ndim_: int

    def __init__(self) -> None:
        pass

    def _state_schema(self) -> dict[str, StateKind]:
        return {"n_classes_": "int", "coef_": "array", "intercept_": "float", "input_ndim_": "int"}

    def fit(self, scores: ArrayLike, y: ArrayLike) -> BetaCalibration:
        """Fit ``a``, ``b`` and ``c`` by maximum likelihood with ``a, b >= 0``.

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, 2)
            Positive-class probabilities in [0, 1], or class probabilities whose rows sum
            to 1.
        y : array-like of shape (n_samples,)
            0/1 or boolean labels; both classes must be present.

        Returns
        -------
        self : BetaCalibration
        """
        self._validate_params()
        p, ndim = binary_scores(scores, "scores", probability_1d=True)
        labels = binary_labels(y)
        check_consistent_length(scores=p, y=labels)
        features = _features(p)
        targets = labels.astype(np.float64)
        coef, intercept = fit_logistic(features, targets, l2_penalty=_L2_PENALTY)
        if coef[0] < 0.0:
            only_b, intercept = fit_logistic(features[:, 1:], targets, l2_penalty=_L2_PENALTY)
            coef = np.array([0.0, only_b[0]])
        elif coef[1] < 0.0:
            only_a, intercept = fit_logistic(features[:, :1], targets, l2_penalty=_L2_PENALTY)
            coef = np.array([only_a[0], 0.0])
        if np.any(coef < 0.0):
            # Scores anti-correlated with the labels: the best monotone map is the base rate.
            rate = float(np.clip(targets.mean(), LOG_EPSILON, 1.0 - LOG_EPSILON))
            coef, intercept = np.zeros(2), float(np.log(rate / (1.0 - rate)))
        self.n_classes_ = 2
        self.coef_ = np.maximum(coef, 0.0)
        self.intercept_ = float(intercept)
        self.input_ndim_ = ndim
        return self

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return ``[1 - q, q]`` with ``q = expit(a ln p - b ln(1 - p) + c)``.

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, 2)
            The same form of input as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, 2), float64
        """
        self._check_is_fitted("predict_proba")
        p, _ = binary_scores(scores, "scores", expected_ndim=self.input_ndim_, probability_1d=True)
        return positive_to_proba(expit(_features(p) @ self.coef_ + self.intercept_))
