"""Tasks and their append-only events, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.policy import Action, Band, Decision

ANSWER: dict[str, Any] = {
    "action": "answer",
    "label": 4,
    "confidence": 0.97,
    "band": "high",
    "prediction_set": [4],
    "reason": "answer: confidence 0.970 ≥ answer threshold 0.900",
    "predicted": 4,
    "ood_score": 0.12,
    "policy_version": "sha256:abc",
    "timings": {"model": 0.004},
}


def _kinds(events: store.Store, task_id: str) -> list[str]:
    return [event.kind for event in events.events(task_id)]


def test_a_decision_round_trips_through_columns_and_payload(events: store.Store) -> None:
    events.record_decision("t1", ANSWER, at=1000.0)
    task = events.task("t1")
    assert (task.task_id, task.created_at, task.action, task.label) == ("t1", 1000.0, "answer", 4)
    assert (task.confidence, task.predicted, task.band) == (0.97, 4, "high")
    assert (task.ood_score, task.policy_version) == (0.12, "sha256:abc")
    assert task.decision == {**ANSWER, "task_id": "t1"}
    [event] = events.events("t1")
    assert (event.task_id, event.kind, event.at, event.label) == ("t1", "decision", 1000.0, 4)
    assert event.payload == {**ANSWER, "task_id": "t1"}


def test_a_decision_object_and_numpy_values_are_stored_as_plain_json(
    events: store.Store,
) -> None:
    decision = Decision(
        action=Action.CLARIFY,
        label=None,
        confidence=float(np.float32(0.5)),
        band=Band.MEDIUM,
        prediction_set=(2, 7),
        reason="clarify",
        predicted=2,
        task_id="t2",
        extra={"scores": np.array([0.5, 0.25]), "rank": np.int64(3)},
    )
    events.record_decision("t2", decision)
    stored = events.task("t2")
    assert (stored.action, stored.label, stored.band) == ("clarify", None, "medium")
    assert stored.decision["prediction_set"] == [2, 7]
    assert stored.decision["scores"] == [0.5, 0.25]
    assert stored.decision["rank"] == 3


def test_a_duplicate_task_id_is_refused_and_nothing_is_written(events: store.Store) -> None:
    events.record_decision("dup", ANSWER, at=10.0)
    with pytest.raises(
        store.DuplicateTaskError, match=r"Task 'dup' already exists .*nothing was written"
    ):
        events.record_decision("dup", {"action": "abstain"}, at=20.0)
    assert events.task("dup").action == "answer"
    assert _kinds(events, "dup") == ["decision"]


def test_record_decisions_is_all_or_nothing(events: store.Store) -> None:
    events.record_decisions([("a", ANSWER), ("b", {"action": "escalate"}, 5.0)], at=1.0)
    assert [events.task(t).created_at for t in ("a", "b")] == [1.0, 5.0]
    with pytest.raises(store.DuplicateTaskError, match=r"Task 'b' already exists"):
        events.record_decisions([("c", ANSWER), ("b", ANSWER), ("d", ANSWER)])
    for missing in ("c", "d"):
        with pytest.raises(store.UnknownTaskError):
            events.task(missing)
    with pytest.raises(store.DuplicateTaskError, match=r"'e' appears twice in `items`"):
        events.record_decisions([("e", ANSWER), ("e", ANSWER)])
    with pytest.raises(store.UnknownTaskError):
        events.task("e")
    events.record_decisions([])  # nothing to do


def test_many_decisions_in_one_call_are_stored(events: store.Store) -> None:
    items = [(f"bulk-{i}", {**ANSWER, "label": i % 7}) for i in range(1200)]
    events.record_decisions(items, at=50.0)
    stored = [e for e in events.iter_events(batch_size=500) if e.kind == "decision"]
    assert len(stored) == 1200
    assert {e.task_id: e.label for e in stored} == {t: d["label"] for t, d in items}


_TASK_ROWS = (
    "SELECT task_id, created_at, action, label, confidence, predicted, band, ood_score, "
    "policy_version FROM tasks WHERE task_id LIKE ? ORDER BY task_id"
)
_EVENT_ROWS = (
    "SELECT task_id, kind, at, label, payload FROM events WHERE task_id LIKE ? "
    "ORDER BY task_id, kind"
)


def _rows(events: store.Store, prefix: str) -> list[tuple[Any, ...]]:
    """The task and event rows of the tasks named ``prefix-…``, named ``x-…`` instead."""
    rows = []
    for query in (_TASK_ROWS, _EVENT_ROWS):
        for row in events._read(query, (f"{prefix}-%",)):
            named = [
                value.replace(f"{prefix}-", "x-") if isinstance(value, str) else value
                for value in row
            ]
            rows.append(tuple(named))
    return rows


def test_a_batch_stores_the_rows_one_call_per_decision_stores(events: store.Store) -> None:
    # The batch path (COPY on PostgreSQL, executemany on SQLite) against the single-decision
    # statement, on the same input: every column of every task and event row is the same.
    decisions = [
        (
            i,
            {
                **ANSWER,
                "label": None if i % 3 == 0 else i,
                "confidence": 0.1 + i / 100,
                "ood_score": None if i % 2 else -1.5e-07 * i,
                "band": (None, "low", "high")[i % 3],
                "reason": f"tab\tnew\nline \\ back ≥ é {i}",
            },
            1_000.25 + i,
        )
        for i in range(40)
    ]
    events.record_decisions([(f"b-{i}", decision, at) for i, decision, at in decisions])
    for i, decision, at in decisions:
        events.record_decision(f"s-{i}", decision, at=at)
    batch, singles = _rows(events, "b"), _rows(events, "s")
    assert len(batch) == 80
    assert batch == singles


def test_concurrent_callers_each_get_their_own_outcome(events: store.Store) -> None:
    errors: list[BaseException] = []
    events.record_decision("taken", ANSWER)

    def work(worker: int) -> None:
        for i in range(60):
            task_id = "taken" if i == 30 else f"c{worker}-{i}"
            try:
                events.record_decision(task_id, ANSWER)
                events.feedback(task_id, "accepted")
            except store.DuplicateTaskError as error:
                errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 8
    decided = {e.task_id for e in events.iter_events() if e.kind == "decision"}
    accepted = {e.task_id for e in events.iter_events() if e.kind == "feedback_accepted"}
    expected = {f"c{k}-{i}" for k in range(8) for i in range(60) if i != 30}
    assert decided == expected | {"taken"}
    assert accepted == expected


def test_feedback_outcomes_are_events_with_their_labels(events: store.Store) -> None:
    events.record_decision("t", ANSWER, at=1.0)
    events.feedback("t", "corrected", label=2, at=2.0)
    events.feedback("t", "accepted", at=3.0)
    events.feedback("t", "abandoned", at=4.0)
    events.feedback("t", "corrected", label=-1, at=5.0)  # the user says: out of scope
    history = events.events("t")
    assert [(e.kind, e.label, e.at) for e in history] == [
        ("decision", 4, 1.0),
        ("feedback_corrected", 2, 2.0),
        ("feedback_accepted", None, 3.0),
        ("feedback_abandoned", None, 4.0),
        ("feedback_corrected", -1, 5.0),
    ]
    assert history == sorted(history, key=lambda e: (e.at, e.id))


@pytest.mark.parametrize(
    ("outcome", "label", "message"),
    [
        ("corrected", None, r"A `corrected` outcome needs the user's label"),
        ("accepted", 3, r"An 'accepted' outcome takes no label; got label=3"),
        ("abandoned", 0, r"An 'abandoned' outcome takes no label"),
        ("liked", None, r"`outcome` must be one of \['accepted', 'corrected', 'abandoned'\]"),
        ("corrected", 2.5, r"`label` must be an int class index .* got float 2.5"),
        ("corrected", True, r"`label` must be an int class index"),
        ("corrected", -2, r"-2 is `Decisions.label`'s marker .* pass None"),
        ("corrected", 2**40, r"`label` must be a class index in \[0, 2147483647\]"),
    ],
)
def test_bad_feedback_is_refused_and_nothing_is_written(
    events: store.Store, outcome: str, label: Any, message: str
) -> None:
    events.record_decision("t", ANSWER)
    with pytest.raises(InputError, match=message):
        events.feedback("t", outcome, label=label)
    assert _kinds(events, "t") == ["decision"]


def test_feedback_for_an_unknown_task_is_refused(events: store.Store) -> None:
    with pytest.raises(store.UnknownTaskError, match=r"No task 'ghost' .*nothing was written"):
        events.feedback("ghost", "accepted")
    assert list(events.iter_events()) == []


def test_record_event_appends_the_recordable_kinds(events: store.Store) -> None:
    events.record_decision("t", {"action": "clarify", "prediction_set": [1, 5]}, at=1.0)
    first = events.record_event("t", "clarification_choice", {"offered": [1, 5]}, label=5, at=2.0)
    second = events.record_event("t", "fallback_result", None, label=None, at=3.0)
    events.record_event("t", "audit_label", {"auditor": "qa"}, label=5, at=4.0)
    assert second > first
    assert [(e.kind, e.label, e.payload) for e in events.events("t")[1:]] == [
        ("clarification_choice", 5, {"offered": [1, 5]}),
        ("fallback_result", None, {}),
        ("audit_label", 5, {"auditor": "qa"}),
    ]


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("decision", {}, r"'decision' are written by store.record_decision"),
        ("feedback_corrected", {}, r"written by store.feedback\(task_id, \"corrected\"\)"),
        ("escalation_resolved", {}, r"written by store.queue.resolve"),
        ("audit_expired", {}, r"written by store.queue.claim"),
        ("note", {}, r"`kind` must be one of \['audit_label', 'clarification_choice'"),
        ("audit_label", {}, r"`label` is required; got None"),
        ("fallback_result", {"payload": [1, 2]}, r"`payload` must be a mapping .* got list"),
        ("fallback_result", {"payload": {"x": float("nan")}}, r"contains NaN or an infinite"),
        ("fallback_result", {"payload": {"x": object()}}, r"must hold only JSON values"),
        ("fallback_result", {"at": float("inf")}, r"`at` must be a finite, non-negative time"),
        ("fallback_result", {"at": "yesterday"}, r"`at` must be a time in Unix seconds"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(
    events: store.Store, kind: str, kwargs: dict[str, Any], message: str
) -> None:
    events.record_decision("t", ANSWER)
    with pytest.raises(InputError, match=message):
        events.record_event("t", kind, **kwargs)
    assert _kinds(events, "t") == ["decision"]


def test_an_event_for_an_unknown_task_is_refused(events: store.Store) -> None:
    with pytest.raises(store.UnknownTaskError, match=r"No task 'nope'"):
        events.record_event("nope", "fallback_result", label=1)


@pytest.mark.parametrize(
    ("task_id", "decision", "message"),
    [
        ("", ANSWER, r"`task_id` must be a non-empty string; got ''"),
        (17, ANSWER, r"`task_id` must be a non-empty string; got int 17. Pass `str\(task_id\)`"),
        ("x" * 300, ANSWER, r"`task_id` must be at most 256 characters; got 300"),
        ("a\x00b", ANSWER, r"must not contain NUL characters"),
        ("t", [("action", "answer")], r"`decision` must be a mapping .* got list"),
        ("t", {"label": 3}, r"`decision\['action'\]` must be one of \['answer', 'clarify'"),
        ("t", {"action": "guess"}, r"got 'guess'"),
        ("t", {**ANSWER, "confidence": 1.5}, r"`decision\['confidence'\]` must lie in \[0, 1\]"),
        ("t", {**ANSWER, "confidence": float("nan")}, r"must be finite; got nan. Record None"),
        ("t", {**ANSWER, "label": "4"}, r"`decision\['label'\]` must be an int class index"),
        ("t", {**ANSWER, "predicted": 1.0}, r"`decision\['predicted'\]` must be an int or None"),
        ("t", {**ANSWER, "band": "certain"}, r"`decision\['band'\]` must be one of"),
        ("t", {**ANSWER, "task_id": "other"}, r"`decision\['task_id'\]` is 'other' but"),
        ("t", {**ANSWER, "policy_version": 3}, r"`decision\['policy_version'\]` must be a string"),
        ("t", {**ANSWER, "extra": {1, "a"}}, r"must hold only JSON values"),
    ],
)
def test_bad_decisions_are_refused_and_nothing_is_written(
    events: store.Store, task_id: Any, decision: Any, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        events.record_decision(task_id, decision)
    assert list(events.iter_events()) == []


def test_bad_record_decisions_items_are_refused(events: store.Store) -> None:
    with pytest.raises(InputError, match=r"`items` must be a sequence of \(task_id, decision\)"):
        events.record_decisions({"t": ANSWER})  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"`items\[1\]` must be a \(task_id, decision\)"):
        events.record_decisions([("a", ANSWER), ["b", ANSWER]])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"`items\[1\]\[0\]` must be a non-empty string"):
        events.record_decisions([("a", ANSWER), (None, ANSWER)])  # type: ignore[list-item]
    assert list(events.iter_events()) == []


def test_reading_an_unknown_task_is_an_error(events: store.Store) -> None:
    with pytest.raises(store.UnknownTaskError, match=r"No task 'missing'"):
        events.events("missing")
    with pytest.raises(store.UnknownTaskError, match=r"No task 'missing'"):
        events.task("missing")


def test_iter_events_windows_by_time_and_pages_in_order(events: store.Store) -> None:
    for i in range(25):
        events.record_decision(f"t{i:02d}", ANSWER, at=100.0 + i)
        events.feedback(f"t{i:02d}", "accepted", at=100.0 + i)  # same time: append order
    every = list(events.iter_events(batch_size=3))
    assert len(every) == 50
    assert every == sorted(every, key=lambda e: (e.at, e.id))
    assert every == list(events.iter_events())
    window = list(events.iter_events(since=105.0, until=110.0, batch_size=4))
    assert {e.at for e in window} == {105.0, 106.0, 107.0, 108.0, 109.0}
    assert [e.kind for e in window[:2]] == ["decision", "feedback_accepted"]
    assert list(events.iter_events(since=124.0, batch_size=1))[-1].task_id == "t24"
    assert list(events.iter_events(until=100.0)) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": 5.0, "until": 1.0}, r"`since` \(5.0\) is after `until` \(1.0\)"),
        ({"batch_size": 0}, r"`batch_size` must be an int >= 1; got 0"),
        ({"batch_size": True}, r"`batch_size` must be an int >= 1"),
        ({"since": float("nan")}, r"`since` must be a finite, non-negative time"),
    ],
)
def test_bad_iter_events_arguments_are_refused(
    events: store.Store, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        events.iter_events(**kwargs)


def test_event_kinds_cover_the_product_vocabulary() -> None:
    kinds = {kind.value for kind in store.EventKind}
    assert {
        "decision",
        "feedback_accepted",
        "feedback_corrected",
        "feedback_abandoned",
        "clarification_choice",
        "fallback_result",
        "audit_label",
    } <= kinds
    for queue_kind in store.QUEUE_KINDS:
        for change in ("created", "claimed", "resolved", "expired", "released"):
            assert f"{queue_kind}_{change}" in kinds
