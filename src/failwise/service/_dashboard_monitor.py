"""The dashboard's monitor section: the monitor's findings in words, and each recent window's
label-free accuracy estimate against its audit sample.

Everything is read from the store (:meth:`~failwise.store.Store.latest_findings`,
:meth:`~failwise.store.Store.recent_monitor_windows`,
:meth:`~failwise.store.Store.quarantines`), each in one bounded statement,
so the page shows what ``failwise monitor`` and ``failwise gaps`` stored, whichever
process ran them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MonitorEstimate",
    "MonitorFinding",
    "monitor_estimates",
    "monitor_findings",
    "window_span",
]

#: Findings listed, latest first.
MAX_FINDINGS = 20
#: Windows whose estimate is listed, latest first.
MAX_ESTIMATES = 12

#: What each kind of finding means, in words.
_KIND_LABELS = {
    "blind_spot": "Blind spot",
    "unseen_inputs": "Unseen inputs",
    "calibration_broken": "Audit contradicts the estimate",
    "confidence_shift": "Confidence shifted",
    "ood_score_shift": "Out-of-scope score shifted",
    "label_mix_change": "Predicted-label mix changed",
    "action_mix_change": "Action mix changed",
    "input_drift": "Inputs drifted",
}


def window_span(start: float | None, end: float | None) -> str:
    """``"2026-01-05 09:00:00 – 10:00:00"`` (UTC): the end's date only when it differs."""
    if start is None or end is None:
        return "—"
    first = datetime.fromtimestamp(start, UTC)
    last = datetime.fromtimestamp(end, UTC)
    tail = "%H:%M:%S" if first.date() == last.date() else "%Y-%m-%d %H:%M:%S"
    return f"{first:%Y-%m-%d %H:%M:%S} – {last.strftime(tail)}"


@dataclass(frozen=True)
class MonitorFinding:
    """One finding as the dashboard lists it."""

    id: int
    at: float
    monitor: str
    kind: str
    label: str
    severity: str
    window_start: float | None
    window_end: float | None
    evidence: str
    quarantined: bool

    @property
    def window(self) -> str:
        """The finding's window, in UTC."""
        return window_span(self.window_start, self.window_end)


@dataclass(frozen=True)
class MonitorEstimate:
    """One window's label-free accuracy estimate and what its audits said."""

    monitor: str
    window_start: float
    window_end: float
    n_tasks: int
    n_answers: int
    estimate: float | None
    low: float | None
    high: float | None
    n_audited: int
    audited_accuracy: float | None
    p_value: float | None
    contradicted: bool
    alpha: float | None = None

    @property
    def window(self) -> str:
        """The window, in UTC."""
        return window_span(self.window_start, self.window_end)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if not math.isfinite(value) else float(value)


def _pct(value: Any) -> str:
    number = _number(value)
    return "—" if number is None else f"{number * 100:.1f}%"


