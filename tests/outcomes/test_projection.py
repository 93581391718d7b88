"""Projected product metrics: definitions checked on decisions whose outcome is known."""

from __future__ import annotations

import numpy as np
import pytest

from failwise import OutcomeModel, Policy, ProductMetrics, compare, project
from failwise.exceptions import InputError
from failwise.policy import Decisions, always_answer
from failwise.policy._decision import NO_LABEL, REASON_CODES, Action, Reason


def decisions_with(actions: list[Action], labels: list[int], k: int = 3) -> Decisions:
    n = len(actions)
    return Decisions(
        action_codes=np.array([a.code for a in actions], dtype=np.int8),
        label=np.array(labels, dtype=np.intp),
        predicted=np.array([max(label, 0) for label in labels], dtype=np.intp),
        confidence=np.full(n, 0.5),
        band_codes=np.ones(n, dtype=np.int8),
        reason_codes=np.full(n, REASON_CODES[Reason.LOW_CONFIDENCE], dtype=np.int8),
        set_rows=np.empty(0, dtype=np.intp),
        set_masks=np.empty((0, k), dtype=bool),
    )


def test_a_perfect_model_that_always_answers_completes_every_task() -> None:
    y = np.arange(300) % 3
    proba = np.eye(3)[y] * 0.98 + 0.02 / 3
    metrics = project(always_answer(proba), y, n_bootstrap=20)
    assert metrics.task_completion_rate.value == 1.0
    assert metrics.escalation_rate.value == 0.0
    assert metrics.silent_failure_rate.value == 0.0
    assert metrics.automation_rate.value == 1.0
    assert metrics.selective_accuracy.value == 1.0
    assert metrics.time_to_correct_output_median_s.value == OutcomeModel().answer_latency_s


def test_wrong_answers_fail_silently_unless_noticed() -> None:
    y = np.zeros(2000, dtype=int)
    decisions = decisions_with([Action.ANSWER] * 2000, [1] * 2000)
    model = OutcomeModel(user_notices_wrong_answer=0.0)
    metrics = project(decisions, y, model, n_bootstrap=20)
    assert metrics.task_completion_rate.value == 0.0
    assert metrics.silent_failure_rate.value == 1.0
    assert metrics.recovery_rate.value == 0.0
    noticed = project(
        decisions,
        y,
        OutcomeModel(user_notices_wrong_answer=1.0, user_escalates_after_noticing=1.0),
        n_bootstrap=20,
    )
    assert noticed.escalation_rate.value == 1.0
    assert noticed.recovery_rate.value == pytest.approx(
        OutcomeModel().human_accuracy * OutcomeModel().human_capacity_share(1.0), abs=0.03
    )


def test_out_of_scope_inputs_are_right_only_when_handed_off() -> None:
    y = np.full(4, -1)
    actions = [Action.ANSWER, Action.FALLBACK, Action.ABSTAIN, Action.ESCALATE]
    decisions = decisions_with(actions, [0, -1, NO_LABEL, NO_LABEL])
    model = OutcomeModel(
        user_notices_wrong_answer=0.0, human_accuracy=1.0, human_response_p90_s=900.0
    )
    metrics = project(decisions, y, model, n_bootstrap=0)
    # answer: wrong; fallback, abstain and escalate: correct handoffs.
    assert metrics.task_completion_rate.value == pytest.approx(0.75)
    assert metrics.silent_failure_rate.value == pytest.approx(0.25)


def test_escalations_beyond_human_capacity_do_not_complete() -> None:
    y = np.zeros(1000, dtype=int)
    decisions = decisions_with([Action.ESCALATE] * 1000, [NO_LABEL] * 1000)
    model = OutcomeModel(
        human_accuracy=1.0,
        reviewers=1,
        tasks_per_hour=60,
        human_handling_s=120,
        human_response_p90_s=900,
    )
    metrics = project(decisions, y, model, n_bootstrap=0)
    assert metrics.task_completion_rate.value == pytest.approx(0.5, abs=0.02)
    assert metrics.human_hours_per_1000_tasks.value == pytest.approx(
        1000 * 0.5 * 120 / 3600, rel=0.05
    )


def test_intervals_bracket_the_estimate_and_are_reproducible(rng: np.random.Generator) -> None:
    proba = rng.dirichlet(np.full(4, 0.4), size=2000)
    y = np.array([rng.choice(4, p=p) for p in proba])
    policy = Policy(target_risk=0.1).fit(proba[:1000], y[:1000])
    decisions = policy.decide(proba[1000:])
    a = project(decisions, y[1000:], random_state=3, n_bootstrap=100)
    b = project(decisions, y[1000:], random_state=3, n_bootstrap=100)
    assert a == b
    for name in a.metric_names():
        est = getattr(a, name)
        if np.isfinite(est.value):
            assert est.low <= est.value + 1e-9
            assert est.value <= est.high + 1e-9


def test_compare_ranks_models_by_task_completion(rng: np.random.Generator) -> None:
    y = rng.integers(0, 3, 1000)
    good = np.eye(3)[y] * 0.9 + 0.1 / 3
    noisy_labels = np.where(rng.random(1000) < 0.4, rng.integers(0, 3, 1000), y)
    bad = np.eye(3)[noisy_labels] * 0.9 + 0.1 / 3
    table = compare({"bad": always_answer(bad), "good": always_answer(good)}, y, n_bootstrap=10)
    assert [row.name for row in table.rows] == ["good", "bad"]
    assert table.best().accuracy == 1.0
    assert "completion" in str(table)
    assert table.to_dict()["ranking"][0]["name"] == "good"


