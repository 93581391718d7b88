"""`failwise export` and `failwise recalibrate`: thin commands over the event log."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from failwise.cli._console import console, err_console, fail, one_line
from failwise.cli._inputs import check_output_dir
from failwise.exceptions import FailwiseError, UncertifiedWarning

__all__ = ["export", "recalibrate"]


def _fail(error: FailwiseError) -> None:
    fail(str(error))


def export(
    store: Annotated[str, typer.Option("--store", help="Store URL, e.g. sqlite:///events.db.")],
    to: Annotated[Path, typer.Option("--to", help="Folder for the Parquet files.")],
) -> None:
    """Write the store's tables (tasks, events, queue items, the monitor's) as Parquet files."""
    from failwise.export import to_parquet

    check_output_dir(to, "--to", new=False)
    try:
        summary = to_parquet(store, to)
    except FailwiseError as error:
        _fail(error)
        return
    table = Table(title=f"exported to {summary.folder}", title_justify="left")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(f"{name}.parquet", f"{rows:,}")
    console.print(table)


def _fmt(name: str, value: float | bool | None) -> str:
    if name == "certified":
        return "n/a" if value is None else ("yes" if value else "no")
    if value is None or math.isnan(float(value)):
        return "n/a"
    if name == "ece":
        return f"{value:.4f}"
    if name == "human_hours_per_1000_tasks":
        return f"{value:.2f}"
    return f"{value:.1%}"


def recalibrate(
    store: Annotated[str, typer.Option("--store", help="Store URL, e.g. sqlite:///events.db.")],
    policy: Annotated[Path, typer.Option("--policy", help="Policy artefact in service.")],
    calibrator: Annotated[
        Path | None, typer.Option("--calibrator", help="Calibrator artefact in service.")
    ] = None,
    since: Annotated[
        float | None, typer.Option("--since", help="Only tasks decided after this Unix time.")
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option("--write", help="Write the new versioned artefacts to this folder."),
    ] = None,
    allow_less_automation: Annotated[
        bool,
        typer.Option(
            "--allow-less-automation",
            help="With --write: accept a policy that answers less or sends more to humans.",
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the comparison as JSON.")
    ] = None,
) -> None:
    """Refit calibrator and thresholds on labels from the log; show old versus new.

    Only the labels of the guard's own escalations and audits are used, weighted by the
    inverse of the probability that each task was sent for review. The refit replaces the
    policy in service only when the log certifies its risk target.
    """
    from failwise.loop import recalibrate as run
    from failwise.loop._report import METRICS

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncertifiedWarning)
            report = run(store, policy, calibrator_path=calibrator, since=since)
    except FailwiseError as error:
        _fail(error)
        return
    for w in caught:
        if issubclass(w.category, UncertifiedWarning):
            err_console.print(f"[yellow]note:[/yellow] {escape(one_line(str(w.message)))}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    table = Table(
        title=(
            f"recalibration on {report.n_tasks:,} logged tasks, {report.n_labels:,} labels "
            "from the guard's escalations and audits"
        ),
        caption=(
            "coverage: exact on the logged tasks; the other rows estimated on "
            f"{report.n_eval:,} held-out labels (used for neither refit) "
            "with inverse-probability weights (task completion projected with the default "
            "outcome model); certified: on a "
            f"uniform sample of {report.n_certification:,} labels"
        ),
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("metric")
    table.add_column("old", justify="right")
    table.add_column("new", justify="right")
    for name, label in METRICS:
        table.add_row(
            label, _fmt(name, getattr(report.old, name)), _fmt(name, getattr(report.new, name))
        )
    console.print(table)
    console.print(report.reason)
    for note in report.notes:
        console.print(f"[dim]{note}[/dim]")
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
    if write is None:
        console.print("[dim]nothing written; pass --write DIR to save the new version.[/dim]")
        return
    try:
        artifacts = report.write(write, allow_less_automation=allow_less_automation)
    except FailwiseError as error:
        _fail(error)
        return
    for artifact in artifacts:
        console.print(f"wrote {artifact.kind} {artifact.short_version} to {artifact.path}")