def _time(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—"
    return datetime.fromtimestamp(number, UTC).strftime("%H:%M")


def _p(value: Any) -> str:
    number = _number(value)
    return "" if number is None else f"p = {number:.2g}"


#: Words in a statistic's name that say its value is a share (shown as a percentage).
_SHARE_WORDS = ("accuracy", "confidence", "rate", "share", "coverage")


def _generic(statistics: dict[str, Any], limit: int = 6) -> str:
    parts = []
    for key, value in list(statistics.items())[:limit]:
        number = _number(value)
        if number is not None and 0.0 <= number <= 1.0 and any(w in key for w in _SHARE_WORDS):
            text = _pct(number)
        elif number is not None:
            text = (
                f"{int(number):,}"
                if number.is_integer() and abs(number) < 1e15
                else f"{number:.4g}"
            )
        elif isinstance(value, str):
            text = value
        else:
            continue
        parts.append(f"{key.replace('_', ' ')} {text}")
    return ", ".join(parts)


#: The statistics a kind's sentence needs; a finding without them is listed as it is.
_SENTENCE_NEEDS: dict[str, tuple[str, ...]] = {
    "blind_spot": ("size",),
    "unseen_inputs": ("n_unseen", "n_inputs"),
    "calibration_broken": ("audited_accuracy", "estimate"),
}


def _evidence(kind: str, s: dict[str, Any]) -> str:
    """The finding's statistics that say what it is, in a sentence."""
    needs = _SENTENCE_NEEDS.get(kind)
    if needs is not None and any(_number(s.get(key)) is None for key in needs):
        return _generic(s) or "no statistics recorded"
    if kind == "blind_spot":
        return (
            f"{s['size']} inputs ({_pct(s.get('share'))} of the window) close together "
            f"and unlike the reference, mean confidence {_pct(s.get('mean_confidence'))}; "
            f"seen {_time(s.get('first_seen'))}–{_time(s.get('last_seen'))} UTC"
        )
    if kind == "unseen_inputs":
        return (
            f"{s['n_unseen']} of {s['n_inputs']} inputs unlike the reference "
            f"({_pct(s.get('unseen_rate'))}; {_pct(s.get('null_rate'))} expected)"
        )
    if kind == "calibration_broken":
        audits = _number(s.get("n_audited"))
        p_value = _p(s.get("p_value"))
        return (
            f"audited accuracy {_pct(s['audited_accuracy'])}"
            + ("" if audits is None else f" on {audits:.0f} audits")
            + f", label-free estimate {_pct(s['estimate'])}"
            + (f" ({p_value})" if p_value else "")
        )
    if "p_value" in s:
        parts = [_p(s.get("p_value"))]
        if "n_window" in s:
            parts.append(f"{s['n_window']} tasks")
        impact = _number(s.get("estimated_accuracy_impact"))
        if impact is not None:
            parts.append(f"estimated accuracy impact {impact * 100:+.1f} points")
        return ", ".join(p for p in parts if p) or "no statistics recorded"
    return _generic(s) or "no statistics recorded"


def monitor_findings(store: Any, since: float, until: float) -> list[MonitorFinding]:
    """The findings made in ``[since, until]``, latest first (at most :data:`MAX_FINDINGS`)."""
    found = store.latest_findings(since=since, until=until + 1.0, limit=MAX_FINDINGS)
    held = {zone.finding_id for zone in store.quarantines(active_only=True)}
    return [
        MonitorFinding(
            id=f.id,
            at=f.created_at,
            monitor=f.monitor,
            kind=f.kind,
            label=_KIND_LABELS.get(f.kind, f.kind.replace("_", " ").capitalize()),
            severity=f.severity,
            window_start=f.window_start,
            window_end=f.window_end,
            evidence=_evidence(f.kind, f.statistics),
            quarantined=f.id in held,
        )
        for f in found
    ]


def _count(value: Any) -> int:
    number = _number(value)
    return 0 if number is None else int(number)


def monitor_estimates(store: Any, since: float, until: float) -> list[MonitorEstimate]:
    """Every monitor window that ended in ``[since, until]`` with its label-free estimate,
    latest first (at most :data:`MAX_ESTIMATES`, read in one statement).

    A window whose statistics hold no estimate (a monitor run that could not make one) is
    listed with its task count and no figures."""
    out = []
    for window in store.recent_monitor_windows(since=since, until=until, limit=MAX_ESTIMATES):
        estimate = window.stats.get("estimate")
        e: dict[str, Any] = estimate if isinstance(estimate, dict) else {}
        out.append(
            MonitorEstimate(
                monitor=window.monitor,
                window_start=window.window_start,
                window_end=window.window_end,
                n_tasks=window.n_tasks,
                n_answers=_count(e.get("n_answers")),
                estimate=_number(e.get("estimate")),
                low=_number(e.get("low")),
                high=_number(e.get("high")),
                n_audited=_count(e.get("n_audited")),
                audited_accuracy=_number(e.get("audited_accuracy")),
                p_value=_number(e.get("calibration_p_value")),
                contradicted=e.get("calibration_broken") is True,
                alpha=_number(e.get("alpha")),
            )
        )
    return sorted(out, key=lambda e: (-e.window_end, e.monitor))
