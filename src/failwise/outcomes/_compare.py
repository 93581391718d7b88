"""`compare`: rank models by the tasks they complete, with accuracy beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from failwise._validation import check_labels
from failwise.exceptions import InputError
from failwise.outcomes._metrics import ProductMetrics
from failwise.outcomes._model import OutcomeModel
from failwise.outcomes._projection import project
from failwise.policy import Decisions

__all__ = ["Comparison", "ComparisonRow", "compare"]


@dataclass(frozen=True)
class ComparisonRow:
    """One model in a comparison."""

    name: str
    accuracy: float
    in_scope_accuracy: float
    metrics: ProductMetrics
    action_rates: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly dictionary."""
        return {
            "name": self.name,
            "accuracy": self.accuracy,
            "in_scope_accuracy": self.in_scope_accuracy,
            "action_rates": dict(self.action_rates),
            **self.metrics.to_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """Models ranked by projected task completion (best first)."""

    rows: Sequence[ComparisonRow]
    outcome_model: OutcomeModel

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def best(self) -> ComparisonRow:
        """The model that completes the most tasks."""
        return self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the ranked rows and the outcome model's assumptions."""
        return {
            "ranking": [row.to_dict() for row in self.rows],
            "outcome_model": self.outcome_model.to_dict(),
        }

    def __str__(self) -> str:
        header = (
            f"{'model':<28} {'accuracy':>9} {'completion':>11} {'escalation':>11} "
            f"{'recovery':>9} {'silent':>7} {'t50':>8} {'t90':>8}"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            m = row.metrics
            lines.append(
                f"{row.name[:28]:<28} {row.accuracy:>9.1%} "
                f"{m.task_completion_rate.value:>11.1%} {m.escalation_rate.value:>11.1%} "
                f"{m.recovery_rate.value:>9.1%} {m.silent_failure_rate.value:>7.1%} "
                f"{m.time_to_correct_output_median_s.value:>7.0f}s "
                f"{m.time_to_correct_output_p90_s.value:>7.0f}s"
            )
        return "\n".join(lines)


def _unpack(name: str, entry: Any) -> tuple[Decisions, np.ndarray[Any, Any]]:
    if isinstance(entry, Decisions):
        return entry, entry.predicted
    if isinstance(entry, tuple) and len(entry) in (2, 3):
        proba, policy = entry[0], entry[1]
        extras = entry[2] if len(entry) == 3 else {}
        if not hasattr(policy, "decide"):
            raise InputError(
                f"compare: the entry for {name!r} must be (proba, policy[, extras]); its second "
                f"item is a {type(policy).__name__}, not a fitted Policy."
            )
        if not isinstance(extras, Mapping):
            raise InputError(
                f"compare: extras for {name!r} must be a mapping such as "
                f"{{'ood_score': ..., 'fallback': ...}}; got {type(extras).__name__}."
            )
        decisions = policy.decide(proba, **extras)
        return decisions, decisions.predicted
    raise InputError(
        f"compare: the entry for {name!r} must be (proba, policy), (proba, policy, extras) or "
        f"Decisions; got {type(entry).__name__}."
    )


def compare(
    models: Mapping[str, Any],
    y_true: ArrayLike,
    outcome_model: OutcomeModel | None = None,
    **project_kwargs: Any,
) -> Comparison:
    """Project product metrics for several models on one evaluation set and rank them.

    Parameters
    ----------
    models : mapping of str to (proba, policy) or (proba, policy, extras) or Decisions
        ``proba`` are calibrated probabilities on the evaluation inputs; ``policy`` a fitted
        :class:`Policy`; ``extras`` keyword arguments for ``policy.decide`` (``ood_score``,
        ``fallback``).
    y_true : array-like of shape (n_samples,)
        True labels, ``-1`` for out-of-scope inputs.
    outcome_model : OutcomeModel, optional
    **project_kwargs
        Passed to :func:`project` (``n_bootstrap``, ``random_state``, ...).

    Returns
    -------
    Comparison
        Rows ranked by task completion; each carries accuracy (top label over all inputs,
        out-of-scope inputs counted wrong) and in-scope accuracy beside the product metrics.
    """
    if not isinstance(models, Mapping) or not models:
        raise InputError(
            "compare: `models` must be a non-empty mapping {name: (proba, policy)}; got "
            f"{type(models).__name__}."
        )
    y = check_labels(y_true, "y_true", allow_out_of_scope=True)
    model = outcome_model if outcome_model is not None else OutcomeModel()
    rows = []
    for name, entry in models.items():
        decisions, predicted = _unpack(str(name), entry)
        metrics = project(decisions, y, model, **project_kwargs)
        in_scope = y >= 0
        rows.append(
            ComparisonRow(
                name=str(name),
                accuracy=float(np.mean(predicted == y)),
                in_scope_accuracy=float(np.mean(predicted[in_scope] == y[in_scope]))
                if in_scope.any()
                else float("nan"),
                metrics=metrics,
                action_rates={a.value: r for a, r in decisions.rates().items()},
            )
        )
    rows.sort(key=lambda r: -r.metrics.task_completion_rate.value)
    return Comparison(rows=rows, outcome_model=model)
