"""What a fitted `Policy` reports: `describe()`, its validation summary, certificate hints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from failwise.policy._decision import Action, Decisions
from failwise.policy._frontier import CertificationFrontier

if TYPE_CHECKING:
    from failwise.policy._policy import Policy

__all__ = ["answer_basis", "describe_policy", "frontier_hint", "validation_summary"]


def answer_basis(policy: Policy) -> str:
    """One phrase on what the answer threshold guarantees, for the policy's objective."""
    if policy.mode_ == "risk":
        return (
            f"certified selective risk ≤ {policy.target_risk:g} at confidence "
            f"{policy.confidence_level:g}"
        )
    if policy.mode_ == "capacity":
        return f"at most {policy.max_escalation_rate:g} of traffic escalated"
    return "lowest expected outcome cost on validation data"


def describe_policy(policy: Policy) -> dict[str, Any]:
    """The fitted thresholds and their basis, as plain data (see :meth:`Policy.describe`)."""
    return {
        "mode": policy.mode_,
        "answer_basis": answer_basis(policy),
        "answer_threshold": policy.answer_threshold_,
        "answer_score": policy.answer_score,
        "ood_threshold": policy.ood_threshold_,
        "clarify_coverage": policy.clarify_coverage,
        "clarify_max_set_size": policy.clarify_max_set_size,
        "fallback_accuracy": policy.fallback_accuracy_,
        "abstain_below": policy.abstain_below_,
        "certified": policy.certified_,
        "frontier": None if policy.frontier_ is None else policy.frontier_.to_dict(),
        "ood_screen": None if policy.ood_screen_ is None else policy.ood_screen_.to_dict(),
    }


def validation_summary(decisions: Decisions, labels: NDArray[np.intp]) -> dict[str, Any]:
    """Rates of each action, coverage and selective risk of ``decisions`` against ``labels``."""
    answered = decisions.mask(Action.ANSWER)
    n_answered = int(answered.sum())
    wrong = int((decisions.label[answered] != labels[answered]).sum())
    return {
        "n_samples": int(labels.shape[0]),
        "rates": {a.value: r for a, r in decisions.rates().items()},
        "coverage": n_answered / labels.shape[0],
        "selective_risk": wrong / n_answered if n_answered else float("nan"),
    }


def frontier_hint(frontier: CertificationFrontier) -> str:
    """One or two sentences on what the data does certify and what the target needs."""
    parts = []
    best = frontier.best_target()
    if best is not None:
        parts.append(
            f"This data would certify {best.coverage:.1%} answered at target_risk="
            f"{best.target_risk:g} (policy.frontier_ lists every target); choosing the "
            "target after seeing this frontier voids the guarantee on these rows, so fit the "
            "new target on fresh labels."
        )
    if frontier.additional_rows is not None:
        parts.append(
            f"At the observed error rate ({frontier.observed_error_rate:.2%} among the "
            f"{frontier.planned_coverage:.0%} most confident rows), target_risk="
            f"{frontier.target_risk:g} needs about {frontier.additional_rows} more labelled "
            "rows."
        )
    return " ".join(parts) + (" " if parts else "")
