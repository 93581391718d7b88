"""Fixtures of the monitor tests: the store fixtures (both backends) and a small system.

The system has six known categories in the reference and two categories nobody evaluated,
with 16-dimensional features drawn around one centre per category.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from failwise import Policy, store
from failwise.monitor import Reference
from tests.store import conftest as store_fixtures

# The real PostgreSQL and SQLite fixtures of the store tests (pytest finds fixtures by name).
postgres_server = store_fixtures.postgres_server
postgres_url = store_fixtures.postgres_url
sqlite_url = store_fixtures.sqlite_url
store_url = store_fixtures.store_url

N_KNOWN = 6


@dataclass
class System:
    """A fitted policy, its reference, and a way to draw served requests."""

    policy: Policy
    reference: Reference
    proba: NDArray[np.float64]
    y: NDArray[np.intp]
    centres: NDArray[np.float64]
    rng: np.random.Generator

    def features(self, category: int, n: int) -> NDArray[np.float64]:
        noise = self.rng.normal(size=(n, self.centres.shape[1]))
        return np.asarray(self.centres[category] + noise, dtype=np.float64)

    def decision(self, category: int, *, text: str) -> dict[str, Any]:
        """The decision the policy takes on a request of ``category`` (confident anyway)."""
        rows = np.flatnonzero(self.y == (category % N_KNOWN))
        proba = self.proba[int(self.rng.choice(rows))]
        decision = self.policy.decide_one(proba).to_dict()
        decision["extra"] = {"context": {"text": text}}
        return decision


@pytest.fixture
def system() -> System:
    return make_system()


def make_system(seed: int = 7) -> System:
    """Six known categories in the reference, two unseen ones, 16-dimensional features."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_KNOWN + 2, 16)) * 3.0
    y = np.repeat(np.arange(N_KNOWN), 100)
    proba = rng.dirichlet(np.full(N_KNOWN, 0.2), size=y.size)
    proba[np.arange(y.size), y] += 2.0
    proba /= proba.sum(axis=1, keepdims=True)
    policy = Policy(target_risk=0.1).fit(proba, y)
    features = centres[y] + rng.normal(size=(y.size, 16))
    reference = Reference.from_policy(policy, proba, y, features=features)
    return System(policy, reference, proba, y, centres, rng)


def fill(
    events: store.Store,
    system: System,
    n: int,
    *,
    start: float = 1_000.0,
    novel_share: float = 0.0,
    first: int = 0,
) -> list[str]:
    """Record ``n`` decisions one second apart, a share of them from unseen categories."""
    items, vectors = [], []
    for i in range(first, first + n):
        novel = system.rng.random() < novel_share
        category = (
            N_KNOWN + int(system.rng.integers(2)) if novel else int(system.rng.integers(N_KNOWN))
        )
        decision = system.decision(category, text=f"request {i} about topic {category}")
        items.append((f"t{i:05d}", decision, start + i))
        vectors.append(system.features(category, 1)[0])
    events.record_decisions(items, features=vectors)
    return [task_id for task_id, _, _ in items]


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    with store.open(store_url) as opened:
        yield opened
