"""Fixtures of the outcome tests: the store tests' real SQLite file and PostgreSQL server."""

from __future__ import annotations

from tests.store import conftest as store_fixtures

# pytest finds fixtures by name: these make every store fixture usable here.
postgres_server = store_fixtures.postgres_server
postgres_url = store_fixtures.postgres_url
sqlite_url = store_fixtures.sqlite_url
store_url = store_fixtures.store_url
