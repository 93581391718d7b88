"""`LoggedTasks`: what recalibration needs from the event log, as arrays.

One row per logged decision: the model's raw scores, the out-of-scope score, the
fallback's opinion, the action taken, the probability (fixed at decision time) that the
task was sent for a human label, whether it was, and the label a human gave.

A label counts for recalibration only when the task's *inclusion probability* is known:
the decision recorded ``review_probability`` and the label is the resolution of the
escalation or audit the guard itself queued (``review``). Labels from anywhere else — user
corrections, escalations a user asked for after a wrong answer, audits an application
queued on its own — arrive with a probability that depends on the answer being wrong, so
they are counted and reported but never used to certify.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import InputError

__all__ = ["LABEL_EVENTS", "NO_LABEL", "LoggedTasks", "read_logged_tasks"]

#: Event kinds whose label is the true label of the task.
LABEL_EVENTS: tuple[str, ...] = (
    "escalation_resolved",
    "audit_resolved",
    "audit_label",
    "feedback_corrected",
)

#: ``y`` of a task without a usable label (not selected, or its review is still open).
NO_LABEL = -2
#: ``fallback_label`` where the fallback had no opinion (or none is configured).
NO_OPINION = -2

_ACTIONS = ("answer", "clarify", "fallback", "escalate", "abstain")


@dataclass(frozen=True)
class LoggedTasks:
    """Arrays over the logged decisions whose inclusion probability is known.

    Attributes
    ----------
    scores : ndarray of shape (n, n_scores)
        Raw model scores as the guard recorded them.
    y : ndarray of shape (n,)
        The human label of a selected task whose review was resolved; ``-1`` out of scope;
        :data:`NO_LABEL` (-2) for tasks not selected or whose review is still open.
    selected : ndarray of bool, shape (n,)
        Whether the guard queued the task for review (escalation or audit).
    review_probability : ndarray of shape (n,)
        Probability, fixed at decision time, that the task was selected.
    fallback_label : ndarray of shape (n,) or None
        The fallback's opinion (-2 = none, -1 = out of scope); None when not recorded.
    ood_score : ndarray of shape (n,) or None
        The out-of-scope score; NaN for a decision recorded without one (the guard
        degraded it when its scorer failed); None when no decision has one.
    action : ndarray of str, shape (n,)
        What the policy in service did.
    task_id : list of str
    n_unknown_probability : int
        Decisions left out because they carry no ``review_probability`` (logged before it
        was recorded); their labels are not used.
    n_without_scores : int
        Decisions left out because they carry no raw scores.
    n_other_labels : int
        Labels with unknown inclusion probability (user corrections, user-requested
        escalations, audits queued by the application): reported, not used.
    """

    scores: NDArray[np.float64]
    y: NDArray[np.intp]
    selected: NDArray[np.bool_]
    review_probability: NDArray[np.float64]
    fallback_label: NDArray[np.intp] | None
    ood_score: NDArray[np.float64] | None
    action: NDArray[np.str_]
    task_id: list[str]
    n_unknown_probability: int = 0
    n_without_scores: int = 0
    n_other_labels: int = 0

    def __post_init__(self) -> None:
        n = self.y.shape[0]
        arrays = {
            "scores": self.scores.shape[0] if self.scores.ndim == 2 else -1,
            "selected": self.selected.shape[0],
            "review_probability": self.review_probability.shape[0],
            "action": self.action.shape[0],
            "task_id": len(self.task_id),
        }
        if self.fallback_label is not None:
            arrays["fallback_label"] = self.fallback_label.shape[0]
        if self.ood_score is not None:
            arrays["ood_score"] = self.ood_score.shape[0]
        wrong = {name: m for name, m in arrays.items() if m != n}
        if wrong:
            raise InputError(
                f"LoggedTasks arrays must all have {n} rows (one per task, like `y`); got "
                f"{wrong} (`scores` must be 2-D). Build them from the same decisions."
            )
        p = self.review_probability
        if n and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
            raise InputError(
                "`review_probability` must be probabilities in [0, 1]; got values from "
                f"{float(np.nanmin(p))!r} to {float(np.nanmax(p))!r} (NaN or inf included: "
                f"{bool(not np.all(np.isfinite(p)))}). Leave tasks without one out."
            )
        if np.any(self.selected & (p <= 0)):
            raise InputError(
                "A task was selected for review although its `review_probability` is 0; the "
                "log is inconsistent (each decision must record the probability it was drawn "
                "with)."
            )
        if np.any((self.y != NO_LABEL) & ~self.selected):
            raise InputError(
                "`y` holds labels for tasks that were not selected for review; only labels "
                "from the reviews the guard queued have a known inclusion probability."
            )

    @property
    def ood_scored(self) -> NDArray[np.bool_]:
        """Whether each decision has a finite out-of-scope score (all False without any)."""
        if self.ood_score is None:
            return np.zeros(self.n_tasks, dtype=bool)
        return np.asarray(np.isfinite(self.ood_score), dtype=bool)

    @property
    def n_tasks(self) -> int:
        """Logged decisions with a known inclusion probability."""
        return int(self.y.shape[0])

    @property
    def labelled(self) -> NDArray[np.bool_]:
        """Selected tasks whose review has been resolved."""
        return np.asarray(self.y != NO_LABEL)

    @property
    def n_pending(self) -> int:
        """Selected tasks whose review is still open (no label yet)."""
        return int((self.selected & ~self.labelled).sum())


def _first_label(events: list[tuple[str, int | None]], kinds: tuple[str, ...]) -> int | None:
    for kind, label in events:
        if kind in kinds and label is not None:
            return int(label)
    return None


def read_logged_tasks(store: Any, since: float | None = None) -> LoggedTasks:
    """Read the decisions decided at or after ``since`` and their review labels.

    Parameters
    ----------
    store : Store
        An open store (:func:`failwise.store.open`).
    since : float, optional
        Unix seconds; only tasks decided from then on.

    Returns
    -------
    LoggedTasks
    """
    decisions: dict[str, dict[str, Any]] = {}
    labels: dict[str, list[tuple[str, int | None]]] = {}
    for event in store.iter_events(since=since):
        if event.kind == "decision":
            decisions.setdefault(event.task_id, dict(event.payload))
        elif event.kind in LABEL_EVENTS:
            labels.setdefault(event.task_id, []).append((event.kind, event.label))
    unknown = without_scores = other = 0
    rows: list[tuple[str, dict[str, Any], int, bool]] = []
    for task_id, payload in decisions.items():
        found = labels.get(task_id, [])
        probability = payload.get("review_probability")
        if not isinstance(probability, (int, float)) or not math.isfinite(probability):
            unknown += 1
            other += len(found)
            continue
        scores = payload.get("scores")
        if not isinstance(scores, list) or not scores:
            without_scores += 1
            other += len(found)
            continue
        review = payload.get("review")
        label: int | None = None
        if review == "audit":
            label = _first_label(found, ("audit_resolved", "audit_label"))
        elif review == "escalation":
            label = _first_label(found, ("escalation_resolved",))
        used = 0 if label is None else 1
        other += len([k for k, v in found if v is not None]) - used
        rows.append((task_id, payload, NO_LABEL if label is None else label, review is not None))
    n = len(rows)
    widths = {len(payload["scores"]) for _, payload, _, _ in rows}
    if len(widths) > 1:
        raise InputError(
            f"The recorded scores have different lengths {sorted(widths)}; recalibrate one "
            "model's log at a time (pass `since`)."
        )
    width = widths.pop() if widths else 0
    fallback: NDArray[np.intp] | None = None
    if n and all("fallback_label" in payload for _, payload, _, _ in rows):
        fallback = np.array(
            [
                NO_OPINION if payload["fallback_label"] is None else int(payload["fallback_label"])
                for _, payload, _, _ in rows
            ],
            dtype=np.intp,
        )
    # Per row: a decision the guard degraded (its out-of-scope scorer failed) has no score;
    # NaN marks it, and recalibration leaves it out where the policy needs the score.
    ood: NDArray[np.float64] | None = None
    recorded = [
        float(v) if isinstance(v := payload.get("ood_score"), (int, float)) else math.nan
        for _, payload, _, _ in rows
    ]
    if any(math.isfinite(v) for v in recorded):
        ood = np.array(recorded, dtype=np.float64)
    return LoggedTasks(
        scores=np.array([payload["scores"] for _, payload, _, _ in rows], dtype=np.float64).reshape(
            n, width
        ),
        y=np.array([label for _, _, label, _ in rows], dtype=np.intp),
        selected=np.array([chosen for _, _, _, chosen in rows], dtype=bool),
        review_probability=np.array(
            [float(payload["review_probability"]) for _, payload, _, _ in rows], dtype=np.float64
        ),
        fallback_label=fallback,
        ood_score=ood,
        action=np.array([str(payload.get("action")) for _, payload, _, _ in rows], dtype=np.str_),
        task_id=[task_id for task_id, _, _, _ in rows],
        n_unknown_probability=unknown,
        n_without_scores=without_scores,
        n_other_labels=other,
    )
