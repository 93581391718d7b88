"""`measure`: product metrics measured online from the event log.

One set of SQL definitions computes every metric from the tables ``tasks``, ``events`` and
``queue_items``; it runs unchanged on SQLite, PostgreSQL, and DuckDB or Apache Spark SQL
over a Parquet export written by :func:`failwise.export.to_parquet` (Spark with one type
spelling adapted). Only standard SQL is used: ``CASE``, ``COALESCE``, grouped
``MIN``/``MAX``/``SUM``, ``ROW_NUMBER() OVER`` and ``?`` parameters (the store turns them
into ``%s`` for PostgreSQL). Divisions, interval arithmetic and the
order-statistic ranks are done in Python from the sums the query returns.

What the event log records, and how each metric is read from it
---------------------------------------------------------------
A task starts with its ``decision`` event (time ``t0``). Its *first output* is the
decision's label for ``answer`` and ``fallback``, or the label the user picked in a
``clarification_choice`` (no label: "none of these"). What followed is read from events:

- **negative signal** on the first output: a ``feedback_corrected`` or
  ``feedback_abandoned`` before any human resolution, or a *user escalation* — an
  ``escalation_created`` event on a task whose first output had been delivered (so not one
  opened by the ladder's ``escalate`` rung, nor after "none of these").
- **presumed delivered**: an automatic output (answer, fallback) with no negative signal.
  Whether it was right is known for the audited ones (``audit_resolved`` or ``audit_label``:
  right when the audit label equals the output, or is ``-1`` for a fallback, a handoff)
  and estimated for the rest by the audit error rate ``k / m`` among audited presumed
  outputs.
- **human resolution**: an ``escalation_resolved`` within the deadline that no later
  ``feedback_corrected`` / ``feedback_abandoned`` contradicts.

Each metric, offline (``_projection._simulate``) → online (here):

- **task completion rate**: first output right, an honest abstention, or a right human
  resolution, within the deadline → audited-right outputs (answers, fallbacks, picked
  clarifications), abstentions the user accepted and uncontradicted human resolutions,
  within the deadline, plus the unaudited presumed outputs weighted by one minus their
  audit error rate (answers and fallbacks: ``k / m``; picked clarifications: the error rate
  among audited picks, 0 when none was audited).
- **time to correct output** (median, p90): request → first right output or human
  resolution → ``t0`` → the delivering event: the user's ``feedback_accepted`` of an answer,
  fallback or abstention (else ``t0``), the ``clarification_choice``, or the
  ``escalation_resolved``.
- **escalation rate**: ladder escalation, "none of these", or a user who noticed a wrong
  output and asked for a human → tasks with an ``escalation_created`` event.
- **recovery rate**: wrong first outputs later resolved right by a human within the
  deadline / wrong first outputs → negative signal then a human resolution / (tasks with a
  negative signal + estimated unnoticed wrong outputs).
- **silent-failure rate**: unnoticed wrong automatic outputs / tasks → presumed automatic
  outputs × ``k / m`` / tasks.
- **automation rate**: answer or fallback / tasks → the same, from the decision.
- **selective accuracy**: right automatic outputs / automatic outputs → presumed automatic
  outputs × (1 − ``k / m``) / automatic outputs.
- **human hours per 1,000 tasks**: handling time of absorbed escalations → claim →
  resolution time of every resolved queue item, escalations and audits (audits are human
  load too; the projection has no audits, so it counts escalations only).

Two things the log cannot show are taken as the user reports them: a picked
clarification is right unless a negative signal or an audit of picks says otherwise (a
guard audits answers only; the application may queue audits of picks), and a human
resolution is right unless the user contradicts it.

The SQL definitions are in :mod:`failwise.outcomes._metric_sql` (over the store's per-task
view), the intervals in :mod:`failwise.outcomes._intervals`.

Confidence intervals: Wilson score intervals for proportions, combined conservatively with
the Wilson interval of the audit error rate where a metric depends on it (the extremes of
both); a normal interval for human hours (from the per-task sum of squares); distribution-
free order-statistic intervals for the time quantiles. Tasks are selected by the time of
their decision (``since <= t0 < until``); every later event of those tasks counts, so a
window that ends now still has tasks in progress, which count as not (yet) completed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from numbers import Real
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.outcomes._intervals import quantile_ranks, rate, wilson, z_of
from failwise.outcomes._metric_sql import QUANTILE_SELECT, SUMS_SELECT, runner
from failwise.outcomes._metrics import Estimate, ProductMetrics
from failwise.outcomes._model import OutcomeModel

__all__ = ["measure"]

#: Bounds used when ``since`` / ``until`` are not given (finite on every backend).
_NO_LOWER = -1.0e300
_NO_UPPER = 1.0e300


@dataclass(frozen=True)
class _Counts:
    n_tasks: int
    n_automatic: int
    n_presumed: int
    n_audited: int
    n_audited_wrong: int
    n_wrong_first: int
    n_recovered: int
    n_escalated: int
    n_completed_known: int
    n_presumed_done: int
    n_picked: int
    n_picked_audited: int
    n_picked_audited_wrong: int
    n_picked_done: int
    human_s: float
    human_s2: float
    n_timed: int


# ------------------------------------------------------------------------------ arguments
def _as_time(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(
            f"`{name}` must be a time in Unix seconds (e.g. time.time()) or a datetime; got "
            f"{describe(value)}."
        )
    return float(value)


def _as_window(value: Any) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, Real)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise InputError(
            f"`window` must be a positive number of seconds or a timedelta (e.g. "
            f"timedelta(days=7)); got {describe(value)}."
        )
    return float(seconds)


def _bounds(since: Any, until: Any, window: Any) -> tuple[float, float]:
    low = _as_time(since, "since")
    high = _as_time(until, "until")
    span = _as_window(window)
    if span is not None:
        if low is not None:
            raise InputError(
                "Pass either `since` or `window`, not both: `window` counts back from `until` "
                "(default now)."
            )
        high = time.time() if high is None else high
        low = high - span
    if low is not None and high is not None and low > high:
        raise InputError(f"`since` ({low!r}) is after `until` ({high!r}); pass since <= until.")
    return (_NO_LOWER if low is None else low, _NO_UPPER if high is None else high)


def _counts(row: tuple[Any, ...]) -> _Counts:
    values = [0 if v is None else v for v in row]
    ints = [int(v) for v in values[:14]]
    return _Counts(
        n_tasks=ints[0],
        n_automatic=ints[1],
        n_presumed=ints[2],
        n_audited=ints[3],
        n_audited_wrong=ints[4],
        n_wrong_first=ints[5],
        n_recovered=ints[6],
        n_escalated=ints[7],
        n_completed_known=ints[8],
        n_presumed_done=ints[9],
        n_picked=ints[10],
        n_picked_audited=ints[11],
        n_picked_audited_wrong=ints[12],
        n_picked_done=ints[13],
        human_s=float(values[14]),
        human_s2=float(values[15]),
        n_timed=int(values[16]),
    )


def _metrics(c: _Counts, times: dict[int, float], level: float) -> dict[str, Estimate]:
    z = z_of(level)
    n = c.n_tasks
    nan = Estimate(math.nan, math.nan, math.nan)
    if c.n_audited:
        err = c.n_audited_wrong / c.n_audited
        err_low, err_high = wilson(c.n_audited_wrong, c.n_audited, level)
    else:  # nothing audited: the error rate of unaudited outputs is anywhere in [0, 1]
        err, err_low, err_high = math.nan, 0.0, 1.0
    out: dict[str, Estimate] = {}

    # Picked clarifications: right unless audits of picks say otherwise.
    if c.n_picked_audited:
        pick_err = c.n_picked_audited_wrong / c.n_picked_audited
        pick_low, pick_high = wilson(c.n_picked_audited_wrong, c.n_picked_audited, level)
    else:
        pick_err = pick_low = pick_high = 0.0

    # Task completion: known completions + presumed outputs that were (estimated) right.
    known, presumed, picked = c.n_completed_known, c.n_presumed_done, c.n_picked_done
    if n:
        low = wilson(known + presumed * (1 - err_high) + picked * (1 - pick_high), n, level)[0]
        high = wilson(known + presumed * (1 - err_low) + picked * (1 - pick_low), n, level)[1]
        value = (known + (presumed * (1 - err) if presumed else 0.0) + picked * (1 - pick_err)) / n
        out["task_completion_rate"] = Estimate(value, low, high)
    else:
        out["task_completion_rate"] = nan

    # Silent failures: presumed outputs × audit error rate.
    share = c.n_presumed / n if n else math.nan
    if n and c.n_presumed:
        out["silent_failure_rate"] = Estimate(share * err, share * err_low, share * err_high)
    else:
        out["silent_failure_rate"] = Estimate(0.0, 0.0, 0.0) if n else nan

    # Recovery: recovered / (known wrong first outputs + estimated silent failures).
    # (wrong picks the user did not notice are wrong first outputs too)
    silent_low = c.n_presumed * err_low + c.n_picked * pick_low
    silent_high = c.n_presumed * err_high + c.n_picked * pick_high
    silent = (c.n_presumed * err if c.n_presumed else 0.0) + c.n_picked * pick_err
    wrong = c.n_wrong_first + silent
    if c.n_wrong_first + silent_high > 0 and not math.isnan(wrong):
        low = wilson(c.n_recovered, c.n_wrong_first + silent_high, level)[0]
        high = (
            wilson(c.n_recovered, c.n_wrong_first + silent_low, level)[1]
            if c.n_wrong_first + silent_low > 0
            else 1.0
        )
        value = c.n_recovered / wrong if wrong > 0 else math.nan
        out["recovery_rate"] = Estimate(value, low, high)
    else:
        out["recovery_rate"] = (
            Estimate(math.nan, 0.0, 1.0) if c.n_wrong_first + silent_high > 0 else nan
        )

    out["escalation_rate"] = rate(c.n_escalated, n, level)
    out["automation_rate"] = rate(c.n_automatic, n, level)

    # Selective accuracy: presumed outputs that were (estimated) right / automatic outputs.
    if c.n_automatic:
        right = c.n_presumed * (1 - err) if c.n_presumed else 0.0
        low = wilson(c.n_presumed * (1 - err_high), c.n_automatic, level)[0]
        high = wilson(c.n_presumed * (1 - err_low), c.n_automatic, level)[1]
        out["selective_accuracy"] = Estimate(right / c.n_automatic, low, high)
    else:
        out["selective_accuracy"] = nan

    # Human hours per 1,000 tasks: normal interval over tasks.
    if n:
        mean = c.human_s / n
        variance = max(c.human_s2 / n - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 0.0)
        half = z * math.sqrt(variance / n)
        scale = 1000.0 / 3600.0
        out["human_hours_per_1000_tasks"] = Estimate(
            mean * scale, max(mean - half, 0.0) * scale, (mean + half) * scale
        )
    else:
        out["human_hours_per_1000_tasks"] = nan

    for name, q in (
        ("time_to_correct_output_median_s", 0.5),
        ("time_to_correct_output_p90_s", 0.9),
    ):
        if c.n_timed:
            below, above, low_rank, high_rank = quantile_ranks(c.n_timed, q, z)
            position = (c.n_timed - 1) * q
            fraction = position - below
            value = times[below] + (times[above] - times[below]) * fraction
            out[name] = Estimate(value, times[low_rank], times[high_rank])
        else:
            out[name] = nan
    return out


def measure(
    source: Any,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    window: float | timedelta | None = None,
    *,
    outcome_model: OutcomeModel | None = None,
    interval_level: float = 0.95,
    engine: str | None = None,
) -> ProductMetrics:
    """Measure product metrics from what really happened, as recorded in the event log.

    The same metrics as :func:`project`, defined on events (see this module's notes for
    each definition beside its offline counterpart); the silent-failure rate is estimated
    from the audit sample of confident answers, with its confidence interval.

    Parameters
    ----------
    source : Store, str, path, DuckDB connection or SparkSession
        An open store, a store URL (opened and closed here), a folder written by
        ``failwise export`` (read with ``engine``), or a DuckDB connection or SparkSession
        holding tables or views ``tasks``, ``events`` and ``queue_items``.
    since, until : float or datetime, optional
        Tasks whose decision is at ``since <= t < until`` (Unix seconds); all by default.
    window : float or timedelta, optional
        The last ``window`` seconds before ``until`` (default now); instead of ``since``.
    outcome_model : OutcomeModel, optional
        Only its ``deadline_s`` is used: a correct output later than this does not
        complete the task.
    interval_level : float, default=0.95
        Level of the confidence intervals.
    engine : {"duckdb", "spark"}, optional
        What reads a Parquet export folder: DuckDB (the default) or Apache Spark SQL —
        the active SparkSession's context (``SparkSession.builder.getOrCreate()`` when
        none is active), in a session of its own so none of your temporary views is
        touched. Both run the same SQL and give the same numbers. Only for a folder.

    Returns
    -------
    ProductMetrics
        With ``source="measured"``; NaN metrics (and ``n_tasks=0``) for an empty window.

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> from failwise.outcomes import measure
    >>> folder = tempfile.mkdtemp()
    >>> with store.open(f"sqlite:///{folder}/events.db") as events:
    ...     _ = events.record_decision("t1", {"action": "answer", "label": 3}, at=100.0)
    ...     _ = events.feedback("t1", "accepted", at=101.0)
    ...     _ = events.record_decision("t2", {"action": "answer", "label": 5}, at=200.0)
    ...     _ = events.feedback("t2", "abandoned", at=260.0)
    ...     _ = events.record_event("t1", "audit_label", label=3, at=300.0)
    ...     metrics = measure(events)
    >>> metrics.n_tasks, metrics.automation_rate.value, metrics.task_completion_rate.value
    (2, 1.0, 0.5)
    >>> metrics.time_to_correct_output_median_s.value, metrics.silent_failure_rate.value
    (1.0, 0.0)
    """
    model = outcome_model if outcome_model is not None else OutcomeModel()
    if not isinstance(model, OutcomeModel):
        raise InputError(f"`outcome_model` must be an OutcomeModel; got {describe(model)}.")
    if (
        isinstance(interval_level, bool)
        or not isinstance(interval_level, Real)
        or not 0 < interval_level < 1
    ):
        raise InputError(
            f"`interval_level` must lie in (0, 1), e.g. 0.95; got {describe(interval_level)}."
        )
    low, high = _bounds(since, until, window)
    run, close = runner(source, engine)
    try:
        params = (low, high, float(model.deadline_s))
        counts = _counts(run(SUMS_SELECT, params)[0])
        times: dict[int, float] = {}
        if counts.n_timed:
            z = z_of(float(interval_level))
            ranks = sorted({r for q in (0.5, 0.9) for r in quantile_ranks(counts.n_timed, q, z)})
            sql = QUANTILE_SELECT.replace("{ranks}", ", ".join("?" * len(ranks)))
            for position, seconds in run(sql, (*params, *ranks)):
                times[int(position)] = float(seconds)
    finally:
        close()
    values = _metrics(counts, times, float(interval_level))
    return ProductMetrics(
        **values,
        n_tasks=counts.n_tasks,
        interval_level=float(interval_level),
        source="measured",
    )
