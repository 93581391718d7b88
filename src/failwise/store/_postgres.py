"""The production backend: PostgreSQL through psycopg 3 and a connection pool.

Durability
----------
Writes run in one transaction per batch on a pooled connection; with PostgreSQL's
defaults (``fsync=on``, ``synchronous_commit=on``) ``COMMIT`` returns once the
transaction's WAL is flushed to disk, and only then does the writer wake the callers.
A server configured with ``synchronous_commit=off`` weakens this; failwise does not
change server settings.

Concurrency
-----------
Queue claims select with ``FOR UPDATE SKIP LOCKED``, so reviewers in many processes (or
on many machines) each lock a different item without waiting for one another.
Transactions that deadlock or fail to serialise are retried from the start.

Server restarts
---------------
While the server is down every write and read raises :class:`StoreError` (so nothing is
acknowledged that is not durable). The pool checks a connection before it hands it out,
so once the server is back, connections that sat idle through the restart are replaced
instead of failing the first requests.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from failwise.store._backend import Backend, Op, Row, T, Tx, render_sql
from failwise.store._decisions import RecordDecisions
from failwise.store._errors import StoreError
from failwise.store._schema import migrate
from failwise.store._url import StoreURL

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["EXTRA_HINT", "PostgresBackend"]

EXTRA_HINT = (
    "PostgreSQL stores need the `postgres` extra (psycopg 3 and psycopg-pool): "
    "pip install 'failwise[postgres]'."
)

#: Key of the advisory lock that serialises schema migrations between processes.
_MIGRATION_LOCK = 0x6661696C77697365  # "failwise"

#: Attempts at a transaction that deadlocked or failed to serialise.
_RETRIES = 8

#: Seconds the pool retries one lost connection before the next request starts anew.
_RECONNECT_S = 3.0


class _PostgresTx:
    backend = "postgresql"

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._cursor = connection.cursor()

    def execute(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._cursor
        cursor.execute(render_sql(template, "postgresql"), params)
        return cursor.fetchall() if cursor.description is not None else []

    def executemany(self, template: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(render_sql(template, "postgresql"), rows)


def _configure(connection: psycopg.Connection[Any]) -> None:
    """Session settings of every pooled connection.

    JIT compilation (PostgreSQL 11 and later) is off. The planner cannot estimate the rows
    of the per-task metric view's CTEs and overestimates them by orders of magnitude, so
    it JIT-compiles queries that run in a fraction of a second, for seconds: most of the
    time of ``measure`` and ``metric_series`` over a large window. The store's queries
    gain nothing from JIT.
    """
    connection.execute(
        "SELECT set_config('jit', 'off', false) "
        "WHERE current_setting('server_version_num')::int >= 110000"
    )


class PostgresBackend(Backend):
    """A PostgreSQL database reached through a :class:`psycopg_pool.ConnectionPool`.

    Parameters
    ----------
    url : StoreURL
        A parsed ``postgresql://`` URL.
    pool_size : int
        Most connections in the pool (the writer uses one at a time; readers the rest).
    connect_timeout_s : float
        How long to wait for the server when opening and when the pool needs a connection.
    """

    name = "postgresql"

    def __init__(
        self, url: StoreURL, *, pool_size: int, connect_timeout_s: float, create: bool = True
    ) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as error:
            raise StoreError(f"{EXTRA_HINT} ({error})") from None
        self._psycopg = psycopg
        self.redacted_url = url.redacted
        self._password = unquote(urlsplit(url.url).password or "")
        timeout = max(1, math.ceil(connect_timeout_s))
        try:
            with (
                psycopg.connect(url.url, connect_timeout=timeout, autocommit=True) as first,
                first.transaction(),
            ):
                first.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                self.schema_version = migrate(
                    _PostgresTx(first),
                    "postgresql",
                    now=time.time(),
                    url=self.redacted_url,
                    create=create,
                )
        except psycopg.Error as error:
            raise StoreError(
                f"Cannot open the PostgreSQL store {self.redacted_url}: "
                f"{self.describe_error(error)}. Check that the server is running and "
                "reachable, and that the user, password and database in the URL are right."
            ) from None
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url.url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": timeout},
            timeout=connect_timeout_s,
            name="failwise-store",
            open=True,
            # A connection left idle through a server restart is dead; checked (one empty
            # query) before it is handed out, it is replaced instead of failing a request.
            check=ConnectionPool.check_connection,
            configure=_configure,
            # The pool retries a lost connection with a doubling delay (1, 2, 4, … s) for
            # `reconnect_timeout`: after a long outage its next attempt can be a minute
            # away although the server is back. Giving up after a few seconds instead lets
            # the next request start a fresh attempt at once, so the store serves again
            # within about a second of the server's return, however long it was down.
            reconnect_timeout=_RECONNECT_S,
        )

    # ---------------------------------------------------------------- writes
    def transact(self, body: Callable[[Tx], T]) -> T:
        return self._retrying(body, in_transaction=True)

    def run_batch(self, ops: Sequence[Op]) -> list[tuple[bool, Any]]:
        singles = [op for op in ops if isinstance(op, RecordDecisions) and op.is_single]
        if len(singles) < len(ops):
            return super().run_batch(ops)
        # Only new tasks: one statement, committed on its own (one round trip, no BEGIN),
        # or, when some also queue items, two statements in one transaction.
        return self._retrying(
            lambda tx: RecordDecisions.run_singles_postgres(tx, singles),
            in_transaction=any(op.requests for op in singles),
        )

    def apply(self, tx: Tx, ops: Sequence[Op]) -> list[tuple[bool, Any]]:
        singles = {
            i: op for i, op in enumerate(ops) if isinstance(op, RecordDecisions) and op.is_single
        }
        if len(singles) < 2:
            return super().apply(tx, ops)
        outcomes = dict(
            zip(
                singles,
                RecordDecisions.run_singles_postgres(tx, list(singles.values())),
                strict=True,
            )
        )
        rest = [i for i in range(len(ops)) if i not in singles]
        outcomes.update(zip(rest, super().apply(tx, [ops[i] for i in rest]), strict=True))
        return [outcomes[i] for i in range(len(ops))]

    def _retrying(self, body: Callable[[Tx], T], *, in_transaction: bool) -> T:
        errors = self._psycopg.errors
        transient = (errors.DeadlockDetected, errors.SerializationFailure)
        for attempt in range(_RETRIES):
            try:
                with self._pool.connection() as connection:
                    if not in_transaction:
                        return body(_PostgresTx(connection))
                    with connection.transaction():
                        return body(_PostgresTx(connection))
            except transient:
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.0, 0.002 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------- reads
    def read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self._pool.connection() as connection:
                rows: list[Row] = connection.execute(
                    render_sql(template, "postgresql"), params
                ).fetchall()
                return rows
        except self._psycopg.Error as error:
            raise StoreError(
                f"Reading from {self.redacted_url} failed: {self.describe_error(error)}."
            ) from None

    # ---------------------------------------------------------------- errors
    def is_data_error(self, error: BaseException) -> bool:
        psycopg = self._psycopg
        return isinstance(
            error, (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError)
        )

    def describe_error(self, error: BaseException) -> str:
        text = " ".join(str(error).split())
        if self._password:
            text = text.replace(self._password, "***")
        return f"{type(error).__name__}: {text}"

    def close(self) -> None:
        self._pool.close()
