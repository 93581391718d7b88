"""Time ``failwise.outcomes.measure`` over a large event log on DuckDB, SQLite and PostgreSQL.

Run ``python benchmarks/bench_measure.py`` (add ``--quick`` for a smoke run).

The event log is generated in DuckDB with SQL (not through the Python API) and written as a
failwise Parquet export: about 2.5 events per task over five ladder actions, with user
feedback, user escalations, clarification picks, escalations worked by reviewers and a 10%
audit sample of answers, each with its queue item. Then ``measure`` (both of its queries:
the sums and the order statistics of the time to correct output) is timed on

- DuckDB over the Parquet folder (``measure(folder)``: opens DuckDB, creates the views,
  runs the SQL) — target: under 5 s for 10 million events;
- SQLite: the same rows bulk-loaded into a store created by ``failwise.store.open`` (so
  with its schema and indexes);
- PostgreSQL, when ``$FAILWISE_TEST_POSTGRES_URL`` (or ``--postgres URL``) names a server:
  the rows are copied into a fresh schema created by ``failwise.store.open``.

Each backend is timed at a smaller size and at full size; the median of the repeats is
reported. All backends must return the same metrics (checked).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _harness as h

NAME = "measure"
PAYLOAD = (
    '{"action": "answer", "band": "high", "prediction_set": [3], "reason": "answer: '
    'confidence 0.97 >= answer threshold 0.91", "timings": {"model_s": 0.0004, '
    '"calibrate_s": 0.00002, "ood_s": 0.0, "decide_s": 0.00003, "store_s": 0.0011, '
    '"total_s": 0.0016}, "audit": false}'
)

_PLAN = """
CREATE OR REPLACE TABLE plan AS
SELECT i, CAST(1.7e9 + i * 0.01 AS DOUBLE) AS t0, random() AS r, random() AS r2, random() AS r3
FROM range({n_tasks}) AS grid(i)
"""
_TASKS = """
CREATE OR REPLACE TABLE tasks AS
SELECT 't' || i AS task_id, t0 AS created_at, action,
       CASE WHEN action IN ('answer', 'fallback') THEN CAST(i % 10 AS BIGINT) END AS label,
       CAST(0.5 + r3 / 2 AS DOUBLE) AS confidence, CAST(i % 10 AS BIGINT) AS predicted,
       'high' AS band,
       CAST(NULL AS DOUBLE) AS ood_score, 'v1' AS policy_version
FROM (
    SELECT *, CASE WHEN r < 0.70 THEN 'answer' WHEN r < 0.80 THEN 'clarify'
                   WHEN r < 0.85 THEN 'fallback' WHEN r < 0.95 THEN 'escalate'
                   ELSE 'abstain' END AS action
    FROM plan
)
"""
# One row per queue item: (task, kind, created, claimed, resolved, label).
_ITEMS = """
CREATE OR REPLACE TABLE items AS
SELECT task_id, 'escalation' AS kind, created_at + 60 AS created, created_at + 600 AS claimed,
       created_at + 720 AS resolved, CAST(i % 10 AS BIGINT) AS label
FROM tasks JOIN plan ON 't' || i = task_id
WHERE action IN ('answer', 'fallback') AND r2 >= 0.90 AND r2 < 0.95
UNION ALL
SELECT task_id, 'escalation', created_at + 11, created_at + 700, created_at + 820,
       CAST(i % 10 AS BIGINT)
FROM tasks JOIN plan ON 't' || i = task_id WHERE action = 'clarify' AND r2 >= 0.8
UNION ALL
SELECT task_id, 'escalation', created_at, created_at + 780, created_at + 900,
       CAST(i % 10 AS BIGINT)
FROM tasks JOIN plan ON 't' || i = task_id WHERE action = 'escalate'
UNION ALL
SELECT task_id, 'audit', created_at, created_at + 100, created_at + 220,
       CASE WHEN r2 < 0.98 THEN label ELSE label + 1 END
FROM tasks JOIN plan ON 't' || i = task_id WHERE action = 'answer' AND r3 < 0.1
"""
_EVENTS = """
CREATE OR REPLACE TABLE events AS
SELECT CAST(ROW_NUMBER() OVER (ORDER BY "at", task_id, kind) AS BIGINT) AS id,
       task_id, kind, "at", label, payload
