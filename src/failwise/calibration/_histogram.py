"""Histogram binning: the empirical frequency in each score bin (Zadrozny & Elkan 2001)."""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Interval, Options
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

__all__ = ["HistogramBinning"]


class HistogramBinning(BaseCalibrator):
    """Histogram binning of probabilities, binary or one-vs-rest multiclass.

    The probability range [0, 1] is cut into ``n_bins`` bins; a score is mapped to the
    fraction of positives among the calibration samples in its bin (Zadrozny & Elkan,
    ICML 2001). Multiclass input is binned one class at a time (one-vs-rest) and each row is
    renormalised to sum to 1.

    An empty bin has no frequency to report; it maps to its own midpoint, i.e. leaves the
    score roughly uncalibrated, instead of borrowing a neighbour's frequency. With
    ``strategy="quantile"`` bins are empty only where many scores tie. A multiclass row that
    every class maps to 0 keeps the model's uncalibrated probabilities (see
    :class:`IsotonicCalibration`).

    Parameters
    ----------
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        ``"uniform"``: equal-width bins on [0, 1]. ``"quantile"``: bin edges at quantiles of
        the calibration scores of each class, so bins hold about equal numbers of samples.

    Attributes
    ----------
    n_classes_ : int
        Number of classes (2 for binary input).
    input_ndim_ : int
        1 when fit on 1-D probabilities, 2 otherwise.
    bin_edges_ : ndarray of shape (n_maps, n_bins + 1)
        Bin edges of each map (one map for binary input, ``n_classes_`` for multiclass);
        the first edge is 0 and the last is 1.
    bin_values_ : ndarray of shape (n_maps, n_bins)
        Calibrated probability of each bin.
    bin_counts_ : ndarray of shape (n_maps, n_bins)
        Calibration samples in each bin.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import HistogramBinning
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p**2).astype(int)
    >>> hb = HistogramBinning(n_bins=10).fit(p, y)
    >>> hb.predict_proba([0.95])[:, 1].round(1)
    array([0.9])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_bins": [Interval(Integral, 1, None, closed="left")],
        "strategy": [Options(("uniform", "quantile"))],
    }

    input_ndim_: int
    bin_edges_: NDArray[np.float64]
    bin_values_: NDArray[np.float64]
    bin_counts_: NDArray[np.float64]

    def __init__(self, *, n_bins: int = 15, strategy: str = "uniform") -> None:
        self.n_bins = n_bins
        self.strategy = strategy

    def _state_schema(self) -> dict[str, StateKind]:
        return {
            "n_classes_": "int",
            "input_ndim_": "int",
            "bin_edges_": "array",
            "bin_values_": "array",
            "bin_counts_": "array",
        }

    def _fit_map(
        self, score: NDArray[np.float64], target: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        if self.strategy == "uniform":
            edges = np.linspace(0.0, 1.0, self.n_bins + 1)
        else:
            edges = np.quantile(score, np.linspace(0.0, 1.0, self.n_bins + 1))
            edges[0], edges[-1] = 0.0, 1.0
            edges = np.maximum.accumulate(edges)
        index = _bin_index(edges, score)
        counts = np.bincount(index, minlength=self.n_bins).astype(np.float64)
        positives = np.bincount(index, weights=target, minlength=self.n_bins)
        midpoints = 0.5 * (edges[:-1] + edges[1:])
        values = np.where(counts > 0, positives / np.maximum(counts, 1.0), midpoints)
        return edges, values, counts

    def fit(self, scores: ArrayLike, y: ArrayLike) -> HistogramBinning:
        """Fit the bin frequencies.

        Parameters
        ----------
        scores : array-like of shape (n_samples,) or (n_samples, n_classes)
            Positive-class probabilities in [0, 1] (1-D), or class probabilities whose rows
            sum to 1.
        y : array-like of shape (n_samples,)
            True class indices (0/1 for binary input; both classes must be present).

        Returns
        -------
        self : HistogramBinning
        """
        self._validate_params()
        if is_multiclass(scores):
            proba = check_probabilities(scores, "scores").astype(np.float64)
            labels = check_labels(y, "y", n_classes=proba.shape[1])
            check_consistent_length(scores=proba, y=labels)
            maps = [
                self._fit_map(proba[:, k], (labels == k).astype(np.float64))
                for k in range(proba.shape[1])
            ]
            self.n_classes_ = int(proba.shape[1])
            self.input_ndim_ = 2
        else:
            score, ndim = binary_scores(scores, "scores", probability_1d=True)
            labels = binary_labels(y)
            check_consistent_length(scores=score, y=labels)
            maps = [self._fit_map(score, labels.astype(np.float64))]
            self.n_classes_ = 2
            self.input_ndim_ = ndim
        self.bin_edges_ = np.stack([edges for edges, _, _ in maps])
        self.bin_values_ = np.stack([values for _, values, _ in maps])
        self.bin_counts_ = np.stack([counts for _, _, counts in maps])
        return self

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return the bin frequency of each score.

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
            mapped = np.column_stack(
                [
                    self.bin_values_[k][_bin_index(self.bin_edges_[k], proba[:, k])]
                    for k in range(self.n_classes_)
                ]
            )
            return renormalise_rows(mapped, proba)
        score, _ = binary_scores(
            scores, "scores", expected_ndim=self.input_ndim_, probability_1d=True
        )
        return positive_to_proba(self.bin_values_[0][_bin_index(self.bin_edges_[0], score)])


def _bin_index(edges: NDArray[np.float64], score: NDArray[np.float64]) -> NDArray[np.intp]:
    """Bin of each score: bin ``b`` holds ``edges[b] <= s < edges[b + 1]``; 1.0 is in the last."""
    index: NDArray[np.intp] = np.searchsorted(edges[1:-1], score, side="right")
    return index
