"""The SQL definitions of the measured metrics, and where they run.

One copy, over the store's per-task view ``task_view`` (see
:meth:`failwise.store.Store.query_task_view`), runs unchanged on SQLite, PostgreSQL and
DuckDB (over a Parquet export), and on Apache Spark SQL with the one spelling Spark lacks
adapted by :func:`in_dialect`. Only standard SQL is used: ``CASE``, ``COALESCE``, grouped
``SUM``, ``ROW_NUMBER() OVER`` and ``?`` parameters. The parameters are the view's
``since`` and ``until``, then ``deadline_s``, then (for the quantiles) the ranks.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from failwise._params import Options, check_param
from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = [
    "ENGINES",
    "METRIC_VIEW_SQL",
    "QUANTILE_SELECT",
    "SUMS_COLUMNS",
    "SUMS_SELECT",
    "Runner",
    "full_sql",
    "in_dialect",
    "runner",
]

#: The engines that read a Parquet export.
ENGINES = ("duckdb", "spark")

#: What an engine spells differently from the standard SQL of the definitions: pairs of
#: (standard, engine's). The only place a dialect is adapted; SQLite, PostgreSQL and
#: DuckDB need nothing.
_DIALECTS: dict[str, tuple[tuple[str, str], ...]] = {
    "spark": (("DOUBLE PRECISION", "DOUBLE"),),  # Spark SQL has DOUBLE only
}

#: The tables of a store or an export (imported from the store only when used).
_TABLES = ("tasks", "events", "queue_items")

#: The per-task metric view ``tasks_view`` over ``task_view``; parameter: deadline_s.
METRIC_VIEW_SQL = """
WITH p AS (
    SELECT CAST(? AS DOUBLE PRECISION) AS deadline_s
),
q AS (
    SELECT
        v.task_id,
        v.created_at,
        v.action,
        CASE WHEN v.action IN ('answer', 'fallback') THEN 1 ELSE 0 END AS automatic,
        CASE WHEN v.action IN ('answer', 'fallback')
                  OR (v.action = 'clarify' AND v.choice_label IS NOT NULL)
             THEN 1 ELSE 0 END AS delivered,
        CASE WHEN v.escalated_at IS NOT NULL THEN 1 ELSE 0 END AS escalated,
        CASE WHEN v.negative_at IS NOT NULL
                  AND (v.resolved_at IS NULL OR v.negative_at < v.resolved_at)
             THEN 1 ELSE 0 END AS negative_first,
        CASE WHEN v.accepted_at IS NOT NULL
                  AND (v.resolved_at IS NULL OR v.accepted_at < v.resolved_at)
             THEN 1 ELSE 0 END AS accepted_first,
        CASE WHEN v.resolved_at IS NOT NULL
                  AND v.resolved_at - v.created_at <= p.deadline_s
                  AND (v.last_negative_at IS NULL OR v.last_negative_at < v.resolved_at)
             THEN 1 ELSE 0 END AS human_done,
        COALESCE(v.audited, 0) AS audited,
        CASE WHEN v.audited = 1
                  AND ((v.action = 'clarify' AND v.audit_label = v.choice_label)
                       OR (v.action <> 'clarify' AND v.audit_label = v.label)
                       OR (v.action = 'fallback' AND v.audit_label = -1))
             THEN 1 ELSE 0 END AS audit_right,
        CASE WHEN v.action = 'clarify' THEN v.choice_at - v.created_at
             ELSE COALESCE(v.accepted_at, v.created_at) - v.created_at END AS first_s,
        v.resolved_at - v.created_at AS resolved_s,
        COALESCE(v.human_s, 0.0) AS human_s,
        p.deadline_s
    FROM task_view v CROSS JOIN p
),
r AS (
    SELECT
        q.*,
        CASE WHEN delivered = 1 AND (negative_first = 1
                  OR (escalated = 1 AND action <> 'escalate'))
             THEN 1 ELSE 0 END AS wrong_first
    FROM q
),
s AS (
    SELECT
        r.*,
        CASE WHEN automatic = 1 AND wrong_first = 0 THEN 1 ELSE 0 END AS presumed,
        CASE WHEN action = 'clarify' AND delivered = 1 AND wrong_first = 0
             THEN 1 ELSE 0 END AS picked,
        CASE WHEN first_s <= deadline_s AND wrong_first = 0
                  AND ((action = 'abstain' AND accepted_first = 1 AND negative_first = 0)
                       OR (delivered = 1 AND audited = 1 AND audit_right = 1))
             THEN 1 ELSE 0 END AS first_done
    FROM r
),
m AS (
    SELECT
        s.*,
        CASE WHEN presumed = 1 AND audited = 0 AND first_s <= deadline_s
             THEN 1 ELSE 0 END AS presumed_done,
        CASE WHEN picked = 1 AND audited = 0 AND first_s <= deadline_s
             THEN 1 ELSE 0 END AS picked_done,
        CASE WHEN first_done = 0 AND human_done = 1
                  AND NOT ((presumed = 1 OR picked = 1) AND audited = 0)
             THEN 1 ELSE 0 END AS resolved_done
    FROM s
),
tasks_view AS (
    SELECT
        m.*,
        CASE WHEN first_done = 1 OR presumed_done = 1 OR picked_done = 1 THEN first_s
             WHEN resolved_done = 1 THEN resolved_s END AS completed_s
    FROM m
)
"""

#: The sums every measured metric is computed from, as the columns of a ``SELECT``.
SUMS_COLUMNS = """
    COUNT(*) AS n_tasks,
    SUM(automatic) AS n_automatic,
    SUM(presumed) AS n_presumed,
    SUM(presumed * audited) AS n_audited,
    SUM(presumed * audited * (1 - audit_right)) AS n_audited_wrong,
    SUM(wrong_first) AS n_wrong_first,
    SUM(wrong_first * resolved_done) AS n_recovered,
    SUM(escalated) AS n_escalated,
    SUM(first_done) + SUM(resolved_done) AS n_completed_known,
    SUM(presumed_done) AS n_presumed_done,
    SUM(picked) AS n_picked,
    SUM(picked * audited) AS n_picked_audited,
    SUM(picked * audited * (1 - audit_right)) AS n_picked_audited_wrong,
    SUM(picked_done) AS n_picked_done,
    SUM(human_s) AS human_s,
    SUM(human_s * human_s) AS human_s2,
    SUM(CASE WHEN completed_s IS NOT NULL THEN 1 ELSE 0 END) AS n_timed
