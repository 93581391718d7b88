"""Durable writes and queue claims per second of ``failwise.store`` on SQLite and PostgreSQL.

Run ``python benchmarks/bench_store.py`` (add ``--quick`` for a smoke run).

- decisions: 8 threads share one store and call ``store.record_decision`` in a loop (a
  fresh uuid4 task id and a realistic ``Decision.to_dict()`` each); every call returns only
  after its transaction committed (group commit). Throughput = decisions / wall time from
  the start barrier to the last thread's end; one fresh database per repeat; the summary
  is the median of the repeats. Targets: ≥ 5,000/s on SQLite (WAL, ``synchronous=FULL``)
  and ≥ 3,000/s on PostgreSQL. SQLite with ``synchronous=NORMAL`` (no fsync at commit:
  survives ``kill -9``, not power loss) is reported for reference.
- escalations: like decisions, but every call escalates: the decision and its review-queue
  item. "two-step" records the decision, then calls ``store.queue.enqueue`` (two
  transactions); "atomic" passes ``enqueue=[QueueRequest(...)]`` to ``record_decision`` (one
  transaction: no escalation can be left without its item).
- single-thread latency: one thread, one call at a time: median and p99 of
  ``record_decision`` (the floor a lone caller sees: one commit per call).
- claims: N escalations queued, then 8 threads share one store and claim until the queue
  is empty (each claim is a durable transaction that also writes the claimed event).

PostgreSQL is the server named by ``$FAILWISE_BENCH_POSTGRES_URL`` or a throw-away one
that ``scripts/postgres`` starts (and stops) on this machine; without one its rows are
``unavailable`` with the reason. The machine's load average is recorded before each case:
on a shared machine other work lowers these numbers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import numpy as np

import _harness as h

NAME = "store"
DEFAULT_REPEATS = 5
THREADS = 8
FULL = {"decisions_per_thread": 1500, "latency_calls": 2000, "claim_items": 4000}
QUICK = {"decisions_per_thread": 40, "latency_calls": 50, "claim_items": 80}
TARGETS = {"sqlite": 5000.0, "postgresql": 3000.0}

DECISION: dict[str, Any] = {
    "action": "answer",
    "label": 17,
    "confidence": 0.962,
    "band": "high",
    "prediction_set": [17],
    "reason": "answer: confidence 0.962 ≥ answer threshold 0.913 (certified: selective risk "
    "≤ 0.05 with 90% confidence)",
    "predicted": 17,
    "ood_score": 0.21,
    "policy_version": "sha256:3f2a9c1d",
    "timings": {"model": 0.0041, "calibration": 0.00002, "decision": 0.00001},
}


# --------------------------------------------------------------------------- databases


@contextmanager
def postgres_server() -> Iterator[tuple[str | None, str]]:
    """A PostgreSQL URL (or None) and, when None, why."""
    given = os.environ.get("FAILWISE_BENCH_POSTGRES_URL", "").strip()
    if given:
        yield given, ""
        return
    script = h.ROOT / "scripts" / "postgres"
    folder = tempfile.mkdtemp(prefix="failwise-postgres-bench-")
    try:
        done = subprocess.run(
            ["bash", str(script), "start", folder],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(folder, ignore_errors=True)
        yield None, f"scripts/postgres start failed: {error}"
        return
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        shutil.rmtree(folder, ignore_errors=True)
        yield None, f"scripts/postgres start exited {done.returncode}: {done.stderr[-300:]}"
        return
    try:
        yield lines[-1], ""
    finally:
        subprocess.run(
            ["bash", str(script), "stop", folder], capture_output=True, timeout=120, check=False
        )


@contextmanager
def fresh_database(backend: str, server: str | None, options: str = "") -> Iterator[str]:
    """A URL to a new, empty store; removed afterwards."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="failwise-bench-")
        try:
            yield f"sqlite:///{folder}/events.db{options}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    assert server is not None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    try:
        yield f"{server}{'&' if '?' in server else '?'}{option}"
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


# --------------------------------------------------------------------------- workloads


