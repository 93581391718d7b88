"""A digits system in service, production traffic that drifts, and a logged day of it.

The model is a logistic regression on clean 8x8 digits, calibrated by temperature scaling,
with a nearest-centroid rule as the fallback and a policy fitted on clean validation
digits. Production traffic draws test digits with replacement and, when drifted, fades
them and adds sensor noise (a new scanner): the model becomes under-confident, so the old
policy escalates what it could answer. Heavy noise instead makes it wrong more often.

:func:`log_day_guarded` runs a day of traffic through a real :class:`~failwise.runtime.Guard`
(audits of every action at 20 %) into a real SQLite store, and
:func:`failwise.testing.replay` acts out the users and reviewers. :func:`log_day` writes
such a log by hand, for logs the guard can no longer write (without review probabilities):
scripted reviewers resolve the queue (97 % accurate on escalations, exact on audits)
within a capacity that leaves some escalations open, users correct some wrong answers and
the application audits a few clarifications on its own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from failwise import Policy, TemperatureScaling, project, store
from failwise.exceptions import UncertifiedWarning

N_CLASSES = 10
TARGET_RISK = 0.05
#: Scanner states: (contrast, noise sd). "faded" under-confident, "noisy" wrong more often.
DRIFTS: dict[str, tuple[float, float]] = {
    "none": (1.0, 0.0),
    "faded": (0.5, 0.1),
    "noisy": (1.0, 0.4),
}


@dataclass(frozen=True)
class System:
    model: LogisticRegression
    calibrator: TemperatureScaling
    policy: Policy
    centroids: NDArray[np.float64]
    pool_x: NDArray[np.float64]
    pool_y: NDArray[np.intp]

    def scores(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.model.decision_function(X), dtype=np.float64)

    def fallback(self, X: NDArray[np.float64]) -> NDArray[np.intp]:
        """The centroid rule: a label when one centroid is clearly nearest, else -2."""
        d = np.linalg.norm(X[:, None, :] - self.centroids[None], axis=2)
        first, second = np.sort(d, axis=1)[:, :2].T
        return np.where(second > 1.25 * first, d.argmin(axis=1), -2).astype(np.intp)

    def traffic(
        self, n: int, drift: str, rng: np.random.Generator
    ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        contrast, noise = DRIFTS[drift]
        rows = rng.integers(0, self.pool_y.size, n)
        X = contrast * self.pool_x[rows] + noise * rng.standard_normal((n, self.pool_x.shape[1]))
        return np.clip(X, 0.0, 1.0), self.pool_y[rows]


@cache
def system() -> System:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order].astype(np.intp)
    train, val, pool = np.arange(700), np.arange(700, 1200), np.arange(1200, len(y))
    model = LogisticRegression(C=0.05, max_iter=2000).fit(X[train], y[train])
    calibrator = TemperatureScaling().fit(model.decision_function(X[val]), y[val])
    centroids = np.stack([X[train][y[train] == k].mean(axis=0) for k in range(N_CLASSES)])
    partial = System(model, calibrator, Policy(), centroids, X[pool], y[pool])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncertifiedWarning)
        policy = Policy(target_risk=TARGET_RISK, fallback_min_accuracy=0.8).fit(
            calibrator.predict_proba(partial.scores(X[val])),
            y[val],
            fallback=partial.fallback(X[val]),
        )
    return System(model, calibrator, policy, centroids, X[pool], y[pool])


@dataclass(frozen=True)
class Outcome:
    """What a calibrator + policy does on fresh traffic."""

    coverage: float
    risk: float
    escalation_rate: float
    task_completion: float
    escalated_or_user_escalated: float


def outcome(policy: Policy, calibrator: Any, drift: str, seed: int, n: int = 20_000) -> Outcome:
    """Coverage, error rate among answers and escalation rate on fresh traffic."""
    sys_ = system()
    X, y = sys_.traffic(n, drift, np.random.default_rng(10_000 + seed))
    decisions = policy.decide(calibrator.predict_proba(sys_.scores(X)), fallback=sys_.fallback(X))
    answered = decisions.action_codes == 0
    automatic = answered | (decisions.action_codes == 2)
    risk = float((decisions.label[answered] != y[answered]).mean()) if answered.any() else 0.0
    projected = project(decisions, y, n_bootstrap=0, n_repeats=2, random_state=seed)
    return Outcome(
        coverage=float(automatic.mean()),
        risk=risk,
        escalation_rate=float((decisions.action_codes == 3).mean()),
        task_completion=float(projected.task_completion_rate.value),
        escalated_or_user_escalated=float(projected.escalation_rate.value),
    )


def log_day(
    folder: Path,
    drift: str,
    seed: int,
    *,
    n: int = 4000,
    audit_rate: float = 0.2,
    record_probability: bool = True,
) -> str:
    """A day of traffic in a new SQLite store; returns its URL."""
    sys_ = system()
    rng = np.random.default_rng(seed)
    X, y = sys_.traffic(n, drift, rng)
    scores = sys_.scores(X)
    fallback = sys_.fallback(X)
    decisions = sys_.policy.decide(sys_.calibrator.predict_proba(scores), fallback=fallback)
    escalate = decisions.action_codes == 3
    probability = np.where(escalate, 1.0, audit_rate)
    selected = rng.random(n) < probability
    url = f"sqlite:///{folder / f'events-{drift}-{seed}.db'}?synchronous=normal"
    t0 = 1.7e9
    items = []
    for i in range(n):
        payload = decisions[i].to_dict()
        payload["scores"] = scores[i].tolist()
        if record_probability:
            payload["review_probability"] = float(probability[i])
            payload["review"] = ("escalation" if escalate[i] else "audit") if selected[i] else None
            payload["fallback_label"] = None if fallback[i] == -2 else int(fallback[i])
        else:  # a log written before decisions carried these fields
            for key in ("review_probability", "review", "fallback_label"):
                payload.pop(key, None)
        items.append((f"t{i}", payload, t0 + i))
    with store.open(url) as events:
        events.record_decisions(items)
        capacity = rng.random(n) < 0.9  # reviewers absorb 90 % of escalations
        for i in np.flatnonzero(selected | escalate).tolist():
            kind = "escalation" if escalate[i] else "audit"
            item = events.queue.enqueue(f"t{i}", kind, "guard", 0.0, at=t0 + i)
            claimed = events.queue.claim("reviewer", 1e9, kind=kind, at=t0 + i + 1)
            assert claimed is not None
            assert claimed.id == item
            if kind == "escalation" and not capacity[i]:
                continue  # claimed, never resolved: beyond the reviewers' capacity
            truth = int(y[i])
            right = kind == "audit" or rng.random() < 0.97
            label = truth if right else (truth + 1) % N_CLASSES
            events.queue.resolve(item, label, reviewer="reviewer", at=t0 + i + 2)
        # Users correct some wrong answers; the application audits some clarifications.
        answered = decisions.action_codes == 0
        wrong = answered & (decisions.label != y)
        for i in np.flatnonzero(wrong & (rng.random(n) < 0.3)).tolist():
            events.feedback(f"t{i}", "corrected", label=int(y[i]), at=t0 + i + 5)
        clarified = np.flatnonzero((decisions.action_codes == 1) & ~selected)
        for i in clarified[rng.random(clarified.size) < 0.2].tolist():
            item = events.queue.enqueue(f"t{i}", "audit", "application", 0.0, at=t0 + i)
            claimed = events.queue.claim("auditor", 1e9, kind="audit", at=t0 + i + 1)
            assert claimed is not None
            events.queue.resolve(claimed.id, int(y[i]), reviewer="auditor", at=t0 + i + 2)
    return url


def log_day_guarded(folder: Path, drift: str, seed: int, *, n: int = 4000) -> str:
    """A day of traffic through a real Guard into a new SQLite store; returns its URL.

    The guard audits every action at 20 % and records each decision's review probability
    and the fallback's opinion; :func:`failwise.testing.replay` acts out the users and
    reviewers of the default outcome model (auditors exact, escalations 97 % right).
    """
    from failwise.runtime import Guard
    from failwise.testing import CentroidRule, replay

    sys_ = system()
    X, y = sys_.traffic(n, drift, np.random.default_rng(seed))
    url = f"sqlite:///{folder / f'guarded-{drift}-{seed}.db'}?synchronous=normal"
    with store.open(url) as events:
        guard = Guard(
            sys_.model.decision_function,
            sys_.calibrator,
            sys_.policy,
            fallback=CentroidRule(sys_.centroids),
            store=events,
            audit_rate=0.2,
            random_state=seed,
        )
        replay(guard, list(X), y, audit_accuracy=1.0, random_state=seed)
    return url
