"""Quarantining a blind spot, and releasing it once reviewers have labelled a sample.

A ``blind_spot`` finding carries its cluster's centre and radius. :func:`quarantine`
stores them as an active zone; every :class:`~failwise.runtime.Guard` built with
``quarantine=True`` on that store then escalates the inputs inside it (the
:class:`~failwise.policy.Quarantine` rung), so reviewers — not the model — answer them and
their answers become labels. :func:`release_reviewed` releases a zone once reviewers have
resolved ``min_labelled`` of its escalations, recording how often the model would have been
right there; :func:`release` releases one explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from failwise._params import Count, check_param
from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["Release", "quarantine", "release", "release_reviewed"]


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
        Resolved escalations (with a label) a zone needs before it is released.

    Returns
    -------
    list of Release
        The quarantines released by this call.
    """
    needed = int(check_param("min_labelled", min_labelled, [Count(1)], where="release_reviewed"))
    out = []
    for zone in store.quarantines(active_only=True):
        reviews = store.quarantine_reviews(zone.id)
        if len(reviews) < needed:
            continue
        scored = [(p, label) for _, p, label in reviews if p is not None]
        accuracy = float(np.mean([p == label for p, label in scored])) if scored else None
        shown = "unknown" if accuracy is None else f"{accuracy:.0%}"
        note = (
            f"released after {len(reviews)} reviewed escalations; the model's top label was "
            f"right on {shown} of them"
        )
        if store.release_quarantine(zone.id, by="reviewers", note=note):
            out.append(Release(zone.id, zone.finding_id, len(reviews), accuracy))
    return out
