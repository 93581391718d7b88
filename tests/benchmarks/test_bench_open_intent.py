"""The open-intent benchmark runs end to end on its synthetic intent set and keeps its promises.

``bench_open_intent.py --quick`` trains TF-IDF models on a small synthetic intent set with
25 / 50 / 75 % of the intents known and three seeds, exactly as a user runs the script.
The checks are on behaviour the benchmark reports, not on timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    script = ROOT / "benchmarks" / "bench_open_intent.py"
    return subprocess.run(
        [sys.executable, str(script), *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "open_intent.json"
    completed = _run(out, "--quick")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Open-intent splits, per seed" in completed.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["complete"] is True
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def test_every_known_ratio_and_seed_is_reported(payload: dict[str, Any]) -> None:
    runs = payload["runs"]
    assert {(r["known_ratio"], r["seed"]) for r in runs} == {
        (ratio, seed) for ratio in (0.25, 0.5, 0.75) for seed in (0, 1, 2)
    }
    assert "thuiar/Adaptive-Decision-Boundary" in payload["adb_reference"]["source"]
    assert payload["adb_reference"]["f1_all"]["banking77"]["0.5"] == pytest.approx(80.90)


def test_validation_holds_no_open_example_and_test_does(payload: dict[str, Any]) -> None:
    for run in payload["runs"]:
        assert run["n_test_open"] > 0
        if run["calibration"] == "all":  # the calibrator and the policy share every row
            assert run["n_policy_rows"] == run["n_validation"]
        else:
            calibration_rows = round(0.3 * run["n_validation"])
            assert run["n_policy_rows"] + calibration_rows == run["n_validation"]


def test_the_default_screen_is_on_and_meets_its_rule_on_every_seed(payload: dict[str, Any]) -> None:
    for run in payload["runs"]:
        default = run["default"]
        assert default["screen_on"], run
        assert default["screen_met"], run
        assert 0.0 < default["screened_open"] <= 1.0
        # The screen keeps unseen intents away from automatic answers.
        assert default["screened_open"] > 4 * default["screened_known"]
        if default["coverage_known"] == 0.0:
            assert default["warnings"], "no automation must never be silent"


def test_unseen_intents_are_answered_far_less_often_than_known_ones(
    payload: dict[str, Any],
) -> None:
    for run in payload["runs"]:
        for policy in ("default", "stated_targets"):
            result = run[policy]
            if result["coverage_known"] > 0.2:
                assert result["silent_failures_open"] < 0.5 * result["coverage_known"], run


def test_stated_targets_give_a_usable_open_set_classifier(payload: dict[str, Any]) -> None:
    for summary in payload["summary"]:
        f1 = summary["stated_f1_all"]
        assert 0.6 < f1["mean"] <= 1.0, summary
        assert f1["std"] < 0.1, summary  # stable across seeds


def test_the_adb_rule_runs_on_the_same_features_and_splits(payload: dict[str, Any]) -> None:
    for run in payload["runs"]:
        adb = run["adb_rule_same_features"]
        assert 0.0 < adb["f1_all"] < 1.0, run
        assert 0.0 < adb["f1_open"] < 1.0, run  # its radii send some queries to "open"
    for summary in payload["summary"]:
        assert 0.0 < summary["adb_rule_f1_all"]["mean"] < 1.0
        low, high = summary["load_average_1min"]  # every figure keeps the machine's load
        assert 0.0 <= low <= high


def test_the_out_of_scope_score_is_chosen_by_pseudo_open_cross_validation(
    payload: dict[str, Any],
) -> None:
    from failwise.policy import choose_by_folds

    protocol = payload["protocol"]
    names = protocol["ood_candidates"]["tfidf"]
    assert protocol["ood_selection"]["n_folds"] >= 2
    assert not any("maha" in name for name in names)  # dense features only
    assert any("maha" in name for name in protocol["ood_candidates"]["minilm"])
    rules = protocol["selection_rules"]
    assert protocol["selection_rule"] in rules
    best_choices = set()
    for run in payload["runs"]:
        folds = run["selection_f1_folds"]
        assert set(folds) == set(names)
        assert {len(values) for values in folds.values()} == {protocol["ood_selection"]["n_folds"]}
        assert all(0.0 < f1 <= 1.0 for values in folds.values() for f1 in values)
        # Every rule's choice is the one choose_by_folds makes from the stored fold scores,
        # the first candidate (the score used before) being the default.
        for rule, (how, n) in rules.items():
            expected = choose_by_folds(
                {name: folds[name][:n] for name in names}, default=names[0], rule=how
            )
            assert run["rules"][rule]["ood_score"] == expected, (rule, run["seed"])
            assert 0.0 < run["rules"][rule]["stated_targets"]["f1_all"] <= 1.0
        best_choices.add(run["rules"]["best, 3 folds"]["ood_score"])
        # The reported figures are those of the adopted rule.
        adopted = run["rules"][protocol["selection_rule"]]
        assert run["ood_score"] == adopted["ood_score"]
        assert run["stated_targets"] == adopted["stated_targets"]
        assert run["default"] == adopted["default"]
        assert run["fixed_score"] == names[0]
        assert 0.0 < run["stated_targets_fixed_score"]["f1_all"] <= 1.0
    assert len(best_choices) >= 2  # the best mean follows the split, not a constant
    for summary in payload["summary"]:
        assert sum(summary["ood_scores_chosen"].values()) == len(summary["seeds"])
        assert set(summary["rules_f1_all"]) == set(rules)


def test_earlier_results_are_summarised_under_the_adopted_rule(
    payload: dict[str, Any], tmp_path: Path
) -> None:
    first = tmp_path / "first.json"
    first.write_text(json.dumps(payload), encoding="utf-8")
    out = tmp_path / "merged.json"
    completed = _run(out, "--summarise", str(first), str(first))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Selection rules" in completed.stdout
    merged = json.loads(out.read_text(encoding="utf-8"))
    assert len(merged["runs"]) == 2 * len(payload["runs"])
    assert [s["stated_f1_all"] for s in merged["summary"]] == [
        s["stated_f1_all"] for s in payload["summary"]
    ]
    missing = _run(tmp_path / "x.json", "--summarise", str(tmp_path / "none.json"))
    assert missing.returncode != 0
    assert "none.json" in missing.stderr
    assert not (tmp_path / "x.json").exists()


def test_an_unknown_dataset_name_is_refused(tmp_path: Path) -> None:
    completed = _run(tmp_path / "x.json", "--datasets", "hwu46", "--models", "tfidf")
    assert completed.returncode == 2
    assert "hwu46" in completed.stderr
    assert "hwu64" in completed.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("ratios", ["0.5,1", "half", ""])
def test_known_ratios_outside_zero_and_one_are_refused(tmp_path: Path, ratios: str) -> None:
    completed = _run(tmp_path / "x.json", "--quick", "--ratios", ratios)
    assert completed.returncode == 2
    assert "--ratios" in completed.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_hwu64_runs_on_its_published_split(data_dir: Path, tmp_path: Path) -> None:
    if not (data_dir / "hwu64" / "train" / "seq.in").is_file():
        pytest.skip(f"HWU64 not found under {data_dir}")
    out = tmp_path / "hwu64.json"
    completed = _run(out, "--datasets", "hwu64", "--models", "tfidf", "--seeds", "1")
    assert completed.returncode == 0, completed.stderr[-3000:]
    runs = json.loads(out.read_text(encoding="utf-8"))["runs"]
    assert [(r["dataset"], r["known_ratio"]) for r in runs] == [
        ("hwu64", 0.25),
        ("hwu64", 0.5),
        ("hwu64", 0.75),
    ]
    for run in runs:
        assert run["n_known_intents"] == round(64 * run["known_ratio"])
        # The published split: 8,954 / 1,076 / 1,076 queries; validation and training keep
        # only the known intents, test keeps every query.
        assert run["n_test_known"] + run["n_test_open"] == 1076
        assert 0 < run["n_validation"] < 1076
        assert 0 < run["n_train"] < 8954
        assert run["adb_f1_all"] is None  # no published ADB row for HWU64
        assert 0.3 < run["stated_targets"]["f1_all"] <= 1.0