FROM (
    SELECT task_id, 'decision' AS kind, created_at AS "at", label, '{payload}' AS payload
    FROM tasks
    UNION ALL
    SELECT task_id, CASE WHEN r2 < 0.85 THEN 'feedback_accepted'
                         ELSE 'feedback_abandoned' END,
           created_at + CASE WHEN r2 < 0.85 THEN 1 ELSE 60 END, NULL, '{{}}'
    FROM tasks JOIN plan ON 't' || i = task_id
    WHERE action IN ('answer', 'fallback') AND r2 < 0.90
    UNION ALL
    SELECT task_id, 'clarification_choice', created_at + 11,
           CASE WHEN r2 < 0.8 THEN CAST(i % 10 AS BIGINT) END, '{{}}'
    FROM tasks JOIN plan ON 't' || i = task_id WHERE action = 'clarify'
    UNION ALL
    SELECT task_id, CASE WHEN r2 < 0.5 THEN 'feedback_accepted' ELSE 'feedback_abandoned' END,
           created_at + 1, NULL, '{{}}'
    FROM tasks JOIN plan ON 't' || i = task_id WHERE action = 'abstain'
    UNION ALL
    SELECT task_id, kind || '_created', created, NULL, '{{}}' FROM items
    UNION ALL
    SELECT task_id, kind || '_claimed', claimed, NULL, '{{}}' FROM items
    UNION ALL
    SELECT task_id, kind || '_resolved', resolved, label, '{{}}' FROM items
)
"""
_QUEUE = """
CREATE OR REPLACE TABLE queue_items AS
SELECT CAST(ROW_NUMBER() OVER (ORDER BY created, task_id) AS BIGINT) AS id, task_id, kind,
       'generated' AS reason, CAST(0.5 AS DOUBLE) AS priority, created AS created_at,
       'resolved' AS state,
       'reviewer' AS claimed_by, claimed AS claimed_at, claimed + 300 AS lease_expires_at,
       resolved AS resolved_at, 'reviewer' AS resolved_by, label, CAST(NULL AS VARCHAR) AS note
