"""A small toolkit for hand-written SVG: elements, scales, ticks, axes, legends.

Every text and attribute value goes through :func:`markupsafe.escape`, so the
output can be inserted into an autoescaped template as :class:`markupsafe.Markup`.
Colours come from the Okabe–Ito palette, which stays distinguishable under the
common forms of colour blindness.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup, escape
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "AXIS",
    "BIN_GREY",
    "BLUE",
    "GRID",
    "INK",
    "MAX_CURVE_POINTS",
    "MUTED",
    "VERMILLION",
    "Scale",
    "axis_ticks",
    "count_label",
    "downsample_curve",
    "element",
    "format_attrs",
    "hatch",
    "legend_box",
    "legend_rows",
    "nice_ceiling",
    "nice_ticks",
    "num",
    "pct",
    "svg_document",
    "text_el",
    "tick_labels",
    "tooltip",
    "x_axis",
    "y_axis",
]

# Okabe & Ito (2008), "Color Universal Design".
BLUE = "#0072B2"
VERMILLION = "#D55E00"
ORANGE = "#E69F00"
SKY = "#56B4E9"
INK = "#1f2933"
MUTED = "#52606d"
AXIS = "#9aa5b1"
GRID = "#e4e7eb"
BIN_GREY = "#9aa5b1"

#: Most points a curve is drawn with.
MAX_CURVE_POINTS = 400


# ---------------------------------------------------------------------------------------------
# Small SVG toolkit
# ---------------------------------------------------------------------------------------------


def num(value: float) -> str:
    """Format a coordinate compactly: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_attrs(attrs: dict[str, Any]) -> str:
    """Render keyword attributes: ``stroke_width=2`` becomes ``stroke-width="2"``."""
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        text = num(value) if isinstance(value, float) else str(value)
        parts.append(f' {name}="{escape(text)}"')
    return "".join(parts)


def element(tag: str, content: str = "", **attrs: Any) -> str:
    """One SVG element; ``content`` must already be markup (escape text first)."""
    if content:
        return f"<{tag}{format_attrs(attrs)}>{content}</{tag}>"
    return f"<{tag}{format_attrs(attrs)}/>"


def text_el(x: float, y: float, text: str, **attrs: Any) -> str:
    """A ``<text>`` element holding ``text``, escaped."""
    return element("text", str(escape(text)), x=x, y=y, **attrs)


def tooltip(text: str) -> str:
    """A ``<title>`` child, which browsers show on hover."""
    return f"<title>{escape(text)}</title>"


