"""`failwise export` and `failwise recalibrate`: thin commands over the event log."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from failwise.cli._console import console, fail
from failwise.exceptions import FailwiseError

__all__ = ["export", "recalibrate"]


def _fail(error: FailwiseError) -> None:
    fail(str(error))


def export(
    store: Annotated[str, typer.Option("--store", help="Store URL, e.g. sqlite:///events.db.")],
    to: Annotated[Path, typer.Option("--to", help="Folder for the Parquet files.")],
) -> None:
    """Write tasks, events and queue items as Parquet files (for DuckDB, pandas, ...)."""
    from failwise.export import to_parquet

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


def _fmt(name: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.4f}" if name == "ece" else f"{value:.1%}"


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
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the comparison as JSON.")
    ] = None,
) -> None:
    """Refit calibrator and thresholds on labels from the log; show old versus new."""
    from failwise.loop import recalibrate as run

    try:
        report = run(store, policy, calibrator_path=calibrator, since=since)
    except FailwiseError as error:
        _fail(error)
        return
    table = Table(
        title=f"recalibration on {report.n_eval} held-out of {report.n_labels} labels",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("old", justify="right")
    table.add_column("new", justify="right")
    for name, old, new in report.rows:
        table.add_row(name.replace("_", " "), _fmt(name, old), _fmt(name, new))
    console.print(table)
    if report.n_without_scores:
        console.print(
            f"[dim]{report.n_without_scores} labelled task(s) had no recorded scores.[/dim]"
        )
    if write is not None:
        for artifact in report.write(write):
            console.print(f"wrote {artifact.kind} {artifact.short_version} to {artifact.path}")
    else:
        console.print("[dim]nothing written; pass --write DIR to save the new version.[/dim]")
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
