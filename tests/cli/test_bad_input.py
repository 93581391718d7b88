"""Every bad input ends in one clear line on stderr, exit code 2 and nothing written.

Each case runs through the real command line: Typer's runner on the real app, or the
installed ``failwise`` script in a subprocess where the environment must differ (a missing
optional dependency).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from failwise import store
from failwise.cli import app

runner = CliRunner(env={"COLUMNS": "80"})

CLASSES = ["billing", "refund", "login"]


def _rows(n: int = 240, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 2.5 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    header = ["label", *(f"proba_{c}" for c in CLASSES)]
    return [header] + [
        [CLASSES[i], *(f"{p:.6f}" for p in row)] for i, row in zip(y, proba, strict=True)
    ]


def _write_csv(path: Path, rows: list[list[str]], sep: str = ",", bom: bool = False) -> Path:
    text = "\n".join(sep.join(r) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    _write_csv(tmp_path / "preds.csv", _rows())
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    return tmp_path


def _snapshot(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def _assert_bad_input(result: object, before: set[Path], folder: Path, *needles: str) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert _snapshot(folder) == before, "a bad input must not write anything"
    return str(lines[0])


def _evaluate(work: Path, *flags: str) -> Callable[[], object]:
    return lambda: runner.invoke(
        app, ["evaluate", "--predictions", str(work / "preds.csv"), *flags]
    )


CASES: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "report naming a folder": (
        lambda w: ["--report", str(w / "a-folder")],
        ("--report", "is a folder", "report.html"),
    ),
    "report under a file": (
        lambda w: ["--report", str(w / "a-file" / "r.html")],
        ("--report", "is a file, not a folder"),
    ),
    "json under a file": (
        lambda w: ["--json", str(w / "a-file" / "s.json")],
        ("--json", "is a file, not a folder"),
    ),
    "json and report on one file": (
        lambda w: ["--json", str(w / "same"), "--report", str(w / "same")],
        ("--json and --report both name",),
    ),
    "save-policy into a folder that holds files": (
        lambda w: ["--save-policy", str(w)],
        ("--save-policy", "already holds files"),
    ),
    "target risk out of range": (lambda w: ["--target-risk", "1.5"], ("--target-risk", "1.5")),
    "target risk not a number": (lambda w: ["--target-risk", "two"], ("--target-risk", "'two'")),
    "no objective": (lambda w: ["--target-risk", "none"], ("--max-escalation-rate", "--costs")),
    "confidence level out of range": (
        lambda w: ["--confidence-level", "1"],
        ("--confidence-level", "got 1."),
    ),
    "escalation rate out of range": (
        lambda w: ["--max-escalation-rate", "1.2"],
        ("--max-escalation-rate", "1.2"),
    ),
    "negative seed": (lambda w: ["--seed", "-1"], ("--seed", "-1")),
    "unknown cost": (lambda w: ["--costs", "wrong=3"], ("--costs", "wrong", "wrong_answer")),
    "cost not a number": (lambda w: ["--costs", "escalate=high"], ("escalate", "'high'")),
    "negative cost": (lambda w: ["--costs", "escalate=-1"], ("--costs", "escalate", "-1")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_flag_or_output_path_is_one_line_and_writes_nothing(work: Path, case: str) -> None:
    flags, needles = CASES[case]
    before = _snapshot(work)
    result = _evaluate(work, *flags(work))()
    _assert_bad_input(result, before, work, *needles)


def test_range_checks_come_before_reading_the_file(work: Path) -> None:
    missing = work / "nowhere.csv"
    before = _snapshot(work)
    result = runner.invoke(app, ["evaluate", "--predictions", str(missing), "--target-risk", "1.5"])
    _assert_bad_input(result, before, work, "--target-risk")


def test_missing_predictions_file_names_the_flag(work: Path) -> None:
    before = _snapshot(work)
    result = runner.invoke(app, ["evaluate", "--predictions", str(work / "nowhere.csv")])
    _assert_bad_input(result, before, work, "--predictions", "does not exist")


def test_parquet_file_named_csv_says_to_rename_it(work: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"label": ["billing"], "proba_billing": [1.0]}), work / "p.csv")
    before = _snapshot(work)
    result = runner.invoke(app, ["evaluate", "--predictions", str(work / "p.csv")])
    _assert_bad_input(result, before, work, "is a Parquet file", "rename it to p.parquet")


def test_probability_out_of_range_prints_the_number_and_the_data_row(work: Path) -> None:
    rows = _rows()
    rows[4][3] = "1.17"
    _write_csv(work / "preds.csv", rows)
    before = _snapshot(work)
    line = _assert_bad_input(
        _evaluate(work)(), before, work, "proba_login", "data row 4", "line 5", " 1.17 "
    )
    assert "np.float64" not in line


def test_bad_split_value_is_shown_even_when_empty(work: Path) -> None:
    rows = _rows()
    rows[0].append("split")
    for i, row in enumerate(rows[1:]):
        row.append("val" if i % 2 else "test")
    rows[3][-1] = ""
    rows[7][-1] = "training"
    _write_csv(work / "preds.csv", rows)
    before = _snapshot(work)
    _assert_bad_input(
        _evaluate(work)(), before, work, "'split'", "data row 3", "an empty value", "'val'"
    )


def test_a_file_that_is_not_utf8_is_named(work: Path) -> None:
    (work / "preds.csv").write_bytes("label,proba_a,proba_b\ncafé,0.5,0.5\n".encode("latin-1"))
    before = _snapshot(work)
    _assert_bad_input(_evaluate(work)(), before, work, "not UTF-8", "CSV UTF-8")


def test_single_column_file_names_the_delimiter_problem(work: Path) -> None:
    (work / "preds.csv").write_text("label proba_a proba_b\na 0.5 0.5\n")
    before = _snapshot(work)
    _assert_bad_input(_evaluate(work)(), before, work, "single column", "semicolons")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("human_accuracy: 1.5\n", ("human_accuracy", "[0, 1]", "1.5")),
        ("human_acc: 0.9\n", ("unknown assumption", "human_acc", "human_accuracy")),
        ("reviewers: many\n", ("reviewers", "'many'")),
        ("- 1\n- 2\n", ("mapping",)),
        ("human_response_p90_s: 60\n", ("human_response_p90_s", "human_response_median_s")),
    ],
)
def test_outcome_model_file_names_the_assumption(
    work: Path, content: str, needles: tuple[str, ...]
) -> None:
    pytest.importorskip("yaml")
    (work / "outcome.yaml").write_text(content)
    before = _snapshot(work)
    result = _evaluate(work, "--outcome-model", str(work / "outcome.yaml"))()
    _assert_bad_input(result, before, work, "--outcome-model", *needles)


def test_outcome_model_json_that_does_not_parse(work: Path) -> None:
    (work / "outcome.json").write_text("{human_accuracy: 0.9}")
    before = _snapshot(work)
    result = _evaluate(work, "--outcome-model", str(work / "outcome.json"))()
    _assert_bad_input(result, before, work, "--outcome-model", "not valid JSON")


def test_demo_data_dir_without_the_dataset(work: Path) -> None:
    before = _snapshot(work)
    result = runner.invoke(
        app, ["demo", "--dataset", "clinc150", "--data-dir", str(work / "a-folder")]
    )
    _assert_bad_input(result, before, work, "--data-dir", "data_full.json")


def test_demo_data_dir_that_does_not_exist(work: Path) -> None:
    before = _snapshot(work)
    result = runner.invoke(
        app, ["demo", "--dataset", "clinc150", "--data-dir", str(work / "missing")]
    )
    _assert_bad_input(result, before, work, "--data-dir", "does not exist")


def test_demo_report_naming_a_folder_is_refused_before_training(work: Path) -> None:
    before = _snapshot(work)
    result = runner.invoke(app, ["demo", "--report", str(work / "a-folder")])
    _assert_bad_input(result, before, work, "--report", "is a folder")


def _shadowing(folder: Path, module: str) -> dict[str, str]:
    """An environment in which importing ``module`` fails, as when its extra is missing."""
    fake = folder / module
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError('No module named {module}')\n")
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), str(src)]))
    env["COLUMNS"] = "80"
    return env


def _run_script(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from failwise.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_install_hint_keeps_the_parquet_extra(
    work: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (work / "preds.parquet").write_bytes(b"PAR1")
    before = _snapshot(work)
    result = _run_script(
        ["evaluate", "--predictions", "preds.parquet"],
        _shadowing(tmp_path_factory.mktemp("without"), "pyarrow"),
        work,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: Reading Parquet needs the `parquet` extra: pip install 'failwise[parquet]'."
    )
    assert _snapshot(work) == before


def test_install_hint_keeps_the_yaml_extra(
    work: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (work / "outcome.yaml").write_text("human_accuracy: 0.99\n")
    before = _snapshot(work)
    result = _run_script(
        ["evaluate", "--predictions", "preds.csv", "--outcome-model", "outcome.yaml"],
        _shadowing(tmp_path_factory.mktemp("without"), "yaml"),
        work,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "pip install 'failwise[yaml]'" in result.stderr
    assert _snapshot(work) == before


# --- inputs that used to fail and now read ------------------------------------------------------


@pytest.mark.parametrize(
    ("sep", "bom"), [(",", True), (";", False), (";", True), ("\t", False)], ids=str
)
def test_excel_byte_order_mark_and_other_delimiters_are_read(
    tmp_path: Path, sep: str, bom: bool
) -> None:
    _write_csv(tmp_path / "preds.csv", _rows(), sep=sep, bom=bom)
    result = runner.invoke(
        app, ["evaluate", "--predictions", str(tmp_path / "preds.csv"), "--json", "-", "-q"]
    )
    assert result.exit_code == 0, result.stderr
    assert '"task_completion_rate"' in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("to", "needles"),
    [
        ("a-file", ("--to", "is a file; pass a folder")),
        ("a-file/export", ("--to", "a-file' is a file, not a folder")),
    ],
)
def test_export_to_a_file_or_under_one_is_one_line_and_writes_nothing(
    work: Path, to: str, needles: tuple[str, ...]
) -> None:
    url = f"sqlite:///{work / 'events.db'}"
    store.open(url).close()
    before = _snapshot(work)
    result = runner.invoke(app, ["export", "--store", url, "--to", str(work / to)])
    message = _assert_bad_input(result, before, work, *needles)
    assert str(work / to) in message