def svg_document(
    uid: str,
    width: int,
    height: int,
    title: str,
    desc: str,
    body: Iterable[str],
    *,
    font_size: float = 11,
) -> Markup:
    """Wrap chart elements in an accessible ``<svg>`` with a title and a description.

    Inline SVG in HTML needs no namespace declaration, so the page holds no URL.
    """
    head = (
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="chart" '
        f'aria-labelledby="{escape(uid)}-t {escape(uid)}-d" '
        f'font-size="{num(font_size)}" fill="{INK}">'
        f'<title id="{escape(uid)}-t">{escape(title)}</title>'
        f'<desc id="{escape(uid)}-d">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def hatch(pattern_id: str, colour: str) -> str:
    """A diagonal hatch pattern over ``colour``; ``pattern_id`` must be unique in the page."""
    return (
        f'<defs><pattern id="{escape(pattern_id)}" width="6" height="6" '
        f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="{colour}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-width="2.2" '
        f'stroke-opacity="0.55"/></pattern></defs>'
    )


@dataclass(frozen=True)
class Scale:
    """Linear map from a data interval to a pixel interval."""

    d0: float
    d1: float
    p0: float
    p1: float

    def __call__(self, value: float) -> float:
        if self.d1 == self.d0:
            return self.p0
        return self.p0 + (value - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)


def _step(raw: float, integer: bool) -> float:
    """The smallest 1/2/2.5/5 × 10^k step at or above ``raw`` (a whole number of at least 1
    when ``integer``)."""
    if integer and raw <= 1.0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    multiples = (1.0, 2.0, 5.0, 10.0) if integer and power < 10 else (1.0, 2.0, 2.5, 5.0, 10.0)
    return next(m * power for m in multiples if m * power >= raw * (1 - 1e-12))


def nice_ticks(
    low: float, high: float, max_ticks: int = 6, *, integer: bool = False
) -> list[float]:
    """Round tick positions covering ``[low, high]``, at most about ``max_ticks``.

    Steps are 1, 2, 2.5 or 5 times a power of ten; with ``integer=True`` (counts) they are
    whole numbers (1, 2, 5, 10, 20, 25, 50 …), so no tick falls between two counts.

    Examples
    --------
    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0.0, 0.07)
    [0.0, 0.02, 0.04, 0.06]
    >>> nice_ticks(0.0, 3.0, 5, integer=True)
    [0.0, 1.0, 2.0, 3.0]
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    step = _step((high - low) / max(max_ticks - 1, 1), integer)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def axis_ticks(high: float, max_ticks: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks of an axis from 0 whose last tick is at or above ``high`` (the axis' top).

    A constant zero, or no data (``high`` NaN or <= 0), gets the axis 0–1.

    Examples
    --------
    >>> axis_ticks(7.0, integer=True)
    [0.0, 2.0, 4.0, 6.0, 8.0]
    >>> axis_ticks(0.0, integer=True)
    [0.0, 1.0]
    """
    if not math.isfinite(high) or high <= 0:
        high = 1.0
    step = _step(high / max(max_ticks - 1, 1), integer)
    return [round(i * step, 12) for i in range(max(math.ceil(high / step - 1e-9), 1) + 1)]


def tick_labels(ticks: Sequence[float], unit: str = "") -> list[str]:
    """Labels of ``ticks``, all with the fewest decimals that write every tick exactly.

    ``unit`` ``"%"`` labels fractions as percentages; otherwise large values are written
    in thousands (``k``, from 10,000) or millions (``M``, from 10,000,000) when the ticks
    are far enough apart, with thousands separators; zero is "0". No two distinct ticks
    get the same label.

    Examples
    --------
    >>> tick_labels([0.0, 0.25, 0.5, 0.75, 1.0])
    ['0', '0.25', '0.50', '0.75', '1.00']
    >>> tick_labels([0.001, 0.002, 0.003], "%")
    ['0.1%', '0.2%', '0.3%']
    >>> tick_labels([0.0, 25_000.0, 50_000.0])
    ['0', '25k', '50k']
    """
    if not ticks:
        return []
    values = [float(t) for t in ticks]
    gaps = [abs(b - a) for a, b in itertools.pairwise(values) if b != a]
    gap = min(gaps, default=max(abs(v) for v in values) or 1.0)
    largest = max(abs(v) for v in values)
    suffix, scale = "", 1.0
    if unit == "%":
        suffix, scale = "%", 100.0
    elif largest >= 10_000_000 and gap >= 100_000:  # k and M keep a decimal at most
        suffix, scale = "M", 1e-6
    elif largest >= 10_000 and gap >= 100:
        suffix, scale = "k", 1e-3
    scaled = [v * scale for v in values]
    tolerance = 1e-6 * gap * scale
    for decimals in range(0, 13):
        texts = [f"{v:,.{decimals}f}" for v in scaled]
        exact = all(abs(v - round(v, decimals)) <= tolerance for v in scaled)
        if exact and len(set(texts)) == len(set(scaled)):
            break
    zero = "0" + suffix * (unit == "%")
    return [zero if v == 0 else f"{t}{suffix}" for v, t in zip(scaled, texts, strict=True)]


def nice_ceiling(value: float) -> float:
    """Smallest 1/2/2.5/5 × 10^k at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= value - 1e-12:
            return m * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def pct(value: float) -> str:
    """A fraction as a percentage with one decimal; NaN as a dash."""
    return "—" if math.isnan(value) else f"{value * 100:.1f}%"


def count_label(count: float) -> str:
    """A count for an axis: thousands separators, ``k`` from 10,000 on."""
    if count >= 10_000:
        return f"{count / 1000:,.0f}k"
    return f"{count:,.0f}"


def x_axis(
    scale: Scale, ticks: Sequence[float], y: float, labels: Sequence[str], title: str, top: float
) -> list[str]:
    """A horizontal axis at pixel ``y``, with vertical grid lines up to ``top``."""
    out = [element("line", x1=scale.p0, y1=y, x2=scale.p1, y2=y, stroke=AXIS)]
    for tick, label in zip(ticks, labels, strict=True):
        x = scale(tick)
        out.append(element("line", x1=x, y1=top, x2=x, y2=y, stroke=GRID))
        out.append(element("line", x1=x, y1=y, x2=x, y2=y + 4, stroke=AXIS))
        out.append(text_el(x, y + 16, label, text_anchor="middle", fill=MUTED))
    if title:
        out.append(
            text_el(
                (scale.p0 + scale.p1) / 2,
                y + 34,
                title,
                text_anchor="middle",
                fill=INK,
                class_="ax",
            )
        )
    return out


def y_axis(
    scale: Scale, ticks: Sequence[float], x: float, labels: Sequence[str], title: str, right: float
) -> list[str]:
    """A vertical axis at pixel ``x``, with horizontal grid lines to ``right``."""
    out = [element("line", x1=x, y1=scale.p0, x2=x, y2=scale.p1, stroke=AXIS)]
    for tick, label in zip(ticks, labels, strict=True):
        y = scale(tick)
        out.append(element("line", x1=x, y1=y, x2=right, y2=y, stroke=GRID))
        out.append(element("line", x1=x - 4, y1=y, x2=x, y2=y, stroke=AXIS))
        out.append(text_el(x - 7, y + 3.5, label, text_anchor="end", fill=MUTED))
    middle = (scale.p0 + scale.p1) / 2
    out.append(
        text_el(
            14,
            middle,
            title,
            text_anchor="middle",
            transform=f"rotate(-90 14 {num(middle)})",
            fill=INK,
            class_="ax",
        )
    )
    return out


def legend_box(x: float, y: float, items: Sequence[tuple[str, str]], width: float) -> list[str]:
    """A boxed legend; each item is (swatch markup at origin, label)."""
    height = 10 + 16 * len(items)
    out = [
        element(
            "rect",
            x=x,
            y=y,
            width=width,
            height=height,
            rx=4,
            fill="#ffffff",
            fill_opacity=0.92,
            stroke=GRID,
        )
    ]
    for i, (swatch, label) in enumerate(items):
        row_y = y + 13 + 16 * i
        out.append(f'<g transform="translate({num(x + 8)} {num(row_y - 5)})">{swatch}</g>')
        out.append(text_el(x + 30, row_y, label, fill=INK))
    return out


def legend_rows(
    x: float, y: float, items: Sequence[tuple[str, str]], width: float
) -> tuple[list[str], int]:
    """A legend laid out left to right in rows of at most ``width`` pixels, above a plot
    (so it never covers the data); the markup and the number of rows (16 px each).

    Each item is (swatch markup at origin, label); text is measured at about 6.2 px a
    character (11 px sans-serif).
    """
    out: list[str] = []
    row, left = 0, x
    for swatch, label in items:
        size = 22 + 6.2 * len(label) + 14
        if left > x and left + size > x + width:
            row, left = row + 1, x
        row_y = y + 16 * row
        out.append(f'<g transform="translate({num(left)} {num(row_y - 9)})">{swatch}</g>')
        out.append(text_el(left + 22, row_y, label, fill=INK))
        left += size
    return out, row + 1 if items else 0


# ---------------------------------------------------------------------------------------------
# Curve downsampling
# ---------------------------------------------------------------------------------------------


def downsample_curve(
    x: ArrayLike, y: ArrayLike, max_points: int = MAX_CURVE_POINTS
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Thin a curve to at most ``max_points`` points while keeping its shape.

    Points with a non-finite coordinate are dropped and the rest sorted by ``x``.
    The x range is cut into ``(max_points - 2) // 2`` equal buckets; each keeps
    its lowest and highest ``y`` (min–max decimation), so spikes survive. The
    first and last points are always kept.

    Parameters
    ----------
    x, y : array-like of shape (n_points,)
        The curve.
    max_points : int, default=400
        Upper bound on the number of points returned.

    Returns
    -------
    x, y : ndarray of shape (m,), m <= max_points
        The kept points, sorted by ``x``.

    Examples
    --------
    >>> xs = np.linspace(0, 1, 1_000_000)
    >>> kx, ky = downsample_curve(xs, xs**2)
    >>> len(kx) <= 400, float(kx[0]), float(kx[-1])
    (True, 0.0, 1.0)
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if xs.size <= max_points:
        return xs, ys
    n_buckets = max((max_points - 2) // 2, 1)
    span = xs[-1] - xs[0]
    if span <= 0:
        bucket = (np.arange(xs.size) * n_buckets // xs.size).astype(np.intp)
    else:
        bucket = np.minimum(((xs - xs[0]) / span * n_buckets).astype(np.intp), n_buckets - 1)
    by_bucket = np.lexsort((ys, bucket))
    sorted_bucket = bucket[by_bucket]
    starts = np.flatnonzero(np.r_[True, sorted_bucket[1:] != sorted_bucket[:-1]])
    ends = np.r_[starts[1:], sorted_bucket.size] - 1
    chosen = np.unique(np.r_[by_bucket[starts], by_bucket[ends], 0, xs.size - 1])
    return xs[chosen], ys[chosen]
