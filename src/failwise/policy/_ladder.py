"""The decision ladder: the state rungs work on, and the two ways to run them.

A rung (see :mod:`failwise.policy._rungs`) claims the undecided inputs it handles. The
ladder runs the same rung objects two ways, with the same result:

- :func:`run_ladder` over a :class:`LadderState`, a batch held as NumPy columns (what
  :meth:`failwise.Policy.decide` runs);
- :func:`run_row` over a :class:`RowState`, one input held as Python scalars (what
  :meth:`failwise.Policy.decide_one` and :class:`failwise.runtime.Guard` run, where a
  batch's fixed cost would dominate).

Ladder order: out-of-scope screen → answer → clarify → fallback → escalate / abstain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from failwise.policy._answer_score import row_answer_score
from failwise.policy._decision import (
    _ACTIONS,
    _BANDS,
    NO_LABEL,
    NO_OPINION,
    REASON_CODES,
    Action,
    Decision,
    Reason,
    reason_sentence,
)

if TYPE_CHECKING:
    from failwise.policy._rungs import Rung

__all__ = ["LadderState", "RowState", "run_ladder", "run_row"]

_ABSTAIN: Final = Action.ABSTAIN.code
_R_OOS: Final = REASON_CODES[Reason.OUT_OF_SCOPE]
_R_LOW: Final = REASON_CODES[Reason.LOW_CONFIDENCE]


@dataclass
class LadderState:
    """The batch being decided. Rungs read the inputs and write the outcome columns.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Calibrated probabilities.
    confidence : ndarray of shape (n_samples,)
        Probability of the top label.
    predicted : ndarray of shape (n_samples,)
        The top label.
    ood_score : ndarray of shape (n_samples,) or None
        Out-of-scope scores.
    fallback_labels : ndarray of shape (n_samples,) or None
        The fallback's label per row (:data:`NO_OPINION` where it has none).
    features : ndarray of shape (n_samples, n_features) or None
        Input features (what :class:`~failwise.policy.Quarantine` reads; NaN rows have none).
    """

    proba: NDArray[Any]
    confidence: NDArray[np.float64]
    predicted: NDArray[np.intp]
    ood_score: NDArray[np.float64] | None = None
    fallback_labels: NDArray[np.intp] | None = None
    features: NDArray[np.floating[Any]] | None = None
    undecided: NDArray[np.bool_] = field(init=False)
    handoff: NDArray[np.bool_] = field(init=False)
    action_codes: NDArray[np.int8] = field(init=False)
    label: NDArray[np.intp] = field(init=False)
    reason_codes: NDArray[np.int8] = field(init=False)
    set_rows: NDArray[np.intp] = field(init=False)
    set_masks: NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        n = self.confidence.shape[0]
        self.undecided = np.ones(n, dtype=bool)
        self.handoff = np.zeros(n, dtype=bool)
        self.action_codes = np.full(n, Action.ABSTAIN.code, dtype=np.int8)
        self.label = np.full(n, NO_LABEL, dtype=np.intp)
        self.reason_codes = np.full(n, REASON_CODES[Reason.LOW_CONFIDENCE], dtype=np.int8)
        self.set_rows = np.empty(0, dtype=np.intp)
        self.set_masks = np.empty((0, self.proba.shape[1]), dtype=bool)

    def assign(
        self,
        rows: NDArray[np.bool_] | NDArray[np.intp],
        action: Action,
        reason: Reason,
        label: NDArray[np.intp] | None = None,
    ) -> None:
        """Give ``rows`` an action and a reason; out-of-scope rows keep their reason."""
        self.action_codes[rows] = action.code
        if label is not None:
            self.label[rows] = label
        self.reason_codes[rows] = REASON_CODES[reason]
        if self.any_handoff:
            if rows.dtype == np.bool_:
                out_of_scope: NDArray[Any] = rows & self.handoff
            else:
                out_of_scope = rows[self.handoff[rows]]
            self.reason_codes[out_of_scope] = REASON_CODES[Reason.OUT_OF_SCOPE]
        self.undecided[rows] = False

    def add_sets(self, rows: NDArray[np.intp], masks: NDArray[np.bool_]) -> None:
        """Record the prediction sets offered to ``rows`` (the clarify rows)."""
        self.set_rows = np.concatenate([self.set_rows, rows])
        self.set_masks = np.concatenate([self.set_masks, masks])

    @property
    def any_handoff(self) -> bool:
        """Whether any row was flagged out of scope."""
        return bool(self.handoff.any())


class RowState:
    """One input being decided, as Python scalars: what :meth:`Rung.decide_row` works on.

    Parameters
    ----------
    proba : ndarray of shape (n_classes,)
        Calibrated probabilities of the input.
    ood_score : float or None
        Its out-of-scope score.
    fallback_label : int
        The fallback's label (:data:`NO_OPINION` where it has none or none is configured).
    features : ndarray of shape (n_features,) or None
        The input's features, when the guard has a feature function.

    Attributes
    ----------
    predicted : int
    confidence : float
    handoff : bool
        Flagged out of scope (never answered or clarified).
    action : int
        Ladder code of the action taken, -1 while undecided.
    label : int
        Label returned, or :data:`NO_LABEL`.
    reason : int
        Reason code.
    mask : ndarray of shape (n_classes,) or None
        Prediction set offered (clarify only).
    """

    __slots__ = (
        "action",
        "confidence",
        "fallback_label",
        "features",
        "handoff",
        "label",
        "mask",
        "ood_score",
        "predicted",
        "proba",
        "reason",
    )

    def __init__(
        self,
        proba: NDArray[np.float64],
        ood_score: float | None = None,
        fallback_label: int = NO_OPINION,
        features: NDArray[np.floating[Any]] | None = None,
    ) -> None:
        predicted = int(proba.argmax())
        self.proba = proba
        self.predicted = predicted
        self.confidence = float(proba[predicted])
        self.ood_score = ood_score
        self.fallback_label = fallback_label
        self.features = features
        self.handoff = False
        self.action = -1
        self.label = NO_LABEL
        self.reason = _R_LOW
        self.mask: NDArray[np.bool_] | None = None

    def assign(self, action: Action, reason: Reason, label: int = NO_LABEL) -> None:
        """Decide the row; an out-of-scope row keeps the out-of-scope reason."""
        self.action = action.code
        self.label = label
        self.reason = _R_OOS if self.handoff else REASON_CODES[reason]

    @property
    def decided(self) -> bool:
        """Whether a rung has claimed the row."""
        return self.action >= 0

    def to_state(self) -> LadderState:
        """This row as a one-row batch (for a rung without a scalar path)."""
        state = LadderState(
            self.proba[None, :],
            np.array([self.confidence]),
            np.array([self.predicted], dtype=np.intp),
            None if self.ood_score is None else np.array([self.ood_score]),
            np.array([self.fallback_label], dtype=np.intp),
            None if self.features is None else np.asarray(self.features)[None, :],
        )
        state.handoff[0] = self.handoff
        return state

    def update(self, state: LadderState) -> None:
        """Take over what a rung did to :meth:`to_state`'s one-row batch."""
        self.handoff = bool(state.handoff[0])
        if not state.undecided[0]:
            self.action = int(state.action_codes[0])
            self.label = int(state.label[0])
            self.reason = int(state.reason_codes[0])
            if state.set_rows.size:
                self.mask = state.set_masks[0]

    def fields(
        self, context: Mapping[str, Any], medium_band_floor: float, answer_threshold: float
    ) -> dict[str, Any]:
        """The decided row as :class:`~failwise.Decision` fields, in the policy's own words.

        ``context`` is :meth:`failwise.Policy.describe` (the thresholds the reason cites).
        """
        confidence = self.confidence
        score = row_answer_score(
            self.proba, confidence, str(context.get("answer_score", "confidence"))
        )
        band = int(confidence >= medium_band_floor) + int(score >= answer_threshold)
        mask = self.mask
        prediction_set = tuple([int(c) for c in np.flatnonzero(mask)]) if mask is not None else ()
        return {
            "action": _ACTIONS[self.action],
            "label": None if self.label == NO_LABEL else self.label,
            "confidence": confidence,
            "band": _BANDS[band],
            "prediction_set": prediction_set,
            "reason": reason_sentence(
                self.reason,
                self.action,
                confidence,
                self.ood_score,
                len(prediction_set),
                self.label,
                context,
            ),
            "predicted": self.predicted,
            "ood_score": self.ood_score,
        }

    def to_decision(
        self, context: Mapping[str, Any], medium_band_floor: float, answer_threshold: float
    ) -> Decision:
        """The decided row as a :class:`~failwise.Decision` (see :meth:`fields`)."""
        return Decision(**self.fields(context, medium_band_floor, answer_threshold))


