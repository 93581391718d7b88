"""Entry points of the child processes the store tests start (importable under spawn)."""

from __future__ import annotations

import os
import threading
from typing import Any

from failwise import store

DECISION: dict[str, Any] = {
    "action": "answer",
    "label": 3,
    "confidence": 0.93,
    "band": "high",
    "prediction_set": [3],
    "reason": "answer: confidence 0.930 ≥ answer threshold 0.900",
    "predicted": 3,
    "policy_version": "test-policy",
}


def write_until_killed(url: str, ack_path: str, threads: int) -> None:
    """Write tasks, feedback and queue items forever from ``threads`` threads.

    After each call returns, one line naming what was acknowledged is appended to
    ``ack_path`` and fsync'd: ``decision <task>``, ``feedback <task>`` or
    ``enqueue <task> <item>``.
    """
    opened = store.open(url)
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    lock = threading.Lock()

    def ack(line: str) -> None:
        with lock:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)

    def loop(worker: int) -> None:
        i = 0
        while True:
            task_id = f"w{worker}-{i}"
            opened.record_decision(task_id, DECISION)
            ack(f"decision {task_id}")
            opened.feedback(task_id, "accepted")
            ack(f"feedback {task_id}")
            if i % 5 == 0:
                item = opened.queue.enqueue(task_id, "audit", "sampled", priority=0.5)
                ack(f"enqueue {task_id} {item}")
            i += 1

    pool = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def claim_all(url: str, reviewer: str, barrier: Any, results: Any) -> None:
    """Claim items until the queue is empty; report the ids claimed."""
    claimed: list[int] = []
    with store.open(url) as opened:
        barrier.wait()
        while (item := opened.queue.claim(reviewer, lease_s=3600.0)) is not None:
            claimed.append(item.id)
    results.put((reviewer, claimed))


def open_and_close(url: str, barrier: Any, results: Any) -> None:
    """Open a store (racing other processes to create its schema) and report its version."""
    barrier.wait()
    try:
        with store.open(url) as opened:
            results.put(("ok", opened.schema_version))
    except Exception as error:  # reported to the parent, which fails the test
        results.put(("error", f"{type(error).__name__}: {error}"))
