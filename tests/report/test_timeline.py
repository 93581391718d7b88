"""Timeline charts: gaps for empty buckets, bands, escaped text, refusals."""

from __future__ import annotations

import math
import re

import pytest

from failwise.exceptions import InputError
from failwise.report import TimelineSeries, stacked_timeline_chart, timeline_chart

HOUR = 3600.0
T0 = 1_767_225_600.0


def test_a_line_has_a_gap_where_a_bucket_is_empty_and_a_band_where_it_has_an_interval() -> None:
    starts = [T0 + k * HOUR for k in range(5)]
    line = TimelineSeries(
        "Task <completion>",
        [0.5, 0.6, math.nan, 0.7, 0.8],
        low=[0.4, 0.5, math.nan, 0.6, 0.7],
        high=[0.6, 0.7, math.nan, 0.8, 0.9],
    )
    svg = str(timeline_chart(starts, HOUR, [line, line], title="A & B", uid="t1"))
    assert svg.count("<path") == 4  # a line and a band per series
    assert svg.count('d="M') == 4
    assert svg.count("Z") == 4  # each band: two runs, each closed
    assert svg.count("<circle") == 8  # four values per line
    assert "<title>00:00 Task &lt;completion&gt;: 50.0% (40.0% – 60.0%)</title>" in svg
    assert "Task &lt;completion&gt;" in svg
    assert "<completion>" not in svg
    assert "A &amp; B" in svg
    assert "00:00" in svg


def test_times_scale_to_the_values_and_days_are_labelled_by_date() -> None:
    starts = [T0 + k * 86400.0 for k in range(10)]
    values = [10.0] * 10
    line = TimelineSeries("p90", values, low=[5.0] * 10, high=[1.0e6] * 10)
    svg = str(timeline_chart(starts, 86400.0, [line], title="Time", uid="t2", unit="s"))
    assert "01-01" in svg
    assert "1,000k" not in svg  # the axis follows the values, not a huge upper bound
    empty = timeline_chart([T0], HOUR, [TimelineSeries("x", [math.nan])], title="E", uid="t3")
    assert "<circle" not in str(empty)


def test_stacked_counts_and_refusals() -> None:
    starts = [T0, T0 + HOUR]
    svg = str(
        stacked_timeline_chart(
            starts, HOUR, {"answer": [3, 0], "escalate": [1, 2]}, title="Mix", uid="m"
        )
    )
    assert svg.count("<rect") >= 3
    assert "answer 3, escalate 3" in svg
    assert "answer: 3 (75%)" in svg


def test_many_buckets_draw_one_path_per_series_and_dot_only_lone_values() -> None:
    starts = [T0 + k * HOUR for k in range(720)]
    values = [0.5 + 0.001 * (k % 7) for k in range(720)]
    values[100] = values[99] = values[101] = math.nan  # 100 stays on its own
    values[100] = 0.4
    line = TimelineSeries("Completion", values, low=[v - 0.1 for v in values], high=values)
    svg = str(timeline_chart(starts, HOUR, [line], title="Many", uid="many"))
    assert svg.count("<path") == 2
    assert svg.count("<circle") == 1  # the lone bucket, with its value
    assert ": 40.0% (30.0% – 40.0%)</title>" in svg
    assert "720 buckets" in svg
    counts = {"answer": [k % 3 for k in range(720)], "escalate": [1] * 720}
    bars = str(stacked_timeline_chart(starts, HOUR, counts, title="Mix", uid="mix"))
    assert bars.count("<path") == 2  # one per action
    assert bars.count("Z") == 480 + 720  # one closed bar per non-empty bucket
    assert "answer 720, escalate 720" in bars
    with pytest.raises(InputError, match="one value per bucket"):
        timeline_chart(starts, HOUR, [TimelineSeries("x", [1.0])], title="T", uid="x")
    with pytest.raises(InputError, match="at least one bucket"):
        stacked_timeline_chart([], HOUR, {}, title="T", uid="y")


