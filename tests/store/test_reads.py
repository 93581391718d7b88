"""The store's public reads: event pages, labelled tasks, table pages and the task view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from failwise import store
from failwise.exceptions import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_event_pages_follow_their_cursor_to_the_end(events: store.Store) -> None:
    for i in range(7):
        events.record_decision(f"t{i}", {"action": "answer", "label": 1}, at=float(10 - i % 3))
    seen: list[int] = []
    page = events.event_page(limit=3)
    pages = 1
    while page.next is not None:
        seen += [e.id for e in page.events]
        page = events.event_page(after=page.next, limit=3)
        pages += 1
    seen += [e.id for e in page.events]
    assert [e.id for e in events.iter_events()] == seen
    assert len(seen) == 7
    assert pages == 3
    window = events.event_page(since=9.0, until=10.0, limit=100)
    assert {e.at for e in window.events} == {9.0}
    assert window.next is None


def test_a_bad_cursor_or_limit_is_refused(events: store.Store) -> None:
    with pytest.raises(InputError, match=r"`after` must be the `next` cursor"):
        events.event_page(after=(1.0, 2))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"`limit` must be an int >= 1; got 0"):
        events.event_page(limit=0)
    with pytest.raises(InputError, match=r"`since` \(5\.0\) is after `until` \(1\.0\)"):
        list(events.labelled_tasks(since=5.0, until=1.0))


def _labelled(events: store.Store) -> dict[str, tuple[int, str]]:
    return {t.task_id: (t.label, t.source) for t in events.labelled_tasks(batch_size=2)}


def test_each_task_gets_its_most_trusted_label(events: store.Store) -> None:
    answer = {"action": "answer", "label": 3, "review_probability": 0.25}
    events.record_decisions(
        [
            ("accepted", answer),
            ("corrected", answer),
            ("audited", answer),
            ("escalated", {"action": "escalate", "review_probability": 1.0}),
            ("unlabelled", answer),
            ("picked", {"action": "clarify"}),
            ("abstained", {"action": "abstain"}),
        ],
        at=1.0,
        enqueue=[
            store.QueueRequest("audited", "audit", "sampled"),
            store.QueueRequest("escalated", "escalation", "low confidence"),
        ],
    )
    events.feedback("accepted", "accepted", at=2.0)
    events.feedback("corrected", "accepted", at=2.0)
    events.feedback("corrected", "corrected", label=4, at=3.0)
    events.feedback("audited", "corrected", label=4, at=3.0)
    events.record_event("picked", "clarification_choice", label=6, at=2.0)
    events.feedback("picked", "accepted", at=2.5)
    events.feedback("abstained", "accepted", at=2.0)
    for kind, label in (("escalation", 5), ("audit", -1)):
        item = events.queue.claim("ann", kind=kind, at=4.0)
        assert item is not None
        events.queue.resolve(item.id, label, at=5.0)
    assert _labelled(events) == {
        "accepted": (3, "accepted"),
        "corrected": (4, "correction"),
        "audited": (-1, "audit"),
        "escalated": (5, "escalation"),
        "picked": (6, "accepted"),
    }
    (escalated,) = [t for t in events.labelled_tasks() if t.task_id == "escalated"]
    assert escalated.review_probability == 1.0
    assert escalated.decided_at == 1.0
    assert escalated.labelled_at == 5.0
    assert escalated.decision["action"] == "escalate"


def test_labelled_tasks_are_chosen_by_decision_time(events: store.Store) -> None:
    for i in range(6):
        events.record_decision(f"t{i}", {"action": "answer", "label": i}, at=float(i))
        events.feedback(f"t{i}", "accepted", at=100.0)
    tasks = list(events.labelled_tasks(since=2.0, until=5.0, batch_size=1))
    assert [t.task_id for t in tasks] == ["t2", "t3", "t4"]
    assert all(t.review_probability is None for t in tasks)


def test_table_pages_hold_every_row_with_the_described_columns(events: store.Store) -> None:
    events.record_decisions(
        [(f"t{i}", {"action": "answer", "label": i, "confidence": 0.9}) for i in range(5)],
        at=3.0,
    )
    pages = list(events.table_pages("tasks", batch_size=2))
    assert [len(page) for page in pages] == [2, 2, 1]
    rows = [row for page in pages for row in page]
    assert [row[0] for row in rows] == [f"t{i}" for i in range(5)]
    assert len(rows[0]) == len(store.TABLES["tasks"].columns)
    assert dict(zip(store.TABLES["tasks"].names, rows[1], strict=True))["label"] == 1
    with pytest.raises(InputError, match=r"`table` must be one of \['tasks', 'events'"):
        events.table_pages("users")


def test_the_task_view_has_one_row_per_task_of_the_window(events: store.Store) -> None:
    events.record_decision("a", {"action": "answer", "label": 1}, at=1.0)
    events.record_decision(
        "b", {"action": "escalate"}, at=2.0, enqueue=[store.QueueRequest("b", "escalation", "r")]
    )
    events.feedback("a", "accepted", at=4.0)
    item = events.queue.claim("ann", at=10.0)
    assert item is not None
    events.queue.resolve(item.id, 2, at=25.0)
    columns = ", ".join(store.TASK_VIEW_COLUMNS)
    rows = events.query_task_view(f"SELECT {columns} FROM task_view ORDER BY task_id")
    view = [dict(zip(store.TASK_VIEW_COLUMNS, row, strict=True)) for row in rows]
    assert [(v["task_id"], v["accepted_at"], v["escalated_at"]) for v in view] == [
        ("a", 4.0, None),
        ("b", None, 2.0),
    ]
    assert view[1]["resolved_at"] == 25.0
    assert view[1]["human_s"] == 15.0
    assert events.query_task_view(
        "WITH x AS (SELECT COUNT(*) AS n FROM task_view) SELECT n + ? FROM x", (10,), since=1.5
    ) == [(11,)]


def test_nothing_outside_the_store_reads_its_private_methods() -> None:
    offenders = []
    for path in (ROOT / "src" / "failwise").rglob("*.py"):
        if "store" in path.relative_to(ROOT / "src" / "failwise").parts[:1]:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\._read\(|\._backend\b|\._write\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
