"""Platt scaling: a logistic curve on a binary score (Platt 1999)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from failwise._validation import check_consistent_length
from failwise.calibration._base import (
    BaseCalibrator,
    StateKind,
    binary_labels,
    binary_scores,
    positive_to_proba,
    safe_logit,
)
from failwise.calibration._logistic import fit_logistic

__all__ = ["PlattScaling"]


class PlattScaling(BaseCalibrator):
    """Platt scaling of a binary classifier's score (Platt, 1999).

    Fits ``P(y = 1 | s) = expit(coef_ * s + intercept_)`` by maximum likelihood, where ``s``
    is the score:

    - 1-D input is used as it is: an SVM or linear-model decision value, a logit, or any
      real score whose larger values mean class 1 (a positive-class probability passed as
      1-D is also used as it is, as in Platt's paper; prefer passing (n_samples, 2)
      probabilities, whose log-odds make the identity map one of the fitted curves);
    - (n_samples, 2) probabilities are turned into the log-odds of the second column, so
      the fit is a temperature-and-bias correction of the model's own probability.

    Parameters
    ----------
    target_smoothing : bool, default=True
        Use Platt's targets ``(N+ + 1) / (N+ + 2)`` for positives and ``1 / (N- + 2)`` for
        negatives instead of 1 and 0. It is a Bayesian prior that keeps the curve finite
        when the scores separate the classes and avoids overfitting small calibration sets.

    Attributes
    ----------
    coef_ : float
        Slope on the score (Platt's ``-A``).
    intercept_ : float
        Intercept (Platt's ``-B``).
    n_classes_ : int
        Always 2.
    input_ndim_ : int
        1 when fit on 1-D scores, 2 when fit on (n_samples, 2) probabilities;
        ``predict_proba`` must receive the same form.

    References
    ----------
    J. Platt, "Probabilistic outputs for support vector machines and comparisons to
    regularized likelihood methods", Advances in Large Margin Classifiers, 1999.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import PlattScaling
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, size=2000)
    >>> margin = 3.0 * (2 * y - 1) + rng.normal(scale=3.0, size=2000)
    >>> platt = PlattScaling().fit(margin, y)  # the true map is expit(2 * margin / 3)
    >>> platt.predict_proba([-3.0, 0.0, 3.0])[:, 1].round(1)
    array([0.1, 0.5, 0.9])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"target_smoothing": [bool]}

    coef_: float
    intercept_: float
    input_ndim_: int

    def __init__(self, *, target_smoothing: bool = True) -> None:
        self.target_smoothing = target_smoothing

    def _state_schema(self) -> dict[str, StateKind]:
        return {"n_classes_": "int", "coef_": "float", "intercept_": "float", "input_ndim_": "int"}

    def _feature(self, scores: ArrayLike, expected_ndim: int | None) -> tuple[Any, int]:
        score, ndim = binary_scores(scores, "scores", expected_ndim=expected_ndim)
        return (safe_logit(score) if ndim == 2 else score), ndim

    def fit(self, scores: ArrayLike, y: ArrayLike) -> PlattScaling:
        """Fit the logistic curve.

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, 2)
            Real scores, or class probabilities whose rows sum to 1.
        y : array-like of shape (n_samples,)
            0/1 or boolean labels; both classes must be present.

        Returns
        -------
        self : PlattScaling
        """
        self._validate_params()
        feature, ndim = self._feature(scores, None)
        labels = binary_labels(y)
        check_consistent_length(scores=feature, y=labels)
        targets = labels.astype(np.float64)
        if self.target_smoothing:
            n_positive = float(labels.sum())
            n_negative = float(labels.size) - n_positive
            targets = np.where(
                labels == 1, (n_positive + 1.0) / (n_positive + 2.0), 1.0 / (n_negative + 2.0)
            )
        # Standardise the score for a well-conditioned fit, then undo it.
        center, spread = float(np.mean(feature)), float(np.std(feature))
        spread = spread if spread > 0.0 else 1.0
        coef, intercept = fit_logistic(
            ((feature - center) / spread)[:, None],
            targets,
            l2_penalty=0.0 if self.target_smoothing else 1e-8,
        )
        self.n_classes_ = 2
        self.coef_ = float(coef[0]) / spread
        self.intercept_ = intercept - self.coef_ * center
        self.input_ndim_ = ndim
        return self

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return ``[1 - q, q]`` with ``q = expit(coef_ * s + intercept_)``.

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, 2)
            The same form of score as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, 2), float64
        """
        self._check_is_fitted("predict_proba")
        feature, _ = self._feature(scores, self.input_ndim_)
        return positive_to_proba(expit(self.coef_ * feature + self.intercept_))
