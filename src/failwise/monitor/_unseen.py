"""Unseen inputs: requests farther from the reference than the reference is from itself.

:class:`UnseenInputDetector` splits the reference at random into an *index* half and a
*calibration* half. An input's score is the distance to its ``n_neighbors``-th nearest
index input; the cut is the conformal ``1 - false_alarm_rate`` quantile of the calibration
half's scores, and an input beyond it is *unseen*. A served input drawn like the reference
and a calibration input are scored the same way against the same index, so they are
exchangeable: the chance of being flagged is at most ``false_alarm_rate`` on average over
reference draws (split conformal; a leave-one-out cut would score reference inputs against
one input fewer than served ones, and is not exactly exchangeable).

When the reference's calibrated confidences are given to :meth:`~UnseenInputDetector.fit`,
the score adds the input's standardised *doubt* ``1 - confidence`` to its standardised
distance (``confidence_weight`` times; both standardised with the index half alone): a
request of a category nobody evaluated is typically both far from the reference and
answered with less confidence than the reference's inputs, and the sum separates them
better than either. The score is still a fixed function of the index half, so the
exchangeability argument is unchanged.

How the score was chosen. On BANKING77 with 19 of 77 intents held out (all-MiniLM-L6-v2,
logistic regression, the reference's confidences, the training inputs as neighbour rows;
held-out intent draws 10-29, which the monitor benchmark does not use), the AUROC of
unseen-intent against known-intent test inputs was 0.897 for the nearest-neighbour
distance, 0.875 for the doubt, 0.887-0.842 for the 3rd to 10th neighbour's distance,
0.780 for the class-conditional Mahalanobis distance with a shared covariance fitted on
the training inputs (Lee et al., 2018), 0.889 for its relative version (Ren et al.,
2021), 0.860 for the energy of the logits, 0.913 for distance plus doubt at weight 1 and
0.917 at weight 0.5; adding the Mahalanobis, relative Mahalanobis or energy score to
that sum did not raise it (0.902-0.917). At the 10 % flag rate the weight 0.5 flags 75 %
of unseen-intent requests (weight 1: 71 %). On the monitor benchmark's own draws 0-9 it
raised power (10 % novelty in 90 % of windows instead of 86 %, 5 % in 44 % instead of
40 %), but one reference draw of ten gave 25 % false alarms in null windows (weight 1: at
most 5 %), beyond three times the nominal rate, so the default stays 1. Which weight
meets a low cut is luck of the draw (on draws 10-29 the worst draw was weight 1's, 17 %,
against 6 % at 0.5): it is the ``1 - reference_confidence`` risk the window test accepts.

A reference of a thousand validation rows is a thin index: an ordinary input's nearest
reference neighbour is often not much nearer than an unseen one's. ``fit(...,
neighbour_features=...)`` adds other inputs drawn like the reference — the training inputs,
which the policy was not fitted on and which are disjoint from the reference — to the
index. A random quarter of the reference joins them (its leave-one-out distances and doubts
standardise the score) and the other three quarters calibrate the cut. The index is then a
fixed set independent of the calibration rows, and a served ordinary input and a
calibration row are scored against it alike, so the argument above holds unchanged, with
more calibration rows (a tighter ``null_rate_``) and a denser index (on BANKING77 with 4,400
training rows beside 2,000 reference rows, over 10 reference draws, 10 % novelty is
detected in 86 % of windows of 500 instead of 76 %, 5 % novelty in 40 % instead of 34 %).
The neighbour rows must not repeat the calibration rows: a calibration row at distance 0
lowers the cut, so :meth:`fit` refuses neighbour rows that repeat more than 1 % of them.
The neighbour rows' confidences are never used: the doubt's standardisation comes from
reference rows only.

A window's test must not take that average for the truth: with a given reference the flag
rate of ordinary inputs is a random ``U`` (Beta-distributed, Bates et al., 2023), and a
reference that happens to cut low raises false alarms in every window. The window test
therefore compares the flagged count with a binomial whose rate is the
``reference_confidence`` upper quantile of ``U``: with that probability over reference
draws, no window of ordinary inputs alarms more often than ``alpha``.

References
----------
Lee, K., Lee, K., Lee, H. & Shin, J. (2018). A simple unified framework for detecting
out-of-distribution samples and adversarial attacks. *NeurIPS*.

Ren, J., Fort, S., Liu, J., Roy, A. G., Padhy, S. & Lakshminarayanan, B. (2021). A simple
fix to Mahalanobis distance for improving near-OOD detection. *arXiv:2106.09022*.

Bates, S., Candès, E., Lei, L., Romano, Y. & Sesia, M. (2023). Testing for outliers with
conformal p-values. *Annals of Statistics* 51(1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._base import Estimator
from failwise._params import Count, Interval, Options, Probability
from failwise._stats import _binomial_sf
from failwise._validation import check_confidence, check_scores
from failwise.exceptions import InputError

__all__ = ["UnseenInputDetector", "UnseenInputTest"]


@dataclass(frozen=True)
class UnseenInputTest:
    """How many of a window's inputs lie beyond the reference, and whether that is news.

    Attributes
    ----------
    n_inputs, n_unseen : int
        Inputs tested and inputs beyond the cut.
    unseen_rate : float
        ``n_unseen / n_inputs``.
    null_rate : float
        Highest flag rate that ordinary inputs can have with this reference (at
        ``reference_confidence``).
    excess_rate : float
        ``max(0, unseen_rate - null_rate)``: a lower estimate of the share of requests
        unlike anything evaluated.
    p_value : float
        Binomial tail of ``n_unseen`` at ``null_rate``.
    unseen : ndarray of bool, shape (n_inputs,)
        Which inputs were beyond the cut.
    distance : ndarray of float, shape (n_inputs,) or None
        Each input's distance to its ``n_neighbors``-th nearest index row (for "cosine",
        the Euclidean distance between unit vectors); None when not computed.
    far : ndarray of bool, shape (n_inputs,) or None
        Which inputs are beyond the cut *and* farther than the distance cut alone
        (:attr:`UnseenInputDetector.distance_threshold_`): unseen by position, not only by
        the model's doubt. None when not computed.
    """

    n_inputs: int
    n_unseen: int
    unseen_rate: float
    null_rate: float
    excess_rate: float
    p_value: float
    unseen: NDArray[np.bool_] = field(repr=False)
    distance: NDArray[np.float64] | None = field(default=None, repr=False)
    far: NDArray[np.bool_] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary (without the per-input mask)."""
        return {
            "n_inputs": self.n_inputs,
            "n_unseen": self.n_unseen,
            "unseen_rate": self.unseen_rate,
            "null_rate": self.null_rate,
            "excess_rate": self.excess_rate,
            "p_value": self.p_value,
        }


