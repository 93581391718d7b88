"""Decision payloads written in bulk: the same text and the same refusals as one by one.

``record_decisions`` encodes a batch's payloads together (a fast encoder when installed,
with one finiteness check over every float); each payload must be, byte for byte, the
standard library's encoding of it, and a batch holding a value JSON cannot carry is
refused whole.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failwise import Policy, store
from failwise.exceptions import InputError
from failwise.policy import Action
from failwise.runtime import Guard
from failwise.store._checks import dump_json
from failwise.store._json_rows import dump_json_rows

ANSWER: dict[str, Any] = {"action": "answer", "label": 1, "confidence": 0.9, "band": "high"}

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "é", "\x7f", "\u2028", "\U0001f600", "≥ 0.9"])
    | st.sampled_from([1e-05, -2.5e-07, 9.99e-05, 1e-10, 1e16, 5e-324, -0.0])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        | st.dictionaries(st.sampled_from(["é", "\x7f", "k"]), inner, max_size=2)
        | st.dictionaries(st.integers(0, 3), inner, max_size=2)
    ),
    max_leaves=8,
)


def _oracle(values: list[dict[str, Any]]) -> list[str] | str:
    """What the one-by-one encoder gives: the payloads' text, or the first refusal."""
    try:
        return [dump_json(value, "decision") for value in values]
    except InputError as exc:
        return str(exc)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=5))
def test_bulk_encoding_writes_the_standard_library_text_byte_for_byte(extras: list[Any]) -> None:
    values = [{**ANSWER, "extra": extra} for extra in extras]
    expected = _oracle(values)
    try:
        got: list[str] | str = dump_json_rows(values, "decision")
    except InputError as exc:
        got = str(exc)
    assert got == expected


def test_a_guard_batch_is_stored_as_the_standard_library_writes_each_decision(
    events: store.Store,
) -> None:
    # What a guard records (reasons with "≥", tiny timings, top labels, contexts with
    # non-ASCII text): the stored rows against the one-by-one encoder's text of each.
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.full(3, 0.4), size=3000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9, clarify_max_set_size=2).fit(proba, y)
    guard = Guard(lambda i: proba[i], None, policy, store=events, audit_rate=0.1)
    contexts = [{"text": f"naïve ☃ {i} \U0001f600", "n": i} if i % 2 else None for i in range(200)]
    decisions = guard.decide_batch(range(200), contexts)
    stored = events._read("SELECT task_id, payload FROM events WHERE kind = 'decision'")
    texts = {str(task_id): str(payload) for task_id, payload in stored}
    for decision in decisions:
        assert texts[str(decision.task_id)] == dump_json(decision.to_dict())


def test_numpy_values_enums_and_sets_take_the_standard_path() -> None:
    values: list[dict[str, Any]] = [
        {"a": np.float64(0.25), "b": np.arange(3), "c": np.int64(7)},
        {"s": {3, 1, 2}, "action": Action.ESCALATE},
        {"deep": [[[[1.5]]]], "big": 2**65},
    ]
    texts = dump_json_rows(values)
    assert [json.loads(t) for t in texts] == [
        {"a": 0.25, "b": [0, 1, 2], "c": 7},
        {"s": [1, 2, 3], "action": "escalate"},
        {"deep": [[[[1.5]]]], "big": 2**65},
    ]


def test_non_ascii_text_is_stored_escaped_as_the_standard_library_writes_it() -> None:
    # The queue's text filter matches the escaped spelling, so it must not change.
    values = [
        {**ANSWER, "context": {"text": "Ünïcödé ☃ 日本"}},
        {**ANSWER, "context": {"text": "plain"}},
    ]
    assert dump_json_rows(values) == [dump_json(value) for value in values]
    assert dump_json_rows(values)[0].isascii()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_float_anywhere_in_a_batch_refuses_the_batch(
    events: store.Store, bad: float
) -> None:
    items = [
        ("t1", {**ANSWER, "timings": {"model_s": 0.1}}),
        ("t2", {**ANSWER, "extra": {"scores": [0.5, bad]}}),
    ]
    with pytest.raises(InputError, match=r"`decision` contains NaN or an infinite float"):
        events.record_decisions(items)
    assert list(events.iter_events()) == []


def test_a_batch_of_decisions_reads_back_as_written(events: store.Store) -> None:
    items = [
        (f"t{i}", {**ANSWER, "context": {"text": "naïve \u2028", "n": i, "x": [1.0, None]}})
        for i in range(20)
    ]
    events.record_decisions(items)
    for task_id, decision in items:
        assert events.task(task_id).decision == {**decision, "task_id": task_id}


def test_a_payload_nested_too_deep_for_either_encoder_is_refused_as_one_by_one() -> None:
    deep: Any = 1.5
    for _ in range(5000):
        deep = [deep]
    values = [ANSWER, {**ANSWER, "extra": deep}]
    with pytest.raises(InputError, match="must hold only JSON values") as bulk:
        dump_json_rows(values, "decision")
    with pytest.raises(InputError) as single:
        dump_json(values[1], "decision")
    assert str(bulk.value) == str(single.value)
