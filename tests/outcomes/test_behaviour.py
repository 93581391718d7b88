"""The one behaviour model: what users and humans do on each task's path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from failwise import OutcomeModel
from failwise.exceptions import InputError
from failwise.outcomes import TaskPaths, draw_behaviour
from failwise.policy._decision import Action


def _paths(n: int, seed: int) -> TaskPaths:
    rng = np.random.default_rng(seed)
    action = rng.choice([a.code for a in Action], size=n).astype(np.int8)
    oos = rng.random(n) < 0.1
    return TaskPaths(action, rng.random(n) < 0.8, rng.random(n) < 0.7, oos)


@given(n=st.integers(1, 300), seed=st.integers(0, 2**16), reviewers=st.floats(0.01, 5.0))
def test_every_drawn_task_tells_one_consistent_story(n: int, seed: int, reviewers: float) -> None:
    paths = _paths(n, seed)
    b = draw_behaviour(paths, OutcomeModel(reviewers=reviewers), np.random.default_rng(seed))
    clarify = paths.action == Action.CLARIFY.code
    # A clarification ends in exactly one of three ways; nothing else clarifies.
    assert ((b.picks_right.astype(int) + b.none_of_these + b.picks_wrong) == clarify).all()
    assert not (b.first_right & b.first_wrong).any()
    assert not (b.noticed & ~b.first_wrong).any()
    assert ((b.user_escalates | b.gives_up) == b.noticed).all()
    assert not (b.absorbed & ~b.escalated).any()
    assert not (b.silent & ~b.automatic).any()
    human_done = b.absorbed & b.human_right
    assert not (b.completed & ~(b.first_right | b.honest | human_done)).any()
    assert np.isnan(b.time_s[~b.completed]).all()
    assert (b.time_s[b.completed] >= 0).all()
    assert 0.0 < b.human_capacity_share <= 1.0


def test_the_same_generator_state_draws_the_same_behaviour() -> None:
    paths = _paths(500, 1)
    a = draw_behaviour(paths, OutcomeModel(), np.random.default_rng(7))
    b = draw_behaviour(paths, OutcomeModel(), np.random.default_rng(7))
    c = draw_behaviour(paths, OutcomeModel(), np.random.default_rng(8))
    np.testing.assert_array_equal(a.human_response_s, b.human_response_s)
    np.testing.assert_array_equal(a.completed, b.completed)
    assert not np.array_equal(a.human_response_s, c.human_response_s)


def test_human_response_times_have_the_stated_median_and_p90() -> None:
    model = OutcomeModel(human_response_median_s=600.0, human_response_p90_s=2400.0)
    b = draw_behaviour(_paths(40_000, 2), model, np.random.default_rng(0))
    assert np.median(b.human_response_s) == pytest.approx(600.0, rel=0.03)
    assert np.quantile(b.human_response_s, 0.9) == pytest.approx(2400.0, rel=0.05)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(3), OutcomeModel(), np.random.default_rng()), r"`paths` must be TaskPaths"),
        ((_paths(3, 0), {"human_accuracy": 1.0}, np.random.default_rng()), r"OutcomeModel"),
        ((_paths(3, 0), OutcomeModel(), 0), r"`rng` must be a numpy.random.Generator"),
    ],
)
def test_wrong_arguments_are_named(args: tuple[object, object, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        draw_behaviour(*args)  # type: ignore[arg-type]
