"""A guard records into the in-memory sink exactly what it would write to a store."""

from __future__ import annotations

import pytest

from failwise.runtime import DecisionNotRecordedError
from failwise.testing import DigitsSystem, InMemoryEventSink, digits_system


@pytest.fixture(scope="module")
def system() -> DigitsSystem:
    return digits_system()


def test_a_batch_is_one_call_with_its_escalations_and_audits(system: DigitsSystem) -> None:
    sink = InMemoryEventSink()
    guard = system.guard(store=sink, audit_rate=0.2, random_state=0)
    decisions = guard.decide_batch(list(system.X_test[:200]))
    assert sink.calls == 1
    assert [sink.decisions[str(d.task_id)].payload for d in decisions] == [
        d.to_dict() for d in decisions
    ]
    queued = [(r.task_id, r.kind) for r in sink.queued]
    assert queued == [(d.task_id, d.review) for d in decisions if d.review is not None]
    kinds = {kind for _, kind in queued}
    assert kinds == {"escalation", "audit"}


def test_a_failing_sink_leaves_nothing_recorded_and_hands_back_the_decisions(
    system: DigitsSystem,
) -> None:
    sink = InMemoryEventSink()
    guard = system.guard(store=sink)
    sink.fail_next()
    with pytest.raises(DecisionNotRecordedError) as raised:
        guard.decide_batch(list(system.X_test[:20]))
    assert len(raised.value.decisions) == 20
    assert sink.decisions == {}
    assert sink.queued == []
    guard.decide(system.X_test[0])
    assert sink.calls == 1
