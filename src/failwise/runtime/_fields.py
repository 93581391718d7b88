"""Fields of a batch's decisions computed for the whole batch at once.

Fresh task ids (uuid4 hex) come from one draw of random bytes, and the top labels from
one stable sort of the stacked probabilities; both equal what the per-decision code
gives (``uuid.uuid4().hex``, ``np.argsort(-proba, kind="stable")``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from failwise.runtime._attempt import Outcome

__all__ = ["fresh_ids", "top_labels"]


def fresh_ids(ids: Sequence[str | None]) -> list[str]:
    """``ids`` with every None replaced by a fresh uuid4 hex (RFC 4122 version 4)."""
    missing = sum(task_id is None for task_id in ids)
    if not missing:
        return list(ids)  # type: ignore[arg-type]
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
    if not rows:
        return out
    proba = np.stack([outcomes[i].proba for i in rows])  # type: ignore[misc]
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(proba, order, axis=1)
    for i, labels, probs in zip(rows, order.tolist(), values.tolist(), strict=True):
        out[i] = [[label, round(p, 6)] for label, p in zip(labels, probs, strict=True)]
    return out
