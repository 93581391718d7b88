"""The monitor's report section: estimate against audit, drift p-values, blind spots.

:func:`render_monitor_report` takes the monitor's stored windows and findings as plain
data (``StoredWindow`` fields and ``StoredFinding.to_dict()``) and renders one
self-contained page (inline CSS and SVG, no scripts): per window the label-free accuracy
estimate with its interval beside the audit-corrected one and the audited accuracy; every
test's p-value over time on a log scale with the level it was tested at; and every blind
spot with its size, traffic share, confidence, action mix, expected silent failures and the
representative inputs from the decisions' context.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.report._svg import (
    BLUE,
    INK,
    MUTED,
    ORANGE,
    SKY,
    VERMILLION,
    Scale,
    element,
    nice_ticks,
    num,
    svg_document,
    text_el,
    tick_labels,
    tooltip,
    x_axis,
    y_axis,
)

__all__ = ["render_monitor_report", "write_monitor_report"]

_TEMPLATE = "monitor.html.j2"
_TEST_COLOURS = {
    "confidence": BLUE,
    "ood_score": SKY,
    "unseen_inputs": VERMILLION,
    "calibration": "#CC79A7",
    "predicted_label": ORANGE,
    "action": "#009E73",
    "features": "#7b8794",
}
_W, _H = 720, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 150, 20, 48


def _when(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _window_labels(windows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [_when(float(w["window_start"])) for w in windows]


def _x_scale(n: int) -> Scale:
    return Scale(-0.5, max(n, 1) - 0.5, _LEFT, _W - _RIGHT)


def _x_ticks(n: int) -> list[int]:
    step = max(1, math.ceil(n / 8))
    return list(range(0, n, step))


def estimate_chart(windows: Sequence[Mapping[str, Any]], *, uid: str = "estimate") -> Markup:
    """Label-free estimate (interval) vs audit-corrected estimate and audited accuracy."""
    n = len(windows)
    values: list[float] = []
    for w in windows:
        est = w["stats"].get("estimate", {})
        for key in ("low", "high", "corrected_low", "corrected_high", "audited_accuracy"):
            if est.get(key) is not None:
                values.append(float(est[key]))
    low = min(values, default=0.0)
    low = max(0.0, math.floor(low * 20) / 20 - 0.05)
    y = Scale(low, 1.0, _H - _BOTTOM, _TOP)
    x = _x_scale(n)
    ticks = nice_ticks(low, 1.0, 6)
    body = y_axis(y, ticks, _LEFT, tick_labels(ticks, "%"), "accuracy of answers", _W - _RIGHT)
    positions = _x_ticks(n)
    labels = _window_labels(windows)
    body += x_axis(
        x, positions, _H - _BOTTOM, [labels[i][5:] for i in positions], "window start (UTC)", _TOP
    )
    for i, w in enumerate(windows):
        est = w["stats"].get("estimate", {})
        cx = x(i)
        if est.get("estimate") is not None and est.get("low") is not None:
            tip = tooltip(
                f"{labels[i]}: label-free {est['estimate']:.1%} "
                f"[{est['low']:.1%}, {est['high']:.1%}] over {est.get('n_answers', 0)} answers"
            )
            body.append(
                element(
                    "rect",
                    tip,
                    x=cx - 7,
                    y=y(float(est["high"])),
                    width=14,
                    height=max(1.0, y(float(est["low"])) - y(float(est["high"]))),
                    fill=SKY,
                    fill_opacity="0.45",
                )
            )
            body.append(
                element(
                    "line",
                    x1=cx - 7,
                    x2=cx + 7,
                    y1=y(float(est["estimate"])),
                    y2=y(float(est["estimate"])),
                    stroke=BLUE,
                    stroke_width=2,
                )
            )
        if est.get("corrected") is not None:
            tip = tooltip(
                f"{labels[i]}: audit-corrected {est['corrected']:.1%} "
                f"[{est['corrected_low']:.1%}, {est['corrected_high']:.1%}] from "
                f"{est['n_audited']} audits"
            )
            body.append(
                element(
                    "line",
                    tip,
                    x1=cx + 10,
                    x2=cx + 10,
                    y1=y(float(est["corrected_low"])),
                    y2=y(float(est["corrected_high"])),
                    stroke=VERMILLION,
                    stroke_width=2,
                )
            )
            body.append(
                element("circle", cx=cx + 10, cy=y(float(est["corrected"])), r=3.5, fill=VERMILLION)
            )
        if est.get("audited_accuracy") is not None:
            body.append(
                element(
                    "rect",
                    x=cx + 14,
                    y=y(float(est["audited_accuracy"])) - 3,
                    width=6,
                    height=6,
                    fill=INK,
                )
            )
    legend_x = _W - _RIGHT + 14
    items = [
        (SKY, "label-free estimate"),
        (VERMILLION, "audit-corrected"),
        (INK, "audited accuracy"),
    ]
    for k, (colour, label) in enumerate(items):
        ly = _TOP + 12 + 18 * k
        body.append(element("rect", x=legend_x, y=ly - 8, width=10, height=10, fill=colour))
        body.append(text_el(legend_x + 16, ly + 1, label, fill=MUTED))
    return svg_document(
        uid,
        _W,
        _H,
        "Estimated accuracy of automatic answers per window",
        "For each window: the label-free estimate from calibrated confidence with its interval, "
        "the estimate corrected by that window's audits with its interval, and the audited "
        "accuracy. A corrected estimate below the label-free one means the calibration broke.",
        body,
    )


def p_value_chart(windows: Sequence[Mapping[str, Any]], *, uid: str = "pvalues") -> Markup:
    """Each test's p-value per window (log scale) with the level it was tested at."""
    n = len(windows)
    series: dict[str, list[tuple[int, float, bool]]] = {}
    levels = []
    for i, w in enumerate(windows):
        stats = w["stats"]
        if stats.get("level") is not None:
            levels.append(float(stats["level"]))
        for test in stats.get("tests", []):
            p = max(float(test["p_value"]), 1e-12)
            series.setdefault(str(test["name"]), []).append((i, p, bool(test.get("rejected"))))
    floor = min([p for s in series.values() for _, p, _ in s] + levels + [1e-4])
    decades = max(2, math.ceil(-math.log10(floor)))
    y = Scale(0.0, float(decades), _H - _BOTTOM, _TOP)
    x = _x_scale(n)
    ticks = [float(t) for t in range(0, decades + 1, max(1, decades // 6))]
    body = y_axis(
        y, ticks, _LEFT, [f"1e-{int(t)}" if t else "1" for t in ticks], "p-value", _W - _RIGHT
    )
    positions = _x_ticks(n)
    labels = _window_labels(windows)
    body += x_axis(
        x, positions, _H - _BOTTOM, [labels[i][5:] for i in positions], "window start (UTC)", _TOP
    )
    if levels:
        level_y = y(-math.log10(min(levels)))
        body.append(
            element(
                "line",
                x1=_LEFT,
                x2=_W - _RIGHT,
                y1=level_y,
                y2=level_y,
                stroke=VERMILLION,
                stroke_dasharray="5 4",
            )
        )
        body.append(text_el(_LEFT + 4, level_y - 4, f"level {min(levels):.2g}", fill=VERMILLION))
    for k, (name, points) in enumerate(sorted(series.items())):
        colour = _TEST_COLOURS.get(name, MUTED)
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{num(x(i))},{num(y(-math.log10(p)))}"
            for j, (i, p, _) in enumerate(points)
        )
        body.append(element("path", d=path, fill="none", stroke=colour, stroke_width=1.6))
        for i, p, rejected in points:
            body.append(
                element(
                    "circle",
                    tooltip(f"{name} {labels[i]}: p = {p:.2g}"),
                    cx=x(i),
                    cy=y(-math.log10(p)),
                    r=4 if rejected else 2.5,
                    fill=colour if rejected else "#ffffff",
                    stroke=colour,
                )
            )
        ly = _TOP + 12 + 18 * k
        body.append(
            element(
                "line",
                x1=_W - _RIGHT + 14,
                x2=_W - _RIGHT + 26,
                y1=ly - 3,
                y2=ly - 3,
                stroke=colour,
                stroke_width=2,
            )
        )
        body.append(text_el(_W - _RIGHT + 32, ly + 1, name.replace("_", " "), fill=MUTED))
    return svg_document(
        uid,
        _W,
        _H,
        "Drift p-values over time",
        "One line per test, p-value on a log scale (higher is more significant); filled points "
        "were rejected by Holm's procedure at the window's level (dashed line).",
        body,
    )


def _check_rows(rows: Any, name: str, keys: Sequence[str]) -> list[Mapping[str, Any]]:
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise InputError(f"`{name}` must be a sequence of mappings; got {describe(rows)}.")
    out = []
    for row in rows:
        if not isinstance(row, Mapping) or any(k not in row for k in keys):
            raise InputError(
                f"each of `{name}` must be a mapping with {list(keys)}; got {describe(row)}."
            )
        out.append(row)
    return out


def _example_text(example: Any) -> str:
    if isinstance(example, Mapping):
        if example.get("text"):
            return str(example["text"])
        if example.get("context"):
            return str(example["context"])
        return f"task {example.get('task_id', '?')}"
    return str(example)


def render_monitor_report(
    *,
    title: str,
    windows: Sequence[Mapping[str, Any]],
    findings: Sequence[Mapping[str, Any]],
    generated_by: str,
    quarantined: Mapping[int, str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Render the monitor's section as one self-contained HTML page.

    Parameters
    ----------
    title : str
    windows : sequence of mapping
        ``window_start``, ``window_end``, ``n_tasks`` and ``stats`` of each window, oldest first.
    findings : sequence of mapping
        ``StoredFinding.to_dict()`` of each finding shown.
    generated_by : str
        Provenance line for the footer.
    quarantined : mapping of finding id to str, optional
        The quarantine state of blind spots ("active", "released").
    notes : sequence of str
        What the monitor could not say.

    Returns
    -------
    str
        The HTML document.
    """
    from failwise.report._html import _environment

    rows = _check_rows(windows, "windows", ("window_start", "window_end", "n_tasks", "stats"))
    found = _check_rows(findings, "findings", ("id", "kind", "severity", "statistics", "examples"))
    states = dict(quarantined or {})
    spots = []
    for f in found:
        if f["kind"] != "blind_spot":
            continue
        stats = f["statistics"]
        spots.append(
            {
                "id": f["id"],
                "window": _when(f.get("window_start")),
                "size": stats.get("size"),
                "share": stats.get("share"),
                "mean_confidence": stats.get("mean_confidence"),
                "expected_silent_failures": stats.get("expected_silent_failures"),
                "action_mix": ", ".join(
                    f"{k} {v:.0%}" for k, v in sorted(stats.get("action_mix", {}).items())
                ),
                "continues": stats.get("continues"),
                "state": states.get(int(f["id"]), "not quarantined"),
                "examples": [_example_text(e) for e in f["examples"]],
            }
        )
    spots.sort(key=lambda s: -(s["expected_silent_failures"] or 0.0))
    others = [
        {
            "id": f["id"],
            "kind": str(f["kind"]).replace("_", " "),
            "severity": f["severity"],
            "window": _when(f.get("window_start")),
            "p_value": f["statistics"].get("p_value"),
            "impact": f["statistics"].get("estimated_accuracy_impact"),
        }
        for f in found
        if f["kind"] != "blind_spot"
    ]
    template = _environment().get_template(_TEMPLATE)
    return template.render(
        title=title,
        generated_by=generated_by,
        notes=list(notes),
        n_windows=len(rows),
        first=_when(float(rows[0]["window_start"])) if rows else "—",
        last=_when(float(rows[-1]["window_end"])) if rows else "—",
        estimate_chart=estimate_chart(rows) if rows else None,
        p_value_chart=p_value_chart(rows) if rows else None,
        spots=spots,
        others=others,
    )


def write_monitor_report(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Render (see :func:`render_monitor_report`) and write the page as UTF-8."""
    page = render_monitor_report(**kwargs)
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise InputError(
            f"`path` {str(target)!r} is a folder; pass a file name such as "
            f"{str(target / 'monitor.html')!r}."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
