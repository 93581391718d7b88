"""Every window's statistics at once, with DuckDB over a Parquet export of the store.

:func:`window_statistics` computes, in four aggregate queries over ``tasks.parquet`` and
``events.parquet`` (``failwise export``), for every time window: the task count and
action mix, the label-free accuracy estimate among answers with its interval, the
audit-corrected (prediction-powered) estimate with its interval, the calibration check of
the audited answers, and the confidence KS and predicted-label chi-square tests against
the reference. Nothing is read into Python row by row: each query returns one row per
window (or per window, label and bin), so ten million events take seconds.

Two approximations make that possible, both documented in each window's ``notes``: the
confidence distribution (re-weighted per predicted label, as the per-window test does) is
compared on a grid of :data:`CONFIDENCE_BINS` bins (the KS
distance at the bin edges, a lower bound of the exact one within one bin's width), and the
calibration check uses the normal approximation of the Poisson-binomial count (the exact
tail needs every audited confidence). The per-window path, :func:`run_monitor`, is exact.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Final

import numpy as np

from failwise._stats import normal_quantile
from failwise.exceptions import InputError
from failwise.monitor._drift import (
    REFERENCE_CONFIDENCE,
    holm,
    ks_bound_p_value,
    mix_drift,
)
from failwise.monitor._estimate import shift_interval
from failwise.monitor._reference import Reference
from failwise.monitor._windows import parse_window

__all__ = ["CONFIDENCE_BINS", "window_statistics"]

#: Bins of the confidence grid the bulk KS test compares on.
CONFIDENCE_BINS: Final = 1000

_SUMS = """
WITH a AS (
    SELECT task_id, MAX(label) AS audit_label
    FROM events WHERE kind IN ('audit_resolved', 'audit_label')
    GROUP BY task_id
),
t AS (
    SELECT CAST(FLOOR(tasks.created_at / {width}) AS BIGINT) AS win, tasks.action,
           tasks.confidence AS c, tasks.label,
           a.audit_label, a.audit_label IS NOT NULL AS audited
    FROM tasks LEFT JOIN a ON a.task_id = tasks.task_id
)
SELECT win, COUNT(*),
    COUNT(*) FILTER (WHERE action = 'answer' AND c IS NOT NULL),
    SUM(c) FILTER (WHERE action = 'answer'),
    SUM(c * (1 - c)) FILTER (WHERE action = 'answer'),
    COUNT(*) FILTER (WHERE action = 'answer' AND audited AND c IS NOT NULL),
    SUM(CAST(audit_label = label AS INTEGER)) FILTER (WHERE action = 'answer' AND audited),
    SUM(c) FILTER (WHERE action = 'answer' AND audited),
    SUM(c * (1 - c)) FILTER (WHERE action = 'answer' AND audited),
    SUM(POWER(CAST(audit_label = label AS INTEGER) - c, 2))
        FILTER (WHERE action = 'answer' AND audited)
FROM t GROUP BY win ORDER BY win
"""
_BINS = """
SELECT CAST(FLOOR(created_at / {width}) AS BIGINT) AS win, predicted,
       LEAST(CAST(FLOOR(confidence * {bins}) AS INTEGER), {bins} - 1) AS bin, COUNT(*)
