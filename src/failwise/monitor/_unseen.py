"""Unseen inputs: requests farther from the reference than the reference is from itself.

:class:`UnseenInputDetector` indexes the reference (and, when given, other inputs drawn
like it: the training inputs). An input's score is the distance to its ``n_neighbors``-th
nearest index row; the cut is the conformal ``1 - false_alarm_rate`` quantile of the
calibration rows' scores, and an input beyond it is *unseen*. A window's test counts the
inputs beyond the cut.

Calibration (``calibration="leave_one_out"``, the default). Every index row is also a
calibration row, scored by its distance to the ``n_neighbors``-th nearest *other* index
row. What must hold: the served ordinary inputs and the index rows (reference rows and
neighbour rows) are exchangeable, i.e. drawn alike from the same traffic. Then add a served
input ``x`` to the ``N`` index rows. In that set of ``N + 1`` every row's leave-one-out
distance is a symmetric function of the set, so ``x``'s rank among the ``N + 1`` is uniform
(full conformal prediction, Vovk, Gammerman & Shafer, 2005), and ``x`` lies beyond the
``ceil((N + 1)(1 - false_alarm_rate))``-th of them with probability at most
``false_alarm_rate``. The detector scores ``x`` against all ``N`` rows, which is exactly
its leave-one-out distance in that set. It calibrates on each row's leave-one-out distance
among the ``N`` rows *without* ``x``: an index of ``N - 1`` rows, one fewer than the
production index, so each calibration distance is larger than or equal to the one the
exact argument uses (it lacks ``x`` as a candidate neighbour). Larger calibration scores
raise the cut. The flag rate of ordinary inputs is therefore at most ``false_alarm_rate``
over reference draws: conservative, and only slightly, because a served input is among the
``n_neighbors`` nearest of about ``n_neighbors`` index rows on average. Index and
calibration are the same ``N`` rows, so the cut comes from thousands of scores where a split
into an index half and a calibration half had a few hundred, and the index is the densest
one available.

What breaks it: neighbour rows that are not drawn like served traffic. Exact repeats of
reference rows put calibration rows at distance 0 and lower the cut, so :meth:`fit`
refuses neighbour rows that repeat more than 1 % of the reference; repeats *within* the
training inputs (the same request typed twice) are part of traffic as well and are kept.
A curated training set (deduplicated, augmented, re-balanced) is not exchangeable with
traffic: pass ``calibration="split"``, which needs only the reference to be.

With confidences. When :meth:`~UnseenInputDetector.fit` receives the reference's
calibrated confidences, the score adds the input's standardised *doubt*
``1 - confidence`` to its standardised distance (``confidence_weight`` times). Only the
reference rows have a confidence the model did not fit (the training rows' confidences are
in-sample, too high), so only they calibrate; the argument above holds for them, the
neighbour rows being a fixed part of the index. The standardising constants are computed
on the rows without ``x`` and would move by ``O(1/N)`` with it, which the argument neglects.

``calibration="split"`` is the earlier scheme: the reference is split at random into an
index part (half of it, or a quarter beside neighbour rows) and a calibration part, scored
against the fixed index: exact split conformal with fewer calibration rows.

How the setting was chosen. On BANKING77 with 19 of 77 intents held out (all-MiniLM-L6-v2,
logistic regression, ~2,000 reference and ~4,400 training rows; held-out intent draws
10-19, which the monitor benchmark does not report; 2,000 simulated windows of 500 per draw
and condition; binomial window test at p < 0.05):

power at 5 % / 10 % novelty, false alarms in null windows (mean, worst draw):

* distance + doubt, split (the earlier default): 37 % / 93 %, 0.9 % (4.8 %);
* distance + doubt, leave-one-out, reference rows calibrating: 45 % / 97 %, 1.4 % (6.2 %);
* distance, leave-one-out, reference rows only calibrating: 43 % / 95 %, 1.0 % (3.5 %);
* **distance, leave-one-out, every index row calibrating: 55 % / 98 %, 1.8 % (5.2 %)**;
* the same with the cut at 7 / 5 / 3 % instead of 10 %: 56 / 54 / 54 % at 5 % novelty,
  worst draw up to 11.9 %;
* the same with a rank-sum of conformal p-values as the window statistic: 36 % / 91 %.

The doubt separates unseen intents better per input, but limits calibration to the ~2,000
reference rows; calibrating on all ~6,400 rows with the distance alone gains more. The
monitor (:func:`~failwise.monitor.run_monitor`) therefore fits without confidences.
Lower cuts did not gain power and made the worst reference draw's false alarms larger. A
rank-sum of conformal p-values spreads its weight over the whole score range, where a
small share of novel inputs moves only the upper tail. Scoring relative to the nearest
row's own leave-one-out distance lost power (3 % at 5 % novelty); the mean of the two
nearest distances gave 58 %, within the draws' noise of the nearest one. An earlier study
of per-input scores on draws 10-29 found the class-conditional Mahalanobis distance (Lee
et al., 2018), its relative version (Ren et al., 2021) and the energy of the logits no
better than distance plus doubt.

The window test must not take the average for the truth: with a given reference the flag
rate of ordinary inputs is a random ``U`` (Beta-distributed for split calibration, Bates
et al., 2023), and a reference that happens to cut low raises false alarms in every
window. The window test therefore compares the flagged count with a binomial whose rate is
the ``reference_confidence`` upper quantile of ``U``: with that probability over reference
draws, no window of ordinary inputs alarms more often than ``alpha``. For leave-one-out
calibration the same Beta law with ``N`` calibration rows is used; it is exact for split
calibration and holds approximately for a score that one row changes for only about
``n_neighbors`` others (a stable score; Bian & Barber, 2023), which the benchmark's null
windows over ten reference draws check.

References
----------
Lee, K., Lee, K., Lee, H. & Shin, J. (2018). A simple unified framework for detecting
out-of-distribution samples and adversarial attacks. *NeurIPS*.

Ren, J., Fort, S., Liu, J., Roy, A. G., Padhy, S. & Lakshminarayanan, B. (2021). A simple
fix to Mahalanobis distance for improving near-OOD detection. *arXiv:2106.09022*.

Bates, S., Candès, E., Lei, L., Romano, Y. & Sesia, M. (2023). Testing for outliers with
conformal p-values. *Annals of Statistics* 51(1).

Bian, M. & Barber, R. F. (2023). Training-conditional coverage for distribution-free
predictive inference. *Electronic Journal of Statistics* 17(2).

Vovk, V., Gammerman, A. & Shafer, G. (2005). *Algorithmic Learning in a Random World*.
Springer.
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
from failwise.monitor._neighbours import NeighbourIndex

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
    calibration : {"leave_one_out", "split"}, default="leave_one_out"
        How the cut is calibrated: on every index row's distance to the other index rows
        (with confidences: every reference row's), or on a part of the reference held out
        of the index (see the module notes).
    random_state : int, Generator or None, default=0
        Seed of the split into index and calibration parts (``calibration="split"``).

    Attributes
    ----------
    n_reference_ : int
        Reference inputs (index and calibration rows).
    n_index_ : int
        Rows the score's neighbours are searched in (reference rows and neighbour rows).
    reference_distances_ : ndarray of shape (n_calibration,)
        Score of every calibration row (the distance, or the combined score when fitted
        with confidences): against the other index rows, or against the index part.
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
        "calibration": [Options(("leave_one_out", "split"))],
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
        calibration: str = "leave_one_out",
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.false_alarm_rate = false_alarm_rate
        self.reference_confidence = reference_confidence
        self.metric = metric
        self.confidence_weight = confidence_weight
        self.calibration = calibration
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
            neighbours, and (with ``calibration="leave_one_out"`` and no confidences) they
            calibrate the cut too (see the module notes). They must not contain reference
            rows.

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
                f"The reference has {n} inputs but n_neighbors={k}; its rows index and "
                f"calibrate, so it needs at least {2 * (k + 1)}. Pass more reference rows or a "
                "smaller n_neighbors."
            )
        doubt = None if confidence is None else self._doubt(confidence, n, "confidence")
        extra = self._neighbours(neighbour_features, reference.shape[1], k)
        self.uses_confidence_ = doubt is not None
        if self.calibration == "split":
            calibration_distance, calibration_doubt = self._fit_split(reference, doubt, extra, k)
        else:
            calibration_distance, calibration_doubt = self._fit_leave_one_out(
                reference, doubt, extra, k
            )
        self.n_index_ = int(self._index.rows.shape[0])
        self.reference_distances_ = self._combine(calibration_distance, calibration_doubt)
        m = calibration_distance.size
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

    def _fit_split(
        self,
        reference: NDArray[np.float64],
        doubt: NDArray[np.float64] | None,
        extra: NDArray[np.float64] | None,
        k: int,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Index part and calibration part of the reference; the calibration scores."""
        n = reference.shape[0]
        order = np.random.default_rng(self.random_state).permutation(n)
        # Without neighbour rows half of the reference indexes; with them a quarter joins
        # the index (to standardise the score) and the other three quarters calibrate.
        cut = n // 2 if extra is None else n // 4
        index_rows, calibration_rows = order[:cut], order[cut:]
        indexed = reference[index_rows]
        self._index = NeighbourIndex(indexed if extra is None else np.vstack([indexed, extra]))
        # Standardise with the index rows taken from the reference only (their leave-one-out
        # distances), so that the score stays a fixed function of the index.
        own = self._index.kth_distance(indexed, k, leave_one_out=True)
        self._distance_scale = _location_scale(own)
        self._doubt_scale = (0.0, 1.0) if doubt is None else _location_scale(doubt[index_rows])
        if extra is not None:
            _check_disjoint(self._index.kth_distance(reference[calibration_rows], 1))
        return (
            self._distance_to_reference(reference[calibration_rows]),
            None if doubt is None else doubt[calibration_rows],
        )

    def _fit_leave_one_out(
        self,
        reference: NDArray[np.float64],
        doubt: NDArray[np.float64] | None,
        extra: NDArray[np.float64] | None,
        k: int,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Every row indexes; the calibration scores are leave-one-out (module notes)."""
        n = reference.shape[0]
        if extra is not None:
            _check_disjoint(NeighbourIndex(extra).kth_distance(reference, 1))
        self._index = NeighbourIndex(reference if extra is None else np.vstack([reference, extra]))
        own = self._index.kth_distance(self._index.rows, k, leave_one_out=True)
        self._distance_scale = _location_scale(own)
        if doubt is None:
            self._doubt_scale = (0.0, 1.0)
            return own, None
        # Only the reference rows have out-of-sample confidences: only they calibrate.
        self._doubt_scale = _location_scale(doubt)
        return own[:n], doubt

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


def _check_disjoint(nearest: NDArray[np.float64]) -> None:
    """Refuse neighbour rows that repeat many reference rows (the cut would be too low).

    ``nearest`` is each calibration reference row's distance to the nearest neighbour row
    (or index row). A few exact repeats happen in real data (the same request typed twice);
    more than 1 % means the neighbour rows include the reference itself.
    """
    repeated = int(np.sum(nearest <= 1e-6))
    if repeated > max(1, 0.01 * nearest.shape[0]):
        raise InputError(
            f"{repeated} of the {nearest.shape[0]} calibration rows of the reference also "
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
