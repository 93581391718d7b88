"""Bounded reads of the monitor's tables across monitors: the newest windows and findings.

:class:`MonitorLog` reads one monitor's windows in order (what a monitor run continues
from) and its findings a page at a time; a page that shows what the monitor said lately
(the service's dashboard) wants the newest few of every monitor instead, in one
statement that returns at most ``limit`` rows: :class:`MonitorReads`, which
:class:`~failwise.store.Store` inherits.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any, Final

from failwise._params import Count, Interval, check_param
from failwise.store._backend import Row
from failwise.store._monitor_log import (
    _FINDING_COLUMNS,
    _WINDOW_COLUMNS,
    StoredFinding,
    StoredWindow,
    _finding,
    _window,
)

__all__ = ["MAX_RECENT", "MonitorReads"]

#: Most rows one of these reads returns.
MAX_RECENT: Final = 1000

_TIME = [None, Interval(Real, 0.0, None)]
_LIMIT = [Count(1, MAX_RECENT)]


def _range(column: str, since: Any, until: Any, limit: Any, where: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause of ``column`` in ``[since, until]`` and its parameters."""
    low = check_param("since", since, _TIME, where=where)
    high = check_param("until", until, _TIME, where=where)
    clauses, params = ["1 = 1"], []
    if low is not None:
        clauses.append(f"{column} >= ?")
        params.append(float(low))
    if high is not None:
        clauses.append(f"{column} <= ?")
        params.append(float(high))
    params.append(int(check_param("limit", limit, _LIMIT, where=where)))
    return " AND ".join(clauses), params


class MonitorReads:
    """The newest monitor windows and findings of a store, newest first."""

    def _read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:  # pragma: no cover
        raise NotImplementedError

    def recent_monitor_windows(
        self, *, since: float | None = None, until: float | None = None, limit: int = 12
    ) -> list[StoredWindow]:
        """The ``limit`` windows of every monitor that ended last, latest first.

        Parameters
        ----------
        since, until : float, optional
            Only windows that ended in ``[since, until]`` (Unix seconds).
        limit : int, default=12
            At most this many windows (1 to :data:`MAX_RECENT`).

        Returns
        -------
        list of StoredWindow
            By end time, latest first (ties: the later stored first), with the statistics
            their monitor run wrote (``stats["estimate"]`` holds the label-free accuracy
            estimate and its audit check).
        """
        where, params = _range("window_end", since, until, limit, "recent_monitor_windows")
        # the newest by end time, whichever monitor stored them last (a backfill of old
        # windows does not hide the recent ones); the statistics are read for those only
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM monitor_windows WHERE id IN (SELECT id FROM "
            f"monitor_windows WHERE {where} ORDER BY window_end DESC, id DESC LIMIT ?) "
            "ORDER BY window_end DESC, id DESC",
            params,
        )
        return [_window(r) for r in rows]

    def latest_findings(
        self, *, since: float | None = None, until: float | None = None, limit: int = 20
    ) -> list[StoredFinding]:
        """The ``limit`` newest stored findings of every monitor, newest first.

        Parameters
        ----------
        since, until : float, optional
            Only findings made in ``[since, until]`` (their ``created_at``, Unix seconds).
        limit : int, default=20
            At most this many findings (1 to :data:`MAX_RECENT`).

        Returns
        -------
        list of StoredFinding
        """
        where, params = _range("created_at", since, until, limit, "latest_findings")
        rows = self._read(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE {where} ORDER BY id DESC LIMIT ?",
            params,
        )
        return [_finding(r) for r in rows]
