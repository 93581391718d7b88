"""`failwise demo` and `failwise evaluate`: thin commands over `failwise.evaluation`."""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from failwise import __version__
from failwise.exceptions import FailwiseError, UncertifiedWarning
from failwise.outcomes import Estimate

app = typer.Typer(
    name="failwise",
    help="Make ML systems handle their own failures: calibrate, fit a decision ladder, and "
    "measure product metrics instead of accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)


class DemoDataset(StrEnum):
    digits = "digits"
    clinc150 = "clinc150"


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


def _pct(est: Estimate | float | None, ci: bool = False) -> str:
    if est is None:
        return "–"
    value = est.value if isinstance(est, Estimate) else est
    if math.isnan(value):
        return "n/a"
    text = f"{value:.1%}"
    if ci and isinstance(est, Estimate) and not math.isnan(est.low):
        text += f" [dim]({est.low:.1%}–{est.high:.1%})[/dim]"
    return text


def _secs(est: Estimate) -> str:
    value = est.value
    if math.isnan(value):
        return "n/a"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _print_result(result: Any, title: str) -> None:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    table.add_column("task completion (95% CI)", justify="right")
    table.add_column("without ladder", justify="right")
    table.add_column("escalation", justify="right")
    table.add_column("recovery", justify="right")
    table.add_column("silent failures", justify="right")
    table.add_column("time to correct\nmedian / p90", justify="right")
    table.add_column("automation", justify="right")
    by_name = {m.name: m for m in result.models}
    for rank, row in enumerate(result.comparison.rows, start=1):
        m = row.metrics
        baseline = result.baselines.get(row.name)
        table.add_row(
            f"{rank}. {row.name}",
            _pct(by_name[row.name].in_scope_accuracy),
            _pct(m.task_completion_rate, ci=True),
            _pct(baseline.task_completion_rate) if baseline else "–",
            _pct(m.escalation_rate),
            _pct(m.recovery_rate),
            _pct(m.silent_failure_rate),
            f"{_secs(m.time_to_correct_output_median_s)} / {_secs(m.time_to_correct_output_p90_s)}",
            _pct(m.automation_rate),
        )
    console.print(table)

    ladder = Table(
        title="The decision ladder on the test rows", title_justify="left", header_style="bold"
    )
    ladder.add_column("model")
    for action in ("answer", "clarify", "fallback", "escalate", "abstain"):
        ladder.add_column(action, justify="right")
    ladder.add_column("answer threshold", justify="right")
    ladder.add_column("ECE before → after", justify="right")
    for e in result.models:
        rates = e.decisions.rates()
        ctx = e.policy.describe()
        threshold = ctx["answer_threshold"]
        ladder.add_row(
            e.name,
            *[_pct(r) for r in rates.values()],
            "never" if not math.isfinite(threshold) else f"{threshold:.3f}",
            f"{e.ece_before:.3f} → {e.ece_after:.3f}",
        )
    console.print(ladder)

    larson = [e for e in result.models if e.oos_recall is not None]
    if larson:
        lt = Table(
            title="Out-of-scope handling, Larson et al. (2019) definitions",
            title_justify="left",
            header_style="bold",
        )
        lt.add_column("model")
        lt.add_column("in-scope accuracy", justify="right")
        lt.add_column("out-of-scope recall", justify="right")
        for e in larson:
            lt.add_row(e.name, _pct(e.larson_in_scope_accuracy), _pct(e.oos_recall))
        for name, acc, rec in getattr(result, "published", []):
            lt.add_row(
                f"[dim]paper: {name}[/dim]", f"[dim]{acc:.1f}%[/dim]", f"[dim]{rec:.1f}%[/dim]"
            )
        console.print(lt)

    assumptions = Table(
        title="Outcome model (the assumptions behind every projected number)",
        title_justify="left",
        header_style="bold",
    )
    assumptions.add_column("assumption")
    assumptions.add_column("value", justify="right")
    assumptions.add_column("why")
    for a in result.outcome_model.assumptions():
        assumptions.add_row(a.name, a.formatted(), a.reason)
    console.print(assumptions)


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    """Collect failwise's warnings (e.g. an uncertifiable target) to print them readably."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncertifiedWarning)
        yield notes
    notes.extend(str(w.message) for w in caught if issubclass(w.category, UncertifiedWarning))
    for w in caught:
        if not issubclass(w.category, UncertifiedWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _print_notes(notes: list[str]) -> None:
    for note in dict.fromkeys(notes):
        err_console.print(f"[yellow]note:[/yellow] {note}")


def _write_outputs(
    result: Any, json_path: Path | None, report_path: Path | None, title: str, dataset_text: str
) -> None:
    from failwise.evaluation import build_report

    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_dict(), indent=2, default=_json_default) + "\n")
        console.print(f"summary written to [bold]{json_path}[/bold]")
    if report_path is not None:
        path = build_report(result, report_path, title=title, dataset=dataset_text)
        console.print(f"report written to [bold]{path}[/bold] (self-contained; opens offline)")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@app.command()
def demo(
    dataset: Annotated[
        DemoDataset,
        typer.Option(
            help="digits: scikit-learn's handwritten digits (no download); "
            "clinc150: 150 intents plus out-of-scope queries."
        ),
    ] = DemoDataset.digits,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with a local copy of the dataset (clinc150: data_full.json); "
            "otherwise it is downloaded once and cached."
        ),
    ] = None,
    embeddings: Annotated[
        bool | None,
        typer.Option(
            "--embeddings/--no-embeddings",
            help="clinc150: add the sentence-embedding model (needs the `embeddings` "
            "extra). Default: when installed.",
        ),
    ] = None,
    target_risk: Annotated[
        float, typer.Option(help="Highest error rate among automatic answers.")
    ] = 0.02,
    confidence_level: Annotated[
        float, typer.Option(help="Confidence that the target holds.")
    ] = 0.95,
    ood_accuracy_budget: Annotated[
        float,
        typer.Option(
            help="Points of in-scope accuracy the out-of-scope screen may spend (0.02 = two)."
        ),
    ] = 0.02,
    seed: Annotated[int, typer.Option(help="Random seed for splits and simulations.")] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write a machine-readable summary here.")
    ] = None,
    report: Annotated[
        Path, typer.Option(help="Where to write the self-contained HTML report.")
    ] = Path("failwise-report.html"),
) -> None:
    """Train two models, calibrate them, fit decision ladders and compare what users get."""
    from failwise.evaluation import run_demo
    from failwise.policy import Policy

    try:
        policy = Policy(
            target_risk=target_risk,
            confidence_level=confidence_level,
            ood_max_accuracy_loss=ood_accuracy_budget,
        )
        with (
            console.status("training models, calibrating and fitting the ladders…"),
            _collect_warnings() as notes,
        ):
            result, title, dataset_text = run_demo(
                dataset.value,
                data_dir=data_dir,
                policy=policy,
                seed=seed,
                embeddings=embeddings,
                log=lambda msg: console.log(msg),
            )
    except FailwiseError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_notes(notes)
    _print_result(result, title)
    _write_outputs(result, json_path, report, title, dataset_text)


@app.command()
def evaluate(
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            help="CSV or Parquet: proba_<class> or "
            "logit_<class> columns and a label column; optional split "
            "(val/test), ood_score, fallback and model columns.",
        ),
    ],
    label_column: Annotated[str, typer.Option(help="Name of the label column.")] = "label",
    out_of_scope_label: Annotated[
        str, typer.Option(help="Label value that marks out-of-scope inputs.")
    ] = "oos",
    target_risk: Annotated[
        float, typer.Option(help="Highest error rate among automatic answers.")
    ] = 0.02,
    confidence_level: Annotated[
        float, typer.Option(help="Confidence that the target holds.")
    ] = 0.95,
    seed: Annotated[int, typer.Option(help="Random seed for the split and simulations.")] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write a machine-readable summary here.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Calibrate, fit the ladder and project product metrics for your own predictions."""
    from failwise.evaluation import evaluate_file
    from failwise.policy import Policy

    try:
        policy = Policy(target_risk=target_risk, confidence_level=confidence_level)
        with _collect_warnings() as notes:
            result, note = evaluate_file(
                predictions,
                label_column=label_column,
                out_of_scope_label=out_of_scope_label,
                policy=policy,
                seed=seed,
            )
    except FailwiseError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_notes(notes)
    if json_path is None or str(json_path) != "-":
        if note:
            console.print(f"[dim]{note}[/dim]")
        _print_result(result, f"failwise evaluate: {predictions.name}")
    if json_path is not None and str(json_path) == "-":
        typer.echo(json.dumps(result.to_dict(), indent=2, default=_json_default))
        json_path = None
    _write_outputs(
        result,
        json_path,
        report,
        f"failwise evaluate: {predictions.name}",
        f"{predictions.name}: {note}",
    )


def main() -> None:
    """Entry point of the `failwise` script."""
    app()


from failwise.cli import _runtime_commands  # noqa: E402,F401  (registers export and recalibrate)
