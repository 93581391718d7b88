"""Fixtures for the store tests: a real SQLite file and a real PostgreSQL server.

``store_url`` runs each test on both backends. The PostgreSQL server is the one named by
``$FAILWISE_TEST_POSTGRES_URL`` or, failing that, one that ``scripts/postgres start``
installs (if needed) and starts once per session in a temporary folder. Each test gets a
schema of its own in that server. When no server can be had, the PostgreSQL tests fail
on CI (``CI=true``) and are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from failwise import store

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres"
HERE = Path(__file__).resolve().parent


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    message = f"no PostgreSQL server for the store tests: {reason}"
    if _on_ci():
        pytest.fail(message + " (CI=true: the PostgreSQL tests must run on CI)")
    pytest.skip(message)


def _start_server() -> tuple[str | None, str | None, str]:
    """Start a throw-away server; return (url, folder, error)."""
    if shutil.which("bash") is None:
        return None, None, "bash is not available to run scripts/postgres"
    folder = tempfile.mkdtemp(prefix="failwise-postgres-test-")
    try:
        done = subprocess.run(
            ["bash", str(POSTGRES_SCRIPT), "start", folder],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(folder, ignore_errors=True)
        return None, None, f"scripts/postgres start failed: {error}"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        shutil.rmtree(folder, ignore_errors=True)
        return None, None, f"scripts/postgres start exited {done.returncode}: {done.stderr[-800:]}"
    return lines[-1], folder, ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL database the tests may create schemas in."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'failwise[postgres]')")
    given = os.environ.get("FAILWISE_TEST_POSTGRES_URL", "").strip()
    if given:
        yield given
        return
    url, folder, error = _start_server()
    if url is None or folder is None:
        _unavailable(error)
        return
    try:
        yield url
    finally:
        subprocess.run(
            ["bash", str(POSTGRES_SCRIPT), "stop", folder],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _with_search_path(url: str, schema: str) -> str:
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}{option}"


@contextmanager
def temporary_schema(server: str, prefix: str = "failwise_test") -> Iterator[str]:
    """A URL of ``server`` whose search path is a new, empty schema, dropped on exit."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_search_path(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose search path is a fresh, empty schema (dropped afterwards)."""
    with temporary_schema(postgres_server) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A URL to a new, empty store on each backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    """An open store on each backend."""
    with store.open(store_url) as opened:
        yield opened


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> object:
    """The child-process entry points, importable by spawned processes."""
    monkeypatch.syspath_prepend(str(HERE))
    # Imported by its bare name from the folder just put on sys.path, so that spawned
    # children (which get the parent's sys.path) import the same module; mypy sees it as
    # tests.store.store_workers instead.
    import store_workers  # type: ignore[import-not-found]

    return store_workers
