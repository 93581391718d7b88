"""One table description: the DDL of both backends and the Parquet schema come from it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from failwise import store

_SQLITE_TYPES = {"pk": "INTEGER", "float": "REAL", "int": "INTEGER", "text": "TEXT"}


def test_the_sqlite_tables_have_the_described_columns(sqlite_url: str, tmp_path: Path) -> None:
    store.open(sqlite_url).close()
    with sqlite3.connect(tmp_path / "events.db") as connection:
        for name, table in store.TABLES.items():
            info = connection.execute(f"PRAGMA table_info({name})").fetchall()
            got = [(row[1], row[2], bool(row[3]), bool(row[5])) for row in info]
            assert got == [
                (
                    c.name,
                    _SQLITE_TYPES[c.type],
                    not c.nullable and not c.primary_key,
                    c.primary_key,
                )
                for c in table.columns
            ]


def test_the_postgresql_tables_have_the_described_columns(postgres_url: str) -> None:
    import psycopg

    store.open(postgres_url).close()
    types = {"pk": "bigint", "float": "double precision", "int": "integer", "text": "text"}
    with psycopg.connect(postgres_url) as connection:
        for name, table in store.TABLES.items():
            rows = connection.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = %s AND table_schema = current_schema() "
                "ORDER BY ordinal_position",
                (name,),
            ).fetchall()
            assert rows == [
                (c.name, types[c.type], "YES" if c.nullable else "NO") for c in table.columns
            ]


def test_the_export_schema_is_the_described_one() -> None:
    pa = pytest.importorskip("pyarrow")
    from failwise.export import TABLES

    for name, table in store.TABLES.items():
        schema = table.arrow_schema(pa)
        assert schema.names == list(table.names)
        assert [field.nullable for field in schema] == [c.nullable for c in table.columns]
        assert TABLES[name] == (
            tuple(
                (c.name, str(schema.field(c.name).type).replace("double", "float64"))
                for c in table.columns
            ),
            table.key,
        )
