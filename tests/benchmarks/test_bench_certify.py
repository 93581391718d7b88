"""The certification benchmark runs end to end on a tiny size and its JSON keeps its claims."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPLIT_CONTENDERS = {
    "failwise",
    "failwise (before)",
    "joint levels",
    "mapie BH",
    "mapie FST",
    "mapie SFST",
    "SGR",
}
ALL_ROWS_CONTENDERS = {"failwise, all rows", "joint levels, all rows", "SGR, all rows"}
CONTENDERS = SPLIT_CONTENDERS | ALL_ROWS_CONTENDERS
DESIGNS = {"split": SPLIT_CONTENDERS, "all rows": ALL_ROWS_CONTENDERS}
# Exact binomial / Clopper–Pearson tests, by design.
EXACT = {
    "split": ("failwise", "failwise (before)", "joint levels", "SGR"),
    "all rows": tuple(ALL_ROWS_CONTENDERS),
}


def _run(out: Path, *extra: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("FAILWISE_CACHE_DIR", str(out.parent / "cache"))
    script = ROOT / "benchmarks" / "bench_certify.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--splits", "6", "--out", str(out), *extra],
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


@pytest.fixture(scope="module")
def certify(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("bench") / "certify.json")


@pytest.fixture(scope="module")
def banking(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    payload = _run(tmp_path_factory.mktemp("bench") / "banking.json", "--cases", "banking77")
    if "banking77" in payload["skipped"]:
        pytest.skip(f"BANKING77 not found: {payload['skipped']['banking77']}")
    return payload


def _cases(payload: dict[str, Any]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = payload["cases"]
    assert cases, "the benchmark ran no case"
    return cases


def _check_same_splits_and_summaries(payload: dict[str, Any]) -> None:
    alpha = payload["target_risk"]
    for case in _cases(payload):
        n = case["n_splits"]
        assert n == len(case["hindsight"]) >= 6
        assert set(case["contenders"]) == DESIGNS[case["design"]]
        for name, entry in case["contenders"].items():
            assert entry["status"] == "ok", (case["case"], name, entry.get("reason"))
            split = entry["per_split"]
            assert len(split["coverage"]) == len(split["held_out_risk"]) == n
            assert len(split["pool_risk"]) == n
            # The summary is computed from these very splits.
            assert entry["mean_coverage"] == pytest.approx(sum(split["coverage"]) / n)
            assert entry["uncertified_share"] == pytest.approx(
                sum(c == 0.0 for c in split["coverage"]) / n
            )
            for key, risks in (("held_out", split["held_out_risk"]), ("pool", split["pool_risk"])):
                violated = sum(r is not None and not math.isnan(r) and r > alpha for r in risks)
                assert entry[f"violation_rate_{key}"] == pytest.approx(violated / n)
            for coverage, risk in zip(split["coverage"], split["pool_risk"], strict=True):
                assert (coverage == 0.0) == (risk is None or math.isnan(risk))


def test_certify_benchmark_runs_every_contender_on_the_same_splits(
    certify: dict[str, Any],
) -> None:
    assert certify["quick"] is True
    assert certify["target_risk"] == 0.02
    assert certify["confidence_level"] == pytest.approx(0.95)
    assert set(certify["contenders"]) == CONTENDERS
    assert "digits" in {case["case"] for case in _cases(certify)}  # needs no data files
    assert {(case["case"], case["design"]) for case in _cases(certify)} == {
        (case["case"], design) for case in _cases(certify) for design in DESIGNS
    }
    _check_same_splits_and_summaries(certify)


def test_no_contender_certifies_beyond_the_uncorrected_hindsight_coverage(
    certify: dict[str, Any],
) -> None:
    # Hindsight is the coverage a single test with no multiplicity correction certifies;
    # a valid procedure testing many thresholds cannot answer more of the same rows.
    for case in _cases(certify):
        for entry in case["contenders"].values():
            coverage = entry["per_split"]["coverage"]
            for got, hindsight in zip(coverage, case["hindsight"], strict=True):
                assert got <= hindsight + 1e-12


def test_failwise_certifies_whenever_hindsight_coverage_is_substantial_on_cifar10(
    certify: dict[str, Any],
) -> None:
    cases = [case for case in _cases(certify) if case["case"] == "cifar10"]
    if not cases:
        pytest.skip(f"CIFAR-10 probabilities not found: {certify['skipped'].get('cifar10')}")
    for case in cases:
        assert min(case["hindsight"]) >= certify["hindsight_floor"]
        for name in EXACT[case["design"]]:
            assert case["contenders"][name]["uncertified_share"] == 0.0
        failwise = "failwise" if case["design"] == "split" else "failwise, all rows"
        assert case["contenders"][failwise]["coverage_ratio_to_hindsight"] >= 0.95


def _flat_null_size(starts: list[list[int]], alpha: float) -> float:
    """P(some start (k, b) sees at most b errors in its top k rows), row by row."""
    most = max(b for _, b in starts)
    allowed: dict[int, int] = {}
    for k, b in starts:
        allowed[k] = b
    mass = [1.0] + [0.0] * most  # error counts 0..most among rows so far, no start passed
    hit = 0.0
    for row in range(1, max(allowed) + 1):
        mass = [mass[0] * (1 - alpha)] + [
            mass[e] * (1 - alpha) + mass[e - 1] * alpha for e in range(1, most + 1)
        ]
        if row in allowed:
            hit += sum(mass[: allowed[row] + 1])
            mass[: allowed[row] + 1] = [0.0] * (allowed[row] + 1)
    return hit


def test_joint_starts_pass_together_with_probability_at_most_delta_under_the_flat_null(
    certify: dict[str, Any],
) -> None:
    alpha, delta = certify["target_risk"], 1 - certify["confidence_level"]
    for case in _cases(certify):
        assert case["joint_plans"]
        for plan in case["joint_plans"]:
            starts = plan["starts"]
            assert starts[0][1] == 0  # the zero-error start comes first
            assert [k for k, _ in starts] == sorted(k for k, _ in starts)
            size = _flat_null_size(starts, alpha)
            assert size == pytest.approx(plan["flat_null_size"], abs=1e-9)
            assert size <= delta + 1e-12
            # The joint size buys more than the Bonferroni sum of the starts would.
            bonferroni = sum(
                math.comb(k, e) * alpha**e * (1 - alpha) ** (k - e)
                for k, b in starts
                for e in range(b + 1)
            )
            assert bonferroni >= size - 1e-12
            if len(starts) > 1:
                assert bonferroni > size
        for floor in case["plan_floor"]:
            assert 0 <= floor["left_certifying_nothing"] <= floor["splits"]
            assert _flat_null_size(floor["plan"], alpha) <= delta + 1e-12


def _check_native(payload: dict[str, Any], case: str) -> None:
    native = [e for e in payload["native_splits"] if e["case"] == case]
    assert native
    alpha = payload["target_risk"]
    for entry in native:
        for name in ("failwise", "failwise (before)"):
            got = entry[name]
            assert got["coverage"] <= entry["hindsight"] + 1e-12
            if got["coverage"] > 0:  # certified: its Clopper–Pearson bound meets the target
                assert got["risk_upper_bound"] <= alpha
            else:
                assert got["risk_upper_bound"] == 1.0
                assert got["test_risk_seen"] is None


def test_certified_thresholds_on_the_digits_own_split_have_bounds_within_the_target(
    certify: dict[str, Any],
) -> None:
    _check_native(certify, "digits")


@pytest.mark.slow
def test_on_banking77_failwise_certifies_more_than_its_previous_procedure(
    banking: dict[str, Any],
) -> None:
    _check_same_splits_and_summaries(banking)
    _check_native(banking, "banking77")
    (case,) = [case for case in _cases(banking) if case["design"] == "split"]
    now, before = case["contenders"]["failwise"], case["contenders"]["failwise (before)"]
    assert now["mean_coverage"] >= before["mean_coverage"]
    assert (
        now["uncertified_share_where_hindsight_substantial"]
        <= before["uncertified_share_where_hindsight_substantial"]
    )
    for got, hindsight in zip(now["per_split"]["coverage"], case["hindsight"], strict=True):
        assert got <= hindsight + 1e-12