def run_ladder(
    state: LadderState, rungs: Sequence[Rung | Callable[[LadderState], None]]
) -> LadderState:
    """Apply ``rungs`` in order to a batch; rows no rung claims abstain.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import AnswerRung, EscalateRung, LadderState, run_ladder
    >>> proba = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> state = LadderState(proba, proba.max(axis=1), proba.argmax(axis=1))
    >>> run_ladder(state, [AnswerRung(0.8), EscalateRung()]).action_codes.tolist()
    [0, 3]
    """
    for rung in rungs:
        rung(state)
        if not state.undecided.any():
            break
    if state.undecided.any():
        state.assign(state.undecided.copy(), Action.ABSTAIN, Reason.LOW_CONFIDENCE)
    return state


def run_row(row: RowState, rungs: Sequence[Rung | Callable[[LadderState], None]]) -> RowState:
    """Apply ``rungs`` in order to one row; :func:`run_ladder` on a one-row batch, faster.

    Each rung's :meth:`~failwise.policy.Rung.decide_row` runs; a plain callable rung
    (batch path only) runs on the row as a one-row batch.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import AnswerRung, EscalateRung, RowState, run_row
    >>> run_row(RowState(np.array([0.6, 0.4])), [AnswerRung(0.8), EscalateRung()]).action
    3
    """
    for rung in rungs:
        decide_row = getattr(rung, "decide_row", None)
        if decide_row is not None:
            decide_row(row)
        else:
            state = row.to_state()
            rung(state)
            row.update(state)
        if row.action >= 0:
            return row
    row.assign(Action.ABSTAIN, Reason.LOW_CONFIDENCE)
    return row
