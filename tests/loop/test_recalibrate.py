"""`recalibrate` and `failwise recalibrate`, judged by what the refit does on fresh traffic.

Each log is a day of digits traffic through a real Guard into a real SQLite store, with
scripted users and reviewers (see ``_system.py``); "fresh" traffic is a new draw from the
same scanner. Whatever the report claims is checked against that fresh traffic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from failwise import store
from failwise.artifacts import artifact_hash, load, save
from failwise.cli import app
from failwise.exceptions import InputError, UncertifiedWarning
from failwise.loop import LoggedTasks, read_logged_tasks, recalibrate, recalibrate_tasks
from failwise.store import StoreError
from tests.loop._system import TARGET_RISK, log_day, log_day_guarded, outcome, system


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The policy and calibrator in service, saved as artefacts."""
    folder = tmp_path_factory.mktemp("service")
    served = system()
    save(served.policy, folder / "policy")
    save(served.calibrator, folder / "calibrator")
    return folder / "policy", folder / "calibrator"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One logged day per scanner state: unchanged, faded (under-confident), noisy (wrong)."""
    folder = tmp_path_factory.mktemp("logs")
    return {drift: log_day_guarded(folder, drift, seed=0) for drift in ("none", "faded", "noisy")}


def test_on_an_undrifted_log_nothing_material_changes(
    logs: dict[str, str], artefacts: tuple[Path, Path]
) -> None:
    report = recalibrate(logs["none"], artefacts[0], calibrator_path=artefacts[1])
    served = system()
    before = outcome(served.policy, served.calibrator, "none", seed=0)
    after = outcome(report.policy, report.calibrator, "none", seed=0)
    assert after.coverage == pytest.approx(before.coverage, abs=0.02)
    assert after.risk <= TARGET_RISK
    assert not report.adopted or report.new.coverage >= report.old.coverage
    assert "shows no sign that it misses its target" in report.reason or report.adopted


def test_on_a_faded_scanner_log_the_refit_answers_more_and_meets_its_target(
    logs: dict[str, str], artefacts: tuple[Path, Path]
) -> None:
    report = recalibrate(logs["faded"], artefacts[0], calibrator_path=artefacts[1])
    served = system()
    before = outcome(served.policy, served.calibrator, "faded", seed=0)
    after = outcome(report.policy, report.calibrator, "faded", seed=0)
    assert report.adopted, report.reason
    assert report.new.certified is True
    assert after.risk <= TARGET_RISK
    # A share of the labels is held out for the comparison, so the gain is a little smaller
    # than a refit on every label would give.
    assert after.coverage > before.coverage + 0.03
    assert after.escalation_rate < before.escalation_rate
    # The table's figures describe all traffic, not just the labelled inputs.
    assert report.old.coverage == pytest.approx(before.coverage, abs=0.03)
    assert report.new.coverage == pytest.approx(after.coverage, abs=0.03)
    for estimated, fresh in ((report.old, before), (report.new, after)):
        assert estimated.task_completion == pytest.approx(fresh.task_completion, abs=0.03)
        assert estimated.escalation_rate == pytest.approx(
            fresh.escalated_or_user_escalated, abs=0.03
        )
    assert report.new.human_hours_per_1000_tasks < report.old.human_hours_per_1000_tasks
    assert report.regressions() == []


def test_on_a_noisy_scanner_log_the_refit_answers_less_to_meet_its_target(
    logs: dict[str, str], artefacts: tuple[Path, Path], tmp_path: Path
) -> None:
    report = recalibrate(logs["noisy"], artefacts[0], calibrator_path=artefacts[1])
    served = system()
    before = outcome(served.policy, served.calibrator, "noisy", seed=0)
    after = outcome(report.policy, report.calibrator, "noisy", seed=0)
    assert before.risk > 1.5 * TARGET_RISK  # the policy in service misses its target
    assert report.old.certified is False
    assert report.adopted, report.reason
    assert "misses its target on the log" in report.reason
    assert after.risk <= TARGET_RISK
    assert 0.0 < after.coverage < before.coverage
    # Writing a policy that answers less needs an explicit choice.
    with pytest.raises(InputError, match=r"Refusing to write the new policy: it answers"):
        report.write(tmp_path / "out")
    written = report.write(tmp_path / "out", allow_less_automation=True)
    assert {a.kind for a in written} == {"policy", "calibrator"}
    policy_dir = tmp_path / "out" / f"policy-{report.policy_version[:12]}"
    assert artifact_hash(load(policy_dir)) == report.policy_version


def test_only_labels_with_a_known_inclusion_probability_are_used(logs: dict[str, str]) -> None:
    with store.open(logs["faded"]) as events:
        tasks = read_logged_tasks(events)
    assert tasks.n_tasks == 4000
    assert tasks.n_other_labels > 0  # user corrections and the application's own audits
    assert tasks.n_pending > 0  # escalations beyond the reviewers' capacity
    labelled = tasks.labelled
    assert set(np.unique(tasks.review_probability[labelled])) == {0.2, 1.0}
    assert tasks.selected[labelled].all()


def test_a_log_without_review_probabilities_cannot_recalibrate(
    tmp_path: Path, artefacts: tuple[Path, Path]
) -> None:
    url = log_day(tmp_path, "faded", seed=1, n=400, record_probability=False)
    with pytest.raises(InputError, match=r"found 0 label\(s\).* 400 logged decision\(s\) carry no"):
        recalibrate(url, artefacts[0], calibrator_path=artefacts[1])


def test_an_uncertified_refit_keeps_the_policy_in_service_and_says_why(
    tmp_path: Path, artefacts: tuple[Path, Path]
) -> None:
    url = log_day_guarded(tmp_path, "noisy", seed=2, n=500)
    with pytest.warns(UncertifiedWarning, match=r"kept the policy in service"):
        report = recalibrate(url, artefacts[0], calibrator_path=artefacts[1])
    assert not report.adopted
    assert report.policy_version == report.old_policy_version
    assert report.calibrator is not None
    assert artifact_hash(report.calibrator) == artifact_hash(system().calibrator)
    assert "uniform sample of" in report.reason
    assert "sampled answers were wrong" in report.reason
    with pytest.raises(InputError, match=r"Nothing written: the policy in service was kept"):
        report.write(tmp_path / "out")


def test_a_log_with_an_action_never_audited_certifies_nothing() -> None:
    served = system()
    rng = np.random.default_rng(0)
    X, y = served.traffic(600, "none", rng)
    scores = served.scores(X)
    decisions = served.policy.decide(
        served.calibrator.predict_proba(scores), fallback=served.fallback(X)
    )
    action = np.asarray(decisions.action)
    probability = np.where(action == "escalate", 1.0, np.where(action == "answer", 0.3, 0.0))
    selected = rng.random(600) < probability
    tasks = LoggedTasks(
        scores=scores,
        y=np.where(selected, y, -2).astype(np.intp),
        selected=selected,
        review_probability=probability,
        fallback_label=served.fallback(X),
        ood_score=None,
        action=action,
        task_id=[f"t{i}" for i in range(600)],
    )
    with pytest.warns(UncertifiedWarning, match=r"had review probability 0, so no sample"):
        report = recalibrate_tasks(tasks, served.policy, served.calibrator)
    assert not report.adopted


def test_a_missing_sqlite_file_is_an_error(tmp_path: Path, artefacts: tuple[Path, Path]) -> None:
    url = f"sqlite:///{tmp_path / 'no-such.db'}"
    with pytest.raises(StoreError, match=r"No failwise store at .*no-such\.db"):
        recalibrate(url, artefacts[0], calibrator_path=artefacts[1])
    assert not (tmp_path / "no-such.db").exists()


def test_a_calibrator_where_the_policy_belongs_is_refused(
    logs: dict[str, str], artefacts: tuple[Path, Path]
) -> None:
    with pytest.raises(InputError, match=r"holds a TemperatureScaling, not a policy"):
        recalibrate(logs["none"], artefacts[1])


def test_cli_shows_automation_humans_and_certificates_and_refuses_less_automation(
    logs: dict[str, str], artefacts: tuple[Path, Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["recalibrate", "--store", logs["noisy"], "--policy", str(artefacts[0])]
    args += ["--calibrator", str(artefacts[1]), "--json", str(tmp_path / "r.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for row in ("coverage", "escalation rate", "human hours / 1,000 tasks", "certified"):
        assert row in result.output
    assert "inverse-probability" in result.output
    assert "nothing written" in result.output
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["adopted"] is True
    assert saved["old"]["certified"] is False
    assert saved["new"]["certified"] is True
    refused = runner.invoke(app, [*args, "--write", str(tmp_path / "out")])
    assert refused.exit_code == 2
    assert "Refusing to write the new policy" in refused.output
    assert "--allow-less-automation" in refused.output
    assert not (tmp_path / "out").exists()
    allowed = runner.invoke(
        app, [*args, "--write", str(tmp_path / "out"), "--allow-less-automation"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert len(list((tmp_path / "out").iterdir())) == 2
    missing = runner.invoke(
        app,
        [
            "recalibrate",
            "--store",
            f"sqlite:///{tmp_path / 'typo.db'}",
            "--policy",
            str(artefacts[0]),
        ],
    )
    assert missing.exit_code == 2
    assert "No failwise store at" in missing.output


def test_the_comparison_is_estimated_on_labels_neither_refit_saw(
    logs: dict[str, str], artefacts: tuple[Path, Path]
) -> None:
    report = recalibrate(logs["none"], artefacts[0], calibrator_path=artefacts[1])
    assert report.n_calibration > 0
    assert report.n_eval > 0
    assert report.n_eval + report.n_certification + report.n_calibration <= report.n_labels
    assert any(f"estimates on {report.n_eval} held-out label(s)" in n for n in report.notes)
    assert report.to_dict()["n_evaluation"] == report.n_eval
