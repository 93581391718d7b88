"""`labelled_reliability`: calibration of the served decisions, from the labels humans gave.

Every task a human labelled (see :meth:`failwise.store.Store.labelled_predictions`: a
reviewer's resolution, an audit, the user's correction or acceptance) says whether the
model's top label was right; binned by the calibrated confidence recorded with the decision, these
make a reliability diagram of production traffic. Labels are not a uniform sample of
traffic (escalations are the unsure ones, audits a random share of answers), so the
diagram describes the labelled tasks; the dashboard says so beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError

if TYPE_CHECKING:
    from failwise.report import ReliabilityBins

__all__ = ["labelled_reliability"]


def labelled_reliability(
    source: Any,
    since: float | None = None,
    until: float | None = None,
    *,
    n_bins: int = 10,
) -> ReliabilityBins | None:
    """A reliability diagram of the tasks decided in ``[since, until)`` that humans labelled.

    Parameters
    ----------
    source : Store
        An open store (:func:`failwise.store.open`).
    since, until : float, optional
        Unix seconds of the decision; unbounded by default.
    n_bins : int, default=10
        Equal-width confidence bins over [0, 1].

    Returns
    -------
    ReliabilityBins or None
        None when no labelled task has a recorded top label and confidence.

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> from failwise.outcomes import labelled_reliability
    >>> folder = tempfile.mkdtemp()
    >>> with store.open(f"sqlite:///{folder}/events.db") as events:
    ...     for i, label in enumerate([3, 3, 5]):
    ...         decision = {"action": "answer", "label": 3, "predicted": 3, "confidence": 0.95}
    ...         _ = events.record_decision(f"t{i}", decision, at=float(i))
    ...         _ = events.feedback(f"t{i}", "corrected", label=label, at=i + 0.5)
    ...     bins = labelled_reliability(events)
    >>> bins.count[-1], round(bins.accuracy[-1], 3)
    (3, 0.667)
    """
    from failwise import store as store_module
    from failwise.report import ReliabilityBins

    if not isinstance(source, store_module.Store):
        raise InputError(
            f"`source` must be an open Store (failwise.store.open(url)); got {describe(source)}."
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 1 <= n_bins <= 100:
        raise InputError(f"`n_bins` must be an int in [1, 100]; got {n_bins!r}. 10 is usual.")
    confidence: list[float] = []
    correct: list[bool] = []
    for task in source.labelled_predictions(since, until, batch_size=5_000):
        predicted, value = task.predicted, task.confidence
        if predicted is None or predicted < 0 or value is None or not 0.0 <= value <= 1.0:
            continue
        confidence.append(value)
        correct.append(task.label == predicted)
    if not confidence:
        return None
    return ReliabilityBins.from_predictions(
        np.asarray(confidence), np.asarray(correct, dtype=np.int8), n_bins=n_bins
    )
