"""Out-of-scope scores and the rule that turns one into a threshold.

The code lives in one module per concept: :mod:`failwise.policy._ood_scores` (scores from
the model's outputs and their combination), :mod:`failwise.policy._knn` (distance to the
training data) and :mod:`failwise.policy._ood_threshold` (the threshold rule). This
module keeps the old import path working.
"""

from __future__ import annotations

<<<<<<< HEAD
import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from failwise._base import Estimator
from failwise._params import Interval, Options
from failwise._validation import (
    check_binary_labels,
    check_consistent_length,
    check_fitted,
    check_probabilities,
    check_scores,
=======
from failwise.policy._knn import KNNDistance
from failwise.policy._ood_scores import (
    CombinedOODScore,
    energy_score,
    max_logit_score,
    max_probability_score,
>>>>>>> main
)
from failwise.policy._ood_threshold import OODThreshold, fit_ood_threshold

__all__ = [
    "CombinedOODScore",
    "KNNDistance",
    "OODThreshold",
    "energy_score",
    "fit_ood_threshold",
    "max_logit_score",
    "max_probability_score",
]
<<<<<<< HEAD

# Similarity blocks hold at most this many entries (float64: 128 MiB).
_BLOCK_ENTRIES = 1 << 24


# --------------------------------------------------------------------------- model outputs


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


# --------------------------------------------------------------------------- k-NN distance


def _check_features(
    features: Any, name: str, n_features: int | None = None
) -> NDArray[np.floating[Any]] | sp.csr_matrix:
    """A finite 2-D feature matrix, dense (float32/64) or sparse CSR."""
    if sp.issparse(features):
        matrix = sp.csr_matrix(features)
        if matrix.dtype.kind != "f":
            matrix = matrix.astype(np.float64)
        if matrix.shape[0] == 0:
            raise InputError(
                f"`{name}` is empty (shape {matrix.shape}); at least one row is needed."
            )
        if not np.isfinite(matrix.data).all():
            raise InputError(
                f"`{name}` (sparse) contains NaN or infinite values. Drop or impute those rows."
            )
        out: NDArray[np.floating[Any]] | sp.csr_matrix = matrix
    else:
        out = check_scores(features, name, ndim=2)
    if n_features is not None and out.shape[1] != n_features:
        raise InputError(
            f"`{name}` has {out.shape[1]} features but KNNDistance was fitted on {n_features}. "
            "Pass features from the same encoder / vectoriser used in fit."
        )
    return out


def _row_normalise(
    X: NDArray[np.floating[Any]] | sp.csr_matrix,
) -> NDArray[np.floating[Any]] | sp.csr_matrix:
    """Scale rows to unit L2 norm; all-zero rows stay zero."""
    if isinstance(X, np.ndarray):
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    sparse_norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    scale = np.divide(1.0, sparse_norms, out=np.zeros_like(sparse_norms), where=sparse_norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(X.dtype)) @ X)


