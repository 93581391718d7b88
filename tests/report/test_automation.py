"""The report says what each ladder automates, and why a target was exceeded on test rows."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.report import ModelSection, render_report


def _nothing_answered(section: ModelSection) -> ModelSection:
    counts = dict(section.outcome_counts)
    answered = counts.pop("answer")
    clarify = counts["clarify"]
    counts["clarify"] = (clarify[0] + answered[0], clarify[1] + answered[1])
    counts["answer"] = (0, 0)
    return dataclasses.replace(
        section, operating_coverage=0.0, operating_risk=math.nan, outcome_counts=counts
    )


def test_headline_says_plainly_when_nothing_is_answered_automatically(
    report_kwargs: dict[str, Any],
) -> None:
    first = _nothing_answered(report_kwargs["sections"][0])
    page = render_report(**{**report_kwargs, "sections": [first]})
    lede = page.split('<p class="lede">', 1)[1].split("</p>", 1)[0]
    assert lede.startswith(f"{first.name} answers nothing automatically: ")
    assert "of requests go to clarification" in lede


def test_a_given_headline_and_notes_are_shown_for_the_model(
    report_kwargs: dict[str, Any],
) -> None:
    section = dataclasses.replace(
        report_kwargs["sections"][0],
        headline="The model answers 40.0% of requests automatically.",
        operating_risk_in_scope=0.004,
        notes=["4.8% of automatic answers are wrong because 16 out-of-scope inputs passed."],
    )
    page = render_report(**{**report_kwargs, "sections": [section]})
    assert "The model answers 40.0% of requests automatically." in page
    assert "because 16 out-of-scope inputs passed" in page
    assert "0.4% among in-scope inputs" in page


def test_frontier_is_drawn_as_a_small_table(report_kwargs: dict[str, Any]) -> None:
    section = dataclasses.replace(
        report_kwargs["sections"][0],
        frontier=[(0.02, 0.95, 0.0, 1200), (0.05, 0.95, 0.61, None)],
    )
    page = render_report(**{**report_kwargs, "sections": [section]})
    table = page.split('<table class="frontier">', 1)[1].split("</table>", 1)[0]
    assert "1,200" in table
    assert "61.0%" in table


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("frontier", [(0.02, 0.95, 1.5, None)], r"frontier\[0\] coverage"),
        ("frontier", [(0.02, 0.95, 0.5)], r"frontier\[0\]"),
        ("frontier", [(0.02, 0.95, 0.5, -3)], "non-negative int"),
        ("notes", "one string", "sequence of strings"),
        ("operating_risk_in_scope", 2.0, "operating_risk_in_scope"),
    ],
)
def test_new_section_fields_are_validated_by_name(
    simulate: Callable[..., ModelSection], field: str, value: Any, match: str
) -> None:
    section = simulate("m", np.random.default_rng(0), n=500)
    with pytest.raises(InputError, match=match):
        dataclasses.replace(section, **{field: value})
