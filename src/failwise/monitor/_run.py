"""`run_monitor`: the incremental monitor over the event log, and its findings.

Each call processes only the complete windows after the last one it stored (see
:mod:`failwise.monitor._windows`), runs :func:`~failwise.monitor.analyse_window` on each,
and stores the window's statistics and its findings in one transaction
(``monitor_windows`` and ``findings``); nothing is ever rescanned.

False alarms
------------
Within a window every test (failure and change monitors alike) enters one Holm
procedure at level ``false_alarm_rate / horizon``. Across windows that level is a
Bonferroni split over ``horizon`` windows: over any ``horizon`` consecutive windows in which
nothing changed, the probability of any finding is at most ``false_alarm_rate`` (e.g.
``horizon=24`` with hourly windows: at most a 5 % chance of one false finding per day).
Each window's statistics record the level it was tested at.

Findings are delivered once, when they are stored: to ``on_finding(finding)`` and, with
``webhook_url``, as a JSON ``POST`` (``{"finding": {...}}``). A failed delivery never
loses the finding (it is in the store already); it is listed in
:attr:`MonitorRun.delivery_errors`.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from failwise._params import Count, Interval, Probability, Seconds, check_param
from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.monitor._quarantine import release_reviewed
from failwise.monitor._reference import Reference
from failwise.monitor._unseen import UnseenInputDetector
from failwise.monitor._window_tests import (
    FAILURE_KINDS,
    WindowData,
    analyse_window,
    category_radius,
)
from failwise.monitor._windows import WindowSpec, iter_new_windows, parse_window

__all__ = ["MonitorRun", "findings", "monitor_name", "post_json", "run_monitor", "windows"]


@dataclass(frozen=True)
class MonitorRun:
    """What one :func:`run_monitor` call did.

    Attributes
    ----------
    monitor : str
        The monitor's name in the store: the reference's version and the window length.
    windows : list of StoredWindow
        Windows processed by this call, oldest first (each with its ``stats``).
    findings : list of StoredFinding
        Findings stored by this call.
    notes : list of str
        What the monitor could not say, and why.
    delivery_errors : list of str
        Findings that ``on_finding`` or the webhook did not take.
    """

    monitor: str
    windows: list[Any]
    findings: list[Any]
    notes: list[str] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[Any]:
        """The findings that mean failure (severity ``alert``)."""
        return [f for f in self.findings if f.severity == "alert"]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        return {
            "monitor": self.monitor,
            "windows": [
                {
                    "id": w.id,
                    "window_start": w.window_start,
                    "window_end": w.window_end,
                    "n_tasks": w.n_tasks,
                    "stats": w.stats,
                }
                for w in self.windows
            ],
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            "delivery_errors": list(self.delivery_errors),
        }


def monitor_name(reference: Reference, window: Any) -> str:
    """The name under which windows of ``reference`` and ``window`` are stored."""
    return f"{reference.version[:16]}/{parse_window(window).label}"


def post_json(url: str, body: Any, *, timeout_s: float = 5.0) -> None:
    """POST ``body`` as JSON to ``url``; raise on a non-2xx answer or no answer."""
    data = json.dumps(body, allow_nan=False).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "webhook refused", {}, None)  # type: ignore[arg-type]


def _check_store(store: Any) -> None:
    if not callable(getattr(store, "monitor_rows", None)):
        raise InputError(
            f"`store` must be an event store from failwise.store.open(url); got {describe(store)}."
        )


def _example_reader(store: Any) -> Callable[[str], dict[str, Any]]:
    def example(task_id: str) -> dict[str, Any]:
        try:
            decision = store.task(task_id).decision
        except Exception:  # the example is decoration: a missing one never stops the monitor
            return {"task_id": task_id}
        extra = decision.get("extra") or {}
        context = extra.get("context") or {}
        text = context.get("text") if isinstance(context, dict) else None
        out: dict[str, Any] = {"task_id": task_id, "action": decision.get("action")}
        if text is not None:
            out["text"] = str(text)[:300]
        elif context:
            out["context"] = context
        if decision.get("confidence") is not None:
            out["confidence"] = decision.get("confidence")
        return out

    return example


def run_monitor(
    store: Any,
    reference: Reference,
    *,
    window: str | int = "1h",
    false_alarm_rate: float = 0.05,
    horizon: int = 24,
    audit_lag_s: float = 0.0,
    now: float | None = None,
    max_windows: int | None = None,
    on_finding: Callable[[Any], Any] | None = None,
    webhook_url: str | None = None,
    n_permutations: int | None = None,
    min_gap_size: int = 5,
    release_after: int | None = 20,
    random_state: int = 0,
) -> MonitorRun:
    """Process the new complete windows of the event log; store their statistics and findings.

    Parameters
    ----------
    store : Store
        From :func:`failwise.store.open`.
    reference : Reference
        What the policy was fitted on (:func:`~failwise.monitor.load_reference`).
    window : str or int, default="1h"
        A duration ("1h", "30m", "1d") or a number of tasks per window (500).
    false_alarm_rate : float, default=0.05
        Chance of any false finding over ``horizon`` unchanged windows (see the notes).
    horizon : int, default=24
        Windows over which ``false_alarm_rate`` holds.
    audit_lag_s : float, default=0.0
        A window is processed once it is this old, so its audits can arrive first.
    now : float, optional
        Unix seconds (default: the clock); windows ending later wait.
    max_windows : int, optional
        Process at most this many windows in this call.
    on_finding : callable, optional
        Called once with each new finding (a :class:`~failwise.store.StoredFinding`).
    webhook_url : str, optional
        ``http(s)://`` URL that receives each new finding as a JSON POST.
    n_permutations : int, optional
        Of the feature MMD test; by default enough for its smallest p-value to be half the
        window's level (at least 200).
    min_gap_size : int, default=5
        Smallest blind-spot cluster reported.
    release_after : int or None, default=20
        Release each active quarantine once reviewers resolved this many of its
        escalations (:func:`~failwise.monitor.release_reviewed`); None never does.
    random_state : int, default=0

    Returns
    -------
    MonitorRun
    """
    where = "run_monitor"
    _check_store(store)
    if not isinstance(reference, Reference):
        raise InputError(
            f"`reference` must be a failwise.monitor.Reference; got {describe(reference)}. "
            "Load one with failwise.monitor.load_reference(policy_dir)."
        )
    spec: WindowSpec = parse_window(window)
    rate = float(
        check_param("false_alarm_rate", false_alarm_rate, [Probability("neither")], where=where)
    )
    span = int(check_param("horizon", horizon, [Count(1)], where=where))
    lag = float(check_param("audit_lag_s", audit_lag_s, [Seconds(allow_zero=True)], where=where))
    clock = (
        time.time()
        if now is None
        else float(check_param("now", now, [Interval(Real, 0, None)], where=where))
    )
    if max_windows is not None:
        check_param("max_windows", max_windows, [Interval(Integral, 1, None)], where=where)
    if n_permutations is not None:
        check_param("n_permutations", n_permutations, [Count(1)], where=where)
    check_param("min_gap_size", min_gap_size, [Count(2)], where=where)
    if on_finding is not None and not callable(on_finding):
        raise InputError(
            f"`on_finding` must be a callable finding -> None; got {describe(on_finding)}."
        )
    if webhook_url is not None and (
        not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))
    ):
        raise InputError(f"`webhook_url` must be an http:// or https:// URL; got {webhook_url!r}.")
    level = rate / span
    permutations = (
        max(200, math.ceil(2.0 / level)) if n_permutations is None else int(n_permutations)
    )
    name = monitor_name(reference, window)
    notes = list(reference.limitations())
    detector = gap_detector = None
    zone_radius = category_radius(reference)
    if reference.features is not None:
        # The test: the distance alone, calibrated on every index row's distance to the
        # others (the reference rows and, when saved, the training inputs): thousands of
        # calibration rows and the densest index, which detect more than adding the
        # model's doubt, since only the reference rows have out-of-sample confidences
        # (see UnseenInputDetector's notes). The blind spots: the detector the gap finder
        # was tuned on (distance and doubt, split calibration).
        neighbours = (
            None
            if reference.neighbour_features is None
            else reference.neighbour_features.astype(np.float64)
        )
        features = reference.features.astype(np.float64)
        detector = UnseenInputDetector(
            metric=reference.feature_metric, random_state=random_state
        ).fit(features, reference.predicted, neighbour_features=neighbours)
        gap_detector = UnseenInputDetector(
            metric=reference.feature_metric, calibration="split", random_state=random_state
        ).fit(
            features,
            reference.predicted,
            confidence=reference.confidence,
            neighbour_features=neighbours,
        )
    last = store.last_monitor_window(name)
    last_id = None if last is None else last.id
    example = _example_reader(store)
    known = [
        (f.id, np.asarray(f.statistics["centre"]), float(f.statistics["radius"]))
        for f in store.stored_findings(monitor=name, kind="blind_spot", limit=10_000)
        if "centre" in f.statistics
    ]
    done: list[Any] = []
    new_findings: list[Any] = []
    errors: list[str] = []
    slices = iter_new_windows(
        store,
        spec,
        last_end=None if last is None else last.window_end,
        last_task=None if last is None else last.last_task,
        now=clock,
        audit_lag_s=lag,
    )
    for piece in slices:
        ids = [str(r[0]) for r in piece.rows]
        stored = store.task_features(ids) if reference.features is not None else None
        data = WindowData.from_rows(
            piece.rows,
            () if stored is None else stored.task_ids,
            None if stored is None else stored.features,
        )
        stats, found = analyse_window(
            data,
            reference,
            detector,
            level=level,
            n_permutations=permutations,
            random_state=random_state,
            min_gap_size=min_gap_size,
            example=example,
            zone_radius=zone_radius,
            gap_detector=gap_detector,
        )
        stats["window"] = spec.label
        _track_blind_spots(found, known)
        window_id, finding_ids = store.append_monitor_window(
            name,
            after=last_id,
            window_start=piece.start,
            window_end=piece.end,
            last_task=piece.last_task,
            n_tasks=len(piece.rows),
            stats=stats,
            findings=found,
        )
        last_id = window_id
        done.append(store.monitor_windows(name, after_id=window_id - 1)[0])
        for finding_id in finding_ids:
            finding = store.finding(finding_id)
            if finding.kind == "blind_spot":
                centre = np.asarray(finding.statistics["centre"])
                known.append((finding.id, centre, float(finding.statistics["radius"])))
            new_findings.append(finding)
            errors.extend(_deliver(finding, on_finding, webhook_url))
        if max_windows is not None and len(done) >= int(max_windows):
            break
    if release_after is not None:
        for released in release_reviewed(store, min_labelled=release_after):
            notes.append(
                f"released quarantine {released.quarantine_id} (finding {released.finding_id}) "
                f"after {released.n_labelled} reviewed escalations"
            )
    if not done:
        if store.first_task_time() is None:
            notes.append("the store holds no decisions yet: there is nothing to monitor")
        else:
            notes.append(
                f"no new complete {spec.label} window"
                + (f" (older than {lag:g} s)" if lag else "")
                + ": every complete window is monitored already"
            )
    elif not any(w.stats.get("n_audited") for w in done):
        notes.append(
            "no audited answers in these windows: the estimates trust the calibration and "
            "cannot see inputs it never saw; audit a share of answers (Guard(audit_rate=...))"
        )
    return MonitorRun(name, done, new_findings, notes, errors)


def _track_blind_spots(found: list[dict[str, Any]], known: list[tuple[int, Any, float]]) -> None:
    """Mark a blind spot whose centre lies inside an earlier one as its continuation."""
    for finding in found:
        if finding["kind"] != "blind_spot":
            continue
        centre = np.asarray(finding["statistics"]["centre"])
        for finding_id, earlier, radius in reversed(known):
            if earlier.shape != centre.shape:
                continue
            if finding["statistics"]["metric"] == "cosine":
                distance = 1.0 - float(centre @ earlier)
            else:
                distance = float(np.linalg.norm(centre - earlier))
            if distance <= radius:
                finding["statistics"]["continues"] = finding_id
                break
        finding["statistics"].setdefault("continues", None)


def _deliver(
    finding: Any, on_finding: Callable[[Any], Any] | None, webhook_url: str | None
) -> list[str]:
    errors = []
    if on_finding is not None:
        try:
            on_finding(finding)
        except Exception as exc:  # a failing callback must not stop the monitor
            errors.append(f"finding {finding.id}: on_finding raised {type(exc).__name__}: {exc}")
    if webhook_url is not None:
        try:
            post_json(webhook_url, {"finding": finding.to_dict()})
        except (OSError, ValueError) as exc:
            errors.append(f"finding {finding.id}: webhook {webhook_url} failed: {exc}")
    return errors


def findings(
    store: Any,
    *,
    reference: Reference | None = None,
    window: str | int | None = None,
    kind: str | None = None,
    severity: str | None = None,
    after_id: int = 0,
    limit: int = 1000,
) -> list[Any]:
    """The stored findings, oldest first (what the service's dashboard lists).

    Parameters
    ----------
    store : Store
    reference, window : optional
        Only the findings of this monitor (both needed to name it).
    kind : str, optional
        E.g. "blind_spot", "calibration_broken".
    severity : {"alert", "change"}, optional
    after_id : int, default=0
        Only findings with a larger id (to poll for new ones).
    limit : int, default=1000

    Returns
    -------
    list of StoredFinding
    """
    _check_store(store)
    if (reference is None) != (window is None):
        raise InputError(
            "Pass both `reference` and `window` to name one monitor, or neither for every "
            "monitor's findings."
        )
    if severity is not None and severity not in ("alert", "change"):
        raise InputError(f"`severity` must be 'alert' or 'change'; got {severity!r}.")
    if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
        raise InputError(f"`after_id` must be an int >= 0; got {describe(after_id)}.")
    name = None if reference is None else monitor_name(reference, window)
    rows = store.stored_findings(monitor=name, kind=kind, after_id=after_id, limit=limit)
    return [f for f in rows if severity is None or f.severity == severity]


def windows(store: Any, reference: Reference, *, window: str | int = "1h") -> list[Any]:
    """Every stored window of the monitor of ``reference`` and ``window``, oldest first."""
    _check_store(store)
    return list(store.monitor_windows(monitor_name(reference, window)))


def is_failure(kind: str) -> bool:
    """Whether findings of ``kind`` mean failure (and alert)."""
    return kind in FAILURE_KINDS
