"""`to_parquet` and `failwise export`: the store's tables as Parquet, measured by DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from failwise import store
from failwise.cli import app
from failwise.exceptions import InputError
from failwise.export import TABLES, to_parquet
from failwise.outcomes import measure

pq = pytest.importorskip("pyarrow.parquet")


def _fill(url: str, n: int = 25) -> None:
    with store.open(url) as events:
        for i in range(n):
            events.record_decision(f"t{i}", {"action": "answer", "label": i % 3}, at=100.0 + i)
            events.feedback(f"t{i}", "accepted", at=101.0 + i)
        events.queue.enqueue("t0", "audit", "sampled", at=200.0)
        item = events.queue.claim("ann", at=210.0)
        assert item is not None
        events.queue.resolve(item.id, 0, reviewer="ann", at=330.0)


def test_export_writes_every_table_in_pages_with_the_store_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    _fill(url)
    summary = to_parquet(url, tmp_path / "out", batch_size=7)
    monitor_tables = {"task_features": 0, "monitor_windows": 0, "findings": 0, "quarantines": 0}
    assert summary.rows == {"tasks": 25, "events": 53, "queue_items": 1, **monitor_tables}
    for name, (columns, _) in TABLES.items():
        table = pq.read_table(tmp_path / "out" / f"{name}.parquet")
        assert table.column_names == [c for c, _ in columns]
        assert table.num_rows == summary.rows[name]
    events = pq.read_table(tmp_path / "out" / "events.parquet").column("id").to_pylist()
    assert events == sorted(events)
    assert len(set(events)) == 53


def test_measure_over_the_export_equals_measure_over_the_store(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    _fill(url)
    to_parquet(url, tmp_path / "out")
    assert measure(tmp_path / "out") == measure(url)


def test_cli_export_prints_the_row_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    _fill(url, 3)
    result = CliRunner().invoke(app, ["export", "--store", url, "--to", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "events.parquet" in result.output
    assert (tmp_path / "x" / "tasks.parquet").is_file()
    bad = CliRunner().invoke(app, ["export", "--store", "mysql://x", "--to", str(tmp_path)])
    assert bad.exit_code == 2
    assert "error" in bad.output


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"`batch_size` must be an int >= 1; got int 0"):
        to_parquet(f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "o", batch_size=0)
    with pytest.raises(InputError, match=r"`store` must be a Store .* got int 3"):
        to_parquet(3, tmp_path / "o")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"exists and is not a folder"):
        to_parquet(f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "file")
    with pytest.raises(InputError, match=r"cannot be created: .*file' is a file, not a folder"):
        to_parquet(f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "file" / "export")
    with pytest.raises(InputError, match=r"`folder` must be a path to a folder; got int 3"):
        to_parquet(f"sqlite:///{tmp_path / 'e.db'}", 3)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_cli_export_from_a_missing_sqlite_file_exits_2_and_creates_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'evnets.db'}"
    result = CliRunner().invoke(app, ["export", "--store", url, "--to", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "No failwise store at sqlite:///" in lines[0]
    assert "evnets.db does not exist" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_measure_of_a_missing_sqlite_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match=r"No failwise store at .*missing\.db"):
        measure(f"sqlite:///{tmp_path / 'missing.db'}")
    assert list(tmp_path.iterdir()) == []
