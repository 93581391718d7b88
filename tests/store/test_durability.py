"""Durability: whatever a call acknowledged survives ``kill -9`` of the process."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

from failwise import store

#: Acknowledged lines to wait for before killing the writer.
ACKNOWLEDGED_BEFORE_KILL = 600
THREADS = 4


def _acknowledged(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]  # the kill may cut the last line short
    return [line.split() for line in complete.splitlines()]


def test_every_acknowledged_write_survives_sigkill(
    store_url: str, tmp_path: Path, workers: Any
) -> None:
    store.open(store_url).close()  # create the schema before the race starts
    ack_path = tmp_path / "acknowledged.txt"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=workers.write_until_killed, args=(store_url, str(ack_path), THREADS)
    )
    writer.start()
    deadline = time.monotonic() + 240
    while len(_acknowledged(ack_path)) < ACKNOWLEDGED_BEFORE_KILL:
        assert writer.is_alive(), f"the writing process died on its own ({writer.exitcode})"
        assert time.monotonic() < deadline, "the writing process acknowledged too little"
        time.sleep(0.05)
    writer.kill()  # SIGKILL, mid-stream
    writer.join(timeout=60)
    assert writer.exitcode == -9

    acknowledged = _acknowledged(ack_path)
    decided = {line[1] for line in acknowledged if line[0] == "decision"}
    fed_back = {line[1] for line in acknowledged if line[0] == "feedback"}
    queued = {int(line[2]): line[1] for line in acknowledged if line[0] == "enqueue"}
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL

    with store.open(store_url) as events:
        stored = list(events.iter_events())
        items = {i: events.queue.get(i) for i in queued}
    kinds: dict[str, set[str]] = {}
    for event in stored:
        kinds.setdefault(event.kind, set()).add(event.task_id)
    assert decided <= kinds.get("decision", set())
    assert fed_back <= kinds.get("feedback_accepted", set())
    assert set(queued.values()) <= kinds.get("audit_created", set())
    assert {i: item.task_id for i, item in items.items()} == queued
    # Unacknowledged writes can only be the one call each thread had in flight.
    assert len(kinds["decision"] - decided) <= THREADS
