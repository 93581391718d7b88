"""Flags for CI and habits: objectives, assumptions, quiet runs, exit codes, saved artefacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from failwise import __version__
from failwise.artifacts import load
from failwise.cli import app
from failwise.policy import Policy

runner = CliRunner(env={"COLUMNS": "80"})


def _write_logits(path: Path, rng: np.random.Generator, n: int = 600, signal: float = 2.5) -> None:
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + signal * np.eye(3)[y]
    lines = ["label,split,logit_a,logit_b,logit_c"]
    for i in range(n):
        split = "val" if i < n // 2 else "test"
        lines.append(f"{'abc'[y[i]]},{split}," + ",".join(f"{v:.6f}" for v in logits[i]))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def preds(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "preds.csv"
    _write_logits(path, rng)
    return path


def _summary(preds: Path, *flags: str) -> dict[str, Any]:
    result = runner.invoke(app, ["evaluate", "--predictions", str(preds), "--json", "-", *flags])
    assert result.exit_code == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"failwise {__version__}"


def test_help_documents_the_exit_codes() -> None:
    for args in (["--help"], ["evaluate", "--help"], ["demo", "--help"]):
        result = runner.invoke(app, args)
        text = " ".join(result.stdout.split())
        assert "Exit codes: 0 ok; 1 a requested check failed" in text, args
        assert "2 bad input" in text


def test_progress_goes_to_stderr_without_source_locations(preds: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--predictions", str(preds)])
    assert result.exit_code == 0, result.stderr
    assert "failwise: evaluating" in result.stderr
    assert "failwise: evaluating" not in result.stdout
    assert ".py:" not in result.stderr  # no "_app.py:262"-style tags


def test_quiet_silences_progress_but_not_results(preds: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--predictions", str(preds), "--quiet"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "task completion" in result.stdout


def test_json_to_stdout_is_pure_json_and_tables_go_to_stderr(preds: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--predictions", str(preds), "--json", "-"])
    summary = json.loads(result.stdout)
    assert summary["models"][0]["automation"]["target_risk"] == 0.02
    assert "What users get" in result.stderr


def test_max_escalation_rate_alone_fits_a_human_capacity_policy(preds: Path) -> None:
    summary = _summary(preds, "--target-risk", "none", "--max-escalation-rate", "0.1")
    model = summary["models"][0]
    assert model["policy"]["mode"] == "capacity"
    assert model["action_rates"]["escalate"] <= 0.1 + 0.05  # test rows, not the fitted ones


def test_costs_switch_the_ladder_to_cost_mode(preds: Path, tmp_path: Path) -> None:
    inline = _summary(preds, "--costs", "wrong_answer=50,escalate=1")["models"][0]
    assert inline["policy"]["mode"] == "cost"
    (tmp_path / "costs.json").write_text(json.dumps({"wrong_answer": 50, "escalate": 1}))
    from_file = _summary(preds, "--costs", str(tmp_path / "costs.json"))["models"][0]
    assert from_file["policy"] == inline["policy"]


def test_outcome_model_file_changes_the_assumptions(preds: Path, tmp_path: Path) -> None:
    (tmp_path / "outcome.json").write_text(json.dumps({"human_accuracy": 0.5, "reviewers": 9}))
    summary = _summary(preds, "--outcome-model", str(tmp_path / "outcome.json"))
    assert summary["outcome_model"]["human_accuracy"] == 0.5
    assert summary["outcome_model"]["reviewers"] == 9.0
    default = _summary(preds)
    changed = summary["models"][0]["task_completion_rate"]
    assert changed < default["models"][0]["task_completion_rate"]


def test_outcome_model_reads_yaml(preds: Path, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "outcome.yaml").write_text("human_accuracy: 0.9  # a new team\n")
    summary = _summary(preds, "--outcome-model", str(tmp_path / "outcome.yaml"))
    assert summary["outcome_model"]["human_accuracy"] == 0.9


def test_fail_if_uncertified_exits_1_after_writing_the_outputs(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    weak = tmp_path / "weak.csv"
    _write_logits(weak, rng, n=80, signal=0.5)  # nothing can be certified on 40 noisy rows
    out = tmp_path / "summary.json"
    result = runner.invoke(
        app,
        ["evaluate", "--predictions", str(weak), "--json", str(out), "--fail-if-uncertified"],
    )
    assert result.exit_code == 1, result.stderr
    assert "--fail-if-uncertified" in result.stderr.splitlines()[-1]
    summary = json.loads(out.read_text())
    assert summary["models"][0]["automation"]["automates_nothing"] is True
    assert "answers nothing automatically" in summary["headline"][0]
    # What the data does certify, and what the requested target would need.
    frontier = summary["models"][0]["frontier"]
    assert [row["target_risk"] for row in frontier] == sorted(r["target_risk"] for r in frontier)
    assert 0.02 in [row["target_risk"] for row in frontier]
    assert "What the validation data certifies" in result.stdout
    assert "2.0% (yours)" in result.stdout


def test_fail_if_uncertified_passes_when_the_target_is_certified(preds: Path) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--predictions",
            str(preds),
            "--target-risk",
            "0.2",
            "-q",
            "--fail-if-uncertified",
        ],
    )
    assert result.exit_code == 0, result.stderr


def test_save_policy_writes_artefacts_the_runtime_loads(
    preds: Path, tmp_path: Path, rng: np.random.Generator
) -> None:
    folder = tmp_path / "fitted"
    summary = _summary(preds, "--save-policy", str(folder), "--target-risk", "0.1")
    calibrator = load(folder / "preds" / "calibrator")
    policy = load(folder / "preds" / "policy")
    assert isinstance(policy, Policy)
    assert policy.answer_threshold_ == summary["models"][0]["policy"]["answer_threshold"]

    from failwise import Guard, store

    logits = rng.normal(size=(5, 3)) + 4 * np.eye(3)[[0, 1, 2, 0, 1]]
    events = store.open(f"sqlite:///{tmp_path / 'events.db'}")
    guard = Guard(lambda x: x, calibrator, policy, store=events)
    decisions = [guard.decide(row) for row in logits]
    assert {d.action.value for d in decisions} <= {"answer", "clarify", "escalate", "abstain"}
    events.close()


def test_the_installed_script_runs_and_reports_bad_input_with_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "failwise.cli",
            "evaluate",
            "--predictions",
            "x.csv",
            "--target-risk",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --target-risk must lie strictly between 0 and 1; got 2. "
        "Pass e.g. --target-risk 0.02."
    ]
