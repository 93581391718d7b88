"""Blind spots: clusters of served inputs that lie beyond everything evaluated.

:func:`find_gaps` takes the inputs an :class:`~failwise.monitor.UnseenInputDetector` scores
as farther from the reference than most of the reference is from itself, groups them by
clustering, and describes every group of at least ``min_size`` inputs: its share of
traffic, when it was seen, representative inputs, its mean confidence and action mix, what
audits, corrections and escalations say about it, and the silent failures it is expected
to cause. Gaps are ranked by that expectation, so the first one is where users are most
likely being answered wrongly without anybody noticing.

Two inputs are compared by their *relative distance*: the distance between them over the
geometric mean of their distances to the reference. Groups merge (average linkage) while
their members' average relative distance stays below ``merge_ratio``. The distance to the
reference is measured at the density of a reference-only index, whatever the detector's
index holds: with the training inputs in it (``neighbour_features``) the index has ``m``
times as many rows as the detector indexes with the reference alone (half the reference
with ``calibration="split"``, the detector the rule was tuned with), and the distance is
to the ``m``-th nearest row instead of the nearest, which lies
about as far as the nearest row of the thinner index. Without it a denser index shrinks
every distance to the reference, ordinary ones most, and the same ratio merges more. The
rule this replaces scaled the ratio by the square root of an evaluated category's size over
the reference's edge: on the tuning draws it found fewer unseen intents with the denser
index and, on CLINC150, no gap of out-of-scope queries with the reference alone (the
category size is close to the edge there, so the ratio shrank).

Requests of a category nobody evaluated come several at a
time and near one another, far from the reference, so their relative distances are small
even when the category is broad; inputs at the fringe of a known category have that
category close by, so their relative distances are large and they stay apart, however
near they are to one another in absolute terms. The test is the reference's own scale at
every place in feature space, which an absolute merge distance (one category size for the
whole space) is not: on BANKING77 it kept unseen intents whole where a fixed radius split
them into pieces smaller than ``min_size``.

Because that test keeps ordinary inputs apart, candidates can be taken more widely than
the detector's own cut: every input scored beyond the reference's ``1 - candidate_rate``
quantile (and at least every input the detector flags), which gives small unseen
categories enough members to reach ``min_size``. A group whose centre lies inside the
reference is the fringe of an evaluated category, not a gap, and is dropped. With a
detector fitted with confidences, "inside" is judged by the detector's combined score of
the centre's distance and the group's mean confidence. Only the candidates are clustered,
never the whole traffic: a team reads a handful of gaps instead of every topic in
production.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Interval, Probability, check_param
from failwise._validation import check_consistent_length, describe
from failwise.exceptions import InputError
from failwise.monitor._unseen import UnseenInputDetector, UnseenInputTest

__all__ = ["Gap", "find_gaps"]

#: Groups merge while their members' average relative distance stays below it (see the
#: module notes). Chosen on held-out draws 10-19 of BANKING77 and CLINC150 (19 unseen
#: intents, batches of 2,500 with 10 % or 20 % from them, CLINC150 with 5 % out-of-scope
#: queries too), never on the draws ``bench_blind_spots.py`` reports, with the reference
#: alone and with the training inputs in the index, as the ratio that surfaced the most
#: intents at 10 % with at least 85 % of gaps real in all four settings: 1.08 (BANKING77
#: 11.6 and 12.7 of 19 with 85 % and 88 % real, reference alone and with the training
#: inputs; CLINC150 13.8 and 13.9 with 93 %, and 0.8 and 1.0 gaps of out-of-scope
#: queries). At 1.1 BANKING77's gaps were 81-82 % real, at 1.05 CLINC150 found 0.3-0.4
#: out-of-scope gaps. The previous rule (1.03 times the square root of an evaluated
#: category's size over the reference's edge) gave 11.8 and 11.6 BANKING77 intents with 83 %
#: and 88 % real, and 11.9 and 12.1 CLINC150 intents with 0.3 and 0.6 out-of-scope gaps.
MERGE_RATIO: Final = 1.08

#: Inputs scored beyond the reference's ``1 - CANDIDATE_RATE`` quantile are clustered (at
#: least every input beyond the detector's own cut). On the same draws at 10 % unseen,
#: 0.1 (the detector's cut) surfaced 11.1 of 19 BANKING77 intents with 86 % of gaps real,
#: 0.15 11.9 with 81 %, 0.2 12.2 with 78 % but 30 % more gaps to read.
CANDIDATE_RATE: Final = 0.15

#: Candidates clustered at once by default (``find_gaps(max_clustered=...)``). Beyond it, a
#: random sample of this many is clustered, every other candidate joins the cluster it
#: would have merged into (the one with the smallest linkage distance, when within
#: ``merge_ratio``), and the candidates that join none are clustered the same way: the
#: cost grows linearly with the traffic instead of quadratically.
MAX_CLUSTERED: Final = 4000


@dataclass(frozen=True)
class Gap:
    """One cluster of served inputs unlike anything in the reference.

    Attributes
    ----------
    rank : int
        1 for the gap expected to cause the most silent failures.
    size : int
        Inputs in the cluster.
    share : float
        ``size`` over all inputs searched.
    rows : tuple of int
        Positions of its inputs in the searched batch.
    examples : tuple
        Up to ``n_examples`` representative inputs (those nearest the cluster's centre),
        taken from ``examples`` when given, else their row numbers.
    first_seen, last_seen : float or None
        Earliest and latest ``timestamps`` of its inputs.
    mean_confidence : float or None
        Mean calibrated confidence the model gave these inputs.
    action_mix : mapping of str to float
        Share of each ladder action among them.
    n_answered : int
        Inputs answered automatically.
    n_audited : int
        Audited inputs with a known outcome.
    audit_error_rate : float or None
        Share of audited inputs that were answered wrongly.
    correction_rate, escalation_rate : float or None
        Share of its inputs that users corrected, and that went to a human.
    expected_silent_failures : float
        ``n_answered`` times the estimated error rate among its answers: the audit's
        (errors + 1) / (audited + 2) (Laplace's rule; 0.5 with no audit at all, because
        calibrated confidence is least trustworthy exactly here).
    """

    rank: int
    size: int
    share: float
    rows: tuple[int, ...]
    examples: tuple[Any, ...]
    first_seen: float | None
    last_seen: float | None
    mean_confidence: float | None
    action_mix: Mapping[str, float]
    n_answered: int
    n_audited: int
    audit_error_rate: float | None
    correction_rate: float | None
    escalation_rate: float | None
    expected_silent_failures: float
    centroid: NDArray[np.float64] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary (without the centroid)."""
        return {
            "rank": self.rank,
            "size": self.size,
            "share": self.share,
            "rows": list(self.rows),
            "examples": [str(e) for e in self.examples],
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "mean_confidence": self.mean_confidence,
            "action_mix": dict(self.action_mix),
            "n_answered": self.n_answered,
            "n_audited": self.n_audited,
            "audit_error_rate": self.audit_error_rate,
            "correction_rate": self.correction_rate,
            "escalation_rate": self.escalation_rate,
            "expected_silent_failures": self.expected_silent_failures,
        }


def _optional(values: ArrayLike | None, name: str, n: int, kind: str) -> NDArray[Any] | None:
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != n:
        raise InputError(f"`{name}` must hold one value per input ({n}); got {describe(values)}.")
    if kind == "float":
        if not np.issubdtype(array.dtype, np.number):
            raise InputError(f"`{name}` must be numeric; got dtype {array.dtype}.")
        return array.astype(np.float64)
    if kind == "bool":
        if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
            raise InputError(f"`{name}` must hold booleans (or 0/1); got {describe(values)}.")
        return array.astype(bool)
    return array.astype(str)


def _centres_are_far(
    detector: UnseenInputDetector,
    centres: NDArray[np.float64],
    confidence: NDArray[np.float64] | None,
) -> NDArray[np.bool_]:
    """Whether each cluster's centre lies beyond the reference (see the module notes), in
    one neighbour search; ``confidence`` is each cluster's mean confidence."""
    if confidence is None or not getattr(detector, "uses_confidence_", False):
        return detector._is_far(centres)
    distance = detector._distance_to_reference(centres)
    return np.asarray(detector._combine(distance, 1.0 - confidence) > detector.threshold_)


def _relative_distances(
    points: NDArray[np.float64],
    to_reference: NDArray[np.float64],
    others: NDArray[np.float64],
    others_to_reference: NDArray[np.float64],
) -> NDArray[np.float32]:
    """Pairwise distances over the geometric mean of both inputs' distances to the reference.

    In float32 (twice as fast, and its rounding is far below any merge decision).
    """
    out = points.astype(np.float32) @ others.astype(np.float32).T
    out *= -2.0
    out += np.einsum("ij,ij->i", points, points).astype(np.float32)[:, None]
    out += np.einsum("ij,ij->i", others, others).astype(np.float32)[None, :]
    np.maximum(out, 0.0, out=out)
    np.sqrt(out, out=out)
    out /= np.sqrt(to_reference).astype(np.float32)[:, None]
    out /= np.sqrt(others_to_reference).astype(np.float32)[None, :]
    return out


def _linkage_distance(
    points: NDArray[np.float64],
    to_reference: NDArray[np.float64],
    members: NDArray[np.float64],
    members_to_reference: NDArray[np.float64],
    labels: NDArray[np.intp],
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Each point's nearest cluster of ``members`` (labelled 0..K-1) and its average linkage."""
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    sizes = np.diff(np.r_[starts, order.size])
    sorted_members, sorted_reference = members[order], members_to_reference[order]
    best = np.empty(points.shape[0], dtype=np.intp)
    distance = np.empty(points.shape[0])
    step = max(1, (1 << 22) // max(order.size, 1))
    for start in range(0, points.shape[0], step):
        block = slice(start, start + step)
        relative = _relative_distances(
            points[block], to_reference[block], sorted_members, sorted_reference
        )
        linked = np.add.reduceat(relative, starts, axis=1) / sizes
        best[block] = np.argmin(linked, axis=1)
        distance[block] = linked[np.arange(linked.shape[0]), best[block]]
    return labels[order][starts][best], distance


def _cluster(
    points: NDArray[np.float64],
    to_reference: NDArray[np.float64],
    ratio: float,
    limit: int,
    rng: np.random.Generator,
) -> NDArray[np.intp]:
    """Average-linkage clusters of relative distance ``ratio``; a sample beyond ``limit``."""
    from sklearn.cluster import AgglomerativeClustering

    n = points.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.intp)
    if n <= limit:
        relative = _relative_distances(points, to_reference, points, to_reference)
        np.fill_diagonal(relative, 0.0)
        labels: NDArray[np.intp] = AgglomerativeClustering(
            n_clusters=None, distance_threshold=ratio, linkage="average", metric="precomputed"
        ).fit_predict(relative)
        return labels
    sample = np.sort(rng.choice(n, size=limit, replace=False))
    labels = np.full(n, -1, dtype=np.intp)
    labels[sample] = _cluster(points[sample], to_reference[sample], ratio, limit, rng)
    rest = np.setdiff1d(np.arange(n), sample)
    nearest, distance = _linkage_distance(
        points[rest], to_reference[rest], points[sample], to_reference[sample], labels[sample]
    )
    joined = distance < ratio
    labels[rest[joined]] = nearest[joined]
    alone = rest[~joined]
    if alone.size:
        labels[alone] = (
            _cluster(points[alone], to_reference[alone], ratio, limit, rng) + labels.max() + 1
        )
    return labels


def _distance_scale(
    detector: UnseenInputDetector, points: NDArray[np.float64], distance: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Each point's distance to the reference at a reference-only index's density: to the
    ``m * n_neighbors``-th nearest index row, where the index holds ``m`` times as many rows
    as the detector would index with the reference alone (half of it with
    ``calibration="split"``, all of it otherwise; module notes); ``distance`` (the
    detector's own) when ``m`` is 1.
    """
    alone = int(detector.n_reference_)
    if getattr(detector, "calibration", "split") == "split":
        alone //= 2
    per_row = max(1, round(int(detector.n_index_) / max(1, alone)))
    if per_row == 1:
        return distance
    k = min(per_row * int(detector.n_neighbors), int(detector.n_index_))
    return detector._index.kth_distance(points, k)


def _candidate_cut(detector: UnseenInputDetector, rate: float) -> float:
    """The reference's conformal ``1 - rate`` score quantile, or the detector's cut if lower."""
    calibration = np.sort(np.asarray(detector.reference_distances_, dtype=np.float64))
    rank = math.ceil((calibration.size + 1) * (1.0 - rate))
    cut = float(calibration[rank - 1]) if rank <= calibration.size else math.inf
    return min(cut, float(detector.threshold_))


def _share(mask: NDArray[np.bool_] | None, rows: NDArray[np.intp]) -> float | None:
    return None if mask is None else float(mask[rows].mean())


_POSITIVE: Final = Interval(Real, 0, None, closed="neither")
_RATE: Final = Probability(closed="neither")


def _scores(
    detector: UnseenInputDetector,
    features: ArrayLike,
    confidence: ArrayLike | None,
    unseen: UnseenInputTest | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each input's score and distance to the reference: from ``unseen``, or searched now."""
    if unseen is None:
        distance, score = detector._distance_and_score(features, confidence, "find_gaps")
        return score, distance
    if not isinstance(unseen, UnseenInputTest) or unseen.distance is None:
        raise InputError(
            f"`unseen` must be the UnseenInputTest of these features (detector.test(...)), "
            f"with its distances; got {describe(unseen)}."
        )
    n = int(np.shape(features)[0]) if np.ndim(features) == 2 else -1
    if unseen.distance.shape[0] != n:
        raise InputError(
            f"`unseen` tested {unseen.distance.shape[0]} inputs but `features` has "
            f"{describe(features)}; pass the test of these same features, or leave `unseen` "
            "out."
        )
    distance = np.asarray(unseen.distance, dtype=np.float64)
    doubt = None if confidence is None else detector._doubt(confidence, n, "confidence")
    return detector._combine(distance, doubt), distance


def find_gaps(
    detector: UnseenInputDetector,
    features: ArrayLike,
    *,
    confidence: ArrayLike | None = None,
    action: ArrayLike | None = None,
    audit_correct: ArrayLike | None = None,
    corrected: ArrayLike | None = None,
    timestamps: ArrayLike | None = None,
    examples: Sequence[Any] | None = None,
    min_size: int = 5,
    merge_ratio: float = MERGE_RATIO,
    candidate_rate: float = CANDIDATE_RATE,
    n_examples: int = 5,
    max_clustered: int = MAX_CLUSTERED,
    unseen: UnseenInputTest | None = None,
) -> list[Gap]:
    """Clusters of served inputs beyond the reference, ranked by expected silent failures.

    Parameters
    ----------
    detector : UnseenInputDetector
        Fitted on the reference features.
    features : array-like of shape (n, n_features)
        Features of the served inputs (the same feature function as the reference).
    confidence : array-like of shape (n,), optional
        Calibrated confidence of each decision.
    action : array-like of shape (n,), optional
        Ladder action of each decision ("answer", "clarify", ...).
    audit_correct : array-like of shape (n,), optional
        1 / 0 where an audit (or a human resolution) said the decision's label was right /
        wrong, NaN where nobody looked.
    corrected : array-like of bool, shape (n,), optional
        Whether the user corrected the output.
    timestamps : array-like of shape (n,), optional
        Unix seconds of each decision.
    examples : sequence of length n, optional
        What to show for each input (its text from the decision's context).
    min_size : int, default=5
        Smallest cluster reported.
    merge_ratio : float, default=1.08
        Groups merge while the average relative distance between their members (distance
        over the geometric mean of both members' distances to the reference, measured at a
        reference-only index's density) stays below it (see the module notes and
        :data:`MERGE_RATIO`).
    candidate_rate : float, default=0.15
        Inputs scored beyond the reference's ``1 - candidate_rate`` quantile are clustered,
        and at least every input beyond the detector's cut (see :data:`CANDIDATE_RATE`).
    n_examples : int, default=5
        Representative inputs per gap.
    max_clustered : int, default=4000
        Candidates clustered at once. With more, a random sample of this many is
        clustered and the others join the cluster they would have merged into, or are
        clustered again among themselves (see :data:`MAX_CLUSTERED`): the cost then grows
        linearly with the traffic searched.
    unseen : UnseenInputTest, optional
        The detector's test of these same ``features`` (and ``confidence``): its scores
        and distances to the reference are used instead of searching the reference again.

    Returns
    -------
    list of Gap
        Ranked; empty when no input is beyond the reference or no cluster reaches
        ``min_size``.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import UnseenInputDetector, find_gaps
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(scale=4.0, size=(6, 10))
    >>> def draw(c, n):
    ...     return centres[c] + rng.normal(scale=0.5, size=(n, 10))
    >>> detector = UnseenInputDetector(metric="euclidean").fit(
    ...     np.concatenate([draw(c, 200) for c in range(4)]), np.repeat(np.arange(4), 200))
    >>> served = np.concatenate([draw(0, 300), draw(4, 20), draw(5, 12)])
    >>> gaps = find_gaps(detector, served, action=["answer"] * 332)
    >>> [(gap.size, gap.rank) for gap in gaps]
    [(20, 1), (12, 2)]

    With the window's unseen-input test at hand, pass it to reuse its neighbour search:

    >>> test = detector.test(served)
    >>> [gap.size for gap in find_gaps(detector, served, unseen=test)]
    [20, 12]
    """
    detector._check_fitted("threshold_", "find_gaps")
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 2:
        raise InputError(f"`min_size` must be an int >= 2; got {describe(min_size)}.")
    if (
        isinstance(n_examples, bool)
        or not isinstance(n_examples, int | np.integer)
        or n_examples < 0
    ):
        raise InputError(f"`n_examples` must be an int >= 0; got {describe(n_examples)}.")
    if (
        isinstance(max_clustered, bool)
        or not isinstance(max_clustered, int | np.integer)
        or max_clustered < 2
    ):
        raise InputError(f"`max_clustered` must be an int >= 2; got {describe(max_clustered)}.")
    ratio = float(check_param("merge_ratio", merge_ratio, [_POSITIVE], where="find_gaps"))
    rate = float(check_param("candidate_rate", candidate_rate, [_RATE], where="find_gaps"))
    uses_confidence = bool(getattr(detector, "uses_confidence_", False))
    if uses_confidence and confidence is None:
        raise InputError(
            "The detector was fitted with the reference's confidences, so find_gaps needs "
            "the served inputs' `confidence` too."
        )
    scores, to_reference = _scores(
        detector, features, confidence if uses_confidence else None, unseen
    )
    n = int(scores.size)
    conf = _optional(confidence, "confidence", n, "float")
    actions = _optional(action, "action", n, "str")
    audit = _optional(audit_correct, "audit_correct", n, "float")
    corrections = _optional(corrected, "corrected", n, "bool")
    times = _optional(timestamps, "timestamps", n, "float")
    if examples is not None:
        check_consistent_length(features=scores, examples=examples)
    far = np.flatnonzero(scores > _candidate_cut(detector, rate))
    if far.size < min_size:
        return []
    points = detector._prepare(np.asarray(features)[far], "features")
    # An input lying on a reference input has no scale of its own: it merges with nothing.
    scale = np.maximum(
        _distance_scale(detector, points, to_reference[far]), np.finfo(np.float64).tiny
    )
    labels = _cluster(points, scale, ratio, int(max_clustered), np.random.default_rng(0))
    gaps: list[Gap] = []
    sizes = np.bincount(labels)
    by_cluster, ends = np.argsort(labels, kind="stable"), np.cumsum(sizes)
    clusters = [by_cluster[ends[c] - sizes[c] : ends[c]] for c in np.flatnonzero(sizes >= min_size)]
    if not clusters:
        return []
    centres = np.stack([points[members].mean(axis=0) for members in clusters])
    probes = centres
    if detector.metric == "cosine":  # the mean of unit vectors is shorter than one
        norms = np.linalg.norm(centres, axis=1, keepdims=True)
        probes = centres / np.maximum(norms, np.finfo(float).tiny)
    mean_conf = None if conf is None else np.array([conf[far[m]].mean() for m in clusters])
    # A cluster whose centre lies inside the reference is the fringe of an evaluated
    # category: its members are far one by one, but their centre is not.
    beyond = _centres_are_far(detector, probes, mean_conf)
    for members, centre, keep in zip(clusters, centres, beyond, strict=True):
        if not keep:
            continue
        rows = far[members]
        nearest = members[np.argsort(np.linalg.norm(points[members] - centre, axis=1))]
        shown = far[nearest[:n_examples]]
        answered = np.ones(rows.size, dtype=bool) if actions is None else actions[rows] == "answer"
        mix: dict[str, float] = {}
        if actions is not None:
            kinds, counts = np.unique(actions[rows], return_counts=True)
            mix = {str(k): int(c) / rows.size for k, c in zip(kinds, counts, strict=True)}
        audited = np.zeros(rows.size, dtype=bool) if audit is None else ~np.isnan(audit[rows])
        errors = 0 if audit is None else int(np.sum(audit[rows][audited] == 0))
        n_audited = int(audited.sum())
        error_rate = (errors + 1) / (n_audited + 2)
        gaps.append(
            Gap(
                rank=0,
                size=int(rows.size),
                share=rows.size / n,
                rows=tuple(int(r) for r in rows),
                examples=tuple(examples[int(r)] for r in shown)
                if examples is not None
                else tuple(int(r) for r in shown),
                first_seen=None if times is None else float(times[rows].min()),
                last_seen=None if times is None else float(times[rows].max()),
                mean_confidence=None if conf is None else float(conf[rows].mean()),
                action_mix=mix,
                n_answered=int(answered.sum()),
                n_audited=n_audited,
                audit_error_rate=errors / n_audited if n_audited else None,
                correction_rate=_share(corrections, rows),
                escalation_rate=None
                if actions is None
                else float(np.mean(actions[rows] == "escalate")),
                expected_silent_failures=float(answered.sum()) * error_rate,
                centroid=centre,
            )
        )
    gaps.sort(key=lambda g: (-g.expected_silent_failures, -g.size))
    return [
        Gap(**{**{f: getattr(g, f) for f in g.__dataclass_fields__}, "rank": i + 1})
        for i, g in enumerate(gaps)
    ]
