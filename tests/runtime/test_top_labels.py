"""A guard's decisions record the most probable labels with their calibrated probabilities."""

from __future__ import annotations

from failwise.testing import InMemoryEventSink, digits_system


def test_decisions_record_the_top_labels_most_probable_first() -> None:
    system = digits_system()
    sink = InMemoryEventSink()
    decisions = system.guard(store=sink).decide_batch(list(system.X_test[:40]))
    for decision in decisions:
        top = decision.extra["top_labels"]
        assert 1 <= len(top) <= 5
        assert top[0][0] == decision.predicted
        assert abs(top[0][1] - decision.confidence) <= 5e-7
        probabilities = [p for _, p in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1.0 + 1e-5
        assert len({label for label, _ in top}) == len(top)
    recorded = [sink.decisions[str(d.task_id)].payload["top_labels"] for d in decisions]
    assert recorded == [d.extra["top_labels"] for d in decisions]
