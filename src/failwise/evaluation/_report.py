"""Turn an :class:`EvaluationResult` into the self-contained HTML report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from failwise import __version__
from failwise.evaluation._pipeline import EvaluationResult, ModelEvaluation
from failwise.metrics import risk_coverage_curve
from failwise.outcomes import ProductMetrics, task_paths
from failwise.policy import Action
from failwise.report import Assumption, MetricValue, ModelSection, ReliabilityBins, write_report

__all__ = ["build_report", "model_section"]

#: What the answer threshold is set on, by the policy's ``answer_score``.
_SCORE_NAMES = {"confidence": "confidence", "log_odds": "top-two log-odds"}

_UNITS = {
    "time_to_correct_output_median_s": "s",
    "time_to_correct_output_p90_s": "s",
    "human_hours_per_1000_tasks": "h",
}


def _metric_values(metrics: ProductMetrics) -> dict[str, MetricValue]:
    out = {}
    for name in metrics.metric_names():
        est = getattr(metrics, name)
        low = None if math.isnan(est.low) else est.low
        high = None if math.isnan(est.high) else est.high
        out[name] = MetricValue(est.value, low, high, _UNITS.get(name, "%"))
    return out


def model_section(evaluation: ModelEvaluation, y_test: np.ndarray) -> ModelSection:
    """One report section: reliability before/after, risk–coverage, ladder breakdown."""
    y = np.asarray(y_test)
    in_scope = y >= 0
    raw, cal = evaluation.proba_uncalibrated, evaluation.proba
    before = ReliabilityBins.from_predictions(
        raw[in_scope].max(axis=1), raw[in_scope].argmax(axis=1) == y[in_scope]
    )
    after = ReliabilityBins.from_predictions(
        cal[in_scope].max(axis=1), cal[in_scope].argmax(axis=1) == y[in_scope]
    )
    decisions = evaluation.decisions
    correct = decisions.predicted == y
    curve = risk_coverage_curve(decisions.confidence, correct)
    answered = decisions.mask(Action.ANSWER)
    op_cov = float(answered.mean())
    op_risk = float(np.mean(~correct[answered])) if answered.any() else float("nan")
    paths = task_paths(decisions, y)
    # For handoffs, "correct" means the handoff was warranted (the model's label was wrong).
    right = np.where(
        decisions.action_codes == Action.CLARIFY.code,
        paths.set_has_truth,
        np.where(
            np.isin(decisions.action_codes, [Action.ESCALATE.code, Action.ABSTAIN.code]),
            ~correct,
            paths.output_correct,
        ),
    )
    counts = {
        action.value: (
            int((decisions.mask(action) & right).sum()),
            int((decisions.mask(action) & ~right).sum()),
        )
        for action in Action
    }
    ctx = evaluation.policy.describe()
    threshold = ctx["answer_threshold"]
    summary = (
        f"answer when calibrated {_SCORE_NAMES[ctx.get('answer_score', 'confidence')]} ≥ "
        f"{threshold:.3f} ({ctx['answer_basis']})"
        if math.isfinite(threshold)
        else "no answer threshold could be certified: nothing is answered automatically"
    )
    if math.isfinite(ctx["ood_threshold"]):
        summary += f"; out-of-scope screen at score {ctx['ood_threshold']:.3f}"
    summary += f"; temperature {evaluation.calibrator.temperature_:.3f}"
    automation = evaluation.automation
    notes: list[str] = []
    risk_in_scope = float("nan")
    headline = ""
    if automation is not None:
        headline = automation.headline
        if automation.test_risk_in_scope is not None:
            risk_in_scope = automation.test_risk_in_scope
        notes.extend(n for n in (automation.risk_note, *automation.screen_notes) if n)
    return ModelSection(
        name=evaluation.name,
        accuracy=evaluation.in_scope_accuracy,
        before=before,
        after=after,
        coverage=np.asarray(curve.coverage, dtype=float),
        risk=np.asarray(curve.risk, dtype=float),
        operating_coverage=op_cov,
        operating_risk=op_risk,
        target_risk=evaluation.policy.target_risk,
        outcome_counts=counts,
        metrics=_metric_values(evaluation.metrics),
        policy_summary=summary,
        headline=headline,
        operating_risk_in_scope=risk_in_scope,
        notes=notes,
        frontier=[
            (row.target_risk, row.confidence_level, row.coverage, row.rows_needed)
            for row in evaluation.frontier
        ],
    )


def build_report(result: EvaluationResult, path: str | Path, *, title: str, dataset: str) -> Path:
    """Write the HTML report of ``result`` to ``path``; return the absolute path."""
    sections = [model_section(m, result.y_test) for m in result.models]
    assumptions = [
        Assumption(a.name, a.formatted(), a.reason) for a in result.outcome_model.assumptions()
    ]
    notes = [
        "Calibrators are fitted on 30% of the in-scope validation rows and the ladder on the rest; "
        "every number is measured on test rows neither has seen.",
        "In the outcome breakdown, escalate and abstain count as correct when the handoff was "
        "warranted (the model's top label was wrong or the input was out of scope).",
    ]
    for m in result.models:
        base = result.baselines.get(m.name)
        if base is not None:
            notes.append(
                f"{m.name} without failure handling (always answering): task completion "
                f"{base.task_completion_rate.value:.1%}, silent failures "
                f"{base.silent_failure_rate.value:.1%}."
            )
    for m in result.models:
        if m.oos_recall is not None:
            notes.append(
                f"{m.name}, Larson et al. (2019) definitions: in-scope accuracy "
                f"{m.larson_in_scope_accuracy:.1%}, out-of-scope recall {m.oos_recall:.1%}."
            )
    for name, acc, rec in result.published:
        notes.append(f"Published, Larson et al. (2019) {name}: {acc:.1f}% / {rec:.1f}%.")
    return write_report(
        path,
        title=title,
        dataset=dataset,
        sections=sections,
        assumptions=assumptions,
        generated_by=f"failwise {__version__}",
        notes=notes,
    )