FROM items
"""
COLUMNS = {
    "tasks": "task_id, created_at, action, label, confidence, predicted, band, ood_score, "
    "policy_version",
    "events": 'id, task_id, kind, "at", label, payload',
    "queue_items": "id, task_id, kind, reason, priority, created_at, state, claimed_by, "
    "claimed_at, lease_expires_at, resolved_at, resolved_by, label, note",
}


def generate(duckdb: Any, target_events: int, folder: Path, seed: int) -> dict[str, int]:
    """Write a Parquet export with about ``target_events`` events; return the row counts."""
    connection = duckdb.connect()
    connection.execute(f"SELECT setseed({(seed % 1000) / 1000.0})")
    connection.execute(_PLAN.format(n_tasks=max(1, int(target_events / 2.5))))
    connection.execute(_TASKS)
    connection.execute(_ITEMS)
    connection.execute(_EVENTS.format(payload=PAYLOAD.replace("'", "''")))
    connection.execute(_QUEUE)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table in COLUMNS:
        path = str(folder / f"{table}.parquet").replace("'", "''")
        connection.execute(
            f"COPY (SELECT {COLUMNS[table]} FROM {table}) TO '{path}' (FORMAT parquet)"
        )
        counts[table] = int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    connection.close()
    return counts


def _arrow_batches(folder: Path, table: str, size: int = 200_000) -> Any:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(folder / f"{table}.parquet").iter_batches(batch_size=size):
        yield list(zip(*(column.to_pylist() for column in batch.columns), strict=True))


def load_sqlite(folder: Path, path: Path) -> str:
    from failwise import store

    url = f"sqlite:///{path}"
    store.open(url).close()  # the schema, its indexes and migrations
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    for table, columns in COLUMNS.items():
        marks = ", ".join("?" * len(columns.split(", ")))
        for rows in _arrow_batches(folder, table):
            connection.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return url


def load_postgres(folder: Path, server: str) -> tuple[str, str]:
    import psycopg

    from failwise import store

    schema = f"failwise_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in server else "?"
    url = f"{server}{sep}options=-csearch_path%3D{schema}"
    store.open(url).close()
    with psycopg.connect(url) as connection:
        for table, columns in COLUMNS.items():
            with connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for rows in _arrow_batches(folder, table):
                    for row in rows:
                        copy.write_row(row)
        connection.commit()
        connection.execute("ANALYZE")
    return url, schema


def drop_postgres(server: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def same(a: Any, b: Any) -> bool:
    """Whether two ProductMetrics agree (to rounding: backends sum in different orders)."""
    import math

    for name in a.metric_names():
        x, y = getattr(a, name), getattr(b, name)
        for u, v in ((x.value, y.value), (x.low, y.low), (x.high, y.high)):
            if not (math.isnan(u) and math.isnan(v)) and not math.isclose(
                u, v, rel_tol=1e-9, abs_tol=1e-12
            ):
                return False
    return a.n_tasks == b.n_tasks


def time_measure(source: Any, repeats: int) -> tuple[list[float], Any]:
    from failwise.outcomes import measure

    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = measure(source)
        seconds.append(time.perf_counter() - start)
    return seconds, result


def main() -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=3)
    parser.add_argument("--events", type=int, default=10_000_000, help="full size (events)")
    parser.add_argument("--small", type=int, default=1_000_000, help="smaller size (events)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FAILWISE_TEST_POSTGRES_URL", ""),
        help="PostgreSQL server URL (default $FAILWISE_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--no-sqlite-full", action="store_true", help="SQLite at the small size only"
    )
    args = parser.parse_args()
    h.ensure_failwise_importable()
    duckdb, why = h.optional_import("duckdb", extra="analytics")
    if duckdb is None:
        print(f"bench_measure needs DuckDB: {why}")
        return 1
    repeats = h.resolve_repeats(args, default_repeats=3)
    sizes = [2_000, 20_000] if args.quick else [args.small, args.events]
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="failwise-bench-measure-") as tmp:
        # DuckDB first, at every size, before the other backends load (and then flush,
        # vacuum or checkpoint) gigabytes that would compete with it for the machine.
        exports: dict[int, tuple[Path, dict[str, int], Any]] = {}
        duckdb_cases: dict[int, dict[str, Any]] = {}
        for size in sizes:
            folder = Path(tmp) / f"export-{size}"
            start = time.perf_counter()
            counts = generate(duckdb, size, folder, args.seed)
            generated_s = time.perf_counter() - start
            seconds, reference = time_measure(folder, repeats)
            exports[size] = (folder, counts, reference)
            duckdb_cases[size] = {
                "backend": "duckdb (parquet)",
                "events": counts["events"],
                **counts,
                "seconds": seconds,
                "median": statistics.median(seconds),
                "generate_s": generated_s,
            }
        for size in sizes:
            folder, counts, reference = exports[size]
            cases.append(duckdb_cases[size])
            agree: dict[str, bool] = {}
            if size == sizes[0] or not args.no_sqlite_full:
                start = time.perf_counter()
                url = load_sqlite(folder, Path(tmp) / f"events-{size}.db")
                load_s = time.perf_counter() - start
                seconds, result = time_measure(url, repeats)
                agree["sqlite"] = same(result, reference)
                cases.append(
                    {
                        "backend": "sqlite",
                        "events": counts["events"],
                        "seconds": seconds,
                        "median": statistics.median(seconds),
                        "load_s": load_s,
                        "same_metrics": agree["sqlite"],
                    }
                )
                (Path(tmp) / f"events-{size}.db").unlink()
            if args.postgres:
                start = time.perf_counter()
                url, schema = load_postgres(folder, args.postgres)
                load_s = time.perf_counter() - start
                try:
                    seconds, result = time_measure(url, repeats)
                finally:
                    drop_postgres(args.postgres, schema)
                cases.append(
                    {
                        "backend": "postgresql",
                        "events": counts["events"],
                        "seconds": seconds,
                        "median": statistics.median(seconds),
                        "load_s": load_s,
                        "same_metrics": same(result, reference),
                    }
                )
            else:
                cases.append(
                    {
                        "backend": "postgresql",
                        "events": counts["events"],
                        "unavailable": "no server: set FAILWISE_TEST_POSTGRES_URL",
                    }
                )
    rows = [
        [
            c["backend"],
            f"{c['events']:,}",
            h.format_seconds(c.get("median")) if "median" in c else c["unavailable"],
            h.format_seconds(min(c["seconds"])) if "seconds" in c else "—",
            str(c.get("same_metrics", "reference")),
        ]
        for c in cases
    ]
    h.print_table(
        f"failwise.outcomes.measure, median of {repeats} repeat(s)",
        ["backend", "events", "median", "min", "same metrics"],
        rows,
        caption="target: under 5 s for 10 million events with DuckDB",
    )
    payload = {
        "name": NAME,
        "quick": args.quick,
        "repeats": repeats,
        "sizes": sizes,
        "cases": cases,
        "target_s": {"duckdb_10M_events": 5.0},
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
