"""The inline SVG charts: well-formed, escaped, and thin enough to draw."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from failwise.report import ReliabilityBins
from failwise.report._charts import (
    accuracy_completion_chart,
    outcome_breakdown_chart,
    reliability_diagram,
    risk_coverage_chart,
)
from failwise.report._svg import axis_ticks, downsample_curve, nice_ticks, tick_labels


def _polyline_points(svg: str) -> int:
    match = re.search(r'<polyline points="([^"]*)"', svg)
    assert match is not None
    return len(match.group(1).split())


def test_downsample_curve_keeps_at_most_400_points_of_a_million() -> None:
    x = np.linspace(0.0, 1.0, 1_000_000)
    y = 0.1 * x**2
    kx, ky = downsample_curve(x, y)
    assert len(kx) <= 400
    assert (kx[0], kx[-1]) == (0.0, 1.0)
    assert np.all(np.diff(kx) >= 0)
    # The thinned curve still follows the original closely.
    assert np.max(np.abs(ky - 0.1 * kx**2)) < 1e-12
    assert np.max(np.abs(np.interp(x, kx, ky) - y)) < 1e-4


def test_downsample_curve_keeps_a_single_spike() -> None:
    x = np.linspace(0.0, 1.0, 200_000)
    y = np.full_like(x, 0.05)
    y[123_457] = 0.9
    _, ky = downsample_curve(x, y)
    assert ky.max() == 0.9


def test_downsample_curve_drops_nan_and_sorts_by_x() -> None:
    kx, ky = downsample_curve([1.0, 0.0, 0.5, 0.7], [0.3, float("nan"), 0.1, 0.2])
    assert kx.tolist() == [0.5, 0.7, 1.0]
    assert ky.tolist() == [0.1, 0.2, 0.3]


@given(
    st.lists(
        st.tuples(
            st.floats(0, 1, allow_nan=False),
            st.floats(0, 1, allow_nan=False),
        ),
        min_size=1,
        max_size=3_000,
    ),
    st.integers(4, 500),
)
def test_downsample_curve_returns_a_bounded_subset_with_the_extremes(
    points: list[tuple[float, float]], max_points: int
) -> None:
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    kx, ky = downsample_curve(x, y, max_points=max_points)
    assert len(kx) <= max(max_points, 1)
    assert np.all(np.diff(kx) >= 0)
    original = set(zip(x.tolist(), y.tolist(), strict=True))
    assert set(zip(kx.tolist(), ky.tolist(), strict=True)) <= original
    assert ky.max() == y.max()
    assert ky.min() == y.min()


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.6, 0.9, 6)
    assert ticks[0] >= 0.6
    assert ticks[-1] <= 0.9
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])


def test_reliability_diagram_is_well_formed_svg_with_ece_in_the_legend(
    rng: np.random.Generator,
) -> None:
    confidence = rng.random(1_000)
    bins = ReliabilityBins.from_predictions(confidence, rng.random(1_000) < confidence)
    svg = reliability_diagram(bins, title="After calibration", uid="x")
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    assert root.get("role") == "img"
    texts = [t.text for t in root.iter("text")]
    assert f"ECE {bins.ece * 100:.1f}%" in texts
    assert "Confidence" in texts
    assert "Accuracy" in texts


def test_reliability_diagram_draws_no_bar_for_an_empty_bin() -> None:
    bins = ReliabilityBins(
        mean_confidence=[0.2, float("nan")],
        accuracy=[0.1, float("nan")],
        count=[5, 0],
        bin_lower=[0.0, 0.5],
        bin_upper=[0.5, 1.0],
        ece=0.1,
    )
    svg = reliability_diagram(bins, title="Before calibration", uid="e")
    assert "nan" not in svg.lower()
    assert svg.count("Confidence 0.50–1.00") == 0


def test_risk_coverage_chart_draws_a_thinned_curve_and_the_operating_point() -> None:
    n = 1_000_000
    coverage = np.arange(1, n + 1) / n
    risk = 0.2 * coverage**3
    svg = risk_coverage_chart(
        coverage,
        risk,
        operating_coverage=0.45,
        operating_risk=0.018,
        target_risk=0.02,
        uid="rc",
    )
    ET.fromstring(svg)
    assert _polyline_points(svg) <= 400
    assert "Target risk 2.0%" in svg
    assert "coverage 45.0%, risk 1.8%" in svg
    assert 'stroke-dasharray="6 4"' in svg  # the dashed target line


def test_risk_coverage_chart_without_target_or_answers() -> None:
    svg = risk_coverage_chart(
        [0.0, 0.5, 1.0],
        [float("nan"), 0.1, 0.2],
        operating_coverage=0.0,
        operating_risk=float("nan"),
        target_risk=None,
        uid="none",
    )
    ET.fromstring(svg)
    assert "Target risk" not in svg
    assert "answers nothing automatically" in svg


def test_outcome_breakdown_chart_has_one_bar_pair_per_action() -> None:
    counts = {
        "answer": (700, 20),
        "clarify": (150, 15),
        "fallback": (40, 10),
        "escalate": (50, 2),
        "abstain": (0, 13),
    }
    svg = outcome_breakdown_chart(counts, uid="ob")
    root = ET.fromstring(svg)
    labels = [t.text for t in root.iter("text")]
    for action in ("Answer", "Clarify", "Fallback", "Escalate", "Abstain"):
        assert action in labels
    assert "720 · 72.0%" in labels
    assert "abstain: 13 ended incorrectly" in svg
    assert "abstain: 0 ended correctly" not in svg


def test_chart_text_is_escaped() -> None:
    svg = accuracy_completion_chart([("<script>alert(1)</script>", 0.9, 0.8, 0.7, 0.85)], uid="s")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    ET.fromstring(svg)


@given(
    st.floats(0.0, 1e9, allow_nan=False),
    st.floats(1e-6, 1e9, allow_nan=False),
    st.booleans(),
    st.sampled_from(["", "%"]),
)
def test_axis_ticks_cover_the_data_with_distinct_labels(
    low: float, span: float, integer: bool, unit: str
) -> None:
    assume(span >= 1e-6 * low)  # an axis a chart draws, not one float's rounding error
    high = low + span
    ticks = axis_ticks(high, 5, integer=integer)
    assert ticks[0] == 0.0
    assert ticks[-1] >= high * (1 - 1e-9)
    assert 2 <= len(ticks) <= 7
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    if integer:
        assert all(float(t).is_integer() for t in ticks)
    labels = tick_labels(ticks, unit)
    assert len(set(labels)) == len(labels)
    inside = nice_ticks(low, high, 5, integer=integer)
    assert all(low - 1e-9 * high <= t <= high * (1 + 1e-9) for t in inside)
    assert len(set(tick_labels(inside, unit))) == len(inside)


def test_integer_ticks_skip_fractional_steps() -> None:
    assert nice_ticks(0.0, 1.0, 5, integer=True) == [0.0, 1.0]
    assert nice_ticks(0.0, 7.0, 5, integer=True) == [0.0, 2.0, 4.0, 6.0]
    assert nice_ticks(0.0, 100.0, 5, integer=True) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert nice_ticks(0.0, 10.0, 5, integer=True) == [0.0, 5.0, 10.0]  # not 2.5
    assert tick_labels([0.0, 0.5, 1.0]) == ["0", "0.5", "1.0"]
    assert tick_labels([]) == []
    assert tick_labels([9_500.0, 10_000.0, 10_500.0]) == ["9.5k", "10.0k", "10.5k"]