FROM tasks WHERE confidence IS NOT NULL AND predicted IS NOT NULL
GROUP BY win, predicted, bin
"""
_LABELS = """
SELECT CAST(FLOOR(created_at / {width}) AS BIGINT) AS win, predicted, COUNT(*)
FROM tasks WHERE predicted IS NOT NULL GROUP BY win, predicted
"""
_ACTIONS = """
SELECT CAST(FLOOR(created_at / {width}) AS BIGINT) AS win, action, COUNT(*)
FROM tasks GROUP BY win, action
"""


def _connection(folder: Path) -> Any:
    try:
        import duckdb
    except ImportError:
        raise InputError(
            "The bulk window statistics need DuckDB, which is not installed; install the "
            "`analytics` extra: pip install 'failwise[analytics]'."
        ) from None
    missing = [n for n in ("tasks", "events") if not (folder / f"{n}.parquet").is_file()]
    if missing:
        raise InputError(
            f"{str(folder)!r} is not a failwise Parquet export: "
            f"{', '.join(f'{m}.parquet' for m in missing)} missing. Write one with "
            "`failwise export --store URL --to DIR`."
        )
    connection = duckdb.connect()
    for name in ("tasks", "events"):
        path = str((folder / f"{name}.parquet").resolve()).replace("'", "''")
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    return connection


def _ks_on_grid(
    reference: Reference, window_ids: list[int], bins: dict[str, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The monitor's confidence KS test of every window on the grid: the reference
    re-weighted to each window's predicted-label mix, its sampling error bounded
    (:func:`~failwise.monitor.ks_drift`). Returns distances, p-values and tested counts."""
    ref_bins = np.minimum((reference.confidence * CONFIDENCE_BINS).astype(int), CONFIDENCE_BINS - 1)
    keys, ref_label = np.unique(reference.predicted, return_inverse=True)
    per_label = np.zeros((keys.size, CONFIDENCE_BINS))
    np.add.at(per_label, (ref_label, ref_bins), 1.0)
    label_sizes = per_label.sum(axis=1)
    win_col, label_col, bin_col, count_col = (np.asarray(v) for v in bins.values())
    position = np.searchsorted(keys, label_col)
    known = (position < keys.size) & (keys[np.minimum(position, keys.size - 1)] == label_col)
    rows = np.searchsorted(np.asarray(window_ids), win_col)[known]
    hist = np.zeros((len(window_ids), CONFIDENCE_BINS))
    np.add.at(hist, (rows, bin_col[known].astype(np.intp)), count_col[known])
    mix = np.zeros((len(window_ids), keys.size))
    np.add.at(mix, (rows, position[known]), count_col[known])
    n = hist.sum(axis=1)
    share = mix / np.maximum(n, 1.0)[:, None]
    reference_cdf = np.cumsum((share / label_sizes) @ per_label, axis=1)
    window_cdf = np.cumsum(hist, axis=1) / np.maximum(n, 1.0)[:, None]
    distance = np.max(np.abs(window_cdf - reference_cdf), axis=1)
    effective = 1.0 / np.maximum(np.sum(share**2 / label_sizes, axis=1), 1e-300)
    p_values = np.array(
        [
            ks_bound_p_value(float(d), float(e), int(k), REFERENCE_CONFIDENCE)[0] if k else 1.0
            for d, e, k in zip(distance, effective, n, strict=True)
        ]
    )
    return distance, p_values, n.astype(np.int64)


