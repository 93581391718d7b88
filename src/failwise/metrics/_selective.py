"""Selective prediction: the risk–coverage curve and the area under it (AURC, E-AURC).

A selective classifier answers when its confidence reaches a threshold and holds
back otherwise. Lowering the threshold raises *coverage* (the fraction answered)
and usually the *selective risk* (the error rate among the answered). The
risk–coverage curve traces that trade-off over every threshold; AURC summarises
how well a confidence score ranks correct predictions above wrong ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_binary_labels, check_consistent_length, check_scores

__all__ = ["RiskCoverageCurve", "aurc", "excess_aurc", "risk_coverage_curve"]


@dataclass(frozen=True, eq=False)
class RiskCoverageCurve:
    """Selective risk and coverage at every distinct confidence threshold.

    All arrays have shape (n_thresholds,), one entry per distinct confidence value,
    and are read-only. Samples with confidence ``>= thresholds[j]`` are accepted at
    point ``j``, so tied samples are always accepted together.

    Attributes
    ----------
    thresholds : ndarray of float
        Distinct confidence values, in descending order.
    coverage : ndarray of float
        Fraction of samples accepted at each threshold, increasing to 1.
    risk : ndarray of float
        Selective risk: the error rate among the accepted samples.
    """

    thresholds: NDArray[np.float64]
    coverage: NDArray[np.float64]
    risk: NDArray[np.float64]

    def __post_init__(self) -> None:
        for name in ("thresholds", "coverage", "risk"):
            getattr(self, name).setflags(write=False)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain Python lists, one per column (JSON-serialisable)."""
        return {
            "thresholds": [float(v) for v in self.thresholds],
            "coverage": [float(v) for v in self.coverage],
            "risk": [float(v) for v in self.risk],
        }


def _validated(
    confidence: ArrayLike, correct: ArrayLike
) -> tuple[NDArray[np.floating[Any]], NDArray[np.intp]]:
    scores = check_scores(confidence, "confidence", ndim=1)
    outcomes = check_binary_labels(correct, "correct")
    check_consistent_length(confidence=scores, correct=outcomes)
    return scores, outcomes


def _curve(scores: NDArray[np.floating[Any]], outcomes: NDArray[np.intp]) -> RiskCoverageCurve:
    n_samples = scores.shape[0]
    order = np.argsort(scores, kind="stable")[::-1]
    sorted_scores = scores[order].astype(np.float64)
    cumulative_errors = np.cumsum(1 - outcomes[order])
    # Last position of each run of tied scores: every tied sample is accepted together.
    ends = np.append(np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), n_samples - 1)
    accepted = (ends + 1).astype(np.float64)
    return RiskCoverageCurve(
        thresholds=sorted_scores[ends],
        coverage=accepted / n_samples,
        risk=cumulative_errors[ends] / accepted,
    )


def risk_coverage_curve(confidence: ArrayLike, correct: ArrayLike) -> RiskCoverageCurve:
    """Selective risk against coverage for every threshold on a confidence score.

    For each distinct value ``t`` of ``confidence`` the samples with confidence
    ``>= t`` are accepted; coverage is their fraction and risk their error rate
    (El-Yaniv and Wiener 2010; Geifman and El-Yaniv 2017).

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Any real-valued score, higher meaning more confident: a calibrated
        probability, a max-softmax, a negative entropy or a margin.
    correct : array-like of shape (n_samples,)
        1 (or True) where the prediction was right, 0 (or False) where it was wrong.

    Returns
    -------
    RiskCoverageCurve
        Thresholds in descending order with their coverage and selective risk.

    Examples
    --------
    >>> from failwise.metrics import risk_coverage_curve
    >>> curve = risk_coverage_curve([0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0])
    >>> curve.thresholds.tolist(), curve.coverage.tolist(), curve.risk.tolist()
    ([0.9, 0.8, 0.3], [0.25, 0.75, 1.0], [0.0, 0.3333333333333333, 0.5])
    """
    return _curve(*_validated(confidence, correct))


def aurc(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Area under the risk–coverage curve (AURC) of Geifman et al. (2018).

    The mean, over the ``n`` coverage points ``1/n, 2/n, …, 1``, of the selective
    risk of the ``k`` most confident samples. Tied samples are accepted together, so
    each sample's point takes the risk of its whole tie group and the value does not
    depend on the order of the input. Lower is better; it mixes the base error rate
    with the quality of the ranking (see :func:`excess_aurc`).

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Any real-valued score, higher meaning more confident.
    correct : array-like of shape (n_samples,)
        1 (or True) where the prediction was right, 0 (or False) where it was wrong.

    Returns
    -------
    float
        The AURC, in [0, 1].

    References
    ----------
    Geifman, Uziel and El-Yaniv, "Bias-Reduced Uncertainty Estimation for Deep
    Neural Classifiers", ICLR 2019 (arXiv:1805.08206, 2018).

    Examples
    --------
    >>> from failwise.metrics import aurc
    >>> round(aurc([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 1]), 4)
    0.1458
    """
    curve = _curve(*_validated(confidence, correct))
    widths = np.diff(curve.coverage, prepend=0.0)
    return float(np.sum(widths * curve.risk))


def _oracle_aurc(outcomes: NDArray[np.intp]) -> float:
    """AURC of the ideal ranking (every correct sample before every error)."""
    n_samples = outcomes.shape[0]
    n_correct = int(outcomes.sum())
    if n_correct == n_samples:
        return 0.0
    # For k > n_correct the k best samples hold k - n_correct errors:
    # (1/n) sum_{k=m+1}^{n} (1 - m/k) with m = n_correct.
    k = np.arange(n_correct + 1, n_samples + 1, dtype=np.float64)
    return float(np.sum(1.0 - n_correct / k) / n_samples)


def excess_aurc(confidence: ArrayLike, correct: ArrayLike) -> float:
    """Excess AURC (E-AURC): AURC minus the AURC of the ideal ranking of the same outcomes.

    Subtracting the best AURC achievable with these correct/incorrect outcomes (all
    correct samples ranked first) removes the part of AURC that only reflects the
    base error rate, so scores of models with different accuracy compare on ranking
    quality alone (Geifman et al. 2018). The ideal AURC is computed exactly for the
    finite sample; Geifman et al.'s closed form ``r + (1 - r) log(1 - r)`` (``r``
    the error rate) is its large-``n`` limit. The value is 0 for a perfect ranking
    and never negative.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Any real-valued score, higher meaning more confident.
    correct : array-like of shape (n_samples,)
        1 (or True) where the prediction was right, 0 (or False) where it was wrong.

    Returns
    -------
    float
        The E-AURC, in [0, 1].

    References
    ----------
    Geifman, Uziel and El-Yaniv, "Bias-Reduced Uncertainty Estimation for Deep
    Neural Classifiers", ICLR 2019 (arXiv:1805.08206, 2018).

    Examples
    --------
    >>> from failwise.metrics import excess_aurc
    >>> excess_aurc([0.9, 0.8, 0.7, 0.6], [1, 1, 1, 0])
    0.0
    >>> round(excess_aurc([0.9, 0.8, 0.7, 0.6], [0, 1, 1, 1]), 4)
    0.4583
    """
    scores, outcomes = _validated(confidence, correct)
    curve = _curve(scores, outcomes)
    widths = np.diff(curve.coverage, prepend=0.0)
    area = float(np.sum(widths * curve.risk))
    return max(area - _oracle_aurc(outcomes), 0.0)
