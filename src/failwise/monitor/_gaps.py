"""Blind spots: clusters of served inputs that lie beyond everything evaluated.

:func:`find_gaps` takes the inputs an :class:`~failwise.monitor.UnseenInputDetector` flags
as farther from the reference than the reference is from itself, groups them by clustering,
and describes every group of at least ``min_size`` inputs: its share of traffic, when it was
seen, representative inputs, its mean confidence and action mix, what audits, corrections
and escalations say about it, and the silent failures it is expected to cause. Gaps are
ranked by that expectation, so the first one is where users are most likely being
answered wrongly without anybody noticing.

Groups merge while their average distance stays within the size of an evaluated category
(the mean distance between two reference inputs of one category), so a gap is about as
broad as one intent of the reference; a group whose centre lies inside the reference is
the fringe of an evaluated category, not a gap, and is dropped. With a detector fitted
with confidences, "inside" is judged by the detector's combined score of the centre's
distance and the group's mean confidence: a tight group of confidently answered inputs
beside a known category is its fringe, a group the model is unsure about is a gap. Only
the flagged inputs are clustered, never the whole traffic: a team reads a handful of gaps
instead of every topic in production.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_consistent_length, describe
from failwise.exceptions import InputError
from failwise.monitor._unseen import UnseenInputDetector

__all__ = ["Gap", "find_gaps"]

#: Groups merge while their average distance stays below this many times the size of an
#: evaluated category. Below one because a served batch holds only a handful of inputs of
#: each unseen category, drawn from the middle of it more often than from its edges; on
#: BANKING77 (19 unseen intents, about 13 requests each in 2,500) 0.95 surfaced 11 to 12 of
#: them with three in four reported gaps real, 1.25 surfaced 3. Isotropic Gaussian categories
#: need a factor above one (an input's mean distance to the rest of its category *is* the
#: category's size); pass ``merge_distance`` for such data.
MERGE_FACTOR: Final = 0.95

#: Far inputs clustered at once by default (``find_gaps(max_clustered=...)``). Beyond it,
#: a random sample of this many is clustered, every other far input joins the cluster it
#: would have merged into (the one with the smallest linkage distance, when within the
#: merge distance), and the inputs that join none are clustered the same way: the cost
#: grows linearly with the traffic instead of quadratically.
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


def _centre_is_far(
    detector: UnseenInputDetector,
    centre: NDArray[np.float64],
    confidence: NDArray[np.float64] | None,
) -> bool:
    """Whether a cluster's centre lies beyond the reference (see the module notes)."""
    if confidence is None or not getattr(detector, "uses_confidence_", False):
        return bool(detector._is_far(centre[None, :])[0])
    distance = detector._distance_to_reference(centre[None, :])
    doubt = np.array([1.0 - float(confidence.mean())])
    return bool(detector._combine(distance, doubt)[0] > detector.threshold_)


