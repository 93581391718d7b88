"""`Guard` on a real digits classifier: decisions, failures, breaker, batch, async, audit."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression

from failwise import Action, Decision, InputError, NotFittedError, Policy, TemperatureScaling
from failwise.calibration import IsotonicCalibration
from failwise.policy import NO_LABEL
from failwise.runtime import Guard, circuit_breaker

# --------------------------------------------------------------------------- helpers


def same_decision(a: Decision, b: Decision) -> None:
    """Everything but the ids and timings is equal."""
    assert a.action == b.action
    assert a.label == b.label
    assert a.confidence == b.confidence
    assert a.band == b.band
    assert a.prediction_set == b.prediction_set
    assert a.reason == b.reason
    assert a.predicted == b.predicted
    assert a.ood_score == b.ood_score
    assert a.policy_version == b.policy_version
    assert dict(a.extra) == dict(b.extra)


def signals(data: Any, policy: Policy) -> dict[str, Any]:
    """The out-of-scope scorer and fallback the policy was fitted with."""
    return {
        "ood": data.knn if np.isfinite(policy.ood_threshold_) else None,
        "fallback": data.rule if policy.fallback_accuracy_ is not None else None,
    }


def guard_for(data: Any, policy: Policy, model: Any = None, **kwargs: Any) -> Guard:
    """A guard around the digits model: logits → temperature scaling → policy."""
    arguments = {**signals(data, policy), **kwargs}
    return Guard(model or data.model.decision_function, data.calibrator, policy, **arguments)


class Flaky:
    """A model that fails while ``failing`` is set, and counts its calls."""

    def __init__(self, model: Any, failing: bool = True) -> None:
        self.model = model
        self.failing = failing
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        if self.failing:
            raise ConnectionError("model server refused the connection")
        return self.model.decision_function([x])[0]


# --------------------------------------------------------------------------- decisions


def test_guard_decides_exactly_as_the_policy_on_every_test_input(
    data: Any, policies: dict[str, Policy], policy_name: str
) -> None:
    policy = policies[policy_name]
    guard = guard_for(data, policy)
    X = data.X_test
    ood = data.ood(X) if np.isfinite(policy.ood_threshold_) else None
    fallback = data.fallback_labels(X) if policy.fallback_accuracy_ is not None else None
    expected = policy.decide(data.proba(X), ood_score=ood, fallback=fallback)
    seen = set()
    for i, x in enumerate(X):
        got = guard.decide(x)
        want = expected[i]
        assert got.action == want.action, i
        assert got.label == want.label
        assert got.reason == want.reason
        assert got.prediction_set == want.prediction_set
        assert got.band == want.band
        assert got.predicted == want.predicted
        assert math.isclose(got.confidence, want.confidence, rel_tol=1e-12)
        assert got.ood_score == (None if ood is None else pytest.approx(ood[i]))
        seen.add(got.action)
    assert Action.ANSWER in seen
    assert len(seen) >= 2


def test_decision_carries_task_id_policy_version_and_timings(data: Any, policies: Any) -> None:
    from failwise.artifacts import artifact_hash

    policy = policies["risk"]
    guard = guard_for(data, policy)
    first, second = guard.decide(data.X_test[0]), guard.decide(data.X_test[0])
    assert first.task_id != second.task_id
    assert len(first.task_id) == 32  # type: ignore[arg-type]
    assert int(first.task_id, 16) >= 0  # type: ignore[arg-type]
    assert first.policy_version == artifact_hash(policy) == guard.policy_version
    assert first.extra["calibrator_version"] == artifact_hash(data.calibrator)
    assert set(first.timings) == {
        "model_s",
        "calibrate_s",
        "ood_s",
        "fallback_s",
        "decide_s",
        "total_s",
    }
    assert all(value >= 0 for value in first.timings.values())
    assert first.timings["total_s"] >= first.timings["model_s"]


def test_estimator_with_predict_proba_needs_no_calibrator(data: Any) -> None:
    model = LogisticRegression(max_iter=2000).fit(
        data.X_val[data.y_val >= 0], data.y_val[data.y_val >= 0]
    )
    in_scope = data.y_val >= 0
    policy = Policy(target_risk=0.05).fit(
        model.predict_proba(data.X_val[in_scope]), data.y_val[in_scope]
    )
    expected = policy.decide(model.predict_proba(data.X_test[:50]))
    for guard in (Guard(model, None, policy), Guard(model.predict_proba, None, policy)):
        for i, x in enumerate(data.X_test[:50]):
            decision = guard.decide(x)
            assert decision.action == expected[i].action
            assert decision.label == expected[i].label
            assert "failure" not in decision.extra


def test_labels_and_context_travel_with_the_decision(data: Any, policies: Any) -> None:
    names = [f"digit {k}" for k in range(8)]
    guard = guard_for(data, policies["risk"], labels=names)
    answered = next(
        d
        for d in (guard.decide(x, context={"user": "u1"}) for x in data.X_test)
        if d.label is not None
    )
    assert answered.extra["label_name"] == names[answered.label]  # type: ignore[index]
    assert answered.extra["context"] == {"user": "u1"}
    assert answered.to_dict()["context"] == {"user": "u1"}


# --------------------------------------------------------------------------- failures


def failing_models(data: Any) -> dict[str, tuple[Any, str, str]]:
    """Real failing callables: (model, extra["failure"], text in the reason)."""
    logits = data.model.decision_function

    def raises(x: Any) -> Any:
        raise ValueError("tokenizer crashed on input")

    def nan(x: Any) -> Any:
        out = logits([x])[0]
        out[3] = np.nan
        return out

    def inf(x: Any) -> Any:
        return np.full(8, np.inf)

    def short(x: Any) -> Any:
        return logits([x])[0][:5]

    def matrix(x: Any) -> Any:
        return np.ones((3, 8))

    def text(x: Any) -> Any:
        return "positive"

    def empty(x: Any) -> Any:
        return []

    return {
        "raises": (raises, "exception", "model failed: ValueError: tokenizer crashed on input"),
        "nan": (nan, "invalid_scores", "model failed: the model returned scores containing NaN"),
        "inf": (inf, "invalid_scores", "containing infinite values"),
        "short": (short, "invalid_scores", "the model returned 5 scores; expected 8"),
        "matrix": (matrix, "invalid_scores", "shape (3, 8)"),
        "text": (text, "invalid_scores", "not a vector of numbers"),
        "empty": (empty, "invalid_scores", "shape (0,)"),
    }


@pytest.mark.parametrize("case", ["raises", "nan", "inf", "short", "matrix", "text", "empty"])
def test_model_failures_escalate_with_a_reason_instead_of_raising(
    data: Any, policies: Any, case: str
) -> None:
    model, kind, text = failing_models(data)[case]
    guard = Guard(model, data.calibrator, policies["risk"])
    decision = guard.decide(data.X_test[0])
    assert decision.action is Action.ESCALATE
    assert decision.label is None
    assert decision.extra["failure"] == kind
    assert decision.reason.startswith("escalate: ")
    assert text in decision.reason
    assert decision.reason.endswith("no trusted fallback label, so a human decides")
    assert decision.predicted == NO_LABEL
    assert decision.confidence == 0.0


def test_time_out_abandons_the_model_call_and_goes_down_the_ladder(
    data: Any, policies: Any
) -> None:
    release = threading.Event()
    finished = threading.Event()

    def hangs(x: Any) -> Any:
        release.wait(30)
        finished.set()
        return data.model.decision_function([x])[0]

    with Guard(hangs, data.calibrator, policies["risk"], timeout_s=0.05) as guard:
        decision = guard.decide(data.X_test[0])
        assert decision.action is Action.ESCALATE
        assert decision.extra["failure"] == "timeout"
        assert "model failed: TimeoutError after 0.05 s" in decision.reason
        assert not finished.is_set()  # the call is abandoned, not finished
        release.set()
        assert finished.wait(30)


def test_model_raising_its_own_timeout_error_is_an_exception_not_a_time_out(
    data: Any, policies: Any
) -> None:
    def client(x: Any) -> Any:
        raise TimeoutError("upstream read timed out")

    decision = Guard(client, data.calibrator, policies["risk"], timeout_s=5).decide(data.X_test[0])
    assert decision.extra["failure"] == "exception"
    assert "TimeoutError: upstream read timed out" in decision.reason


def test_failed_model_uses_a_trusted_fallback_label(data: Any, policies: Any) -> None:
    policy = policies["risk_ood_fallback_capacity"]
    assert policy.fallback_trusted_.all()
    guard = guard_for(data, policy, Flaky(data.model))
    labels = data.fallback_labels(data.X_test)
    row = int(np.flatnonzero(labels >= 0)[0])
    decision = guard.decide(data.X_test[row])
    assert decision.action is Action.FALLBACK
    assert decision.label == labels[row]
    assert decision.reason == (
        f"fallback: model failed: ConnectionError: model server refused the connection; the "
        f"fallback gave label {labels[row]}"
    )
    silent = int(np.flatnonzero(labels == -2)[0])
    assert guard.decide(data.X_test[silent]).action is Action.ESCALATE


def test_failed_model_abstains_when_humans_are_off(data: Any, policies: Any) -> None:
    guard = Guard(Flaky(data.model), data.calibrator, policies["no_humans"], ood=data.knn)
    decision = guard.decide(data.X_test[0])
    assert decision.action is Action.ABSTAIN
    assert decision.reason.endswith("escalation to humans is turned off")


def test_failing_fallback_counts_as_no_opinion(data: Any, policies: Any) -> None:
    def rule(x: Any) -> int:
        raise KeyError("lookup table missing")

    policy = policies["risk_ood_fallback_capacity"]
    guard = Guard(Flaky(data.model), data.calibrator, policy, ood=data.knn, fallback=rule)
    decision = guard.decide(data.X_test[0])
    assert decision.action is Action.ESCALATE
    assert decision.extra["fallback_error"] == "KeyError: 'lookup table missing'"


def test_calibrator_failure_degrades_the_input(data: Any, policies: Any) -> None:
    # Isotonic calibration of probabilities, fed logits: it rejects them on every call.
    in_scope = data.y_val >= 0
    isotonic = IsotonicCalibration().fit(data.proba(data.X_val[in_scope]), data.y_val[in_scope])
    guard = Guard(data.model.decision_function, isotonic, policies["risk"])
    decision = guard.decide(data.X_test[0])
    assert decision.action is Action.ESCALATE
    assert decision.extra["failure"] == "calibrator"
    assert decision.reason.startswith("escalate: calibrator failed: InputError")


def test_failing_ood_scorer_degrades_only_when_the_policy_uses_its_scores(
    data: Any, policies: Any
) -> None:
    def scorer(x: Any) -> float:
        raise RuntimeError("index not loaded")

    uses = guard_for(data, policies["no_humans"], ood=scorer).decide(data.X_test[0])
    assert uses.extra["failure"] == "ood"
    assert uses.action is Action.ABSTAIN
    assert "out-of-scope scorer failed: RuntimeError: index not loaded" in uses.reason
    assert uses.predicted >= 0  # the model did answer

    ignores = guard_for(data, policies["risk"], ood=scorer).decide(data.X_test[0])
    assert "failure" not in ignores.extra
    assert ignores.extra["ood_error"] == "RuntimeError: index not loaded"
    assert ignores.ood_score is None


# --------------------------------------------------------------------------- circuit breaker


def test_breaker_opens_after_repeated_failures_and_stops_calling_the_model(
    data: Any, policies: Any
) -> None:
    model = Flaky(data.model)
    breaker = circuit_breaker(fail_max=3, reset_timeout_s=60)
    guard = Guard(model, data.calibrator, policies["risk"], circuit_breaker=breaker)
    reasons = [guard.decide(x) for x in data.X_test[:6]]
    assert model.calls == 3
    assert breaker.current_state == "open"
    assert [d.extra["failure"] for d in reasons] == ["exception"] * 3 + ["circuit_open"] * 3
    assert (
        "circuit breaker open after 3 consecutive failures, model not called" in reasons[-1].reason
    )
    assert all(d.action is Action.ESCALATE for d in reasons)


def test_breaker_half_open_trial_closes_it_when_the_model_recovers(
    data: Any, policies: Any
) -> None:
    model = Flaky(data.model)
    breaker = circuit_breaker(fail_max=2, reset_timeout_s=0.2)
    guard = Guard(model, data.calibrator, policies["risk"], circuit_breaker=breaker)
    for x in data.X_test[:3]:
        guard.decide(x)
    assert breaker.current_state == "open"
    assert model.calls == 2
    time.sleep(0.3)  # past the reset time-out: the next call is a trial
    assert guard.decide(data.X_test[3]).extra["failure"] == "exception"  # failed trial
    assert breaker.current_state == "open"
    assert model.calls == 3
    model.failing = False
    time.sleep(0.3)
    decision = guard.decide(data.X_test[4])
    assert "failure" not in decision.extra
    assert breaker.current_state == "closed"
    assert model.calls == 4


def test_breaker_counts_time_outs_and_invalid_scores(data: Any, policies: Any) -> None:
    release = threading.Event()

    def sometimes(x: Any) -> Any:
        if x[0] < 0:
            release.wait(30)
        return np.full(8, np.nan)

    breaker = circuit_breaker(fail_max=2, reset_timeout_s=60)
    guard = Guard(
        sometimes, data.calibrator, policies["risk"], circuit_breaker=breaker, timeout_s=0.5
    )
    hung = -np.ones(64)
    kinds = [guard.decide(x).extra["failure"] for x in (hung, data.X_test[0], data.X_test[1])]
    release.set()
    assert kinds == ["timeout", "invalid_scores", "circuit_open"]


def test_breaker_lets_concurrent_model_calls_overlap(data: Any, policies: Any) -> None:
    inside = threading.Barrier(4, timeout=20)

    def model(x: Any) -> Any:
        inside.wait()  # every thread must be inside the model at once
        return data.model.decision_function([x])[0]

    guard = Guard(model, data.calibrator, policies["risk"], circuit_breaker=circuit_breaker())
    results: list[Decision] = []
    threads = [
        threading.Thread(target=lambda x=x: results.append(guard.decide(x)))
        for x in data.X_test[:4]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4
    assert all("failure" not in d.extra for d in results)


# --------------------------------------------------------------------------- batch and async


def test_batch_equals_one_by_one_including_failures(
    data: Any, policies: dict[str, Policy], policy_name: str
) -> None:
    policy = policies[policy_name]

    def model(x: Any) -> Any:
        if x[10] > 0.9:
            raise RuntimeError("feature 10 overflow")
        return data.model.decision_function([x])[0]

    xs = list(data.X_test[:150])
    one = guard_for(data, policy, model, audit_rate=0.3, random_state=7)
    batch = guard_for(data, policy, model, audit_rate=0.3, random_state=7)
    singles = [one.decide(x) for x in xs]
    batched = batch.decide_batch(xs)
    assert len(batched) == len(xs)
    for a, b in zip(singles, batched, strict=True):
        same_decision(a, b)
    assert any("failure" in d.extra for d in batched)
    assert len({d.task_id for d in batched}) == len(xs)


def test_batch_of_nothing_is_an_empty_list(data: Any, policies: Any) -> None:
    assert guard_for(data, policies["risk"]).decide_batch([]) == []


def test_adecide_equals_decide(data: Any, policies: dict[str, Policy], policy_name: str) -> None:
    policy = policies[policy_name]
    sync, asynchronous = guard_for(data, policy), guard_for(data, policy)

    async def run() -> list[Decision]:
        return list(await asyncio.gather(*(asynchronous.adecide(x) for x in data.X_test[:40])))

    for a, b in zip((sync.decide(x) for x in data.X_test[:40]), asyncio.run(run()), strict=True):
        same_decision(a, b)


def test_adecide_time_out_and_failures_never_raise(data: Any, policies: Any) -> None:
    release = threading.Event()

    def model(x: Any) -> Any:
        if x[0] < 0:
            release.wait(30)
        if x[0] > 5:
            raise OSError("GPU fell off the bus")
        return data.model.decision_function([x])[0]

    guard = Guard(model, data.calibrator, policies["risk"], timeout_s=0.5)

    async def run() -> list[Decision]:
        inputs = [-np.ones(64), np.full(64, 6.0), data.X_test[0]]
        return list(await asyncio.gather(*(guard.adecide(x) for x in inputs)))

    hung, broken, fine = asyncio.run(run())
    release.set()
    assert hung.extra["failure"] == "timeout"
    assert "TimeoutError after 0.5 s" in hung.reason
    assert broken.extra["failure"] == "exception"
    assert "OSError: GPU fell off the bus" in broken.reason
    assert "failure" not in fine.extra


def test_adecide_with_an_open_breaker_skips_the_model(data: Any, policies: Any) -> None:
    model = Flaky(data.model)
    guard = Guard(
        model, data.calibrator, policies["risk"], circuit_breaker=circuit_breaker(fail_max=1)
    )

    async def run() -> list[Decision]:
        return [await guard.adecide(x) for x in data.X_test[:3]]

    decisions = asyncio.run(run())
    assert [d.extra["failure"] for d in decisions] == ["exception", "circuit_open", "circuit_open"]
    assert model.calls == 1


# --------------------------------------------------------------------------- audit


def test_audit_rate_samples_the_stated_share_of_every_non_escalated_action(
    data: Any, policies: Any, seed: int
) -> None:
    policy = policies["risk"]
    rng = np.random.default_rng(seed)
    proba = data.proba(data.X_test)
    rows = rng.integers(0, len(proba), size=6000)
    guard = Guard(lambda i: proba[i], None, policy, audit_rate=0.1, random_state=seed)
    decisions = guard.decide_batch(list(rows[:3000])) + [guard.decide(i) for i in rows[3000:]]
    assert all(d.review_probability == 1.0 for d in decisions if d.action is Action.ESCALATE)
    assert all(d.review == "escalation" for d in decisions if d.action is Action.ESCALATE)
    rest = [d for d in decisions if d.action is not Action.ESCALATE]
    assert {d.review_probability for d in rest} == {0.1}
    assert {d.action for d in rest} >= {Action.ANSWER, Action.CLARIFY}
    audited = sum(d.review == "audit" for d in rest)
    assert audited == sum(bool(d.extra["audit"]) for d in decisions)
    low, high = stats.binom.ppf([0.0005, 0.9995], len(rest), 0.1)
    assert low <= audited <= high
    assert len(rest) > 1000


def test_audit_rate_per_action_audits_only_the_named_actions(data: Any, policies: Any) -> None:
    proba = data.proba(data.X_test)
    rates = {"clarify": 1.0, "answer": 0.0}
    guard = Guard(lambda i: proba[i], None, policies["risk"], audit_rate=rates)
    decisions = guard.decide_batch(list(range(300)))
    clarified = [d for d in decisions if d.action is Action.CLARIFY]
    assert clarified
    assert all(d.review == "audit" and d.review_probability == 1.0 for d in clarified)
    answers = [d for d in decisions if d.action is Action.ANSWER]
    assert all(d.review is None and d.review_probability == 0.0 for d in answers)


def test_audit_rate_mapping_is_checked(data: Any, policies: Any) -> None:
    policy = policies["risk"]
    with pytest.raises(InputError, match=r"unknown action\(s\) \['escalate'\].*always reviewed"):
        Guard(lambda i: i, None, policy, audit_rate={"escalate": 0.5})
    with pytest.raises(InputError, match=r"`audit_rate\['answer'\]` must be a number in \[0, 1\]"):
        Guard(lambda i: i, None, policy, audit_rate={"answer": float("nan")})
    with pytest.raises(InputError, match=r"or a mapping action -> rate"):
        Guard(lambda i: i, None, policy, audit_rate="often")  # type: ignore[arg-type]


def test_audit_rate_zero_and_one(data: Any, policies: Any) -> None:
    proba = data.proba(data.X_test)
    never = Guard(lambda i: proba[i], None, policies["risk"])
    always = Guard(lambda i: proba[i], None, policies["risk"], audit_rate=1.0)
    answers = [i for i in range(100) if never.decide(i).action is Action.ANSWER]
    assert answers
    assert not any(never.decide(i).extra["audit"] for i in answers)
    assert all(never.decide(i).review_probability == 0.0 for i in answers)
    assert all(always.decide(i).review == "audit" for i in answers)


# --------------------------------------------------------------------------- bad arguments


def test_context_must_be_a_mapping_with_str_keys(data: Any, policies: Any) -> None:
    guard = guard_for(data, policies["risk"])
    with pytest.raises(InputError, match=r"`context` must be a mapping with str keys.*got list"):
        guard.decide(data.X_test[0], context=["user", "u1"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="`context` must be a mapping with str keys"):
        guard.decide(data.X_test[0], context={1: "u1"})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="`context` must be a mapping"):
        asyncio.run(guard.adecide(data.X_test[0], context="u1"))  # type: ignore[arg-type]


def test_batch_inputs_are_checked(data: Any, policies: Any) -> None:
    guard = guard_for(data, policies["risk"])
    with pytest.raises(InputError, match=r"`xs` must be a sequence of inputs; got str"):
        guard.decide_batch("hello")
    with pytest.raises(InputError, match=r"`contexts` has 1 entries for 2 inputs"):
        guard.decide_batch(list(data.X_test[:2]), contexts=[{}])
    with pytest.raises(InputError, match="`contexts` must be a sequence with one mapping"):
        guard.decide_batch(list(data.X_test[:2]), contexts={"a": 1})  # type: ignore[arg-type]


def test_construction_checks_every_argument(data: Any, policies: Any) -> None:
    policy, calibrator, model = policies["risk"], data.calibrator, data.model.decision_function
    with pytest.raises(NotFittedError, match="call fit before wrapping it in a Guard"):
        Guard(model, calibrator, Policy())
    with pytest.raises(InputError, match="`policy` must be a fitted failwise Policy; got dict"):
        Guard(model, calibrator, {"answer": 0.9})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="`model` must be a callable x -> scores"):
        Guard(42, calibrator, policy)
    with pytest.raises(NotFittedError, match="TemperatureScaling is not fitted yet"):
        Guard(model, TemperatureScaling(), policy)
    with pytest.raises(InputError, match="`calibrator` must be a fitted calibrator"):
        Guard(model, "temperature", policy)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3)) * 3
    other = TemperatureScaling().fit(logits, np.argmax(logits + rng.gumbel(size=(300, 3)), axis=1))
    with pytest.raises(InputError, match="returns 3 classes but the policy was fitted on 8"):
        Guard(model, other, policy)
    with pytest.raises(InputError, match=r"fitted with out-of-scope scores.*pass `ood=`"):
        Guard(model, calibrator, policies["no_humans"])
    with pytest.raises(InputError, match="`ood` must be a callable x -> float"):
        Guard(model, calibrator, policy, ood=3.0)
    with pytest.raises(InputError, match="`fallback` must be a callable"):
        Guard(model, calibrator, policy, fallback={"reset pin": 3})  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"`timeout_s` must be None or a positive number.*-1"):
        Guard(model, calibrator, policy, timeout_s=-1)
    with pytest.raises(InputError, match=r"`circuit_breaker` must be a pybreaker\.CircuitBreaker"):
        Guard(model, calibrator, policy, circuit_breaker=5)
    with pytest.raises(InputError, match=r"`audit_rate` must be a number in \[0, 1\]"):
        Guard(model, calibrator, policy, audit_rate=1.5)
    with pytest.raises(InputError, match="`random_state` must be None, an int >= 0"):
        Guard(model, calibrator, policy, audit_rate=0.1, random_state="seed")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="`labels` must hold 8 class names"):
        Guard(model, calibrator, policy, labels=["a", "b"])
    with pytest.raises(InputError, match="`store` must be an event store"):
        Guard(model, calibrator, policy, store="sqlite:///events.db")  # type: ignore[arg-type]


def test_circuit_breaker_helper_checks_its_arguments() -> None:
    with pytest.raises(InputError, match="`fail_max` must be an int >= 1; got int 0"):
        circuit_breaker(fail_max=0)
    with pytest.raises(InputError, match="`reset_timeout_s` must be a positive number"):
        circuit_breaker(reset_timeout_s=float("inf"))


class NoteRung:
    """A rung the one-row ladder does not know: it decides nothing."""

    def __call__(self, state: Any) -> None:
        return None


def test_policy_with_an_unknown_rung_cannot_be_wrapped(policies: dict[str, Policy]) -> None:
    from failwise.artifacts import policy_from_state, policy_to_state

    policy = policy_from_state(policy_to_state(policies["risk"]))
    policy.rungs_.insert(2, NoteRung())  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"records the content hash of its policy.*NoteRung"):
        Guard(lambda x: x, None, policy)
