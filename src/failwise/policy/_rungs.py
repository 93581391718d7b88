"""The rungs of the decision ladder: small configured steps, each owning all its paths.

Every rung is a :class:`Rung` and owns

- its batch path, ``rung(state)`` on a :class:`~failwise.policy.LadderState` (vectorised);
- its one-row path, ``rung.decide_row(row)`` on a :class:`~failwise.policy.RowState`
  (Python scalars; what a runtime guard runs per request);
- its saved state, ``rung.to_state()`` (plain values and NumPy arrays) and
  ``type(rung).from_state(state)``, through which artefacts save and load it.

Subclassing :class:`Rung` registers the class under :attr:`Rung.rung_name`, so an artefact
that names it can be loaded once the class is defined (no code named by the data is
imported). :class:`failwise.Policy` fits the built-in rungs; a user rung joins the ladder
with ``Policy(extra_rungs=[...])``.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import InputError
from failwise.policy._answer_score import ANSWER_SCORES, answer_scores, row_answer_score
from failwise.policy._conformal import (
    ConformalPredictionSets,
    aps_small_sets,
    lac_bar,
    lac_members,
)
from failwise.policy._decision import NO_OPINION, Action, Reason
from failwise.policy._ladder import LadderState, RowState

__all__ = [
    "AnswerRung",
    "ClarifyRung",
    "EscalateRung",
    "FallbackRung",
    "OutOfScopeRung",
    "PredictionSets",
    "Rung",
    "rung_class",
]

_REGISTRY: dict[str, type[Rung]] = {}

#: Names of the built-in rungs a user rung may run before (``Rung.runs_before``).
LADDER_STEPS: Final = ("answer", "clarify", "fallback", "escalate")


class Rung(abc.ABC):
    """A step of the decision ladder: claims some undecided inputs.

    Subclass it and implement ``__call__(state)`` (the batch path). The one-row path
    :meth:`decide_row` defaults to the batch path on a one-row batch; override it when a
    rung runs per request and must be fast. Saved state defaults to the fields of a
    dataclass rung; override :meth:`to_state` / :meth:`from_state` otherwise.

    Attributes
    ----------
    rung_name : str
        Name under which artefacts save the rung (default: ``module.QualifiedName`` of
        the class; the built-in rungs use their class name).
    runs_before : {"answer", "clarify", "fallback", "escalate"}
        Where :class:`~failwise.Policy` puts the rung when it is given in ``extra_rungs``
        (default "answer": right after the out-of-scope screen).

    Examples
    --------
    A rung that escalates every input whose top label is ``label`` (say, a sensitive
    intent), used in a policy, a guard and an artefact:

    >>> import numpy as np
    >>> from dataclasses import dataclass
    >>> from failwise import Policy
    >>> from failwise.policy import Action, Reason, Rung
    >>> @dataclass(frozen=True)
    ... class EscalateLabel(Rung):
    ...     label: int
    ...     def __call__(self, state):
    ...         rows = state.undecided & (state.predicted == self.label)
    ...         state.assign(rows, Action.ESCALATE, Reason.RULE)
    ...     def decide_row(self, row):
    ...         if row.predicted == self.label:
    ...             row.assign(Action.ESCALATE, Reason.RULE)
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    >>> y = np.array([rng.choice(3, p=p) for p in proba])
    >>> policy = Policy(target_risk=0.1, extra_rungs=[EscalateLabel(2)]).fit(proba, y)
    >>> decisions = policy.decide(proba)
    >>> decisions.action[decisions.predicted == 2].tolist()[:3]
    ['escalate', 'escalate', 'escalate']
    >>> decisions.reason(int(np.flatnonzero(decisions.predicted == 2)[0]))
    'escalate: a rule of the ladder decided (confidence 0.717)'
    >>> EscalateLabel(2).to_state(), EscalateLabel.from_state({"label": 2})
    ({'label': 2}, EscalateLabel(label=2))

    The same rung decides in a guard (through ``decide_row``) and survives an artefact
    (saved by ``to_state`` under :attr:`rung_name`; define the class before loading):

    >>> import tempfile
    >>> from pathlib import Path
    >>> from failwise import artifacts
    >>> from failwise.runtime import Guard
    >>> row = int(np.flatnonzero(proba.argmax(axis=1) == 2)[0])
    >>> Guard(lambda i: proba[i], None, policy).decide(row).action.value
    'escalate'
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = artifacts.save(policy, Path(folder) / "policy")
    ...     loaded = artifacts.load(Path(folder) / "policy")
    >>> loaded.extra_rungs, Guard(lambda i: proba[i], None, loaded).decide(row).reason
    ([EscalateLabel(label=2)], 'escalate: a rule of the ladder decided (confidence 0.717)')
    """

    rung_name: ClassVar[str]
    runs_before: ClassVar[str] = "answer"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "rung_name" not in cls.__dict__:
            cls.rung_name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.runs_before not in LADDER_STEPS:
            raise InputError(
                f"{cls.__name__}.runs_before must be one of {list(LADDER_STEPS)}; got "
                f"{cls.runs_before!r}."
            )
        # A redefinition (a re-run notebook cell) replaces the earlier class.
        _REGISTRY[cls.rung_name] = cls

    @abc.abstractmethod
    def __call__(self, state: LadderState) -> None:
        """Claim some undecided rows of a batch (``state.assign(rows, action, reason)``)."""

    def decide_row(self, row: RowState) -> None:
        """Claim one undecided row (``row.assign(action, reason)``), or leave it.

        The default runs :meth:`__call__` on the row as a one-row batch.
        """
        state = row.to_state()
        self(state)
        row.update(state)

    def to_state(self) -> dict[str, Any]:
        """The rung's configuration as plain values and NumPy arrays."""
        if not dataclasses.is_dataclass(self):
            raise InputError(
                f"{type(self).__name__} is not a dataclass, so it must implement `to_state` "
                "(and `from_state`) to be saved in an artefact."
            )
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Rung:
        """Rebuild a rung from :meth:`to_state`'s output."""
        try:
            return cls(**state)
        except TypeError as exc:
            raise InputError(
                f"cannot rebuild a {cls.__name__} from the saved fields {sorted(state)}: {exc}."
            ) from None


