"""`Decisions.select` takes a boolean mask or row numbers and keeps each row's decision."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.policy import Decisions, Policy


@pytest.fixture(scope="module")
def decisions() -> Decisions:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(4, 0.4), size=2000)
    y = np.array([rng.choice(4, p=p) for p in proba])
    return Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y).decide(proba[:300])


def test_select_by_mask_and_by_rows_keeps_every_decision(decisions: Decisions) -> None:
    mask = decisions.mask("clarify")
    assert mask.any()
    clarified = decisions.select(mask)
    assert list(clarified) == [decisions[i] for i in np.flatnonzero(mask)]
    rows = [5, -1, 5, 42]
    picked = decisions.select(rows)
    assert list(picked) == [decisions[5], decisions[299], decisions[5], decisions[42]]
    assert list(decisions.select(range(10, 20))) == [decisions[i] for i in range(10, 20)]
    assert len(decisions.select([])) == 0


def test_select_names_what_is_wrong(decisions: Decisions) -> None:
    with pytest.raises(InputError, match=r"boolean mask has 3 entries for 300 decisions"):
        decisions.select([True, False, True])
    with pytest.raises(InputError, match=r"row 300 is out of range for 300 decisions"):
        decisions.select([0, 300])
    with pytest.raises(InputError, match=r"booleans or integer row numbers; got dtype float64"):
        decisions.select([0.0, 1.0])
    with pytest.raises(InputError, match=r"1-D boolean mask of length 300.*decisions\[i\]"):
        decisions.select(3)


def test_indexing_with_a_mask_points_to_select(decisions: Decisions) -> None:
    with pytest.raises(InputError, match=r"decisions\.select\(mask\)"):
        decisions[decisions.mask("answer")]  # type: ignore[index]
    with pytest.raises(InputError, match=r"got a slice.*select\(range\(start, stop\)\)"):
        decisions[2:5]  # type: ignore[index]
