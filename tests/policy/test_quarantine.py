"""The Quarantine rung: batch equals one row at a time, saved state, registry, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failwise import Policy, artifacts
from failwise.exceptions import InputError
from failwise.policy import LadderState, Quarantine, RowState, run_ladder, run_row, rung_class


def _rung(metric: str = "cosine") -> Quarantine:
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    return Quarantine(centres, np.array([0.05, 0.5]), np.array([4, 5]), np.array([10, 11]), metric)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), metric=st.sampled_from(["cosine", "euclidean"]))
def test_the_batch_path_decides_as_one_row_at_a_time(seed: int, metric: str) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=30)
    features = rng.normal(size=(30, 3))
    features[::3] = [1.0, 0.01, 0.0]
    rung = _rung(metric)
    state = run_ladder(
        LadderState(proba, proba.max(axis=1), proba.argmax(axis=1), features=features), [rung]
    )
    for i in range(30):
        row = run_row(RowState(proba[i], features=features[i]), [rung])
        assert row.action == state.action_codes[i]


def test_inputs_inside_a_zone_escalate_and_others_are_left_alone() -> None:
    rung = _rung()
    assert rung.zone_of(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, -1.0], [np.nan, 0, 0]])).tolist() == [
        0,
        -1,
        -1,
    ]
    row = RowState(np.array([0.98, 0.01, 0.01]))
    rung.decide_row(row)  # no features: never claimed
    assert not row.decided
    assert "finding 11" in rung.reason_for([0.0, 1.0, 0.9])
    with pytest.raises(InputError, match="no quarantined zone"):
        rung.reason_for([0.0, 0.0, -1.0])
    with pytest.raises(InputError, match="3"):
        rung.distances(np.ones((1, 5)))


def test_the_rung_is_registered_and_survives_an_artefact(tmp_path: Path) -> None:
    assert rung_class("Quarantine") is Quarantine
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.3), size=1000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, extra_rungs=[_rung()]).fit(proba, y)
    artifacts.save(policy, tmp_path / "policy")
    loaded = artifacts.load(tmp_path / "policy")
    (rung,) = loaded.extra_rungs
    np.testing.assert_array_equal(rung.centres, _rung().centres)
    assert rung.finding_ids.tolist() == [10, 11]
    assert Quarantine.from_state(_rung().to_state()).metric == "cosine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.ones(3), np.ones(1), np.ones(1), np.ones(1)), "2-D"),
        ((np.ones((2, 3)), np.ones(1), np.ones(2), np.ones(2)), "one value per zone"),
        ((np.ones((1, 3)), np.zeros(1), np.ones(1), np.ones(1)), "> 0"),
        ((np.ones((1, 3)), np.ones(1), np.ones(1), np.ones(1), "l1"), "metric"),
    ],
)
def test_bad_zones_are_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Quarantine(*args)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="needs"):
        Quarantine.from_state({"centres": np.ones((1, 2))})
