"""The labels a certificate needs, as the recalibration report states them."""

from __future__ import annotations

import re

import numpy as np

from failwise import Policy
from failwise.loop import LoggedTasks
from failwise.loop._verdict import needs
from failwise.policy import certification_frontier


def test_the_labels_a_certificate_needs_match_the_certification_frontier() -> None:
    rng = np.random.default_rng(0)
    n, errors = 2000, 10
    confidence = np.sort(rng.uniform(0.5, 1.0, size=n))[::-1]
    correct = np.ones(n, dtype=bool)
    correct[:errors] = False  # the most confident rows are wrong: the whole set plans best
    frontier = certification_frontier(confidence, correct, target_risk=0.02)
    assert frontier.planned_coverage == 1.0
    proba = rng.dirichlet(np.ones(3), size=300)
    policy = Policy(target_risk=0.02, confidence_level=0.95).fit(proba, proba.argmax(axis=1))
    tasks = LoggedTasks(
        scores=proba,
        y=np.full(300, -2, dtype=np.intp),
        selected=np.zeros(300, dtype=bool),
        review_probability=np.full(300, 0.5),
        fallback_label=None,
        ood_score=None,
        action=np.full(300, "answer"),
        task_id=[f"t{i}" for i in range(300)],
    )
    said = needs(policy, errors, n, n, tasks, 0.3)
    found = re.search(r"about (\d+) uniformly sampled labels", said)
    assert found is not None, said
    assert int(found.group(1)) == frontier.rows_needed
