"""The score the answer rung thresholds: the top label's probability or its top-two log-odds.

``"confidence"`` is the calibrated probability of the top label. ``"log_odds"`` is
log(p₁ / p₂), the calibrated log-odds of the top label against the runner-up. Temperature
scaling divides every logit difference by the same temperature, so it divides the top-two
log-odds of every row by the same number: the order of rows by this score, and hence the
set of rows any threshold on it answers, is the order of the raw top-two logit margin,
whatever temperature was fitted. A risk certificate computed on this score therefore
tests thresholds on a score that does not depend on the calibrator, and the calibrator may
be fitted on the same labelled rows (see :func:`failwise.evaluation.evaluate_scores`).
The probability of the top label has no such property: temperature scaling reorders rows
by it (a row with a wide margin over a crowd of close labels against one with a single
close runner-up).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["ANSWER_SCORES", "answer_scores", "row_answer_score", "top_two_log_odds"]

#: The scores a policy may answer by.
ANSWER_SCORES: Final = ("confidence", "log_odds")


def top_two_log_odds(proba: NDArray[Any]) -> NDArray[np.float64]:
    """log(p₁ / p₂) per row: the top label's log-odds against the runner-up.

    A runner-up probability of 0 (underflow, or a single class) counts as the smallest
    positive double, so the score stays finite (about 708 for p₁ = 1): rows whose softmax
    saturates are tied at the top.

    Examples
    --------
    >>> import numpy as np
    >>> top_two_log_odds(np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])).round(3).tolist()
    [1.253, 0.0]
    """
    P = np.asarray(proba, dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    if P.shape[1] < 2:
        return np.asarray(np.log(P[:, 0]) - np.log(tiny), dtype=np.float64)
    top = np.partition(P, P.shape[1] - 2, axis=1)[:, -2:]
    return np.asarray(np.log(top[:, 1]) - np.log(np.maximum(top[:, 0], tiny)), dtype=np.float64)


def answer_scores(
    proba: NDArray[Any], confidence: NDArray[np.float64], kind: str
) -> NDArray[np.float64]:
    """The answer score of each row: ``confidence`` itself or the top-two log-odds."""
    return confidence if kind == "confidence" else top_two_log_odds(proba)


def row_answer_score(proba: NDArray[np.float64], confidence: float, kind: str) -> float:
    """The answer score of one row (see :func:`answer_scores`)."""
    if kind == "confidence":
        return confidence
    return float(top_two_log_odds(proba[None, :])[0])