def run_threads(work: Callable[[int], None], threads: int) -> float:
    """Start ``threads`` threads on ``work(k)`` together; return the wall time."""
    barrier = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def body(k: int) -> None:
        barrier.wait()
        try:
            work(k)
        except BaseException as error:  # reported after the join
            failures.append(error)

    pool = [threading.Thread(target=body, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return elapsed


def decisions_per_second(url: str, per_thread: int) -> tuple[float, int]:
    from failwise import store

    with store.open(url) as opened:

        def work(_: int) -> None:
            for _i in range(per_thread):
                opened.record_decision(uuid.uuid4().hex, DECISION)

        elapsed = run_threads(work, THREADS)
        stored = sum(1 for e in opened.iter_events() if e.kind == "decision")
    return THREADS * per_thread / elapsed, stored


ESCALATION: dict[str, Any] = {**DECISION, "action": "escalate", "label": None}


def escalations_per_second(url: str, per_thread: int, *, atomic: bool) -> tuple[float, int]:
    from failwise import store

    with store.open(url) as opened:

        def work(_: int) -> None:
            for _i in range(per_thread):
                task_id = uuid.uuid4().hex
                if atomic:
                    request = store.QueueRequest(task_id, "escalation", "low confidence", 1.0)
                    opened.record_decision(task_id, ESCALATION, enqueue=[request])
                else:
                    opened.record_decision(task_id, ESCALATION)
                    opened.queue.enqueue(task_id, "escalation", "low confidence", 1.0)

        elapsed = run_threads(work, THREADS)
        stored = opened.queue.pending("escalation")
    return THREADS * per_thread / elapsed, stored


def single_latency(url: str, calls: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    from failwise import store

    with store.open(url) as opened:
        return h.latency_samples(
            lambda i: opened.record_decision(uuid.uuid4().hex, DECISION), calls=calls, warmup=20
        )


def claims_per_second(url: str, n_items: int) -> tuple[float, int]:
    from failwise import store

    with store.open(url) as opened:
        ids = [f"t{i}" for i in range(n_items)]
        opened.record_decisions([(t, {"action": "escalate", "confidence": 0.4}) for t in ids])
        for i, task_id in enumerate(ids):
            opened.queue.enqueue(task_id, "escalation", "low confidence", priority=float(i % 10))
        counts = [0] * THREADS

        def work(k: int) -> None:
            while opened.queue.claim(f"reviewer-{k}") is not None:
                counts[k] += 1

        elapsed = run_threads(work, THREADS)
    return sum(counts) / elapsed, sum(counts)


# --------------------------------------------------------------------------- cases


def _summary(values: list[float], unit: str) -> dict[str, Any]:
    return {
        "unit": unit,
        "all": values,
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def _case(
    backend: str,
    server: str | None,
    missing: str,
    repeat: Callable[[str], float],
    repeats: int,
    unit: str,
    options: str = "",
) -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if backend == "postgresql" and server is None:
        return {"status": "unavailable", "notes": [missing], "load_average_1min": load}
    values: list[float] = []
    try:
        for _ in range(repeats):
            with fresh_database(backend, server, options) as url:
                values.append(repeat(url))
    except Exception as error:  # a failing backend must not stop the others
        return {
            "status": "failed",
            "notes": [f"{type(error).__name__}: {error}"],
            "load_average_1min": load,
        }
    return {"status": "ok", "notes": [], "load_average_1min": load, **_summary(values, unit)}


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=DEFAULT_REPEATS)
    parser.add_argument(
        "--only", default="", help="run only the cases whose name contains this text"
    )
    args = parser.parse_args(argv)
    repeats = h.resolve_repeats(args, default_repeats=DEFAULT_REPEATS)
    sizes = QUICK if args.quick else FULL
    h.ensure_failwise_importable()
    per_thread = sizes["decisions_per_thread"]

    def decisions(url: str) -> float:
        rate, stored = decisions_per_second(url, per_thread)
        if stored != THREADS * per_thread:
            raise RuntimeError(f"{stored} decisions stored of {THREADS * per_thread}")
        return rate

    def claims(url: str) -> float:
        rate, claimed = claims_per_second(url, sizes["claim_items"])
        if claimed != sizes["claim_items"]:
            raise RuntimeError(f"{claimed} items claimed of {sizes['claim_items']}")
        return rate

    def escalations(atomic: bool) -> Callable[[str], float]:
        def repeat(url: str) -> float:
            rate, stored = escalations_per_second(url, per_thread, atomic=atomic)
            if stored != THREADS * per_thread:
                raise RuntimeError(f"{stored} escalations queued of {THREADS * per_thread}")
            return rate

        return repeat

    latencies: dict[str, Any] = {}

    def latency(url: str) -> float:
        samples = single_latency(url, sizes["latency_calls"])
        latencies.setdefault(url.split(":", 1)[0], []).append(samples)
        return float(np.median(samples) * 1e6)

    cases: dict[str, dict[str, Any]] = {}
    wanted = args.only

    def add(
        name: str,
        backend: str,
        repeat: Callable[[str], float],
        count: int,
        unit: str,
        options: str = "",
    ) -> None:
        if wanted in name:
            cases[name] = _case(backend, server, missing, repeat, count, unit, options)

    from failwise import store as _store

    atomic_available = hasattr(_store, "QueueRequest")
    with postgres_server() as (server, missing):
        for backend in ("sqlite", "postgresql"):
            add(f"decisions/{backend}", backend, decisions, repeats, "decisions/s")
        add(
            "decisions/sqlite synchronous=normal",
            "sqlite",
            decisions,
            repeats,
            "decisions/s",
            "?synchronous=normal",
        )
        for backend in ("sqlite", "postgresql"):
            add(
                f"escalations two-step/{backend}",
                backend,
                escalations(False),
                repeats,
                "escalations/s",
            )
            if atomic_available:
                add(
                    f"escalations atomic/{backend}",
                    backend,
                    escalations(True),
                    repeats,
                    "escalations/s",
                )
        for backend in ("sqlite", "postgresql"):
            add(f"claims/{backend}", backend, claims, repeats, "claims/s")
            add(f"latency/{backend}", backend, latency, max(1, repeats // 2), "µs (median)")
            runs = latencies.get(backend)
            if runs and f"latency/{backend}" in cases:
                joined = np.concatenate(runs)
                cases[f"latency/{backend}"].update(
                    p99_us=float(np.percentile(joined, 99) * 1e6),
                    median_us=float(np.median(joined) * 1e6),
                    calls=int(joined.shape[0]),
                )

    targets = {
        f"decisions/{backend} ≥ {target:,.0f}/s": (
            cases[f"decisions/{backend}"]["median"] >= target
            if cases[f"decisions/{backend}"]["status"] == "ok"
            else None
        )
        for backend, target in TARGETS.items()
        if f"decisions/{backend}" in cases
    }
    rows = []
    for name, case in cases.items():
        if case["status"] != "ok":
            rows.append([name, case["status"], "—", "—", "—", case["notes"][0][:50]])
            continue
        extra = f"p99 {case['p99_us']:.0f} µs" if "p99_us" in case else ""
        rows.append(
            [
                name,
                f"{case['median']:,.0f}",
                f"{case['min']:,.0f}",
                f"{case['max']:,.0f}",
                f"{case['load_average_1min']:.2f}"
                if case["load_average_1min"] is not None
                else "—",
                f"{case['unit']} {extra}".strip(),
            ]
        )
    h.print_table(
        f"failwise.store, {THREADS} threads, median of {repeats} repeat(s)",
        ["case", "median", "min", "max", "load 1 min", "unit"],
        rows,
        caption="targets: " + ", ".join(f"{k}: {v}" for k, v in targets.items()),
    )
    payload = {
        "name": NAME,
        "quick": args.quick,
        "repeats": repeats,
        "threads": THREADS,
        "sizes": sizes,
        "decision": DECISION,
        "cases": cases,
        "targets": targets,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
