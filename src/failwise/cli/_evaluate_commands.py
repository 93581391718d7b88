"""`failwise demo` and `failwise evaluate`: thin commands over `failwise.evaluation`.

Both check every flag and output path first, then run, then print (stdout: headline and
tables; stderr: progress and notes), then write the outputs.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from failwise.cli._console import (
    EXIT_CHECK_FAILED,
    Reporter,
    console,
    err_console,
    fail,
    one_line,
)
from failwise.cli._inputs import (
    check_fraction,
    check_output_dir,
    check_output_file,
    check_seed,
    distinct_outputs,
    parse_costs,
    parse_target_risk,
    read_outcome_model,
)
from failwise.cli._tables import print_result
from failwise.exceptions import FailwiseError, UncertifiedWarning

__all__ = ["demo", "evaluate"]

#: Python argument names in library messages → the flag a CLI user passes instead.
_FLAGS = {
    "target_risk": "--target-risk",
    "confidence_level": "--confidence-level",
    "max_escalation_rate": "--max-escalation-rate",
    "costs": "--costs",
    "ood_max_accuracy_loss": "--ood-accuracy-budget",
    "ood_false_alarm_rate": "--ood-false-alarm-rate",
}


def speak_cli(message: str) -> str:
    """A library message with Python argument names replaced by the CLI flags.

    Examples
    --------
    >>> speak_cli("raise `target_risk` or lower `confidence_level`")
    'raise --target-risk or lower --confidence-level'
    """
    for name, flag in _FLAGS.items():
        message = message.replace(f"`{name}`", flag)
        message = re.sub(rf"\b{name}=", f"{flag} ", message)
    return message.replace("policy.frontier_", "the frontier table")


class DemoDataset(StrEnum):
    digits = "digits"
    clinc150 = "clinc150"


class FeatureMetric(StrEnum):
    cosine = "cosine"
    euclidean = "euclidean"


# --- options shared by both commands -----------------------------------------------------------

TargetRisk = Annotated[
    str,
    typer.Option(
        help="Highest error rate among automatic answers, certified at --confidence-level; "
        "'none' drops the risk target (then --max-escalation-rate or --costs sets the "
        "threshold)."
    ),
]
ConfidenceLevel = Annotated[
    float, typer.Option(help="Confidence that the risk target holds, in (0, 1).")
]
MaxEscalation = Annotated[
    float | None,
    typer.Option(
        help="Largest share of requests sent to humans (human capacity), in [0, 1]. With a "
        "risk target, requests beyond it abstain instead."
    ),
]
Costs = Annotated[
    str | None,
    typer.Option(
        help="Explicit outcome costs: name=value pairs (wrong_answer, clarify, "
        "failed_clarification, fallback, escalate, abstain), e.g. "
        "wrong_answer=10,escalate=3, or a .json/.yaml file of them. The answer threshold "
        "minimises expected cost (never below the certified one)."
    ),
]
OutcomeFile = Annotated[
    Path | None,
    typer.Option(
        "--outcome-model",
        help="JSON or YAML file of outcome-model assumptions to change (e.g. "
        "human_accuracy: 0.99); YAML needs the `yaml` extra.",
    ),
]
FalseAlarms = Annotated[
    float,
    typer.Option(
        help="Largest share of in-scope requests the out-of-scope screen may flag, in (0, 1) "
        "(used when the data has out-of-scope scores)."
    ),
]
Seed = Annotated[int, typer.Option(help="Random seed for splits and simulations (≥ 0).")]
JsonOut = Annotated[
    Path | None,
    typer.Option("--json", help="Write a machine-readable summary here ('-' for stdout)."),
]
SavePolicy = Annotated[
    Path | None,
    typer.Option(
        "--save-policy",
        help="Write each model's fitted calibrator and policy as artefacts under this new "
        "folder (DIR/<model>/calibrator, DIR/<model>/policy) for Guard, recalibrate and "
        "the service.",
    ),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr; errors still.")
]
FailIfUncertified = Annotated[
    bool,
    typer.Option(
        "--fail-if-uncertified",
        help="Exit with code 1 when a model's answer threshold is not certified at the risk "
        "target (for CI).",
    ),
]


@contextlib.contextmanager
def _collect_notes() -> Iterator[list[str]]:
    """Collect failwise's warnings (an uncertifiable target, ...) to print them as notes."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncertifiedWarning)
        yield notes
    notes.extend(str(w.message) for w in caught if issubclass(w.category, UncertifiedWarning))
    for w in caught:
        if not issubclass(w.category, UncertifiedWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _policy(
    target_risk: float | None,
    confidence_level: float,
    max_escalation_rate: float | None,
    costs: Any,
    **extra: Any,
) -> Any:
    from failwise.policy import Policy

    if target_risk is None and max_escalation_rate is None and costs is None:
        fail(
            "--target-risk none leaves the ladder without an objective; also pass "
            "--max-escalation-rate (human capacity) or --costs, or give a risk target."
        )
    try:
        return Policy(
            target_risk=target_risk,
            confidence_level=confidence_level,
            max_escalation_rate=max_escalation_rate,
            costs=costs,
            **extra,
        )
    except FailwiseError as exc:
        fail(speak_cli(str(exc)))


def _check_common(
    confidence_level: float,
    max_escalation_rate: float | None,
    seed: int,
    json_path: Path | None,
    report: Path | None,
    save_policy: Path | None,
) -> None:
    check_fraction(confidence_level, "--confidence-level", "0.95")
    check_fraction(max_escalation_rate, "--max-escalation-rate", "0.1", closed=True)
    check_seed(seed)
    check_output_file(json_path, "--json", "summary.json")
    check_output_file(report, "--report", "report.html")
    check_output_dir(save_policy, "--save-policy")
    distinct_outputs(**{"--json": json_path, "--report": report, "--save-policy": save_policy})


def _finish(
    result: Any,
    notes: list[str],
    reporter: Reporter,
    *,
    title: str,
    dataset_text: str,
    json_path: Path | None,
    report: Path | None,
    save_policy: Path | None,
    fail_if_uncertified: bool,
    preface: str | None = None,
) -> None:
    from failwise.evaluation import build_report, save_artefacts

    for note in dict.fromkeys(notes):
        reporter.note(speak_cli(note))
    json_to_stdout = json_path is not None and str(json_path) == "-"
    out = err_console if json_to_stdout else console
    if preface and not json_to_stdout:
        out.print(f"[dim]{preface}[/dim]")
    if not (json_to_stdout and reporter.quiet):
        print_result(result, title, out, speak_cli)
    summary = json.dumps(result.to_dict(), indent=2, default=_json_default)
    try:
        if json_to_stdout:
            typer.echo(summary)
        elif json_path is not None:
            json_path.expanduser().parent.mkdir(parents=True, exist_ok=True)
            json_path.expanduser().write_text(summary + "\n", encoding="utf-8")
            out.print(f"summary written to [bold]{json_path}[/bold]")
        if report is not None:
            path = build_report(result, report.expanduser(), title=title, dataset=dataset_text)
            out.print(f"report written to [bold]{path}[/bold] (self-contained; opens offline)")
        if save_policy is not None:
            for name, (cal, pol) in save_artefacts(result, save_policy).items():
                out.print(
                    f"saved {name}: calibrator {cal.path}, policy {pol.path} "
                    f"(load with failwise.artifacts.load)"
                )
            for evaluation in result.models:
                reference = evaluation.reference
                if reference is not None and reference.features is not None:
                    rows, width = reference.features.shape
                    extra = reference.neighbour_features
                    out.print(
                        f"{evaluation.name}'s reference holds the features of {rows} inputs "
                        f"({width} columns, float16)"
                        + ("" if extra is None else f" and {extra.shape[0]} neighbour rows")
                    )
    except (OSError, FailwiseError) as exc:
        fail(f"could not write the outputs: {exc}")
    if fail_if_uncertified:
        uncertified = [
            m.name
            for m in result.models
            if m.policy.target_risk is not None and not m.policy.certified_
        ]
        if uncertified:
            err_console.print(
                "[red]check failed:[/red] --fail-if-uncertified: no answer threshold is "
                f"certified for {', '.join(uncertified)} at the risk target "
                f"{result.models[0].policy.target_risk:g} (confidence "
                f"{result.models[0].policy.confidence_level:g})."
            )
            raise typer.Exit(EXIT_CHECK_FAILED)


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
    target_risk: TargetRisk = "0.02",
    confidence_level: ConfidenceLevel = 0.95,
    max_escalation_rate: MaxEscalation = None,
    costs: Costs = None,
    outcome_model: OutcomeFile = None,
    ood_accuracy_budget: Annotated[
        float,
        typer.Option(
            help="Points of in-scope accuracy the out-of-scope screen may spend (0.02 = two), "
            "in (0, 1]."
        ),
    ] = 0.02,
    ood_false_alarm_rate: FalseAlarms = 0.05,
    seed: Seed = 0,
    json_path: JsonOut = None,
    report: Annotated[
        Path, typer.Option(help="Where to write the self-contained HTML report.")
    ] = Path("failwise-report.html"),
    save_policy: SavePolicy = None,
    quiet: Quiet = False,
    fail_if_uncertified: FailIfUncertified = False,
) -> None:
    """Train two models, calibrate them, fit decision ladders and compare what users get."""
    risk = parse_target_risk(target_risk)
    _check_common(confidence_level, max_escalation_rate, seed, json_path, report, save_policy)
    if not 0 < ood_accuracy_budget <= 1:
        fail(
            f"--ood-accuracy-budget must lie in (0, 1]; got {ood_accuracy_budget:g}. "
            "Pass e.g. --ood-accuracy-budget 0.02 (two points)."
        )
    check_fraction(ood_false_alarm_rate, "--ood-false-alarm-rate", "0.05")
    if dataset is DemoDataset.clinc150 and data_dir is not None:
        _check_clinc_dir(data_dir)
    outcome = read_outcome_model(outcome_model)
    policy = _policy(
        risk,
        confidence_level,
        max_escalation_rate,
        parse_costs(costs),
        ood_max_accuracy_loss=ood_accuracy_budget,
        ood_false_alarm_rate=ood_false_alarm_rate,
    )
    reporter = Reporter(quiet=quiet)
    from failwise.evaluation import run_demo

    try:
        with _collect_notes() as notes, reporter.steps("evaluating") as progress:
            result, title, dataset_text = run_demo(
                dataset.value,
                data_dir=data_dir,
                policy=policy,
                outcome_model=outcome,
                seed=seed,
                embeddings=embeddings,
                log=reporter,
                progress=progress,
            )
    except (FailwiseError, OSError) as exc:
        fail(speak_cli(str(exc)))
    _finish(
        result,
        notes,
        reporter,
        title=title,
        dataset_text=dataset_text,
        json_path=json_path,
        report=report,
        save_policy=save_policy,
        fail_if_uncertified=fail_if_uncertified,
    )


