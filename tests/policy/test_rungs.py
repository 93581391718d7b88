"""Every rung's one-row path equals its batch path, and its saved state rebuilds it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failwise.artifacts import policy_from_state, policy_to_state
from failwise.exceptions import InputError
from failwise.policy import (
    NO_OPINION,
    Action,
    AnswerRung,
    ClarifyRung,
    ConformalPredictionSets,
    EscalateRung,
    FallbackRung,
    LadderState,
    OutOfScopeRung,
    Policy,
    Reason,
    RowState,
    Rung,
    run_ladder,
    run_row,
    rung_class,
)


@dataclasses.dataclass(frozen=True)
class EscalateLabel(Rung):
    """Escalate every input whose top label is ``label``."""

    label: int

    def __call__(self, state: LadderState) -> None:
        rows = state.undecided & (state.predicted == self.label)
        state.assign(rows, Action.ESCALATE, Reason.RULE)


class AnswerWhenFallbackAgrees(Rung):
    """A non-dataclass rung with its own state and fast row path."""

    runs_before = "clarify"

    def __init__(self, floor: float) -> None:
        self.floor = floor

    def __call__(self, state: LadderState) -> None:
        if state.fallback_labels is None:
            return
        rows = (
            state.undecided
            & ~state.handoff
            & (state.fallback_labels == state.predicted)
            & (state.confidence >= self.floor)
        )
        state.assign(rows, Action.ANSWER, Reason.RULE, label=state.predicted[rows])

    def decide_row(self, row: RowState) -> None:
        if not row.handoff and row.fallback_label == row.predicted and row.confidence >= self.floor:
            row.assign(Action.ANSWER, Reason.RULE, row.predicted)

    def to_state(self) -> dict[str, Any]:
        return {"floor": self.floor}

    @classmethod
    def from_state(cls, state: Any) -> AnswerWhenFallbackAgrees:
        return cls(float(state["floor"]))


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = draw(st.integers(2, 7))
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, draw(st.sampled_from([0.2, 0.5, 2.0]))), size=n)
    if draw(st.booleans()):  # ties
        proba = np.round(proba, 1) + 1e-12
        proba /= proba.sum(axis=1, keepdims=True)
    ood = rng.normal(size=n)
    fallback = rng.integers(NO_OPINION, k, size=n)
    return proba, ood, fallback


def fitted_sets(method: str, k: int, coverage: float) -> ConformalPredictionSets:
    rng = np.random.default_rng(k)
    proba = rng.dirichlet(np.full(k, 0.5), size=400)
    y = np.array([rng.choice(k, p=p) for p in proba])
    return ConformalPredictionSets(method=method, coverage=coverage).fit(proba, y)


def ladders(k: int, draw: st.DrawFn) -> list[Any]:
    method = draw(st.sampled_from(["lac", "aps"]))
    trusted = np.array(draw(st.lists(st.booleans(), min_size=k + 1, max_size=k + 1)))
    return [
        OutOfScopeRung(draw(st.sampled_from([0.5, 1.5, np.inf]))),
        EscalateLabel(draw(st.integers(0, k - 1))),
        AnswerRung(draw(st.floats(0.3, 1.0))),
        AnswerRung(draw(st.floats(-1.0, 4.0)), "log_odds"),
        AnswerWhenFallbackAgrees(draw(st.floats(0.0, 1.0))),
        ClarifyRung(
            fitted_sets(method, k, draw(st.sampled_from([0.6, 0.9]))), draw(st.integers(0, 3))
        ),
        FallbackRung(trusted),
        EscalateRung(draw(st.booleans()), draw(st.sampled_from([-np.inf, 0.4]))),
    ]


def batch_and_rows(
    rungs: list[Any], proba: np.ndarray, ood: np.ndarray, fallback: np.ndarray
) -> None:
    state = run_ladder(
        LadderState(proba, proba.max(axis=1), proba.argmax(axis=1), ood, fallback), rungs
    )
    sets = dict(zip(state.set_rows.tolist(), state.set_masks, strict=True))
    for i in range(proba.shape[0]):
        row = run_row(RowState(proba[i], float(ood[i]), int(fallback[i])), rungs)
        assert row.action == state.action_codes[i]
        assert row.label == state.label[i]
        assert row.reason == state.reason_codes[i]
        assert row.handoff == state.handoff[i]
        if i in sets:
            assert row.mask is not None
            np.testing.assert_array_equal(row.mask, sets[i])
        else:
            assert row.mask is None


@settings(max_examples=150, deadline=None)
@given(data=st.data(), batch=batches())
def test_every_rung_decides_a_row_as_its_batch_path_does(data: st.DataObject, batch: Any) -> None:
    proba, ood, fallback = batch
    rungs = ladders(proba.shape[1], data.draw)  # type: ignore[arg-type]
    for start in range(len(rungs)):  # every rung gets undecided rows, alone and in a ladder
        batch_and_rows(rungs[start:], proba, ood, fallback)
        batch_and_rows([rungs[start]], proba, ood, fallback)


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_saved_rungs_rebuild_rungs_that_decide_the_same(
    rng: np.random.Generator, method: str
) -> None:
    proba = rng.dirichlet(np.full(5, 0.4), size=500)
    fallback = rng.integers(NO_OPINION, 5, size=500)
    rungs = [
        OutOfScopeRung(1.0),
        EscalateLabel(2),
        AnswerRung(0.8),
        AnswerRung(1.0, "log_odds"),
        AnswerWhenFallbackAgrees(0.5),
        ClarifyRung(fitted_sets(method, 5, 0.9), 2),
        FallbackRung(np.array([True, False, True, True, False, True])),
        EscalateRung(True, 0.3),
    ]
    copies = [rung_class(type(r).rung_name).from_state(r.to_state()) for r in rungs]
    assert [type(c) for c in copies] == [type(r) for r in rungs]
    ood = rng.normal(size=500)

    def run(ladder: list[Any]) -> LadderState:
        return run_ladder(LadderState(proba, proba.max(1), proba.argmax(1), ood, fallback), ladder)

    a, b = run(rungs), run(copies)
    np.testing.assert_array_equal(a.action_codes, b.action_codes)
    np.testing.assert_array_equal(a.set_masks, b.set_masks)


def fitted_with(extra: list[Rung]) -> tuple[Policy, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(4, 0.3), size=3000)
    y = np.array([rng.choice(4, p=p) for p in proba])
    fallback = np.where(rng.random(3000) < 0.5, y, NO_OPINION)
    policy = Policy(target_risk=0.1, confidence_level=0.9, extra_rungs=extra)
    return policy.fit(proba, y, fallback=fallback), proba, fallback


def test_user_rungs_run_where_they_say_and_survive_an_artefact() -> None:
    policy, proba, fallback = fitted_with([EscalateLabel(1), AnswerWhenFallbackAgrees(0.3)])
    names = [type(r).__name__ for r in policy.rungs_]
    assert names == [
        "OutOfScopeRung",
        "EscalateLabel",
        "AnswerRung",
        "AnswerWhenFallbackAgrees",
        "ClarifyRung",
        "FallbackRung",
        "EscalateRung",
    ]
    decisions = policy.decide(proba, fallback=fallback)
    assert set(decisions.action[decisions.predicted == 1].tolist()) == {"escalate"}
    loaded = policy_from_state(policy_to_state(policy))
    assert [type(r) for r in loaded.rungs_] == [type(r) for r in policy.rungs_]
    assert [type(r) for r in loaded.extra_rungs] == [EscalateLabel, AnswerWhenFallbackAgrees]  # type: ignore[union-attr]
    again = loaded.decide(proba, fallback=fallback)
    np.testing.assert_array_equal(again.action_codes, decisions.action_codes)
    for i in range(0, 3000, 97):
        one = policy.decide_one(proba[i], fallback=int(fallback[i]))
        assert one == decisions[i]


def test_user_rungs_are_fitted_around_not_into_the_thresholds() -> None:
    plain, _, _ = fitted_with([])
    extended, _, _ = fitted_with([EscalateLabel(1)])
    assert plain.answer_threshold_ == extended.answer_threshold_


def test_extra_rungs_must_be_rungs() -> None:
    with pytest.raises(InputError, match=r"`extra_rungs` must be None or a list of Rung instances"):
        fitted_with([lambda state: None])  # type: ignore[list-item]


def test_unknown_rung_names_say_how_to_load_them() -> None:
    with pytest.raises(
        InputError, match=r"no rung class is registered as 'Nope'.*Define \(import\)"
    ):
        rung_class("Nope")


def test_a_rung_must_say_where_it_runs() -> None:
    with pytest.raises(InputError, match=r"runs_before must be one of"):

        class Misplaced(Rung):
            runs_before = "somewhere"

            def __call__(self, state: LadderState) -> None:
                return None
