"""The embedded backend: one SQLite file in WAL mode.

Durability
----------
Every write goes through one connection per process (the store's writer thread) inside
``BEGIN IMMEDIATE … COMMIT``. The database runs in WAL mode with ``synchronous=FULL``
(the default): SQLite appends the transaction's pages to the write-ahead log and
``fsync``\\ s the log before ``COMMIT`` returns, and only then does the writer wake the
callers of that batch. A call that has returned is therefore on disk: it survives a
``kill -9`` of the process and also an operating-system crash or power loss. Checkpoints
(copying the log back into the database file, automatic every 1000 pages) ``fsync`` the
database before the log is reused, so they never lose committed data.

With ``?synchronous=normal`` in the URL, SQLite skips the ``fsync`` at commit: a returned
call has reached the operating system (it survives ``kill -9`` of the process, which is
what the tests check) but the last transactions may be lost on power failure. It is
faster where ``fsync`` is slow.

Several processes may share one file (local disk only; WAL does not work over network
file systems): ``BEGIN IMMEDIATE`` serialises their writers and readers never block.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from failwise.store._backend import Backend, Row, T, Tx, render_sql
from failwise.store._errors import StoreError, no_store
from failwise.store._schema import migrate
from failwise.store._url import StoreURL

__all__ = ["SQLiteBackend"]

#: Errors that come from one operation's data rather than from the database as a whole.
_DATA_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    OverflowError,
    TypeError,
)


class _SQLiteTx:
    backend = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._connection.execute(render_sql(template, "sqlite"), params).fetchall()

    def executemany(self, template: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connection.executemany(render_sql(template, "sqlite"), rows)


class SQLiteBackend(Backend):
    """A SQLite database file shared by a writer connection and a pool of readers.

    Parameters
    ----------
    url : StoreURL
        A parsed ``sqlite:///`` URL.
    pool_size : int
        Most reader connections kept open.
    busy_timeout_s : float
        How long a writer waits for another process's write lock.
    """

    name = "sqlite"

    def __init__(
        self, url: StoreURL, *, pool_size: int, busy_timeout_s: float, create: bool = True
    ) -> None:
        assert url.path is not None
        self.redacted_url = url.redacted
        self._path = url.path
        self._synchronous = url.options.get("synchronous", "full").upper()
        self._busy_timeout_s = busy_timeout_s
        self._pool_size = pool_size
        self._idle: list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()
        self._check_path(create)
        writer: sqlite3.Connection | None = None
        try:
            writer = self._connect()
            mode = self._switch_to_wal(writer)
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"Cannot switch {self.redacted_url} to WAL mode (SQLite kept journal mode "
                    f"{mode!r}); WAL needs a local file system. Put the database on a local "
                    "disk."
                )
            writer.execute(f"PRAGMA synchronous={self._synchronous}")
            writer.execute("PRAGMA foreign_keys=ON")
            self._writer = writer
            self._tx = _SQLiteTx(writer)
            self.schema_version = self.transact(
                lambda tx: migrate(
                    tx, "sqlite", now=time.time(), url=self.redacted_url, create=create
                )
            )
        except BaseException as error:
            if writer is not None:
                writer.close()
            if not isinstance(error, sqlite3.Error):
                raise
            raise StoreError(
                f"Cannot open the SQLite store {self.redacted_url} ({self._path.resolve()}): "
                f"{error}. Check that the path is a SQLite database (or a new file) that this "
                "process may read and write."
            ) from None

    def _switch_to_wal(self, writer: sqlite3.Connection) -> object:
        """Set WAL mode, waiting up to ``busy_timeout_s`` while another process creates the file.

        SQLite answers "database is locked" to this pragma at once, without its busy handler,
        while another connection is initialising the same new database.
        """
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                return writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                text = str(error).lower()
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _check_path(self, create: bool) -> None:
        if not create and not self._path.is_file():
            raise no_store(
                self.redacted_url,
                f"the file {self._path.resolve()} does not exist"
                if not self._path.is_dir()
                else f"{self._path.resolve()} is a folder",
            )
        folder = self._path.resolve().parent
        if not folder.is_dir():
            raise StoreError(
                f"Cannot open the SQLite store {self.redacted_url}: the folder {folder} does "
                "not exist. Create it first (the store creates the file, not its folders)."
            )
        if self._path.is_dir():
            raise StoreError(
                f"Cannot open the SQLite store {self.redacted_url}: {self._path.resolve()} is "
                "a folder; name a file inside it, e.g. 'sqlite:///path/to/events.db'."
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )

    # ---------------------------------------------------------------- writes
    def transact(self, body: Callable[[Tx], T]) -> T:
        connection = self._writer
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(
                f"Could not take the write lock of {self.redacted_url} within "
                f"{self._busy_timeout_s:g} s ({error}); another process holds it. Raise "
                "`busy_timeout_s`, or find the process that keeps a write transaction open."
            ) from None
        try:
            result = body(self._tx)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return result

    # ---------------------------------------------------------------- reads
    def read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._idle_lock:
            connection = self._idle.pop() if self._idle else None
        try:
            if connection is None:
                connection = self._connect()
                connection.execute("PRAGMA query_only=ON")
            rows = connection.execute(render_sql(template, "sqlite"), params).fetchall()
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise StoreError(f"Reading from {self.redacted_url} failed: {error}.") from None
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        with self._idle_lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(connection)
                connection = None
        if connection is not None:
            connection.close()
        return rows

    # ---------------------------------------------------------------- errors
    def is_data_error(self, error: BaseException) -> bool:
        return isinstance(error, _DATA_ERRORS)

    def describe_error(self, error: BaseException) -> str:
        return f"{type(error).__name__}: {error}"

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        self._writer.close()
