"""`failwise monitor` and `failwise gaps` through the real command line, at 80 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from failwise import artifacts, store
from failwise.cli import app
from failwise.monitor import Reference
from tests.monitor.conftest import N_KNOWN, System, fill, make_system

runner = CliRunner(env={"COLUMNS": "80"})


@pytest.fixture
def system() -> System:
    return make_system()


@pytest.fixture
def deployed(tmp_path: Path, system: System) -> tuple[str, Path]:
    """A store with one ordinary window and two with unseen categories, some audited."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    artifacts.save(system.policy, tmp_path / "model" / "policy")
    artifacts.save(system.reference, tmp_path / "model" / "reference")
    with store.open(url) as events:
        fill(events, system, 500)
        ids = fill(events, system, 1000, first=500, novel_share=0.3)
        for task_id in ids[::5]:
            task = events.task(task_id)
            if task.action == "answer" and "topic 6" in str(task.decision):
                events.record_event(
                    task_id, "audit_label", label=(int(task.label or 0) + 1) % N_KNOWN
                )
    return url, tmp_path / "model" / "policy"


def _lines_fit(text: str) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_monitor_shows_findings_first_then_each_window(
    deployed: tuple[str, Path], tmp_path: Path
) -> None:
    url, policy = deployed
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "monitor",
            "--store",
            url,
            "--policy",
            str(policy),
            "--window",
            "500",
            "--json",
            str(out / "monitor.json"),
            "--report",
            str(out / "monitor.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    _lines_fit(result.stdout)
    stdout = result.stdout
    assert stdout.index("findings (alerts first)") < stdout.index("window ")
    assert "blind_spot" in stdout
    assert "unseen_inputs" in stdout
    assert stdout.count("┏") == 4  # the findings, then one table per window
    body = json.loads((out / "monitor.json").read_text())
    assert body["new_windows"] == 3
    assert len(body["windows"]) == 3
    assert {f["kind"] for f in body["findings"]} >= {"blind_spot", "unseen_inputs"}
    page = (out / "monitor.html").read_text()
    assert page.count("<svg") == 2
    assert "Blind spots" in page
    assert "topic" in page
    again = runner.invoke(
        app,
        ["monitor", "--store", url, "--policy", str(policy), "--window", "500", "--fail-on-alert"],
    )
    assert again.exit_code == 1  # nothing new, but the windows shown hold alerts
    assert "0 new window(s)" in again.stdout


def test_gaps_lists_blind_spots_and_quarantines_one(
    deployed: tuple[str, Path], tmp_path: Path
) -> None:
    url, policy = deployed
    listed = runner.invoke(
        app, ["gaps", "--store", url, "--policy", str(policy), "--window", "500"]
    )
    assert listed.exit_code == 0, listed.output
    _lines_fit(listed.stdout)
    assert "blind spots (" in listed.stdout
    with store.open(url) as events:
        spot = next(f for f in events.stored_findings() if f.kind == "blind_spot")
    done = runner.invoke(
        app,
        [
            "gaps",
            "--store",
            url,
            "--policy",
            str(policy),
            "--window",
            "500",
            "--quarantine",
            str(spot.id),
            "--json",
            str(tmp_path / "gaps.json"),
        ],
    )
    assert done.exit_code == 0, done.output
    assert f"quarantined finding {spot.id} as quarantine 1" in done.stdout
    with store.open(url) as events:
        assert [z.finding_id for z in events.quarantines(active_only=True)] == [spot.id]
    spots = json.loads((tmp_path / "gaps.json").read_text())["blind_spots"]
    assert {"id": 1, "state": "active"} in [s["quarantine"] for s in spots]
    released = runner.invoke(
        app,
        [
            "gaps",
            "--store",
            url,
            "--policy",
            str(policy),
            "--window",
            "500",
            "--release",
            "1",
            "--by",
            "alice",
        ],
    )
    assert released.exit_code == 0
    assert "released quarantine 1" in released.stdout


def _bad(args: list[str], *needles: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_store_that_does_not_exist_is_bad_input(tmp_path: Path, system: System) -> None:
    artifacts.save(system.reference, tmp_path / "model" / "reference")
    policy = str(tmp_path / "model" / "policy")
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    _bad(["monitor", "--store", missing, "--policy", policy], "No failwise store")
    _bad(["gaps", "--store", missing, "--policy", policy], "No failwise store")
    assert not (tmp_path / "typo.db").exists()


def test_an_empty_store_is_bad_input_with_what_to_do(tmp_path: Path, system: System) -> None:
    artifacts.save(system.reference, tmp_path / "model" / "reference")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store.open(url).close()
    _bad(
        ["monitor", "--store", url, "--policy", str(tmp_path / "model")],
        "no decisions yet",
        "Guard(store=...)",
    )


def test_a_policy_folder_without_reference_and_a_bad_window_are_bad_input(
    deployed: tuple[str, Path], tmp_path: Path
) -> None:
    url, policy = deployed
    _bad(["monitor", "--store", url, "--policy", str(tmp_path / "nowhere")], "No monitor reference")
    _bad(["monitor", "--store", url, "--policy", str(policy), "--window", "soon"], "duration")
    _bad(["monitor", "--store", url, "--policy", str(policy), "--show", "0"], "--show")
    _bad(["gaps", "--store", url, "--policy", str(policy), "--quarantine", "999"], "no finding 999")


@pytest.fixture
def featureless(tmp_path: Path, system: System) -> tuple[str, Path]:
    """A store of 300 decisions and a reference without audits or input features."""
    bare = Reference(confidence=system.reference.confidence, predicted=system.reference.predicted)
    artifacts.save(bare, tmp_path / "bare" / "reference")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as events:
        fill(events, system, 300)
    return url, tmp_path / "bare"


def test_without_audits_or_features_the_monitor_runs_and_says_what_it_cannot_say(
    featureless: tuple[str, Path],
) -> None:
    url, policy = featureless
    result = runner.invoke(
        app, ["monitor", "--store", url, "--policy", str(policy), "--window", "300"]
    )
    assert result.exit_code == 0, result.output
    assert "no input features" in result.stderr
    assert "no audited answers" in result.stderr
    assert "unseen_inputs" not in result.stdout


def test_gaps_with_a_reference_without_features_is_bad_input(
    featureless: tuple[str, Path],
) -> None:
    url, policy = featureless
    args = ["gaps", "--store", url, "--policy", str(policy), "--window", "300"]
    _bad(args, "has no input features", "features=", "failwise monitor")
    with store.open(url) as events:
        assert events.quarantines() == []


def test_an_output_under_a_file_is_refused_before_the_monitor_runs(
    deployed: tuple[str, Path], tmp_path: Path
) -> None:
    url, policy = deployed
    (tmp_path / "a-file").write_text("x")
    under = str(tmp_path / "a-file" / "out.json")
    base = ["--store", url, "--policy", str(policy), "--window", "500"]
    _bad(["monitor", *base, "--json", under], "--json", "is a file, not a folder")
    _bad(["monitor", *base, "--report", under], "--report", "is a file, not a folder")
    _bad(["gaps", *base, "--json", under], "--json", "is a file, not a folder")
    result = runner.invoke(app, ["monitor", *base])
    assert result.exit_code == 0, result.output
    assert "3 new window(s)" in result.stdout  # the refused runs monitored nothing
