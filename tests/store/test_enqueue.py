"""Decisions and their queue items commit together (``record_decision(..., enqueue=...)``)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from failwise import store
from failwise.exceptions import InputError

ESCALATE: dict[str, Any] = {"action": "escalate", "confidence": 0.31, "predicted": 4}
ANSWER: dict[str, Any] = {"action": "answer", "label": 2, "confidence": 0.97}


def _tasks(events: store.Store) -> set[str]:
    return {e.task_id for e in events.iter_events() if e.kind == "decision"}


def test_a_decision_and_its_escalation_are_written_together(events: store.Store) -> None:
    request = store.QueueRequest("t1", "escalation", "confidence 0.31 < 0.90", priority=0.69)
    ids = events.record_decision("t1", ESCALATE, at=50.0, enqueue=[request])
    assert len(ids) == 1
    item = events.queue.get(ids[0])
    assert (item.task_id, item.kind, item.reason, item.priority) == (
        "t1",
        "escalation",
        "confidence 0.31 < 0.90",
        0.69,
    )
    assert (item.state, item.created_at) == ("pending", 50.0)
    log = events.events("t1")
    assert [(e.kind, e.at) for e in log] == [("decision", 50.0), ("escalation_created", 50.0)]
    assert log[1].payload == {
        "item_id": ids[0],
        "reason": "confidence 0.31 < 0.90",
        "priority": 0.69,
    }


def test_a_batch_returns_its_item_ids_in_request_order(events: store.Store) -> None:
    items: list[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], float]] = [
        ("a", ESCALATE),
        ("b", ANSWER, 7.0),
        ("c", ESCALATE),
        ("d", ANSWER),
    ]
    requests = [
        store.QueueRequest("c", "escalation", "low confidence", 0.5),
        store.QueueRequest("b", "audit", "sampled at 10%", 0.0),
        store.QueueRequest("a", "escalation", "low confidence", 0.9),
    ]
    ids = events.record_decisions(items, at=3.0, enqueue=requests)
    assert len(set(ids)) == 3
    got = [events.queue.get(i) for i in ids]
    assert [(i.task_id, i.kind, i.created_at) for i in got] == [
        ("c", "escalation", 3.0),
        ("b", "audit", 7.0),
        ("a", "escalation", 3.0),
    ]
    for item in got:
        created = [e for e in events.events(item.task_id) if e.kind.endswith("_created")]
        assert [(e.kind, e.payload["item_id"]) for e in created] == [
            (f"{item.kind}_created", item.id)
        ]
    assert [e.kind for e in events.events("d")] == ["decision"]
    # The queued items are claimable like any other, by priority.
    first = events.queue.claim("alice", at=10.0)
    assert first is not None
    assert first.task_id == "a"


def test_one_task_may_have_an_escalation_and_an_audit(events: store.Store) -> None:
    ids = events.record_decision(
        "t",
        ESCALATE,
        enqueue=[
            store.QueueRequest("t", "escalation", "low confidence"),
            store.QueueRequest("t", "audit", "sampled"),
        ],
    )
    assert [events.queue.get(i).kind for i in ids] == ["escalation", "audit"]


def test_a_single_request_need_not_be_wrapped_in_a_list(events: store.Store) -> None:
    ids = events.record_decision("t", ESCALATE, enqueue=store.QueueRequest("t", "audit", "r"))
    assert events.queue.get(ids[0]).kind == "audit"


def test_without_enqueue_no_item_is_written(events: store.Store) -> None:
    assert events.record_decision("t", ESCALATE) == []
    assert events.record_decisions([("u", ANSWER)], enqueue=[]) == []
    assert events.queue.pending() == 0


def test_a_refused_batch_writes_neither_decisions_nor_items(events: store.Store) -> None:
    events.record_decision("taken", ANSWER)
    with pytest.raises(store.DuplicateTaskError, match=r"Task 'taken' already exists"):
        events.record_decisions(
            [("new", ESCALATE), ("taken", ESCALATE)],
            enqueue=[
                store.QueueRequest("new", "escalation", "r"),
                store.QueueRequest("taken", "escalation", "r"),
            ],
        )
    assert _tasks(events) == {"taken"}
    assert events.queue.items() == []


def test_a_refused_single_decision_leaves_no_item(events: store.Store) -> None:
    events.record_decision("taken", ANSWER)
    with pytest.raises(store.DuplicateTaskError, match=r"Task 'taken' already exists"):
        events.record_decision(
            "taken", ESCALATE, enqueue=[store.QueueRequest("taken", "escalation", "r")]
        )
    assert events.queue.items() == []
    assert [e.kind for e in events.events("taken")] == ["decision"]


@pytest.mark.parametrize(
    ("enqueue", "message"),
    [
        (
            [store.QueueRequest("other", "escalation", "r")],
            r"`enqueue\[0\]\.task_id` is 'other', which is not among the tasks this call "
            r"records.*store\.queue\.enqueue",
        ),
        (
            [store.QueueRequest("t", "audit", "r"), store.QueueRequest("t", "audit", "again")],
            r"asks twice for a audit item of task 't' \(positions 0 and 1\).*Drop the duplicate",
        ),
        ("escalation", r"`enqueue` must be a list of failwise\.store\.QueueRequest .*got str"),
        (
            [("t", "escalation", "r")],
            r"`enqueue\[0\]` must be a failwise\.store\.QueueRequest; got tuple",
        ),
    ],
)
def test_bad_queue_requests_refuse_the_whole_call(
    events: store.Store, enqueue: Any, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        events.record_decisions([("t", ESCALATE), ("u", ANSWER)], enqueue=enqueue)
    assert _tasks(events) == set()
    assert events.queue.items() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"kind": "escalate"},
            r"`QueueRequest\.kind` must be one of \['escalation', 'audit'\]; got 'escalate'\. "
            r"Use 'escalation' when the user waits",
        ),
        ({"reason": ""}, r"`QueueRequest\.reason` must be a non-empty string"),
        ({"reason": "x" * 10_001}, r"`QueueRequest\.reason` must be at most 10000 characters"),
        (
            {"priority": float("nan")},
            r"`QueueRequest\.priority` must be a finite number; got nan\. Higher is claimed",
        ),
        ({"priority": True}, r"`QueueRequest\.priority` must be a finite number; got True"),
        ({"task_id": 7}, r"`QueueRequest\.task_id` must be a non-empty string; got int 7"),
    ],
)
def test_malformed_queue_requests_are_refused_when_built(
    kwargs: dict[str, Any], message: str
) -> None:
    fields = {"task_id": "t", "kind": "escalation", "reason": "r", **kwargs}
    with pytest.raises(InputError, match=message):
        store.QueueRequest(**fields)


def test_a_queue_request_is_frozen_and_its_priority_a_float() -> None:
    request = store.QueueRequest("t", "audit", "r", priority=1)
    assert isinstance(request.priority, float)
    with pytest.raises(AttributeError):
        request.kind = "escalation"  # type: ignore[misc]


def test_concurrent_single_calls_each_get_their_own_items(events: store.Store) -> None:
    # Many threads at once: the writer groups their calls into shared transactions.
    threads, per_thread = 8, 25
    results: dict[str, list[int]] = {}
    refused: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        for i in range(per_thread):
            task_id = f"t{k}-{i}" if i % 5 else "shared"  # "shared" is refused but once
            request = store.QueueRequest(task_id, "escalation", f"from {k}")
            try:
                ids = events.record_decision(task_id, ESCALATE, enqueue=[request])
            except store.DuplicateTaskError:
                with lock:
                    refused.append(task_id)
                continue
            with lock:
                results[task_id] = ids

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(results) + len(refused) == threads * per_thread
    assert set(refused) == {"shared"}
    items = events.queue.items(limit=10_000)
    assert len(items) == len(results)
    assert {item.id: item.task_id for item in items} == {
        ids[0]: task_id for task_id, ids in results.items()
    }


# ------------------------------------------------------------------------------ SIGKILL
#: Acknowledged lines to wait for before killing the writer.
ACKNOWLEDGED_BEFORE_KILL = 800
THREADS = 4


def _acknowledged(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]  # the kill may cut the last line short
    return [line.split() for line in complete.splitlines()]


def test_after_sigkill_no_escalated_task_lacks_its_item_nor_an_item_its_decision(
    store_url: str, tmp_path: Path, workers: Any
) -> None:
    store.open(store_url).close()  # create the schema before the race starts
    ack_path = tmp_path / "acknowledged.txt"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=workers.escalate_until_killed, args=(store_url, str(ack_path), THREADS)
    )
    writer.start()
    deadline = time.monotonic() + 240
    while len(_acknowledged(ack_path)) < ACKNOWLEDGED_BEFORE_KILL:
        assert writer.is_alive(), f"the writing process died on its own ({writer.exitcode})"
        assert time.monotonic() < deadline, "the writing process acknowledged too little"
        time.sleep(0.05)
    writer.kill()  # SIGKILL, mid-stream
    writer.join(timeout=60)
    assert writer.exitcode == -9

    acknowledged = _acknowledged(ack_path)
    with store.open(store_url) as events:
        stored = list(events.iter_events())
        items = events.queue.items(limit=1_000_000)
    review = {e.task_id: e.payload["review"] for e in stored if e.kind == "decision"}
    created = {(e.task_id, e.kind.removesuffix("_created")) for e in stored if "_created" in e.kind}
    queued = {(item.task_id, item.kind) for item in items}
    wanted = {(task, kind) for task, kind in review.items() if kind is not None}
    assert sum(1 for kind in review.values() if kind == "escalation") > 50
    # The invariant: every decision that asked for an item has it, and every item (and
    # its created event) has its decision.
    assert queued == wanted
    assert created == wanted
    # Whatever was acknowledged is there, with the item id the call returned.
    by_id = {item.id: item.task_id for item in items}
    for line in acknowledged:
        task_id, action = line[1], line[2]
        assert task_id in review
        if action == "escalate":
            assert by_id[int(line[3])] == task_id
    # Unacknowledged writes can only be the calls the threads had in flight.
    assert len(set(review) - {line[1] for line in acknowledged}) <= THREADS * 5
