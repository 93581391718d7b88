"""Recalibrating a log where the out-of-scope scorer failed on some decisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from failwise import Policy, store
from failwise.exceptions import InputError
from failwise.loop import read_logged_tasks, recalibrate_tasks
from failwise.policy import Action


def _traffic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    proba = rng.dirichlet(np.full(3, 0.3), size=n)
    y = (rng.random((n, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    foreign = rng.random(n) < 0.1
    y = np.where(foreign, -1, y)
    ood = rng.normal(size=n) + 3.0 * foreign
    return proba, y, ood


def _log(folder: Path, policy: Policy, unscored: set[int]) -> str:
    rng = np.random.default_rng(1)
    n = 3000
    proba, y, ood = _traffic(n, rng)
    decisions = policy.decide(proba, ood)
    escalate = decisions.action_codes == Action.ESCALATE.code
    probability = np.where(escalate, 1.0, 0.3)
    selected = rng.random(n) < probability
    url = f"sqlite:///{folder / 'events.db'}?synchronous=normal"
    items = []
    for i in range(n):
        payload = decisions[i].to_dict()
        payload["scores"] = proba[i].tolist()
        payload["ood_score"] = None if i in unscored else float(ood[i])
        payload["review_probability"] = float(probability[i])
        payload["review"] = ("escalation" if escalate[i] else "audit") if selected[i] else None
        items.append((f"t{i}", payload, 1.7e9 + i))
    with store.open(url) as events:
        events.record_decisions(items)
        for i in np.flatnonzero(selected).tolist():
            kind = "escalation" if escalate[i] else "audit"
            item = events.queue.enqueue(f"t{i}", kind, "guard", 0.0, at=1.7e9 + i)
            events.queue.claim("reviewer", 1e9, kind=kind, at=1.7e9 + i + 1)
            events.queue.resolve(item, int(y[i]), reviewer="reviewer", at=1.7e9 + i + 2)
    return url


@pytest.fixture(scope="module")
def policy() -> Policy:
    proba, y, ood = _traffic(3000, np.random.default_rng(0))
    return Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y, ood_score=ood)


def test_decisions_without_an_out_of_scope_score_are_left_out_and_named(
    tmp_path: Path, policy: Policy
) -> None:
    assert np.isfinite(policy.ood_threshold_)
    url = _log(tmp_path, policy, unscored={7, 11})
    with store.open(url) as events:
        tasks = read_logged_tasks(events)
    assert tasks.ood_score is not None
    assert int((~tasks.ood_scored).sum()) == 2
    report = recalibrate_tasks(tasks, policy)
    assert report.n_without_ood_score == 2
    note = next(n for n in report.notes if "no out-of-scope score" in n)
    assert "scorer failed: t7, t11)" in note
    assert report.to_dict()["n_without_ood_score"] == 2
    assert report.n_certification > 0


def test_a_log_without_any_out_of_scope_score_is_refused(tmp_path: Path, policy: Policy) -> None:
    url = _log(tmp_path, policy, unscored=set(range(3000)))
    with store.open(url) as events:
        tasks = read_logged_tasks(events)
    with pytest.raises(InputError, match=r"none of the 3000 logged decision\(s\) has one"):
        recalibrate_tasks(tasks, policy)
