"""The `failwise` command line.

This module builds the Typer app from one module per command group:
``_evaluate_commands`` (``demo``, ``evaluate``), ``_runtime_commands`` (``export``,
``recalibrate``), ``_monitor_commands`` (``monitor``, ``gaps``) and ``_service_commands``
(``serve``, ``keys``). Command modules never
import this one, so there is no import cycle.
"""

from __future__ import annotations

from typing import Annotated

import typer

from failwise import __version__
from failwise.cli._console import EXIT_CODES_HELP, console
from failwise.cli._evaluate_commands import demo, evaluate
from failwise.cli._monitor_commands import gaps, monitor
from failwise.cli._runtime_commands import export, recalibrate
from failwise.cli._service_commands import keys_app, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="failwise",
    help="Make ML systems handle their own failures: calibrate, fit a decision ladder, and "
    f"measure product metrics instead of accuracy.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"failwise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """failwise command line."""


_EPILOG = EXIT_CODES_HELP
for command in (demo, evaluate, export, recalibrate, serve, monitor, gaps):
    app.command(epilog=_EPILOG)(command)
app.add_typer(keys_app, name="keys")


def main() -> None:
    """Entry point of the `failwise` script."""
    app()
