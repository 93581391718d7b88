"""Stored hourly rollups give the numbers of `metric_series` computed from scratch."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failwise import store
from failwise.exceptions import InputError
from failwise.outcomes import Estimate, MetricSeries, OutcomeModel, metric_series
from failwise.outcomes._hours import EMPTY, Hour, decode, encode, merge

HOUR = 3600.0
DAY = 86400.0
#: 2026-01-01T00:00:00Z: settled hours, whatever the date of the run.
T0 = 1_767_225_600.0
#: Every hypothesis example writes its tasks into a day of its own.
_DAYS = itertools.count()

ACTIONS = ("answer", "clarify", "fallback", "escalate", "abstain")


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    with store.open(store_url) as opened:
        yield opened


def _same_estimate(a: Estimate, b: Estimate, exact: bool) -> bool:
    pairs = ((a.value, b.value), (a.low, b.low), (a.high, b.high))
    if exact:
        return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in pairs)
    return all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        for x, y in pairs
    )


#: The metrics computed from reviewers' float seconds (a float sum, taken in another
#: order by the rollups); every other metric is a count ratio or an order statistic.
_FLOAT_SUMS = ("human_hours_per_1000_tasks",)


def _assert_same(got: MetricSeries, want: MetricSeries) -> None:
    assert got.starts == want.starts
    assert got.n_tasks == want.n_tasks
    assert got.actions == want.actions
    assert got.total.n_tasks == want.total.n_tasks
    for name, values in want.metrics.items():
        exact = name not in _FLOAT_SUMS
        for k, (a, b) in enumerate(zip(got.metrics[name], values, strict=True)):
            assert _same_estimate(a, b, exact), (name, k, a, b)
        assert _same_estimate(getattr(got.total, name), getattr(want.total, name), exact), name


def _compare(events: store.Store, since: float, until: float) -> None:
    for bucket in ("hour", "day", 2 * HOUR):
        got = metric_series(events, since, until, bucket=bucket)
        want = metric_series(events, since, until, bucket=bucket, use_rollups=False)
        _assert_same(got, want)


_task = st.tuples(
    st.sampled_from(ACTIONS),
    st.floats(0.0, 3 * HOUR - 1.0),
    st.integers(0, 4),
    st.booleans(),
)
_late = st.tuples(
    st.sampled_from(["accepted", "corrected", "abandoned", "pick", "resolve", "undo", "audit"]),
    st.integers(0, 10_000),
    st.integers(0, 4),
    st.floats(1.0, 2 * HOUR),
)


def _write_late(
    events: store.Store, base: float, ids: list[str], late: tuple[str, int, int, float]
) -> None:
    kind, which, label, delay = late
    task = ids[which % len(ids)]
    at = base + 4 * HOUR + delay
    if kind in ("accepted", "corrected", "abandoned"):
        events.feedback(task, kind, label=label if kind == "corrected" else None, at=at)
    elif kind == "pick":
        events.record_event(task, "clarification_choice", label=label, at=at)
    elif kind == "audit":
        events.record_event(task, "audit_label", label=label, at=at)
    elif kind == "resolve":
        item = events.queue.claim("rev", lease_s=1e6, at=at)
        if item is not None:
            events.queue.resolve(item.id, label, reviewer="rev", at=at + delay / 10)
    else:
        resolved = events.queue.items("resolved")
        if resolved:
            item = resolved[which % len(resolved)]
            assert item.resolved_at is not None
            events.queue.reopen(item.id, reviewer=item.resolved_by, at=item.resolved_at + 1.0)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tasks=st.lists(_task, min_size=1, max_size=40),
    rounds=st.lists(st.lists(_late, max_size=8), min_size=1, max_size=3),
    offset=st.floats(0.0, HOUR),
)
def test_rollups_equal_the_series_from_scratch_through_late_events_and_undos(
    events: store.Store,
    tasks: list[tuple[str, float, int, bool]],
    rounds: list[list[tuple[str, int, int, float]]],
    offset: float,
) -> None:
    base = T0 + next(_DAYS) * DAY
    ids = [f"d{base:.0f}-{i}" for i in range(len(tasks))]
    items, requests = [], []
    for task_id, (action, at, label, queued) in zip(ids, tasks, strict=True):
        delivered = action in ("answer", "fallback")
        decision = {"action": action, "label": label if delivered else None, "confidence": 0.6}
        items.append((task_id, decision, base + at))
        if action == "escalate":
            requests.append(store.QueueRequest(task_id, "escalation", "low confidence", 0.5))
        elif action == "answer" and queued:
            requests.append(store.QueueRequest(task_id, "audit", "sampled", 0.1))
    events.record_decisions(items, enqueue=requests)
    # a window that starts inside an hour and ends inside another
    since, until = base + offset, base + DAY - offset
    _compare(events, since, until)
    for late in rounds:
        for one in late:
            _write_late(events, base, ids, one)
        _compare(events, since, until)


def test_a_late_event_makes_its_hour_recomputed_and_nothing_else(events: store.Store) -> None:
    base = T0 - 30 * DAY
    events.record_decisions(
        [(f"h{k}", {"action": "abstain"}, base + k * HOUR + 10.0) for k in range(5)]
    )
    assert events.stale_hours() == [base + k * HOUR for k in range(5)]
    first = metric_series(events, base, base + 5 * HOUR)
    assert events.stale_hours() == []
    assert first.metrics["task_completion_rate"][2].value == 0.0
    events.feedback("h2", "accepted", at=base + 2 * HOUR + 20.0)
    assert events.stale_hours() == [base + 2 * HOUR]
    again = metric_series(events, base, base + 5 * HOUR)
    assert events.stale_hours() == []
    assert again.metrics["task_completion_rate"][2].value == 1.0
    assert again.metrics["task_completion_rate"][1].value == 0.0
    _assert_same(again, metric_series(events, base, base + 5 * HOUR, use_rollups=False))


def test_the_open_hour_is_computed_from_the_log_and_never_stored(events: store.Store) -> None:
    now = time.time()
    events.record_decision("now", {"action": "abstain"}, at=now - 1.0)
    series = metric_series(events, window=timedelta(hours=3), until=now)
    assert series.total.n_tasks == 1
    events.feedback("now", "accepted", at=now)
    series = metric_series(events, window=timedelta(hours=3), until=now)
    assert series.total.task_completion_rate.value == 1.0


def test_each_deadline_has_rollups_of_its_own(events: store.Store) -> None:
    base = T0 - 40 * DAY
    events.record_decision("slow", {"action": "abstain"}, at=base + 10.0)
    events.feedback("slow", "accepted", at=base + 100.0)
    quick = OutcomeModel(deadline_s=30.0)
    for model in (quick, OutcomeModel(), quick):
        got = metric_series(events, base, base + HOUR, outcome_model=model)
        want = metric_series(events, base, base + HOUR, outcome_model=model, use_rollups=False)
        _assert_same(got, want)
    assert got.total.task_completion_rate.value == 0.0


def test_odd_bucket_widths_and_exports_are_computed_from_the_log(events: store.Store) -> None:
    base = T0 - 50 * DAY
    events.record_decision("a", {"action": "answer", "label": 2}, at=base + 10.0)
    series = metric_series(events, base, base + HOUR, bucket=900.0)
    assert series.n_tasks == [1, 0, 0, 0]
    assert events.stale_hours() == [base]  # nothing was stored


def test_use_rollups_must_be_a_bool(events: store.Store) -> None:
    with pytest.raises(InputError, match="`use_rollups` must be True or False; got"):
        metric_series(events, T0, T0 + HOUR, use_rollups="yes")  # type: ignore[arg-type]


def test_an_hour_survives_its_stored_text_exactly() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.exponential(100.0, 50))
    one = Hour(EMPTY.counts, (1, 2, 3, 4, 5), times)
    back = decode(encode(one))
    assert back.actions == one.actions
    assert back.counts == one.counts
    assert np.array_equal(back.times, times)
    both = merge([one, back, EMPTY])
    assert both.actions == (2, 4, 6, 8, 10)
    assert np.array_equal(both.times, np.sort(np.concatenate([times, times])))
    assert merge([]) is EMPTY


def test_reads_racing_late_writes_end_fresh(store_url: str) -> None:
    """Two stores (as two processes would) on one database: one appends late events while
    the other reads the series through the rollups; once the writes stop, a read gives
    the numbers of a computation from scratch."""
    base = T0 - 60 * DAY
    rng = np.random.default_rng(11)
    with store.open(store_url) as writer, store.open(store_url) as reader:
        writer.record_decisions(
            [(f"r{k}", {"action": "abstain"}, base + float(k) * 97.0) for k in range(120)]
        )
        done = threading.Event()

        def write() -> None:
            try:
                for k in rng.permutation(120)[:80]:
                    writer.feedback(f"r{k}", "accepted", at=base + float(k) * 97.0 + 10.0)
            finally:
                done.set()

        thread = threading.Thread(target=write)
        thread.start()
        reads = 0
        while not done.is_set() or reads < 2:
            metric_series(reader, base, base + 4 * HOUR)
            reads += 1
        thread.join()
        got = metric_series(reader, base, base + 4 * HOUR)
        _assert_same(got, metric_series(reader, base, base + 4 * HOUR, use_rollups=False))
        assert got.total.task_completion_rate.value == pytest.approx(80 / 120)
