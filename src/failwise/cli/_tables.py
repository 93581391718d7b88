"""The result tables of `failwise demo` and `failwise evaluate`, readable at 80 columns.

Metrics are rows and models are columns, so a table stays narrow however many metrics there
are; long text (the reason behind an assumption) wraps inside its cell instead of being cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from failwise.evaluation import EvaluationResult, ModelEvaluation
from failwise.outcomes import Estimate, ProductMetrics

__all__ = ["print_result"]

_ACTIONS = ("answer", "clarify", "fallback", "escalate", "abstain")


def _pct(est: Estimate | float | None, ci: bool = False) -> str:
    if est is None:
        return "–"
    value = est.value if isinstance(est, Estimate) else float(est)
    if math.isnan(value):
        return "n/a"
    text = f"{value:.1%}"
    if ci and isinstance(est, Estimate) and not math.isnan(est.low):
        text += f" [dim]({est.low:.1%}–{est.high:.1%})[/dim]"
    return text


def _secs(est: Estimate) -> str:
    value = est.value
    if math.isnan(value):
        return "n/a"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _table(title: str, first: str, models: list[ModelEvaluation]) -> Table:
    table = Table(
        title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False
    )
    table.add_column(first, no_wrap=True)
    for rank, model in enumerate(models, start=1):
        label = f"{rank}. {model.name}" if len(models) > 1 else model.name
        table.add_column(escape(label), justify="right", overflow="fold")
    return table


def _ranked(result: EvaluationResult) -> list[ModelEvaluation]:
    by_name = {m.name: m for m in result.models}
    return [by_name[row.name] for row in result.comparison.rows]


def _metrics_table(result: EvaluationResult, models: list[ModelEvaluation]) -> Table:
    table = _table("What users get (test rows)", "metric", models)
    baselines: list[ProductMetrics | None] = [result.baselines.get(m.name) for m in models]
    rows: list[tuple[str, list[str]]] = [
        ("accuracy (in scope)", [_pct(m.in_scope_accuracy) for m in models]),
        ("task completion", [_pct(m.metrics.task_completion_rate) for m in models]),
        (
            "  95% interval",
            [
                "n/a"
                if math.isnan(m.metrics.task_completion_rate.low)
                else f"[dim]{m.metrics.task_completion_rate.low:.1%}–"
                f"{m.metrics.task_completion_rate.high:.1%}[/dim]"
                for m in models
            ],
        ),
        (
            "  without the ladder",
            [_pct(b.task_completion_rate) if b else "–" for b in baselines],
        ),
        ("answered automatically", [_pct(_rate(m, "answer")) for m in models]),
        ("automated (+ fallback)", [_pct(m.metrics.automation_rate) for m in models]),
        ("escalation", [_pct(m.metrics.escalation_rate) for m in models]),
        ("recovery", [_pct(m.metrics.recovery_rate) for m in models]),
        ("silent failures", [_pct(m.metrics.silent_failure_rate) for m in models]),
        (
            "time to correct, median",
            [_secs(m.metrics.time_to_correct_output_median_s) for m in models],
        ),
        (
            "time to correct, p90",
            [_secs(m.metrics.time_to_correct_output_p90_s) for m in models],
        ),
    ]
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def _rate(model: ModelEvaluation, action: str) -> float:
    return float({a.value: r for a, r in model.decisions.rates().items()}[action])


def _ladder_table(models: list[ModelEvaluation]) -> Table:
    table = _table("The decision ladder on the test rows", "share of requests", models)
    rates = [{a.value: r for a, r in m.decisions.rates().items()} for m in models]
    for action in _ACTIONS:
        table.add_row(action, *[_pct(r[action]) for r in rates])
    risk_cells = []
    for m in models:
        auto = m.automation
        if auto is None or auto.test_risk is None:
            risk_cells.append("nothing answered")
            continue
        text = _pct(auto.test_risk)
        if auto.target_risk is not None:
            over = auto.test_risk > auto.target_risk + 1e-12
            text += f" {'>' if over else '≤'} {auto.target_risk:.1%}"
            if over:
                text = f"[yellow]{text}[/yellow]"
        risk_cells.append(text)
    table.add_row("wrong among answers", *risk_cells)
    table.add_row(
        "  in scope only",
        *[
            "–"
            if m.automation is None or m.automation.test_risk_in_scope is None
            else _pct(m.automation.test_risk_in_scope)
            for m in models
        ],
    )
    thresholds = []
    for m in models:
        threshold = m.policy.describe()["answer_threshold"]
        thresholds.append("never" if not math.isfinite(threshold) else f"{threshold:.3f}")
    table.add_row("answer threshold", *thresholds)
    table.add_row(
        "certified",
        *["yes" if m.policy.describe().get("certified") else "no" for m in models],
    )
    table.add_row("ECE before", *[f"{m.ece_before:.3f}" for m in models])
    table.add_row("ECE after", *[f"{m.ece_after:.3f}" for m in models])
    return table


def _larson_table(result: EvaluationResult, models: list[ModelEvaluation]) -> Table | None:
    larson = [m for m in models if m.oos_recall is not None]
    if not larson:
        return None
    table = Table(
        title="Out-of-scope handling, Larson et al. (2019) definitions",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("model", overflow="fold")
    table.add_column("in-scope accuracy", justify="right", no_wrap=True)
    table.add_column("out-of-scope recall", justify="right", no_wrap=True)
    for m in larson:
        table.add_row(escape(m.name), _pct(m.larson_in_scope_accuracy), _pct(m.oos_recall))
    for name, acc, rec in result.published:
        table.add_row(
            f"[dim]paper: {escape(name)}[/dim]", f"[dim]{acc:.1f}%[/dim]", f"[dim]{rec:.1f}%[/dim]"
        )
    return table


def _frontier_table(models: list[ModelEvaluation]) -> Table | None:
    """Certified coverage per target risk (rows) and model (columns), with rows still needed."""
    with_frontier = [m for m in models if m.frontier]
    if not with_frontier:
        return None
    levels = sorted({row.confidence_level for m in with_frontier for row in m.frontier})
    level = ", ".join(f"{lv:.0%}" for lv in levels)
    table = _table(
        f"What the validation data certifies, at {level} confidence", "target risk", with_frontier
    )
    table.caption = (
        "coverage certified at each target; (+N rows): about N more labelled rows would "
        "certify it at the observed error rate; (more rows cannot): improve the model or "
        "raise the target"
    )
    table.caption_justify = "left"
    targets = sorted({row.target_risk for m in with_frontier for row in m.frontier})
    requested = {m.policy.target_risk for m in with_frontier}
    for target in targets:
        cells = []
        for m in with_frontier:
            row = next((r for r in m.frontier if abs(r.target_risk - target) < 1e-12), None)
            if row is None:
                cells.append("–")
                continue
            text = _pct(row.coverage)
            if row.rows_needed is None and row.coverage == 0:
                text += " (more rows cannot)"
            elif row.rows_needed:
                text += f" (+{row.rows_needed:,} rows)"
            cells.append(text)
        label = f"{target:.1%}" + (" (yours)" if target in requested else "")
        table.add_row(label, *cells)
    return table


def _assumptions_table(result: EvaluationResult) -> Table:
    table = Table(
        title="Outcome model (the assumptions behind every projected number; change them "
        "with --outcome-model FILE)",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("assumption", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("why", ratio=1)
    for a in result.outcome_model.assumptions():
        table.add_row(a.name, a.formatted(), escape(a.reason))
    return table


def tables(result: EvaluationResult) -> list[Any]:
    """Every result table, in print order."""
    models = _ranked(result)
    out: list[Any] = [_metrics_table(result, models), _ladder_table(models)]
    for extra in (_larson_table(result, models), _frontier_table(models)):
        if extra is not None:
            out.append(extra)
    out.append(_assumptions_table(result))
    return out


def print_result(
    result: EvaluationResult,
    title: str,
    console: Console,
    speak: Callable[[str], str] = lambda text: text,
) -> None:
    """Print the headline, the notes on test-time risk and every table to ``console``.

    ``speak`` rewords library messages for the reader (the CLI names its flags).
    """
    console.print(f"[bold]{escape(title)}[/bold]")
    for line in result.headlines():
        console.print(escape(speak(line)))
    for m in _ranked(result):
        if m.automation is None:
            continue
        for note in (m.automation.risk_note, *m.automation.screen_notes):
            if note:
                console.print(f"[yellow]{escape(speak(note))}[/yellow]")
    for table in tables(result):
        console.print()
        console.print(table)
