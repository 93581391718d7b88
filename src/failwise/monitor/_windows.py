"""Windows of the event log: fixed time spans ("1h") or fixed numbers of tasks (500).

A time window of ``w`` seconds covers ``[k w, (k + 1) w)`` in Unix time (UTC-aligned
hours and days). A count window holds the next ``N`` tasks in decision order (time, then
task id). A window is processed once it is complete: its end (a time window) or its last
task (a count window) is at least ``audit_lag_s`` old, so that audits of its answers have
had time to arrive. Stored windows are never recomputed; a run continues after the last one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["WindowSlice", "WindowSpec", "iter_new_windows", "parse_window"]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


@dataclass(frozen=True)
class WindowSpec:
    """A window length: ``seconds`` for time windows, or ``tasks`` for count windows."""

    seconds: float | None = None
    tasks: int | None = None

    @property
    def label(self) -> str:
        """ "1h", "30m", "500 tasks"."""
        if self.tasks is not None:
            return f"{self.tasks} tasks"
        seconds = float(self.seconds or 0)
        for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
            if seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{seconds:g}s"


def parse_window(window: Any) -> WindowSpec:
    """``"1h"``, ``"30m"``, ``"1d"``, ``"90s"`` → a time window; an int (or "500") → tasks.

    Examples
    --------
    >>> from failwise.monitor import parse_window
    >>> parse_window("1h").seconds, parse_window(500).tasks, parse_window("500").label
    (3600.0, 500, '500 tasks')
    """
    if isinstance(window, bool):
        raise InputError(
            f"`window` must be a duration such as '1h' or a task count; got {window!r}."
        )
    if isinstance(window, int) or (isinstance(window, str) and window.strip().isdigit()):
        count = int(window)
        if count < 2:
            raise InputError(
                f"`window` of {count} task(s) is too small: the tests need at least 2 tasks "
                "per window; pass e.g. 500."
            )
        return WindowSpec(tasks=count)
    if isinstance(window, str):
        match = _PATTERN.match(window)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
            if seconds > 0:
                return WindowSpec(seconds=seconds)
    raise InputError(
        f"`window` must be a duration ('1h', '30m', '1d', '90s') or a number of tasks (500); "
        f"got {describe(window)}."
    )


@dataclass(frozen=True)
class WindowSlice:
    """One complete, not yet stored window: its bounds and its tasks' rows."""

    start: float
    end: float
    rows: list[tuple[Any, ...]]

    @property
    def last_task(self) -> str | None:
        return None if not self.rows else str(self.rows[-1][0])


def iter_new_windows(
    store: Any,
    spec: WindowSpec,
    *,
    last_end: float | None,
    last_task: str | None,
    now: float,
    audit_lag_s: float,
) -> Iterator[WindowSlice]:
    """The complete windows after the last stored one (``last_end``, ``last_task``).

    Time windows without any task are skipped (never stored).
    """
    if spec.tasks is not None:
        after = None if last_end is None or last_task is None else (last_end, last_task)
        while True:
            rows = store.monitor_rows(after=after, limit=spec.tasks)
            if len(rows) < spec.tasks or float(rows[-1][1]) + audit_lag_s > now:
                return
            yield WindowSlice(float(rows[0][1]), float(rows[-1][1]), rows)
            after = (float(rows[-1][1]), str(rows[-1][0]))
    width = float(spec.seconds or 0.0)
    if last_end is None:
        first = store.first_task_time()
        if first is None:
            return
        start = math.floor(first / width) * width
    else:
        start = last_end
    while start + width + audit_lag_s <= now:
        rows = store.monitor_rows(since=start, until=start + width)
        if rows:
            yield WindowSlice(start, start + width, rows)
            start += width
            continue
        following = store.monitor_rows(since=start + width, limit=1)
        if not following:
            return
        start = math.floor(float(following[0][1]) / width) * width