def rung_class(name: str) -> type[Rung]:
    """The rung class registered under ``name`` (what artefacts load).

    Examples
    --------
    >>> from failwise.policy import AnswerRung, rung_class
    >>> rung_class("AnswerRung") is AnswerRung
    True
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InputError(
            f"no rung class is registered as {name!r}; known rungs are {sorted(_REGISTRY)}. "
            "Define (import) the user rung class before loading the artefact that uses it."
        )
    return cls


class PredictionSets(Protocol):
    """What the clarify rung needs from a set predictor."""

    def predict_set(self, proba: NDArray[Any]) -> NDArray[np.bool_]: ...


@dataclasses.dataclass(frozen=True)
class OutOfScopeRung(Rung):
    """Flag rows whose out-of-scope score exceeds ``threshold``: never answered or clarified."""

    rung_name = "OutOfScopeRung"

    threshold: float

    def __call__(self, state: LadderState) -> None:
        if state.ood_score is None or not np.isfinite(self.threshold):
            return
        state.handoff |= state.ood_score > self.threshold

    def decide_row(self, row: RowState) -> None:
        if row.ood_score is not None and row.ood_score > self.threshold:
            row.handoff = True

    def to_state(self) -> dict[str, Any]:
        return {"threshold": float(self.threshold)}


@dataclasses.dataclass(frozen=True)
class AnswerRung(Rung):
    """Answer with the model's top label when its answer score reaches ``threshold``.

    ``score`` is ``"confidence"`` (the top label's probability) or ``"log_odds"`` (its
    top-two log-odds, log(p₁ / p₂)); see :class:`failwise.Policy`'s ``answer_score``.
    """

    rung_name = "AnswerRung"

    threshold: float
    score: str = "confidence"

    def __post_init__(self) -> None:
        if self.score not in ANSWER_SCORES:
            raise InputError(
                f"AnswerRung `score` must be one of {', '.join(ANSWER_SCORES)}; got {self.score!r}."
            )

    def __call__(self, state: LadderState) -> None:
        score = answer_scores(state.proba, state.confidence, self.score)
        rows = state.undecided & ~state.handoff & (score >= self.threshold)
        state.assign(rows, Action.ANSWER, Reason.CONFIDENT, label=state.predicted[rows])

    def decide_row(self, row: RowState) -> None:
        if row.handoff:
            return
        if row_answer_score(row.proba, row.confidence, self.score) >= self.threshold:
            row.assign(Action.ANSWER, Reason.CONFIDENT, row.predicted)

    def to_state(self) -> dict[str, Any]:
        return {"threshold": float(self.threshold), "score": self.score}


@dataclasses.dataclass(frozen=True)
class ClarifyRung(Rung):
    """Ask the user to pick among the prediction set when it has 1..``max_set_size`` labels."""

    rung_name = "ClarifyRung"

    sets: PredictionSets
    max_set_size: int

    def lac_bar(self) -> float | None:
        """The LAC membership bar when the sets are fitted LAC sets (else None)."""
        sets = self.sets
        if not isinstance(sets, ConformalPredictionSets) or sets.method != "lac":
            return None
        quantile = getattr(sets, "quantile_", None)
        return None if quantile is None else lac_bar(quantile)

    def _fast_aps(self) -> float | None:
        """The APS quantile when the sets are deterministic APS (the fast path applies)."""
        sets = self.sets
        if not isinstance(sets, ConformalPredictionSets) or sets.method != "aps":
            return None
        if sets.randomized:
            return None
        quantile = getattr(sets, "quantile_", None)
        return None if quantile is None else float(quantile)

    def __call__(self, state: LadderState) -> None:
        if self.max_set_size < 1:
            return
        bar = self.lac_bar()
        if bar is not None:
            inside = lac_members(state.proba, bar)
            sizes = np.count_nonzero(inside, axis=1)
            keep = state.undecided & (sizes >= 1) & (sizes <= self.max_set_size)
            if state.any_handoff:
                keep &= ~state.handoff
            chosen = np.flatnonzero(keep)
            state.assign(chosen, Action.CLARIFY, Reason.SMALL_PREDICTION_SET)
            state.add_sets(chosen, inside[chosen])
            return
        rows = np.flatnonzero(state.undecided & ~state.handoff)
        if rows.size == 0:
            return
        proba = state.proba[rows]
        quantile = self._fast_aps()
        if quantile is not None and self.max_set_size < proba.shape[1]:
            small, fast_masks, exact = aps_small_sets(proba, quantile, self.max_set_size)
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
        state.add_sets(chosen, masks[keep])

    def decide_row(self, row: RowState) -> None:
        if self.max_set_size < 1 or row.handoff:
            return
        bar = self.lac_bar()
        if bar is None:
            super().decide_row(row)
            return
        inside = lac_members(row.proba, bar)
        size = int(np.count_nonzero(inside))
        if 1 <= size <= self.max_set_size:
            row.mask = inside
            row.assign(Action.CLARIFY, Reason.SMALL_PREDICTION_SET)

    def to_state(self) -> dict[str, Any]:
        sets = self.sets
        if not isinstance(sets, ConformalPredictionSets):
            raise InputError(
                f"cannot save a ClarifyRung whose sets are a {type(sets).__name__}; only "
                "ConformalPredictionSets can be saved."
            )
        params = sets.get_params()
        if isinstance(params.get("random_state"), np.random.Generator):
            raise InputError(
                "cannot save the clarify rung's prediction sets: their random_state is a numpy "
                "Generator, whose stream cannot be written as plain data. Fit them with an int "
                "seed (or None) instead."
            )
        fitted = {k: v for k, v in vars(sets).items() if k not in params}
        return {
            "max_set_size": int(self.max_set_size),
            "sets": {"class": "ConformalPredictionSets", "params": params, "fitted": fitted},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ClarifyRung:
        sets = state.get("sets")
        if isinstance(sets, Mapping):
            if not {"params", "fitted"} <= set(sets):
                raise InputError(
                    "a saved ClarifyRung's `sets` must hold `params` and `fitted`; got keys "
                    f"{sorted(sets)}."
                )
            built = ConformalPredictionSets(**sets["params"])
            for name, value in sets["fitted"].items():
                setattr(built, name, value)
            sets = built
        if not isinstance(sets, ConformalPredictionSets) or "max_set_size" not in state:
            raise InputError(
                "a saved ClarifyRung needs `sets` (saved ConformalPredictionSets) and "
                f"`max_set_size`; got {sorted(state)}."
            )
        return cls(sets, int(state["max_set_size"]))


@dataclasses.dataclass(frozen=True)
class FallbackRung(Rung):
    """Use the deterministic fallback's label where it is trusted.

    ``trusted[label + 1]`` says whether a fallback output ``label`` is used (index 0 is the
    out-of-scope label -1, a safe "I can't help with that" response).
    """

    rung_name = "FallbackRung"

    trusted: NDArray[np.bool_]
    _flags: list[bool] = dataclasses.field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._flags.extend(bool(t) for t in np.asarray(self.trusted, dtype=bool))

    def trusts(self, label: int) -> bool:
        """Whether the fallback's output ``label`` is used (False for :data:`NO_OPINION`)."""
        flags = self._flags
        return label != NO_OPINION and -1 <= label < len(flags) - 1 and flags[label + 1]

    def __call__(self, state: LadderState) -> None:
        labels = state.fallback_labels
        if labels is None or not self.trusted.any():
            return
        index = np.clip(labels + 1, 0, self.trusted.shape[0] - 1)
        usable = (labels != NO_OPINION) & (labels < self.trusted.shape[0] - 1)
        rows = state.undecided & usable & self.trusted[index]
        state.assign(rows, Action.FALLBACK, Reason.FALLBACK_RULE, label=labels[rows])

    def decide_row(self, row: RowState) -> None:
        label = row.fallback_label
        if self.trusts(label):
            row.assign(Action.FALLBACK, Reason.FALLBACK_RULE, label)

    def to_state(self) -> dict[str, Any]:
        return {"trusted": np.asarray(self.trusted, dtype=bool)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FallbackRung:
        return cls(np.asarray(state["trusted"], dtype=bool))


@dataclasses.dataclass(frozen=True)
class EscalateRung(Rung):
    """Escalate what is left to a human; abstain when humans are off or beyond capacity.

    Rows with confidence below ``abstain_below`` abstain so that escalations stay within the
    human capacity the policy was fitted for.
    """

    rung_name = "EscalateRung"

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

    def decide_row(self, row: RowState) -> None:
        if not self.enabled:
            row.assign(Action.ABSTAIN, Reason.NO_HUMANS)
        elif row.confidence < self.abstain_below:
            row.assign(Action.ABSTAIN, Reason.HUMAN_CAPACITY)
        else:
            row.assign(Action.ESCALATE, Reason.LOW_CONFIDENCE)

    def to_state(self) -> dict[str, Any]:
        return {"enabled": bool(self.enabled), "abstain_below": float(self.abstain_below)}