"""

#: Sums over the tasks of the window; one row.
SUMS_SELECT = f"SELECT {SUMS_COLUMNS} FROM tasks_view"

#: Times to correct output at the requested 0-based ranks (bound as a parenthesised list).
QUANTILE_SELECT = """
SELECT ranked.position, ranked.completed_s
FROM (
    SELECT completed_s, ROW_NUMBER() OVER (ORDER BY completed_s) - 1 AS position
    FROM tasks_view
    WHERE completed_s IS NOT NULL
) AS ranked
WHERE ranked.position IN ({ranks})
"""


def full_sql(select: str) -> str:
    """``select`` (over ``tasks_view``) as one query over the store's tables.

    Parameters: since, until, deadline_s, then ``select``'s own.
    """
    from failwise.store import task_view_sql

    return task_view_sql(METRIC_VIEW_SQL + select)


def in_dialect(sql: str, engine: str) -> str:
    """``sql`` (the standard spelling of the definitions) as ``engine`` reads it."""
    for standard, spelling in _DIALECTS.get(engine, ()):
        sql = sql.replace(standard, spelling)
    return sql


#: Columns of the metric view that the two final queries read.
_VIEW_COLUMNS = (
    "created_at, action, automatic, presumed, audited, audit_right, wrong_first, "
    "resolved_done, escalated, first_done, presumed_done, picked, picked_done, human_s, completed_s"
)

#: Runs one final select (SUMS_SELECT or QUANTILE_SELECT) with all the parameters.
Runner = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def _duckdb_module() -> Any:
    try:
        import duckdb
    except ImportError:
        raise InputError(
            "Measuring a Parquet export needs DuckDB, which is not installed; install the "
            "`analytics` extra: pip install 'failwise[analytics]'."
        ) from None
    return duckdb


def _export_files(folder: Path) -> dict[str, str]:
    missing = [name for name in _TABLES if not (folder / f"{name}.parquet").is_file()]
    if missing:
        raise InputError(
            f"{str(folder)!r} is not a failwise Parquet export: "
            f"{', '.join(f'{m}.parquet' for m in missing)} missing. Write one with "
            "`failwise export --store URL --to DIR`."
        )
    return {name: str((folder / f"{name}.parquet").resolve()) for name in _TABLES}


def _parquet_connection(folder: Path) -> Any:
    files = _export_files(folder)
    duckdb = _duckdb_module()
    connection = duckdb.connect()
    for name, path in files.items():
        quoted = path.replace("'", "''")
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{quoted}')")
    return connection


def _store_runner(store: Any) -> Runner:
    def run(select: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows = store.query_task_view(
            METRIC_VIEW_SQL + select, params[2:], since=params[0], until=params[1]
        )
        return [tuple(row) for row in rows]

    return run


def _duckdb_runner(connection: Any) -> tuple[Runner, Callable[[], None]]:
    """DuckDB: the metric view is computed once into a temporary table, then both final
    queries read it (the view is the expensive part; a store reruns it per query)."""
    table = f"failwise_measure_{uuid.uuid4().hex[:12]}"
    done: dict[tuple[Any, ...], bool] = {}
    materialise = full_sql(f" SELECT {_VIEW_COLUMNS} FROM tasks_view")

    def run(select: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        view_params = tuple(params[:3])
        if view_params not in done:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
            connection.execute(f"CREATE TEMP TABLE {table} AS {materialise}", list(view_params))
            done.clear()
            done[view_params] = True
        final = f"WITH tasks_view AS (SELECT * FROM {table}) {select}"
        rows = connection.execute(final, list(params[3:])).fetchall()
        return [tuple(row) for row in rows]

    def drop() -> None:
        connection.execute(f"DROP TABLE IF EXISTS {table}")

    return run, drop


def _spark_session_class() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "Measuring a Parquet export with engine='spark' needs pyspark, which is not "
            "installed; install the `spark` extra: pip install 'failwise[spark]'."
        ) from None
    return SparkSession


def _spark_parquet_session(folder: Path) -> Any:
    """A Spark session of its own (its own temporary views, the active session's
    SparkContext) with the export's tables as views."""
    files = _export_files(folder)
    spark_session = _spark_session_class()
    active = spark_session.getActiveSession()
    if active is None and not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise InputError(
            "engine='spark' starts a local Spark session, which needs a Java runtime; none "
            "was found (no `java` on PATH, no JAVA_HOME). Install one (Debian: apt-get "
            "install openjdk-17-jre-headless), or start a SparkSession before measuring."
        )
    parent = active if active is not None else spark_session.builder.getOrCreate()
    session = parent.newSession()
    for name, path in files.items():
        session.read.parquet(path).createOrReplaceTempView(name)
    return session


