"""Stored rollups: the marks every write leaves on its task's hour, and the refresh."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from failwise import store
from failwise.exceptions import InputError

HOUR = store.ROLLUP_S
#: 2025-12-01T00:00:00Z.
BASE = 1_764_547_200.0


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    with store.open(store_url) as opened:
        yield opened


class _Counting:
    """A compute that records the runs it was asked for and counts each hour's tasks."""

    def __init__(self) -> None:
        self.runs: list[tuple[float, float]] = []

    def __call__(
        self, query: store.TaskViewQuery, runs: Sequence[tuple[float, float]]
    ) -> Mapping[float, str]:
        self.runs.extend(runs)
        out = {}
        for start, end in runs:
            hour = start
            while hour < end:
                rows = query("SELECT COUNT(*) FROM task_view", (), hour, hour + HOUR)
                out[hour] = str(int(rows[0][0]))
                hour += HOUR
        return out


def _n(payload: str) -> int:
    return int(payload)


def test_every_write_about_a_task_marks_the_hour_of_its_decision(events: store.Store) -> None:
    escalate = store.QueueRequest("e", "escalation", "low confidence")
    events.record_decision("e", {"action": "escalate"}, at=BASE + 10.0, enqueue=[escalate])
    events.record_decision("a", {"action": "answer", "label": 1}, at=BASE + 2 * HOUR + 5.0)
    assert events.stale_hours() == [BASE, BASE + 2 * HOUR]
    compute = _Counting()
    got = events.metric_rollups(60.0, BASE, BASE + 3 * HOUR, compute, n_tasks=_n)
    assert got == {BASE: "1", BASE + HOUR: "0", BASE + 2 * HOUR: "1"}
    assert compute.runs == [(BASE, BASE + 3 * HOUR)]
    assert events.stale_hours() == []
    # read again: stored, nothing recomputed
    again = _Counting()
    assert events.metric_rollups(60.0, BASE, BASE + 3 * HOUR, again, n_tasks=_n) == got
    assert again.runs == []
    # a claim changes only the queue item's row: its hour is marked all the same
    item = events.queue.claim("rev", at=BASE + 5 * HOUR)
    assert item is not None
    assert events.stale_hours() == [BASE]
    events.metric_rollups(60.0, BASE, BASE + 3 * HOUR, again, n_tasks=_n)
    assert again.runs == [(BASE, BASE + HOUR)]
    # feedback on the other task; another deadline has rollups of its own
    events.feedback("a", "accepted", at=BASE + 9 * HOUR)
    assert events.stale_hours() == [BASE + 2 * HOUR]
    other = _Counting()
    events.metric_rollups(30.0, BASE, BASE + 3 * HOUR, other, n_tasks=_n)
    assert other.runs == [(BASE, BASE + 3 * HOUR)]
    final = _Counting()
    events.metric_rollups(60.0, BASE, BASE + 3 * HOUR, final, n_tasks=_n)
    assert final.runs == [(BASE + 2 * HOUR, BASE + 3 * HOUR)]


def test_a_long_range_is_refreshed_in_chunks_of_contiguous_runs(events: store.Store) -> None:
    events.record_decisions(
        [(f"t{k}", {"action": "abstain"}, BASE + k * 3 * HOUR + 1.0) for k in range(20)]
    )
    compute = _Counting()
    got = events.metric_rollups(60.0, BASE, BASE + 60 * HOUR, compute, n_tasks=_n)
    assert sum(int(v) for v in got.values()) == 20
    assert compute.runs == [
        (BASE, BASE + 24 * HOUR),
        (BASE + 24 * HOUR, BASE + 48 * HOUR),
        (BASE + 48 * HOUR, BASE + 60 * HOUR),
    ]
    for k in (1, 2, 7):
        events.feedback(f"t{k}", "accepted", at=BASE + 70 * HOUR)
    compute = _Counting()
    events.metric_rollups(60.0, BASE, BASE + 60 * HOUR, compute, n_tasks=_n)
    assert compute.runs == [
        (BASE + 3 * HOUR, BASE + 4 * HOUR),
        (BASE + 6 * HOUR, BASE + 7 * HOUR),
        (BASE + 21 * HOUR, BASE + 22 * HOUR),
    ]


