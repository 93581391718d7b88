"""`run_monitor` over a real store: incremental windows, findings, their delivery."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.monitor import Reference, findings, monitor_name, run_monitor, windows
from tests.monitor.conftest import N_KNOWN, System, fill

NOW = 1.0e9


def test_windows_are_processed_once_and_only_new_ones_later(
    events: store.Store, system: System
) -> None:
    fill(events, system, 1000)
    first = run_monitor(events, system.reference, window=250, now=NOW)
    assert [w.n_tasks for w in first.windows] == [250] * 4
    assert first.findings == []
    assert first.windows[0].stats["level"] == pytest.approx(0.05 / 24)
    names = {t["name"] for t in first.windows[0].stats["tests"]}
    assert names == {"confidence", "predicted_label", "action", "features", "unseen_inputs"}
    again = run_monitor(events, system.reference, window=250, now=NOW)
    assert again.windows == []
    assert any("monitored already" in n for n in again.notes)
    fill(events, system, 260, first=1000)
    later = run_monitor(events, system.reference, window=250, now=NOW)
    assert [w.window_start for w in later.windows] == [2000.0]  # the 10 left wait for more
    assert len(windows(events, system.reference, window=250)) == 5


def test_time_windows_are_aligned_and_skip_hours_without_traffic(
    sqlite_url: str, system: System
) -> None:
    with store.open(sqlite_url) as events:
        fill(events, system, 100, start=7200.0)
        fill(events, system, 100, start=5 * 3600.0, first=100)
        run = run_monitor(events, system.reference, window="1h", now=6 * 3600.0 + 1)
        assert [(w.window_start, w.n_tasks) for w in run.windows] == [
            (7200.0, 100),
            (18000.0, 100),
        ]
        assert run.windows[0].stats["window"] == "1h"
        unfinished = run_monitor(events, system.reference, window="1h", now=6 * 3600.0 + 1)
        assert unfinished.windows == []


def test_unseen_categories_raise_alerts_and_blind_spots_with_their_examples(
    events: store.Store, system: System
) -> None:
    fill(events, system, 500)
    fill(events, system, 1000, first=500, novel_share=0.3)
    run = run_monitor(events, system.reference, window=500, now=NOW)
    assert [f for f in run.findings if f.window_start == 1000.0] == []
    kinds = {f.kind for f in run.findings}
    assert {"unseen_inputs", "blind_spot"} <= kinds
    spots = [f for f in run.findings if f.kind == "blind_spot"]
    for spot in spots:
        assert spot.severity == "alert"
        assert spot.statistics["size"] >= 5
        assert all(
            f"topic {N_KNOWN}" in e["text"] or f"topic {N_KNOWN + 1}" in e["text"]
            for e in spot.examples
        )
        assert len(spot.statistics["centre"]) == 16
        assert spot.statistics["radius"] > 0
    later = [s for s in spots if s.window_start == 2000.0]
    assert later
    assert all(s.statistics["continues"] is not None for s in later)


def _record_unsure(events: store.Store, system: System, n: int, *, first: int) -> None:
    """``n`` requests of known categories, each answered with the least possible confidence."""
    uniform = np.full(N_KNOWN, 1.0 / N_KNOWN)
    items, vectors = [], []
    for i in range(first, first + n):
        decision = system.policy.decide_one(uniform).to_dict()
        decision["extra"] = {"context": {"text": f"request {i}"}}
        if i % 10 == 0:
            decision["confidence"] = None  # no model score recorded
        items.append((f"t{i:05d}", decision, 1_000.0 + i))
        vectors.append(system.features(i % N_KNOWN, 1)[0])
    events.record_decisions(items, features=vectors)


def test_the_unseen_input_test_is_about_position_and_the_confidence_test_about_doubt(
    events: store.Store, system: System
) -> None:
    fill(events, system, 500)
    _record_unsure(events, system, 500, first=500)
    run = run_monitor(events, system.reference, window=500, now=NOW)
    tests = [{t["name"]: t for t in w.stats["tests"]} for w in run.windows]
    assert not tests[0]["unseen_inputs"]["rejected"]
    assert tests[0]["unseen_inputs"]["n_inputs"] == 500
    # Inputs like the reference's answered with the least confidence: not beyond the
    # reference (every input with features is tested, with or without a confidence), but
    # a confidence shift.
    unsure = tests[1]["unseen_inputs"]
    assert not unsure["rejected"]
    assert unsure["n_inputs"] == 500
    assert tests[1]["confidence"]["rejected"]
    kinds = {f.kind for f in run.findings if f.window_start == 1500.0}
    assert "confidence_shift" in kinds
    assert "unseen_inputs" not in kinds


def test_audits_below_the_estimate_raise_a_calibration_broken_finding(
    events: store.Store, system: System
) -> None:
    ids = fill(events, system, 400)
    for task_id in ids:
        task = events.task(task_id)
        if task.action == "answer":
            wrong = (int(task.label or 0) + 1) % N_KNOWN  # every audited answer was wrong
            events.record_event(task_id, "audit_label", label=wrong)
    run = run_monitor(events, system.reference, window=400, now=NOW)
    estimate = run.windows[0].stats["estimate"]
    assert estimate["n_audited"] > 0
    assert estimate["audited_accuracy"] == 0.0
    broken = [f for f in run.findings if f.kind == "calibration_broken"]
    assert len(broken) == 1
    assert broken[0].severity == "alert"
    assert broken[0].examples
    assert "text" in broken[0].examples[0]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/findings"
    finally:
        server.shutdown()
        server.server_close()


def test_each_new_finding_reaches_the_callable_and_the_webhook_once(
    sqlite_url: str, system: System, webhook: str
) -> None:
    seen: list[Any] = []
    with store.open(sqlite_url) as events:
        fill(events, system, 1000, novel_share=0.3)
        run = run_monitor(
            events,
            system.reference,
            window=500,
            now=NOW,
            on_finding=seen.append,
            webhook_url=webhook,
        )
        run_monitor(
            events,
            system.reference,
            window=500,
            now=NOW,
            on_finding=seen.append,
            webhook_url=webhook,
        )
        assert run.findings
        assert run.delivery_errors == []
        assert [f.id for f in seen] == [f.id for f in run.findings]
        assert [body["finding"]["id"] for body in _Hook.received] == [f.id for f in seen]
        assert _Hook.received[0]["finding"]["kind"] == seen[0].kind


def test_a_webhook_that_is_down_never_loses_the_finding(sqlite_url: str, system: System) -> None:
    with store.open(sqlite_url) as events:
        fill(events, system, 500, novel_share=0.3)
        run = run_monitor(
            events,
            system.reference,
            window=500,
            now=NOW,
            webhook_url="http://127.0.0.1:9/nobody-listens",
            on_finding=lambda finding: 1 / 0,
        )
        assert run.findings
        assert len(run.delivery_errors) == 2 * len(run.findings)
        assert "ZeroDivisionError" in run.delivery_errors[0]
        assert len(findings(events)) == len(run.findings)


def test_findings_reads_by_monitor_kind_severity_and_position(
    sqlite_url: str, system: System
) -> None:
    with store.open(sqlite_url) as events:
        fill(events, system, 1000, novel_share=0.3)
        run = run_monitor(events, system.reference, window=500, now=NOW)
        every = findings(events)
        assert [f.id for f in every] == [f.id for f in run.findings]
        mine = findings(events, reference=system.reference, window=500)
        assert mine == every
        assert all(f.monitor == monitor_name(system.reference, 500) for f in mine)
        assert all(f.kind == "blind_spot" for f in findings(events, kind="blind_spot"))
        assert findings(events, severity="change") == [f for f in every if f.severity == "change"]
        assert findings(events, after_id=every[-1].id) == []
        with pytest.raises(InputError, match="both `reference` and `window`"):
            findings(events, reference=system.reference)
        with pytest.raises(InputError, match="severity"):
            findings(events, severity="bad")


def test_an_empty_store_and_a_store_without_audits_say_what_is_missing(
    sqlite_url: str, system: System
) -> None:
    with store.open(sqlite_url) as events:
        empty = run_monitor(events, system.reference, window=100, now=NOW)
        assert empty.windows == []
        assert any("no decisions yet" in n for n in empty.notes)
        fill(events, system, 100)
        run = run_monitor(events, system.reference, window=100, now=NOW)
        assert any("no audited answers" in n for n in run.notes)
        assert run.windows[0].stats["estimate"]["corrected"] is None


def test_a_reference_without_features_runs_every_other_monitor(
    sqlite_url: str, system: System
) -> None:
    bare = Reference(
        confidence=system.reference.confidence,
        predicted=system.reference.predicted,
        action=system.reference.action,
    )
    with store.open(sqlite_url) as events:
        fill(events, system, 300, novel_share=0.3)
        run = run_monitor(events, bare, window=300, now=NOW)
        names = {t["name"] for t in run.windows[0].stats["tests"]}
        assert names == {"confidence", "predicted_label", "action"}
        assert any("no input features" in n for n in run.notes)


def test_a_window_stored_by_another_run_first_is_refused(sqlite_url: str) -> None:
    with store.open(sqlite_url) as events:
        common = {"window_start": 0.0, "window_end": 1.0, "last_task": None, "n_tasks": 0}
        events.append_monitor_window("m", after=None, stats={}, **common)  # type: ignore[arg-type]
        with pytest.raises(store.WindowConflictError, match="stored a window first"):
            events.append_monitor_window("m", after=None, stats={}, **common)  # type: ignore[arg-type]
        assert len(events.monitor_windows("m")) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "1 fortnight"}, "duration"),
        ({"window": 1}, "too small"),
        ({"false_alarm_rate": 1.5}, "false_alarm_rate"),
        ({"horizon": 0}, "horizon"),
        ({"webhook_url": "ftp://x"}, "http"),
        ({"on_finding": 3}, "callable"),
    ],
)
def test_bad_monitor_arguments_are_refused(
    sqlite_url: str, system: System, kwargs: dict[str, Any], message: str
) -> None:
    with store.open(sqlite_url) as events, pytest.raises(InputError, match=message):
        run_monitor(events, system.reference, **kwargs)


def test_a_reference_and_store_of_the_wrong_type_are_refused(
    sqlite_url: str, system: System
) -> None:
    with pytest.raises(InputError, match="event store"):
        run_monitor(object(), system.reference)
    with store.open(sqlite_url) as events, pytest.raises(InputError, match="Reference"):
        run_monitor(events, np.ones(3))  # type: ignore[arg-type]
