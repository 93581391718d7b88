"""What the ladder decided: one :class:`Decision` per input, column-wise in :class:`Decisions`.

A batch of a million decisions is a handful of NumPy arrays (action codes, labels, confidences,
band codes, reason codes); the per-row :class:`Decision` objects, prediction sets and reason
sentences are built only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["NO_LABEL", "NO_OPINION", "Action", "Band", "Decision", "Decisions", "Reason"]

#: Value of :attr:`Decisions.label` for rows that return no label (clarify, escalate, abstain).
NO_LABEL: Final = -2

#: Fallback-label value for "the fallback has no opinion on this input" (distinct from the
#: out-of-scope label -1, which is an opinion). The one definition; everything imports it.
NO_OPINION: Final = -2


class Action(StrEnum):
    """The five rungs of the decision ladder, in order."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"
    ESCALATE = "escalate"
    ABSTAIN = "abstain"

    @property
    def code(self) -> int:
        """Position on the ladder (0 = answer … 4 = abstain); the storage code in `Decisions`."""
        return _ACTION_CODES[self]


_ACTIONS: tuple[Action, ...] = tuple(Action)
_ACTION_CODES = {action: i for i, action in enumerate(_ACTIONS)}


class Band(StrEnum):
    """Coarse confidence band for user-facing wording ("I'm sure", "I think", "I'm not sure")."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


_BANDS: tuple[Band, ...] = (Band.LOW, Band.MEDIUM, Band.HIGH)


class Reason(StrEnum):
    """Which rung fired and why; the sentence is filled in by :meth:`Decisions.reason`."""

    CONFIDENT = "confident"
    OUT_OF_SCOPE = "out_of_scope"
    SMALL_PREDICTION_SET = "small_prediction_set"
    FALLBACK_RULE = "fallback_rule"
    LOW_CONFIDENCE = "low_confidence"
    HUMAN_CAPACITY = "human_capacity"
    NO_HUMANS = "no_humans"
    MODEL_FAILURE = "model_failure"
    RULE = "rule"


_REASONS: tuple[Reason, ...] = tuple(Reason)
REASON_CODES: Mapping[Reason, int] = {reason: i for i, reason in enumerate(_REASONS)}


@dataclass(frozen=True)
class Decision:
    """What the system did with one input.

    Attributes
    ----------
    action : Action
        The rung of the ladder that handled the input.
    label : int or None
        The label returned to the user (answer or fallback); None otherwise.
    confidence : float
        Calibrated probability that the model's top label is correct.
    band : Band
        high / medium / low, for user-facing wording.
    prediction_set : tuple of int
        Labels offered when clarifying (the conformal prediction set); empty for other actions
        unless requested.
    reason : str
        One sentence: which rung fired and why, with the numbers that decided it.
    predicted : int
        The model's top label, whatever the action.
    ood_score : float or None
        Out-of-scope score when one was given.
    task_id : str or None
        Identifier of the task this decision opened (set by a runtime guard).
    policy_version : str or None
        Content hash of the policy artefact that decided (set by a runtime guard).
    timings : mapping of str to float
        Seconds spent per stage (model, calibration, out-of-scope score, fallback,
        decision) and in total, when measured by a runtime guard.
    extra : mapping
        Anything else a caller attaches.
    review_probability : float
        Probability, fixed when the decision was made, that the task is sent to a human
        for a label: 1.0 for an escalation, the audit rate of its action otherwise (whether
        or not the draw selected it), 0.0 with auditing off. Labels gathered by review are
        weighted by its inverse.
    review : {"escalation", "audit"} or None
        What was actually queued for a human.
    fallback_label : int or None
        The fallback's opinion on this input (a label, or -1 for out of scope), recorded
        whenever a fallback is configured; None when none is or it had no opinion.
    """

    action: Action
    label: int | None
    confidence: float
    band: Band
    prediction_set: tuple[int, ...]
    reason: str
    predicted: int
    ood_score: float | None = None
    task_id: str | None = None
    policy_version: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    review_probability: float = 0.0
    review: str | None = None
    fallback_label: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        return {
            "action": self.action.value,
            "label": self.label,
            "confidence": self.confidence,
            "band": self.band.value,
            "prediction_set": list(self.prediction_set),
            "reason": self.reason,
            "predicted": self.predicted,
            "ood_score": self.ood_score,
            "task_id": self.task_id,
            "policy_version": self.policy_version,
            "timings": dict(self.timings),
            "review_probability": self.review_probability,
            "review": self.review,
            "fallback_label": self.fallback_label,
            **dict(self.extra),
        }


class Decisions(Sequence[Decision]):
    """Column-wise decisions for a batch of inputs.

    Built by :meth:`failwise.Policy.decide`; indexing returns a :class:`Decision`.

    Attributes
    ----------
    action_codes : ndarray of shape (n_samples,), dtype int8
        Ladder position of each row's action (see :attr:`Action.code`).
    label : ndarray of shape (n_samples,), dtype intp
        Label returned, or :data:`NO_LABEL`.
    predicted : ndarray of shape (n_samples,), dtype intp
        The model's top label.
    confidence : ndarray of shape (n_samples,), dtype float64
    band_codes : ndarray of shape (n_samples,), dtype int8
        0 = low, 1 = medium, 2 = high.
    reason_codes : ndarray of shape (n_samples,), dtype int8
    set_rows, set_masks : ndarray
        Rows for which prediction sets were computed (the clarify rows) and their boolean
        label masks, shape (len(set_rows), n_classes).
    ood_score : ndarray or None
    context : mapping
        The thresholds that produced the decisions, for reason sentences.
    """

    __slots__ = (
        "_set_index",
        "action_codes",
        "band_codes",
        "confidence",
        "context",
        "label",
        "ood_score",
        "predicted",
        "reason_codes",
        "set_masks",
        "set_rows",
    )

    def __init__(
        self,
        *,
        action_codes: NDArray[np.int8],
        label: NDArray[np.intp],
        predicted: NDArray[np.intp],
        confidence: NDArray[np.float64],
        band_codes: NDArray[np.int8],
        reason_codes: NDArray[np.int8],
        set_rows: NDArray[np.intp],
        set_masks: NDArray[np.bool_],
        ood_score: NDArray[np.float64] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.action_codes = action_codes
        self.label = label
        self.predicted = predicted
        self.confidence = confidence
        self.band_codes = band_codes
        self.reason_codes = reason_codes
        self.set_rows = set_rows
        self.set_masks = set_masks
        self.ood_score = ood_score
        self.context = dict(context or {})
        self._set_index: dict[int, int] | None = None

    # -- Sequence protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.action_codes.shape[0])

    def __getitem__(self, index: int | np.integer[Any]) -> Decision:  # type: ignore[override]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            what = "a slice" if isinstance(index, slice) else describe(index)
            raise InputError(
                f"`decisions[...]` takes one row number and returns one Decision; got {what}. "
                "For several rows use `decisions.select(mask)` with a boolean mask of length "
                f"{len(self)}, or `decisions.select(rows)` with integer row numbers (for a slice: "
                "`decisions.select(range(start, stop))`)."
            )
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"row {index} is out of range for {n} decisions")
        return Decision(**self.fields(i))

    def fields(self, row: int) -> dict[str, Any]:
        """The fields of ``self[row]`` as a dict (to build a Decision with more fields)."""
        i = int(row)
        label = int(self.label[i])
        return {
            "action": _ACTIONS[self.action_codes[i]],
            "label": None if label == NO_LABEL else label,
            "confidence": float(self.confidence[i]),
            "band": _BANDS[self.band_codes[i]],
            "prediction_set": self.prediction_set(i),
            "reason": self.reason(i),
            "predicted": int(self.predicted[i]),
            "ood_score": None if self.ood_score is None else float(self.ood_score[i]),
        }

    def all_fields(self) -> list[dict[str, Any]]:
        """:meth:`fields` of every row, each column converted once (for whole batches)."""
        labels = self.label.tolist()
        confidence = self.confidence.tolist()
        actions = self.action_codes.tolist()
        bands = self.band_codes.tolist()
        reasons = self.reason_codes.tolist()
        predicted = self.predicted.tolist()
        oods = [None] * len(labels) if self.ood_score is None else self.ood_score.tolist()
        sets = {
            row: tuple(j for j, member in enumerate(mask) if member)
            for row, mask in zip(self.set_rows.tolist(), self.set_masks.tolist(), strict=True)
        }
        out = []
        for i, label in enumerate(labels):
            members = sets.get(i, ())
            sized = _REASONS[reasons[i]] is Reason.SMALL_PREDICTION_SET
            out.append(
                {
                    "action": _ACTIONS[actions[i]],
                    "label": None if label == NO_LABEL else label,
                    "confidence": confidence[i],
                    "band": _BANDS[bands[i]],
                    "prediction_set": members,
                    "reason": reason_sentence(
                        reasons[i],
                        actions[i],
                        confidence[i],
                        oods[i],
                        len(members) if sized else 0,
                        label,
                        self.context,
                    ),
                    "predicted": predicted[i],
                    "ood_score": oods[i],
                }
            )
        return out

    def __iter__(self) -> Iterator[Decision]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        counts = ", ".join(f"{a.value}={n}" for a, n in self.counts().items())
        return f"Decisions(n={len(self)}: {counts})"

    # -- Columns ----------------------------------------------------------------------------
    @property
    def action(self) -> NDArray[np.str_]:
        """Action names per row (built on demand)."""
        names = np.array([a.value for a in _ACTIONS])
        return names[self.action_codes]

    @property
    def band(self) -> NDArray[np.str_]:
        """Band names per row (built on demand)."""
        names = np.array([b.value for b in _BANDS])
        return names[self.band_codes]

    def mask(self, action: Action | str) -> NDArray[np.bool_]:
        """Boolean mask of the rows that took ``action``."""
        try:
            code = Action(action).code
        except ValueError:
            raise InputError(
                f"Unknown action {action!r}; expected one of {[a.value for a in _ACTIONS]}."
            ) from None
        mask: NDArray[np.bool_] = self.action_codes == code
        return mask

    def counts(self) -> dict[Action, int]:
        """Number of rows per action, in ladder order."""
        counts = np.bincount(self.action_codes, minlength=len(_ACTIONS))
        return {action: int(counts[action.code]) for action in _ACTIONS}

    def rates(self) -> dict[Action, float]:
        """Share of rows per action."""
        n = max(len(self), 1)
        return {action: count / n for action, count in self.counts().items()}

    def prediction_set(self, row: int) -> tuple[int, ...]:
        """Labels offered for ``row`` (non-empty for clarify rows)."""
        if self._set_index is None:
            self._set_index = {int(r): i for i, r in enumerate(self.set_rows)}
        position = self._set_index.get(int(row))
        if position is None:
            return ()
        return tuple(int(c) for c in np.flatnonzero(self.set_masks[position]))

    def select(self, rows: ArrayLike) -> Decisions:
        """The decisions of some rows, as a new :class:`Decisions`.

        Parameters
        ----------
        rows : array-like of bool of shape (n_samples,), or array-like of int
            A boolean mask over the rows, or row numbers (negative numbers count from the
            end; order and repeats are kept). For a slice pass ``range(start, stop)``.

        Returns
        -------
        Decisions
            Over the chosen rows, in the order chosen, with their prediction sets.

        Examples
        --------
        >>> import numpy as np
        >>> from failwise import Policy
        >>> rng = np.random.default_rng(0)
        >>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
        >>> y = np.array([rng.choice(3, p=p) for p in proba])
        >>> decisions = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y).decide(proba)
        >>> answered = decisions.select(decisions.mask("answer"))
        >>> set(answered.action.tolist()), len(decisions.select(range(10, 20)))
        ({'answer'}, 10)
        """
        index = self._row_index(rows)
        position = np.full(len(self), -1, dtype=np.intp)
        position[self.set_rows] = np.arange(self.set_rows.shape[0])
        chosen = position[index]
        has_set = np.flatnonzero(chosen >= 0)
        return Decisions(
            action_codes=self.action_codes[index],
            label=self.label[index],
            predicted=self.predicted[index],
            confidence=self.confidence[index],
            band_codes=self.band_codes[index],
            reason_codes=self.reason_codes[index],
            set_rows=has_set.astype(np.intp),
            set_masks=self.set_masks[chosen[has_set]],
            ood_score=None if self.ood_score is None else self.ood_score[index],
            context=self.context,
        )

    def _row_index(self, rows: Any) -> NDArray[np.intp]:
        n = len(self)
        array = None if isinstance(rows, (str, bytes, Mapping)) else np.asarray(rows)
        if array is None or array.ndim != 1:
            shape = "" if array is None else f" of shape {array.shape}"
            raise InputError(
                f"`rows` must be a 1-D boolean mask of length {n} or a sequence of row numbers; "
                f"got {describe(rows)}{shape}. For one row use `decisions[i]`."
            )
        if array.dtype == np.bool_:
            if array.shape[0] != n:
                raise InputError(
                    f"the boolean mask has {array.shape[0]} entries for {n} decisions; pass one "
                    "entry per row, e.g. `decisions.mask('answer')`."
                )
            return np.flatnonzero(array)
        if array.size == 0:
            return np.empty(0, dtype=np.intp)
        if array.dtype.kind not in "iu":
            raise InputError(
                f"`rows` must hold booleans or integer row numbers; got dtype {array.dtype}. "
                "Convert a float array with `.astype(int)` if it holds row numbers."
            )
        bad = (array < -n) | (array >= n)
        if bad.any():
            raise InputError(
                f"row {int(array[bad][0])} is out of range for {n} decisions (valid: "
                f"{-n}..{n - 1})."
            )
        index: NDArray[np.intp] = np.where(array < 0, array + n, array).astype(np.intp)
        return index

    def reason(self, row: int) -> str:
        """The reason sentence for ``row``."""
        return _reason_sentence(self, int(row))

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dictionary per row (slow for millions of rows; meant for small batches)."""
        return [decision.to_dict() for decision in self]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3g}"