def _linkage_distance(
    points: NDArray[np.float64], members: NDArray[np.float64], labels: NDArray[np.intp], how: str
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Each point's nearest cluster of ``members`` (labelled 0..K-1) and its linkage distance."""
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    sizes = np.diff(np.r_[starts, order.size])
    sq_members = np.einsum("ij,ij->i", members[order], members[order])
    best = np.empty(points.shape[0], dtype=np.intp)
    distance = np.empty(points.shape[0])
    step = max(1, (1 << 22) // max(order.size, 1))
    for start in range(0, points.shape[0], step):
        block = points[start : start + step]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + sq_members[None, :]
        pairwise = np.sqrt(np.maximum(sq - 2.0 * block @ members[order].T, 0.0))
        if how == "single":
            linked = np.minimum.reduceat(pairwise, starts, axis=1)
        else:
            linked = np.add.reduceat(pairwise, starts, axis=1) / sizes
        best[start : start + step] = np.argmin(linked, axis=1)
        distance[start : start + step] = linked[
            np.arange(block.shape[0]), best[start : start + step]
        ]
    return labels[order][starts][best], distance


def _cluster(
    points: NDArray[np.float64],
    radius: float,
    how: str,
    limit: int,
    rng: np.random.Generator,
) -> NDArray[np.intp]:
    """Agglomerative clusters at ``radius``; a sample plus assignment beyond ``limit``."""
    from sklearn.cluster import AgglomerativeClustering

    n = points.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.intp)
    if n <= limit:
        labels: NDArray[np.intp] = AgglomerativeClustering(
            n_clusters=None, distance_threshold=radius, linkage=how
        ).fit_predict(points)
        return labels
    sample = np.sort(rng.choice(n, size=limit, replace=False))
    labels = np.full(n, -1, dtype=np.intp)
    labels[sample] = _cluster(points[sample], radius, how, limit, rng)
    rest = np.setdiff1d(np.arange(n), sample)
    nearest, distance = _linkage_distance(points[rest], points[sample], labels[sample], how)
    joined = distance < radius
    labels[rest[joined]] = nearest[joined]
    alone = rest[~joined]
    if alone.size:
        labels[alone] = _cluster(points[alone], radius, how, limit, rng) + labels.max() + 1
    return labels


def _share(mask: NDArray[np.bool_] | None, rows: NDArray[np.intp]) -> float | None:
    return None if mask is None else float(mask[rows].mean())


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
    merge_distance: float | None = None,
    n_examples: int = 5,
    max_clustered: int = MAX_CLUSTERED,
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
    merge_distance : float, optional
        Average-linkage distance at which two groups merge. By default the size of an
        evaluated category (``detector.category_spread_``, when the detector was fitted
        with reference labels); without labels, single linkage at the detector's cut (the
        reference's own neighbourhood radius).
    n_examples : int, default=5
        Representative inputs per gap.
    max_clustered : int, default=4000
        Far inputs clustered at once. With more, a random sample of this many is
        clustered and the others join the cluster they would have merged into, or are
        clustered again among themselves (see :data:`MAX_CLUSTERED`): the cost then grows
        linearly with the traffic searched.

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
    >>> radius = 1.25 * detector.category_spread_   # isotropic categories (see MERGE_FACTOR)
    >>> gaps = find_gaps(detector, served, action=["answer"] * 332, merge_distance=radius)
    >>> [(gap.size, gap.rank) for gap in gaps]
    [(19, 1), (12, 2)]
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
    uses_confidence = bool(getattr(detector, "uses_confidence_", False))
    if uses_confidence and confidence is None:
        raise InputError(
            "The detector was fitted with the reference's confidences, so find_gaps needs "
            "the served inputs' `confidence` too."
        )
    scores = detector.score(features, confidence=confidence if uses_confidence else None)
    n = int(scores.size)
    conf = _optional(confidence, "confidence", n, "float")
    actions = _optional(action, "action", n, "str")
    audit = _optional(audit_correct, "audit_correct", n, "float")
    corrections = _optional(corrected, "corrected", n, "bool")
    times = _optional(timestamps, "timestamps", n, "float")
    if examples is not None:
        check_consistent_length(features=scores, examples=examples)
    spread = detector.category_spread_
    linkage = "average" if merge_distance is not None or spread is not None else "single"
    if merge_distance is not None:
        radius = float(merge_distance)
    else:
        radius = MERGE_FACTOR * spread if spread is not None else detector.threshold_
    if not (math.isfinite(radius) and radius > 0):
        raise InputError(
            f"`merge_distance` must be a finite number > 0; got {radius!r} (the detector's cut "
            "is infinite when its reference is too small: pass merge_distance=...)."
        )
    far = np.flatnonzero(scores > detector.threshold_)
    if far.size < min_size:
        return []
    points = detector._prepare(np.asarray(features)[far], "features")
    labels = _cluster(points, radius, linkage, int(max_clustered), np.random.default_rng(0))
    gaps: list[Gap] = []
    sizes = np.bincount(labels)
    by_cluster, ends = np.argsort(labels, kind="stable"), np.cumsum(sizes)
    for cluster in np.flatnonzero(sizes >= min_size):
        members = by_cluster[ends[cluster] - sizes[cluster] : ends[cluster]]
        rows = far[members]
        centre = points[members].mean(axis=0)
        probe = centre
        if detector.metric == "cosine":  # the mean of unit vectors is shorter than one
            probe = centre / max(float(np.linalg.norm(centre)), np.finfo(float).tiny)
        if not _centre_is_far(detector, probe, None if conf is None else conf[rows]):
            # The fringe of an evaluated category: its members are far one by one, but
            # their centre lies inside the reference.
            continue
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
