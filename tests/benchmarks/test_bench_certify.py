"""The certification benchmark runs end to end on a tiny size and writes complete JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = {"failwise", "failwise (before)", "mapie BH", "mapie FST", "mapie SFST", "SGR"}


@pytest.fixture(scope="module")
def certify(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "certify.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("FAILWISE_CACHE_DIR", str(out.parent / "cache"))
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_certify.py"),
            "--quick",
            "--splits",
            "6",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    payload: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return payload


def test_certify_benchmark_compares_every_contender_on_the_same_splits(
    certify: dict[str, Any],
) -> None:
    assert certify["quick"] is True
    assert certify["target_risk"] == 0.02
    assert certify["confidence_level"] == pytest.approx(0.95)
    assert set(certify["contenders"]) == CONTENDERS
    cases = {case["case"]: case for case in certify["cases"]}
    assert "digits" in cases  # needs no data files
    for case in cases.values():
        assert case["n_splits"] == len(case["hindsight"]) >= 6
        assert set(case["contenders"]) == CONTENDERS
        for name in ("failwise", "failwise (before)", "SGR"):
            entry = case["contenders"][name]
            assert entry["status"] == "ok"
            assert len(entry["per_split"]["coverage"]) == case["n_splits"]
            assert 0.0 <= entry["violation_rate_held_out"] <= 1.0


def test_no_exact_contender_certifies_beyond_the_uncorrected_hindsight_coverage(
    certify: dict[str, Any],
) -> None:
    for case in certify["cases"]:
        for entry in case["contenders"].values():
            if entry["status"] != "ok":
                continue
            coverage = entry["per_split"]["coverage"]
            for got, hindsight in zip(coverage, case["hindsight"], strict=True):
                assert got <= hindsight + 1e-12


def test_certify_benchmark_shows_digits_before_and_after_on_its_own_split(
    certify: dict[str, Any],
) -> None:
    native = [e for e in certify["native_splits"] if e["case"] == "digits"]
    assert native
    for entry in native:
        for name in ("failwise", "failwise (before)"):
            assert 0.0 <= entry[name]["coverage"] <= 1.0
            assert entry[name]["risk_upper_bound"] <= 1.0