def test_outcome_model_lists_every_assumption_with_a_reason() -> None:
    assumptions = OutcomeModel().assumptions()
    assert len(assumptions) >= 10
    assert all(a.reason for a in assumptions)
    assert OutcomeModel().replace(human_accuracy=0.5).human_accuracy == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"human_accuracy": 1.5}, "probability"),
        ({"deadline_s": -1}, "finite and ≥ 0"),
        ({"human_response_p90_s": 10.0}, "p90_s must be ≥"),
    ],
)
def test_outcome_model_rejects_impossible_assumptions(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        OutcomeModel(**kwargs)


def test_project_rejects_mismatched_labels() -> None:
    with pytest.raises(InputError, match="same number of samples"):
        project(always_answer(np.full((3, 2), 0.5)), [0, 1])
    with pytest.raises(InputError, match=r"Decisions returned by Policy\.decide"):
        project(np.zeros(3), [0, 1, 0])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Unknown OutcomeModel"):
        OutcomeModel().replace(speed=1.0)


def _assert_same(a: ProductMetrics, b: ProductMetrics) -> None:
    assert a.n_tasks == b.n_tasks
    for name in a.metric_names():
        x, z = getattr(a, name), getattr(b, name)
        np.testing.assert_array_equal([x.value, x.low, x.high], [z.value, z.low, z.high], name)


def _traffic_with_an_escalated_slice() -> tuple[Decisions, np.ndarray, np.ndarray]:
    """2,000 tasks: 1,800 right answers, and a slice of 200 unseen inputs, all escalated."""
    actions = [Action.ANSWER] * 1800 + [Action.ESCALATE] * 200
    labels = [0] * 1800 + [NO_LABEL] * 200
    y = np.array([0] * 1800 + [-1] * 200)
    return decisions_with(actions, labels), y, y == -1


#: 200 tasks an hour, 120 s each, 2 reviewers: humans absorb every escalation up to 30 %.
CAPACITY = OutcomeModel(human_accuracy=1.0, human_response_p90_s=900.0)


def test_a_slice_projected_alone_starves_its_reviewers() -> None:
    decisions, y, unseen = _traffic_with_an_escalated_slice()
    alone = project(decisions.select(unseen), y[unseen], CAPACITY)
    assert alone.task_completion_rate.value == pytest.approx(0.3, abs=0.05)


def test_a_slice_projected_within_its_traffic_gets_the_traffic_s_capacity() -> None:
    decisions, y, unseen = _traffic_with_an_escalated_slice()
    within = project(decisions, y, CAPACITY, rows=unseen)
    assert within.n_tasks == 200
    assert within.task_completion_rate.value == 1.0
    assert within.escalation_rate.value == 1.0
    assert within.automation_rate.value == 0.0
    assert within.task_completion_rate.low == 1.0
    assert within.human_hours_per_1000_tasks.value == pytest.approx(1000 * 120 / 3600)


def test_row_indices_and_a_mask_select_the_same_slice() -> None:
    decisions, y, unseen = _traffic_with_an_escalated_slice()
    by_mask = project(decisions, y, CAPACITY, rows=unseen, n_bootstrap=30)
    by_index = project(decisions, y, CAPACITY, rows=np.flatnonzero(unseen), n_bootstrap=30)
    _assert_same(by_mask, by_index)


def test_selecting_every_row_is_projecting_the_whole_traffic(rng: np.random.Generator) -> None:
    proba = rng.dirichlet(np.full(4, 0.4), size=1500)
    y = np.array([rng.choice(4, p=p) for p in proba])
    decisions = Policy(target_risk=0.1).fit(proba[:700], y[:700]).decide(proba[700:])
    whole = project(decisions, y[700:], n_bootstrap=40)
    _assert_same(project(decisions, y[700:], rows=np.ones(800, dtype=bool), n_bootstrap=40), whole)


def test_a_slice_of_policy_decisions_keeps_the_rows_it_selects(rng: np.random.Generator) -> None:
    proba = rng.dirichlet(np.full(4, 0.4), size=1500)
    y = np.array([rng.choice(4, p=p) for p in proba])
    policy = Policy(target_risk=0.1).fit(proba[:700], y[:700])
    first = y[700:] == 0
    sliced = project(policy.decide(proba[700:]), y[700:], rows=first, n_bootstrap=0)
    alone = project(policy.decide(proba[700:]).select(first), y[700:][first], n_bootstrap=0)
    # The capacity is ample either way, so the slice's own rates come out alike.
    assert sliced.n_tasks == alone.n_tasks == int(first.sum())
    assert sliced.automation_rate.value == pytest.approx(alone.automation_rate.value)
    assert sliced.selective_accuracy.value == pytest.approx(alone.selective_accuracy.value)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (np.ones(5, dtype=bool), r"boolean mask of length 5 but `decisions` has 2000 rows"),
        ([0, 2000], r"row indices outside \[0, 2000\)"),
        ([3, 3], r"repeats a row index"),
        (np.zeros(2000, dtype=bool), r"selects no task"),
        ([0.5, 1.5], r"boolean mask or integer row indices; got dtype float64"),
        (np.ones((2, 1000), dtype=bool), r"one-dimensional; got shape \(2, 1000\)"),
    ],
)
def test_a_malformed_slice_is_named(rows: object, match: str) -> None:
    decisions, y, _ = _traffic_with_an_escalated_slice()
    with pytest.raises(InputError, match=match):
        project(decisions, y, rows=rows)  # type: ignore[arg-type]
