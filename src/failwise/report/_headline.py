"""The sentences of the report: what each ladder automates, its operating point, the ranking.

The headline says plainly when a ladder answers nothing automatically, before it says which
model completes the most tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from failwise.report._section import ModelSection

__all__ = ["automation_headline", "headline", "operating_text"]


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 100:.1f}%"


_DESTINATION = {
    "clarify": "clarification",
    "fallback": "the fallback",
    "escalate": "a human",
    "abstain": "an honest 'not sure'",
}


def automation_headline(section: ModelSection) -> str:
    """The section's headline, or one worded from its operating point and outcome counts."""
    if section.headline:
        return section.headline
    if section.operating_coverage > 0 and not math.isnan(section.operating_risk):
        return (
            f"{section.name} answers {_pct(section.operating_coverage)} of requests "
            f"automatically, {_pct(section.operating_risk)} of those answers wrong."
        )
    counts = section.outcome_counts
    grand = sum(c + i for c, i in counts.values())
    shares = sorted(
        ((sum(counts[a]) / grand, a) for a in _DESTINATION if sum(counts[a])), reverse=True
    )
    parts = [f"{_pct(share)} of requests go to {_DESTINATION[a]}" for share, a in shares[:2]]
    return f"{section.name} answers nothing automatically: " + ", ".join(parts) + "."


def operating_text(section: ModelSection) -> str:
    if math.isnan(section.operating_risk):
        return "The ladder answers nothing automatically at this operating point."
    text = (
        f"Operating point: {_pct(section.operating_coverage)} of inputs answered automatically, "
        f"with {_pct(section.operating_risk)} of those answers wrong"
    )
    if section.target_risk is not None:
        verdict = "within" if section.operating_risk <= section.target_risk + 1e-12 else "above"
        text += f" ({verdict} the {_pct(section.target_risk)} target on this data)"
    if not math.isnan(section.operating_risk_in_scope) and (
        abs(section.operating_risk_in_scope - section.operating_risk) > 1e-12
    ):
        text += f"; {_pct(section.operating_risk_in_scope)} among in-scope inputs"
    return text + "."


def headline(ranked: Sequence[ModelSection]) -> str:
    automated = " ".join(automation_headline(s) for s in ranked)
    return f"{automated} {_completion_headline(ranked)}"


def _completion_headline(ranked: Sequence[ModelSection]) -> str:
    first = ranked[0]
    done = first.metrics["task_completion_rate"]
    if len(ranked) == 1:
        return (
            f"{first.name} completes {_pct(done.value)} of tasks at {_pct(first.accuracy)} "
            "accuracy."
        )
    text = f"{first.name} completes the most tasks: {_pct(done.value)}."
    most_accurate = max(ranked, key=lambda s: s.accuracy)
    if most_accurate is not first and most_accurate.accuracy > first.accuracy:
        text += (
            f" {most_accurate.name} is more accurate ({_pct(most_accurate.accuracy)} against "
            f"{_pct(first.accuracy)}) but completes fewer tasks "
            f"({_pct(most_accurate.metrics['task_completion_rate'].value)})."
        )
    second = ranked[1].metrics["task_completion_rate"]
    if done.low is not None and second.high is not None and done.low <= second.high:
        text += (
            f" The intervals of {first.name} and {ranked[1].name} overlap, so their order is "
            "not settled by this data."
        )
    return text
