"""`measure` on Apache Spark: the same metric SQL over a Parquet export, the same numbers.

A few thousand replayed tasks (the digits system, five replays with different seeds) are
exported to Parquet; ``measure(folder, engine="spark")`` in local mode (``local[2]``)
must give DuckDB's numbers — counts exact, every value and interval bound to 1e-9.
One Spark session serves the whole module (its start-up costs seconds). Spark needs a
Java runtime: without one these tests are skipped, except on CI (``CI=true``), where
``scripts/system-deps`` installs it and they must run.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.export import to_parquet
from failwise.outcomes import Estimate, OutcomeModel, ProductMetrics, measure
from failwise.testing import digits_system, replay


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "Spark needs a Java runtime; none found (bash scripts/system-deps installs one)"
        if _on_ci():
            pytest.fail(reason + " (CI=true: the Spark parity tests must run on CI)")
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("failwise-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A Parquet export of five digits replays (about 3,000 tasks), and its store URL."""
    folder = tmp_path_factory.mktemp("spark")
    url = f"sqlite:///{folder / 'events.db'}"
    system = digits_system()
    with store.open(url) as events:
        for seed in range(5):
            guard = system.guard(store=events, audit_rate=0.3, random_state=seed)
            replay(guard, system.X_test, system.y_test, random_state=seed)
        to_parquet(events, folder / "export")
    return folder / "export", url


def _assert_same(spark_metrics: ProductMetrics, duckdb_metrics: ProductMetrics) -> None:
    for field in fields(ProductMetrics):
        ours, theirs = getattr(spark_metrics, field.name), getattr(duckdb_metrics, field.name)
        if isinstance(theirs, Estimate):
            for part in ("value", "low", "high"):
                a, b = getattr(ours, part), getattr(theirs, part)
                same = (math.isnan(a) and math.isnan(b)) or math.isclose(
                    a, b, rel_tol=1e-9, abs_tol=1e-9
                )
                assert same, f"{field.name}.{part}: spark {a!r}, duckdb {b!r}"
        else:
            assert ours == theirs, f"{field.name}: spark {ours!r}, duckdb {theirs!r}"


@pytest.mark.slow
def test_spark_measures_an_export_with_duckdbs_numbers(
    spark: Any, export: tuple[Path, str]
) -> None:
    folder, url = export
    duckdb_metrics = measure(folder)
    assert duckdb_metrics.n_tasks > 2_500
    assert duckdb_metrics == measure(url)
    # Nothing degenerate: every metric has data behind it.
    for field in fields(ProductMetrics):
        value = getattr(duckdb_metrics, field.name)
        if isinstance(value, Estimate):
            assert not math.isnan(value.value), field.name
    # The export's tables are read in a session of their own: the caller's views stay.
    spark.createDataFrame([(1,)], "x INT").createOrReplaceTempView("tasks")
    _assert_same(measure(folder, engine="spark"), duckdb_metrics)
    assert spark.table("tasks").columns == ["x"]
    spark.catalog.dropTempView("tasks")


@pytest.mark.slow
def test_a_spark_session_with_the_tables_measures_a_window_as_duckdb_does(
    spark: Any, export: tuple[Path, str]
) -> None:
    folder, _ = export
    session = spark.newSession()
    for name in ("tasks", "events", "queue_items"):
        session.read.parquet(str(folder / f"{name}.parquet")).createOrReplaceTempView(name)
    created = sorted(row[0] for row in session.sql("SELECT created_at FROM tasks").collect())
    since, until = created[len(created) // 4], created[3 * len(created) // 4]
    model = OutcomeModel(deadline_s=600.0)
    duckdb_metrics = measure(folder, since, until, outcome_model=model, interval_level=0.9)
    assert 0 < duckdb_metrics.n_tasks < len(created)
    spark_metrics = measure(session, since, until, outcome_model=model, interval_level=0.9)
    _assert_same(spark_metrics, duckdb_metrics)
    assert session.catalog.listTables() != []  # its own views are left in place


def test_engine_must_be_duckdb_or_spark(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"`engine` must be .*'duckdb'.*'spark'.*got 'pandas'"):
        measure(tmp_path, engine="pandas")


def test_engine_is_refused_for_a_source_with_an_engine_of_its_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as events:
        events.record_decision("t1", {"action": "answer", "label": 1}, at=1.0)
        with pytest.raises(InputError, match=r"`engine` chooses how a Parquet export folder"):
            measure(events, engine="duckdb")
    with pytest.raises(InputError, match=r"got engine='spark' with the store URL 'sqlite:///"):
        measure(url, engine="spark")


def test_a_folder_that_is_no_export_is_refused_before_spark_starts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"is not a failwise Parquet export: tasks\.parquet"):
        measure(tmp_path, engine="spark")
