"""`metric_series`: per-bucket metrics whose window totals are what `measure` gives."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.outcomes import Estimate, MetricSeries, OutcomeModel, measure, metric_series

HOUR = 3600.0
#: 2026-01-01T00:00:00Z, a whole day.
T0 = 1_767_225_600.0


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    with store.open(store_url) as opened:
        yield opened


def _random_log(events: store.Store, rng: np.random.Generator, n: int = 240) -> None:
    """``n`` tasks over six hours: every path of the metric definitions, at random."""
    times = np.sort(T0 + 30.0 + rng.uniform(0.0, 6 * HOUR - 60.0, n))
    actions = rng.choice(
        ["answer", "clarify", "fallback", "escalate", "abstain"], n, p=[0.6, 0.1, 0.1, 0.15, 0.05]
    )
    items = []
    requests = []
    for i, (at, action) in enumerate(zip(times, actions, strict=True)):
        label = int(rng.integers(0, 5)) if action in ("answer", "fallback") else None
        items.append(
            (f"t{i}", {"action": str(action), "label": label, "confidence": 0.7}, float(at))
        )
        if action == "escalate":
            requests.append(store.QueueRequest(f"t{i}", "escalation", "low confidence", 0.5))
        elif action == "answer" and rng.random() < 0.3:
            requests.append(store.QueueRequest(f"t{i}", "audit", "sampled", 0.1))
    events.record_decisions(items, enqueue=requests)
    for i, (at, action) in enumerate(zip(times, actions, strict=True)):
        task, draw = f"t{i}", rng.random()
        if action in ("answer", "fallback", "abstain"):
            if draw < 0.7:
                events.feedback(task, "accepted", at=float(at) + rng.uniform(1, 30))
            elif draw < 0.85:
                events.feedback(task, "abandoned", at=float(at) + 40)
        elif action == "clarify":
            pick = None if draw < 0.2 else int(rng.integers(0, 5))
            events.record_event(task, "clarification_choice", label=pick, at=float(at) + 8)
    clock = T0 + 6 * HOUR
    while (item := events.queue.claim("rev", lease_s=10_000.0, at=clock)) is not None:
        clock += 5.0
        events.queue.resolve(item.id, int(rng.integers(0, 5)), at=clock)


def _close(a: Estimate, b: Estimate) -> bool:
    return all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        for x, y in ((a.value, b.value), (a.low, b.low), (a.high, b.high))
    )


def _same_totals(series: MetricSeries, since: float, until: float, source: object) -> None:
    measured = measure(source, since, until)
    assert series.total.n_tasks == measured.n_tasks == sum(series.n_tasks)
    for name in measured.metric_names():
        assert _close(getattr(series.total, name), getattr(measured, name)), name


def test_bucket_totals_equal_measure_over_the_same_window(
    events: store.Store, rng: np.random.Generator
) -> None:
    _random_log(events, rng)
    since, until = T0 + 1000.0, T0 + 5.5 * HOUR
    series = metric_series(events, since, until, bucket="hour")
    assert series.starts == [T0 + k * HOUR for k in range(6)]
    assert series.bucket_s == HOUR
    _same_totals(series, since, until, events)
    # each bucket is measure over that bucket's part of the window
    for k, start in enumerate(series.starts):
        low, high = max(start, since), min(start + HOUR, until)
        one = measure(events, low, high)
        assert series.n_tasks[k] == one.n_tasks
        for name in one.metric_names():
            assert _close(series.metrics[name][k], getattr(one, name)), (k, name)
    by_action = {a: sum(v) for a, v in series.actions.items()}
    assert sum(by_action.values()) == series.total.n_tasks
    assert series.total.automation_rate.value == pytest.approx(
        (by_action["answer"] + by_action["fallback"]) / series.total.n_tasks
    )


def test_a_daily_series_over_an_export_gives_the_same_totals(
    events: store.Store, rng: np.random.Generator, tmp_path: Path
) -> None:
    pytest.importorskip("duckdb")
    from failwise.export import to_parquet

    _random_log(events, rng, n=120)
    to_parquet(events, tmp_path / "export")
    series = metric_series(tmp_path / "export", T0, T0 + 2 * 86400.0, bucket="day")
    assert len(series.starts) == 2
    assert series.n_tasks[1] == 0
    assert math.isnan(series.metrics["task_completion_rate"][1].value)
    _same_totals(series, T0, T0 + 2 * 86400.0, events)


def test_empty_window_and_defaults(events: store.Store) -> None:
    series = metric_series(events, window=timedelta(hours=3))
    assert len(series.starts) in (3, 4)
    assert series.total.n_tasks == 0
    assert all(n == 0 for n in series.n_tasks)
    assert len(metric_series(events).starts) in (24, 25)
    assert len(metric_series(events, bucket="day").starts) in (30, 31)
    payload = series.to_dict()
    assert payload["total"]["n_tasks"] == 0
    assert set(payload["metrics"]) == {f.name for f in fields(series.total)} & set(
        payload["metrics"]
    )


def test_the_deadline_of_the_outcome_model_applies_per_bucket(events: store.Store) -> None:
    events.record_decision("slow", {"action": "escalate"}, at=T0 + 10.0)
    events.queue.enqueue("slow", "escalation", "r", at=T0 + 10.0)
    item = events.queue.claim("rev", lease_s=10_000.0, at=T0 + 20.0)
    assert item is not None
    events.queue.resolve(item.id, 1, at=T0 + 610.0)
    quick = OutcomeModel(deadline_s=60.0)
    strict = metric_series(events, T0, T0 + HOUR, outcome_model=quick)
    assert strict.metrics["task_completion_rate"][0].value == 0.0
    relaxed = metric_series(events, T0, T0 + HOUR)
    assert relaxed.metrics["task_completion_rate"][0].value == 1.0
    assert relaxed.metrics["time_to_correct_output_median_s"][0].value == 600.0


def test_metric_series_refuses_malformed_arguments(events: store.Store) -> None:
    with pytest.raises(InputError, match="bucket"):
        metric_series(events, bucket="week")
    with pytest.raises(InputError, match="bucket"):
        metric_series(events, bucket=0.5)
    with pytest.raises(InputError, match="at most 10,000"):
        metric_series(events, 0.0, 1.0e6, bucket=60.0)
    with pytest.raises(InputError, match="empty"):
        metric_series(events, 5.0, 5.0)
    with pytest.raises(InputError, match="outcome_model"):
        metric_series(events, outcome_model="fast")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="interval_level"):
        metric_series(events, interval_level=1.5)
    assert metric_series(events, 0.0, 7200.0, bucket=timedelta(minutes=30)).bucket_s == 1800.0


def test_labelled_reliability_bins_the_top_label_against_human_labels(
    events: store.Store,
) -> None:
    from failwise.outcomes import labelled_reliability

    assert labelled_reliability(events) is None
    for i, (confidence, label) in enumerate([(0.95, 1), (0.92, 2), (0.35, 1), (0.3, 1)]):
        decision = {"action": "answer", "label": 1, "predicted": 1, "confidence": confidence}
        events.record_decision(f"t{i}", decision, at=float(i + 1))
        events.feedback(f"t{i}", "corrected", label=label, at=i + 1.5)
    events.record_decision("none", {"action": "escalate", "predicted": -1}, at=9.0)
    events.feedback("none", "corrected", label=3, at=9.5)
    bins = labelled_reliability(events, n_bins=5)
    assert bins is not None
    assert list(bins.count) == [0, 2, 0, 0, 2]
    assert list(bins.accuracy)[4] == 0.5
    assert list(bins.accuracy)[1] == 1.0
    later = labelled_reliability(events, since=2.5)
    assert later is not None
    assert sum(later.count) == 2
    with pytest.raises(InputError, match="n_bins"):
        labelled_reliability(events, n_bins=0)
    with pytest.raises(InputError, match="source"):
        labelled_reliability("sqlite:///x.db")
