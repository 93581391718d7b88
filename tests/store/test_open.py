"""Opening a store: URLs, schema creation and migration, unreachable databases."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from failwise import store
from failwise.exceptions import InputError

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_open_creates_the_schema_at_the_current_version(store_url: str) -> None:
    with store.open(store_url) as opened:
        assert opened.schema_version == store.SCHEMA_VERSION
        assert opened.queue.pending() == 0
        assert list(opened.iter_events()) == []


def test_reopening_keeps_the_data_and_applies_no_migration_twice(store_url: str) -> None:
    with store.open(store_url) as opened:
        opened.record_decision("t1", {"action": "answer", "label": 1})
    with store.open(store_url) as reopened:
        assert reopened.task("t1").label == 1
        rows = reopened._read("SELECT version FROM schema_version")
    assert sorted(int(r[0]) for r in rows) == list(range(1, store.SCHEMA_VERSION + 1))


def test_processes_that_create_the_schema_at_once_all_succeed(store_url: str, workers: Any) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    processes = [
        context.Process(target=workers.open_and_close, args=(store_url, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == [("ok", store.SCHEMA_VERSION)] * 4
    with store.open(store_url) as opened:
        rows = opened._read("SELECT COUNT(*) FROM schema_version")
    assert int(rows[0][0]) == store.SCHEMA_VERSION


def test_a_database_from_a_newer_failwise_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    store.open(sqlite_url).close()
    with sqlite3.connect(tmp_path / "events.db") as connection:
        connection.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', 0)",
            (store.SCHEMA_VERSION + 1,),
        )
    newer = store.SCHEMA_VERSION + 1
    with pytest.raises(store.StoreError, match=rf"schema version {newer}, newer than .* Upgrade"):
        store.open(sqlite_url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@host/db", r"Unsupported store URL 'mysql://u:\*\*\*@host/db'"),
        ("events.db", r"Unsupported store URL 'events.db': expected 'sqlite:///"),
        ("sqlite://events.db", r"three slashes before the path"),
        ("sqlite:///:memory:", r"needs a file path.*In-memory databases cannot be shared"),
        ("sqlite:///", r"needs a file path"),
        ("sqlite:///x.db?journal=off", r"Unknown option 'journal' in SQLite URL"),
        ("sqlite:///x.db?synchronous=off", r"synchronous='off' is not one of \['full', 'normal'\]"),
        ("", r"`url` must be a database URL"),
    ],
)
def test_malformed_urls_are_refused_with_the_accepted_forms(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        store.open(url)


def test_a_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InputError, match=r"`url` must be a database URL .* got \w*Path"):
        store.open(Path("events.db"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("pool_size", 0, r"`pool_size` must be an int >= 1; got 0"),
        ("max_batch", 2.5, r"`max_batch` must be an int >= 1; got 2.5"),
        ("busy_timeout_s", -1, r"`busy_timeout_s` must be a finite number of seconds > 0"),
        ("connect_timeout_s", float("nan"), r"`connect_timeout_s` must be a finite number"),
    ],
)
def test_bad_options_are_refused(sqlite_url: str, option: str, value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        store.open(sqlite_url, **{option: value})


def test_sqlite_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/events.db"
    with pytest.raises(store.StoreError, match=r"the folder .*missing does not exist"):
        store.open(url)


def test_sqlite_on_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the pages of a SQLite database" * 100)
    with pytest.raises(store.StoreError, match=r"Cannot open the SQLite store .*notes.db"):
        store.open(f"sqlite:///{path}")


def test_sqlite_relative_paths_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with store.open("sqlite:///relative.db?synchronous=normal") as opened:
        opened.record_decision("t", {"action": "abstain"})
    assert (tmp_path / "relative.db").is_file()


def test_an_unreachable_postgresql_server_is_named_without_its_password() -> None:
    pytest.importorskip("psycopg", reason="needs the postgres extra")
    url = f"postgresql://app:hunter2secret@127.0.0.1:{_free_port()}/events"
    with pytest.raises(store.StoreError) as raised:
        store.open(url, connect_timeout_s=2)
    message = str(raised.value)
    assert "hunter2secret" not in message
    assert "Cannot open the PostgreSQL store postgresql://app:***@127.0.0.1:" in message
    assert "Check that the server is running" in message


def test_a_wrong_password_is_reported_without_the_password(postgres_server: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(postgres_server)
    url = f"postgresql://{parts.username}:not-the-password-42@{parts.hostname}:{parts.port}{parts.path}"
    with pytest.raises(store.StoreError, match=r"failwise:\*\*\*@") as raised:
        store.open(url, connect_timeout_s=5)
    assert "not-the-password-42" not in str(raised.value)


def test_without_psycopg_the_error_names_the_postgres_extra() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"
        "from failwise import store\n"
        "try:\n"
        "    store.open('postgresql://u:pw@127.0.0.1:1/db')\n"
        "except store.StoreError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'failwise[postgres]'" in done.stdout


def test_redact_hides_passwords_in_the_authority_and_the_query() -> None:
    assert store.redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert (
        store.redact("postgresql://h/db?user=u&password=secret&sslmode=require")
        == "postgresql://h/db?user=u&password=***&sslmode=require"
    )
    assert store.redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_closed_store_refuses_reads_and_writes(store_url: str) -> None:
    opened = store.open(store_url)
    opened.record_decision("t", {"action": "answer", "label": 0})
    opened.close()
    opened.close()  # closing twice is harmless
    assert "closed" in repr(opened)
    with pytest.raises(store.StoreError, match=r"is closed; open a new one"):
        opened.record_decision("u", {"action": "answer"})
    with pytest.raises(store.StoreError, match=r"is closed"):
        opened.events("t")
    with pytest.raises(store.StoreError, match=r"is closed"):
        opened.queue.claim("alice")


def test_open_without_create_refuses_a_missing_sqlite_file_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(
        store.StoreError,
        match=r"No failwise store at sqlite:///.*typo\.db: the file .*typo\.db does not exist\. "
        r"Expected the URL of an existing store .*Reading does not create a store\.",
    ):
        store.open(f"sqlite:///{path}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_open_without_create_refuses_a_database_without_the_store_tables(
    store_url: str, tmp_path: Path
) -> None:
    if store_url.startswith("sqlite"):
        sqlite3.connect(tmp_path / "events.db").close()  # an empty SQLite database
    for _ in range(2):  # the refused open created nothing, so it is refused again
        with pytest.raises(store.StoreError, match=r"the database holds no failwise tables"):
            store.open(store_url, create=False)
    if store_url.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "events.db") as connection:
            assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_open_without_create_reads_an_existing_store(store_url: str) -> None:
    with store.open(store_url) as events:
        events.record_decision("t", {"action": "answer", "label": 1}, at=5.0)
    with store.open(store_url, create=False) as events:
        assert events.task("t").created_at == 5.0


def test_create_must_be_a_bool(sqlite_url: str) -> None:
    with pytest.raises(InputError, match=r"`create` must be True or False; got 'no'"):
        store.open(sqlite_url, create="no")  # type: ignore[arg-type]


def test_postgres_connections_do_not_jit_compile(postgres_url: str) -> None:
    with store.open(postgres_url) as opened:
        opened.record_decision("t1", {"action": "answer", "label": 1})
        assert opened._read("SHOW jit") == [("off",)]
        assert opened.task("t1").label == 1
