"""Time the service's dashboard over 30 days of hourly buckets, on SQLite and PostgreSQL.

Run ``python benchmarks/bench_dashboard.py`` (``--events N`` for another size, ``--quick``
for a smoke run).

The event log is the one of ``bench_measure.py`` (generated in DuckDB with SQL: five
ladder actions, user feedback, user escalations, clarification picks, escalations worked
by reviewers and a 10% audit sample of answers), spread evenly over the 30 days before
now, bulk-loaded into a store created by ``failwise.store.open``. Then, with a viewer key,
``GET /dashboard?window=30d&bucket=hour`` of the real app (in process, through its ASGI
interface: routing, auth, the queries, the SVG and the HTML) is timed: once cold (the
first read stores the rollups of every settled hour), ``--repeats`` times warm, and
``--repeats`` times each after ``--late`` late feedback events for random tasks of the
window (their hours are recomputed). So is each of its parts on its own:
``metric_series`` (720 hourly buckets),
``Queue.health``, ``labelled_reliability`` over the last day (as the page draws it) and
the totals of ``measure`` over the same window (at most 3 times), and ``metric_series``
computed from scratch (no rollups, once), for comparison. Then the
cost of the rollup marks on a decision write: 200 single ``record_decision`` calls and a
batch of 1,000, with the marking triggers and with them dropped, alternating
``--write-rounds`` times. Target: p95 of the page ≤ 1.5 s for 1 million events on both
backends. The load average is recorded: the machine may be shared.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h
import bench_measure as log

NAME = "dashboard"
DAYS = 30


def _spread_over_days(n_tasks_hint: int, days: int, end: float) -> None:
    """Make ``bench_measure``'s generator space the tasks evenly over ``days`` before ``end``."""
    start = end - days * 86_400.0
    step = days * 86_400.0 / max(n_tasks_hint, 1)
    log._PLAN = f"""
CREATE OR REPLACE TABLE plan AS
SELECT i, CAST({start!r} + i * {step!r} AS DOUBLE) AS t0, random() AS r, random() AS r2,
       random() AS r3
FROM range({{n_tasks}}) AS grid(i)
"""


