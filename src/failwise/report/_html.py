"""Render the self-contained HTML report.

The page is one file: inline CSS and inline SVG, no scripts, fonts, images or
links to other hosts, so it opens offline and can be attached to a ticket. The
template ships in the package (``templates/report.html.j2``) and is rendered by
Jinja2 with autoescaping on; the charts are built in :mod:`._charts` with every
text escaped.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.report._catalogue import ACTIONS, METRIC_NAMES, metric_info
from failwise.report._charts import (
    accuracy_completion_chart,
    outcome_breakdown_chart,
    reliability_diagram,
    risk_coverage_chart,
)
from failwise.report._headline import automation_headline, headline, operating_text
from failwise.report._model import Assumption, MetricValue
from failwise.report._section import ModelSection

__all__ = ["format_metric", "render_report", "write_report"]

_TEMPLATE = "report.html.j2"

#: What each ladder action means, for the breakdown table.
_ACTION_HELP = {
    "answer": "The model's label was returned automatically.",
    "clarify": "The user was asked to pick among a few likely labels.",
    "fallback": "Deterministic logic (rules, lookups, a safe default) handled the input.",
    "escalate": "The input went to a human through the review queue.",
    "abstain": "The system said plainly that it was not sure.",
}


# ---------------------------------------------------------------------------------------------
# Number formatting
# ---------------------------------------------------------------------------------------------


def _seconds_scale(seconds: float) -> tuple[float, str]:
    if abs(seconds) < 90:
        return 1.0, "s"
    if abs(seconds) < 90 * 60:
        return 60.0, "min"
    return 3600.0, "h"


def format_metric(metric: MetricValue) -> tuple[str, str]:
    """Format a metric and its interval for display.

    Percentages get one decimal; seconds are shown in s, min or h, whichever
    reads best; an undefined value (``NaN``) is shown as a dash.

    Parameters
    ----------
    metric : MetricValue
        The value to format.

    Returns
    -------
    value : str
        E.g. ``"87.3%"`` or ``"4.2 s"``.
    interval : str
        E.g. ``"85.1–89.2%"``; empty when the metric has no interval.

    Examples
    --------
    >>> format_metric(MetricValue(0.8734, low=0.8512, high=0.8921))
    ('87.3%', '85.1–89.2%')
    >>> format_metric(MetricValue(312.0, unit="s"))
    ('5.2 min', '')
    """
    value, low, high, unit = metric.value, metric.low, metric.high, metric.unit
    if math.isnan(value):
        return "—", ""
    if unit == "%":
        scale, suffix, sep = 100.0, "%", ""
    elif unit == "s":
        scale, suffix = _seconds_scale(value)
        scale, sep = 1.0 / scale, " "
    elif unit == "h":
        scale, suffix, sep = 1.0, "h", " "
    else:
        scale, suffix, sep = 1.0, "", ""
    text = f"{value * scale:,.1f}{sep}{suffix}"
    interval = ""
    if low is not None and high is not None:
        interval = f"{low * scale:,.1f}–{high * scale:,.1f}{sep}{suffix}"
    elif low is not None:
        interval = f"≥ {low * scale:,.1f}{sep}{suffix}"
    elif high is not None:
        interval = f"≤ {high * scale:,.1f}{sep}{suffix}"
    return text, interval


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 100:.1f}%"


# ---------------------------------------------------------------------------------------------
# View model: what the template lays out, already formatted
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    text: str
    interval: str = ""
    best: bool = False


@dataclass(frozen=True)
class _Column:
    key: str
    label: str
    help: str


@dataclass(frozen=True)
class _Card:
    label: str
    text: str
    interval: str
    help: str


@dataclass(frozen=True)
class _BreakdownRow:
    action: str
    help: str
    inputs: str
    share: str
    correct: str
    incorrect: str
    correct_share: str


@dataclass
class _SectionView:
    anchor: str
    rank: int
    name: str
    accuracy: str
    policy_summary: str
    cards: list[_Card]
    before: Markup
    after: Markup
    before_ece: str
    after_ece: str
    risk_coverage: Markup
    operating: str
    breakdown: Markup
    breakdown_rows: list[_BreakdownRow]
    breakdown_total: _BreakdownRow
    cells: list[_Cell] = field(default_factory=list)
    headline: str = ""
    notes: list[str] = field(default_factory=list)
    frontier: list[tuple[str, str, str, str]] = field(default_factory=list)


def _ranked(sections: Sequence[ModelSection]) -> list[ModelSection]:
    def key(item: tuple[int, ModelSection]) -> tuple[float, float, int]:
        index, section = item
        done = section.metrics["task_completion_rate"].value
        return (-done if not math.isnan(done) else math.inf, -section.accuracy, index)

    return [s for _, s in sorted(enumerate(sections), key=key)]


def _columns(sections: Sequence[ModelSection]) -> list[_Column]:
    present = {name for s in sections for name in s.metrics}
    columns = []
    for name in METRIC_NAMES:
        info = metric_info(name)
        if name not in present or info is None:
            continue
        if name == "time_to_correct_output_median_s":
            # One column: the median, with the p90 underneath where the interval would go.
            columns.append(_Column(name, "Time to correct (median, p90)", info.help))
        elif (
            name == "time_to_correct_output_p90_s" and "time_to_correct_output_median_s" in present
        ):
            continue
        else:
            columns.append(_Column(name, info.label, info.help))
    extras: list[str] = []
    for section in sections:
        extras += [n for n in section.metrics if n not in METRIC_NAMES and n not in extras]
    columns += [_Column(n, n, "") for n in extras]
    return columns


def _best_values(sections: Sequence[ModelSection], columns: Sequence[_Column]) -> dict[str, float]:
    """The best value per known column, where there is a contest to win."""
    best: dict[str, float] = {}
    if len(sections) < 2:
        return best
    accuracies = [s.accuracy for s in sections]
    if len(set(accuracies)) > 1:
        best["accuracy"] = max(accuracies)
    for column in columns:
        info = metric_info(column.key)
        if info is None:
            continue
        values = [
            s.metrics[column.key].value
            for s in sections
            if column.key in s.metrics and not math.isnan(s.metrics[column.key].value)
        ]
        if len(values) >= 2 and len(set(values)) > 1:
            best[column.key] = max(values) if info.higher_is_better else min(values)
    return best


def _cards(section: ModelSection) -> list[_Card]:
    cards = []
    metrics = section.metrics
    for name in [*METRIC_NAMES, *[n for n in metrics if n not in METRIC_NAMES]]:
        if name not in metrics or name == "time_to_correct_output_p90_s":
            continue
        info = metric_info(name)
        text, interval = format_metric(metrics[name])
        label = info.label if info is not None else name
        if name == "time_to_correct_output_median_s":
            label = "Time to correct, median"
            if "time_to_correct_output_p90_s" in metrics:
                interval = f"p90 {format_metric(metrics['time_to_correct_output_p90_s'])[0]}"
        cards.append(_Card(label, text, interval, info.help if info is not None else ""))
    return cards


def _breakdown(section: ModelSection) -> tuple[list[_BreakdownRow], _BreakdownRow]:
    counts = section.outcome_counts
    grand = sum(c + i for c, i in counts.values())
    rows = []
    for action in ACTIONS:
        good, bad = counts[action]
        total = good + bad
        rows.append(
            _BreakdownRow(
                action.capitalize(),
                _ACTION_HELP[action],
                f"{total:,}",
                _pct(total / grand),
                f"{good:,}",
                f"{bad:,}",
                _pct(good / total) if total else "—",
            )
        )
    good_all = sum(c for c, _ in counts.values())
    bad_all = grand - good_all
    total_row = _BreakdownRow(
        "All",
        "",
        f"{grand:,}",
        "100.0%",
        f"{good_all:,}",
        f"{bad_all:,}",
        _pct(good_all / grand),
    )
    return rows, total_row


def _section_view(
    section: ModelSection, rank: int, columns: Sequence[_Column], best: dict[str, float]
) -> _SectionView:
    uid = f"m{rank}"
    cells = [_Cell(_pct(section.accuracy), "", best.get("accuracy") == section.accuracy)]
    for column in columns:
        metric = section.metrics.get(column.key)
        if metric is None:
            cells.append(_Cell("—"))
            continue
        text, interval = format_metric(metric)
        if (
            column.key == "time_to_correct_output_median_s"
            and "time_to_correct_output_p90_s" in section.metrics
        ):
            interval = f"p90 {format_metric(section.metrics['time_to_correct_output_p90_s'])[0]}"
        cells.append(_Cell(text, interval, best.get(column.key) == metric.value))
    rows, total = _breakdown(section)
    return _SectionView(
        anchor=f"model-{rank}",
        rank=rank,
        name=section.name,
        accuracy=_pct(section.accuracy),
        policy_summary=section.policy_summary,
        cards=_cards(section),
        before=reliability_diagram(section.before, title="Before calibration", uid=f"{uid}-rb"),
        after=reliability_diagram(section.after, title="After calibration", uid=f"{uid}-ra"),
        before_ece=_pct(section.before.ece),
        after_ece=_pct(section.after.ece),
        risk_coverage=risk_coverage_chart(
            section.coverage,
            section.risk,
            operating_coverage=section.operating_coverage,
            operating_risk=section.operating_risk,
            target_risk=section.target_risk,
            uid=f"{uid}-rc",
        ),
        operating=operating_text(section),
        breakdown=outcome_breakdown_chart(dict(section.outcome_counts), uid=f"{uid}-ob"),
        breakdown_rows=rows,
        breakdown_total=total,
        cells=cells,
        headline=automation_headline(section),
        notes=list(section.notes),
        frontier=[
            (
                _pct(target),
                f"{level:.0%}",
                _pct(coverage),
                "–" if needed is None else f"{needed:,}",
            )
            for target, level, coverage, needed in section.frontier
        ],
    )


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("failwise.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _check_inputs(
    title: object,
    dataset: object,
    sections: object,
    assumptions: object,
    generated_by: object,
    notes: object,
) -> None:
    for name, value in (("title", title), ("dataset", dataset), ("generated_by", generated_by)):
        if not isinstance(value, str):
            raise InputError(f"render_report: `{name}` must be a string; got {describe(value)}.")
    if not isinstance(title, str) or not title.strip():
        raise InputError("render_report: `title` is empty; give the report a title.")
    for name, value, kind in (
        ("sections", sections, ModelSection),
        ("assumptions", assumptions, Assumption),
        ("notes", notes, str),
    ):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise InputError(
                f"render_report: `{name}` must be a sequence (list or tuple) of "
                f"{kind.__name__}; got {describe(value)}."
            )
        for i, item in enumerate(value):
            if not isinstance(item, kind):
                raise InputError(
                    f"render_report: `{name}[{i}]` must be a {kind.__name__}; got {describe(item)}."
                )
    if isinstance(sections, Sequence) and len(sections) == 0:
        raise InputError(
            "render_report: `sections` is empty; the report needs at least one ModelSection "
            "(one per model evaluated)."
        )
    if isinstance(sections, Sequence):
        names = [s.name for s in sections]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"render_report: model names must be unique; {duplicates!r} appear more than "
                "once. Name each model distinctly, e.g. add its calibrator or seed."
            )


def render_report(
    *,
    title: str,
    dataset: str,
    sections: Sequence[ModelSection],
    assumptions: Sequence[Assumption],
    generated_by: str,
    notes: Sequence[str] = (),
) -> str:
    """Render the comparison of models as one self-contained HTML page.

    The page shows, per model, reliability diagrams before and after
    calibration, the risk–coverage curve with the chosen operating point, and
    how the decision ladder's outcomes break down by action; across models, a
    table ranked by task completion and the outcome model's assumptions.
    It needs no network: inline CSS and SVG only, no scripts.

    Parameters
    ----------
    title : str
        Page title.
    dataset : str
        Description of the evaluation data (name, size, split, source).
    sections : sequence of ModelSection
        One per model, in any order; the page ranks them by task completion.
    assumptions : sequence of Assumption
        The outcome model's assumptions, listed beside the projection.
    generated_by : str
        Provenance line for the footer, e.g. the command that produced the page.
    notes : sequence of str, default=()
        Extra remarks shown under the comparison.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    InputError
        If ``sections`` is empty, model names repeat, or an argument has the wrong type.

    Examples
    --------
    >>> from failwise.report import MetricValue, ModelSection, ReliabilityBins
    >>> bins = ReliabilityBins.from_predictions([0.9, 0.7, 0.95, 0.6], [1, 0, 1, 1], n_bins=5)
    >>> section = ModelSection(
    ...     name="tf-idf + logistic regression", accuracy=0.75, before=bins, after=bins,
    ...     coverage=[0.25, 0.5, 0.75, 1.0], risk=[0.0, 0.0, 0.0, 0.25],
    ...     operating_coverage=0.75, operating_risk=0.0, target_risk=0.05,
    ...     outcome_counts={"answer": (3, 0), "escalate": (1, 0)},
    ...     metrics={"task_completion_rate": MetricValue(1.0, 0.4, 1.0)},
    ... )
    >>> page = render_report(title="Demo", dataset="4 toy inputs", sections=[section],
    ...                      assumptions=[], generated_by="doctest")
    >>> page.startswith("<!DOCTYPE html>"), page.count("<svg")
    (True, 5)
    """
    _check_inputs(title, dataset, sections, assumptions, generated_by, notes)
    ranked = _ranked(sections)
    columns = _columns(ranked)
    best = _best_values(ranked, columns)
    views = [_section_view(s, i + 1, columns, best) for i, s in enumerate(ranked)]
    summary_chart = accuracy_completion_chart(
        [
            (
                s.name,
                s.accuracy,
                s.metrics["task_completion_rate"].value,
                s.metrics["task_completion_rate"].low,
                s.metrics["task_completion_rate"].high,
            )
            for s in ranked
        ],
        uid="summary",
    )
    template = _environment().get_template(_TEMPLATE)
    return template.render(
        title=title,
        dataset=dataset,
        generated_by=generated_by,
        notes=list(notes),
        assumptions=list(assumptions),
        sections=views,
        columns=columns,
        headline=headline(ranked),
        summary_chart=summary_chart,
        action_help=_ACTION_HELP,
    )


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    dataset: str,
    sections: Sequence[ModelSection],
    assumptions: Sequence[Assumption],
    generated_by: str,
    notes: Sequence[str] = (),
) -> Path:
    """Render the report (see :func:`render_report`) and write it as UTF-8.

    Missing parent folders are created.

    Parameters
    ----------
    path : str or path-like
        Where to write the ``.html`` file; an existing file is replaced.
    title, dataset, sections, assumptions, generated_by, notes
        As in :func:`render_report`.

    Returns
    -------
    pathlib.Path
        The absolute path written.
    """
    page = render_report(
        title=title,
        dataset=dataset,
        sections=sections,
        assumptions=assumptions,
        generated_by=generated_by,
        notes=notes,
    )
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise InputError(
            f"write_report: `path` {str(target)!r} is a folder; pass a file name such as "
            f"{str(target / 'report.html')!r}."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
