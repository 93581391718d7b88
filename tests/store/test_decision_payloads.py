"""Decision payloads written in bulk: the same JSON and the same refusals as one by one.

``record_decisions`` encodes a batch's payloads together (a fast encoder when installed,
with one finiteness check over every float); each payload must read back as the standard
library's encoding of it, and a batch holding a value JSON cannot carry is refused whole.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failwise import store
from failwise.exceptions import InputError
from failwise.policy import Action
from failwise.store._checks import dump_json, dump_json_rows

ANSWER: dict[str, Any] = {"action": "answer", "label": 1, "confidence": 0.9, "band": "high"}

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "é", "\x7f", "\u2028"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        | st.dictionaries(st.integers(0, 3), inner, max_size=2)
    ),
    max_leaves=8,
)


def _oracle(values: list[dict[str, Any]]) -> list[Any] | str:
    """What the one-by-one encoder gives: the decoded payloads, or the first refusal."""
    try:
        return [json.loads(dump_json(value, "decision")) for value in values]
    except InputError as exc:
        return str(exc)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=5))
def test_bulk_encoding_equals_the_standard_library_value_for_value(extras: list[Any]) -> None:
    values = [{**ANSWER, "extra": extra} for extra in extras]
    expected = _oracle(values)
    try:
        got: list[Any] | str = [json.loads(text) for text in dump_json_rows(values, "decision")]
    except InputError as exc:
        got = str(exc)
    assert got == expected


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
