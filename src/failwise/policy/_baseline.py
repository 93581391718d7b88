"""A ladder with one rung: answer everything. The baseline failure handling is compared with."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from failwise._validation import check_probabilities
from failwise.policy._decision import REASON_CODES, Action, Decisions, Reason

__all__ = ["always_answer"]


def always_answer(proba: ArrayLike) -> Decisions:
    """Decisions of a system without failure handling: the top label, always.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)

    Returns
    -------
    Decisions
        Every row answered with its most probable label.

    Examples
    --------
    >>> always_answer([[0.2, 0.8], [0.6, 0.4]]).label.tolist()
    [1, 0]
    """
    P = check_probabilities(proba, "proba")
    predicted = P.argmax(axis=1).astype(np.intp)
    confidence = P[np.arange(P.shape[0]), predicted].astype(np.float64)
    n = P.shape[0]
    return Decisions(
        action_codes=np.full(n, Action.ANSWER.code, dtype=np.int8),
        label=predicted,
        predicted=predicted,
        confidence=confidence,
        band_codes=np.full(n, 2, dtype=np.int8),
        reason_codes=np.full(n, REASON_CODES[Reason.CONFIDENT], dtype=np.int8),
        set_rows=np.empty(0, dtype=np.intp),
        set_masks=np.empty((0, P.shape[1]), dtype=bool),
        context={"answer_threshold": 0.0, "answer_basis": "no failure handling: always answer"},
    )