def _spark_runner(session: Any) -> tuple[Runner, Callable[[], None]]:
    """Spark: as DuckDB, the metric view is computed once (a cached temporary view) and
    both final queries read it."""
    view = f"failwise_measure_{uuid.uuid4().hex[:12]}"
    cached: dict[tuple[Any, ...], Any] = {}
    materialise = in_dialect(full_sql(f" SELECT {_VIEW_COLUMNS} FROM tasks_view"), "spark")

    def drop() -> None:
        for frame in cached.values():
            frame.unpersist()
        cached.clear()
        session.catalog.dropTempView(view)

    def run(select: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        view_params = tuple(params[:3])
        if view_params not in cached:
            drop()
            frame = session.sql(materialise, args=list(view_params)).cache()
            frame.createOrReplaceTempView(view)
            cached[view_params] = frame
        final = in_dialect(f"WITH tasks_view AS (SELECT * FROM {view}) {select}", "spark")
        rows = session.sql(final, args=list(params[3:]) or None).collect()
        return [tuple(row) for row in rows]

    return run, drop


def _is_duckdb(source: Any) -> bool:
    return type(source).__module__.split(".")[0] in ("duckdb", "_duckdb") and hasattr(
        source, "execute"
    )


def _is_spark(source: Any) -> bool:
    return type(source).__module__.split(".")[0] == "pyspark" and hasattr(source, "sql")


def _parquet_runner(folder: Path, engine: str) -> tuple[Runner, Callable[[], None]]:
    if engine == "spark":
        session = _spark_parquet_session(folder)
        run, drop = _spark_runner(session)

        def close() -> None:
            drop()
            for name in _TABLES:
                session.catalog.dropTempView(name)

        return run, close
    connection = _parquet_connection(folder)
    run, _ = _duckdb_runner(connection)
    return run, connection.close


def runner(source: Any, engine: str | None = None) -> tuple[Runner, Callable[[], None]]:
    """A query runner over ``source`` and what closes what this call opened.

    ``engine`` (``"duckdb"``, the default, or ``"spark"``) reads a Parquet export folder;
    it is refused for any other source, which has an engine of its own.
    """
    from failwise import store as store_module

    check_param("engine", engine, [None, Options(ENGINES)], where="measure", default=None)
    folder = isinstance(source, (str, os.PathLike)) and "://" not in os.fspath(source)
    if engine is not None and not folder:
        given = f"the store URL {source!r}" if isinstance(source, str) else describe(source)
        raise InputError(
            f"`engine` chooses how a Parquet export folder is read; got engine={engine!r} "
            f"with {given}, which is read by its own engine. Drop `engine`, or pass the "
            "folder written by `failwise export`."
        )
    if isinstance(source, store_module.Store):
        return _store_runner(source), lambda: None
    if _is_duckdb(source):
        return _duckdb_runner(source)
    if _is_spark(source):
        return _spark_runner(source)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if "://" in text:
            opened = store_module.open(text, create=False)
            return _store_runner(opened), opened.close
        path = Path(text)
        if not path.is_dir():
            raise InputError(
                f"`source` {text!r} is neither a store URL (sqlite:///…, postgresql://…) nor "
                "an existing folder with a Parquet export."
            )
        return _parquet_runner(path, engine or "duckdb")
    raise InputError(
        f"`source` must be a Store (failwise.store.open), a store URL, a DuckDB connection "
        f"or SparkSession with tasks/events/queue_items tables or views, or a Parquet "
        f"export folder; got {describe(source)}."
    )
