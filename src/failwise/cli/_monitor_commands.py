"""`failwise monitor` and `failwise gaps`: the monitor over the event log, on the command line.

``monitor`` processes the new complete windows (incrementally: stored windows are never
recomputed), then shows the findings of the last windows first and a table of tests per
window. ``gaps`` lists the blind spots found so far, ranked by expected silent failures,
and quarantines or releases one.

Exit codes: 0 when the monitor ran (whatever it found); 1 with ``--fail-on-alert`` when
the windows shown hold a finding that means failure (an ``alert``); 2 for bad input: a
store that does not exist, a policy folder without a monitor reference, a malformed
window, or a store without any decision (there is nothing to monitor). A store without
audits or a reference without features is not an error: the monitor runs what it can and
says on stderr what it cannot say.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from failwise.cli._console import EXIT_CHECK_FAILED, console, err_console, fail, one_line
from failwise.cli._inputs import check_output_file, distinct_outputs
from failwise.exceptions import FailwiseError

__all__ = ["gaps", "monitor"]

StoreOption = Annotated[str, typer.Option("--store", help="Store URL, e.g. sqlite:///events.db.")]
PolicyOption = Annotated[
    Path,
    typer.Option("--policy", help="Policy artefact (or its model folder) with its reference."),
]
WindowOption = Annotated[
    str, typer.Option("--window", help="Window: a duration (1h, 30m, 1d) or a task count (500).")
]


def _when(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%m-%d %H:%M")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _note(message: str) -> None:
    err_console.print(f"[yellow]note:[/yellow] {escape(one_line(message))}")


def _open(store_url: str, policy: Path, window: str) -> tuple[Any, Any, Any]:
    """(store, reference, window) or exit 2 with one line."""
    from failwise import store as stores
    from failwise.monitor import load_reference, parse_window

    try:
        spec = parse_window(window)
        reference = load_reference(policy)
        opened = stores.open(store_url, create=False)
    except FailwiseError as error:
        fail(str(error))
    if opened.first_task_time() is None:
        opened.close()
        fail(
            f"The store at {opened.url} holds no decisions yet, so there is nothing to monitor; "
            "record decisions with Guard(store=...) first."
        )
    return opened, reference, spec.tasks if spec.tasks is not None else window


def _finding_summary(finding: Any) -> str:
    stats = finding.statistics
    if finding.kind == "blind_spot":
        return (
            f"{stats.get('size')} inputs, {_pct(stats.get('share'))} of traffic, "
            f"{float(stats.get('expected_silent_failures', 0)):.1f} silent failures expected"
        )
    if finding.kind == "calibration_broken":
        return (
            f"audited {_pct(stats.get('audited_accuracy'))} vs estimate "
            f"{_pct(stats.get('estimate'))} (p={float(stats.get('p_value', 1)):.2g})"
        )
    parts = [f"p={float(stats.get('p_value', 1)):.2g}"]
    if stats.get("estimated_accuracy_impact") is not None:
        parts.append(f"accuracy impact {100 * float(stats['estimated_accuracy_impact']):+.1f} pts")
    if finding.kind == "unseen_inputs":
        parts.append(f"{_pct(stats.get('unseen_rate'))} unseen")
    return ", ".join(parts)


def _findings_table(found: list[Any]) -> Table:
    table = Table(title="findings (alerts first)", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("window")
    table.add_column("finding")
    table.add_column("what", overflow="fold")
    order = sorted(found, key=lambda f: (f.severity != "alert", f.window_start or 0.0, f.id))
    for f in order:
        style = "bold red" if f.severity == "alert" else ""
        table.add_row(
            str(f.id),
            _when(f.window_start),
            f"[{style}]{f.kind}[/]" if style else f.kind,
            escape(_finding_summary(f)),
        )
    return table


def _window_table(window: Any) -> Table:
    stats = window.stats
    est = stats.get("estimate", {})
    title = (
        f"window {_when(window.window_start)}: {window.n_tasks:,} tasks, "
        f"est. accuracy {_pct(est.get('estimate'))}"
    )
    if est.get("corrected") is not None:
        title += f", audit-corrected {_pct(est.get('corrected'))} ({est.get('n_audited')} audits)"
    table = Table(title=title, title_justify="left")
    table.add_column("test")
    table.add_column("method")
    table.add_column("statistic", justify="right")
    table.add_column("p-value", justify="right")
    table.add_column("flag")
    for test in stats.get("tests", []):
        statistic = test.get("statistic")
        table.add_row(
            str(test["name"]),
            str(test.get("method", "binomial")),
            "-" if statistic is None else f"{float(statistic):.3g}",
            f"{float(test['p_value']):.2g}",
            "[bold red]yes[/]" if test.get("rejected") else "",
        )
    return table


def monitor(
    store: StoreOption,
    policy: PolicyOption,
    window: WindowOption = "1h",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the windows and findings as JSON.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the HTML monitor report.")
    ] = None,
    false_alarm_rate: Annotated[
        float, typer.Option("--false-alarm-rate", help="Chance of any false finding per horizon.")
    ] = 0.05,
    horizon: Annotated[
        int, typer.Option("--horizon", help="Windows over which --false-alarm-rate holds.")
    ] = 24,
    audit_lag: Annotated[
        float, typer.Option("--audit-lag", help="Seconds a window waits for its audits.")
    ] = 0.0,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST each new finding as JSON here.")
    ] = None,
    show: Annotated[int, typer.Option("--show", help="Windows shown (the newest).")] = 5,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit 1 when a shown window has an alert.")
    ] = False,
) -> None:
    """Monitor the new windows of the event log against the policy's reference.

    Label-free accuracy estimate with its audit check, drift tests (confidence, out-of-scope
    score, label and action mix, input features, unseen inputs) and blind spots; findings
    are stored in the store, first in the output.
    """
    from failwise.monitor import run_monitor, windows

    if show < 1:
        fail(f"--show must be at least 1; got {show}.")
    check_output_file(json_out, "--json", "monitor.json")
    check_output_file(report, "--report", "monitor.html")
    distinct_outputs(**{"--json": json_out, "--report": report})
    opened, reference, spec = _open(store, policy, window)
    with opened:
        try:
            run = run_monitor(
                opened,
                reference,
                window=spec,
                false_alarm_rate=false_alarm_rate,
                horizon=horizon,
                audit_lag_s=audit_lag,
                webhook_url=webhook,
            )
        except FailwiseError as error:
            fail(str(error))
        shown = windows(opened, reference, window=spec)[-show:]
        first = shown[0].window_start if shown else math.inf
        found = [
            f
            for f in opened.stored_findings(monitor=run.monitor, limit=100_000)
            if (f.window_start or 0.0) >= first
        ]
        zones = {z.finding_id: z.state for z in opened.quarantines()}
    for note in run.notes:
        _note(note)
    for problem in run.delivery_errors:
        _note(problem)
    console.print(
        f"monitor {run.monitor}: {len(run.windows)} new window(s), {len(run.findings)} new "
        f"finding(s); showing the last {len(shown)} window(s)"
    )
    if found:
        console.print(_findings_table(found))
    else:
        console.print("no finding in the windows shown")
    for stored in shown:
        console.print(_window_table(stored))
    body = {
        "monitor": run.monitor,
        "new_windows": len(run.windows),
        "windows": [
            {
                "window_start": w.window_start,
                "window_end": w.window_end,
                "n_tasks": w.n_tasks,
                "stats": w.stats,
            }
            for w in shown
        ],
        "findings": [f.to_dict() for f in found],
        "notes": run.notes,
        "capabilities": reference.capabilities(),
    }
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(body, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if report is not None:
        from failwise.report import write_monitor_report

        write_monitor_report(
            report,
            title=f"Monitor of {policy}",
            windows=body["windows"],
            findings=body["findings"],
            quarantined=zones,
            notes=run.notes,
            generated_by=f"failwise monitor --window {window}",
        )
    if fail_on_alert and any(f.severity == "alert" for f in found):
        raise typer.Exit(EXIT_CHECK_FAILED)


def gaps(
    store: StoreOption,
    policy: PolicyOption,
    window: WindowOption = "1h",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the blind spots as JSON.")
    ] = None,
    quarantine: Annotated[
        int | None, typer.Option("--quarantine", help="Quarantine the blind spot of this finding.")
    ] = None,
    release: Annotated[
        int | None, typer.Option("--release", help="Release this quarantine id.")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who releases (with --release).")] = "cli",
) -> None:
    """List the blind spots found so far, ranked by expected silent failures.

    Runs the monitor over the new windows first. With `--quarantine ID` every guard with
    `quarantine=True` on this store escalates the inputs inside that blind spot within
    seconds; `--release ID` stops it.
    """
    from failwise import monitor as mon

    check_output_file(json_out, "--json", "gaps.json")
    opened, reference, spec = _open(store, policy, window)
    if reference.features is None and release is None:
        opened.close()
        fail(
            f"The reference of {str(policy)!r} has no input features, so no blind spot can be "
            "found: rebuild it with features= (the function the guard records with "
            "Guard(features=...)). `failwise monitor` runs the checks that need no features."
        )
    with opened:
        try:
            run = mon.run_monitor(opened, reference, window=spec)
            message = None
            if quarantine is not None:
                zone_id = mon.quarantine(opened, quarantine)
                message = f"quarantined finding {quarantine} as quarantine {zone_id}"
            if release is not None:
                done = mon.release(opened, release, by=by)
                message = (
                    f"released quarantine {release}"
                    if done
                    else (f"quarantine {release} was released already")
                )
        except FailwiseError as error:
            fail(str(error))
        spots = mon.findings(opened, reference=reference, window=spec, kind="blind_spot")
        zones = {z.finding_id: (z.id, z.state) for z in opened.quarantines()}
    for note in run.notes:
        _note(note)
    spots.sort(key=lambda f: -float(f.statistics.get("expected_silent_failures", 0.0)))
    table = Table(title=f"blind spots ({len(spots)})", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("seen")
    table.add_column("n", justify="right")
    table.add_column("conf", justify="right")
    table.add_column("silent", justify="right")
    table.add_column("quarantine")
    table.add_column("example", overflow="fold")
    for f in spots:
        stats = f.statistics
        zone = zones.get(f.id)
        first = f.examples[0] if f.examples else {}
        text = first.get("text") or first.get("task_id", "") if isinstance(first, dict) else first
        table.add_row(
            str(f.id),
            _when(f.window_start),
            str(stats.get("size")),
            "-" if stats.get("mean_confidence") is None else f"{stats['mean_confidence']:.2f}",
            f"{float(stats.get('expected_silent_failures', 0.0)):.1f}",
            "-" if zone is None else f"{zone[0]} {zone[1]}",
            escape(str(text)),
        )
    console.print(table)
    if message:
        console.print(message)
    if json_out is not None:
        payload = {
            "blind_spots": [
                {
                    **f.to_dict(),
                    "quarantine": None
                    if f.id not in zones
                    else {"id": zones[f.id][0], "state": zones[f.id][1]},
                }
                for f in spots
            ]
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
