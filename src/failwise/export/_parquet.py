"""`to_parquet`: the store's tables as Parquet files, for DuckDB and other tools.

The export holds ``tasks.parquet``, ``events.parquet`` and ``queue_items.parquet`` (and the
monitor's ``task_features``, ``monitor_windows``, ``findings`` and ``quarantines``) with the
store's columns and types (from its one table description, :data:`failwise.store.TABLES`).
Tables are read in pages through the store's public ``table_pages`` (keyset pagination)
and written row group by row group, so the export runs in bounded memory; each file is
written under a temporary name and renamed when complete.
:func:`failwise.outcomes.measure` runs its SQL over the folder with DuckDB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store import TABLES as STORE_TABLES

__all__ = ["TABLES", "ExportSummary", "to_parquet"]

#: Each table: its columns as (name, Arrow type name), and its unique ordering key; from
#: the store's one table description (:data:`failwise.store.TABLES`).
TABLES: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    name: (
        tuple((column.name, column.arrow_type) for column in table.columns),
        table.key,
    )
    for name, table in STORE_TABLES.items()
}


@dataclass(frozen=True)
class ExportSummary:
    """Where the export went and how many rows each table has."""

    folder: Path
    rows: dict[str, int]

    @property
    def files(self) -> list[Path]:
        """The Parquet files written."""
        return [self.folder / f"{name}.parquet" for name in self.rows]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise InputError(
            "Exporting to Parquet needs pyarrow, which is not installed; install the "
            "`analytics` extra: pip install 'failwise[analytics]'."
        ) from None
    return pyarrow


def _check_folder(folder: Any) -> Path:
    """``folder`` as a path that is, or can be created as, a folder."""
    if not isinstance(folder, (str, os.PathLike)) or not str(folder).strip():
        raise InputError(f"`folder` must be a path to a folder; got {describe(folder)}.")
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise InputError(f"`folder` {str(target)!r} exists and is not a folder; pick another path.")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    f"`folder` {str(target)!r} cannot be created: {str(parent)!r} is a file, "
                    "not a folder; pick a path inside a folder."
                )
            break
    return target


def to_parquet(
    store: Any, folder: str | os.PathLike[str], *, batch_size: int = 100_000
) -> ExportSummary:
    """Write the store's tables to ``folder`` as Parquet files.

    Parameters
    ----------
    store : Store or str
        An open store, or a store URL (opened and closed here).
    folder : str or path
        Created if missing; existing export files in it are replaced.
    batch_size : int, default=100_000
        Rows read per query and written per row group.

    Returns
    -------
    ExportSummary

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> from failwise.export import to_parquet
    >>> folder = tempfile.mkdtemp()
    >>> with store.open(f"sqlite:///{folder}/events.db") as events:
    ...     _ = events.record_decision("t1", {"action": "answer", "label": 3})
    ...     summary = to_parquet(events, f"{folder}/export")
    >>> summary.rows["tasks"], summary.rows["events"], summary.rows["queue_items"]
    (1, 1, 0)
    """
    from failwise import store as store_module

    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise InputError(f"`batch_size` must be an int >= 1; got {describe(batch_size)}.")
    if not isinstance(store, (str, store_module.Store)):
        raise InputError(
            f"`store` must be a Store (failwise.store.open) or a store URL; got {describe(store)}."
        )
    pa = _pyarrow()
    target = _check_folder(folder)
    opened = store_module.open(store, create=False) if isinstance(store, str) else None
    source = opened if opened is not None else store
    counts: dict[str, int] = {}
    try:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                f"`folder` {str(target)!r} cannot be created ({error.strerror}); pick a path "
                "you can write to."
            ) from error
        for table in STORE_TABLES:
            names = STORE_TABLES[table].names
            schema = STORE_TABLES[table].arrow_schema(pa)
            final = target / f"{table}.parquet"
            partial = target / f".{table}.parquet.partial"
            total = 0
            with pa.parquet.ParquetWriter(str(partial), schema) as writer:
                for rows in source.table_pages(table, batch_size=int(batch_size)):
                    data = {
                        name: pa.array([row[i] for row in rows], type=schema.field(name).type)
                        for i, name in enumerate(names)
                    }
                    writer.write_table(pa.table(data, schema=schema))
                    total += len(rows)
            os.replace(partial, final)
            counts[table] = total
    finally:
        if opened is not None:
            opened.close()
    return ExportSummary(folder=target, rows=counts)
