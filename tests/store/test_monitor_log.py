"""The monitor's tables: features in the decision's transaction, windows, findings, zones."""

from __future__ import annotations

import numpy as np
import pytest

from failwise import store
from failwise.exceptions import InputError


def test_features_are_written_with_their_decisions_or_not_at_all(events: store.Store) -> None:
    vectors = [np.arange(4.0), None, np.full(4, 0.5)]
    events.record_decisions(
        [(f"t{i}", {"action": "answer", "label": 1}) for i in range(3)], features=vectors
    )
    rows = events.task_features(["t0", "t1", "t2"])
    assert rows.task_ids == ("t0", "t2")
    np.testing.assert_array_equal(rows.features, np.stack([np.arange(4.0), np.full(4, 0.5)]))
    with pytest.raises(store.DuplicateTaskError):
        events.record_decisions(
            [("t3", {"action": "answer"}), ("t0", {"action": "answer"})],
            features=[np.ones(4), np.ones(4)],
        )
    assert events.task_features(["t3"]).task_ids == ()
    events.record_decision("t4", {"action": "escalate"})  # one decision, no features
    assert events.task_features(["t4"]).features.shape == (0, 0)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([np.ones(3)], "one vector"),
        ([np.ones(3), [np.nan, 1, 2]], "NaN"),
        ([np.ones((2, 2)), None], "1-D"),
        ([np.ones(5000), None], "project the features"),
        ("abc", "one feature vector"),
    ],
)
def test_bad_features_write_nothing(sqlite_url: str, features: object, message: str) -> None:
    with store.open(sqlite_url) as events:
        with pytest.raises(InputError, match=message):
            events.record_decisions(
                [("a", {"action": "answer"}), ("b", {"action": "answer"})],
                features=features,  # type: ignore[arg-type]
            )
        assert events.first_task_time() is None


def test_float16_keeps_the_features_to_three_significant_digits(sqlite_url: str) -> None:
    vector = np.random.default_rng(0).normal(size=384)
    with store.open(sqlite_url) as events:
        events.record_decisions([("a", {"action": "answer"})], features=[vector])
        stored = events.task_features(["a"]).features[0]
    np.testing.assert_allclose(stored, vector, rtol=1e-3, atol=1e-4)


def test_features_of_two_widths_are_refused_when_read(sqlite_url: str) -> None:
    with store.open(sqlite_url) as events:
        events.record_decisions(
            [("a", {"action": "answer"}), ("b", {"action": "answer"})],
            features=[np.ones(3), np.ones(4)],
        )
        with pytest.raises(InputError, match="feature function changed"):
            events.task_features(["a", "b"])


def test_findings_and_quarantines_round_trip(events: store.Store) -> None:
    window_id, ids = events.append_monitor_window(
        "m",
        after=None,
        window_start=0.0,
        window_end=10.0,
        last_task="t9",
        n_tasks=10,
        stats={"n_tasks": 10},
        findings=[
            {"kind": "blind_spot", "severity": "alert", "statistics": {"size": 6}, "examples": []}
        ],
        at=5.0,
    )
    assert events.last_monitor_window("m").id == window_id  # type: ignore[union-attr]
    assert events.finding(ids[0]).statistics == {"size": 6}
    zone = events.quarantine(ids[0], centre=[1.0, 0.0], radius=0.2, note="look")
    (active,) = events.quarantines(active_only=True)
    assert (active.id, active.finding_id, active.state) == (zone, ids[0], "active")
    np.testing.assert_array_equal(active.centre, [1.0, 0.0])
    assert events.release_quarantine(zone, by="alice") is True
    assert events.release_quarantine(zone, by="alice") is False
    assert events.quarantines(active_only=True) == []
    assert events.quarantines()[0].released_by == "alice"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.quarantine(99, centre=[1.0], radius=0.1), "no finding 99"),
        (lambda s: s.quarantine(1, centre=[1.0], radius=-1), "radius"),
        (lambda s: s.quarantine(1, centre=[[1.0]], radius=0.1), "centre"),
        (lambda s: s.quarantine(1, centre=[1.0], radius=0.1, metric="l1"), "metric"),
        (lambda s: s.release_quarantine(42, by="bob"), "no quarantine 42"),
        (lambda s: s.finding(7), "no finding 7"),
        (lambda s: s.finding(0), "positive int"),
        (
            lambda s: s.append_monitor_window(
                "m",
                after=None,
                window_start=0,
                window_end=1,
                last_task=None,
                n_tasks=0,
                stats={},
                findings=[{"kind": "x", "severity": "loud"}],
            ),
            "severity",
        ),
    ],
)
def test_bad_monitor_writes_are_refused(sqlite_url: str, call: object, message: str) -> None:
    with store.open(sqlite_url) as events, pytest.raises(InputError, match=message):
        call(events)  # type: ignore[operator]


def test_a_store_from_before_the_monitor_tables_is_upgraded(
    sqlite_url: str, tmp_path: object
) -> None:
    import sqlite3
    from pathlib import Path

    path = Path(str(tmp_path)) / "events.db"
    store.open(sqlite_url).close()
    with sqlite3.connect(path) as connection:
        # What migrations 3 and later created, gone: the store as schema 2 left it.
        for trigger in ("events_mark_rollup", "queue_items_mark_rollup"):
            connection.execute(f"DROP TRIGGER {trigger}")
        connection.execute("DROP INDEX queue_items_task")
        connection.execute("DROP INDEX events_labels")
        for table in (
            "metric_rollup_marks",
            "metric_rollups",
            "quarantines",
            "findings",
            "monitor_windows",
            "task_features",
        ):
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DELETE FROM schema_version WHERE version >= 3")
    with store.open(sqlite_url) as events:
        assert events.schema_version == store.SCHEMA_VERSION
        events.record_decisions([("a", {"action": "answer"})], features=[np.ones(2)])
        assert events.task_features(["a"]).task_ids == ("a",)
