"""Measured online = projected offline: a replayed evaluation set reproduces `project`.

Digits (classes 0–7, 8 and 9 out of scope) through a real `Guard` with a real store;
scripted users and reviewers act out the same `OutcomeModel` on a simulated clock; then
`measure(store)` must agree with `project(decisions, y, model)` within the intervals.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from failwise import store
from failwise.outcomes import OutcomeModel, ProductMetrics, measure, project
from failwise.outcomes._replay import replay
from failwise.runtime import Guard

TESTS = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


digits_helper = _load("failwise_test_digits", TESTS / "runtime" / "_digits.py")
store_fixtures = _load("failwise_test_store_fixtures", TESTS / "store" / "conftest.py")
postgres_server = store_fixtures.postgres_server
postgres_url = store_fixtures.postgres_url
sqlite_url = store_fixtures.sqlite_url
store_url = store_fixtures.store_url

POLICY = "risk_ood_fallback_capacity"  # every rung of the ladder fires on digits
#: Rates with hundreds of tasks behind them: the measured value lies in the projected CI.
POINT_INSIDE = (
    "task_completion_rate",
    "time_to_correct_output_median_s",
    "time_to_correct_output_p90_s",
    "escalation_rate",
    "silent_failure_rate",
    "automation_rate",
    "selective_accuracy",
)


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    with store.open(store_url) as opened:
        yield opened


def _replayed(events: store.Store, seed: int) -> tuple[ProductMetrics, ProductMetrics, Any]:
    data = digits_helper.digits()
    policy = digits_helper.named_policy(POLICY)
    model = OutcomeModel()
    X, y = data.X_test, data.y_test
    with Guard(
        data.model.decision_function,
        data.calibrator,
        policy,
        ood=data.knn,
        fallback=data.rule,
        store=events,
        audit_rate=0.3,
        random_state=seed,
    ) as guard:
        decisions = guard.decide_batch(list(X))
    offline = policy.decide(data.proba(X), data.ood(X), data.fallback_labels(X))
    assert [d.action for d in decisions] == [d.action for d in offline]
    summary = replay(
        events, decisions, y, model, n_classes=digits_helper.N_CLASSES, random_state=seed
    )
    projected = project(offline, y, model, random_state=seed)
    return projected, measure(events, outcome_model=model), summary


def test_measured_metrics_reproduce_the_projection_within_intervals(
    events: store.Store, seed: int
) -> None:
    projected, measured, summary = _replayed(events, seed)
    assert measured.source == "measured"
    assert measured.n_tasks == projected.n_tasks
    assert summary.audits_resolved > 0
    assert summary.escalations_resolved > 0
    for name in projected.metric_names():
        p, m = getattr(projected, name), getattr(measured, name)
        if name == "human_hours_per_1000_tasks":
            # Online, audits are human load too; the projection counts escalations only.
            audit_hours = summary.audits_resolved * 120.0 / 3600.0 / measured.n_tasks * 1000
            m = type(m)(m.value - audit_hours, m.low - audit_hours, m.high - audit_hours)
        assert m.low <= m.value <= m.high, name
        assert m.high >= p.low - 1e-9, (name, p, m)  # the intervals overlap
        assert m.low <= p.high + 1e-9, (name, p, m)
        if name in POINT_INSIDE or name == "human_hours_per_1000_tasks":
            assert p.low - 1e-9 <= m.value <= p.high + 1e-9, (name, p, m)


def test_every_backend_measures_the_same_numbers_from_the_same_events(
    events: store.Store, tmp_path: Path
) -> None:
    pytest.importorskip("duckdb")
    from failwise.export import to_parquet

    _, measured, _ = _replayed(events, 0)
    to_parquet(events, tmp_path / "export")
    again = measure(tmp_path / "export", outcome_model=OutcomeModel())
    for name in measured.metric_names():
        a, b = getattr(measured, name), getattr(again, name)
        np.testing.assert_allclose([a.value, a.low, a.high], [b.value, b.low, b.high], rtol=1e-9)
