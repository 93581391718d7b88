"""The rendered page: valid, self-contained, complete per model, escaped and ranked."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.report import (
    Assumption,
    MetricValue,
    ModelSection,
    format_metric,
    render_report,
    write_report,
)

_VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "source", "col", "area", "base"}


@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = dataclasses.field(default_factory=list)
    text: str = ""

    def iter(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            classes = child.attrs.get("class", "").split()
            if (tag is None or child.tag == tag) and (cls is None or cls in classes):
                found.append(child)
            found += child.iter(tag, cls)
        return found

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class _TreeBuilder(HTMLParser):
    """Builds a tree and fails on any tag that is closed out of order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        open_tag = self.stack[-1].tag
        if open_tag != tag:
            raise AssertionError(f"</{tag}> closes <{open_tag}>")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(page: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed: {[n.tag for n in builder.stack[1:]]}"
    assert builder.doctype.lower() == "doctype html"
    return builder.root


@pytest.fixture
def page(report_kwargs: dict[str, Any]) -> str:
    return render_report(**report_kwargs)


def test_report_is_a_well_formed_html_document(page: str) -> None:
    root = parse(page)
    (html,) = root.iter("html")
    assert html.attrs["lang"] == "en"
    metas = root.iter("meta")
    assert any(m.attrs.get("charset", "").lower() == "utf-8" for m in metas)
    assert any(m.attrs.get("name") == "viewport" for m in metas)
    (title,) = [n for n in root.iter("title") if n in root.iter("head")[0].children]
    assert title.text == "CLINC150: intent routing"


def test_report_references_no_external_resource(page: str) -> None:
    assert "http://" not in page
    assert "https://" not in page
    assert "@import" not in page
    assert "<script" not in page
    assert "<link" not in page
    for attribute in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attribute.startswith("#"), attribute
    for target in re.findall(r"url\(([^)]*)\)", page):
        assert target.startswith("#"), target


def test_report_has_one_diagram_pair_curve_and_breakdown_per_model(
    page: str, report_kwargs: dict[str, Any]
) -> None:
    root = parse(page)
    models = root.iter("section", cls="model")
    assert len(models) == len(report_kwargs["sections"])
    for model in models:
        reliability = model.iter("figure", cls="reliability")
        assert [f.iter("figcaption")[0].text for f in reliability] == [
            "Before calibration",
            "After calibration",
        ]
        assert all(len(f.iter("svg")) == 1 for f in reliability)
        assert len(model.iter("figure", cls="risk-coverage")) == 1
        assert len(model.iter("figure", cls="breakdown")) == 1
        (table,) = model.iter("table", cls="breakdown")
        rows = [r.iter("th")[0].all_text() for r in table.iter("tbody")[0].iter("tr")]
        assert rows == ["Answer", "Clarify", "Fallback", "Escalate", "Abstain"]


def test_every_chart_is_accessible_and_ids_are_unique(page: str) -> None:
    root = parse(page)
    svgs = root.iter("svg")
    assert len(svgs) == 1 + 4 * 3  # summary chart, then four charts per model
    for svg in svgs:
        assert svg.attrs["role"] == "img"
        label_ids = svg.attrs["aria-labelledby"].split()
        child_ids = {c.attrs.get("id") for c in svg.children}
        assert set(label_ids) <= child_ids
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_risk_coverage_curves_are_thinned_for_drawing(
    rng: np.random.Generator,
    simulate: Callable[..., ModelSection],
    report_kwargs: dict[str, Any],
) -> None:
    section = simulate("big", rng, n=400_000)
    page = render_report(**{**report_kwargs, "sections": [section]})
    (points,) = re.findall(r'<polyline points="([^"]*)"', page)
    assert len(points.split()) <= 400
    assert len(page) < 200_000


def test_comparison_is_ranked_by_task_completion(page: str, report_kwargs: dict[str, Any]) -> None:
    root = parse(page)
    (table,) = root.iter("table", cls="compare")
    names = [row.iter("th")[0].all_text() for row in table.iter("tbody")[0].iter("tr")]
    by_completion = sorted(
        report_kwargs["sections"],
        key=lambda s: -s.metrics["task_completion_rate"].value,
    )
    assert names == [s.name for s in by_completion]
    headers = [th.all_text() for th in table.iter("thead")[0].iter("th")]
    for column in (
        "Accuracy",
        "Task completion",
        "Time to correct (median, p90)",
        "Escalation rate",
        "Recovery rate",
        "Silent failures",
        "Automation rate",
    ):
        assert column in headers
    assert headers.index("Accuracy") + 1 == headers.index("Task completion")


def test_numbers_are_formatted_as_percentages_with_one_decimal(
    page: str, report_kwargs: dict[str, Any]
) -> None:
    best = max(report_kwargs["sections"], key=lambda s: s.metrics["task_completion_rate"].value)
    done = best.metrics["task_completion_rate"]
    assert f"{best.accuracy * 100:.1f}%" in page
    assert f"{done.value * 100:.1f}%" in page
    assert f"{done.low * 100:.1f}–{done.high * 100:.1f}%" in page
    root = parse(page)
    (table,) = root.iter("table", cls="compare")
    for cell in table.iter("td"):
        if "rank-cell" in cell.attrs.get("class", ""):
            continue
        value = cell.text.strip()
        assert re.fullmatch(r"(\d[\d,]*\.\d( ?%| s| min| h)|—)", value), cell.all_text()


def test_assumptions_and_dataset_are_listed(page: str, report_kwargs: dict[str, Any]) -> None:
    root = parse(page)
    (table,) = root.iter("table", cls="assumptions")
    rows = table.iter("tbody")[0].iter("tr")
    assert len(rows) == len(report_kwargs["assumptions"])
    first = report_kwargs["assumptions"][0]
    cells = [c.all_text() for c in rows[0].children]
    assert cells == [first.name, first.value, first.reason]
    assert report_kwargs["dataset"] in page
    assert report_kwargs["notes"][0] in page
    assert "failwise demo --seed 0" in page


def test_report_escapes_every_user_supplied_text(report_kwargs: dict[str, Any]) -> None:
    evil = "<script>alert('x')</script>"
    sections = list(report_kwargs["sections"])
    sections[0] = dataclasses.replace(sections[0], name=evil, policy_summary=evil + " & more")
    page = render_report(
        title=evil,
        dataset=evil,
        sections=sections,
        assumptions=[Assumption(evil, evil, evil)],
        generated_by=evil,
        notes=[evil],
    )
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    parse(page)


def test_report_with_one_model_and_no_target_or_answers(report_kwargs: dict[str, Any]) -> None:
    section = dataclasses.replace(
        report_kwargs["sections"][0],
        target_risk=None,
        operating_coverage=0.0,
        operating_risk=float("nan"),
    )
    page = render_report(**{**report_kwargs, "sections": [section]})
    parse(page)
    assert "answers nothing automatically" in page
    assert "Target risk" not in page
    assert "best" not in re.findall(r'class="([^"]*)"', page)  # nothing to compare against


def test_report_says_when_no_assumptions_were_stated(report_kwargs: dict[str, Any]) -> None:
    page = render_report(**{**report_kwargs, "assumptions": []})
    assert "No assumptions were stated" in page


def test_headline_names_a_more_accurate_model_that_completes_fewer_tasks(
    report_kwargs: dict[str, Any],
) -> None:
    a, b = report_kwargs["sections"][:2]
    sharp = dataclasses.replace(
        a,
        name="sharp",
        accuracy=0.95,
        metrics={"task_completion_rate": MetricValue(0.80, 0.79, 0.81)},
    )
    steady = dataclasses.replace(
        b,
        name="steady",
        accuracy=0.90,
        metrics={"task_completion_rate": MetricValue(0.90, 0.89, 0.91)},
    )
    page = render_report(**{**report_kwargs, "sections": [sharp, steady]})
    assert "steady completes the most tasks: 90.0%." in page
    assert "sharp is more accurate (95.0% against 90.0%) but completes fewer tasks" in page


def test_render_report_rejects_empty_or_duplicate_sections(report_kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="`sections` is empty; the report needs at least one"):
        render_report(**{**report_kwargs, "sections": []})
    first = report_kwargs["sections"][0]
    with pytest.raises(InputError, match="model names must be unique"):
        render_report(**{**report_kwargs, "sections": [first, first]})


def test_render_report_rejects_wrong_argument_types(report_kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError, match=r"`notes` must be a sequence .* of str; got str"):
        render_report(**{**report_kwargs, "notes": "one note"})
    with pytest.raises(InputError, match=r"`sections\[0\]` must be a ModelSection; got dict"):
        render_report(**{**report_kwargs, "sections": [{"name": "x"}]})
    with pytest.raises(InputError, match="`title` is empty"):
        render_report(**{**report_kwargs, "title": " "})


def test_write_report_writes_utf8_and_returns_the_path(
    tmp_path: Path, report_kwargs: dict[str, Any]
) -> None:
    target = write_report(tmp_path / "out" / "report.html", **report_kwargs)
    assert target == (tmp_path / "out" / "report.html").resolve()
    text = target.read_text(encoding="utf-8")
    assert text == render_report(**report_kwargs)
    assert "–" in text  # typographic characters survive the round trip
    with pytest.raises(InputError, match="is a folder"):
        write_report(tmp_path, **report_kwargs)


def test_rendering_is_deterministic(report_kwargs: dict[str, Any]) -> None:
    assert render_report(**report_kwargs) == render_report(**report_kwargs)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (MetricValue(0.8734, 0.8512, 0.8921), ("87.3%", "85.1–89.2%")),
        (MetricValue(float("nan")), ("—", "")),
        (MetricValue(4.25, unit="s"), ("4.2 s", "")),
        (MetricValue(312.0, 250.0, 400.0, unit="s"), ("5.2 min", "4.2–6.7 min")),
        (MetricValue(7200.0, unit="s"), ("2.0 h", "")),
        (MetricValue(11.52, unit="h"), ("11.5 h", "")),
        (MetricValue(1234.5, unit=""), ("1,234.5", "")),
        (MetricValue(0.5, low=0.4), ("50.0%", "≥ 40.0%")),
    ],
)
def test_format_metric(metric: MetricValue, expected: tuple[str, str]) -> None:
    assert format_metric(metric) == expected


def test_sections_are_plain_data_the_cli_can_build() -> None:
    fields = {f.name for f in dataclasses.fields(ModelSection)}
    assert {"name", "accuracy", "before", "after", "coverage", "risk", "metrics"} <= fields
    assert dataclasses.is_dataclass(ModelSection)
    assert ModelSection.__dataclass_params__.frozen  # type: ignore[attr-defined]
