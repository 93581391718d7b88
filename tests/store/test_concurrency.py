"""Many reviewers at once: every item is claimed by exactly one, across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from failwise import store

N_ITEMS = 500


def _fill(url: str) -> list[int]:
    with store.open(url) as events:
        events.record_decisions([(f"t{i}", {"action": "escalate"}) for i in range(N_ITEMS)], at=0.0)
        return [
            events.queue.enqueue(f"t{i}", "escalation", "r", priority=float(i % 7), at=float(i))
            for i in range(N_ITEMS)
        ]


def _check_claim_events(url: str, claims: dict[str, list[int]]) -> None:
    owner = {item: reviewer for reviewer, items in claims.items() for item in items}
    with store.open(url) as events:
        claimed = [e for e in events.iter_events() if e.kind == "escalation_claimed"]
        assert events.queue.pending() == 0
    assert len(claimed) == N_ITEMS
    assert {e.payload["item_id"]: e.payload["reviewer"] for e in claimed} == owner


def test_eight_threads_claim_every_item_exactly_once(store_url: str) -> None:
    ids = _fill(store_url)
    claims: dict[str, list[int]] = {f"reviewer-{k}": [] for k in range(8)}
    start = threading.Barrier(8)
    with store.open(store_url) as events:

        def work(reviewer: str) -> None:
            start.wait()
            while (item := events.queue.claim(reviewer, lease_s=3600.0)) is not None:
                claims[reviewer].append(item.id)

        threads = [threading.Thread(target=work, args=(name,)) for name in claims]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    every = [item for items in claims.values() for item in items]
    assert sorted(every) == sorted(ids)
    assert len(every) == len(set(every))
    _check_claim_events(store_url, claims)


def test_eight_threads_with_a_store_each_claim_every_item_exactly_once(store_url: str) -> None:
    ids = _fill(store_url)
    claims: dict[str, list[int]] = {f"reviewer-{k}": [] for k in range(8)}
    start = threading.Barrier(8)

    def work(reviewer: str) -> None:
        with store.open(store_url, pool_size=1) as own:
            start.wait()
            while (item := own.queue.claim(reviewer, lease_s=3600.0)) is not None:
                claims[reviewer].append(item.id)

    threads = [threading.Thread(target=work, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [item for items in claims.values() for item in items]
    assert sorted(every) == sorted(ids)
    _check_claim_events(store_url, claims)


def test_four_processes_claim_every_item_exactly_once(store_url: str, workers: Any) -> None:
    ids = _fill(store_url)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    processes = [
        context.Process(
            target=workers.claim_all, args=(store_url, f"process-{k}", barrier, results)
        )
        for k in range(4)
    ]
    for process in processes:
        process.start()
    claims = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    every = [item for items in claims.values() for item in items]
    assert sorted(every) == sorted(ids)
    assert len(every) == len(set(every))
    _check_claim_events(store_url, claims)


def test_claims_from_many_threads_follow_priority_order_overall(store_url: str) -> None:
    _fill(store_url)
    claimed: list[store.QueueItem] = []
    lock = threading.Lock()
    with store.open(store_url) as events:

        def work(reviewer: str) -> None:
            while (item := events.queue.claim(reviewer, lease_s=3600.0)) is not None:
                with lock:
                    claimed.append(item)

        threads = [threading.Thread(target=work, args=(f"r{k}",)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        history = [e for e in events.iter_events() if e.kind == "escalation_claimed"]
    # The claim events, in the order they were committed, never take a lower-priority item
    # while a higher one is still waiting.
    by_id = {item.id: item for item in claimed}
    sequence = [by_id[e.payload["item_id"]] for e in sorted(history, key=lambda e: e.id)]
    keys = [(-item.priority, item.created_at, item.id) for item in sequence]
    assert keys == sorted(keys)
