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


@pytest.mark.parametrize("columns", ["t.confidence, t.predicted", "d.payload"])
def test_the_label_reads_look_up_label_events_in_their_index(store_url: str, columns: str) -> None:
    """Each task's label events come from `events_labels` (covering), not from `events`."""
    from failwise.store._backend import render_sql
    from failwise.store._labels import _JOIN_DECISION, _detail_sql

    with store.open(store_url) as events:
        events.record_decision("t1", {"action": "answer", "label": 1}, at=1.0)
        events.feedback("t1", "accepted", at=2.0)
    join = _JOIN_DECISION if columns == "d.payload" else ""
    params = (0.0, "", 9.0, "~")
    if store_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as connection:
            plan = connection.execute(
                "EXPLAIN QUERY PLAN " + render_sql(_detail_sql(columns, join), "sqlite"), params
            )
            details = [str(row[-1]) for row in plan]
        assert "SEARCH e USING COVERING INDEX events_labels (task_id=?)" in details, details
        return
    import psycopg

    with psycopg.connect(store_url) as connection:
        # A test-sized table is read whole anyway; ask whether the index applies at all.
        for method in ("seqscan", "bitmapscan", "hashjoin", "mergejoin"):
            connection.execute(f"SET enable_{method} = off")
        sql = render_sql(_detail_sql(columns, join), "postgresql")
        lines = [str(row[0]) for row in connection.execute("EXPLAIN " + sql, params)]
    assert any("Index Only Scan using events_labels on events e" in line for line in lines), lines
