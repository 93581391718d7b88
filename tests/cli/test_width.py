"""Every result table reads whole at 80 columns (a pipe, a CI log, most terminals)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from failwise.cli._tables import print_result
from failwise.evaluation import EvaluationResult, ModelScores, evaluate_scores, run_demo
from failwise.exceptions import UncertifiedWarning

#: Headers and row labels that used to be cut to "compl…", "escal…", "recov…".
LABELS = [
    "metric",
    "task completion",
    "without the ladder",
    "answered automatically",
    "escalation",
    "recovery",
    "silent failures",
    "time to correct, median",
    "time to correct, p90",
    "share of requests",
    "wrong among answers",
    "answer threshold",
    "ECE before",
    "assumption",
    "human_response_median_s",
    "user_escalates_after_noticing",
]


def _render(result: EvaluationResult, title: str) -> str:
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    print_result(result, title, console)
    return console.export_text()


def _assert_whole_at_80(text: str, *labels: str) -> None:
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert "…" not in text
    for label in labels:
        assert any(label in line for line in lines), f"{label!r} is broken or missing"


@pytest.fixture(scope="module")
def digits() -> EvaluationResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)  # the demo's SVM may certify nothing
        result, _, _ = run_demo("digits", n_bootstrap=20)
    return result


def test_digits_demo_tables_read_whole_at_80_columns(digits: EvaluationResult) -> None:
    text = _render(digits, "failwise demo: handwritten digits")
    _assert_whole_at_80(text, *LABELS, "1. logistic regression", "2. SVM (RBF kernel)")
    _assert_whole_at_80(text, "in-scope accuracy", "out-of-scope recall")


def test_clinc150_model_names_fit_as_column_headers() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    models = [
        ModelScores(
            name,
            rng.normal(size=(200, 3)) + s * np.eye(3)[y[:200]],
            rng.normal(size=(200, 3)) + s * np.eye(3)[y[200:]],
        )
        for name, s in (("MiniLM embeddings + linear", 3.0), ("TF-IDF + linear", 2.0))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)  # 140 rows may certify nothing
        result = evaluate_scores(models, y[:200], y[200:], n_bootstrap=20)
    text = _render(result, "CLINC150")
    _assert_whole_at_80(text, *LABELS, "1. MiniLM embeddings + linear", "2. TF-IDF + linear")


def test_the_real_command_at_columns_80_prints_whole_headers(tmp_path: Path) -> None:
    env = dict(os.environ, COLUMNS="80")
    src = Path(__file__).resolve().parents[2] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "failwise.cli",
            "demo",
            "--quiet",
            "--report",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    _assert_whole_at_80(result.stdout, *LABELS)