def _reason_sentence(decisions: Decisions, row: int) -> str:
    reason_code = int(decisions.reason_codes[row])
    score = None if decisions.ood_score is None else float(decisions.ood_score[row])
    size = (
        len(decisions.prediction_set(row))
        if _REASONS[reason_code] is Reason.SMALL_PREDICTION_SET
        else 0
    )
    return reason_sentence(
        reason_code,
        int(decisions.action_codes[row]),
        float(decisions.confidence[row]),
        score,
        size,
        int(decisions.label[row]),
        decisions.context,
    )


def reason_sentence(
    reason_code: int,
    action_code: int,
    confidence: float,
    ood_score: float | None,
    set_size: int,
    label: int,
    ctx: Mapping[str, Any],
) -> str:
    """The reason sentence of one decided input, from its codes and the policy's context."""
    reason = _REASONS[reason_code]
    answer_at = ctx.get("answer_threshold")
    by_log_odds = ctx.get("answer_score") == "log_odds"
    if reason is Reason.CONFIDENT:
        above = (
            f"top-two log-odds ≥ answer threshold {_fmt(answer_at)} (confidence {confidence:.3f}"
            if by_log_odds
            else f"confidence {confidence:.3f} ≥ answer threshold {_fmt(answer_at)} ("
        )
        basis = ctx.get("answer_basis", "fitted on validation data")
        return f"answer: {above}{'; ' if by_log_odds else ''}{basis})"
    action = _ACTIONS[action_code].value
    if reason is Reason.OUT_OF_SCOPE:
        return (
            f"{action}: out-of-scope score {_fmt(ood_score)} > threshold "
            f"{_fmt(ctx.get('ood_threshold'))}; the model is never trusted on such inputs"
        )
    below = (
        f"top-two log-odds < answer threshold {_fmt(answer_at)} (confidence {confidence:.3f})"
        if by_log_odds
        else f"confidence {confidence:.3f} < answer threshold {_fmt(answer_at)}"
    )
    if reason is Reason.SMALL_PREDICTION_SET:
        return (
            f"clarify: {below}; the {_fmt(ctx.get('clarify_coverage'))} prediction set has "
            f"{set_size} label(s) ≤ {ctx.get('clarify_max_set_size')}, so the user is asked "
            "to pick"
        )
    if reason is Reason.FALLBACK_RULE:
        return (
            f"fallback: {below}; the deterministic fallback gave label "
            f"{label}, which it gets right "
            f"{_fmt(ctx.get('fallback_accuracy'))} of the time on validation data"
        )
    if reason is Reason.LOW_CONFIDENCE:
        return f"escalate: {below} and no clarification or trusted fallback applies"
    if reason is Reason.HUMAN_CAPACITY:
        return (
            f"abstain: {below}; confidence is under {_fmt(ctx.get('abstain_below'))}, where "
            "escalating would exceed the human capacity the policy was fitted for"
        )
    if reason is Reason.NO_HUMANS:
        return f"abstain: {below} and escalation to humans is turned off"
    if reason is Reason.RULE:
        return f"{action}: a rule of the ladder decided (confidence {confidence:.3f})"
    return f"{action}: the model failed to produce scores"
