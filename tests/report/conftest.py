"""Realistic synthetic inputs for the report: what a demo run over two or three models yields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from failwise.report import (
    ACTIONS,
    Assumption,
    MetricValue,
    ModelSection,
    ReliabilityBins,
)


def simulate_section(
    name: str,
    rng: np.random.Generator,
    *,
    n: int = 5_000,
    skill: float = 4.0,
    overconfidence: float = 0.4,
    target_risk: float = 0.02,
) -> ModelSection:
    """Simulate one evaluated model: confidences, correctness, a fitted ladder and its outcomes."""
    calibrated = rng.beta(skill, 1.0, size=n)
    correct = (rng.random(n) < calibrated).astype(int)
    raw = calibrated**overconfidence  # an overconfident model before calibration
    after = np.clip(calibrated + rng.normal(0.0, 0.01, size=n), 0.0, 1.0)
    order = np.argsort(-after, kind="stable")
    errors = np.cumsum(1 - correct[order])
    answered = np.arange(1, n + 1)
    coverage = answered / n
    risk = errors / answered
    within = np.flatnonzero(risk <= target_risk)
    k = int(within[-1]) + 1 if within.size else 0
    operating_coverage = k / n
    operating_risk = float(risk[k - 1]) if k else float("nan")

    rest = order[k:]
    cuts = np.array_split(rest, [len(rest) * 5 // 10, len(rest) * 7 // 10, len(rest) * 95 // 100])
    success = {"clarify": 0.9, "fallback": 0.7, "escalate": 0.97, "abstain": 0.0}
    counts: dict[str, tuple[int, int]] = {}
    good = int(correct[order[:k]].sum())
    counts["answer"] = (good, k - good)
    for action, idx in zip(ACTIONS[1:], cuts, strict=True):
        ok = int((rng.random(idx.size) < success[action]).sum())
        counts[action] = (ok, int(idx.size) - ok)
    done = sum(c for c, _ in counts.values()) / n
    half = 1.96 * np.sqrt(done * (1 - done) / n)
    escalated = sum(counts["escalate"]) / n
    first_wrong = counts["answer"][1] + counts["clarify"][1]
    recovered = 0.6 * first_wrong
    metrics = {
        "task_completion_rate": MetricValue(done, max(done - half, 0.0), min(done + half, 1.0)),
        "time_to_correct_output_median_s": MetricValue(float(rng.uniform(1.0, 3.0)), unit="s"),
        "time_to_correct_output_p90_s": MetricValue(float(rng.uniform(200.0, 900.0)), unit="s"),
        "escalation_rate": MetricValue(escalated, escalated * 0.9, min(escalated * 1.1, 1.0)),
        "recovery_rate": MetricValue(recovered / max(first_wrong, 1) if first_wrong else 0.0),
        "silent_failure_rate": MetricValue(counts["answer"][1] * 0.4 / n),
        "automation_rate": MetricValue(operating_coverage),
        "selective_accuracy": MetricValue(1.0 - (operating_risk if k else 0.0)),
        "human_hours_per_1000_tasks": MetricValue(escalated * 1000 * 3.5 / 60, unit="h"),
    }
    return ModelSection(
        name=name,
        accuracy=float(correct.mean()),
        before=ReliabilityBins.from_predictions(raw, correct, n_bins=15),
        after=ReliabilityBins.from_predictions(after, correct, n_bins=15),
        coverage=coverage,
        risk=risk,
        operating_coverage=operating_coverage,
        operating_risk=operating_risk,
        target_risk=target_risk,
        outcome_counts=counts,
        metrics=metrics,
        policy_summary=(
            f"Answer when calibrated confidence ≥ {float(after[order[max(k - 1, 0)]]):.3f} "
            f"(at most {target_risk:.0%} wrong among answers, 95% confidence); clarify with the "
            "top 3 labels below that; escalate the least confident 25%."
        ),
    )


ASSUMPTIONS = [
    Assumption("P(user notices a wrong answer)", "0.60", "Support-assistant usability study."),
    Assumption("P(user picks the right label in a clarification)", "0.90", "Three options."),
    Assumption("Fallback accuracy", "0.70", "Measured on the keyword rules over the dev split."),
    Assumption("Human accuracy", "0.97", "Reviewer agreement on a double-labelled sample."),
    Assumption("Human response time", "6 min median", "Queue service-level objective."),
    Assumption("Answer latency", "0.4 s", "Measured p50 of the model server."),
]


@pytest.fixture
def simulate() -> Callable[..., ModelSection]:
    """The section simulator, for tests that need other sizes or settings."""
    return simulate_section


@pytest.fixture
def sections(rng: np.random.Generator) -> list[ModelSection]:
    return [
        simulate_section("TF-IDF + logistic regression", rng, skill=3.0, overconfidence=0.5),
        simulate_section("MiniLM + logistic regression", rng, skill=6.0, overconfidence=0.3),
        simulate_section("Keyword baseline", rng, n=2_000, skill=1.5, overconfidence=0.7),
    ]


@pytest.fixture
def report_kwargs(sections: list[ModelSection]) -> dict[str, Any]:
    return {
        "title": "CLINC150: intent routing",
        "dataset": "CLINC150 test split: 5,500 queries, 150 intents plus 1,000 out-of-scope.",
        "sections": sections,
        "assumptions": ASSUMPTIONS,
        "generated_by": "failwise demo --seed 0",
        "notes": ["Out-of-scope queries count as correct only when escalated or abstained."],
    }
