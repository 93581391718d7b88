"""`Policy.decide` for one probability vector, without the batch machinery.

``Policy.decide`` is vectorised for batches; for a single row its fixed cost (input checks,
a dozen small arrays per rung, the context dictionary) dominates. :class:`OneRowLadder`
walks the same fitted rungs (``policy.rungs_``, in their order) with Python scalars,
calling each rung's own vectorised code only where a scalar version would repeat real logic
(the clarify rung's prediction sets). The reason sentence and prediction set come from a
one-row :class:`~failwise.Decisions`, so they are the policy's own words. A policy with a
rung this module does not know cannot be wrapped (nor saved as an artefact).

Tests check that it returns exactly what ``policy.decide`` returns, row by row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import InputError
from failwise.policy import (
    NO_LABEL,
    Action,
    AnswerRung,
    ClarifyRung,
    ConformalPredictionSets,
    Decisions,
    EscalateRung,
    FallbackRung,
    LadderState,
    OutOfScopeRung,
    Policy,
    Reason,
)
from failwise.policy._decision import REASON_CODES

__all__ = ["OneRowLadder", "Verdict"]

_NO_OPINION: Final = -2
_ANSWER: Final = Action.ANSWER.code
_CLARIFY: Final = Action.CLARIFY.code
_FALLBACK: Final = Action.FALLBACK.code
_ESCALATE: Final = Action.ESCALATE.code
_ABSTAIN: Final = Action.ABSTAIN.code
_R_CONFIDENT: Final = REASON_CODES[Reason.CONFIDENT]
_R_OOS: Final = REASON_CODES[Reason.OUT_OF_SCOPE]
_R_SET: Final = REASON_CODES[Reason.SMALL_PREDICTION_SET]
_R_FALLBACK: Final = REASON_CODES[Reason.FALLBACK_RULE]
_R_LOW: Final = REASON_CODES[Reason.LOW_CONFIDENCE]
_R_CAPACITY: Final = REASON_CODES[Reason.HUMAN_CAPACITY]
_R_NO_HUMANS: Final = REASON_CODES[Reason.NO_HUMANS]


class Verdict(NamedTuple):
    """What the ladder did with one row, before ids and timings are attached."""

    action: Action
    label: int | None
    confidence: float
    band_code: int
    prediction_set: tuple[int, ...]
    reason: str
    predicted: int
    fallback_called: bool
    fallback_error: str | None


class _Row:
    """Mutable scratch for one row while the rungs run."""

    __slots__ = (
        "action",
        "confidence",
        "fallback",
        "fallback_called",
        "fallback_error",
        "fallback_label",
        "handoff",
        "label",
        "mask",
        "ood",
        "predicted",
        "proba",
        "reason",
    )

    def __init__(
        self,
        proba: NDArray[np.float64],
        predicted: int,
        confidence: float,
        ood: float | None,
        fallback: Callable[[], tuple[int, str | None]] | None,
    ) -> None:
        self.proba = proba
        self.predicted = predicted
        self.confidence = confidence
        self.ood = ood
        self.fallback = fallback
        self.fallback_called = False
        self.fallback_error: str | None = None
        self.fallback_label = _NO_OPINION
        self.handoff = False
        self.action = -1
        self.label = NO_LABEL
        self.reason = _R_LOW
        self.mask: NDArray[np.bool_] | None = None

    def assign(self, action: int, reason: int, label: int = NO_LABEL) -> None:
        self.action = action
        self.label = label
        self.reason = _R_OOS if self.handoff else reason


Step = Callable[[_Row], None]


def _out_of_scope_step(rung: OutOfScopeRung) -> Step:
    threshold = float(rung.threshold)

    def step(row: _Row) -> None:
        if row.ood is None or not math.isfinite(threshold):
            return
        if row.ood > threshold:
            row.handoff = True

    return step


def _answer_step(rung: AnswerRung) -> Step:
    threshold = float(rung.threshold)

    def step(row: _Row) -> None:
        if not row.handoff and row.confidence >= threshold:
            row.assign(_ANSWER, _R_CONFIDENT, row.predicted)

    return step


def _clarify_step(rung: ClarifyRung) -> Step:
    if rung.max_set_size < 1:
        return lambda row: None
    sets = rung.sets
    if isinstance(sets, ConformalPredictionSets) and sets.method == "lac":
        return _lac_clarify_step(rung.max_set_size, float(sets.quantile_))

    def step(row: _Row) -> None:
        if row.handoff:
            return
        state = LadderState(
            row.proba[None, :],
            np.array([row.confidence]),
            np.array([row.predicted], dtype=np.intp),
        )
        rung(state)
        if state.set_rows.size:
            row.mask = state.set_masks[0]
            row.assign(_CLARIFY, _R_SET)

    return step


def _lac_clarify_step(max_set_size: int, quantile: float) -> Step:
    """LAC sets (labels with 1 - p <= quantile), as `ConformalPredictionSets.predict_set`."""

    def step(row: _Row) -> None:
        if row.handoff:
            return
        mask = (1.0 - row.proba) <= quantile
        size = int(np.count_nonzero(mask))
        if 1 <= size <= max_set_size:
            row.mask = mask
            row.assign(_CLARIFY, _R_SET)

    return step


def _fallback_step(rung: FallbackRung) -> Step:
    trusted = np.asarray(rung.trusted, dtype=bool)
    if not trusted.any():
        return lambda row: None
    flags = trusted.tolist()
    size = len(flags)

    def step(row: _Row) -> None:
        if row.fallback is None:
            return
        if not row.fallback_called:
            row.fallback_label, row.fallback_error = row.fallback()
            row.fallback_called = True
        label = row.fallback_label
        if label == _NO_OPINION or label >= size - 1:
            return
        if flags[min(max(label + 1, 0), size - 1)]:
            row.assign(_FALLBACK, _R_FALLBACK, label)

    return step


def _escalate_step(rung: EscalateRung) -> Step:
    enabled = bool(rung.enabled)
    floor = float(rung.abstain_below)

    def step(row: _Row) -> None:
        if not enabled:
            row.assign(_ABSTAIN, _R_NO_HUMANS)
        elif row.confidence < floor:
            row.assign(_ABSTAIN, _R_CAPACITY)
        else:
            row.assign(_ESCALATE, _R_LOW)

    return step


_STEPS: Final[dict[type[Any], Callable[[Any], Step]]] = {
    OutOfScopeRung: _out_of_scope_step,
    AnswerRung: _answer_step,
    ClarifyRung: _clarify_step,
    FallbackRung: _fallback_step,
    EscalateRung: _escalate_step,
}

_ACTIONS: Final = tuple(Action)


class OneRowLadder:
    """The fitted ladder of a policy, for one row at a time.

    Build it with :meth:`from_policy`.
    """

    def __init__(self, policy: Policy, steps: list[Step]) -> None:
        self._steps = steps
        self._n_classes = int(policy.n_classes_)
        self._medium = float(policy.medium_band_floor)
        self._answer = float(policy.answer_threshold_)
        self._context = policy.describe()

    @classmethod
    def from_policy(cls, policy: Policy) -> OneRowLadder:
        """The one-row ladder of a fitted policy."""
        steps: list[Step] = []
        for index, rung in enumerate(policy.rungs_):
            build = _STEPS.get(type(rung))
            if build is None:
                raise InputError(
                    f"policy.rungs_[{index}] is a {type(rung).__name__}, not one of the rungs a "
                    f"Guard runs ({', '.join(c.__name__ for c in _STEPS)})."
                )
            steps.append(build(rung))
        return cls(policy, steps)

    def decide(
        self,
        proba: NDArray[np.float64],
        ood: float | None,
        fallback: Callable[[], tuple[int, str | None]] | None,
    ) -> Verdict:
        """Decide one row of checked probabilities (shape (n_classes,), float64).

        ``fallback`` is called at most once, and only if the row reaches the fallback rung;
        it returns the fallback's label (-2 for no opinion) and an error note or None.
        """
        predicted = int(proba.argmax())
        confidence = float(proba[predicted])
        row = _Row(proba, predicted, confidence, ood, fallback)
        for step in self._steps:
            step(row)
            if row.action >= 0:
                break
        if row.action < 0:
            row.assign(_ABSTAIN, _R_LOW)
        band = int(confidence >= self._medium) + int(confidence >= self._answer)
        decisions = Decisions(
            action_codes=np.array([row.action], dtype=np.int8),
            label=np.array([row.label], dtype=np.intp),
            predicted=np.array([predicted], dtype=np.intp),
            confidence=np.array([confidence]),
            band_codes=np.array([band], dtype=np.int8),
            reason_codes=np.array([row.reason], dtype=np.int8),
            set_rows=np.zeros(1 if row.mask is not None else 0, dtype=np.intp),
            set_masks=(
                row.mask[None, :]
                if row.mask is not None
                else np.empty((0, self._n_classes), dtype=bool)
            ),
            ood_score=None if ood is None else np.array([ood]),
            context=self._context,
        )
        prediction_set = (
            tuple(int(c) for c in np.flatnonzero(row.mask)) if row.mask is not None else ()
        )
        return Verdict(
            action=_ACTIONS[row.action],
            label=None if row.label == NO_LABEL else int(row.label),
            confidence=confidence,
            band_code=band,
            prediction_set=prediction_set,
            reason=decisions.reason(0),
            predicted=predicted,
            fallback_called=row.fallback_called,
            fallback_error=row.fallback_error,
        )