def _check_clinc_dir(data_dir: Path) -> None:
    root = data_dir.expanduser()
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        fail(
            f"--data-dir {str(data_dir)!r} {what}; pass the folder that holds CLINC150's "
            "data_full.json (or its parent with clinc150/), or leave it out to download."
        )
    if (
        not (root / "data_full.json").is_file()
        and not (root / "clinc150" / "data_full.json").is_file()
    ):
        fail(
            f"--data-dir {str(data_dir)!r} holds no data_full.json (nor clinc150/data_full.json); "
            "pass the folder that holds CLINC150's data_full.json, or leave it out to download."
        )


def evaluate(
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            help="CSV (comma, semicolon or tab separated) or Parquet: proba_<class> or "
            "logit_<class> columns and a label column; optional split (val/test), "
            "ood_score, fallback and model columns.",
        ),
    ],
    label_column: Annotated[str, typer.Option(help="Name of the label column.")] = "label",
    out_of_scope_label: Annotated[
        str, typer.Option(help="Label value that marks out-of-scope inputs.")
    ] = "oos",
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="The inputs' features (.npy or .parquet, numeric), one row per predictions "
            "row in the same order; or feature_<i> columns in the predictions file. Saved "
            "with --save-policy in the reference that failwise monitor and gaps compare "
            "traffic with; rows with split=train become its neighbour rows.",
        ),
    ] = None,
    feature_metric: Annotated[
        FeatureMetric, typer.Option(help="How features are compared.")
    ] = FeatureMetric.cosine,
    feature_source: Annotated[
        str | None,
        typer.Option(help="How the features are computed, in words, saved with the reference."),
    ] = None,
    feature_dims: Annotated[
        int | None,
        typer.Option(
            help="Save the features through failwise.monitor.random_projection to this many "
            "columns (for wide features; the guard must project the same way)."
        ),
    ] = None,
    target_risk: TargetRisk = "0.02",
    confidence_level: ConfidenceLevel = 0.95,
    max_escalation_rate: MaxEscalation = None,
    costs: Costs = None,
    outcome_model: OutcomeFile = None,
    ood_false_alarm_rate: FalseAlarms = 0.05,
    seed: Seed = 0,
    json_path: JsonOut = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report here.")
    ] = None,
    save_policy: SavePolicy = None,
    quiet: Quiet = False,
    fail_if_uncertified: FailIfUncertified = False,
) -> None:
    """Calibrate, fit the ladder and project product metrics for your own predictions."""
    risk = parse_target_risk(target_risk)
    _check_common(confidence_level, max_escalation_rate, seed, json_path, report, save_policy)
    if not predictions.expanduser().is_file():
        what = "is a folder" if predictions.expanduser().is_dir() else "does not exist"
        fail(f"--predictions {str(predictions)!r} {what}; pass a .csv or .parquet file.")
    if features is not None and not features.expanduser().is_file():
        what = "is a folder" if features.expanduser().is_dir() else "does not exist"
        fail(
            f"--features {str(features)!r} {what}; pass a .npy or .parquet file with one row "
            "per predictions row."
        )
    if feature_dims is not None and feature_dims < 1:
        fail(f"--feature-dims must be a whole number >= 1; got {feature_dims}. Try 128.")
    outcome = read_outcome_model(outcome_model)
    check_fraction(ood_false_alarm_rate, "--ood-false-alarm-rate", "0.05")
    policy = _policy(
        risk,
        confidence_level,
        max_escalation_rate,
        parse_costs(costs),
        ood_false_alarm_rate=ood_false_alarm_rate,
    )
    reporter = Reporter(quiet=quiet)
    from failwise.evaluation import evaluate_file

    try:
        with _collect_notes() as notes, reporter.steps("evaluating") as progress:
            result, note = evaluate_file(
                predictions.expanduser(),
                label_column=label_column,
                out_of_scope_label=out_of_scope_label,
                features=None if features is None else features.expanduser(),
                feature_metric=feature_metric.value,
                feature_source=feature_source,
                feature_dims=feature_dims,
                policy=policy,
                outcome_model=outcome,
                seed=seed,
                progress=progress,
            )
    except (FailwiseError, OSError) as exc:
        fail(speak_cli(str(exc)))
    title = f"failwise evaluate: {predictions.name}"
    _finish(
        result,
        notes,
        reporter,
        title=title,
        dataset_text=f"{predictions.name}: {note}",
        json_path=json_path,
        report=report,
        save_policy=save_policy,
        fail_if_uncertified=fail_if_uncertified,
        preface=one_line(note),
    )