class UnseenInputDetector(Estimator):
    """Flag inputs farther from the reference than its own nearest-neighbour distances.

    Parameters
    ----------
    n_neighbors : int, default=1
        The score is the distance to this many-th nearest index input (on BANKING77 with
        sentence embeddings the nearest one separates unseen intents best).
    false_alarm_rate : float, default=0.1
        Share of ordinary inputs flagged, on average over reference draws.
    reference_confidence : float, default=0.9
        Probability, over reference draws, that the window test's null rate is not
        exceeded by ordinary inputs (see the module notes).
    metric : {"euclidean", "cosine"}, default="cosine"
        Distance between feature vectors ("cosine" for sentence embeddings).
    confidence_weight : float, default=1.0
        Weight of the standardised doubt ``1 - confidence`` in the score, used only when
        :meth:`fit` receives the reference's confidences (0.5 separates slightly better,
        see the module notes).
    random_state : int, Generator or None, default=0
        Seed of the split into index and calibration halves.

    Attributes
    ----------
    n_reference_ : int
        Reference inputs (index and calibration rows).
    n_index_ : int
        Rows the score's neighbours are searched in (reference rows and neighbour rows).
    reference_distances_ : ndarray of shape (n_calibration,)
        Score of every calibration input against the index half (the distance, or the
        combined score when fitted with confidences).
    threshold_ : float
        Scores above it are unseen (infinite when the reference is too small for
        ``false_alarm_rate``).
    distance_threshold_ : float
        The same cut for the distance alone (equal to ``threshold_`` without confidences).
    null_rate_ : float
        Upper ``reference_confidence`` quantile of the flag rate of ordinary inputs.
    uses_confidence_ : bool
        Whether the score includes the confidence (``fit`` received ``confidence``); then
        :meth:`score`, :meth:`unseen` and :meth:`test` need the served inputs' confidence.
    category_spread_ : float or None
        With reference labels: the median over categories of the mean distance between two
        reference inputs of the same category (the size of an evaluated category); None
        without.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import UnseenInputDetector
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(1000, 8))
    >>> detector = UnseenInputDetector(metric="euclidean").fit(reference)
    >>> ordinary = rng.normal(size=(500, 8))
    >>> detector.test(ordinary).p_value > 0.01
    True
    >>> novel = np.concatenate([ordinary[:400], rng.normal(4.0, size=(100, 8))])
    >>> result = detector.test(novel)
    >>> result.p_value < 1e-6, round(result.excess_rate, 1)
    (True, 0.1)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_neighbors": [Count(1)],
        "false_alarm_rate": [Probability(closed="neither")],
        "reference_confidence": [Probability(closed="neither")],
        "metric": [Options(("euclidean", "cosine"))],
        "confidence_weight": [Interval(Real, 0, None, closed="left")],
        "random_state": [Count(0), np.random.Generator, None],
    }

    def __init__(
        self,
        *,
        n_neighbors: int = 1,
        false_alarm_rate: float = 0.1,
        reference_confidence: float = 0.9,
        metric: str = "cosine",
        confidence_weight: float = 1.0,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.false_alarm_rate = false_alarm_rate
        self.reference_confidence = reference_confidence
        self.metric = metric
        self.confidence_weight = confidence_weight
        self.random_state = random_state

    def _prepare(self, X: ArrayLike, name: str) -> NDArray[np.float64]:
        array = check_scores(X, name, ndim=2).astype(np.float64)
        if self.metric == "cosine":
            norms = np.linalg.norm(array, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise InputError(
                    f"`{name}` has all-zero feature rows, which have no direction for the "
                    "cosine metric; pass metric='euclidean' or drop those rows."
                )
            array = array / norms
        return array

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        *,
        confidence: ArrayLike | None = None,
        neighbour_features: ArrayLike | None = None,
    ) -> UnseenInputDetector:
        """Index the reference features and calibrate the cut.

        Parameters
        ----------
        X : array-like of shape (n_reference, n_features)
            Features of the reference inputs (the validation data the policy was fitted on).
        y : array-like of shape (n_reference,), optional
            Their categories (true or predicted labels), to measure how large an evaluated
            category is (``category_spread_``).
        confidence : array-like of shape (n_reference,), optional
            The reference inputs' calibrated confidence (of the predicted label): the score
            then also counts how unsure the model is (see the module notes), and the served
            inputs' confidence must be passed to :meth:`test`.
        neighbour_features : array-like of shape (n_neighbour, n_features), optional
            Features of *other* inputs drawn like the reference but disjoint from it (the
            training inputs): they join the index, so that ordinary inputs find nearer
            neighbours, and all but a quarter of the reference calibrates the cut (see the
            module notes). They must not contain reference rows.

        Returns
        -------
        self
        """
        from scipy import stats

        self._validate_params()
        reference = self._prepare(X, "X")
        n = reference.shape[0]
        k = int(self.n_neighbors)
        if n < 2 * (k + 1):
            raise InputError(
                f"The reference has {n} inputs but n_neighbors={k}; half of it indexes and half "
                f"calibrates, so it needs at least {2 * (k + 1)}. Pass more reference rows or a "
                "smaller n_neighbors."
            )
        doubt = None if confidence is None else self._doubt(confidence, n, "confidence")
        extra = self._neighbours(neighbour_features, reference.shape[1], k)
        order = np.random.default_rng(self.random_state).permutation(n)
        # Without neighbour rows half of the reference indexes; with them a quarter joins
        # the index (to standardise the score) and the other three quarters calibrate.
        cut = n // 2 if extra is None else n // 4
        index_rows, calibration_rows = order[:cut], order[cut:]
        indexed = reference[index_rows]
        self._index = _NeighbourIndex(indexed if extra is None else np.vstack([indexed, extra]))
        # Standardise with the index rows taken from the reference only (their leave-one-out
        # distances), so that the score stays a fixed function of the index.
        own = self._index.kth_distance(indexed, k, leave_one_out=True)
        self._distance_scale = _location_scale(own)
        self.uses_confidence_ = doubt is not None
        self._doubt_scale = (0.0, 1.0) if doubt is None else _location_scale(doubt[index_rows])
        calibration_distance = self._distance_to_reference(reference[calibration_rows])
        if extra is not None:
            _check_disjoint(self._index, reference[calibration_rows])
        self.n_index_ = int(self._index.rows.shape[0])
        self.reference_distances_ = self._combine(
            calibration_distance, None if doubt is None else doubt[calibration_rows]
        )
        m = calibration_rows.size
        rank = math.ceil((m + 1) * (1.0 - float(self.false_alarm_rate)))
        if rank > m:
            self.threshold_ = self.distance_threshold_ = math.inf
            self.null_rate_ = 0.0
        else:
            self.threshold_ = float(np.sort(self.reference_distances_)[rank - 1])
            self.distance_threshold_ = float(np.sort(calibration_distance)[rank - 1])
            # P(ordinary input beyond the rank-th smallest of m) ~ Beta(m + 1 - rank, rank).
            self.null_rate_ = float(
                stats.beta.ppf(float(self.reference_confidence), m + 1 - rank, rank)
            )
        self.category_spread_ = None if y is None else _category_spread(reference, y)
        self.n_reference_ = n
        self.n_features_in_ = reference.shape[1]
        return self

    def score(self, X: ArrayLike, *, confidence: ArrayLike | None = None) -> NDArray[np.float64]:
        """Score of each input: its distance to the ``n_neighbors``-th nearest index input.

        With a detector fitted with confidences, the standardised distance plus
        ``confidence_weight`` times the standardised doubt ``1 - confidence``; pass the
        inputs' ``confidence`` then. Higher is farther from the reference.
        """
        return self._distance_and_score(X, confidence, "score")[1]

    def _distance_and_score(
        self, X: ArrayLike, confidence: ArrayLike | None, where: str
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(distance, score) of each input; see :meth:`score`."""
        self._check_fitted("threshold_", where)
        features = self._prepare(X, "X")
        if features.shape[1] != self.n_features_in_:
            raise InputError(
                f"`X` has {features.shape[1]} feature columns but the reference had "
                f"{self.n_features_in_}; use the same feature function for both."
            )
        if getattr(self, "uses_confidence_", False):
            if confidence is None:
                raise InputError(
                    "This detector was fitted with the reference's confidences, so its score "
                    "needs the served inputs' confidence too: pass confidence=... (one "
                    "calibrated confidence per input), or refit without confidence."
                )
            doubt = self._doubt(confidence, features.shape[0], "confidence")
        elif confidence is not None:
            raise InputError(
                "This detector was fitted without confidences, so its score is the distance "
                "alone; leave out `confidence`, or refit with fit(X, confidence=...)."
            )
        else:
            doubt = None
        distance = self._distance_to_reference(features)
        return distance, self._combine(distance, doubt)

    def _distance_to_reference(self, prepared: NDArray[np.float64]) -> NDArray[np.float64]:
        """Distance of rows already prepared (normalised for the cosine metric)."""
        return self._index.kth_distance(prepared, int(self.n_neighbors))

    def _combine(
        self, distance: NDArray[np.float64], doubt: NDArray[np.float64] | None
    ) -> NDArray[np.float64]:
        """The score from distances (and doubts when the detector uses confidence)."""
        if doubt is None:
            return distance
        d_loc, d_scale = self._distance_scale
        u_loc, u_scale = self._doubt_scale
        weight = float(self.confidence_weight)
        return np.asarray(
            (distance - d_loc) / d_scale + weight * (doubt - u_loc) / u_scale, dtype=np.float64
        )

    def _is_far(self, prepared: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Rows (prepared) whose *distance* alone lies beyond the reference's own cut.

        Used by :func:`~failwise.monitor.find_gaps` to check a cluster's centre, which has
        a position but no confidence of its own.
        """
        distance = self._distance_to_reference(prepared)
        return np.asarray(distance > self.distance_threshold_, dtype=bool)

    def _neighbours(
        self, neighbour_features: ArrayLike | None, width: int, k: int
    ) -> NDArray[np.float64] | None:
        """The extra index rows (prepared), or None."""
        if neighbour_features is None:
            return None
        extra = self._prepare(neighbour_features, "neighbour_features")
        if extra.shape[1] != width:
            raise InputError(
                f"`neighbour_features` has {extra.shape[1]} feature columns but `X` has {width}; "
                "pass the same feature function's output for both."
            )
        if extra.shape[0] < k:
            raise InputError(
                f"`neighbour_features` has {extra.shape[0]} rows but n_neighbors={k}; pass at "
                f"least {k} rows (the training inputs), or leave it out."
            )
        return extra

    @staticmethod
    def _doubt(confidence: ArrayLike, n: int, name: str) -> NDArray[np.float64]:
        values = check_confidence(confidence, name).astype(np.float64)
        if values.ndim != 1 or values.shape[0] != n:
            raise InputError(
                f"`{name}` must hold one calibrated confidence per input ({n}); got shape "
                f"{values.shape}."
            )
        return 1.0 - values

    def unseen(self, X: ArrayLike, *, confidence: ArrayLike | None = None) -> NDArray[np.bool_]:
        """Which inputs lie beyond the cut."""
        self._check_fitted("threshold_", "unseen")
        return self.score(X, confidence=confidence) > self.threshold_

    def test(self, X: ArrayLike, *, confidence: ArrayLike | None = None) -> UnseenInputTest:
        """Test one window: does it hold more unseen inputs than ordinary inputs explain?

        Parameters
        ----------
        X : array-like of shape (n_inputs, n_features)
            The window's features.
        confidence : array-like of shape (n_inputs,), optional
            Their calibrated confidence; required when the detector was fitted with the
            reference's confidences, refused otherwise.
        """
        distance, score = self._distance_and_score(X, confidence, "test")
        flags = score > self.threshold_
        n, k = int(flags.size), int(flags.sum())
        rate = k / n if n else math.nan
        # P(Binomial(n, null rate) >= k); the null rate may be 0 or 1 here.
        p_value = float(_binomial_sf(float(k), float(n), self.null_rate_)) if n and k else 1.0
        return UnseenInputTest(
            n_inputs=n,
            n_unseen=k,
            unseen_rate=rate,
            null_rate=self.null_rate_,
            excess_rate=max(0.0, rate - self.null_rate_) if n else math.nan,
            p_value=min(1.0, p_value),
            unseen=flags,
            distance=distance,
            far=flags & (distance > self.distance_threshold_),
        )


class _NeighbourIndex:
    """Exact k-th nearest-neighbour distances by blocked float32 matrix products.

    Float32 products (twice as fast as float64, and BLAS uses every core) give every
    query's approximate k-th distance; every index row within float32's rounding bound of
    it is then measured again in float64, so the distance returned is the float64 one.
    """

    #: Entries of one block's product (queries x index rows): 64 MB of float32.
    BLOCK_ENTRIES: ClassVar[int] = 1 << 24
    #: Rounding bound of a float32 squared distance, in units of eps * sqrt(d) * norms.
    SLACK: ClassVar[float] = 64.0

    def __init__(self, rows: NDArray[np.float64]) -> None:
        self.rows = np.ascontiguousarray(rows, dtype=np.float64)
        self.rows32 = self.rows.astype(np.float32)
        self.norms = np.einsum("ij,ij->i", self.rows, self.rows)
        self.norms32 = self.norms.astype(np.float32)

    def kth_distance(
        self, queries: NDArray[np.float64], k: int, *, leave_one_out: bool = False
    ) -> NDArray[np.float64]:
        """Distance of each query to its ``k``-th nearest row (queries = rows, minus itself)."""
        n_rows, dims = self.rows.shape
        out = np.empty(queries.shape[0])
        step = max(1, self.BLOCK_ENTRIES // n_rows)
        slack = self.SLACK * float(np.finfo(np.float32).eps) * math.sqrt(dims)
        for start in range(0, queries.shape[0], step):
            block = np.asarray(queries[start : start + step], dtype=np.float64)
            size = block.shape[0]
            own = np.einsum("ij,ij->i", block, block)
            approx = block.astype(np.float32) @ self.rows32.T  # |r|^2 - 2 q.r, in float32
            approx *= -2.0
            approx += self.norms32[None, :]
            if leave_one_out:
                approx[np.arange(size), np.arange(start, start + size)] = np.inf
            kth = approx.min(axis=1) if k == 1 else np.partition(approx, k - 1, axis=1)[:, k - 1]
            bound = kth + slack * (own + float(self.norms.max()))
            query, row = np.nonzero(approx <= bound[:, None].astype(np.float32))
            if query.size > 32 * size:  # many near-ties: measure the whole block in float64
                exact_all = own[:, None] + self.norms[None, :] - 2.0 * (block @ self.rows.T)
                if leave_one_out:
                    exact_all[np.arange(size), np.arange(start, start + size)] = np.inf
                kth64 = np.partition(exact_all, k - 1, axis=1)[:, k - 1]
            else:
                exact = (
                    own[query]
                    + self.norms[row]
                    - 2.0 * np.einsum("ij,ij->i", block[query], self.rows[row])
                )
                order = np.lexsort((exact, query))
                first = np.searchsorted(query[order], np.arange(size))
                kth64 = exact[order][first + k - 1]
            out[start : start + size] = np.sqrt(np.maximum(kth64, 0.0))
        return out


def _check_disjoint(index: _NeighbourIndex, calibration: NDArray[np.float64]) -> None:
    """Refuse neighbour rows that repeat many calibration rows (the cut would be too low).

    A few exact repeats happen in real data (the same request typed twice); more than 1 %
    means the neighbour rows include the reference itself.
    """
    repeated = int(np.sum(index.kth_distance(calibration, 1) <= 1e-6))
    if repeated > max(1, 0.01 * calibration.shape[0]):
        raise InputError(
            f"{repeated} of the {calibration.shape[0]} calibration rows of the reference also "
            "appear in `neighbour_features`; the neighbour rows must be other inputs than the "
            "reference (e.g. the training inputs, not the validation inputs), or the cut is "
            "too low and false alarms exceed false_alarm_rate."
        )


def _location_scale(values: NDArray[np.float64]) -> tuple[float, float]:
    """Mean and standard deviation (1 when the values are constant)."""
    scale = float(np.std(values))
    return float(np.mean(values)), scale if scale > 0 else 1.0


def _category_spread(reference: NDArray[np.float64], y: ArrayLike, per_class: int = 200) -> float:
    """Median over categories of the mean within-category pairwise distance."""
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != reference.shape[0]:
        raise InputError(
            f"`y` must hold one category per reference input ({reference.shape[0]}); got shape "
            f"{labels.shape}."
        )
    rng = np.random.default_rng(0)
    spreads = []
    for category in np.unique(labels):
        rows = np.flatnonzero(labels == category)
        if rows.size < 2:
            continue
        if rows.size > per_class:
            rows = rng.choice(rows, size=per_class, replace=False)
        points = reference[rows]
        sq = np.einsum("ij,ij->i", points, points)
        distances = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0))
        spreads.append(distances[np.triu_indices(rows.size, k=1)].mean())
    if not spreads:
        raise InputError(
            "`y` has no category with two or more reference inputs; pass the reference's "
            "labels (or predicted labels), or leave y out."
        )
    return float(np.median(spreads))
