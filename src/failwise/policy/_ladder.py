"""The rungs of the decision ladder: small configured callables applied in order.

Each rung looks at the rows that no earlier rung has decided and claims the ones it
handles, vectorised over the batch. :class:`failwise.Policy` fits the rungs on labelled
validation data; they can also be built by hand and tested alone.

Ladder order: out-of-scope screen → answer → clarify → fallback → escalate / abstain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from failwise.policy._decision import NO_LABEL, REASON_CODES, Action, Reason

__all__ = [
    "AnswerRung",
    "ClarifyRung",
    "EscalateRung",
    "FallbackRung",
    "LadderState",
    "OutOfScopeRung",
    "Rung",
    "run_ladder",
]

_NO_OPINION = -2  # fallback had nothing to say (same value as failwise.policy.NO_OPINION)


class PredictionSets(Protocol):
    """What the clarify rung needs from a set predictor."""

    def predict_set(self, proba: NDArray[Any]) -> NDArray[np.bool_]: ...


@dataclass
class LadderState:
    """The batch being decided. Rungs read the inputs and write the outcome columns."""

    proba: NDArray[Any]
    confidence: NDArray[np.float64]
    predicted: NDArray[np.intp]
    ood_score: NDArray[np.float64] | None = None
    fallback_labels: NDArray[np.intp] | None = None
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

    @property
    def any_handoff(self) -> bool:
        """Whether any row was flagged out of scope (cached once the screen has run)."""
        return bool(self.handoff.any())


class Rung(Protocol):
    """A step of the ladder: claims some undecided rows of ``state``."""

    def __call__(self, state: LadderState) -> None: ...


@dataclass(frozen=True)
class OutOfScopeRung:
    """Flag rows whose out-of-scope score exceeds ``threshold``: never answered or clarified."""

    threshold: float

    def __call__(self, state: LadderState) -> None:
        if state.ood_score is None or not np.isfinite(self.threshold):
            return
        state.handoff |= state.ood_score > self.threshold


@dataclass(frozen=True)
class AnswerRung:
    """Answer with the model's top label when confidence reaches ``threshold``."""

    threshold: float

    def __call__(self, state: LadderState) -> None:
        rows = state.undecided & ~state.handoff & (state.confidence >= self.threshold)
        state.assign(rows, Action.ANSWER, Reason.CONFIDENT, label=state.predicted[rows])


