"""The in-memory event sink keeps what was recorded, all of a call or none of it."""

from __future__ import annotations

import pytest

from failwise.exceptions import InputError
from failwise.store import QueueRequest
from failwise.testing import InMemoryEventSink, SinkUnavailableError, digits_system


class Request:
    """A queue request as a caller might build one by hand (QueueRequest checks its own)."""

    def __init__(self, task_id: str, kind: str, reason: str, priority: float = 0.0) -> None:
        self.task_id, self.kind, self.reason, self.priority = task_id, kind, reason, priority


def test_a_batch_with_its_queue_requests_is_recorded_in_one_call() -> None:
    sink = InMemoryEventSink()
    ids = sink.record_decisions(
        [("a", {"action": "answer"}), ("b", {"action": "escalate"}, 5.0)],
        at=1.0,
        enqueue=[
            QueueRequest("b", "escalation", "low confidence", 0.6),
            QueueRequest("a", "audit", "x"),
        ],
    )
    assert ids == [0, 1]
    assert sink.calls == 1
    assert [(r.task_id, r.at) for r in sink.decisions.values()] == [("a", 1.0), ("b", 5.0)]
    assert [r.kind for r in sink.queued_for("b")] == ["escalation"]


def test_a_decision_object_is_stored_as_its_dictionary() -> None:
    system = digits_system()
    decision = system.guard().decide(system.X_test[0])
    sink = InMemoryEventSink()
    sink.record_decision("t", decision)
    assert sink.decisions["t"].payload == decision.to_dict()


def test_a_failing_call_records_nothing_and_the_next_one_works() -> None:
    sink = InMemoryEventSink()
    sink.fail_next()
    with pytest.raises(SinkUnavailableError, match="nothing of this call was recorded"):
        sink.record_decisions([("a", {})], enqueue=[Request("a", "audit", "sampled")])
    assert sink.decisions == {}
    assert sink.queued == []
    assert sink.calls == 0
    sink.record_decision("a", {})
    assert list(sink.decisions) == ["a"]


def test_a_chosen_error_is_raised_as_given() -> None:
    sink = InMemoryEventSink()
    sink.fail_next(2, error=ConnectionError("database down"))
    for _ in range(2):
        with pytest.raises(ConnectionError, match="database down"):
            sink.record_decision("a", {})
    sink.record_decision("a", {})


@pytest.mark.parametrize(
    ("items", "enqueue", "message"),
    [
        ([("a", {}), ("a", {})], None, r"Task 'a' appears twice"),
        ([("a", {})], [Request("b", "audit", "x")], r"not among the decisions of this call"),
        ([("a", {})], [Request("a", "review", "x")], r"kind in \('escalation', 'audit'\)"),
        ([("a", {})], [Request("a", "audit", "x", float("nan"))], r"priority must be finite"),
        ([("", {})], None, r"task id must be a non-empty str"),
        ([("a", 3)], None, r"must be a Decision or a mapping"),
        (["a"], None, r"\(task_id, decision\)"),
    ],
)
def test_malformed_calls_are_refused_whole(
    items: list[object], enqueue: list[Request] | None, message: str
) -> None:
    sink = InMemoryEventSink()
    with pytest.raises(InputError, match=message):
        sink.record_decisions(items, enqueue=enqueue)  # type: ignore[arg-type]
    assert sink.decisions == {}
    assert sink.queued == []


def test_a_task_is_recorded_once() -> None:
    sink = InMemoryEventSink()
    sink.record_decision("a", {})
    with pytest.raises(InputError, match="'a' was recorded already"):
        sink.record_decisions([("b", {}), ("a", {})])
    assert list(sink.decisions) == ["a"]


def test_fail_next_checks_its_arguments() -> None:
    with pytest.raises(InputError, match=r"`times` must be an int ≥ 1"):
        InMemoryEventSink().fail_next(0)
