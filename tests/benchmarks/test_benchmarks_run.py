"""The benchmark scripts run end to end on tiny sizes and write complete JSON.

Each script runs in a subprocess exactly as a user runs it (``python benchmarks/bench_x.py
--quick``). Nothing here looks at how fast anything is: the numbers of a quick run mean
nothing; the tests only prove that the scripts work and record what they promise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.quick_run import BENCHMARKS, ROOT, quick_run


def _check_environment(payload: dict[str, Any]) -> None:
    env = payload["environment"]
    assert env["cpu_count"] >= 1
    assert env["python"]
    for package in ("numpy", "scipy", "scikit-learn"):
        assert env["packages"][package], package


def _check_measurement(entry: dict[str, Any], *, repeats: int | None = None) -> None:
    if entry["status"] != "ok":
        assert entry["notes"], "a contender that did not run must say why"
        return
    times = entry["times_s"]
    assert times, "an ok contender has raw timings"
    assert all(t >= 0 for t in times)
    if repeats is not None:
        assert len(times) == repeats
    assert entry["min_s"] == min(times)
    assert min(times) <= entry["median_s"] <= max(times)
    assert entry["iqr_s"] >= 0


@pytest.fixture(scope="module")
def temperature(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "temperature.json"
    return quick_run("bench_temperature.py", out, "--repeats", "3")


@pytest.fixture(scope="module")
def risk_threshold(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "risk_threshold.json"
    return quick_run("bench_risk_threshold.py", out, "--repeats", "1")


@pytest.fixture(scope="module")
def decide(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "decide.json"
    return quick_run("bench_decide.py", out, "--repeats", "2")


def test_temperature_benchmark_records_raw_timings_medians_and_environment(
    temperature: dict[str, Any],
) -> None:
    assert temperature["quick"] is True
    assert temperature["repeats"] == 3
    _check_environment(temperature)
    assert len(temperature["cases"]) >= 1
    for case in temperature["cases"]:
        contenders = case["contenders"]
        assert {"failwise", "netcal", "scikit-learn", "scipy logsumexp"} <= set(contenders)
        for entry in contenders.values():
            _check_measurement(entry, repeats=3 if entry["status"] == "ok" else None)
        assert contenders["scipy logsumexp"]["status"] == "ok"
        assert "failwise/scipy logsumexp" in case["ratios"]


def test_temperature_benchmark_peers_reach_the_generating_temperature(
    temperature: dict[str, Any],
) -> None:
    for case in temperature["cases"]:
        for peer in ("netcal", "scikit-learn"):
            entry = case["contenders"][peer]
            if entry["status"] == "ok":
                assert entry["temperature"] == pytest.approx(1.5, abs=0.15)
                assert entry["nll"] < case["reference"]["nll_uncalibrated"]


def test_temperature_benchmark_times_failwise_and_computes_its_ratios(
    temperature: dict[str, Any],
) -> None:
    for case in temperature["cases"]:
        entry = case["contenders"]["failwise"]
        assert entry["status"] == "ok", entry["notes"]
        assert entry["nll"] < case["reference"]["nll_uncalibrated"]
        assert case["ratios"]["failwise/scipy logsumexp"] > 0
        ratio = case["ratios"]["failwise/scipy logsumexp"]
        assert case["targets"]["within 10× of scipy logsumexp"] is (ratio <= 10)


def test_risk_threshold_benchmark_records_coverage_and_certification(
    risk_threshold: dict[str, Any],
) -> None:
    _check_environment(risk_threshold)
    assert risk_threshold["target_risk"] == 0.05
    assert "precision" in risk_threshold["equivalence"]["mapie binary"]
    for case in risk_threshold["cases"]:
        contenders = case["contenders"]
        assert {"failwise", "mapie binary", "mapie multiclass"} <= set(contenders)
        for entry in contenders.values():
            _check_measurement(entry, repeats=1 if entry["status"] == "ok" else None)
            if entry["status"] == "ok":
                assert 0.0 <= entry["coverage"] <= 1.0
                assert isinstance(entry["certified"], bool)


def test_risk_threshold_benchmark_mapie_controllers_agree_when_given_the_same_statement(
    risk_threshold: dict[str, Any],
) -> None:
    # The binary controller on (confidence, correct) and the multiclass controller on the
    # probabilities test the same hypotheses on the same grid, so they pick the same λ.
    for case in risk_threshold["cases"]:
        binary = case["contenders"]["mapie binary"]
        multiclass = case["contenders"]["mapie multiclass"]
        if binary["status"] == "ok" and multiclass["status"] == "ok":
            assert binary["certified"] == multiclass["certified"]
            assert binary["coverage"] == pytest.approx(multiclass["coverage"])


def test_risk_threshold_benchmark_times_failwise(risk_threshold: dict[str, Any]) -> None:
    for case in risk_threshold["cases"]:
        entry = case["contenders"]["failwise"]
        assert entry["status"] == "ok", entry["notes"]
        assert case["ratios"]["failwise/mapie binary"] is not None


def test_decide_benchmark_records_batch_baseline_and_single_row_latency(
    decide: dict[str, Any],
) -> None:
    _check_environment(decide)
    batch = decide["batch"]
    baseline = batch["contenders"]["proba.max(axis=1)"]
    _check_measurement(baseline, repeats=2)
    assert batch["rows_per_second"]["proba.max(axis=1)"] > 0
    latency = decide["single_row"]["proba.max(axis=1)"]
    assert latency["calls"] == len(latency["samples_us"])
    assert latency["median_us"] <= latency["p99_us"]


def test_decide_benchmark_times_failwise_decide(decide: dict[str, Any]) -> None:
    batch = decide["batch"]
    entry = batch["contenders"]["failwise decide"]
    assert entry["status"] == "ok", entry["notes"]
    assert batch["ratios"]["decide/max"] > 0
    assert decide["single_row"]["failwise decide"]["median_us"] > 0


def test_benchmark_scripts_reject_a_non_positive_repeat_count(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_decide.py"), "--repeats", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert "expected an integer ≥ 1" in completed.stderr


def test_guard_benchmark_measures_overhead_beyond_the_model(tmp_path: Path) -> None:
    result = quick_run("bench_guard.py", tmp_path / "guard.json")
    _check_environment(result)
    assert result["cases"], "the guard benchmark measured no case"
    for case in result["cases"].values():
        for stats in case["latency"].values():
            assert 0 < stats["median_us"] <= stats["p99_us"]
        shares = case["action_shares"]
        assert sum(shares.values()) == pytest.approx(1.0)
        assert case["decide_batch"]["per_input_us"] > 0
        guard = next(k for k in case["overhead_vs_model"] if k.startswith("guard"))
        overhead = case["overhead_vs_model"][guard]
        assert case["targets"]["guard overhead median < 50 µs"] is (
            overhead["median_us"] < result["target_us"]
        )


def test_store_benchmark_measures_every_backend_it_can_reach(tmp_path: Path) -> None:
    result = quick_run("bench_store.py", tmp_path / "store.json")
    _check_environment(result)
    cases = result["cases"]
    assert cases["decisions/sqlite"]["status"] == "ok", cases["decisions/sqlite"]["notes"]
    if os.environ.get("FAILWISE_TEST_POSTGRES_URL"):
        assert cases["decisions/postgresql"]["status"] == "ok"
    for name, case in cases.items():
        if case["status"] != "ok":
            assert case["notes"], f"{name} did not run and does not say why"
            continue
        assert 0 < case["min"] <= case["median"] <= case["max"], name


def test_measure_benchmark_gives_the_same_metrics_on_every_engine(tmp_path: Path) -> None:
    result = quick_run("bench_measure.py", tmp_path / "measure.json")
    _check_environment(result)
    measured = [case for case in result["cases"] if "median" in case]
    assert {case["backend"] for case in measured} >= {"sqlite", "duckdb (parquet)"}
    for case in measured:
        assert case["median"] > 0
        # Every engine reports exactly the numbers of the reference engine.
        assert case.get("same_metrics", True) is True, case


def test_monitor_benchmark_reports_every_condition_with_valid_rates(tmp_path: Path) -> None:
    result = quick_run("bench_monitor.py", tmp_path / "monitor.json")
    _check_environment(result)
    summary = result["summary"]
    assert {"null", "prior shift", "novel 10%", "novel 30%"} <= set(summary)
    for entry in summary.values():
        assert entry["windows"] >= 1
        for key in (
            "unseen_alarm_rate",
            "mmd_alarm_rate",
            "calibration_broken_rate",
            "ks_confidence_alarm_rate",
            "ks_confidence_two_sample_alarm_rate",
        ):
            assert 0.0 <= entry[key] <= 1.0
    # The label-free estimate over-estimates when unseen intents are answered; the audit
    # correction removes most of that bias.
    novel = summary["novel 30%"]
    assert novel["estimate_bias"] > abs(novel["corrected_bias"])
    for window in result["windows"]:
        assert window["answered"] >= 0
        if window["answered"]:
            assert 0.0 <= window["realised_accuracy"] <= 1.0
    assert result["gaps"], "no blind-spot batch was measured"


@pytest.mark.slow
def test_monitor_scale_benchmark_times_every_step(tmp_path: Path) -> None:
    result = quick_run("bench_monitor_scale.py", tmp_path / "monitor_scale.json")
    _check_environment(result)
    steps = result["results"]
    assert steps["window_statistics"]["events"] > 50_000
    assert steps["window_statistics"]["windows"] == 720  # hourly over 30 days
    assert set(steps["features_and_clusters"]["steps_median_s"]) == {"fit", "unseen", "mmd", "gaps"}
    for entry in steps.values():
        assert entry["median_s"] > 0
        assert len(entry["times_s"]) == result["repeats"]


@pytest.mark.slow
def test_blind_spot_benchmark_scores_every_method_on_both_datasets(tmp_path: Path) -> None:
    result = quick_run("bench_blind_spots.py", tmp_path / "blind_spots.json")
    _check_environment(result)
    rows = result["rows"]
    assert {(r["dataset"], r["novel_rate"]) for r in rows} == {
        (d, rate) for d in ("banking77", "clinc150") for rate in (0.1, 0.2)
    }
    for row in rows:
        # failwise's gaps once per neighbour index, beside the peers' clusters of all traffic
        assert set(row["failwise"]) == {"reference", "reference + training"}
        scored_by = [*row["failwise"].values(), row["kmeans"], row["hdbscan"]]
        for scored in scored_by:
            assert 0 <= scored["real"] <= scored["clusters"]
            assert 0 <= scored["intents_surfaced"] <= min(19, scored["real"])
        for scored in row["failwise"].values():
            share = scored["oos_in_oos_clusters"]
            assert (share is None) == (row["dataset"] == "banking77")


@pytest.mark.slow
def test_quarantine_benchmark_compares_every_arm_on_the_same_stream(tmp_path: Path) -> None:
    result = quick_run("bench_quarantine.py", tmp_path / "quarantine.json")
    _check_environment(result)
    arms = (
        "without monitoring",
        "blind spots quarantined",
        "blind spots + unseen alerts quarantined",
    )
    assert tuple(result["summary"]) == arms
    by_arm = {arm: [r for r in result["rows"] if r["arm"] == arm] for arm in arms}
    # Every arm served the same stream: the same unseen requests in the same windows.
    counts = {arm: [r["unseen_requests"] for r in rows] for arm, rows in by_arm.items()}
    assert len({tuple(c) for c in counts.values()}) == 1
    assert result["summary"][arms[0]]["extra_known_escalations"] == 0
    for entry in result["summary"].values():
        assert 0 <= entry["silent_failures_unseen"] <= entry["unseen_requests"]
        assert 0.0 <= entry["measured_task_completion"] <= 1.0


def test_service_benchmark_loads_every_case_and_judges_its_targets(tmp_path: Path) -> None:
    result = quick_run("bench_service.py", tmp_path / "service.json")
    _check_environment(result)
    cases = result["cases"]
    failed = {name: case["error"] for name, case in cases.items() if "error" in case}
    if not os.environ.get("FAILWISE_TEST_POSTGRES_URL"):
        failed = {k: v for k, v in failed.items() if "postgresql" not in k}
    assert failed == {}
    for name in ("bare", "auth/open route", "auth/API key", "decisions/sqlite"):
        case = cases[name]
        assert case["ok"] > 0, (name, case)
        assert case["non_2xx"] == 0, (name, case)
        assert case["p50_ms"] <= case["p99_ms"]
        assert case["driver_cpu_s"] >= 0
    for name, in_flight in (("batch/sqlite", 8), ("batch, 2 in flight/sqlite", 2)):
        batch = cases[name]
        assert batch["decisions_per_s"] > 0
        assert len(batch["worker_cpu_s"]) == 2
        assert batch["in_flight"] == in_flight
        assert batch["server_cpu_ms_per_batch"] >= sum(batch["worker_cpu_s"]) * 1000 / batch["ok"]
    reviewers = cases["reviewers/sqlite"]
    assert reviewers["resolves"] > 0
    assert set(reviewers["statuses"]) == {"200"}
    assert 0 <= reviewers["server_share_within_50ms"] <= 1
    assert reviewers["server_requests_counted"] >= reviewers["claims"]
    offered = cases["decisions at 300/s/sqlite"]
    assert offered["offered_rate"] == 300
    assert offered["answered"] + offered["errors"] == round(300 * result["sizes"]["duration_s"])
    for target, met in result["targets"].items():
        assert met in (True, False, None), target
    assert result["ratios"]["decisions/sqlite ÷ bare"] > 0
    auth = cases["auth/API key"]
    rounds = result["sizes"]["auth_rounds"]
    assert auth["rounds"] == rounds == len(auth["ratio_per_round"])
    assert len(auth["open_ok_per_s_per_round"]) == rounds
    assert sorted(auth["ratio_per_round"])[rounds // 2] == auth["ratio_median"]
    assert result["ratios"]["API key ÷ open route (median round)"] == auth["ratio_median"]


def test_slices_benchmark_recovers_planted_slices_and_compares_with_sliceline(
    tmp_path: Path,
) -> None:
    result = quick_run("bench_slices.py", tmp_path / "slices.json")
    _check_environment(result)
    assert result["settings"] == 6
    assert result["planted_top1"] >= 0.5
    assert result["same_top_k_as_sliceline"] in (None, 1.0)
    assert all(row["seconds_find_slices"] > 0 for row in result["rows"])


@pytest.mark.slow
def test_queue_push_benchmark_times_every_claim_and_both_routes(tmp_path: Path) -> None:
    result = quick_run("bench_queue_push.py", tmp_path / "queue_push.json")
    _check_environment(result)
    sqlite = result["results"]["sqlite"]
    assert sqlite["changes"] == len(sqlite["delays_s"]) == 5
    assert all(0 <= delay < 30 for delay in sqlite["delays_s"]), "a claim never reached the feed"
    assert sqlite["non_2xx"] == 0
    assert sqlite["ratio_changes_to_livez"] > 0
    assert len(sqlite["runs"]["changes"]) == len(sqlite["runs"]["livez"]) == 2