def window_statistics(
    folder: str | os.PathLike[str],
    reference: Reference,
    *,
    window: str | int = "1h",
    false_alarm_rate: float = 0.05,
    horizon: int = 24,
    confidence_level: float = 0.95,
) -> list[dict[str, Any]]:
    """Statistics of every time window of a Parquet export, in a few DuckDB queries.

    Parameters
    ----------
    folder : str or path-like
        A ``failwise export`` folder (``tasks.parquet`` and ``events.parquet``).
    reference : Reference
    window : str, default="1h"
        A duration ("1h", "1d"); count windows need the per-window path (run_monitor).
    false_alarm_rate, horizon : as in :func:`run_monitor`
    confidence_level : float, default=0.95

    Returns
    -------
    list of dict
        One per window with tasks, oldest first: ``window_start``, ``window_end``,
        ``n_tasks``, ``action_mix``, ``estimate`` (``estimate``, ``low``, ``high``,
        ``n_answers``, ``n_audited``, ``audited_accuracy``, ``corrected``,
        ``corrected_low``, ``corrected_high``), ``tests`` (confidence, predicted_label,
        calibration: p-value and whether Holm rejected it), ``level`` and ``notes``.
    """
    spec = parse_window(window)
    if spec.seconds is None:
        raise InputError(
            f"`window` must be a duration ('1h', '1d') for the bulk statistics; got {window!r}. "
            "Count windows are computed window by window by run_monitor."
        )
    if not isinstance(reference, Reference):
        raise InputError("`reference` must be a failwise.monitor.Reference.")
    width = float(spec.seconds)
    level = float(false_alarm_rate) / int(horizon)
    z = normal_quantile(0.5 + confidence_level / 2.0)
    connection = _connection(Path(folder))
    try:
        sums = connection.execute(_SUMS.format(width=repr(width))).fetchall()
        bins = connection.execute(
            _BINS.format(width=repr(width), bins=CONFIDENCE_BINS)
        ).fetchnumpy()
        labels = connection.execute(_LABELS.format(width=repr(width))).fetchall()
        actions = connection.execute(_ACTIONS.format(width=repr(width))).fetchall()
    finally:
        connection.close()
    index = {int(row[0]): i for i, row in enumerate(sums)}
    distances, ks_p_values, ks_counts = _ks_on_grid(reference, [int(r[0]) for r in sums], bins)
    label_counts: list[dict[int, int]] = [{} for _ in sums]
    for win, predicted, count in labels:
        label_counts[index[int(win)]][int(predicted)] = int(count)
    action_counts: list[dict[str, int]] = [{} for _ in sums]
    for win, action, count in actions:
        action_counts[index[int(win)]][str(action)] = int(count)
    out = []
    for i, row in enumerate(sums):
        win, n, m, s_c, s_v, n_a, correct, s_ca, s_va, s_r2 = row
        m, n_a = int(m), int(n_a)
        estimate = float(s_c) / m if m else math.nan
        half = z * math.sqrt(float(s_v or 0.0)) / m if m else math.nan
        est: dict[str, Any] = {
            "estimate": None if m == 0 else estimate,
            "low": None if m == 0 else max(0.0, estimate - half),
            "high": None if m == 0 else min(1.0, estimate + half),
            "n_answers": m,
            "n_audited": n_a,
            "audited_accuracy": None,
            "corrected": None,
            "corrected_low": None,
            "corrected_high": None,
        }
        tests: list[dict[str, Any]] = []
        if ks_counts[i]:
            tests.append(
                {
                    "name": "confidence",
                    "method": "ks-grid-reference-bound",
                    "statistic": float(distances[i]),
                    "p_value": float(ks_p_values[i]),
                    "n_window": int(ks_counts[i]),
                }
            )
        if label_counts[i]:
            mix = mix_drift(reference.predicted, label_counts[i], name="predicted_label")
            tests.append(
                {
                    "name": "predicted_label",
                    "method": mix.method,
                    "statistic": mix.statistic,
                    "p_value": mix.p_value,
                }
            )
        if n_a and m:
            mean_residual = (float(correct) - float(s_ca)) / n_a
            spread = (float(s_r2) - n_a * mean_residual**2) / max(n_a - 1, 1)
            corrected = min(1.0, max(0.0, estimate + mean_residual))
            shift_low, shift_high = shift_interval(
                mean_residual, spread, n_a, n_a / m, float(s_v or 0.0) / m, estimate, z
            )
            est.update(
                audited_accuracy=float(correct) / n_a,
                corrected=corrected,
                corrected_low=min(max(0.0, estimate + shift_low), corrected),
                corrected_high=max(min(1.0, estimate + shift_high), corrected),
            )
            from scipy import stats

            sd = math.sqrt(max(float(s_va), 1e-12))
            p_value = float(stats.norm.cdf((float(correct) + 0.5 - float(s_ca)) / sd))
            tests.append(
                {
                    "name": "calibration",
                    "method": "normal",
                    "statistic": None,
                    "p_value": min(1.0, p_value),
                }
            )
        flags = holm([t["p_value"] for t in tests], level) if tests else np.zeros(0, bool)
        for entry, reject in zip(tests, flags, strict=True):
            entry["rejected"] = bool(reject)
        total = sum(action_counts[i].values())
        out.append(
            {
                "window_start": int(win) * width,
                "window_end": (int(win) + 1) * width,
                "n_tasks": int(n),
                "action_mix": {k: v / total for k, v in sorted(action_counts[i].items())},
                "estimate": est,
                "tests": tests,
                "level": level,
                "notes": [
                    f"confidence compared on a {CONFIDENCE_BINS}-bin grid; calibration check "
                    "by normal approximation"
                ],
            }
        )
    return out