def _squared_norms(X: NDArray[np.floating[Any]] | sp.csr_matrix) -> NDArray[np.float64]:
    if isinstance(X, np.ndarray):
        return np.asarray(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    return np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()


class KNNDistance(Estimator):
    """Distance to the k-th nearest training example (Sun, Ming, Zhu & Li, 2022).

    An input far from every training example is likely out of scope even when the
    classifier is confident about it. With ``metric="cosine"`` rows are scaled to unit
    norm and the score is ``1 - cos`` to the k-th most similar training row, in
    ``[0, 2]``; this equals Sun et al.'s normalised Euclidean distance up to a monotone
    map. Dense arrays (sentence embeddings) and SciPy sparse matrices (TF-IDF) give the
    same values; queries are processed in blocks of matrix products, so 5,500 queries
    against 15,000 training rows take seconds.

    Parameters
    ----------
    n_neighbors : int, default=10
        k. Larger k smooths the score; Sun et al. use k between 1 and 1,000 depending on
        the size of the training set.
    metric : {"cosine", "euclidean"}, default="cosine"
        "cosine" for embeddings and TF-IDF; "euclidean" for raw features that are already
        on a common scale (e.g. standardised pixels).

    Attributes
    ----------
    train_features_ : ndarray or sparse matrix of shape (n_train, n_features)
        Training rows (unit-normalised for cosine).
    n_features_in_ : int
    n_train_ : int

    Notes
    -----
    An all-zero row (e.g. a text with no known n-gram) has no direction; with the cosine
    metric its similarity to everything is 0, so its distance is 1.

    Examples
    --------
    >>> import numpy as np
    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> knn = KNNDistance(n_neighbors=1).fit(train)
    >>> knn.score([[1.0, 0.0], [-1.0, 0.0]]).round(3)
    array([0., 2.])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [Options(("cosine", "euclidean"))],
    }

    def __init__(self, n_neighbors: int = 10, metric: str = "cosine") -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric

    def fit(self, train_features: Any, y: Any = None) -> KNNDistance:
        """Store the (normalised) training features.

        Parameters
        ----------
        train_features : array-like or sparse matrix of shape (n_train, n_features)
            Features of in-scope training inputs.
        y : ignored
            Accepted for pipeline compatibility.

        Returns
        -------
        self
        """
        self._validate_params()
        X = _check_features(train_features, "train_features")
        if X.shape[0] < self.n_neighbors:
            raise InputError(
                f"KNNDistance: n_neighbors={self.n_neighbors} but `train_features` has only "
                f"{X.shape[0]} row(s). Lower n_neighbors or pass more training rows."
            )
        if self.metric == "cosine":
            X = _row_normalise(X)
        self.train_features_ = X
        self._train_sq = _squared_norms(X)
        if not isinstance(X, np.ndarray):
            self._train_f32 = sp.csr_matrix(X, dtype=np.float32)
        self.n_features_in_ = int(X.shape[1])
        self.n_train_ = int(X.shape[0])
        return self

    def score(self, features: Any) -> NDArray[np.float64]:
        """Distance of each row to its k-th nearest training row.

        Parameters
        ----------
        features : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Higher = farther from the training data = more likely out of scope.
        """
        check_fitted(self, "train_features_", "score")
        X = _check_features(features, "features", self.n_features_in_)
        return self._kth_distance(X, self.n_neighbors, leave_one_out=False)

    def score_training(self) -> NDArray[np.float64]:
        """Leave-one-out scores of the training rows themselves.

        Each training row is scored against the others (its own entry is skipped), which
        gives in-scope reference scores without a separate data set, e.g. to fit
        :class:`CombinedOODScore` on data disjoint from the threshold's calibration set.

        Returns
        -------
        ndarray of shape (n_train,)
        """
        check_fitted(self, "train_features_", "score_training")
        if self.n_train_ <= self.n_neighbors:
            raise InputError(
                f"score_training needs more than n_neighbors={self.n_neighbors} training rows; "
                f"got {self.n_train_}."
            )
        return self._kth_distance(self.train_features_, self.n_neighbors, leave_one_out=True)

    def _kth_distance(
        self,
        X: NDArray[np.floating[Any]] | sp.csr_matrix,
        k: int,
        *,
        leave_one_out: bool,
    ) -> NDArray[np.float64]:
        cosine = self.metric == "cosine"
        if cosine and X is not self.train_features_:
            X = _row_normalise(X)
        query_sq = None if cosine else _squared_norms(X)
        n, n_train = X.shape[0], self.n_train_
        step = max(1, _BLOCK_ENTRIES // n_train)
        out = np.empty(n, dtype=np.float64)
        for start in range(0, n, step):
            stop = min(n, start + step)
            # Work on (n_train, block) so that the partition runs along contiguous memory.
            dots = self._dots(X[start:stop])
            columns = np.arange(stop - start)
            if query_sq is None:
                # Cosine: the k-th smallest distance 1 - cos is 1 - the k-th largest cos.
                if leave_one_out:
                    dots[start + columns, columns] = -np.inf
                kth = np.partition(dots, n_train - k, axis=0)[n_train - k]
                out[start:stop] = 1.0 - kth
            else:
                squared = self._train_sq[:, None] - 2.0 * dots
                squared += query_sq[None, start:stop]
                if leave_one_out:
                    squared[start + columns, columns] = np.inf
                out[start:stop] = np.partition(squared, k - 1, axis=0)[k - 1]
        if cosine:
            return np.clip(out, 0.0, 2.0)
        return np.sqrt(np.maximum(out, 0.0))

    def _dots(self, block: NDArray[np.floating[Any]] | sp.csr_matrix) -> NDArray[np.floating[Any]]:
        """Inner products, shape (n_train, n_block), of every training row with a block."""
        train = self.train_features_
        if isinstance(train, np.ndarray):
            dense = block if isinstance(block, np.ndarray) else block.toarray()
            return np.asarray(train @ dense.astype(train.dtype, copy=False).T)
        query = sp.csr_matrix(block)
        # Only the feature columns this block uses matter: gather them from the training
        # matrix and multiply sparse × dense, which beats sparse × sparse when the product
        # is dense (TF-IDF character n-grams are shared by most rows). float32 halves the
        # memory traffic; similarities keep about 7 significant digits.
        columns = np.unique(query.indices)
        if columns.size == 0:
            return np.zeros((self.n_train_, query.shape[0]), dtype=np.float32)
        gathered = self._train_f32[:, columns]
        dense_query = query[:, columns].toarray().astype(np.float32)
        return np.asarray(gathered @ dense_query.T)


# --------------------------------------------------------------------------- combination


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

    def fit(self, reference_scores: ArrayLike) -> CombinedOODScore:
        """Store the in-scope reference distribution of each score.

        Parameters
        ----------
        reference_scores : array-like of shape (n_reference, n_scores)
            Scores of in-scope inputs, one column per score, each with higher = more
            likely out of scope.

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


# --------------------------------------------------------------------------- threshold


@dataclass(frozen=True)
class OODThreshold:
    """A fitted out-of-scope threshold and what it did on validation data.

    An input is flagged out of scope when its score is strictly above ``threshold``.
    ``float(result)`` is the threshold.

    Attributes
    ----------
    threshold : float
        ``inf`` when nothing can be flagged under the constraints.
    limited_by : str
        The constraint that set the threshold: ``"false_alarm_rate"``,
        ``"in_scope_accuracy"``, or ``"too_few_samples"`` (no threshold certifiable).
    max_false_alarm_rate : float
    min_in_scope_accuracy : float or None
    confidence_level : float
    n_in_scope, n_out_of_scope : int
        Validation rows used for calibration / only for reporting.
    false_alarm_rate : float
        Share of in-scope validation inputs flagged.
    oos_recall : float or None
        Share of out-of-scope validation inputs flagged (None without any).
    in_scope_accuracy : float or None
        Share of in-scope validation inputs answered correctly and not flagged (None
        without ``correct``).
    in_scope_accuracy_lower_bound : float or None
        One-sided Clopper–Pearson bound at ``confidence_level`` on that accuracy.
    """

    threshold: float
    limited_by: str
    max_false_alarm_rate: float
    min_in_scope_accuracy: float | None
    confidence_level: float
    n_in_scope: int
    n_out_of_scope: int
    false_alarm_rate: float
    oos_recall: float | None
    in_scope_accuracy: float | None
    in_scope_accuracy_lower_bound: float | None

    def __float__(self) -> float:
        return float(self.threshold)

    def flag(self, scores: ArrayLike) -> NDArray[np.bool_]:
        """Boolean mask of the inputs flagged out of scope (score > threshold).

        Parameters
        ----------
        scores : array-like of shape (n_samples,)

        Returns
        -------
        ndarray of shape (n_samples,) and dtype bool
        """
        s = check_scores(scores, "scores", ndim=1)
        return np.asarray(s > self.threshold)


def _check_rate(value: Any, name: str, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise InputError(f"`{name}` must be a number in (0, 1); got {value!r}. {fix}")
    return float(value)


def _lower_bound(successes: int, trials: int, confidence_level: float) -> float:
    """One-sided Clopper–Pearson lower bound on a success probability."""
    if successes <= 0:
        return 0.0
    return float(stats.beta.ppf(1.0 - confidence_level, successes, trials - successes + 1))


def fit_ood_threshold(
    scores: ArrayLike,
    is_out_of_scope: ArrayLike | None = None,
    *,
    max_false_alarm_rate: float = 0.05,
    correct: ArrayLike | None = None,
    min_in_scope_accuracy: float | None = None,
    confidence_level: float = 0.95,
) -> OODThreshold:
    """Fit the out-of-scope threshold on validation scores.

    The threshold is the lowest one (most out-of-scope inputs caught) that meets every
    constraint below; inputs with a score strictly above it are flagged.

    1. **False alarms** (always): the threshold is the ⌈(n + 1)(1 − α)⌉-th smallest of
       the n in-scope scores, α = ``max_false_alarm_rate`` (split conformal,
       Vovk et al., 2005). Guarantee: for a new in-scope input exchangeable with the
       in-scope validation inputs, P(flagged) ≤ α, over the draw of both; without ties it
       is also ≥ α − 1/(n + 1). Fewer than 1/α − 1 in-scope scores cannot flag anything.
    2. **In-scope accuracy** (when ``min_in_scope_accuracy`` is given, with ``correct``):
       candidate thresholds are tested from "flag nothing" downwards (fixed-sequence
       Learn-then-Test, Angelopoulos et al., 2021): at each, the null "in-scope accuracy,
       counting flagged inputs as wrong, is below ``min_in_scope_accuracy``" is rejected by
       an exact binomial test at level 1 − ``confidence_level``; the search stops at the
       first candidate it cannot reject. Guarantee: with probability ≥ ``confidence_level``
       over the validation draw, the accuracy of the chosen threshold on exchangeable
       in-scope inputs is at least ``min_in_scope_accuracy`` — the paper metric of
       Larson et al. (2019), stated as a requirement.

    Out-of-scope rows never move the threshold: both rules constrain only in-scope
    behaviour and out-of-scope recall can only grow as the threshold falls, so the lowest
    feasible threshold is the best one for any out-of-scope distribution. That keeps the
    guarantees free of assumptions about out-of-scope traffic, the part that shifts most
    in production. Labelled out-of-scope rows are used to report the recall they see.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Validation out-of-scope scores, higher = more likely out of scope (any function
        in this module, or a :class:`CombinedOODScore`).
    is_out_of_scope : array-like of bool, shape (n_samples,), optional
        True for labelled out-of-scope rows (``y == -1``). Default: all in scope.
    max_false_alarm_rate : float, default=0.05
        Largest share of in-scope inputs that may be flagged (handed off instead of
        answered).
    correct : array-like of bool, shape (n_samples,), optional
        Whether the model's predicted label is right; read on in-scope rows only.
        Needed for ``min_in_scope_accuracy``; otherwise only reported.
    min_in_scope_accuracy : float, optional
        Required share of in-scope inputs answered correctly and not flagged.
    confidence_level : float, default=0.95
        Confidence of the accuracy guarantee.

    Returns
    -------
    OODThreshold
        ``float(result)`` is the threshold; the other fields report validation rates.

    Warns
    -----
    UncertifiedWarning
        When no threshold below ``inf`` meets the constraints (too few in-scope scores, or
        a model whose in-scope accuracy cannot be certified even with nothing flagged).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> in_scope, oos = rng.normal(0, 1, 999), rng.normal(3, 1, 100)
    >>> scores = np.concatenate([in_scope, oos])
    >>> fitted = fit_ood_threshold(scores, np.r_[np.zeros(999), np.ones(100)] == 1)
    >>> round(float(fitted), 2), round(fitted.false_alarm_rate, 3), fitted.oos_recall
    (1.52, 0.049, 0.94)
    """
    s = check_scores(scores, "scores", ndim=1).astype(np.float64, copy=False)
    n_total = s.shape[0]
    if is_out_of_scope is None:
        oos = np.zeros(n_total, dtype=bool)
    else:
        oos = check_binary_labels(is_out_of_scope, "is_out_of_scope").astype(bool)
        check_consistent_length(scores=s, is_out_of_scope=oos)
    alpha = _check_rate(
        max_false_alarm_rate,
        "max_false_alarm_rate",
        "It is the largest share of in-scope inputs that may be flagged, e.g. 0.05.",
    )
    level = _check_rate(confidence_level, "confidence_level", "Use e.g. 0.95.")
    floor = None
    if min_in_scope_accuracy is not None:
        floor = _check_rate(
            min_in_scope_accuracy,
            "min_in_scope_accuracy",
            "It is the required share of in-scope inputs answered correctly, e.g. 0.93.",
        )
    right: NDArray[np.bool_] | None = None
    if correct is not None:
        right = check_binary_labels(correct, "correct").astype(bool)
        check_consistent_length(scores=s, correct=right)
    if floor is not None and right is None:
        raise InputError(
            "`min_in_scope_accuracy` needs `correct` (whether each prediction is right); got "
            "correct=None. Pass `correct=(predicted == y)` for the validation rows."
        )

    inside = s[~oos]
    n = int(inside.size)
    if n == 0:
        raise InputError(
            f"`is_out_of_scope` marks all {n_total} rows out of scope; the threshold is "
            "calibrated on in-scope scores, so pass validation data with in-scope rows."
        )
    ranked = np.sort(inside)
    k = math.ceil((n + 1) * (1.0 - alpha))
    threshold = float(ranked[k - 1]) if k <= n else math.inf
    limited_by = "false_alarm_rate" if k <= n else "too_few_samples"
    if k > n:
        needed = math.ceil(1.0 / alpha - 1.0)
        warnings.warn(
            f"fit_ood_threshold: {n} in-scope scores cannot certify a false-alarm rate of "
            f"{alpha:g}: at least {needed} are needed to flag anything. Out-of-scope "
            "detection is off (threshold = inf). Add in-scope validation data or raise "
            "max_false_alarm_rate.",
            UncertifiedWarning,
            stacklevel=2,
        )

    right_in = right[~oos] if right is not None else None
    if floor is not None and right_in is not None:
        threshold, limited_by = _accuracy_floor(
            inside, right_in, floor, level, threshold, limited_by
        )

    flagged_in = inside > threshold
    accuracy = bound = None
    if right_in is not None:
        kept_right = int(np.sum(right_in & ~flagged_in))
        accuracy = kept_right / n
        bound = _lower_bound(kept_right, n, level)
    n_oos = int(oos.sum())
    return OODThreshold(
        threshold=threshold,
        limited_by=limited_by,
        max_false_alarm_rate=alpha,
        min_in_scope_accuracy=floor,
        confidence_level=level,
        n_in_scope=n,
        n_out_of_scope=n_oos,
        false_alarm_rate=float(np.mean(flagged_in)),
        oos_recall=float(np.mean(s[oos] > threshold)) if n_oos else None,
        in_scope_accuracy=accuracy,
        in_scope_accuracy_lower_bound=bound,
    )


def _accuracy_floor(
    inside: NDArray[np.float64],
    right: NDArray[np.bool_],
    floor: float,
    level: float,
    threshold_far: float,
    limited_by: str,
) -> tuple[float, str]:
    """Fixed-sequence test of "accuracy ≥ floor" from strict to lenient thresholds."""
    n = inside.size
    order = np.argsort(-inside, kind="stable")
    desc, right_desc = inside[order], right[order]
    # Candidates from strict to lenient: `inf`, then every distinct score. Threshold
    # desc[starts[i]] flags the rows before starts[i] (all strictly larger scores).
    starts = np.flatnonzero(np.r_[True, desc[1:] != desc[:-1]])
    candidates = np.r_[np.inf, desc[starts]]
    n_flagged = np.r_[0, starts]
    lost = np.r_[0, np.cumsum(right_desc)]
    kept_right = int(right.sum()) - lost[n_flagged]
    # Null: accuracy < floor. p = P(Binomial(n, floor) >= kept_right).
    p_values = stats.binom.sf(kept_right - 1, n, floor)
    delta = 1.0 - level
    feasible = candidates >= threshold_far
    passed = (p_values <= delta) & feasible
    if not passed[0]:
        accuracy = kept_right[0] / n
        warnings.warn(
            f"fit_ood_threshold: in-scope accuracy {accuracy:.4f} on {n} validation inputs "
            f"(lower bound {_lower_bound(int(kept_right[0]), n, level):.4f} at confidence "
            f"{level:g}) cannot certify min_in_scope_accuracy={floor:g} even with nothing "
            "flagged. Out-of-scope detection is off (threshold = inf). Lower "
            "min_in_scope_accuracy, improve the model, or add validation data.",
            UncertifiedWarning,
            stacklevel=3,
        )
        return math.inf, "in_scope_accuracy"
    last = int(np.argmin(passed)) - 1 if not passed.all() else passed.size - 1
    chosen = float(candidates[last])
    if chosen > threshold_far:
        return chosen, "in_scope_accuracy"
    return chosen, limited_by
=======
>>>>>>> main
