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


def escalate_until_killed(url: str, ack_path: str, threads: int) -> None:
    """Record decisions with their queue items forever, from ``threads`` threads.

    Every third decision escalates (with an escalation item), every fourth of the others
    is audited (with an audit item); one thread in two records batches of five. After
    each call, ``decision <task> <action> <item ids…>`` lines are appended to ``ack_path``
    and fsync'd.
    """
    opened = store.open(url)
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    lock = threading.Lock()

    def ack(lines: list[str]) -> None:
        with lock:
            os.write(fd, "".join(line + "\n" for line in lines).encode())
            os.fsync(fd)

    def one(worker: int, i: int) -> tuple[str, dict[str, Any], store.QueueRequest | None]:
        task_id = f"w{worker}-{i}"
        if i % 3 == 0:
            decision = {**DECISION, "action": "escalate", "label": None, "review": "escalation"}
            return task_id, decision, store.QueueRequest(task_id, "escalation", "low", 0.7)
        if i % 4 == 0:
            decision = {**DECISION, "review": "audit"}
            return task_id, decision, store.QueueRequest(task_id, "audit", "sampled", 0.1)
        return task_id, {**DECISION, "review": None}, None

    def loop(worker: int) -> None:
        i = 0
        while True:
            size = 5 if worker % 2 else 1
            calls = [one(worker, i + k) for k in range(size)]
            requests = [request for _, _, request in calls if request is not None]
            if size == 1:
                ids = opened.record_decision(calls[0][0], calls[0][1], enqueue=requests)
            else:
                ids = opened.record_decisions([(t, d) for t, d, _ in calls], enqueue=requests)
            by_task = {r.task_id: item for r, item in zip(requests, ids, strict=True)}
            ack([f"decision {t} {d['action']} {by_task.get(t, '-')}".strip() for t, d, _ in calls])
            i += size

    pool = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
