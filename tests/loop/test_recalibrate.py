"""`recalibrate` and `failwise recalibrate`: labels from the log refit calibrator and policy."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from failwise import store
from failwise.artifacts import artifact_hash, load, save
from failwise.cli._app import app
from failwise.exceptions import InputError
from failwise.loop import recalibrate
from failwise.runtime import Guard
from failwise.testing import replay

TESTS = Path(__file__).resolve().parents[1]


def _digits() -> ModuleType:
    name = "failwise_test_digits"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "runtime" / "_digits.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def served(tmp_path: Path) -> tuple[str, Path, Path]:
    """A store after a day of traffic, and the artefacts that served it."""
    helper = _digits()
    data = helper.digits()
    policy = helper.fit_policy(data, target_risk=0.05)
    save(policy, tmp_path / "policy")
    save(data.calibrator, tmp_path / "calibrator")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as events:
        guard = Guard(
            data.model.decision_function, data.calibrator, policy, store=events, audit_rate=0.5
        )
        replay(guard, data.X_test, data.y_test, audit_accuracy=1.0, random_state=0)
    return url, tmp_path / "policy", tmp_path / "calibrator"


def test_the_guard_records_raw_scores_that_recalibration_reads(
    served: tuple[str, Path, Path],
) -> None:
    url, policy_path, calibrator_path = served
    with store.open(url) as events:
        first = events.iter_events().__next__()
        assert len(events.task(first.task_id).decision["scores"]) == 8
    report = recalibrate(url, policy_path, calibrator_path=calibrator_path)
    assert report.n_labels >= 50
    assert report.n_without_scores == 0
    assert [name for name, _, _ in report.rows] == ["ece", "coverage", "task_completion"]
    assert report.old_policy_version == artifact_hash(load(policy_path))
    assert report.calibrator is not None
    assert report.written == []


def test_write_saves_new_versioned_artefacts(
    served: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, policy_path, calibrator_path = served
    report = recalibrate(url, policy_path, calibrator_path=calibrator_path)
    artifacts = report.write(tmp_path / "new")
    assert {a.kind for a in artifacts} == {"policy", "calibrator"}
    policy_dir = tmp_path / "new" / f"policy-{report.policy_version[:12]}"
    assert artifact_hash(load(policy_dir)) == report.policy_version


def test_too_few_labels_is_a_clear_error(served: tuple[str, Path, Path]) -> None:
    url, policy_path, calibrator_path = served
    with pytest.raises(InputError, match=r"Too few labels to recalibrate: found \d+ .* at least"):
        recalibrate(url, policy_path, calibrator_path=calibrator_path, min_labels=100_000)
    with pytest.raises(InputError, match=r"found 0 labelled task"):
        recalibrate(url, policy_path, calibrator_path=calibrator_path, since=4.0e9)


def test_a_calibrator_where_the_policy_belongs_is_refused(served: tuple[str, Path, Path]) -> None:
    url, _, calibrator_path = served
    with pytest.raises(InputError, match=r"holds a TemperatureScaling, not a policy"):
        recalibrate(url, calibrator_path)


def test_cli_prints_the_comparison_and_writes_only_when_asked(
    served: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, policy_path, calibrator_path = served
    runner = CliRunner()
    args = ["recalibrate", "--store", url, "--policy", str(policy_path)]
    args += ["--calibrator", str(calibrator_path), "--json", str(tmp_path / "r.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "task completion" in result.output
    assert "nothing written" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["n_labels"] >= 50
    result = runner.invoke(app, [*args, "--write", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").iterdir())) == 2
    result = runner.invoke(app, ["recalibrate", "--store", url, "--policy", str(calibrator_path)])
    assert result.exit_code == 2
    assert "not a policy" in result.output
