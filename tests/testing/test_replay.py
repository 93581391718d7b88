"""Scripted users and reviewers act on a real guard and store as the outcome model says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from failwise import OutcomeModel, store
from failwise.exceptions import InputError
from failwise.testing import DigitsSystem, digits_system, replay


@pytest.fixture(scope="module")
def system() -> DigitsSystem:
    return digits_system()


@pytest.fixture
def events(tmp_path: Path) -> Iterator[store.Store]:
    with store.open(f"sqlite:///{tmp_path / 'events.db'}") as opened:
        yield opened


def _kinds(events: store.Store) -> Counter[str]:
    return Counter(e.kind for e in events.iter_events())


def test_users_who_always_notice_and_escalate_leave_no_silent_failure(
    events: store.Store, system: DigitsSystem
) -> None:
    model = OutcomeModel(user_notices_wrong_answer=1.0, user_escalates_after_noticing=1.0)
    result = replay(system.guard(store=events), system.X_test, system.y_test, model)
    b = result.behaviour
    assert not b.silent.any()
    assert result.user_escalations == int(b.first_wrong.sum()) > 0
    abstained = np.array([d.action.value == "abstain" for d in result.decisions])
    assert result.abandoned == int((abstained & (system.y_test >= 0)).sum())  # nobody gave up
    assert _kinds(events)["feedback_abandoned"] == result.abandoned


def test_reviewers_resolve_every_absorbed_escalation_and_every_audit(
    events: store.Store, system: DigitsSystem
) -> None:
    guard = system.guard(store=events, audit_rate=0.5, random_state=1)
    result = replay(guard, system.X_test, system.y_test, OutcomeModel(), random_state=1)
    kinds = _kinds(events)
    assert kinds["escalation_resolved"] == result.escalations_resolved > 0
    assert kinds["audit_resolved"] == result.audits_resolved > 0
    assert events.queue.pending() == 0
    assert result.escalations_left == 0  # default capacity absorbs all of them


def test_auditors_who_always_err_never_give_the_true_label(
    events: store.Store, system: DigitsSystem
) -> None:
    guard = system.guard(store=events, audit_rate=1.0, random_state=0)
    y = system.y_test[:150]
    result = replay(guard, system.X_test[:150], y, audit_accuracy=0.0)
    truth = {d.task_id: int(label) for d, label in zip(result.decisions, y, strict=True)}
    audits = [e for e in events.iter_events() if e.kind == "audit_resolved"]
    assert len(audits) == result.audits_resolved > 0
    assert all(e.label != truth[e.task_id] for e in audits)


def test_scarce_reviewers_leave_escalations_claimed_but_unresolved(
    events: store.Store, system: DigitsSystem
) -> None:
    model = OutcomeModel(reviewers=0.2)
    result = replay(system.guard(store=events), system.X_test, system.y_test, model)
    assert result.behaviour.human_capacity_share < 1.0
    assert (
        result.escalations_left
        == int((result.behaviour.escalated & ~result.behaviour.absorbed).sum())
        > 0
    )


def test_the_same_seed_replays_the_same_behaviour(tmp_path: Path, system: DigitsSystem) -> None:
    runs = []
    for name in ("a", "b"):
        with store.open(f"sqlite:///{tmp_path / name}.db") as events:
            runs.append(replay(system.guard(store=events), system.X_test, system.y_test))
    np.testing.assert_array_equal(runs[0].behaviour.completed, runs[1].behaviour.completed)
    assert runs[0].accepted == runs[1].accepted


def test_a_guard_without_a_store_is_refused(system: DigitsSystem) -> None:
    with pytest.raises(InputError, match=r"scripted reviewers need a store with a review queue"):
        replay(system.guard(), system.X_test, system.y_test)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome_model": {"human_accuracy": 1}}, r"`outcome_model` must be an OutcomeModel"),
        ({"clarification_audit_rate": 1.5}, r"`clarification_audit_rate` must be a share"),
        ({"audit_accuracy": -0.1}, r"`audit_accuracy` must be a share"),
    ],
)
def test_invalid_arguments_are_named(
    events: store.Store, system: DigitsSystem, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        replay(system.guard(store=events), system.X_test, system.y_test, **kwargs)  # type: ignore[arg-type]


def test_labels_and_inputs_must_match(events: store.Store, system: DigitsSystem) -> None:
    guard = system.guard(store=events)
    with pytest.raises(InputError, match="y"):
        replay(guard, system.X_test[:10], system.y_test[:9])
    with pytest.raises(InputError, match=r"holds label 8 but the guard's policy has 8 classes"):
        replay(guard, system.X_test[:2], [8, 0])
    with pytest.raises(InputError, match=r"`guard` must be a failwise.runtime.Guard"):
        replay(object(), system.X_test, system.y_test)