def _p95(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def _time(fn: Any, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _continue_ids(url: str) -> None:
    """Move the identity sequences past the ids the bulk load wrote (later writes append)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for table in ("events", "queue_items"):
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            )


def _same_estimate(a: Any, b: Any) -> bool:
    return all(
        (math.isnan(u) and math.isnan(v)) or math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12)
        for u, v in ((a.value, b.value), (a.low, b.low), (a.high, b.high))
    )


def _triggers(url: str, on: bool) -> None:
    """Drop (``on=False``) or re-create the rollup-marking triggers of the store at ``url``."""
    from failwise.store._schema import MIGRATIONS, render

    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    creates = [
        render(statement, backend)
        for statement in MIGRATIONS[3].by_backend[backend]
        if "CREATE TRIGGER" in statement
    ]
    drops = [
        f"DROP TRIGGER {name}" + (f" ON {table}" if backend == "postgresql" else "")
        for name, table in (
            ("events_mark_rollup", "events"),
            ("queue_items_mark_rollup", "queue_items"),
        )
    ]
    statements = creates if on else drops
    if backend == "sqlite":
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        for statement in statements:
            connection.execute(statement)
        connection.commit()
        connection.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)


def _write_cost(url: str, rounds: int, singles: int) -> dict[str, Any]:
    """Seconds per decision write with and without the marking triggers, alternating."""
    from failwise import store

    samples: dict[str, list[float]] = {
        f"{kind}_{key}": [] for kind in ("single", "batch") for key in ("on", "off")
    }
    counter = 0
    for round_ in range(rounds):
        for on in (True, False) if round_ % 2 == 0 else (False, True):
            if not on:
                _triggers(url, False)
            with store.open(url) as events:
                now = time.time()
                begin = time.perf_counter()
                for _ in range(singles):
                    counter += 1
                    decision = {"action": "answer", "label": 1, "confidence": 0.9}
                    events.record_decision(f"w{counter}", decision, at=now)
                single = (time.perf_counter() - begin) / singles
                items = []
                for _ in range(1000):
                    counter += 1
                    items.append((f"w{counter}", {"action": "abstain"}, now))
                begin = time.perf_counter()
                events.record_decisions(items)
                batch = (time.perf_counter() - begin) / 1000
            if not on:
                _triggers(url, True)
            key = "on" if on else "off"
            samples[f"single_{key}"].append(single)
            samples[f"batch_{key}"].append(batch)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "samples_s": samples,
        "median_s": medians,
        "single_ratio": medians["single_on"] / medians["single_off"],
        "batch_ratio": medians["batch_on"] / medians["batch_off"],
        "rounds": rounds,
        "singles_per_round": singles,
    }


def _late_events(url: str, n: int, rng: Any, since: float, until: float) -> None:
    """``n`` late feedback events for random tasks of the window (they mark their hours)."""
    from failwise import store

    with store.open(url) as events:
        ids = events.query_task_view(
            "SELECT task_id FROM task_view ORDER BY task_id LIMIT 1 OFFSET ?",
            (int(rng.integers(0, 1000)),),
            since=since,
            until=until,
        )
        rows = events.query_task_view(
            "SELECT task_id FROM task_view WHERE task_id >= ? ORDER BY task_id LIMIT ?",
            (ids[0][0], 20 * n),
            since=since,
            until=until,
        )
        chosen = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
        for index in chosen:
            events.feedback(str(rows[int(index)][0]), "accepted", at=time.time())


def _bench(url: str, repeats: int, policy_dir: Path, late: int) -> dict[str, Any]:
    import numpy as np
    from fastapi.testclient import TestClient

    from failwise import store
    from failwise.outcomes import labelled_reliability, measure, metric_series
    from failwise.service import Settings, create_app

    rng = np.random.default_rng(7)
    with store.open(url) as opened:
        key = opened.keys.create("viewer", "bench-viewer").token
    app = create_app(Settings(store=url, policy=policy_dir))
    parts: dict[str, list[float]] = {}
    params = {"window": "30d", "bucket": "hour"}
    with TestClient(app) as client, store.open(url) as events:
        client.headers["Authorization"] = f"Bearer {key}"
        begin = time.perf_counter()
        first = client.get("/dashboard", params=params)
        cold_s = time.perf_counter() - begin
        if first.status_code != 200:
            raise RuntimeError(f"GET /dashboard answered {first.status_code}: {first.text[:500]}")
        parts["page"] = _time(lambda: client.get("/dashboard", params=params), repeats)
        until = time.time()
        since = until - DAYS * 86_400.0
        late_s = []
        for _ in range(repeats):
            _late_events(url, late, rng, since, until)
            begin = time.perf_counter()
            client.get("/dashboard", params=params)
            late_s.append(time.perf_counter() - begin)
        parts["page_after_late_events"] = late_s
        parts["metric_series"] = _time(
            lambda: metric_series(events, since, until, bucket="hour"), repeats
        )
        parts["metric_series_from_scratch"] = _time(
            lambda: metric_series(events, since, until, bucket="hour", use_rollups=False), 1
        )
        parts["queue_health"] = _time(
            lambda: events.queue.health(since, until, 3600.0, at=until), repeats
        )
        # the page's reliability diagram covers the last day
        parts["labelled_reliability"] = _time(
            lambda: labelled_reliability(events, until - 86_400.0, until), repeats
        )
        # the metric view over the whole window, as GET /v1/metrics computes it
        parts["measure"] = _time(lambda: measure(events, since, until), min(repeats, 3))
        series = metric_series(events, since, until, bucket="hour")
        scratch = metric_series(events, since, until, bucket="hour", use_rollups=False)
        total = measure(events, since, until)
        same = log.same(series.total, total)
        same_buckets = series.n_tasks == scratch.n_tasks and all(
            _same_estimate(a, b)
            for name in scratch.metrics
            for a, b in zip(series.metrics[name], scratch.metrics[name], strict=True)
        )
        buckets = len(series.starts)
    return {
        "seconds": parts,
        "cold_s": cold_s,
        "median": {k: statistics.median(v) for k, v in parts.items()},
        "p95": {k: _p95(v) for k, v in parts.items()},
        "buckets": buckets,
        "late_events_per_read": late,
        "html_bytes": len(first.content),
        "totals_equal_measure": same,
        "buckets_equal_from_scratch": same_buckets,
        "load_average": os.getloadavg(),
    }


def _policy(folder: Path) -> Path:
    import numpy as np

    from failwise import Policy, artifacts

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.4), size=3000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9, clarify_max_set_size=2).fit(proba, y)
    artifacts.save(policy, folder / "policy")
    return folder / "policy"


def main() -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=10)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FAILWISE_TEST_POSTGRES_URL", ""),
        help="PostgreSQL server URL (default $FAILWISE_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--late", type=int, default=20, help="late feedback events written before each read"
    )
    parser.add_argument(
        "--write-rounds", type=int, default=3, help="rounds of the decision-write cost"
    )
    args = parser.parse_args()
    h.ensure_failwise_importable()
    duckdb, why = h.optional_import("duckdb", extra="analytics")
    if duckdb is None:
        print(f"bench_dashboard needs DuckDB to generate the log: {why}")
        return 1
    repeats = h.resolve_repeats(args, default_repeats=10)
    size = 20_000 if args.quick else args.events
    load_before = os.getloadavg()
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="failwise-bench-dashboard-") as tmp:
        folder = Path(tmp) / "export"
        _spread_over_days(int(size / 2.5), DAYS, time.time() - 60.0)
        start = time.perf_counter()
        counts = log.generate(duckdb, size, folder, args.seed)
        generated_s = time.perf_counter() - start
        policy_dir = _policy(Path(tmp))
        if not args.no_sqlite:
            start = time.perf_counter()
            url = log.load_sqlite(folder, Path(tmp) / "events.db")
            load_s = time.perf_counter() - start
            cases.append(
                {
                    "backend": "sqlite",
                    **counts,
                    "load_s": load_s,
                    **_bench(url, repeats, policy_dir, args.late),
                    "write_cost": _write_cost(url, args.write_rounds, 200),
                }
            )
        if args.postgres:
            start = time.perf_counter()
            url, schema = log.load_postgres(folder, args.postgres)
            _continue_ids(url)
            load_s = time.perf_counter() - start
            try:
                cases.append(
                    {
                        "backend": "postgresql",
                        **counts,
                        "load_s": load_s,
                        **_bench(url, repeats, policy_dir, args.late),
                        "write_cost": _write_cost(url, args.write_rounds, 200),
                    }
                )
            finally:
                log.drop_postgres(args.postgres, schema)
        else:
            cases.append({"backend": "postgresql", "unavailable": "set FAILWISE_TEST_POSTGRES_URL"})
    load_after = os.getloadavg()
    parts = ("metric_series", "queue_health", "labelled_reliability", "measure")
    rows = []
    for case in cases:
        if "unavailable" in case:
            rows.append([case["backend"], "—", case["unavailable"], *["—"] * (len(parts) + 6)])
            continue
        cost = case["write_cost"]
        rows.append(
            [
                case["backend"],
                f"{case['events']:,}",
                h.format_seconds(case["cold_s"]),
                h.format_seconds(case["p95"]["page"]),
                h.format_seconds(case["p95"]["page_after_late_events"]),
                h.format_seconds(case["median"]["metric_series_from_scratch"]),
                *[h.format_seconds(case["median"][part]) for part in parts],
                f"{cost['single_ratio']:.2f}× / {cost['batch_ratio']:.2f}×",
                f"{case['totals_equal_measure']} / {case['buckets_equal_from_scratch']}",
            ]
        )
    h.print_table(
        f"GET /dashboard?window=30d&bucket=hour ({DAYS} days, hourly), {repeats} repeats",
        [
            "backend",
            "events",
            "page cold",
            "page warm p95",
            f"p95 after {args.late} late events",
            "series from scratch",
            *[f"{p} median" for p in parts],
            "write with ÷ without marks (single / batch)",
            "totals = measure / buckets = scratch",
        ],
        rows,
        caption=(
            f"target: page p95 ≤ 1.5 s at 1,000,000 events; load average "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, {os.cpu_count()} CPUs"
        ),
    )
    payload = {
        "name": NAME,
        "quick": args.quick,
        "repeats": repeats,
        "events": size,
        "days": DAYS,
        "generate_s": generated_s,
        "cases": cases,
        "target_s": {"page_p95_1M_events": 1.5},
        "load_average": {"before": load_before, "after": load_after},
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
