"""Isotonic calibration: a monotone step map per class (Zadrozny & Elkan 2002)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_consistent_length, check_labels, check_probabilities
from failwise.calibration._base import (
    BaseCalibrator,
    StateKind,
    binary_labels,
    binary_scores,
    is_multiclass,
    positive_to_proba,
    renormalise_rows,
)

__all__ = ["IsotonicCalibration"]


def fit_isotonic(
    score: NDArray[np.float64], target: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fit a non-decreasing map from ``score`` to ``target``; return its knots."""
    from sklearn.isotonic import IsotonicRegression  # scikit-learn loads slowly

    regression = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    regression.fit(score, target)
    return (
        np.asarray(regression.X_thresholds_, dtype=np.float64),
        np.asarray(regression.y_thresholds_, dtype=np.float64),
    )


class IsotonicCalibration(BaseCalibrator):
    """Isotonic-regression calibration, binary or one-vs-rest multiclass.

    Binary input (1-D scores, or (n_samples, 2) probabilities) gets one non-decreasing,
    piecewise-linear map from the positive-class score to P(class 1), fitted by
    :class:`sklearn.isotonic.IsotonicRegression` (Zadrozny & Elkan, KDD 2002). Scores
    outside the range seen in ``fit`` are clipped to it.

    Multiclass input ((n_samples, n_classes) probabilities, 3 or more classes) gets one map
    per class, fitted one-vs-rest on that class's probability, and the mapped rows are
    renormalised to sum to 1 (Zadrozny & Elkan 2002). A row that every map sends to 0
    (its scores all fall in the lowest, empty step of every class) cannot be renormalised;
    it keeps the model's uncalibrated probabilities, which at least preserve its ranking,
    rather than a uniform row that would claim ignorance the model does not have.

    Isotonic maps are flexible and need a few hundred calibration samples per class; with
    fewer, prefer :class:`TemperatureScaling` or :class:`PlattScaling`.

    Attributes
    ----------
    n_classes_ : int
        Number of classes (2 for binary input).
    input_ndim_ : int
        1 when fit on 1-D scores, 2 otherwise; ``predict_proba`` takes the same form.
    thresholds_ : ndarray of shape (n_knots,)
        Knot positions (scores) of every map, concatenated class after class.
    values_ : ndarray of shape (n_knots,)
        Calibrated probability at each knot.
    offsets_ : ndarray of shape (n_maps + 1,)
        Map ``k`` uses ``thresholds_[offsets_[k]:offsets_[k + 1]]``; one map for binary
        input, ``n_classes_`` for multiclass input.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import IsotonicCalibration
    >>> rng = np.random.default_rng(0)
    >>> score = rng.uniform(size=1000)
    >>> y = (rng.uniform(size=1000) < score**2).astype(int)  # scores are overconfident
    >>> iso = IsotonicCalibration().fit(score, y)
    >>> iso.predict_proba([0.5])[:, 1].round(1)
    array([0.2])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    input_ndim_: int
    thresholds_: NDArray[np.float64]
    values_: NDArray[np.float64]
    offsets_: NDArray[np.intp]

    def __init__(self) -> None:
        pass

    def _state_schema(self) -> dict[str, StateKind]:
        return {
            "n_classes_": "int",
            "input_ndim_": "int",
            "thresholds_": "array",
            "values_": "array",
            "offsets_": "array",
        }

    def fit(self, scores: ArrayLike, y: ArrayLike) -> IsotonicCalibration:
        """Fit the isotonic map(s).

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, n_classes)
            1-D real scores (larger means class 1), or class probabilities with rows
            summing to 1.
        y : array-like of shape (n_samples,)
            True class indices (0/1 for binary input; both classes must be present).

        Returns
        -------
        self : IsotonicCalibration
        """
        self._validate_params()
        multiclass = is_multiclass(scores)
        if multiclass:
            proba = check_probabilities(scores, "scores")
            labels = check_labels(y, "y", n_classes=proba.shape[1])
            check_consistent_length(scores=proba, y=labels)
            knots = [
                fit_isotonic(proba[:, k].astype(np.float64), (labels == k).astype(np.float64))
                for k in range(proba.shape[1])
            ]
            self.n_classes_ = int(proba.shape[1])
            self.input_ndim_ = 2
        else:
            score, ndim = binary_scores(scores, "scores")
            labels = binary_labels(y)
            check_consistent_length(scores=score, y=labels)
            knots = [fit_isotonic(score, labels.astype(np.float64))]
            self.n_classes_ = 2
            self.input_ndim_ = ndim
        self.thresholds_ = np.concatenate([x for x, _ in knots])
        self.values_ = np.concatenate([v for _, v in knots])
        self.offsets_ = np.concatenate([[0], np.cumsum([x.size for x, _ in knots])]).astype(np.intp)
        return self

    def _map(self, k: int, score: NDArray[np.float64]) -> NDArray[np.float64]:
        lo, hi = int(self.offsets_[k]), int(self.offsets_[k + 1])
        mapped: NDArray[np.float64] = np.interp(score, self.thresholds_[lo:hi], self.values_[lo:hi])
        return mapped

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return calibrated probabilities.

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, n_classes)
            The same form of input as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes_), float64
            Rows sum to 1.
        """
        self._check_is_fitted("predict_proba")
        if self.n_classes_ > 2:
            proba = np.asarray(
                check_probabilities(scores, "scores", n_classes=self.n_classes_), dtype=np.float64
            )
            mapped = np.column_stack([self._map(k, proba[:, k]) for k in range(self.n_classes_)])
            return renormalise_rows(mapped, proba)
        score, _ = binary_scores(scores, "scores", expected_ndim=self.input_ndim_)
        return positive_to_proba(self._map(0, score))
