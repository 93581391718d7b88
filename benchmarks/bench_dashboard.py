"""Time the service's dashboard over 30 days of hourly buckets, on SQLite and PostgreSQL.

Run ``python benchmarks/bench_dashboard.py`` (``--events N`` for another size, ``--quick``
for a smoke run).

The event log is the one of ``bench_measure.py`` (generated in DuckDB with SQL: five
ladder actions, user feedback, user escalations, clarification picks, escalations worked
by reviewers and a 10% audit sample of answers), spread evenly over the 30 days before
now, bulk-loaded into a store created by ``failwise.store.open``. Then, with a viewer key,
``GET /dashboard?window=30d&bucket=hour`` of the real app (in process, through its ASGI
interface: routing, auth, the queries, the SVG and the HTML) is timed ``--repeats`` times,
and so is each of its parts on its own: ``metric_series`` (720 hourly buckets),
``Queue.health``, ``labelled_reliability`` and the totals of ``measure`` over the same
window, for comparison. Target: p95 of the page ≤ 1.5 s for 1 million events on both
backends. The load average is recorded: the machine may be shared.
"""

from __future__ import annotations

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


def _bench(url: str, repeats: int, policy_dir: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from failwise import store
    from failwise.outcomes import labelled_reliability, measure, metric_series
    from failwise.service import Settings, create_app

    with store.open(url) as opened:
        key = opened.keys.create("viewer", "bench-viewer").token
    app = create_app(Settings(store=url, policy=policy_dir))
    parts: dict[str, list[float]] = {}
    with TestClient(app) as client, store.open(url) as events:
        client.headers["Authorization"] = f"Bearer {key}"
        first = client.get("/dashboard", params={"window": "30d", "bucket": "hour"})
        if first.status_code != 200:
            raise RuntimeError(f"GET /dashboard answered {first.status_code}: {first.text[:500]}")
        parts["page"] = _time(
            lambda: client.get("/dashboard", params={"window": "30d", "bucket": "hour"}),
            repeats,
        )
        until = time.time()
        since = until - DAYS * 86_400.0
        parts["metric_series"] = _time(
            lambda: metric_series(events, since, until, bucket="hour"), repeats
        )
        parts["queue_health"] = _time(
            lambda: events.queue.health(since, until, 3600.0, at=until), repeats
        )
        parts["labelled_reliability"] = _time(
            lambda: labelled_reliability(events, since, until), repeats
        )
        parts["measure"] = _time(lambda: measure(events, since, until), repeats)
        series = metric_series(events, since, until, bucket="hour")
        total = measure(events, since, until)
        same = log.same(series.total, total)
        buckets = len(series.starts)
    return {
        "seconds": parts,
        "median": {k: statistics.median(v) for k, v in parts.items()},
        "p95": {k: _p95(v) for k, v in parts.items()},
        "buckets": buckets,
        "html_bytes": len(first.content),
        "totals_equal_measure": same,
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
                    **_bench(url, repeats, policy_dir),
                }
            )
        if args.postgres:
            start = time.perf_counter()
            url, schema = log.load_postgres(folder, args.postgres)
            load_s = time.perf_counter() - start
            try:
                cases.append(
                    {
                        "backend": "postgresql",
                        **counts,
                        "load_s": load_s,
                        **_bench(url, repeats, policy_dir),
                    }
                )
            finally:
                log.drop_postgres(args.postgres, schema)
        else:
            cases.append({"backend": "postgresql", "unavailable": "set FAILWISE_TEST_POSTGRES_URL"})
    load_after = os.getloadavg()
    parts = ("page", "metric_series", "queue_health", "labelled_reliability", "measure")
    rows = []
    for case in cases:
        if "unavailable" in case:
            rows.append([case["backend"], "—", case["unavailable"], *["—"] * (len(parts) + 1)])
            continue
        rows.append(
            [
                case["backend"],
                f"{case['events']:,}",
                h.format_seconds(case["p95"]["page"]),
                *[h.format_seconds(case["median"][part]) for part in parts],
                str(case["totals_equal_measure"]),
            ]
        )
    h.print_table(
        f"GET /dashboard?window=30d&bucket=hour ({DAYS} days, hourly), {repeats} repeats",
        ["backend", "events", "page p95", *[f"{p} median" for p in parts], "totals = measure"],
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
