"""Where the command line writes: results on stdout, progress and errors on stderr.

Exit codes (documented in ``failwise --help`` and the README):

* 0 — the command ran and every requested check passed;
* 1 — the command ran but a requested check failed (``--fail-if-uncertified``);
* 2 — bad input: a flag out of range, a missing or malformed file, an output path that
  cannot be written. Nothing is written and one line on stderr says what to fix.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_CODES_HELP",
    "EXIT_OK",
    "Reporter",
    "console",
    "err_console",
    "fail",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 a requested check failed (--fail-if-uncertified, --fail-on-alert); "
    "2 bad input (nothing written, one line on stderr says what to fix)."
)

console = Console(highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def one_line(text: str) -> str:
    """``text`` on one line: newlines and runs of spaces become single spaces."""
    return " ".join(str(text).split())


def fail(message: str) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with code 2 (bad input)."""
    err_console.print(f"[red]error:[/red] {escape(one_line(message))}")
    raise typer.Exit(EXIT_BAD_INPUT)


class Reporter:
    """Progress on stderr: plain lines, and a progress bar over long steps on a terminal.

    ``quiet`` silences progress and notes (results and errors are still printed).
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        """Report one step."""
        if not self.quiet:
            err_console.print(f"[dim]failwise:[/dim] {escape(one_line(message))}")

    def note(self, message: str) -> None:
        """Report something the user should read (an uncertified target, a disabled screen)."""
        if not self.quiet:
            err_console.print(f"[yellow]note:[/yellow] {escape(one_line(message))}")

    @contextlib.contextmanager
    def steps(self, description: str) -> Iterator[Callable[[int, int, str], None]]:
        """A callback ``(done, total, step)`` drawn as a progress bar on a terminal.

        Off a terminal (a pipe, a CI log) each step is one plain line, so logs stay readable.
        """
        if self.quiet:
            yield lambda done, total, step: None
            return
        if not (err_console.is_terminal and not os.environ.get("CI")):

            def plain(done: int, total: int, step: str) -> None:
                if done < total:
                    self(f"{description}: {step} ({done:,} of {total:,} done)")

            yield plain
            return
        bar = Progress(
            TextColumn("[dim]failwise:[/dim] {task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        task = bar.add_task(escape(description), total=None)

        def update(done: int, total: int, step: str) -> None:
            bar.update(
                task, completed=done, total=total, description=escape(f"{description}: {step}")
            )

        with bar:
            yield update


def stdout_is_data(flag_value: object) -> bool:
    """Whether ``--json -`` sends the JSON summary to stdout (so tables must stay off it)."""
    return str(flag_value) == "-"


def flush() -> None:
    """Flush both streams (so stderr notes appear before a non-zero exit)."""
    sys.stdout.flush()
    sys.stderr.flush()
