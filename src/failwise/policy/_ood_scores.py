"""Out-of-scope scores: from the model's own outputs, and their combination.

Every score here follows one convention: **higher means more likely out of scope**.
Scores from the model's own outputs (:func:`max_probability_score`,
:func:`max_logit_score`, :func:`energy_score`) cost nothing extra; :class:`CombinedOODScore`
merges several scores (e.g. one of these and :class:`~failwise.policy.KNNDistance`) on a
common scale.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from failwise._base import Estimator
from failwise._params import Options
from failwise._validation import check_fitted, check_probabilities, check_scores
from failwise.exceptions import InputError

__all__ = [
    "CombinedOODScore",
    "energy_score",
    "max_logit_score",
    "max_probability_score",
]


def max_probability_score(proba: ArrayLike) -> NDArray[np.float64]:
    """One minus the largest class probability (Hendrycks & Gimpel, 2017).

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Class probabilities; rows sum to 1.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``1 - max_k proba[:, k]``, in ``[0, 1 - 1/n_classes]``. Higher = more likely out of
        scope.

    Examples
    --------
    >>> max_probability_score([[0.9, 0.1], [0.5, 0.5]]).round(2)
    array([0.1, 0.5])
    """
    P = check_probabilities(proba, "proba")
    return np.asarray(1.0 - P.max(axis=1), dtype=np.float64)


def max_logit_score(logits: ArrayLike) -> NDArray[np.float64]:
    """The negated largest logit (MaxLogit; Hendrycks et al., 2022).

    Works on any per-class score that is not normalised across classes, e.g. the
    ``decision_function`` of a one-vs-rest linear SVM, where it is the negated margin of
    the winning class.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        Unnormalised class scores.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``-max_k logits[:, k]``. Higher = more likely out of scope.

    Examples
    --------
    >>> max_logit_score([[2.0, -1.0], [0.5, 0.25]])
    array([-2. , -0.5])
    """
    Z = check_scores(logits, "logits", ndim=2)
    return np.asarray(-Z.max(axis=1), dtype=np.float64)


def energy_score(logits: ArrayLike, temperature: float = 1.0) -> NDArray[np.float64]:
    """The free energy ``-T · logsumexp(z / T)`` of the logits (Liu et al., 2020).

    Lower energy means the model puts more total evidence on its classes, so in-scope
    inputs get lower values than out-of-scope ones.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        Unnormalised class scores (not probabilities).
    temperature : float, default=1.0
        T > 0. With T → 0 the score tends to :func:`max_logit_score`.

    Returns
    -------
    ndarray of shape (n_samples,)
        Higher = more likely out of scope.

    Examples
    --------
    >>> energy_score([[0.0, 0.0], [10.0, 0.0]]).round(3)
    array([ -0.693, -10.   ])
    """
    if isinstance(temperature, bool) or not isinstance(temperature, Real):
        raise InputError(f"`temperature` must be a positive number; got {temperature!r}.")
    if not (math.isfinite(float(temperature)) and float(temperature) > 0.0):
        raise InputError(
            f"`temperature` must be a positive finite number; got {temperature!r}. "
            "Use 1.0 for the plain energy score."
        )
    Z = check_scores(logits, "logits", ndim=2).astype(np.float64, copy=False)
    T = float(temperature)
    return np.asarray(-T * special.logsumexp(Z / T, axis=1), dtype=np.float64)


class CombinedOODScore(Estimator):
    """Combine several out-of-scope scores through their in-scope ranks.

    Each score column ``j`` is mapped to ``F_j(s)``, the fraction of in-scope reference
    scores at or below ``s`` (one minus a conformal p-value), which puts scores of any
    scale — probabilities, logits, distances — on the same ``[0, 1]`` scale, where
    0.97 means "more unusual than 97% of in-scope inputs". The columns are then merged:

    - ``"mean"`` averages them (averaging p-values, Vovk & Wang, 2020): an input that is
      somewhat unusual on every score is flagged, the best choice when the scores see
      different failures (a confident classifier far from the training data, or an
      unsure classifier close to it);
    - ``"max"`` keeps the most alarming one (a Bonferroni-style minimum p-value).

    The combined score is a fixed function once fitted, so :func:`fit_ood_threshold`
    keeps its guarantee when the reference scores come from data other than the
    threshold's calibration set, e.g. out-of-fold scores on training data or
    :meth:`KNNDistance.score_training`.

    Parameters
    ----------
    method : {"mean", "max"}, default="mean"

    Attributes
    ----------
    reference_ : list of ndarray
        Sorted in-scope reference scores, one array per column.
    n_scores_ : int

    Examples
    --------
    >>> import numpy as np
    >>> reference = np.column_stack([np.arange(100.0), np.arange(100.0) / 100])
    >>> combiner = CombinedOODScore().fit(reference)
    >>> combiner.score([[49.0, 0.49], [99.0, 0.0], [500.0, 5.0]]).round(3)
    array([0.5 , 0.505, 1.   ])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "method": [Options(("mean", "max"))],
    }

    def __init__(self, method: str = "mean") -> None:
        self.method = method

    def fit(self, reference_scores: ArrayLike, y: Any = None) -> CombinedOODScore:
        """Store the in-scope reference distribution of each score.

        Parameters
        ----------
        reference_scores : array-like of shape (n_reference, n_scores)
            Scores of in-scope inputs, one column per score, each with higher = more
            likely out of scope.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        self
        """
        self._validate_params()
        R = check_scores(reference_scores, "reference_scores", ndim=2)
        self.reference_ = [np.sort(R[:, j].astype(np.float64)) for j in range(R.shape[1])]
        self.n_scores_ = int(R.shape[1])
        return self

    def score(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Combined score in ``[0, 1]``.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_scores)
            The same score columns, in the same order, as in fit.

        Returns
        -------
        ndarray of shape (n_samples,)
            Higher = more likely out of scope.
        """
        check_fitted(self, "reference_", "score")
        S = check_scores(scores, "scores", ndim=2)
        if S.shape[1] != self.n_scores_:
            raise InputError(
                f"`scores` has {S.shape[1]} column(s) but CombinedOODScore was fitted on "
                f"{self.n_scores_}. Pass the same score columns in the same order."
            )
        ranks = np.column_stack(
            [
                np.searchsorted(ref, S[:, j], side="right") / ref.size
                for j, ref in enumerate(self.reference_)
            ]
        )
        combined = ranks.mean(axis=1) if self.method == "mean" else ranks.max(axis=1)
        return np.asarray(combined, dtype=np.float64)
