"""Inline SVG charts over time: metric lines with interval bands, stacked counts.

Like the report's other charts, each is a function from plain data to one ``<svg>``
element (:class:`markupsafe.Markup`), with no script and no external resource, every text
escaped; the dashboard of the service draws its series with them. A bucket whose value is
NaN (no tasks) leaves a gap in the line rather than a made-up point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup

from failwise.exceptions import InputError
from failwise.report._svg import (
    AXIS,
    BLUE,
    INK,
    ORANGE,
    SKY,
    VERMILLION,
    Scale,
    axis_ticks,
    element,
    legend_rows,
    num,
    svg_document,
    tick_labels,
    tooltip,
    x_axis,
    y_axis,
)

__all__ = ["TimelineSeries", "stacked_timeline_chart", "timeline_chart"]

#: Colours of successive series (Okabe–Ito), and of the ladder's actions.
_COLOURS = (BLUE, VERMILLION, ORANGE, SKY, "#009E73", "#CC79A7", INK)
ACTION_COLOURS: Mapping[str, str] = {
    "answer": BLUE,
    "clarify": SKY,
    "fallback": "#009E73",
    "escalate": ORANGE,
    "abstain": VERMILLION,
}

_WIDTH, _HEIGHT = 560, 230

#: Up to this many buckets, every bucket gets a mark with its value in a ``<title>``; beyond,
#: the lines and bars are one ``<path>`` per series (the page stays small and fast).
MARKED_BUCKETS = 60
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 14, 186


@dataclass(frozen=True)
class TimelineSeries:
    """One line of a :func:`timeline_chart`: a value per bucket and an optional band.

    Parameters
    ----------
    label : str
    values : sequence of float
        One per bucket; NaN for none.
    low, high : sequence of float, optional
        The interval of each value (drawn as a band).
    """

    label: str
    values: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None


def _time_label(at: float, span: float) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    if span <= 2 * 86400:
        return moment.strftime("%H:%M")
    return moment.strftime("%m-%d")


def _time_ticks(starts: Sequence[float], width: float) -> list[int]:
    """Indices of about six buckets to label, evenly spaced."""
    n = len(starts)
    if n <= 1:
        return [0]
    step = max(1, math.ceil(n / 6))
    return list(range(0, n, step))


def _check(starts: Sequence[float], columns: Mapping[str, Sequence[float]]) -> None:
    if not starts:
        raise InputError("A timeline needs at least one bucket; got no bucket starts.")
    for name, values in columns.items():
        if len(values) != len(starts):
            raise InputError(
                f"Timeline series {name!r} has {len(values)} values for {len(starts)} buckets; "
                "pass one value per bucket (NaN for none)."
            )


def _format(value: float, unit: str) -> str:
    if math.isnan(value):
        return "—"
    if unit == "%":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def timeline_chart(
    starts: Sequence[float],
    bucket_s: float,
    series: Sequence[TimelineSeries],
    *,
    title: str,
    uid: str,
    unit: str = "%",
    y_title: str | None = None,
) -> Markup:
    """Lines over time, each with its interval band; gaps where a value is NaN.

    Parameters
    ----------
    starts : sequence of float
        Bucket starts, Unix seconds.
    bucket_s : float
        Bucket width (points sit in the middle of their bucket).
    series : sequence of TimelineSeries
    title : str
    uid : str
        Unique in the page (ids of the title and description).
    unit : {"%", "s", ""}, default="%"
        ``%``: fractions on a 0–100 % axis scaled to the data; ``s``: seconds.
    y_title : str, optional
        The y axis' title (default: "Rate", "Seconds" or none, by ``unit``).

    Series are named in a legend above the plot, which never covers a line; a chart of
    counts (every value a whole number) gets whole-number ticks.
    """
    _check(starts, {s.label: s.values for s in series})
    for s in series:
        _check(starts, {f"{s.label} low": s.low or s.values, f"{s.label} high": s.high or s.values})
    x0, x1 = starts[0], starts[-1] + bucket_s
    xs = Scale(x0, x1, _LEFT, _WIDTH - _RIGHT)
    values = [v for s in series for v in s.values if not math.isnan(v)]
    bands = [v for s in series for v in (s.high or ()) if not math.isnan(v)]
    top = max(values) if values else 1.0
    if unit != "s" and bands:  # rates: the whole interval; times: the values (a p90's
        top = max(top, max(bands))  # upper bound on a few tasks can be far above them)
    top = top * 1.15 if unit == "s" else top
    # counts (every value and bound a whole number) get whole-number ticks
    whole = unit == "" and all(float(v).is_integer() for v in values + bands)
    ticks = axis_ticks(top, 5, integer=whole)
    top = ticks[-1]
    colours = [_COLOURS[k % len(_COLOURS)] for k in range(len(series))]
    legend, rows = _legend(
        [(colour, s.label) for colour, s in zip(colours, series, strict=True)]
        if len(series) > 1
        else []
    )
    plot_top = _TOP + 16 * rows
    ys = Scale(0.0, top, _BOTTOM, plot_top)
    body: list[str] = y_axis(
        ys,
        ticks,
        _LEFT,
        tick_labels(ticks, unit if unit == "%" else ""),
        {"%": "Rate", "s": "Seconds"}.get(unit, "") if y_title is None else y_title,
        _WIDTH - _RIGHT,
    )
    body += _time_axis(starts, bucket_s, plot_top)
    centres = [xs(start + bucket_s / 2) for start in starts]
    for colour, s in zip(colours, series, strict=True):
        body += _line_marks(s, starts, centres, ys, top, unit, colour)
    body += legend
    last = [s for s in series if any(not math.isnan(v) for v in s.values)]
    desc = f"{title} per {_bucket_name(bucket_s)}, {len(starts)} buckets"
    if last:
        desc += "; latest: " + ", ".join(
            f"{s.label} {_format(next(v for v in reversed(s.values) if not math.isnan(v)), unit)}"
            for s in last
        )
    return svg_document(uid, _WIDTH, _HEIGHT, title, desc + ".", body)


def _legend(items: Sequence[tuple[str, str]]) -> tuple[list[str], int]:
    """(colour, label) swatches in rows above the plot; the markup and its rows."""
    swatches = [(element("rect", width=16, height=10, fill=c), label) for c, label in items]
    return legend_rows(_LEFT, 12, swatches, _WIDTH - _RIGHT - _LEFT)


def _time_axis(starts: Sequence[float], bucket_s: float, plot_top: float) -> list[str]:
    """The x axis: about six bucket starts labelled, grid lines up to ``plot_top``."""
    x0, x1 = starts[0], starts[-1] + bucket_s
    marks = _time_ticks(starts, bucket_s)
    return x_axis(
        Scale(x0, x1, _LEFT, _WIDTH - _RIGHT),
        [starts[i] for i in marks],
        _BOTTOM,
        [_time_label(starts[i], x1 - x0) for i in marks],
        "Time (UTC)",
        plot_top,
    )


def _points(
    centres: Sequence[float], ys: Scale, values: Sequence[float], run: Sequence[int]
) -> str:
    return " L".join(f"{num(centres[i])},{num(ys(values[i]))}" for i in run)


def _line_marks(
    s: TimelineSeries,
    starts: Sequence[float],
    centres: Sequence[float],
    ys: Scale,
    top: float,
    unit: str,
    colour: str,
) -> list[str]:
    """One series: its band as one ``<path>``, its line as another, and its dots.

    Every run of finite buckets is a subpath. A dot with the bucket's value in its
    ``<title>`` marks each bucket when the chart has at most :data:`MARKED_BUCKETS` of them;
    beyond that only a lone bucket (no line through it) gets its dot.
    """
    out: list[str] = []
    if s.low is not None and s.high is not None:
        low, high = [min(v, top) for v in s.low], [min(v, top) for v in s.high]
        band = "".join(
            f"M{_points(centres, ys, high, run)} L{_points(centres, ys, low, run[::-1])}Z"
            for run in _runs(low, high)
        )
        if band:
            out.append(element("path", d=band, fill=colour, fill_opacity=0.16))
    runs = _runs(s.values)
    line = "".join(f"M{_points(centres, ys, s.values, run)}" for run in runs if len(run) > 1)
    if line:
        out.append(
            element("path", tooltip(s.label), d=line, fill="none", stroke=colour, stroke_width=1.8)
        )
    marked = len(starts) <= MARKED_BUCKETS
    for i in (i for run in runs if marked or len(run) == 1 for i in run):
        tip = f"{_time_label(starts[i], 0)} {s.label}: {_format(s.values[i], unit)}"
        if s.low is not None and s.high is not None:
            tip += f" ({_format(s.low[i], unit)} – {_format(s.high[i], unit)})"
        out.append(
            element(
                "circle",
                tooltip(tip),
                cx=centres[i],
                cy=ys(s.values[i]),
                r=3.0 if marked else 2.2,
                fill=colour,
            )
        )
    return out


def _bucket_name(bucket_s: float) -> str:
    return {3600.0: "hour", 86400.0: "day"}.get(float(bucket_s), f"{bucket_s:g} s")


def _runs(*columns: Sequence[float]) -> list[list[int]]:
    """Maximal runs of indices where every column is finite."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i in range(len(columns[0])):
        if all(not math.isnan(c[i]) for c in columns):
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def stacked_timeline_chart(
    starts: Sequence[float],
    bucket_s: float,
    counts: Mapping[str, Sequence[int]],
    *,
    title: str,
    uid: str,
    colours: Mapping[str, str] | None = None,
) -> Markup:
    """Counts per bucket as stacked bars (e.g. the ladder's action mix)."""
    _check(starts, {k: [float(v) for v in values] for k, values in counts.items()})
    palette = dict(colours or ACTION_COLOURS)
    names = list(counts)
    totals = [sum(int(counts[name][i]) for name in names) for i in range(len(starts))]
    ticks = axis_ticks(max(totals), 5, integer=True)
    top = ticks[-1]
    fills = [palette.get(n, _COLOURS[k % len(_COLOURS)]) for k, n in enumerate(names)]
    legend, rows = _legend(list(zip(fills, names, strict=True)))
    plot_top = _TOP + 16 * rows
    x0, x1 = starts[0], starts[-1] + bucket_s
    xs = Scale(x0, x1, _LEFT, _WIDTH - _RIGHT)
    ys = Scale(0.0, top, _BOTTOM, plot_top)
    body: list[str] = y_axis(ys, ticks, _LEFT, tick_labels(ticks), "Tasks", _WIDTH - _RIGHT)
    body += _time_axis(starts, bucket_s, plot_top)
    bar = max(xs(x0 + bucket_s) - xs(x0) - 1.0, 0.6)
    marked = len(starts) <= MARKED_BUCKETS
    bases = [0.0] * len(starts)
    for colour, name in zip(fills, names, strict=True):
        shapes: list[str] = []
        for i, start in enumerate(starts):
            value = int(counts[name][i])
            if value <= 0:
                continue
            x, y = xs(start) + 0.5, ys(bases[i] + value)
            height = max(ys(bases[i]) - y, 0.5)
            bases[i] += value
            if marked:
                share = value / totals[i]
                tip = tooltip(f"{_time_label(start, 0)} {name}: {value:,} ({share:.0%})")
                shapes.append(element("rect", tip, x=x, y=y, width=bar, height=height, fill=colour))
            else:  # one subpath per bar, one path per action
                shapes.append(f"M{num(x)},{num(y)}h{num(bar)}v{num(height)}h-{num(bar)}Z")
        if marked:
            body += shapes
        elif shapes:
            body.append(element("path", tooltip(name), d="".join(shapes), fill=colour))
    body += legend
    body.append(element("line", x1=_LEFT, y1=_BOTTOM, x2=_WIDTH - _RIGHT, y2=_BOTTOM, stroke=AXIS))
    mix = ", ".join(f"{n} {sum(int(v) for v in counts[n]):,}" for n in names)
    desc = f"{title} per {_bucket_name(bucket_s)}, {len(starts)} buckets; totals: {mix}."
    return svg_document(uid, _WIDTH, _HEIGHT, title, desc, body)
