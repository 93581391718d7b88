"""The rungs of the ladder, one at a time."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.policy import (
    Action,
    AnswerRung,
    ClarifyRung,
    ConformalPredictionSets,
    EscalateRung,
    FallbackRung,
    LadderState,
    OutOfScopeRung,
    run_ladder,
)


def state_for(proba: np.ndarray, **kwargs: object) -> LadderState:
    return LadderState(proba, proba.max(axis=1), proba.argmax(axis=1), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_set_size", [1, 2, 3, 5])
def test_fast_clarify_sets_equal_the_conformal_sets(
    rng: np.random.Generator, max_set_size: int
) -> None:
    proba = rng.dirichlet(np.full(8, 0.4), size=3000)
    proba[:200] = np.round(proba[:200], 1)  # ties
    proba[:200] /= proba[:200].sum(axis=1, keepdims=True)
    y = rng.integers(0, 8, 3000)
    sets = ConformalPredictionSets(method="aps", coverage=0.8).fit(proba[1000:], y[1000:])
    state = run_ladder(state_for(proba[:1000]), [ClarifyRung(sets, max_set_size)])
    reference = sets.predict_set(proba[:1000])
    sizes = reference.sum(axis=1)
    expected = np.flatnonzero((sizes >= 1) & (sizes <= max_set_size))
    np.testing.assert_array_equal(np.sort(state.set_rows), expected)
    order = np.argsort(state.set_rows)
    np.testing.assert_array_equal(state.set_masks[order], reference[expected])


@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.95])
def test_fast_lac_sets_equal_the_conformal_sets(rng: np.random.Generator, coverage: float) -> None:
    proba = rng.dirichlet(np.full(6, 0.5), size=4000)
    proba[:300] = np.round(proba[:300], 2)
    proba[:300] /= proba[:300].sum(axis=1, keepdims=True)
    y = rng.integers(0, 6, 4000)
    sets = ConformalPredictionSets(method="lac", coverage=coverage).fit(proba[2000:], y[2000:])
    state = run_ladder(state_for(proba[:2000]), [ClarifyRung(sets, 3)])
    reference = sets.predict_set(proba[:2000])
    sizes = reference.sum(axis=1)
    expected = np.flatnonzero((sizes >= 1) & (sizes <= 3))
    np.testing.assert_array_equal(state.set_rows, expected)
    np.testing.assert_array_equal(state.set_masks, reference[expected])


def test_rungs_claim_rows_in_ladder_order() -> None:
    proba = np.array([[0.95, 0.05], [0.6, 0.4], [0.55, 0.45], [0.9, 0.1]])
    state = state_for(
        proba, ood_score=np.array([0.0, 0.0, 0.0, 5.0]), fallback_labels=np.array([-2, 1, -2, -1])
    )
    trusted = np.array([True, True, True])
    run_ladder(
        state, [OutOfScopeRung(1.0), AnswerRung(0.9), FallbackRung(trusted), EscalateRung(True)]
    )
    assert state.action_codes.tolist() == [
        Action.ANSWER.code,
        Action.FALLBACK.code,
        Action.ESCALATE.code,
        Action.FALLBACK.code,
    ]
    assert state.label.tolist()[:2] == [0, 1]
    assert state.label[3] == -1  # the fallback's "out of scope" response


def test_escalate_rung_abstains_below_the_capacity_floor() -> None:
    proba = np.array([[0.6, 0.4], [0.5, 0.5]])
    state = run_ladder(state_for(proba), [EscalateRung(True, abstain_below=0.55)])
    assert state.action_codes.tolist() == [Action.ESCALATE.code, Action.ABSTAIN.code]
