"""Out-of-scope scores: from the model's own outputs, and their combination.

Every score here follows one convention: **higher means more likely out of scope**.
Scores from the model's own outputs (:func:`max_probability_score`,
:func:`max_logit_score`, :func:`energy_score`) cost nothing extra; :class:`CombinedOODScore`
merges several scores (e.g. one of these and :class:`~failwise.policy.KNNDistance`) on a
common scale. :func:`pseudo_open_folds` splits labelled in-scope data into folds whose
held-out classes play the out-of-scope inputs, to choose among scores without any real
out-of-scope example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from failwise._base import Estimator
from failwise._params import Interval, Options, check_param
from failwise._validation import check_fitted, check_probabilities, check_scores, describe
from failwise.exceptions import InputError

__all__ = [
    "CombinedOODScore",
    "PseudoOpenFold",
    "energy_score",
    "max_logit_score",
    "max_probability_score",
    "pseudo_open_folds",
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


@dataclass(frozen=True)
class PseudoOpenFold:
    """One fold of pseudo-open cross-validation (see :func:`pseudo_open_folds`).

    Attributes
    ----------
    known_classes : ndarray
        Classes the fold treats as in scope, sorted.
    unknown_classes : ndarray
        Classes held out of fitting; their held-out rows play out-of-scope inputs.
    fit_rows : ndarray of int
        Rows of the known classes to fit on (never an evaluation row).
    evaluate_rows : ndarray of int
        Held-out rows of every class: in scope if their class is known, out of scope if not.
    """

    known_classes: NDArray[Any]
    unknown_classes: NDArray[Any]
    fit_rows: NDArray[np.intp]
    evaluate_rows: NDArray[np.intp]

    def encode(self, y: ArrayLike) -> NDArray[np.intp]:
        """Labels of this fold: known classes as ``0 .. len(known_classes) - 1`` in sorted
        order, every other class as ``-1`` (:data:`failwise.OUT_OF_SCOPE`).

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            Labels in the original class coding.

        Returns
        -------
        ndarray of shape (n_samples,) and dtype intp
        """
        labels = np.asarray(y)
        position = np.searchsorted(self.known_classes, labels)
        position = np.minimum(position, self.known_classes.size - 1)
        known = self.known_classes[position] == labels
        return np.where(known, position, -1).astype(np.intp)


def pseudo_open_folds(
    y: ArrayLike,
    *,
    n_folds: int = 3,
    unknown_share: float = 0.25,
    evaluate_share: float = 0.2,
    random_state: int | np.random.Generator | None = None,
) -> list[PseudoOpenFold]:
    """Folds that hold out whole classes, to choose an out-of-scope score without any
    out-of-scope example (pseudo-open cross-validation).

    With no out-of-scope inputs in the labelled data, a score, its settings or the
    classifier behind it cannot be compared on the inputs they are meant to catch, and
    comparing them on test data makes the test figures optimistic. Holding out some of the
    *known* classes gives stand-ins: in each fold ``unknown_share`` of the classes are
    removed from fitting, the candidates are fitted on the other classes' ``fit_rows``, and
    scored on ``evaluate_rows`` — held-out rows of the known classes (in scope) and of the
    removed ones (out of scope) — e.g. by AUROC or by the macro-F1 of the whole decision
    ladder with "open" as a class. The candidate with the best mean over the folds is then
    refitted on every class. The held-out classes of successive folds are disjoint as long
    as the classes last, so every fold tests different unknowns. This is the
    class-level analogue of the "open-set validation" used to tune open-set recognisers
    (e.g. Neal et al., ECCV 2018; Vaze et al., ICLR 2022).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels of the labelled in-scope data (any integers or strings).
    n_folds : int, default=3
        Number of folds (≥ 1).
    unknown_share : float, default=0.25
        Share of the classes held out as unknown in each fold, in (0, 1); at least one
        class is held out and at least one stays known.
    evaluate_share : float, default=0.2
        Share of each class's rows held out for evaluation, in (0, 1); a class with two or
        more rows keeps at least one for fitting and gives at least one for evaluation.
    random_state : int, numpy Generator or None, default=None
        Seed of the class and row draws.

    Returns
    -------
    list of PseudoOpenFold
        ``n_folds`` folds.

    Examples
    --------
    >>> y = [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
    >>> folds = pseudo_open_folds(y, n_folds=2, random_state=0)
    >>> [fold.unknown_classes.tolist() for fold in folds]
    [[0], [2]]
    >>> fold = folds[0]
    >>> fold.encode([0, 1, 2, 3]).tolist()
    [-1, 0, 1, 2]
    >>> len(fold.fit_rows), len(fold.evaluate_rows)
    (24, 8)
    """
    where = "pseudo_open_folds"
    check_param("n_folds", n_folds, [Interval(Integral, 1, None, closed="left")], where=where)
    for name, share in (("unknown_share", unknown_share), ("evaluate_share", evaluate_share)):
        check_param(name, share, [Interval(Real, 0, 1, closed="neither")], where=where)
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise InputError(
            f"{where}: `y` must be a non-empty 1-D array of class labels; got {describe(labels)}."
        )
    classes, codes = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        raise InputError(
            f"{where}: `y` holds {classes.size} class; at least 2 are needed, one to hold "
            "out as unknown and one to keep."
        )
    rng = np.random.default_rng(random_state)
    n_unknown = min(classes.size - 1, max(1, round(unknown_share * classes.size)))
    evaluate = np.zeros(labels.size, dtype=bool)
    for code in range(classes.size):
        rows = np.flatnonzero(codes == code)
        if rows.size >= 2:
            n_out = min(rows.size - 1, max(1, round(evaluate_share * rows.size)))
            evaluate[rng.choice(rows, n_out, replace=False)] = True
    order = rng.permutation(classes.size)
    folds = []
    for fold in range(n_folds):
        start = (fold * n_unknown) % classes.size
        held = np.take(order, np.arange(start, start + n_unknown), mode="wrap")
        unknown = np.isin(np.arange(classes.size), held)
        fit = np.flatnonzero(~evaluate & ~unknown[codes])
        folds.append(
            PseudoOpenFold(
                known_classes=classes[~unknown],
                unknown_classes=classes[unknown],
                fit_rows=fit.astype(np.intp),
                evaluate_rows=np.flatnonzero(evaluate).astype(np.intp),
            )
        )
    return folds
