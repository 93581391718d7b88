"""The guard's model threads and audit sampler, on their own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest

from failwise.runtime import AuditSampler
from failwise.runtime._timeout import ModelThreads

ROOT = Path(__file__).resolve().parents[2]


def test_busy_workers_make_the_pool_grow_up_to_its_cap() -> None:
    pool = ModelThreads(max_workers=3)
    release = threading.Event()
    futures = [pool.submit(release.wait, 30) for _ in range(5)]
    assert pool.n_workers == 3
    with pytest.raises(FutureTimeout):
        futures[-1].result(timeout=0.05)  # queued behind three blocked workers
    release.set()
    assert all(f.result(timeout=30) for f in futures)
    pool.shutdown()


def test_a_cancelled_queued_call_never_runs() -> None:
    pool = ModelThreads(max_workers=1)
    release = threading.Event()
    ran = threading.Event()
    blocker = pool.submit(release.wait, 30)
    queued = pool.submit(ran.set)
    assert queued.cancel()
    release.set()
    assert blocker.result(timeout=30)
    pool.submit(lambda: None).result(timeout=30)
    assert not ran.is_set()
    pool.shutdown()


def test_errors_come_back_through_the_future() -> None:
    pool = ModelThreads(max_workers=2)

    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        pool.submit(boom).result(timeout=30)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="the Guard was closed"):
        pool.submit(boom)


def test_a_hung_model_does_not_keep_the_interpreter_alive() -> None:
    script = textwrap.dedent(
        """
        import threading
        import numpy as np
        from failwise import Policy
        from failwise.runtime import Guard

        rng = np.random.default_rng(0)
        proba = rng.dirichlet(np.full(3, 0.3), size=2000)
        y = np.array([rng.choice(3, p=p) for p in proba])
        policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
        never = threading.Event()
        guard = Guard(lambda x: never.wait(), None, policy, timeout_s=0.05)
        print(guard.decide(0).extra["failure"])
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "timeout"


def test_audit_sampler_is_reproducible_with_a_seed() -> None:
    a, b = AuditSampler(0.3, random_state=11), AuditSampler(0.3, random_state=11)
    assert [a.draw() for _ in range(500)] == [b.draw() for _ in range(500)]
    assert not any(AuditSampler(0.0).draw() for _ in range(100))
    assert all(AuditSampler(1.0).draw() for _ in range(100))
