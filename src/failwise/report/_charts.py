"""Inline SVG charts for the HTML report.

Each chart is a function from plain data to a :class:`markupsafe.Markup` string
holding one ``<svg>`` element: no scripts, no external resources, every text
escaped. Incorrect outcomes carry a hatch pattern as well as a colour, so they
read without colour vision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from markupsafe import Markup, escape
from numpy.typing import ArrayLike

from failwise.report._catalogue import ACTIONS
from failwise.report._model import ReliabilityBins
from failwise.report._svg import (
    AXIS,
    BIN_GREY,
    BLUE,
    GRID,
    INK,
    MUTED,
    VERMILLION,
    Scale,
    axis_ticks,
    count_label,
    downsample_curve,
    element,
    hatch,
    legend_box,
    nice_ceiling,
    nice_ticks,
    num,
    pct,
    svg_document,
    text_el,
    tick_labels,
    tooltip,
    x_axis,
    y_axis,
)

__all__ = [
    "accuracy_completion_chart",
    "outcome_breakdown_chart",
    "reliability_diagram",
    "risk_coverage_chart",
]


def reliability_diagram(bins: ReliabilityBins, *, title: str, uid: str) -> Markup:
    """Accuracy per confidence bin against the diagonal, with bin counts underneath.

    The bars show accuracy; the hatched boxes the gap between accuracy and mean
    confidence in each bin (Guo et al., 2017). The ECE is printed in the legend.
    """
    width, height = 380, 330
    left, right, top, bottom = 50, width - 12, 12, 212
    hist_top, hist_bottom = 234, 270
    xs = Scale(0.0, 1.0, left, right)
    ys = Scale(0.0, 1.0, bottom, top)
    ticks = nice_ticks(0.0, 1.0)
    labels = tick_labels(ticks, "%")
    body: list[str] = [hatch(f"{uid}-gap", VERMILLION)]
    body += y_axis(ys, ticks, left, labels, "Accuracy", right)
    # Vertical grid through both panels, then the shared x axis under the histogram.
    body += x_axis(Scale(0.0, 1.0, left, right), ticks, hist_bottom, labels, "Confidence", top)
    body.append(element("line", x1=left, y1=bottom, x2=right, y2=bottom, stroke=AXIS))
    counts = np.asarray(bins.count, dtype=np.float64)
    max_count = float(counts.max())
    hs = Scale(0.0, max_count, hist_bottom, hist_top)
    # Keep the vertical grid to the main panel: blank the gap and the histogram panel.
    body.append(
        element(
            "rect",
            x=left + 0.5,
            y=bottom + 0.5,
            width=right - left,
            height=hist_bottom - bottom - 1,
            fill="#ffffff",
        )
    )
    for k in range(len(bins.count)):
        lower, upper = bins.bin_lower[k], bins.bin_upper[k]
        x0, x1 = xs(lower) + 0.75, xs(upper) - 0.75
        count = bins.count[k]
        if count == 0:
            continue
        acc, conf = bins.accuracy[k], bins.mean_confidence[k]
        tip = tooltip(
            f"Confidence {lower:.2f}–{upper:.2f}: {count:,} input{'' if count == 1 else 's'}, "
            f"accuracy {pct(acc)}, "
            f"mean confidence {pct(conf)}"
        )
        body.append(
            element(
                "rect",
                tip,
                x=x0,
                y=ys(acc),
                width=max(x1 - x0, 0.5),
                height=ys(0) - ys(acc),
                fill=BLUE,
                fill_opacity=0.88,
            )
        )
        gap_low, gap_high = sorted((acc, conf))
        if ys(gap_low) - ys(gap_high) >= 0.5:
            body.append(
                element(
                    "rect",
                    tip,
                    x=x0,
                    y=ys(gap_high),
                    width=max(x1 - x0, 0.5),
                    height=ys(gap_low) - ys(gap_high),
                    fill=f"url(#{uid}-gap)",
                    fill_opacity=0.5,
                    stroke=VERMILLION,
                    stroke_width=0.8,
                )
            )
        bar_top = hs(count)
        body.append(
            element(
                "rect",
                tip,
                x=x0,
                y=bar_top,
                width=max(x1 - x0, 0.5),
                height=max(hist_bottom - bar_top, 0.6),
                fill=BIN_GREY,
            )
        )
    body.append(
        element(
            "line",
            x1=xs(0),
            y1=ys(0),
            x2=xs(1),
            y2=ys(1),
            stroke=INK,
            stroke_width=1.2,
            stroke_dasharray="4 3",
        )
    )
    body.append(element("line", x1=left, y1=hist_top, x2=left, y2=hist_bottom, stroke=AXIS))
    body.append(
        text_el(left - 7, hist_top + 8, count_label(max_count), text_anchor="end", fill=MUTED)
    )
    body.append(text_el(left - 7, hist_bottom, "0", text_anchor="end", fill=MUTED))
    body.append(text_el(left, hist_top - 5, "Inputs per bin", fill=MUTED, font_size=10))
    legend = [
        (element("rect", width=16, height=10, fill=BLUE, fill_opacity=0.88), "Accuracy"),
        (
            element(
                "rect",
                width=16,
                height=10,
                fill=f"url(#{uid}-gap)",
                fill_opacity=0.5,
                stroke=VERMILLION,
                stroke_width=0.8,
            ),
            "Gap to confidence",
        ),
        (
            element(
                "line",
                x1=0,
                y1=5,
                x2=16,
                y2=5,
                stroke=INK,
                stroke_width=1.2,
                stroke_dasharray="4 3",
            ),
            "Perfect calibration",
        ),
        ("", f"ECE {pct(bins.ece)}"),
    ]
    body += legend_box(left + 8, top + 6, legend, 140)
    filled = sum(1 for c in bins.count if c)
    desc = (
        f"{title}: expected calibration error {pct(bins.ece)} over {filled} non-empty of "
        f"{len(bins.count)} bins, {bins.n_samples:,} inputs."
    )
    return svg_document(uid, width, height, f"Reliability diagram, {title.lower()}", desc, body)


def risk_coverage_chart(
    coverage: ArrayLike,
    risk: ArrayLike,
    *,
    operating_coverage: float,
    operating_risk: float,
    target_risk: float | None,
    uid: str,
) -> Markup:
    """Selective risk against coverage, with the operating point and the target risk.

    Risk–coverage curves follow Geifman & El-Yaniv (2017), "Selective
    Classification for Deep Neural Networks". Long curves are thinned with
    :func:`downsample_curve`.
    """
    width, height = 540, 330
    left, right, top, bottom = 58, width - 14, 14, height - 52
    cx, ry = downsample_curve(coverage, risk)
    # The first few answers make the risk noisy; scale to the curve beyond 2% coverage.
    settled = ry[cx >= 0.02] if (cx >= 0.02).any() else ry
    candidates = [float(settled.max()) if settled.size else 0.0]
    if target_risk is not None:
        candidates.append(target_risk * 1.3)
    if not math.isnan(operating_risk):
        candidates.append(operating_risk * 1.15)
    y_max = min(nice_ceiling(max(max(candidates), 1e-3) * 1.05), 1.0)
    xs = Scale(0.0, 1.0, left, right)
    ys = Scale(0.0, y_max, bottom, top)
    x_ticks = nice_ticks(0.0, 1.0)
    y_ticks = nice_ticks(0.0, y_max, 6)
    body: list[str] = [
        f'<defs><clipPath id="{escape(uid)}-clip"><rect x="{left}" y="{top}" '
        f'width="{right - left}" height="{bottom - top}"/></clipPath></defs>'
    ]
    body += y_axis(
        ys,
        y_ticks,
        left,
        tick_labels(y_ticks, "%"),
        "Selective risk (errors among answers)",
        right,
    )
    body += x_axis(
        xs,
        x_ticks,
        bottom,
        tick_labels(x_ticks, "%"),
        "Coverage (share of inputs answered automatically)",
        top,
    )
    if cx.size:
        points = " ".join(f"{num(xs(a))},{num(ys(b))}" for a, b in zip(cx, ry, strict=True))
        body.append(
            f'<g clip-path="url(#{escape(uid)}-clip)">'
            + element(
                "polyline",
                points=points,
                fill="none",
                stroke=BLUE,
                stroke_width=2,
                stroke_linejoin="round",
            )
            + "</g>"
        )
    legend: list[tuple[str, str]] = [
        (
            element("line", x1=0, y1=5, x2=16, y2=5, stroke=BLUE, stroke_width=2),
            "Risk–coverage curve",
        ),
    ]
    if target_risk is not None:
        ty = ys(target_risk)
        body.append(
            element(
                "line",
                x1=left,
                y1=ty,
                x2=right,
                y2=ty,
                stroke=VERMILLION,
                stroke_width=1.5,
                stroke_dasharray="6 4",
            )
        )
        legend.append(
            (
                element(
                    "line",
                    x1=0,
                    y1=5,
                    x2=16,
                    y2=5,
                    stroke=VERMILLION,
                    stroke_width=1.5,
                    stroke_dasharray="6 4",
                ),
                f"Target risk {pct(target_risk)}",
            )
        )
    if not math.isnan(operating_risk):
        px, py = xs(operating_coverage), ys(min(operating_risk, y_max))
        body.append(
            element(
                "line",
                x1=px,
                y1=py,
                x2=px,
                y2=bottom,
                stroke=INK,
                stroke_width=1,
                stroke_dasharray="2 3",
            )
        )
        label = f"coverage {pct(operating_coverage)}, risk {pct(operating_risk)}"
        body.append(
            element(
                "circle",
                tooltip(f"Operating point: {label}"),
                cx=px,
                cy=py,
                r=5.5,
                fill="#ffffff",
                stroke=INK,
                stroke_width=2.2,
            )
        )
        anchor, dx = ("end", -10) if px > (left + right) / 2 else ("start", 10)
        label_y = py - 10 if py - 10 > top + 10 else py + 18
        body.append(
            text_el(
                px + dx,
                label_y,
                label,
                text_anchor=anchor,
                fill=INK,
                font_weight="600",
                class_="halo",
            )
        )
        legend.append(
            (
                element("circle", cx=8, cy=5, r=4.5, fill="#ffffff", stroke=INK, stroke_width=2),
                "Operating point",
            )
        )
    body += legend_box(left + 10, top + 8, legend, 168)
    operating = (
        "the ladder answers nothing automatically"
        if math.isnan(operating_risk)
        else f"operating point at coverage {pct(operating_coverage)} and risk {pct(operating_risk)}"
    )
    target = "" if target_risk is None else f", target risk {pct(target_risk)}"
    desc = f"Risk–coverage curve drawn with {cx.size} points; {operating}{target}."
    return svg_document(uid, width, height, "Risk–coverage curve", desc, body, font_size=12)


def outcome_breakdown_chart(counts: dict[str, tuple[int, int]], *, uid: str) -> Markup:
    """One stacked horizontal bar per ladder action: inputs that ended correctly / incorrectly."""
    row, bar = 32, 18
    width = 540
    left, right, top = 76, width - 108, 40
    height = top + row * len(ACTIONS) + 40
    totals = {a: sum(counts.get(a, (0, 0))) for a in ACTIONS}
    grand = max(sum(totals.values()), 1)
    x_max = float(max(totals.values()) or 1)
    ticks = axis_ticks(x_max, 5, integer=True)
    xs = Scale(0.0, ticks[-1], left, right)
    bottom = top + row * len(ACTIONS)
    body: list[str] = [hatch(f"{uid}-bad", VERMILLION)]
    body += x_axis(xs, ticks, bottom, tick_labels(ticks), "Inputs", top - 6)
    for i, action in enumerate(ACTIONS):
        good, bad = counts.get(action, (0, 0))
        total = good + bad
        y = top + row * i + (row - bar) / 2
        body.append(
            text_el(
                left - 10,
                y + bar / 2 + 4,
                action.capitalize(),
                text_anchor="end",
                fill=INK,
                font_weight="600",
            )
        )
        x0 = xs(0)
        if good:
            body.append(
                element(
                    "rect",
                    tooltip(f"{action}: {good:,} ended correctly"),
                    x=x0,
                    y=y,
                    width=max(xs(good) - x0, 1.0),
                    height=bar,
                    fill=BLUE,
                )
            )
        if bad:
            start = xs(good)
            body.append(
                element(
                    "rect",
                    tooltip(f"{action}: {bad:,} ended incorrectly"),
                    x=start,
                    y=y,
                    width=max(xs(good + bad) - start, 1.0),
                    height=bar,
                    fill=f"url(#{uid}-bad)",
                )
            )
        share = f"{total:,} · {total / grand * 100:.1f}%"
        end = xs(total) + (6 if total else 0)
        body.append(text_el(end, y + bar / 2 + 4, share, fill=MUTED))
    legend_y = 14
    body.append(element("rect", x=left, y=legend_y - 9, width=14, height=10, fill=BLUE))
    body.append(text_el(left + 20, legend_y, "Ended correctly", fill=INK))
    body.append(
        element("rect", x=left + 130, y=legend_y - 9, width=14, height=10, fill=f"url(#{uid}-bad)")
    )
    body.append(text_el(left + 150, legend_y, "Ended incorrectly", fill=INK))
    parts = ", ".join(f"{a} {totals[a]:,} ({counts.get(a, (0, 0))[0]:,} correct)" for a in ACTIONS)
    desc = f"Outcome of {grand:,} inputs by ladder action: {parts}."
    return svg_document(uid, width, height, "Outcome by ladder action", desc, body, font_size=12)


def accuracy_completion_chart(
    rows: Sequence[tuple[str, float, float, float | None, float | None]], *, uid: str
) -> Markup:
    """Accuracy beside task completion (with its interval), one row per model.

    Each row is ``(name, accuracy, completion, completion_low, completion_high)``,
    fractions, in display order.
    """
    row = 30
    width = 680
    left, right, top = 220, width - 24, 34
    bottom = top + row * len(rows)
    height = bottom + 44
    values: list[float] = []
    for _, acc, done, low, high in rows:
        values += [acc, done] + [v for v in (low, high) if v is not None]
    finite = [v for v in values if not math.isnan(v)] or [0.0, 1.0]
    span = max(max(finite) - min(finite), 0.02)
    lo = max(0.0, min(finite) - 0.15 * span)
    hi = min(1.0, max(finite) + 0.15 * span)
    ticks = nice_ticks(lo, hi, 6)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    xs = Scale(lo, hi, left, right)
    body: list[str] = []
    body += x_axis(xs, ticks, bottom, tick_labels(ticks, "%"), "", top - 8)
    for i, (name, acc, done, low, high) in enumerate(rows):
        y = top + row * i + row / 2
        short = name if len(name) <= 32 else name[:31] + "…"
        body.append(
            element(
                "text",
                tooltip(name) + str(escape(short)),
                x=left - 12,
                y=y + 4,
                text_anchor="end",
                fill=INK,
                font_weight="600",
            )
        )
        body.append(
            element("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID, stroke_dasharray="1 3")
        )
        if not math.isnan(acc) and not math.isnan(done):
            body.append(
                element("line", x1=xs(acc), y1=y, x2=xs(done), y2=y, stroke=AXIS, stroke_width=2)
            )
        if low is not None and high is not None:
            body.append(
                element("line", x1=xs(low), y1=y, x2=xs(high), y2=y, stroke=BLUE, stroke_width=1.6)
            )
            for end in (low, high):
                body.append(
                    element(
                        "line",
                        x1=xs(end),
                        y1=y - 5,
                        x2=xs(end),
                        y2=y + 5,
                        stroke=BLUE,
                        stroke_width=1.6,
                    )
                )
        if not math.isnan(acc):
            body.append(
                element(
                    "circle",
                    tooltip(f"{name}: accuracy {pct(acc)}"),
                    cx=xs(acc),
                    cy=y,
                    r=5,
                    fill="#ffffff",
                    stroke=MUTED,
                    stroke_width=2,
                )
            )
        if not math.isnan(done):
            body.append(
                element(
                    "circle",
                    tooltip(f"{name}: task completion {pct(done)}"),
                    cx=xs(done),
                    cy=y,
                    r=5.5,
                    fill=BLUE,
                )
            )
    legend_y = 14
    body.append(
        element(
            "circle",
            cx=left + 6,
            cy=legend_y - 4,
            r=4.5,
            fill="#ffffff",
            stroke=MUTED,
            stroke_width=2,
        )
    )
    body.append(text_el(left + 16, legend_y, "Accuracy", fill=INK))
    body.append(element("circle", cx=left + 96, cy=legend_y - 4, r=5, fill=BLUE))
    body.append(text_el(left + 106, legend_y, "Task completion (with interval)", fill=INK))
    desc = "; ".join(
        f"{name}: accuracy {pct(acc)}, task completion {pct(done)}"
        for name, acc, done, _, _ in rows
    )
    return svg_document(uid, width, height, "Accuracy beside task completion", desc + ".", body)
