"""Child process of the SIGKILL test: decide with escalations and audits until killed.

Usage: ``python _crash_child.py STORE_URL``. Prints ``ready`` once the first decisions are
recorded, then decides forever (single decisions and batches) against the store.
"""

from __future__ import annotations

import sys

import numpy as np

from failwise import Policy, store
from failwise.runtime import Guard


def main(url: str) -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(4, 0.4), size=4000)
    y = np.array([rng.choice(4, p=p) for p in proba])
    policy = Policy(target_risk=0.05, clarify_max_set_size=1).fit(proba[:2000], y[:2000])
    rows = proba[2000:]
    with store.open(url) as events:
        guard = Guard(lambda i: rows[i % len(rows)], None, policy, store=events, audit_rate=0.5)
        guard.decide_batch(list(range(20)))
        print("ready", flush=True)
        i = 20
        while True:
            if i % 3:
                guard.decide(i)
                i += 1
            else:
                guard.decide_batch(list(range(i, i + 7)))
                i += 7


if __name__ == "__main__":
    main(sys.argv[1])
