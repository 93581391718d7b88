"""The README runs: every code block is executed, in order, as a reader would paste it.

Python blocks share one namespace (the tour's model is used by the later blocks, as in a
notebook); ``failwise`` commands in bash blocks run through the real command line in the same
working folder, so the files one block writes are the files the next one reads. The output
sample (the ``text`` block) must match what the demo prints, row for row.

Two commands are not executed here, for a stated reason: the test command itself (running
the suite inside the suite) and ``pip install`` (this environment is the installation). The
test checks instead that they are the commands CI runs and that the marker expression of the
fast subset names registered markers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from failwise.cli import app
from failwise.exceptions import UncertifiedWarning

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS: list[tuple[str, str]] = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
TEST_COMMANDS = {"bash scripts/test"}


def _commands(block: str) -> list[str]:
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def _is_test_command(line: str) -> bool:
    return line in TEST_COMMANDS or line.startswith(("python -m pytest", "bash scripts/test "))


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def test_readme_starts_with_the_two_setup_commands() -> None:
    lang, first = BLOCKS[0]
    assert lang == "bash"
    assert _commands(first) == ["python3 -m pip install -e . && failwise demo", "bash scripts/test"]
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_readme_states_how_long_the_tests_take_and_the_fast_subset() -> None:
    assert re.search(r"takes about \d+ minutes", README)
    fast = 'python -m pytest -m "not slow and not embeddings"'
    assert fast in README
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    registered = {m.split(":")[0] for m in config["tool"]["pytest"]["ini_options"]["markers"]}
    assert {"slow", "embeddings"} <= registered


def test_every_block_is_a_kind_this_test_runs() -> None:
    assert {lang for lang, _ in BLOCKS} <= {"bash", "python", "text"}
    for lang, block in BLOCKS:
        if lang == "bash":
            for line in _commands(block):
                ok = line.startswith("failwise ") or _is_test_command(line)
                ok = ok or line == "python3 -m pip install -e . && failwise demo"
                assert ok, f"README command {line!r} is not run by this test"


def _run_cli(line: str, data_dir: Path | None) -> str:
    args = shlex.split(line)[1:]
    if "--data-dir" in args:
        if data_dir is None:
            pytest.skip("CLINC150 not available")
        args[args.index("--data-dir") + 1] = str(data_dir)
    with warnings.catch_warnings():
        if args[0] == "recalibrate":
            # Refitting on the tour's few dozen labels, temperature scaling may warn that the
            # labelled answers were all right: a note for the reader, not a failure.
            warnings.filterwarnings("ignore", message="Temperature scaling reached")
        result = CliRunner().invoke(app, args)
    if args[0] == "recalibrate" and result.exit_code == 2:
        # The tour's few hundred requests may not yet hold enough weighted labels to refit;
        # the command must still have loaded the saved artefacts and read the log.
        assert result.stderr.startswith("error: Too few labels to recalibrate"), result.stderr
        return str(result.stdout)
    assert result.exit_code == 0, f"{line!r} failed:\n{result.stdout}\n{result.stderr}"
    return str(result.stdout)


def _check_output_sample(sample: str, output: str) -> None:
    """Every line of the sample is printed by the demo (numbers and all; any width)."""
    printed = " ".join(output.split())
    for line in sample.strip().splitlines():
        words = " ".join(line.split())
        words = words.removesuffix("...").strip()
        if not words or set(words) <= {"─"}:
            continue
        assert words in printed, f"README shows {line!r}, which the demo no longer prints"


def _run_readme(tmp_path: Path, data_dir: Path | None, *, include_clinc: bool) -> str:
    namespace: dict[str, Any] = {}
    demo_output = ""
    with _cwd(tmp_path), warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)  # the demo's SVM certifies nothing
        for lang, block in BLOCKS:
            if lang == "python":
                exec(compile(block, "README.md", "exec"), namespace)
            elif lang == "text":
                _check_output_sample(block, demo_output)
            elif lang == "bash":
                for line in _commands(block):
                    if _is_test_command(line):
                        continue
                    line = line.removeprefix("python3 -m pip install -e . && ")
                    if "--dataset clinc150" in line and not include_clinc:
                        continue
                    output = _run_cli(line, data_dir)
                    if line == "failwise demo":
                        demo_output = output
    return demo_output


def test_readme_runs_block_by_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run_readme(tmp_path, None, include_clinc=False)
    out = capsys.readouterr().out
    assert "task completion" in out
    assert "Decisions(n=" in out
    assert (tmp_path / "fitted" / "predictions" / "policy").is_dir()
    assert (tmp_path / "events-parquet").is_dir()
    assert (tmp_path / "summary.json").is_file()


@pytest.mark.embeddings
def test_readme_clinc150_command_and_table_hold(
    clinc150_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The README's CLINC150 command runs and prints the numbers of the table below it.

    The longest test of the suite (sentence-encoding 24,600 queries): the command runs as a
    subprocess whose progress goes straight to the terminal.
    """
    pytest.importorskip("sentence_transformers")
    _, block = next(b for b in BLOCKS if "--dataset clinc150" in b[1])
    args = shlex.split(_commands(block)[0])[1:]
    args[args.index("--data-dir") + 1] = str(clinc150_dir)
    with capfd.disabled():
        print("\n[README: CLINC150 with sentence embeddings, several minutes]", file=sys.stderr)
        result = subprocess.run(
            [sys.executable, "-m", "failwise.cli", *args, "--report", "clinc.html"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            timeout=3600,
            check=False,
        )
    assert result.returncode == 0
    models = json.loads((tmp_path / "clinc.json").read_text())["models"]
    by_name = {m["name"]: m for m in models}
    rows = re.findall(r"^\| (.+?) \| (\d+\.\d)% \| (\d+\.\d)% \|$", README, re.M)
    shown = dict(zip(["TF-IDF + linear", "MiniLM embeddings + linear"], rows, strict=False))
    assert len(shown) == 2
    for name, (_, accuracy, recall) in shown.items():
        assert f"{100 * by_name[name]['in_scope_accuracy']:.1f}" == accuracy, name
        assert f"{100 * by_name[name]['oos_recall']:.1f}" == recall, name
    minilm = by_name["MiniLM embeddings + linear"]
    # Larson et al. (2019): MLP oos-threshold 93.4 / 49.1; BERT oos-threshold OOS recall 52.3.
    assert minilm["in_scope_accuracy"] > 0.934
    assert minilm["oos_recall"] >= 0.523 + 0.20
