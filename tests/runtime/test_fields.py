"""Fields computed for a whole batch at once equal the per-decision ones."""

from __future__ import annotations

import uuid

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from failwise.runtime._attempt import Attempts, InvalidScoresError, Outcome
from failwise.runtime._fields import fresh_ids, score_lists, top_labels


def test_fresh_ids_are_uuid4_hex_and_keep_the_given_ones() -> None:
    ids = fresh_ids(["mine", None, None, "yours", None])
    assert (ids[0], ids[3]) == ("mine", "yours")
    for task_id in (ids[1], ids[2], ids[4]):
        parsed = uuid.UUID(hex=task_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (task_id, 4, uuid.RFC_4122)
    assert len(set(fresh_ids([None] * 2000))) == 2000
    assert fresh_ids(["a", "b"]) == ["a", "b"]


def _outcome(proba: np.ndarray | None) -> Outcome:
    return Outcome(proba, None, None if proba is not None else "exception", "", 0.0, 0.0)


def test_top_labels_equal_the_stable_sort_of_each_row() -> None:
    rng = np.random.default_rng(3)
    rows = list(rng.dirichlet(np.full(7, 0.5), size=50))
    rows[4] = np.array([0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 0.0])  # ties keep label order
    outcomes = [_outcome(row) for row in rows]
    outcomes.insert(10, _outcome(None))
    tops = top_labels(outcomes, 5)
    assert tops[10] is None
    for outcome, top in zip(outcomes, tops, strict=True):
        if outcome.proba is None:
            continue
        order = np.argsort(-outcome.proba, kind="stable")[:5]
        assert top == [[int(j), round(float(outcome.proba[j]), 6)] for j in order]
    assert [label for label, _ in tops[4] or []] == [0, 1, 3, 4, 2]
    assert top_labels([_outcome(None)], 5) == [None]
    assert top_labels(outcomes[:3], 5) == tops[:3]  # a small batch sorts row by row


_NEAR_HALVES = st.integers(0, 999_999).map(lambda k: (k + 0.5) / 1e6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(0.0, 1.0) | _NEAR_HALVES | st.sampled_from([0.0078125, 5e-7, 1.0]),
        min_size=8,
        max_size=40,
    )
)
def test_top_labels_round_in_bulk_as_python_rounds_each_probability(values: list[float]) -> None:
    # Eight or more rows take the bulk path; the values just off a half (k + 0.5) / 1e6
    # are where rint(value * 1e6) / 1e6 alone would round otherwise than round(value, 6).
    outcomes = [_outcome(np.array([value, 1.0 - value])) for value in values]
    for value, top in zip(values, top_labels(outcomes, 2), strict=True):
        assert top is not None
        assert sorted(p for _, p in top) == sorted([round(value, 6), round(1.0 - value, 6)])


def test_probability_checks_of_a_batch_name_only_the_bad_rows() -> None:
    scores = np.array([[0.2, 0.8], [0.7, 0.7], [-0.1, 1.1], [0.5, 0.5]])
    results = Attempts._as_probabilities_many(scores)
    assert [isinstance(r, InvalidScoresError) for r in results] == [False, True, True, False]
    assert "summing to 1.4" in str(results[1])
    assert all(isinstance(r, np.ndarray) for r in Attempts._as_probabilities_many(scores[[0, 3]]))


def _scored(scores: np.ndarray | None) -> Outcome:
    proba = None if scores is None else scores / scores.sum()
    return Outcome(proba, None, None, "", 0.0, 0.0, scores)


def test_score_lists_equal_each_rows_tolist_in_bulk_and_row_by_row() -> None:
    rng = np.random.default_rng(5)
    many = [_scored(row) for row in rng.random((20, 4))] + [_scored(None)]
    few = [_scored(rng.random(3).astype(np.float32)), _scored(None)]
    mixed = [_scored(rng.random(3)) for _ in range(9)] + [_scored(rng.random(2))]
    for outcomes in (many, few, mixed):
        lists = score_lists(outcomes)
        expected = [None if o.scores is None else o.scores.tolist() for o in outcomes]
        assert lists == expected
        assert all(x is None or all(type(v) is float for v in x) for x in lists)