def _y_labels(svg: str) -> list[str]:
    """The y axis' tick labels, bottom to top."""
    return re.findall(r'<text x="49" y="[^"]*" text-anchor="end" fill="[^"]*">([^<]*)</text>', svg)


@pytest.mark.parametrize(
    ("values", "unit", "labels"),
    [
        ([0.0, 1.0, 0.0], "", ["0", "1"]),
        ([0.0, 3.0, 2.0], "", ["0", "1", "2", "3"]),
        ([1.0, 7.0, 4.0], "", ["0", "2", "4", "6", "8"]),
        ([0.001, 0.004, 0.002], "", ["0", "0.001", "0.002", "0.003", "0.004"]),
        ([0.001, 0.004, 0.002], "%", ["0%", "0.1%", "0.2%", "0.3%", "0.4%"]),
        ([1_200.0, 123_456.0, 90_000.0], "", ["0", "50k", "100k", "150k"]),
        ([3.2e7, 1.0e6, 0.0], "", ["0", "10M", "20M", "30M", "40M"]),
        ([4.0, 4.0, 4.0], "", ["0", "1", "2", "3", "4"]),
        ([0.0, 0.0, 0.0], "", ["0", "1"]),
        ([0.5, 0.5, 0.5], "", ["0", "0.2", "0.4", "0.6"]),
        ([0.2, 0.93, 0.5], "%", ["0%", "25%", "50%", "75%", "100%"]),
    ],
)
def test_y_ticks_are_round_steps_labelled_once_each_and_whole_for_counts(
    values: list[float], unit: str, labels: list[str]
) -> None:
    starts = [T0 + k * HOUR for k in range(len(values))]
    svg = str(
        timeline_chart(starts, HOUR, [TimelineSeries("v", values)], title="Q", uid="q", unit=unit)
    )
    found = _y_labels(svg)
    assert found == labels
    assert len(set(found)) == len(found)  # no label twice ("0, 0, 1, 1" before)


def test_stacked_counts_get_whole_number_ticks() -> None:
    starts = [T0, T0 + HOUR]
    for counts, labels in (
        ([1, 0], ["0", "1"]),
        ([3, 2], ["0", "1", "2", "3"]),
        ([0, 0], ["0", "1"]),
    ):
        svg = str(stacked_timeline_chart(starts, HOUR, {"answer": counts}, title="M", uid="m"))
        assert _y_labels(svg) == labels


def test_the_legend_sits_above_the_plot_in_as_many_rows_as_it_needs() -> None:
    starts = [T0, T0 + HOUR]
    few = [TimelineSeries(name, [0.5, 0.9]) for name in ("Escalation", "Silent failures")]
    svg = str(timeline_chart(starts, HOUR, few, title="F", uid="f", y_title="Share <%>"))
    legend_y = {
        float(y)
        for y in re.findall(
            r'<text x="[^"]*" y="([^"]*)" fill="[^"]*">(?:Escalation|Silent failures)<', svg
        )
    }
    assert legend_y == {12.0}
    grid_top = min(float(y) for y in re.findall(r'<line x1="56" y1="([^"]*)" x2="548"', svg))
    assert grid_top == 30.0  # one legend row above the plot: nothing covers a line
    assert "Share &lt;%&gt;" in svg
    many = [TimelineSeries(f"A rather long series name {k}", [1.0, 2.0]) for k in range(6)]
    svg = str(timeline_chart(starts, HOUR, many, title="M", uid="m", unit=""))
    rows = {float(y) for y in re.findall(r'y="([^"]*)" fill="[^"]*">A rather long', svg)}
    assert len(rows) >= 3
    grid_top = min(float(y) for y in re.findall(r'<line x1="56" y1="([^"]*)" x2="548"', svg))
    assert grid_top == 14.0 + 16 * len(rows)
    single = str(timeline_chart(starts, HOUR, many[:1], title="S", uid="s", unit=""))
    assert "A rather long series name 0</text>" not in single  # one series: no legend
