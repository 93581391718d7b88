"""Quarantining a blind spot or an unseen-input alert, and releasing it after review.

A ``blind_spot`` finding carries its cluster's centre and radius. :func:`quarantine`
stores them as an active zone; every :class:`~failwise.runtime.Guard` built with
``quarantine=True`` on that store then escalates the inputs inside it (the
:class:`~failwise.policy.Quarantine` rung), so reviewers — not the model — answer them and
their answers become labels. :func:`release_reviewed` releases a finding's zones once
reviewers have resolved ``min_labelled`` of their escalations, recording how often the model
would have been right there; :func:`release` releases one explicitly.

A blind spot needs a cluster of five or more like inputs, which a small category sends only
after several windows. An ``unseen_inputs`` alert comes sooner: :func:`quarantine_unseen`
quarantines, around each *far* input of the alert's window (beyond the reference by
position, :attr:`UnseenInputTest.far <failwise.monitor.UnseenInputTest>`), the ball of
``reach`` times its distance ``d`` to the reference. With ``reach = 1/2`` an input inside
that ball is nearer to the far input than ``d / 2`` and so, by the triangle inequality,
farther than ``d / 2`` from every row of the detector's index (with ``n_neighbors=1``, the
monitor's setting): it is nearer to a request nobody evaluated than to anything evaluated.
In general an input inside is at least ``(1 - reach) d`` from every index row. Such zones
rarely hold ordinary inputs (those have an index row near them), and zones added by later
alerts accumulate the evidence of a small category window after window.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from failwise._params import Count, Interval, check_param
from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["Release", "quarantine", "quarantine_unseen", "release", "release_reviewed"]

#: Most far inputs an ``unseen_inputs`` finding keeps for :func:`quarantine_unseen`.
MAX_FAR_INPUTS = 500


@dataclass(frozen=True)
class Release:
    """A quarantine released after review: how many labels, and the model's accuracy on them."""

    quarantine_id: int
    finding_id: int
    n_labelled: int
    model_accuracy: float | None


def quarantine(store: Any, finding_id: int, *, note: str | None = None) -> int:
    """Quarantine the blind spot of finding ``finding_id``; return the quarantine id.

    Raises
    ------
    InputError
        When the finding does not exist or is not a blind spot (only those have a zone).
    """
    if not callable(getattr(store, "quarantine", None)):
        raise InputError(f"`store` must be a failwise store; got {describe(store)}.")
    finding = store.finding(finding_id)
    stats = finding.statistics
    if finding.kind != "blind_spot" or "centre" not in stats or "radius" not in stats:
        raise InputError(
            f"Finding {finding.id} is a {finding.kind!r} finding; only blind spots (kind "
            "'blind_spot', listed by `failwise gaps`) have a zone to quarantine."
        )
    for zone in store.quarantines(active_only=True):
        if zone.finding_id == finding.id:
            return int(zone.id)
    text = note if note is not None else f"blind spot of {stats.get('size', '?')} inputs"
    return int(
        store.quarantine(
            finding.id,
            centre=np.asarray(stats["centre"], dtype=np.float64),
            radius=float(stats["radius"]),
            metric=str(stats.get("metric", "cosine")),
            note=text,
        )
    )


def far_inputs(data: Any, unseen: Any) -> list[dict[str, Any]]:
    """The far inputs of an unseen-input test, for its finding: task id and distance.

    ``data`` is the window (:class:`WindowData`), ``unseen`` its test spread over the feature
    rows; the distance is the input's distance to the detector's index (for "cosine", the
    Euclidean distance between unit vectors).
    """
    if unseen.far is None or unseen.distance is None:
        return []
    rows = np.flatnonzero(unseen.far)
    rows = rows[np.argsort(-unseen.distance[rows], kind="stable")][:MAX_FAR_INPUTS]
    return [
        {"task_id": str(data.task_ids[int(data.feature_rows[r])]), "distance": float(d)}
        for r, d in zip(rows, unseen.distance[rows], strict=True)
        if d > 0
    ]


