"""What the monitor keeps in the store: task features, window statistics, findings, quarantines.

Features are written by :meth:`~failwise.store.Store.record_decisions` (``features=``), in
the decision's transaction; everything else here is written and read by
:mod:`failwise.monitor` through the methods of :class:`MonitorLog`, which
:class:`~failwise.store.Store` inherits. Vectors are stored as base64 text (features as
little-endian float16, quarantine centres as float32) so that the same columns exist on
SQLite, PostgreSQL and in the Parquet export.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Row, Tx
from failwise.store._checks import check_text, dump_json
from failwise.store._errors import StoreError

__all__ = [
    "FINDING_SEVERITIES",
    "MONITOR_ROW_COLUMNS",
    "FeatureRows",
    "MonitorLog",
    "QuarantineZone",
    "StoredFinding",
    "StoredWindow",
    "WindowConflictError",
    "decode_vectors",
    "encode_features",
]

FINDING_SEVERITIES: Final = ("alert", "change")

#: Most dimensions a stored feature vector may have.
MAX_FEATURE_DIMS: Final = 4096

_INSERT_FEATURES = "INSERT INTO task_features (task_id, dims, vector) VALUES (?, ?, ?)"


class WindowConflictError(StoreError):
    """Another monitor run stored a window of the same monitor first; nothing was written."""


def encode_features(vector: ArrayLike, name: str = "features") -> tuple[int, str]:
    """``(dims, base64 text)`` of one feature vector as little-endian float16."""
    array = np.asarray(vector)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise InputError(
            f"`{name}` must be a non-empty 1-D numeric vector (one input's features); got "
            f"{describe(vector)}."
        )
    if array.size > MAX_FEATURE_DIMS:
        raise InputError(
            f"`{name}` has {array.size} dimensions, more than the {MAX_FEATURE_DIMS} stored per "
            "decision; project the features first (failwise.monitor.random_projection)."
        )
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"`{name}` holds NaN or infinite values; got {describe(vector)}.")
    half = np.clip(values, -65504.0, 65504.0).astype("<f2")
    return int(array.size), base64.b64encode(half.tobytes()).decode("ascii")


def decode_vectors(texts: Sequence[str], dims: int, dtype: str = "<f2") -> NDArray[np.float32]:
    """The vectors of ``texts`` (base64 of ``dtype`` values) as a float32 matrix."""
    if not texts:
        return np.empty((0, dims), dtype=np.float32)
    raw = b"".join(base64.b64decode(t) for t in texts)
    return np.frombuffer(raw, dtype=dtype).astype(np.float32).reshape(len(texts), dims)


def insert_features(tx: Tx, rows: Sequence[tuple[str, int, str]]) -> None:
    """Write task features (in the caller's transaction)."""
    if rows:
        tx.executemany(_INSERT_FEATURES, rows)


@dataclass(frozen=True)
class FeatureRows:
    """Stored features of some tasks: ids, decision times and one row each."""

    task_ids: tuple[str, ...]
    created_at: NDArray[np.float64]
    features: NDArray[np.float32]


@dataclass(frozen=True)
class StoredWindow:
    """One window's statistics as the monitor stored them."""

    id: int
    monitor: str
    window_start: float
    window_end: float
    last_task: str | None
    n_tasks: int
    created_at: float
    stats: dict[str, Any]


@dataclass(frozen=True)
class StoredFinding:
    """One finding as stored: what the monitor found, in which window, with what evidence."""

    id: int
    monitor: str
    kind: str
    severity: str
    window_start: float | None
    window_end: float | None
    created_at: float
    statistics: dict[str, Any]
    examples: list[Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        return {
            "id": self.id,
            "monitor": self.monitor,
            "kind": self.kind,
            "severity": self.severity,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "created_at": self.created_at,
            "statistics": self.statistics,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class QuarantineZone:
    """One quarantine: inputs within ``radius`` of ``centre`` are escalated."""

    id: int
    finding_id: int
    created_at: float
    state: str
    centre: NDArray[np.float32]
    radius: float
    metric: str
    released_at: float | None
    released_by: str | None
    note: str | None


#: What the monitor reads of each task: the decision's columns and, from its later events,
#: the audit's label (NULL when not audited) and whether the user corrected the output.
_MONITOR_ROWS = """
WITH t AS (
    SELECT task_id, created_at, action, label, confidence, predicted, ood_score
    FROM tasks WHERE {where} ORDER BY created_at, task_id {limit}
),
e AS (
    SELECT ev.task_id,
        MAX(CASE WHEN ev.kind IN ('audit_resolved', 'audit_label') THEN ev.label END)
            AS audit_label,
        MAX(CASE WHEN ev.kind IN ('audit_resolved', 'audit_label') THEN 1 ELSE 0 END)
            AS audited,
        MAX(CASE WHEN ev.kind = 'feedback_corrected' THEN 1 ELSE 0 END) AS corrected
    FROM events ev JOIN t ON t.task_id = ev.task_id
    WHERE ev.kind IN ('audit_resolved', 'audit_label', 'feedback_corrected')
    GROUP BY ev.task_id
)
SELECT t.task_id, t.created_at, t.action, t.label, t.confidence, t.predicted, t.ood_score,
       e.audit_label, COALESCE(e.audited, 0), COALESCE(e.corrected, 0)
FROM t LEFT JOIN e ON e.task_id = t.task_id
ORDER BY t.created_at, t.task_id
"""

#: The columns of :meth:`MonitorLog.monitor_rows`, in order.
MONITOR_ROW_COLUMNS: Final = (
    "task_id",
    "created_at",
    "action",
    "label",
    "confidence",
    "predicted",
    "ood_score",
    "audit_label",
    "audited",
    "corrected",
)

_WINDOW_COLUMNS = "id, monitor, window_start, window_end, last_task, n_tasks, created_at, stats"
_FINDING_COLUMNS = (
    "id, monitor, kind, severity, window_start, window_end, created_at, statistics, examples"
)
_ZONE_COLUMNS = (
    "id, finding_id, created_at, state, dims, centre, radius, metric, released_at, "
    "released_by, note"
)


def _window(row: Row) -> StoredWindow:
    return StoredWindow(
        int(row[0]),
        str(row[1]),
        float(row[2]),
        float(row[3]),
        None if row[4] is None else str(row[4]),
        int(row[5]),
        float(row[6]),
        json.loads(row[7]),
    )


def _finding(row: Row) -> StoredFinding:
    return StoredFinding(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        None if row[4] is None else float(row[4]),
        None if row[5] is None else float(row[5]),
        float(row[6]),
        json.loads(row[7]),
        json.loads(row[8]),
    )


def _zone(row: Row) -> QuarantineZone:
    centre = decode_vectors([str(row[5])], int(row[4]), "<f4")[0]
    return QuarantineZone(
        int(row[0]),
        int(row[1]),
        float(row[2]),
        str(row[3]),
        centre,
        float(row[6]),
        str(row[7]),
        None if row[8] is None else float(row[8]),
        None if row[9] is None else str(row[9]),
        None if row[10] is None else str(row[10]),
    )


class _AppendWindow:
    """Write operation: the next window of a monitor, with its findings; their ids."""

    def __init__(
        self,
        after: int | None,
        window: tuple[Any, ...],
        findings: Sequence[tuple[Any, ...]],
    ) -> None:
        self.after = after
        self.window = window
        self.findings = findings

    def __call__(self, tx: Tx) -> tuple[int, list[int]]:
        monitor = self.window[0]
        rows = tx.execute("SELECT MAX(id) FROM monitor_windows WHERE monitor = ?", (monitor,))
        last = None if not rows or rows[0][0] is None else int(rows[0][0])
        if last != self.after:
            raise WindowConflictError(
                f"Another run of monitor {monitor!r} stored a window first (its last window is "
                f"{last}, this run started after {self.after}); nothing was written. Run the "
                "monitor again: it continues after the stored windows."
            )
        window_id = int(
            tx.execute(
                "INSERT INTO monitor_windows (monitor, window_start, window_end, last_task, "
                "n_tasks, created_at, stats) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                self.window,
            )[0][0]
        )
        ids = [
            int(
                tx.execute(
                    "INSERT INTO findings (monitor, kind, severity, window_start, window_end, "
                    "created_at, statistics, examples) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING id",
                    finding,
                )[0][0]
            )
            for finding in self.findings
        ]
        return window_id, ids


class _Quarantine:
    def __init__(self, params: tuple[Any, ...]) -> None:
        self.params = params

    def __call__(self, tx: Tx) -> int:
        if not tx.execute("SELECT id FROM findings WHERE id = ?", (self.params[0],)):
            raise InputError(
                f"There is no finding {self.params[0]} in this store; quarantine a blind-spot "
                "finding listed by `failwise gaps` (or monitor.findings(store))."
            )
        return int(
            tx.execute(
                "INSERT INTO quarantines (finding_id, created_at, state, dims, centre, radius, "
                "metric, note) VALUES (?, ?, 'active', ?, ?, ?, ?, ?) RETURNING id",
                self.params,
            )[0][0]
        )


class _Release:
    def __init__(self, quarantine_id: int, at: float, by: str, note: str | None) -> None:
        self.quarantine_id = quarantine_id
        self.params = (at, by, note, quarantine_id)

    def __call__(self, tx: Tx) -> bool:
        rows = tx.execute(
            "UPDATE quarantines SET state = 'released', released_at = ?, released_by = ?, "
            "note = COALESCE(?, note) WHERE id = ? AND state = 'active' RETURNING id",
            self.params,
        )
        if rows:
            return True
        if not tx.execute("SELECT id FROM quarantines WHERE id = ?", (self.quarantine_id,)):
            raise InputError(
                f"There is no quarantine {self.quarantine_id} in this store; list them with "
                "store.quarantines()."
            )
        return False


def _check_id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"`{name}` must be a positive int id; got {describe(value)}.")
    return int(value)


class MonitorLog:
    """The store's monitor tables: reads and writes that :mod:`failwise.monitor` uses."""

    def _write(self, op: Any) -> Any:  # pragma: no cover - provided by Store
        raise NotImplementedError

    def _read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ the monitor's rows
    def monitor_rows(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        after: tuple[float, str] | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Tasks in decision order with what the monitor needs (:data:`MONITOR_ROW_COLUMNS`).

        Either a time range ``[since, until)`` or the ``limit`` tasks after the position
        ``after`` = (created_at, task_id) of the last task already seen.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(float(since))
        if until is not None:
            clauses.append("created_at < ?")
            params.append(float(until))
        if after is not None:
            clauses.append("(created_at > ? OR (created_at = ? AND task_id > ?))")
            params.extend([float(after[0]), float(after[0]), str(after[1])])
        where = " AND ".join(clauses) if clauses else "1 = 1"
        tail = ""
        if limit is not None:
            tail = "LIMIT ?"
            params.append(_check_id(limit, "limit"))
        return self._read(_MONITOR_ROWS.format(where=where, limit=tail), params)

    def first_task_time(self) -> float | None:
        """Decision time of the oldest task, or None for an empty store."""
        rows = self._read("SELECT MIN(created_at) FROM tasks")
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    # ------------------------------------------------------------------ features
    def task_features(self, task_ids: Sequence[str]) -> FeatureRows:
        """Stored features of ``task_ids`` (those that have any), in decision order.

        Raises
        ------
        InputError
            When the tasks' features have different dimensions (two feature functions).
        """
        ids = [str(t) for t in task_ids]
        rows: list[Row] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows.extend(
                self._read(
                    "SELECT f.task_id, t.created_at, f.dims, f.vector FROM task_features f "
                    f"JOIN tasks t ON t.task_id = f.task_id WHERE f.task_id IN ({marks})",
                    chunk,
                )
            )
        rows.sort(key=lambda r: (float(r[1]), str(r[0])))
        dims = {int(r[2]) for r in rows}
        if len(dims) > 1:
            raise InputError(
                f"The stored features have {sorted(dims)} dimensions: the guard's feature "
                "function changed. Monitor one feature function at a time (a window per "
                "deployment)."
            )
        size = dims.pop() if dims else 0
        return FeatureRows(
            tuple(str(r[0]) for r in rows),
            np.array([float(r[1]) for r in rows], dtype=np.float64),
            decode_vectors([str(r[3]) for r in rows], size),
        )

    # ------------------------------------------------------------------ windows
    def monitor_windows(self, monitor: str, *, after_id: int | None = None) -> list[StoredWindow]:
        """The stored windows of ``monitor``, oldest first (after window ``after_id``)."""
        name = check_text(monitor, "monitor", max_length=None)
        low = 0 if after_id is None else _check_id(after_id + 1, "after_id") - 1
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM monitor_windows WHERE monitor = ? AND id > ? "
            "ORDER BY id",
            (name, low),
        )
        return [_window(r) for r in rows]

    def last_monitor_window(self, monitor: str) -> StoredWindow | None:
        """The newest stored window of ``monitor``, or None."""
        name = check_text(monitor, "monitor", max_length=None)
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM monitor_windows WHERE monitor = ? "
            "ORDER BY id DESC LIMIT 1",
            (name,),
        )
        return _window(rows[0]) if rows else None

    def append_monitor_window(
        self,
        monitor: str,
        *,
        after: int | None,
        window_start: float,
        window_end: float,
        last_task: str | None,
        n_tasks: int,
        stats: Mapping[str, Any],
        findings: Sequence[Mapping[str, Any]] = (),
        at: float | None = None,
    ) -> tuple[int, list[int]]:
        """Store a monitor's next window and its findings in one transaction.

        ``after`` is the id of the window this run continued from (None for the first);
        when another run stored a window since, :class:`WindowConflictError` is raised and
        nothing is written. Each finding maps ``kind``, ``severity`` (alert or change),
        ``statistics`` and ``examples``. Returns the window id and the finding ids.
        """
        name = check_text(monitor, "monitor", max_length=None)
        now = time.time() if at is None else float(at)
        for value, label in ((window_start, "window_start"), (window_end, "window_end")):
            if not math.isfinite(float(value)):
                raise InputError(f"`{label}` must be finite; got {value!r}.")
        rows = []
        for finding in findings:
            severity = finding.get("severity")
            if severity not in FINDING_SEVERITIES:
                raise InputError(
                    f"A finding's severity must be one of {list(FINDING_SEVERITIES)}; got "
                    f"{severity!r}."
                )
            rows.append(
                (
                    name,
                    check_text(finding.get("kind"), "kind"),
                    severity,
                    float(window_start),
                    float(window_end),
                    now,
                    dump_json(dict(finding.get("statistics", {})), "statistics"),
                    json.dumps(list(finding.get("examples", [])), allow_nan=False),
                )
            )
        window = (
            name,
            float(window_start),
            float(window_end),
            last_task,
            int(n_tasks),
            now,
            dump_json(dict(stats), "stats"),
        )
        result: tuple[int, list[int]] = self._write(_AppendWindow(after, window, rows))
        return result

    # ------------------------------------------------------------------ findings
    def stored_findings(
        self,
        *,
        monitor: str | None = None,
        kind: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[StoredFinding]:
        """Stored findings, oldest first: of one ``monitor`` and ``kind`` if given."""
        clauses, params = ["id > ?"], [int(after_id)]
        if monitor is not None:
            clauses.append("monitor = ?")
            params.append(check_text(monitor, "monitor", max_length=None))  # type: ignore[arg-type]
        if kind is not None:
            clauses.append("kind = ?")
            params.append(check_text(kind, "kind"))  # type: ignore[arg-type]
        where = " AND ".join(clauses)
        rows = self._read(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE {where} ORDER BY id LIMIT ?",
            (*params, _check_id(limit, "limit")),
        )
        return [_finding(r) for r in rows]

    def finding(self, finding_id: int) -> StoredFinding:
        """One stored finding by id."""
        rows = self._read(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE id = ?",
            (_check_id(finding_id, "finding_id"),),
        )
        if not rows:
            raise InputError(
                f"There is no finding {finding_id} in this store; list them with "
                "failwise.monitor.findings(store)."
            )
        return _finding(rows[0])

    # ------------------------------------------------------------------ quarantines
    def quarantine(
        self,
        finding_id: int,
        *,
        centre: ArrayLike,
        radius: float,
        metric: str = "cosine",
        note: str | None = None,
        at: float | None = None,
    ) -> int:
        """Start escalating inputs within ``radius`` of ``centre``; the quarantine id."""
        fid = _check_id(finding_id, "finding_id")
        vector = np.asarray(centre, dtype=np.float64)
        if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
            raise InputError(
                f"`centre` must be a finite 1-D feature vector; got {describe(centre)}."
            )
        if not (math.isfinite(float(radius)) and float(radius) > 0):
            raise InputError(f"`radius` must be a finite number > 0; got {radius!r}.")
        if metric not in ("cosine", "euclidean"):
            raise InputError(f"`metric` must be 'cosine' or 'euclidean'; got {metric!r}.")
        text = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        now = time.time() if at is None else float(at)
        params = (fid, now, int(vector.size), text, float(radius), metric, note)
        return int(self._write(_Quarantine(params)))

    def release_quarantine(
        self,
        quarantine_id: int,
        *,
        by: str,
        note: str | None = None,
        at: float | None = None,
    ) -> bool:
        """Stop a quarantine; False when it was released already."""
        qid = _check_id(quarantine_id, "quarantine_id")
        who = check_text(by, "by")
        now = time.time() if at is None else float(at)
        return bool(self._write(_Release(qid, now, who, note)))

    def quarantine_reviews(self, quarantine_id: int) -> list[tuple[str, int | None, int]]:
        """(task_id, predicted, reviewer's label) of the quarantine's resolved escalations.

        The guard names the quarantine in the reason of each input it escalates
        (``"... (quarantine 3, finding 12) ..."``), which is the escalation item's reason.
        """
        qid = _check_id(quarantine_id, "quarantine_id")
        rows = self._read(
            "SELECT q.task_id, t.predicted, q.label FROM queue_items q "
            "JOIN tasks t ON t.task_id = q.task_id "
            "WHERE q.kind = 'escalation' AND q.state = 'resolved' AND q.label IS NOT NULL "
            "AND q.reason LIKE ? ORDER BY q.id",
            (f"%(quarantine {qid}, finding %",),
        )
        return [(str(r[0]), None if r[1] is None else int(r[1]), int(r[2])) for r in rows]

    def quarantines(self, *, active_only: bool = False) -> list[QuarantineZone]:
        """Every quarantine (or only the active ones), oldest first."""
        where = "WHERE state = 'active' " if active_only else ""
        rows = self._read(f"SELECT {_ZONE_COLUMNS} FROM quarantines {where}ORDER BY id")
        return [_zone(r) for r in rows]
