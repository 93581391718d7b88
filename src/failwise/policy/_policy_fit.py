"""The threshold fits behind `Policy.fit`: answer threshold, fallback trust, abstain floor.

Plain functions: each takes what it needs and returns the fitted values; `Policy.fit` sets
the attributes from them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise._stats import wilson_lower
from failwise.exceptions import UncertifiedWarning
from failwise.policy._conformal import ConformalPredictionSets
from failwise.policy._costs import OutcomeCosts
from failwise.policy._decision import NO_OPINION, Action
from failwise.policy._frontier import CertificationFrontier, certification_frontier
from failwise.policy._ladder import LadderState, run_ladder
from failwise.policy._policy_summary import frontier_hint
from failwise.policy._risk import RiskThreshold
from failwise.policy._rungs import ClarifyRung, EscalateRung, FallbackRung, Rung

__all__ = [
    "AnswerFit",
    "Downstream",
    "fallback_floor",
    "fit_abstain_floor",
    "fit_answer_threshold",
    "fit_fallback_trust",
]


@dataclass(frozen=True)
class Downstream:
    """The rungs below answering (clarify, fallback, escalate), as fitted so far."""

    prediction_sets: ConformalPredictionSets | None
    clarify_max_set_size: int
    fallback_trusted: NDArray[np.bool_]
    escalate: bool

    def run(
        self,
        P: NDArray[Any],
        confidence: NDArray[np.float64],
        predicted: NDArray[np.intp],
        handoff: NDArray[np.bool_],
        fb: NDArray[np.intp] | None,
    ) -> LadderState:
        """What the ladder does with each row if the model does not answer it."""
        state = LadderState(P, confidence, predicted, None, fb)
        state.handoff = handoff.copy()
        rungs: list[Rung] = []
        if self.prediction_sets is not None:
            rungs.append(ClarifyRung(self.prediction_sets, self.clarify_max_set_size))
        rungs.append(FallbackRung(self.fallback_trusted))
        rungs.append(EscalateRung(self.escalate))
        return run_ladder(state, rungs)


@dataclass(frozen=True)
class AnswerFit:
    """The fitted answer threshold, the objective it serves and its risk certificate."""

    threshold: float
    mode: str
    certified: bool
    risk_control: RiskThreshold | None
    frontier: CertificationFrontier | None


def fit_answer_threshold(
    P: NDArray[Any],
    labels: NDArray[np.intp],
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    handoff: NDArray[np.bool_],
    fb: NDArray[np.intp] | None,
    *,
    downstream: Downstream,
    target_risk: float | None,
    confidence_level: float,
    bound: str,
    costs: OutcomeCosts | None,
    max_escalation_rate: float | None,
) -> AnswerFit:
    """Fit the answer threshold for the objective stated (cost, then risk, then capacity).

    ``confidence`` is the score the threshold is set on (the policy's ``answer_score``).

    Warns (:class:`UncertifiedWarning`, attributed to the caller of ``Policy.fit``) when a
    risk target is set and no threshold certifies it.
    """
    eligible = ~handoff
    certified = -np.inf
    risk_control: RiskThreshold | None = None
    frontier: CertificationFrontier | None = None
    is_certified = False
    if target_risk is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncertifiedWarning)
            control = RiskThreshold(
                target_risk=target_risk,
                confidence_level=confidence_level,
                bound=bound,
            ).fit(confidence[eligible], correct[eligible])
        risk_control = control
        is_certified = bool(control.certified_)
        certified = float(control.threshold_)
        frontier = certification_frontier(
            confidence[eligible],
            correct[eligible],
            target_risk=target_risk,
            confidence_level=confidence_level,
            bound=bound,
        )
        if not control.certified_:
            warnings.warn(
                f"No answer threshold certifies selective risk ≤ {target_risk:g} at "
                f"confidence {confidence_level:g} on these {int(eligible.sum())} "
                "validation rows: the policy will answer nothing automatically. "
                f"{frontier_hint(frontier)}Add labelled validation data, raise "
                "`target_risk` or lower `confidence_level`.",
                UncertifiedWarning,
                stacklevel=3,
            )
    if costs is not None:
        optimal = _cost_optimal_threshold(
            P, labels, confidence, correct, handoff, fb, downstream, costs
        )
        return AnswerFit(max(optimal, certified), "cost", is_certified, risk_control, frontier)
    if target_risk is not None:
        return AnswerFit(certified, "risk", is_certified, risk_control, frontier)
    threshold = _capacity_threshold(
        P, confidence, correct, handoff, fb, downstream, max_escalation_rate
    )
    return AnswerFit(threshold, "capacity", is_certified, risk_control, frontier)


def _candidate_order(
    confidence: NDArray[np.float64], eligible: NDArray[np.bool_]
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    rows = np.flatnonzero(eligible)
    order = rows[np.argsort(-confidence[rows], kind="stable")]
    return order, confidence[order]


def _capacity_threshold(
    P: NDArray[Any],
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    handoff: NDArray[np.bool_],
    fb: NDArray[np.intp] | None,
    downstream: Downstream,
    max_escalation_rate: float | None,
) -> float:
    predicted = P.argmax(axis=1)
    state = downstream.run(P, confidence, predicted, handoff, fb)
    escalated = state.action_codes == Action.ESCALATE.code
    budget = float(max_escalation_rate or 0.0) * confidence.shape[0]
    fixed = int((escalated & handoff).sum())
    order, sorted_conf = _candidate_order(confidence, ~handoff)
    # Answering the top-i rows leaves escalated[order[i:]] (+ fixed) for humans.
    tail = np.concatenate([np.cumsum(escalated[order][::-1])[::-1], [0]])
    feasible = np.flatnonzero(tail + fixed <= budget)
    i = int(feasible[0]) if feasible.size else order.size
    if i == 0:
        return float(np.inf) if order.size == 0 else float(np.nextafter(sorted_conf[0], 2))
    # Answer rows 0..i-1; ties at the boundary are answered together.
    return float(sorted_conf[i - 1])


def _cost_optimal_threshold(
    P: NDArray[Any],
    labels: NDArray[np.intp],
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    handoff: NDArray[np.bool_],
    fb: NDArray[np.intp] | None,
    downstream: Downstream,
    costs: OutcomeCosts,
) -> float:
    predicted = P.argmax(axis=1)
    state = downstream.run(P, confidence, predicted, handoff, fb)
    below = _row_costs(state, labels, costs)
    answer_cost = np.where(correct, 0.0, costs.wrong_answer)
    order, sorted_conf = _candidate_order(confidence, ~handoff)
    gain = np.concatenate([[0.0], np.cumsum(answer_cost[order] - below[order])])
    # Only cut between distinct confidences: tied rows are answered together.
    boundary = np.concatenate([[True], sorted_conf[1:] < sorted_conf[:-1], [True]])
    gain[~boundary] = np.inf
    i = int(np.argmin(gain))
    if i == 0:
        return float(np.inf) if order.size == 0 else float(np.nextafter(sorted_conf[0], 2))
    return float(sorted_conf[i - 1])


def _row_costs(
    state: LadderState, labels: NDArray[np.intp], costs: OutcomeCosts
) -> NDArray[np.float64]:
    codes = state.action_codes
    cost = np.zeros(codes.shape[0])
    cost[codes == Action.ESCALATE.code] = costs.escalate
    cost[codes == Action.ABSTAIN.code] = costs.abstain
    fallback = codes == Action.FALLBACK.code
    fb_wrong = fallback & (state.label != labels) & (labels >= 0)
    cost[fallback] = costs.fallback
    cost[fb_wrong] += costs.wrong_answer
    clarify_rows = state.set_rows
    if clarify_rows.size:
        truth = labels[clarify_rows]
        hit = (truth >= 0) & state.set_masks[np.arange(clarify_rows.size), np.maximum(truth, 0)]
        cost[clarify_rows] = costs.clarify + np.where(hit, 0.0, costs.failed_clarification)
    return cost


def fallback_floor(
    fallback_min_accuracy: float | None, costs: OutcomeCosts | None, escalate: bool
) -> float:
    """The accuracy a fallback output needs to be trusted (given, from costs, else 0.9)."""
    if fallback_min_accuracy is not None:
        return float(fallback_min_accuracy)
    if costs is not None:
        alternative = costs.escalate if escalate else costs.abstain
        gap = alternative - costs.fallback
        return float(np.clip(1.0 - gap / max(costs.wrong_answer, 1e-12), 0.0, 1.0))
    return 0.9


def fit_fallback_trust(
    P: NDArray[Any],
    labels: NDArray[np.intp],
    confidence: NDArray[np.float64],
    handoff: NDArray[np.bool_],
    fb: NDArray[np.intp],
    threshold: float,
    *,
    downstream: Downstream,
    n_classes: int,
    confidence_level: float,
    floor: float,
) -> tuple[NDArray[np.bool_], float | None]:
    """Trust each fallback output whose accuracy on the rows it would handle is high enough.

    Returns which outputs are trusted (index 0 is the out-of-scope label -1) and the
    fallback's accuracy on the rows it fires on; ``downstream.fallback_trusted`` and None
    when it fires on none.
    """
    reach = handoff | (confidence < threshold)
    if downstream.prediction_sets is not None:
        state = downstream.run(P, confidence, P.argmax(axis=1), handoff, None)
        reach &= state.action_codes != Action.CLARIFY.code
    fires = reach & (fb != NO_OPINION)
    if not fires.any():
        return downstream.fallback_trusted, None
    hit = fb == labels
    # An out-of-scope input sent to the fallback is handled correctly whatever it says.
    hit |= labels < 0
    k = n_classes + 1
    outputs = fb[fires] + 1
    trials = np.bincount(outputs, minlength=k)
    successes = np.bincount(outputs, weights=hit[fires].astype(float), minlength=k)
    pooled = float(wilson_lower(successes.sum(), trials.sum(), confidence_level))
    per_label = wilson_lower(successes, trials, confidence_level)
    # Outputs seen fewer than 5 times on validation data borrow the pooled estimate.
    estimate = np.where(trials >= 5, per_label, pooled)
    return estimate >= floor, float(successes.sum() / trials.sum())


def fit_abstain_floor(
    action_codes: NDArray[np.int8],
    confidence: NDArray[np.float64],
    max_escalation_rate: float | None,
) -> float:
    """Confidence below which escalations abstain so that humans get at most their share.

    ``action_codes`` are the fitted ladder's actions on the validation rows; ``-inf`` when
    the escalations already fit.
    """
    escalated = np.flatnonzero(action_codes == Action.ESCALATE.code)
    budget = int(np.floor(float(max_escalation_rate or 0.0) * confidence.shape[0]))
    if escalated.size <= budget:
        return -np.inf
    # Keep the `budget` most confident escalations (ties at the boundary abstain together).
    conf = np.sort(confidence[escalated])[::-1]
    return float(np.nextafter(conf[budget - 1], 2)) if budget else np.inf