def quarantine_unseen(
    store: Any, finding_id: int, *, reach: float = 0.75, note: str | None = None
) -> list[int]:
    """Quarantine the far inputs of the ``unseen_inputs`` finding ``finding_id``.

    One zone per far input of the alert's window (see the module notes), all named after
    the finding; :func:`release_reviewed` releases them together. Quarantining the same
    finding again changes nothing.

    Parameters
    ----------
    store : Store
    finding_id : int
        An ``unseen_inputs`` finding (from :func:`~failwise.monitor.run_monitor`).
    reach : float, default=0.75
        Radius of each zone as a share of its far input's distance ``d`` to the reference.
        Up to 0.5 every input inside is nearer to the far input than to the reference (the
        module notes); a larger reach catches more of a small unseen category sooner, and
        more ordinary inputs on the reference's edge with it (on BANKING77, zones of the
        far inputs of the alerts at 10 % novelty held 6 % of the later unseen-intent
        requests and 2 % of the known-intent ones at 0.5; 26 % and 2 % at 0.75; 62 % and
        6 % at 1; 3 draws × 8 windows). At most 1: beyond, a zone reaches over the reference itself.
    note : str, optional
        Shown with each zone (default: the finding and its number of far inputs).

    Returns
    -------
    list of int
        The quarantine ids of the finding's zones (empty when its inputs' features are no
        longer stored).

    Raises
    ------
    InputError
        When the finding is not an unseen-input alert with far inputs recorded.
    """
    if not callable(getattr(store, "quarantine", None)):
        raise InputError(f"`store` must be a failwise store; got {describe(store)}.")
    share = float(
        check_param(
            "reach", reach, [Interval(Real, 0, 1, closed="right")], where="quarantine_unseen"
        )
    )
    finding = store.finding(finding_id)
    far = finding.statistics.get("far_inputs")
    if finding.kind != "unseen_inputs" or not isinstance(far, list):
        raise InputError(
            f"Finding {finding.id} is a {finding.kind!r} finding without far inputs; "
            "quarantine_unseen takes an 'unseen_inputs' alert of run_monitor (a blind spot "
            "is quarantined with quarantine())."
        )
    existing = [int(z.id) for z in store.quarantines() if z.finding_id == finding.id]
    if existing:
        return existing
    metric = str(finding.statistics.get("metric", "cosine"))
    radius = {str(i["task_id"]): _zone_radius(share * float(i["distance"]), metric) for i in far}
    stored = store.task_features(list(radius))
    text = note or f"near one of the {len(radius)} far inputs of unseen-input alert {finding.id}"
    return [
        int(
            store.quarantine(
                finding.id,
                centre=np.asarray(vector, dtype=np.float64),
                radius=radius[str(task_id)],
                metric=metric,
                note=text,
            )
        )
        for task_id, vector in zip(stored.task_ids, stored.features, strict=True)
    ]


def _zone_radius(distance: float, metric: str) -> float:
    """A radius in the Quarantine rung's units: ``1 - cos`` for "cosine", whose unit vectors
    at Euclidean distance ``c`` have ``1 - cos = c² / 2``."""
    return distance**2 / 2.0 if metric == "cosine" else distance


def release(store: Any, quarantine_id: int, *, by: str, note: str | None = None) -> bool:
    """Release quarantine ``quarantine_id``; False when it was released already."""
    if not callable(getattr(store, "release_quarantine", None)):
        raise InputError(f"`store` must be a failwise store; got {describe(store)}.")
    return bool(store.release_quarantine(quarantine_id, by=by, note=note))


def release_reviewed(store: Any, *, min_labelled: int = 20) -> list[Release]:
    """Release every active quarantine whose escalations reviewers have labelled enough.

    Parameters
    ----------
    store : Store
    min_labelled : int, default=20
        Resolved escalations (with a label) a finding's zones need, together, before they
        are released (a blind spot has one zone, an unseen-input alert one per far input).

    Returns
    -------
    list of Release
        The quarantines released by this call.
    """
    needed = int(check_param("min_labelled", min_labelled, [Count(1)], where="release_reviewed"))
    by_finding: dict[int, list[Any]] = {}
    for zone in store.quarantines(active_only=True):
        by_finding.setdefault(int(zone.finding_id), []).append(zone)
    out = []
    for finding_id, zones in by_finding.items():
        reviews = [r for zone in zones for r in store.quarantine_reviews(zone.id)]
        if len(reviews) < needed:
            continue
        scored = [(p, label) for _, p, label in reviews if p is not None]
        accuracy = float(np.mean([p == label for p, label in scored])) if scored else None
        shown = "unknown" if accuracy is None else f"{accuracy:.0%}"
        note = (
            f"released after {len(reviews)} reviewed escalations; the model's top label was "
            f"right on {shown} of them"
        )
        for zone in zones:
            if store.release_quarantine(zone.id, by="reviewers", note=note):
                out.append(Release(zone.id, finding_id, len(reviews), accuracy))
    return out
