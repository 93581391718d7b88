"""The newest monitor windows and findings across monitors, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from failwise import store
from failwise.exceptions import InputError


def _fill(events: store.Store, n_windows: int = 12, per_window: int = 3) -> None:
    """Two monitors taking turns, one window an hour each (the second ends 30 min later),
    every window with ``per_window`` findings made when the window closed."""
    last: dict[str, int | None] = {"a/1h": None, "b/1h": None}
    for i in range(n_windows):
        for name, offset in (("a/1h", 0.0), ("b/1h", 1800.0)):
            end = 3600.0 * (i + 1) + offset
            findings = [
                {
                    "kind": "input_drift",
                    "severity": "change",
                    "statistics": {"window": i, "k": k, "monitor": name},
                    "examples": [],
                }
                for k in range(per_window)
            ]
            last[name], _ = events.append_monitor_window(
                name,
                after=last[name],
                window_start=end - 3600.0,
                window_end=end,
                last_task=None,
                n_tasks=10 + i,
                stats={"estimate": {"estimate": 0.9, "n_answers": i}},
                findings=findings,
                at=end,
            )


def test_latest_findings_are_the_newest_page_of_every_monitor(events: store.Store) -> None:
    _fill(events)  # 72 findings, more than the page of 20
    every = events.stored_findings(limit=1000)
    assert len(every) == 72
    newest = sorted(every, key=lambda f: -f.id)
    assert events.latest_findings() == newest[:20]
    assert events.latest_findings(limit=5) == newest[:5]
    assert {f.monitor for f in events.latest_findings()} == {"a/1h", "b/1h"}
    # a time range: the findings made in it, still the newest first
    since, until = 3600.0 * 3, 3600.0 * 5
    inside = [f for f in newest if since <= f.created_at <= until]
    assert len(inside) == 15  # a at 3, 4, 5 h; b at 3.5, 4.5 h
    assert events.latest_findings(since=since, until=until) == inside
    assert events.latest_findings(since=3600.0 * 12.25) == newest[:3]  # b's last window
    assert events.latest_findings(until=0.0) == []


def test_recent_windows_are_the_newest_of_every_monitor(events: store.Store) -> None:
    _fill(events)
    every = events.monitor_windows("a/1h") + events.monitor_windows("b/1h")
    newest = sorted(every, key=lambda w: -w.id)
    assert len(newest) == 24
    recent = events.recent_monitor_windows()
    assert recent == newest[:12]
    assert [w.monitor for w in recent[:2]] == ["b/1h", "a/1h"]
    assert recent[0].stats == {"estimate": {"estimate": 0.9, "n_answers": 11}}
    ended = events.recent_monitor_windows(since=3600.0 * 11, until=3600.0 * 12, limit=100)
    assert [(w.monitor, w.window_end) for w in ended] == [
        ("a/1h", 3600.0 * 12),
        ("b/1h", 3600.0 * 11.5),
        ("a/1h", 3600.0 * 11),
    ]
    assert events.recent_monitor_windows(limit=1) == newest[:1]
    # a monitor backfilling old windows after them does not hide the recent ones
    events.append_monitor_window(
        "c/1h", after=None, window_start=0.0, window_end=60.0, last_task=None, n_tasks=1, stats={}
    )
    assert events.recent_monitor_windows() == newest[:12]
    assert events.recent_monitor_windows(until=60.0)[0].monitor == "c/1h"


def test_an_empty_store_has_no_recent_window_or_finding(events: store.Store) -> None:
    assert events.recent_monitor_windows() == []
    assert events.latest_findings(since=0.0, until=1e10) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, r"`limit`.*got 0"),
        ({"limit": 1001}, r"`limit`.*got 1001"),
        ({"limit": 2.5}, r"`limit`.*whole number"),
        ({"since": float("nan")}, r"`since`.*nan"),
        ({"until": -1.0}, r"`until`.*-1"),
        ({"since": "yesterday"}, r"`since`.*'yesterday'"),
    ],
)
def test_bad_bounds_of_the_recent_reads_are_refused(
    sqlite_url: str, kwargs: dict[str, object], message: str
) -> None:
    with store.open(sqlite_url) as events:
        for read in (events.recent_monitor_windows, events.latest_findings):
            with pytest.raises(InputError, match=message):
                read(**kwargs)  # type: ignore[arg-type]
