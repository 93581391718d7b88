"""Stored rollups: the marks every write leaves on its task's hour, and the refresh."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence

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
