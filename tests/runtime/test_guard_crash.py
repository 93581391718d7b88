"""A process killed with SIGKILL while deciding leaves no escalation without its queue item.

A child process decides (single decisions and batches, with escalations and audits) against
a real SQLite file, and PostgreSQL when ``FAILWISE_TEST_POSTGRES_URL`` names a server, and is
killed with SIGKILL at a random moment, several times. Afterwards every recorded escalate
decision has its escalation item, every decision with ``review == "audit"`` has its audit
item, and no queue item lacks its decision.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from failwise import store
from tests.runtime.test_guard_store import POSTGRES_URL, fresh_postgres_database

CHILD = Path(__file__).with_name("_crash_child.py")
KILLS = 4


def kill_mid_run(url: str, rng: np.random.Generator, log: Path) -> None:
    """Start the child, let it decide for a random while, SIGKILL it."""
    with open(log, "w") as errors:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), url],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=os.environ.copy(),
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                child.wait(timeout=60)
                pytest.fail(f"the child did not start: {line!r} {log.read_text()[-2000:]}")
            time.sleep(float(rng.uniform(0.2, 1.0)))
            assert child.poll() is None, f"the child stopped: {log.read_text()[-2000:]}"
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            if child.stdout is not None:
                child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def check_log(url: str) -> dict[str, int]:
    """Every escalation and audit decision has its item; every item has its decision."""
    decisions: dict[str, dict[str, object]] = {}
    created: dict[str, set[str]] = defaultdict(set)
    with store.open(url) as events:
        for event in events.iter_events():
            if event.kind == "decision":
                decisions[event.task_id] = event.payload
            elif event.kind in ("escalation_created", "audit_created"):
                created[event.task_id].add(event.kind.split("_")[0])
        items = events.queue.items(kind=None, limit=1_000_000)
    queued: dict[str, set[str]] = defaultdict(set)
    for item in items:
        queued[item.task_id].add(item.kind)
    missing = [
        task
        for task, payload in decisions.items()
        if (payload["action"] == "escalate") != ("escalation" in queued[task])
        or (payload["review"] == "audit") != ("audit" in queued[task])
    ]
    orphans = [task for task in set(queued) | set(created) if task not in decisions]
    assert not missing, f"{len(missing)} decision(s) without their queue item, e.g. {missing[:3]}"
    assert not orphans, f"{len(orphans)} queue item(s) without their decision"
    assert dict(created) == {t: k for t, k in queued.items() if k}
    return {
        "decisions": len(decisions),
        "escalations": sum(p["action"] == "escalate" for p in decisions.values()),
        "audits": sum(p["review"] == "audit" for p in decisions.values()),
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_mid_run_leaves_no_escalation_or_audit_without_its_item(
    backend: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(int(time.time()))
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/events.db"
        for _ in range(KILLS):
            kill_mid_run(url, rng, tmp_path / "child.log")
        counts = check_log(url)
    else:
        if not POSTGRES_URL:
            pytest.skip("set FAILWISE_TEST_POSTGRES_URL to run the crash test on PostgreSQL")
        with fresh_postgres_database(POSTGRES_URL) as url:
            for _ in range(KILLS):
                kill_mid_run(url, rng, tmp_path / "child.log")
            counts = check_log(url)
    print(f"{backend}: {KILLS} kills, {counts}")
    assert counts["escalations"] > 20  # the kills landed among escalations and audits
    assert counts["audits"] > 10
