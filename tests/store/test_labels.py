"""Labelled predictions: the tasks and labels of ``labelled_tasks``, read from columns."""

from __future__ import annotations

import pytest

from failwise import store
from failwise.exceptions import InputError


def test_labelled_predictions_are_the_labelled_tasks_with_their_top_label(
    events: store.Store,
) -> None:
    sure = {"action": "answer", "label": 3, "predicted": 3, "confidence": 0.9}
    events.record_decisions(
        [
            ("accepted", sure),
            ("corrected", sure),
            ("undone", {"action": "escalate", "predicted": 1, "confidence": 0.4}),
            ("bare", {"action": "answer", "label": 2}),
            ("unlabelled", sure),
            ("late", sure),
        ],
        at=1.0,
        enqueue=[store.QueueRequest("undone", "escalation", "low confidence")],
    )
    events.record_decision("later", sure, at=9.0)
    events.feedback("accepted", "accepted", at=2.0)
    events.feedback("corrected", "corrected", label=4, at=3.0)
    events.feedback("bare", "accepted", at=2.0)
    events.feedback("later", "corrected", label=0, at=10.0)
    item = events.queue.claim("ann", at=4.0)
    assert item is not None
    events.queue.resolve(item.id, 5, at=5.0)
    events.queue.reopen(item.id, at=6.0)
    found = list(events.labelled_predictions(until=5.0, batch_size=2))
    assert [(p.task_id, p.confidence, p.predicted, p.label) for p in found] == [
        ("accepted", 0.9, 3, 3),
        ("bare", None, None, 2),
        ("corrected", 0.9, 3, 4),
    ]
    labelled = [(t.task_id, t.decided_at, t.label) for t in events.labelled_tasks()]
    every = [(p.task_id, p.decided_at, p.label) for p in events.labelled_predictions()]
    assert every == labelled
    assert every[-1] == ("later", 9.0, 0)
    with pytest.raises(InputError, match=r"`batch_size` must be an int >= 1; got 0"):
        events.labelled_predictions(batch_size=0)
