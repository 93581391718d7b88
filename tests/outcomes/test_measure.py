"""`measure`: each metric's online definition on small, hand-written event logs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.outcomes import OutcomeModel, measure


@pytest.fixture
def events(tmp_path: Path) -> Iterator[store.Store]:
    with store.open(f"sqlite:///{tmp_path / 'events.db'}") as opened:
        yield opened


def _answer(events: store.Store, task: str, at: float, label: int = 1) -> None:
    events.record_decision(task, {"action": "answer", "label": label, "confidence": 0.9}, at=at)


def _log(events: store.Store) -> None:
    """Eight tasks, one per path the definitions distinguish."""
    # a: answer accepted after 2 s, audited right.  b: answer accepted, audited wrong (silent).
    _answer(events, "a", 1000.0)
    events.feedback("a", "accepted", at=1002.0)
    events.record_event("a", "audit_label", label=1, at=1100.0)
    _answer(events, "b", 1000.0)
    events.feedback("b", "accepted", at=1001.0)
    events.record_event("b", "audit_label", label=4, at=1100.0)
    # c: answer the user reported wrong and escalated; a human resolved it 600 s later.
    _answer(events, "c", 1000.0)
    events.queue.enqueue("c", "escalation", "user: wrong answer", at=1060.0)
    item = events.queue.claim("r1", 10_000.0, at=1480.0)
    assert item is not None
    events.queue.resolve(item.id, 2, reviewer="r1", at=1600.0)
    # d: answer the user abandoned (wrong, not recovered).
    _answer(events, "d", 1000.0)
    events.feedback("d", "abandoned", at=1060.0)
    # e: clarification, the user picked label 3 after 10 s.
    events.record_decision("e", {"action": "clarify", "confidence": 0.5}, at=1000.0)
    events.record_event("e", "clarification_choice", label=3, at=1010.0)
    # f: ladder escalation resolved after 5 h: past the 4 h deadline.
    events.record_decision("f", {"action": "escalate", "confidence": 0.2}, at=1000.0)
    events.queue.enqueue("f", "escalation", "low confidence", at=1000.0)
    item = events.queue.claim("r2", 100_000.0, at=18_880.0)
    assert item is not None
    events.queue.resolve(item.id, 0, reviewer="r2", at=19_000.0)
    # g: abstention the user accepted (out of scope).  h: abstention abandoned.
    events.record_decision("g", {"action": "abstain", "confidence": 0.1}, at=1000.0)
    events.feedback("g", "accepted", at=1001.0)
    events.record_decision("h", {"action": "abstain", "confidence": 0.1}, at=1000.0)
    events.feedback("h", "abandoned", at=1001.0)


def test_each_metric_follows_its_online_definition(events: store.Store) -> None:
    _log(events)
    m = measure(events)
    assert m.n_tasks == 8
    assert m.source == "measured"
    # completed: a (audited right), c (recovered by a human), e (picked), g (accepted abstain)
    assert m.task_completion_rate.value == pytest.approx(4 / 8)
    assert m.escalation_rate.value == pytest.approx(2 / 8)  # c (by the user) and f
    assert m.automation_rate.value == pytest.approx(4 / 8)
    # 2 presumed answers (a, b), audit error 1/2: 1 silent failure estimated
    assert m.silent_failure_rate.value == pytest.approx(1 / 8)
    assert m.selective_accuracy.value == pytest.approx(1 / 4)
    # wrong first outputs: c and d known, b estimated; c recovered
    assert m.recovery_rate.value == pytest.approx(1 / 3)
    # times of a (2 s), c (600 s), e (10 s), g (1 s): median 6 s
    assert m.time_to_correct_output_median_s.value == pytest.approx(6.0)
    # human work: c 120 s, f 120 s
    assert m.human_hours_per_1000_tasks.value == pytest.approx(240 / 3600 / 8 * 1000)
    for name in m.metric_names():
        est = getattr(m, name)
        assert est.low <= est.value <= est.high, name


def test_a_longer_deadline_completes_the_late_resolution(events: store.Store) -> None:
    _log(events)
    m = measure(events, outcome_model=OutcomeModel(deadline_s=24 * 3600))
    assert m.task_completion_rate.value == pytest.approx(5 / 8)


def test_without_audits_silent_failures_are_unknown_but_bounded(events: store.Store) -> None:
    _answer(events, "a", 1000.0)
    events.feedback("a", "accepted", at=1001.0)
    _answer(events, "b", 1000.0)
    m = measure(events)
    assert math.isnan(m.silent_failure_rate.value)
    assert (m.silent_failure_rate.low, m.silent_failure_rate.high) == (0.0, 1.0)
    assert math.isnan(m.task_completion_rate.value)
    assert m.automation_rate.value == 1.0


def test_time_windows_select_tasks_by_decision_time(events: store.Store) -> None:
    _answer(events, "old", 100.0)
    _answer(events, "new", 1000.0)
    assert measure(events, since=500.0).n_tasks == 1
    assert measure(events, until=500.0).n_tasks == 1
    assert measure(events, until=1001.0, window=timedelta(seconds=10)).n_tasks == 1
    assert measure(events, since=2000.0).n_tasks == 0


def test_an_empty_window_gives_nan_metrics(events: store.Store) -> None:
    m = measure(events)
    assert m.n_tasks == 0
    assert math.isnan(m.task_completion_rate.value)


def test_a_store_url_and_a_duckdb_export_measure_the_same(
    events: store.Store, tmp_path: Path
) -> None:
    pytest.importorskip("duckdb")
    from failwise.export import to_parquet

    _log(events)
    direct = measure(events)
    assert measure(f"sqlite:///{tmp_path / 'events.db'}") == direct
    to_parquet(events, tmp_path / "export")
    assert measure(tmp_path / "export") == direct
    assert measure(str(tmp_path / "export")) == direct
    import duckdb

    connection = duckdb.connect()
    for name in ("tasks", "events", "queue_items"):
        path = tmp_path / "export" / f"{name}.parquet"
        connection.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}')")
    assert measure(connection) == direct
    tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
    assert tables == {"tasks", "events", "queue_items"}  # its working table is gone


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": "yesterday"}, r"`since` must be a time in Unix seconds"),
        ({"until": float("nan")}, r"`until` must be a time in Unix seconds"),
        ({"window": -5}, r"`window` must be a positive number of seconds"),
        ({"since": 10.0, "window": 5.0}, r"Pass either `since` or `window`"),
        ({"since": 10.0, "until": 5.0}, r"`since` \(10.0\) is after `until` \(5.0\)"),
        ({"interval_level": 1.5}, r"`interval_level` must lie in \(0, 1\)"),
        ({"outcome_model": {"deadline_s": 1}}, r"`outcome_model` must be an OutcomeModel"),
    ],
)
def test_bad_arguments_are_refused_with_what_arrived(
    events: store.Store, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        measure(events, **kwargs)  # type: ignore[arg-type]


def test_bad_sources_say_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"`source` must be a Store .* got int 42"):
        measure(42)
    with pytest.raises(InputError, match=r"neither a store URL .* nor an existing folder"):
        measure(str(tmp_path / "missing"))
    pytest.importorskip("duckdb")
    with pytest.raises(InputError, match=r"is not a failwise Parquet export: tasks.parquet"):
        measure(tmp_path)
