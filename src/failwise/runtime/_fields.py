"""Fields of a batch's decisions computed for the whole batch at once.

Fresh task ids (uuid4 hex) come from one draw of random bytes, the top labels from one
stable sort of the stacked probabilities (rounded to six decimals at once), and the
recorded scores from one conversion of the stacked score vectors; all equal what the
per-decision code gives (``uuid.uuid4().hex``, ``np.argsort(-proba, kind="stable")``,
``round(p, 6)``, ``scores.tolist()``), which small batches (one request's decision) still
use.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from failwise.runtime._attempt import Outcome

__all__ = ["fresh_ids", "score_lists", "top_labels"]

#: Fewer rows than this take the per-row code (NumPy's set-up costs more than it saves).
_BULK = 8


def fresh_ids(ids: Sequence[str | None]) -> list[str]:
    """``ids`` with every None replaced by a fresh uuid4 hex (RFC 4122 version 4)."""
    missing = sum(task_id is None for task_id in ids)
    if missing < _BULK:
        return [uuid.uuid4().hex if task_id is None else task_id for task_id in ids]
    raw = np.frombuffer(os.urandom(16 * missing), dtype=np.uint8).reshape(missing, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.tobytes().hex()
    fresh = iter(range(0, 32 * missing, 32))
    return [
        task_id if task_id is not None else text[(j := next(fresh)) : j + 32] for task_id in ids
    ]


def top_labels(outcomes: Sequence[Outcome], k: int) -> list[list[list[Any]] | None]:
    """Each outcome's ``k`` most probable labels as ``[label, probability]`` pairs
    (probabilities rounded to six decimals); None where it has no probabilities."""
    out: list[list[list[Any]] | None] = [None] * len(outcomes)
    rows = [i for i, outcome in enumerate(outcomes) if outcome.proba is not None]
    if len(rows) < _BULK:
        for i in rows:
            proba: Any = outcomes[i].proba
            top = np.argsort(-proba, kind="stable")[:k]
            out[i] = [[int(j), round(float(proba[j]), 6)] for j in top]
        return out
    proba = np.stack([outcomes[i].proba for i in rows])  # type: ignore[misc]
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    values = _round6(np.take_along_axis(proba, order, axis=1))
    for i, labels, probs in zip(rows, order.tolist(), values.tolist(), strict=True):
        out[i] = [[label, p] for label, p in zip(labels, probs, strict=True)]
    return out


def _round6(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``round(value, 6)`` of every value, as Python rounds (to the nearest double of the
    correctly rounded decimal).

    ``rint(value * 1e6) / 1e6`` gives the same double unless the product's rounding error
    moved it across a half (its fractional part within 1e-9 of 0.5): those few values are
    rounded by Python.
    """
    scaled = values * 1e6
    out: np.ndarray[Any, Any] = np.rint(scaled) / 1e6
    near = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9
    if near.any():
        for index in zip(*np.nonzero(near), strict=True):
            out[index] = round(float(values[index]), 6)
    return out


def score_lists(outcomes: Sequence[Outcome]) -> list[list[float] | None]:
    """Each outcome's model scores as a list of floats; None where it has none."""
    out: list[list[float] | None] = [None] * len(outcomes)
    found = [(i, scores) for i, o in enumerate(outcomes) if (scores := o.scores) is not None]
    if len(found) < _BULK or len({scores.shape for _, scores in found}) > 1:
        for i, scores in found:
            out[i] = scores.tolist()
        return out
    stacked = np.stack([scores for _, scores in found])
    for (i, _), row in zip(found, stacked.tolist(), strict=True):
        out[i] = row
    return out