def test_only_settled_whole_hours_are_stored(events: store.Store) -> None:
    compute = _Counting()
    with pytest.raises(InputError, match="must be a whole hour in Unix seconds"):
        events.metric_rollups(60.0, BASE + 1.0, BASE + HOUR, compute)
    with pytest.raises(InputError, match="`end_hour` must be a whole hour"):
        events.metric_rollups(60.0, BASE, float("inf"), compute)
    now_hour = (time.time() // HOUR) * HOUR
    with pytest.raises(InputError, match="Rollups cover settled hours only"):
        events.metric_rollups(60.0, now_hour - HOUR, now_hour + HOUR, compute)
    with pytest.raises(InputError, match="Rollups cover settled hours only"):
        events.metric_rollups(60.0, BASE + HOUR, BASE, compute)
    assert compute.runs == []


def test_a_write_about_an_hour_not_settled_leaves_no_mark(events: store.Store) -> None:
    # No rollup of such an hour can be stored yet, so there is nothing to mark stale (the
    # same on both backends): a decision, its queue item, a claim and feedback.
    now = time.time()
    escalate = store.QueueRequest("now", "escalation", "low confidence")
    events.record_decision("now", {"action": "escalate"}, at=now - 1.0, enqueue=[escalate])
    events.record_decision("old", {"action": "abstain"}, at=BASE + 10.0)
    assert events.queue.claim("rev") is not None
    events.feedback("now", "accepted")
    assert events.stale_hours() == [BASE]


def _old_triggers(path: str) -> None:
    """Put back the marking triggers of schema 4 (a mark on every write) in a SQLite file."""
    import sqlite3

    from failwise.store._rollups import ROLLUP_TRIGGERS

    with sqlite3.connect(path) as connection:
        connection.execute("DROP TRIGGER events_mark_rollup")
        connection.execute("DROP TRIGGER queue_items_mark_rollup")
        for statement in ROLLUP_TRIGGERS["sqlite"]:
            connection.execute(statement)


def _seed(events: store.Store, now: float) -> None:
    """Tasks over the last 30 hours up to now, with reviews and feedback (some late)."""
    rng = np.random.default_rng(7)
    times = np.sort(now - rng.uniform(0.0, 30 * HOUR, size=300))
    actions = rng.choice(["answer", "clarify", "escalate", "abstain"], size=300)
    items, requests = [], []
    for i, (at, action) in enumerate(zip(times.tolist(), actions.tolist(), strict=True)):
        label = 1 if action == "answer" else None
        items.append((f"t{i}", {"action": action, "label": label, "confidence": 0.7}, at))
        if action == "escalate":
            requests.append(store.QueueRequest(f"t{i}", "escalation", "low confidence", 0.3))
    events.record_decisions(items, enqueue=requests)
    for i in range(0, 300, 7):
        events.feedback(f"t{i}", "accepted", at=max(now - 60.0, float(times[i]) + 1.0))
    for _ in range(10):
        item = events.queue.claim("rev", at=now - 30.0)
        if item is not None:
            events.queue.resolve(item.id, 2, reviewer="rev", at=now - 20.0)


def test_rollups_read_the_same_with_the_open_hour_unmarked_as_with_every_write_marked(
    tmp_path: Path,
) -> None:
    # Schema 8 (SQLite) stopped marking hours that are not settled yet: on the same
    # writes, a store with the old triggers and one with the new give the same series,
    # before and after late events, and both equal the series from scratch.
    from failwise.outcomes import metric_series

    now = time.time()
    series: dict[str, tuple[str, str, list[float]]] = {}
    for name in ("old", "new"):
        path = tmp_path / f"{name}.db"
        store.open(f"sqlite:///{path}").close()
        if name == "old":
            _old_triggers(str(path))
        with store.open(f"sqlite:///{path}") as events:
            _seed(events, now)
            # a write in the hour that is still open, wherever `now` falls in its hour
            answer = {"action": "answer", "label": 1, "confidence": 0.7}
            events.record_decisions([("t-open-hour", answer, now)])
            window = timedelta(hours=30)
            first = metric_series(events, window=window, until=now)
            events.feedback("t3", "corrected", label=0, at=now)
            events.feedback("t299", "abandoned", at=now)
            again = metric_series(events, window=window, until=now)
            fresh = metric_series(events, window=window, until=now, use_rollups=False)
            assert _numbers(again) == _numbers(fresh)
            series[name] = (_numbers(first), _numbers(again), events.stale_hours())
    assert series["old"][:2] == series["new"][:2]
    # the old triggers also marked the hours not settled yet; those are all that differ
    old_marks, new_marks = series["old"][2], series["new"][2]
    assert new_marks == [hour for hour in old_marks if hour + HOUR <= now - 60.0]
    assert len(new_marks) < len(old_marks)


def _numbers(series: Any) -> str:
    """Every number of a metric series, NaN included, spelt exactly (``repr``)."""
    return repr((series.starts, series.n_tasks, series.actions, series.metrics, series.total))
