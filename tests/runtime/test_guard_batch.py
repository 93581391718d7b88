"""`Guard.decide_batch` calls a batch model once; fallbacks and user rungs in a guard."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from failwise import Action, Decision, InputError, Policy
from failwise.artifacts import load, save
from failwise.policy import NO_OPINION, LadderState, Reason, RowState, Rung
from failwise.runtime import Guard


def same_decision(a: Decision, b: Decision) -> None:
    """Everything but the ids and timings is equal; the confidence up to rounding.

    A model scoring a batch may differ from scoring one row in the last bits (BLAS).
    """
    left, right = a.to_dict(), b.to_dict()
    assert left.pop("confidence") == pytest.approx(right.pop("confidence"), rel=1e-12)
    for d in (left, right):
        del d["task_id"], d["timings"]
    assert left == right


class CountingModel:
    """An estimator-like model whose ``decision_function`` counts its calls."""

    def __init__(self, model: Any, bad_rows: frozenset[int] = frozenset()) -> None:
        self.model = model
        self.bad_rows = bad_rows
        self.calls = 0
        self.rows = 0

    def decision_function(self, X: Any) -> Any:
        self.calls += 1
        self.rows += len(X)
        scores = self.model.decision_function(np.asarray(X))
        for i, x in enumerate(X):
            if int(x[0] * 1000) in self.bad_rows:
                scores[i, 0] = np.nan
        return scores


class CountingCalibrator:
    """Wraps a fitted calibrator and counts ``predict_proba`` calls."""

    def __init__(self, calibrator: Any) -> None:
        self.calibrator = calibrator
        self.calls = 0

    def predict_proba(self, scores: Any) -> Any:
        self.calls += 1
        return self.calibrator.predict_proba(scores)


def tagged(data: Any, n: int) -> list[Any]:
    """Test inputs whose first feature encodes the row number (to mark bad rows)."""
    xs = np.array(data.X_test[:n], dtype=np.float64)
    xs[:, 0] = np.arange(n) / 1000
    return list(xs)


def test_batch_model_is_called_once_and_calibrated_once(data: Any, policies: Any) -> None:
    model = CountingModel(data.model, bad_rows=frozenset({3, 17}))
    calibrator = CountingCalibrator(data.calibrator)
    xs = tagged(data, 60)
    guard = Guard(model, calibrator, policies["risk"], audit_rate=0.2, random_state=1)
    batched = guard.decide_batch(xs)
    assert (model.calls, model.rows, calibrator.calls) == (1, 60, 1)
    assert [i for i, d in enumerate(batched) if "failure" in d.extra] == [3, 17]
    assert all(batched[i].extra["failure"] == "invalid_scores" for i in (3, 17))
    assert "NaN" in batched[3].reason
    one = Guard(model, calibrator, policies["risk"], audit_rate=0.2, random_state=1)
    for a, b in zip([one.decide(x) for x in xs], batched, strict=True):
        same_decision(a, b)


def test_a_callable_declared_as_batch_model_is_called_once(data: Any, policies: Any) -> None:
    calls: list[int] = []

    def scores(xs: list[Any]) -> Any:
        calls.append(len(xs))
        return data.model.decision_function(np.asarray(xs))

    guard = Guard(scores, data.calibrator, policies["risk"], batch_model=True)
    decisions = guard.decide_batch(list(data.X_test[:40]))
    assert calls == [40]
    assert not any("failure" in d.extra for d in decisions)
    guard.decide(data.X_test[0])
    assert calls == [40, 1]


def test_a_batch_of_the_wrong_shape_degrades_every_input(data: Any, policies: Any) -> None:
    def scores(xs: list[Any]) -> Any:
        return data.model.decision_function(np.asarray(xs))[:-1]

    guard = Guard(scores, data.calibrator, policies["risk"], batch_model=True)
    decisions = guard.decide_batch(list(data.X_test[:5]))
    assert {d.extra["failure"] for d in decisions} == {"invalid_scores"}
    assert "shape (4, 8) for a batch of 5 inputs" in decisions[0].reason
    with pytest.raises(InputError, match="`batch_model` must be True or False"):
        Guard(scores, data.calibrator, policies["risk"], batch_model="yes")  # type: ignore[arg-type]


def test_the_fallback_is_asked_for_every_input_and_its_opinion_recorded(
    data: Any, policies: Any
) -> None:
    policy = policies["risk"]  # fitted without the fallback: the ladder never uses it
    guard = Guard(data.model.decision_function, data.calibrator, policy, fallback=data.rule)
    decisions = guard.decide_batch(list(data.X_test[:200])) + [
        guard.decide(x) for x in data.X_test[200:300]
    ]
    opinions = [data.rule(x) for x in data.X_test[:300]]
    assert [d.fallback_label for d in decisions] == opinions
    assert any(label is not None for label in opinions)
    assert not any(d.action is Action.FALLBACK for d in decisions)
    plain = Guard(data.model.decision_function, data.calibrator, policy).decide(data.X_test[0])
    assert plain.fallback_label is None
    assert plain.to_dict()["fallback_label"] is None


@dataclasses.dataclass(frozen=True)
class EscalateLabel(Rung):
    """Escalate every input whose top label is ``label``."""

    label: int

    def __call__(self, state: LadderState) -> None:
        rows = state.undecided & (state.predicted == self.label)
        state.assign(rows, Action.ESCALATE, Reason.RULE)

    def decide_row(self, row: RowState) -> None:
        if row.predicted == self.label:
            row.assign(Action.ESCALATE, Reason.RULE)


def test_a_user_rung_runs_in_a_guard_and_through_an_artefact(data: Any, tmp_path: Path) -> None:
    logits = data.logits(data.X_val)
    in_scope = data.y_val >= 0
    proba = data.calibrator.predict_proba(logits[in_scope])
    policy = Policy(target_risk=0.05, extra_rungs=[EscalateLabel(3)]).fit(
        proba, data.y_val[in_scope]
    )
    save(policy, tmp_path / "policy")
    loaded = load(tmp_path / "policy")
    for p in (policy, loaded):
        guard = Guard(data.model.decision_function, data.calibrator, p)
        xs = list(data.X_test[:120])
        decisions = guard.decide_batch(xs)
        assert [d.action for d in decisions] == [guard.decide(x).action for x in xs]
        threes = [d for d in decisions if d.predicted == 3]
        assert threes
        assert all(d.action is Action.ESCALATE for d in threes)
        assert threes[0].reason.startswith("escalate: a rule of the ladder decided")
    assert NO_OPINION == -2


class CountingScorer:
    """An out-of-scope scorer with ``score(X)`` over rows that counts its calls.

    Raises for a batch that holds a row in ``bad_rows`` (and for that row alone).
    """

    def __init__(self, knn: Any, bad_rows: frozenset[int] = frozenset()) -> None:
        self.knn = knn
        self.bad_rows = bad_rows
        self.calls = 0

    def score(self, X: Any) -> Any:
        self.calls += 1
        if any(round(x[0] * 1000) in self.bad_rows for x in X):
            raise RuntimeError("index shard offline")
        return self.knn.score(np.asarray(X))


@pytest.mark.parametrize("name", ["risk_ood_fallback_capacity", "no_humans"])
def test_a_scorer_with_score_is_called_once_per_batch_and_matches_one_by_one(
    data: Any, policies: Any, name: str
) -> None:
    xs = list(np.asarray(data.X_test[:50], dtype=np.float64))
    scorer = CountingScorer(data.knn)
    fallback = data.rule if policies[name].fallback_accuracy_ is not None else None
    batch = Guard(data.model, data.calibrator, policies[name], ood=scorer, fallback=fallback)
    batched = batch.decide_batch(xs)
    assert scorer.calls == 1
    one = Guard(data.model, data.calibrator, policies[name], ood=scorer, fallback=fallback)
    singles = [one.decide(x) for x in xs]
    assert scorer.calls == 1 + len(xs)
    for a, b in zip(singles, batched, strict=True):
        same_decision(a, b)
        assert a.ood_score == pytest.approx(b.ood_score, rel=1e-12)


def test_a_callable_declared_as_batch_ood_is_called_once(data: Any, policies: Any) -> None:
    calls: list[int] = []

    def knn_scores(X: list[Any]) -> Any:
        calls.append(len(X))
        return data.knn.score(np.asarray(X))

    policy = policies["no_humans"]
    guard = Guard(data.model, data.calibrator, policy, ood=knn_scores, batch_ood=True)
    decisions = guard.decide_batch(list(data.X_test[:30]))
    assert calls == [30]
    assert [d.ood_score for d in decisions] == pytest.approx(data.ood(data.X_test[:30]))
    with pytest.raises(InputError, match="`batch_ood` must be True or False"):
        Guard(data.model, data.calibrator, policy, ood=knn_scores, batch_ood=1)  # type: ignore[arg-type]


def test_a_failing_batch_scorer_degrades_only_the_rows_it_fails_on(
    data: Any, policies: Any
) -> None:
    xs = tagged(data, 40)
    scorer = CountingScorer(data.knn, bad_rows=frozenset({7}))
    guard = Guard(data.model, data.calibrator, policies["no_humans"], ood=scorer)
    decisions = guard.decide_batch(xs)  # never raises
    assert scorer.calls == 1 + len(xs)  # the batch, then each row on its own
    assert [i for i, d in enumerate(decisions) if "failure" in d.extra] == [7]
    assert decisions[7].extra["failure"] == "ood"
    assert "out-of-scope scorer failed: RuntimeError: index shard offline" in decisions[7].reason
    assert all(d.ood_score is not None for i, d in enumerate(decisions) if i != 7)


def test_a_scorer_that_overruns_the_time_limit_degrades_the_batch(data: Any, policies: Any) -> None:
    release = threading.Event()

    def hung(X: list[Any]) -> Any:
        release.wait(5.0)
        return np.zeros(len(X))

    policy = policies["no_humans"]
    try:
        with Guard(
            data.model, data.calibrator, policy, ood=hung, batch_ood=True, timeout_s=0.05
        ) as guard:
            decisions = guard.decide_batch(list(data.X_test[:5]))
            single = guard.decide(data.X_test[0])
    finally:
        release.set()
    for d in [*decisions, single]:
        assert d.extra["failure"] == "ood"
        assert "out-of-scope scorer failed: TimeoutError after 0.05 s" in d.reason
