"""Measured online = projected offline: a replayed evaluation set reproduces `project`.

Digits (classes 0–7, 8 and 9 out of scope, `failwise.testing.digits_system`) through a real
`Guard` with a real store; scripted users and reviewers act out the same `OutcomeModel` on a
simulated clock (`failwise.testing.replay`); then `measure(store)` must agree with
`project(decisions, y, model)` within the intervals — and, draw for draw, the replay acts
out exactly the behaviour `project` draws with the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from failwise import store
from failwise.outcomes import (
    OutcomeModel,
    ProductMetrics,
    draw_behaviour,
    measure,
    project,
    task_paths,
)
from failwise.testing import DigitsSystem, ReplayResult, digits_system, replay

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


@pytest.fixture(scope="module")
def system() -> DigitsSystem:
    return digits_system()  # the default policy: every rung of the ladder fires


def _replayed(
    events: store.Store, system: DigitsSystem, seed: int, model: OutcomeModel
) -> tuple[ProductMetrics, ProductMetrics, ReplayResult]:
    X, y = system.X_test, system.y_test
    guard = system.guard(store=events, audit_rate=0.3, random_state=seed)
    # measure takes audit labels as the truth, so the auditors here are exact.
    result = replay(guard, X, y, model, audit_accuracy=1.0, random_state=seed)
    offline = system.decide(X)
    assert [d.action for d in result.decisions] == [d.action for d in offline]
    projected = project(offline, y, model, random_state=seed)
    return projected, measure(events, outcome_model=model), result


def test_measured_metrics_reproduce_the_projection_within_intervals(
    events: store.Store, system: DigitsSystem, seed: int
) -> None:
    model = OutcomeModel()
    projected, measured, result = _replayed(events, system, seed, model)
    assert measured.source == "measured"
    assert measured.n_tasks == projected.n_tasks
    assert result.audits_resolved > 0
    assert result.escalations_resolved > 0
    for name in projected.metric_names():
        p, m = getattr(projected, name), getattr(measured, name)
        if name == "human_hours_per_1000_tasks":
            # Online, audits are human load too; the projection counts escalations only.
            audit_hours = result.audits_resolved * 120.0 / 3600.0 / measured.n_tasks * 1000
            m = type(m)(m.value - audit_hours, m.low - audit_hours, m.high - audit_hours)
        assert m.low <= m.value <= m.high, name
        assert m.high >= p.low - 1e-9, (name, p, m)  # the intervals overlap
        assert m.low <= p.high + 1e-9, (name, p, m)
        if name in POINT_INSIDE or name == "human_hours_per_1000_tasks":
            assert p.low - 1e-9 <= m.value <= p.high + 1e-9, (name, p, m)


def test_the_replay_acts_out_the_draws_project_makes_with_the_same_seed(
    events: store.Store, system: DigitsSystem, seed: int
) -> None:
    model = OutcomeModel(reviewers=0.5)  # scarce humans: capacity decides some tasks too
    _, measured, result = _replayed(events, system, seed, model)
    offline = system.decide(system.X_test)
    drawn = draw_behaviour(task_paths(offline, system.y_test), model, np.random.default_rng(seed))
    for f in fields(drawn):
        np.testing.assert_array_equal(
            getattr(result.behaviour, f.name), getattr(drawn, f.name), err_msg=f.name
        )
    assert 0.0 < drawn.human_capacity_share < 1.0
    # One draw of `project` is that same behaviour, and the log holds exactly it.
    once = project(offline, system.y_test, model, n_repeats=1, n_bootstrap=0, random_state=seed)
    assert once.task_completion_rate.value == pytest.approx(drawn.completed.mean())
    assert once.escalation_rate.value == pytest.approx(drawn.escalated.mean())
    assert measured.escalation_rate.value == pytest.approx(drawn.escalated.mean())
    assert measured.automation_rate.value == pytest.approx(drawn.automatic.mean())
    assert result.user_escalations == int(drawn.user_escalates.sum())
    assert result.escalations_resolved == int(drawn.absorbed.sum())
    assert result.escalations_left == int((drawn.escalated & ~drawn.absorbed).sum())


def test_every_backend_measures_the_same_numbers_from_the_same_events(
    events: store.Store, system: DigitsSystem, tmp_path: Path
) -> None:
    pytest.importorskip("duckdb")
    from failwise.export import to_parquet

    _, measured, _ = _replayed(events, system, 0, OutcomeModel())
    to_parquet(events, tmp_path / "export")
    again = measure(tmp_path / "export", outcome_model=OutcomeModel())
    for name in measured.metric_names():
        a, b = getattr(measured, name), getattr(again, name)
        np.testing.assert_allclose([a.value, a.low, a.high], [b.value, b.low, b.high], rtol=1e-9)


def test_the_old_replay_entry_point_warns_and_names_failwise_testing(
    events: store.Store, system: DigitsSystem
) -> None:
    from failwise.outcomes._replay import replay as old_replay

    guard = system.guard(store=events, audit_rate=0.3, random_state=0)
    decisions = guard.decide_batch(list(system.X_test[:100]))
    with pytest.warns(DeprecationWarning, match=r"failwise\.testing\.replay"):
        result = old_replay(events, decisions, system.y_test[:100], n_classes=8)
    assert result.n_tasks == 100
    assert result.accepted + result.abandoned > 0
