"""The monitor-versus-peers benchmark runs on a tiny size and its JSON keeps its claims.

The peers (NannyML, Evidently) live in their own environment (the ``peers-monitor`` extra,
``requirements/peers-monitor.txt``). In the test environment they are absent, so the run
must still measure failwise and say why each peer is missing. With
``FAILWISE_PEERS_PYTHON`` pointing at that environment's interpreter, a second run checks
the peer columns too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.quick_run import BENCHMARKS, ROOT, quick_run

SCRIPT = BENCHMARKS / "bench_monitor_peers.py"
CONDITIONS = {"null", "prior shift", "novel 2%", "novel 5%", "novel 10%", "novel 20%"}


def _check_failwise(payload: dict[str, Any]) -> None:
    summary = payload["summary"]
    assert set(summary) == CONDITIONS
    for entry in summary.values():
        assert entry["windows"] == payload["windows_per_condition"]
        assert 0.0 <= entry["realised_all"] <= 1.0
        assert entry["failwise_all"]["mae"] >= abs(entry["failwise_all"]["bias"])
        for name, rate in entry["alarm_rate"].items():
            if name.startswith("failwise"):
                assert rate is not None, name
                assert 0.0 <= rate <= 1.0, name
    windows = payload["windows"]
    seeds = payload["seeds"]
    per_seed = len(CONDITIONS) * payload["windows_per_condition"] + payload["null_windows_per_seed"]
    assert len(windows) == seeds * per_seed
    for window in windows:
        assert 0.0 <= window["failwise_all"]["estimate"] <= 1.0
        assert window["failwise_all"]["seconds"] >= 0
    assert payload["load_average"], "timings without the load average"
    # Confidence-based estimates over-estimate once unseen intents are answered.
    assert summary["novel 20%"]["failwise_all"]["bias"] > summary["null"]["failwise_all"]["bias"]


@pytest.mark.slow
def test_without_the_peers_failwise_is_measured_and_each_missing_peer_says_why(
    tmp_path: Path,
) -> None:
    out = tmp_path / "monitor_peers.json"
    payload = quick_run(SCRIPT.name, out, timeout_s=900)
    _check_failwise(payload)
    assert payload["complete"] is True
    assert sum(bool(w.get("extra_null")) for w in payload["windows"]) == 2
    printed = subprocess.run(
        [sys.executable, str(SCRIPT), "--summarise", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Alarm rate per detector" in printed
    assert "Targets against the peers" in printed
    for package, status in payload["peers"].items():
        if status["status"] == "ok":
            continue
        assert f"cannot import {package}" in status["notes"][0]
        assert "peers-monitor" in status["notes"][0]
    if payload["peers"]["nannyml"]["status"] != "ok":
        for entry in payload["summary"].values():
            assert entry["cbpe_all"] is None
            assert entry["alarm_rate"]["CBPE alert (all requests)"] is None
        assert payload["timing_median_s"]["CBPE estimate (all)"] is None


@pytest.mark.slow
def test_in_the_peers_environment_cbpe_and_evidently_run_on_the_same_windows(
    tmp_path: Path,
) -> None:
    python = os.environ.get("FAILWISE_PEERS_PYTHON")
    if not python:
        pytest.skip("FAILWISE_PEERS_PYTHON is not set (see benchmarks/README.md)")
    payload = quick_run(SCRIPT.name, tmp_path / "monitor_peers.json", python=python, timeout_s=900)
    _check_failwise(payload)
    assert {p["status"] for p in payload["peers"].values()} == {"ok"}
    for window in payload["windows"]:
        assert window["cbpe_raw_all"]["estimate"] > 0
        cbpe = window["cbpe_all"]
        assert cbpe["low"] <= cbpe["estimate"] <= cbpe["high"]
        assert cbpe["low"] <= cbpe["low95"] <= cbpe["high95"] <= cbpe["high"]
        assert isinstance(cbpe["alert"], bool)
        evidently = window["evidently"]
        assert 0.0 <= evidently["drifted_column_share"] <= 1.0
        assert evidently["dataset_drift"] is (evidently["drifted_column_share"] >= 0.5)
        assert evidently["embedding_drift"] is (evidently["embedding_score"] > 0.55)
    for entry in payload["summary"].values():
        for name, rate in entry["alarm_rate"].items():
            assert rate is not None, name
            assert 0.0 <= rate <= 1.0, name
    assert all(t["met"] in (True, False) for t in payload["targets"])
