"""The ready-made digits system: real model, calibrator, scorer, fallback and policy."""

from __future__ import annotations

import numpy as np
import pytest

from failwise import Action
from failwise.exceptions import InputError
from failwise.testing import digits_system


def test_the_default_system_sends_inputs_down_every_rung_of_the_ladder() -> None:
    system = digits_system()
    actions = {d.action for d in system.decide(system.X_test)}
    assert actions == set(Action)
    assert system.n_classes == 8
    assert set(np.unique(system.y_test)) == set(range(-1, 8))


def test_the_guard_decides_as_the_policy_does_offline() -> None:
    system = digits_system()
    online = system.guard().decide_batch(list(system.X_test[:120]))
    offline = system.decide(system.X_test[:120])
    assert [d.action for d in online] == [d.action for d in offline]
    assert [d.label for d in online] == [d.label for d in offline]


def test_held_out_digits_are_out_of_scope_and_the_rest_are_reindexed() -> None:
    system = digits_system(held_out=(3, 5), ood=False, fallback=False)
    assert system.digits == (0, 1, 2, 4, 6, 7, 8, 9)
    assert (system.y_val == -1).any()
    assert (system.y_test == -1).any()
    assert system.y_test.max() == 7


def test_without_held_out_digits_everything_is_in_scope() -> None:
    system = digits_system(held_out=(), ood=False)
    assert system.n_classes == 10
    assert (system.y_test >= 0).all()


def test_noise_drifts_production_only_and_costs_accuracy() -> None:
    clean = digits_system()
    drifted = digits_system(noise=0.4)
    np.testing.assert_array_equal(clean.X_val, drifted.X_val)
    np.testing.assert_array_equal(clean.y_test, drifted.y_test)
    assert not np.array_equal(clean.X_test, drifted.X_test)
    assert drifted.X_test.min() >= 0.0
    assert drifted.X_test.max() <= 1.0

    def accuracy(system: object) -> float:
        X, y = system.X_test, system.y_test  # type: ignore[attr-defined]
        inside = y >= 0
        return float((system.proba(X).argmax(axis=1) == y)[inside].mean())  # type: ignore[attr-defined]

    assert accuracy(drifted) < accuracy(clean) - 0.05


def test_fresh_data_is_set_aside_from_production_without_overlap() -> None:
    whole = digits_system()
    split = digits_system(fresh_size=0.5)
    assert split.X_test.shape[0] + split.X_fresh.shape[0] == whole.X_test.shape[0]
    np.testing.assert_array_equal(np.vstack([split.X_test, split.X_fresh]), whole.X_test)
    assert digits_system().X_fresh.shape == (0, 64)


def test_the_same_seed_gives_the_same_system_and_another_seed_another() -> None:
    a, b, c = digits_system(random_state=1), digits_system(random_state=1), digits_system()
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert [d.action for d in a.decide(a.X_test)] == [d.action for d in b.decide(b.X_test)]
    assert not np.array_equal(a.X_test, c.X_test)


def test_policy_params_reach_the_policy() -> None:
    system = digits_system(policy_params={"target_risk": 0.1}, ood=False, fallback=False)
    assert system.policy.target_risk == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"held_out": (10,)}, r"`held_out` holds int 10, which is not a digit 0–9"),
        ({"held_out": (1, 1)}, r"repeats a digit"),
        ({"held_out": "89"}, r"sequence of digits"),
        ({"held_out": tuple(range(8))}, r"at least three must remain"),
        ({"noise": -0.1}, r"`noise` must be a finite standard deviation ≥ 0"),
        ({"noise": float("nan")}, r"`noise`"),
        ({"fresh_size": 1.0}, r"`fresh_size` must be a fraction in \[0, 1\)"),
        ({"n_train": 10}, r"`n_train` must be an int in \[50, 1000\]"),
        ({"ood": "yes"}, r"`ood` must be True or False"),
        ({"policy_params": [("target_risk", 0.1)]}, r"`policy_params` must be a mapping"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        digits_system(**kwargs)  # type: ignore[arg-type]