@dataclass(frozen=True)
class ClarifyRung:
    """Ask the user to pick among the prediction set when it has 1..``max_set_size`` labels."""

    sets: PredictionSets
    max_set_size: int

    def _fast_aps(self) -> float | None:
        """The APS quantile when the sets are deterministic APS (the fast path applies)."""
        if getattr(self.sets, "method", None) != "aps" or getattr(self.sets, "randomized", True):
            return None
        quantile = getattr(self.sets, "quantile_", None)
        return None if quantile is None else float(quantile)

    def _small_aps_sets(
        self, proba: NDArray[Any], quantile: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
        """Deterministic APS sets of at most ``max_set_size`` labels from the top labels only.

        Returns ``(small, masks, exact)``: rows whose set has 1..M labels, their masks, and
        rows with tied top probabilities whose sets must be computed exactly instead. Only
        the M + 1 most likely labels of a row matter: its set has at most M labels exactly
        when the (M + 1)-th label is outside it, so no full sort is needed.
        """
        k = proba.shape[1]
        m = self.max_set_size
        top = np.argpartition(proba, k - m - 1, axis=1)[:, k - m - 1 :]
        values = np.take_along_axis(proba, top, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        values = np.take_along_axis(values, order, axis=1)
        labels = np.take_along_axis(top, order, axis=1)
        exact = (values[:, 1:] == values[:, :-1]).any(axis=1)
        above = np.cumsum(values, axis=1) - values
        inside = (above < quantile) | (above + values <= quantile)
        small = ~inside[:, m] & ~exact
        masks = np.zeros((int(small.sum()), k), dtype=bool)
        np.put_along_axis(masks, labels[small, :m], inside[small, :m], axis=1)
        return small, masks, exact

    def _lac_bar(self) -> float | None:
        """Smallest probability p with ``1 - p <= quantile_`` (the LAC membership test).

        Comparing probabilities with this bar gives bit-for-bit the sets of
        ``predict_set`` without materialising ``1 - proba``.
        """
        if getattr(self.sets, "method", None) != "lac":
            return None
        quantile = getattr(self.sets, "quantile_", None)
        if quantile is None or not np.isfinite(quantile):
            return None
        q = float(quantile)
        bar = float(np.clip(1.0 - q, 0.0, 1.0))
        while bar > 0.0 and 1.0 - float(np.nextafter(bar, -1.0)) <= q:
            bar = float(np.nextafter(bar, -1.0))
        while bar <= 1.0 and not 1.0 - bar <= q:
            bar = float(np.nextafter(bar, 2.0))
        return bar

    def _call_lac(self, state: LadderState, bar: float) -> None:
        inside = state.proba >= bar
        sizes = np.count_nonzero(inside, axis=1)
        keep = state.undecided & (sizes >= 1) & (sizes <= self.max_set_size)
        if state.any_handoff:
            keep &= ~state.handoff
        chosen = np.flatnonzero(keep)
        state.assign(chosen, Action.CLARIFY, Reason.SMALL_PREDICTION_SET)
        state.set_rows = np.concatenate([state.set_rows, chosen])
        state.set_masks = np.concatenate([state.set_masks, inside[chosen]])

    def __call__(self, state: LadderState) -> None:
        if self.max_set_size < 1:
            return
        bar = self._lac_bar()
        if bar is not None:
            self._call_lac(state, bar)
            return
        rows = np.flatnonzero(state.undecided & ~state.handoff)
        if rows.size == 0:
            return
        proba = state.proba[rows]
        quantile = self._fast_aps()
        if quantile is not None and self.max_set_size < proba.shape[1]:
            small, fast_masks, exact = self._small_aps_sets(proba, quantile)
            slow_rows = rows[exact]
            slow_masks = self.sets.predict_set(proba[exact]) if slow_rows.size else fast_masks[:0]
            rows = np.concatenate([rows[small], slow_rows])
            masks = np.concatenate([fast_masks, slow_masks])
        else:
            masks = self.sets.predict_set(proba)
        sizes = masks.sum(axis=1)
        keep = (sizes >= 1) & (sizes <= self.max_set_size)
        chosen = rows[keep]
        state.assign(chosen, Action.CLARIFY, Reason.SMALL_PREDICTION_SET)
        state.set_rows = np.concatenate([state.set_rows, chosen])
        state.set_masks = np.concatenate([state.set_masks, masks[keep]])


@dataclass(frozen=True)
class FallbackRung:
    """Use the deterministic fallback's label where it is trusted.

    ``trusted[label + 1]`` says whether a fallback output ``label`` is used (index 0 is the
    out-of-scope label -1, a safe "I can't help with that" response).
    """

    trusted: NDArray[np.bool_]

    def __call__(self, state: LadderState) -> None:
        labels = state.fallback_labels
        if labels is None or not self.trusted.any():
            return
        index = np.clip(labels + 1, 0, self.trusted.shape[0] - 1)
        usable = (labels != _NO_OPINION) & (labels < self.trusted.shape[0] - 1)
        rows = state.undecided & usable & self.trusted[index]
        state.assign(rows, Action.FALLBACK, Reason.FALLBACK_RULE, label=labels[rows])


@dataclass(frozen=True)
class EscalateRung:
    """Escalate what is left to a human; abstain when humans are off or beyond capacity.

    Rows with confidence below ``abstain_below`` abstain so that escalations stay within the
    human capacity the policy was fitted for.
    """

    enabled: bool = True
    abstain_below: float = -np.inf

    def __call__(self, state: LadderState) -> None:
        rows = state.undecided.copy()
        if not self.enabled:
            state.assign(rows, Action.ABSTAIN, Reason.NO_HUMANS)
            return
        over = rows & (state.confidence < self.abstain_below)
        state.assign(over, Action.ABSTAIN, Reason.HUMAN_CAPACITY)
        state.assign(rows & ~over, Action.ESCALATE, Reason.LOW_CONFIDENCE)


def run_ladder(state: LadderState, rungs: list[Rung]) -> LadderState:
    """Apply ``rungs`` in order; rows no rung claims abstain."""
    for rung in rungs:
        rung(state)
        if not state.undecided.any():
            break
    if state.undecided.any():
        state.assign(state.undecided.copy(), Action.ABSTAIN, Reason.LOW_CONFIDENCE)
    return state
