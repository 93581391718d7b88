"""Per-decision overhead of ``failwise.Guard`` beyond the model's own time.

Run ``python benchmarks/bench_guard.py`` (add ``--quick`` for a smoke run).

A ``Policy(target_risk=0.05, confidence_level=0.9)`` is fitted on 20k validation rows of a
synthetic classifier (``_harness.make_classifier_outputs``, overconfident by 1.5), for 10
and for 150 classes. The "model" is a lookup of precomputed probabilities (``x`` is a row
number), so its own time is ~0.1 µs; that bare call is timed as well and subtracted.
Contenders, each called one input at a time over consecutive rows:

- ``model(i)``: the bare lookup;
- ``guard.decide(i)``: no store, no time limit, no breaker (the target: overhead < 50 µs,
  median and p99);
- ``+ circuit breaker``: with ``failwise.runtime.circuit_breaker()`` (pybreaker);
- ``+ timeout_s``: the model runs in a worker thread (one hand-off per call);
- ``+ calibrator``: the lookup returns logits and ``TemperatureScaling`` calibrates them;
- ``policy.decide_one(p)``: the policy's own single-row path on the same probabilities (the
  same rungs through ``run_row``, plus input checks), for comparison;
- ``await guard.adecide(i)``: the asyncio path, one call at a time (two thread hand-offs);
- ``decide_batch`` of 1,000 inputs, per input.

Calls are timed one by one with ``perf_counter_ns``, in chunks whose order rotates between
repeats; the garbage collector stays on, as in a service. Median and p99 are over all calls.
"""

from __future__ import annotations

import asyncio
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

NAME = "guard"
DEFAULT_REPEATS = 5
OVERCONFIDENCE = 1.5
TARGET_RISK = 0.05
CONFIDENCE_LEVEL = 0.9
TARGET_US = 50.0
FULL = {"n_validation": 20_000, "n_rows": 20_000, "chunk": 4_000, "batch": 1_000}
QUICK = {"n_validation": 3_000, "n_rows": 600, "chunk": 300, "batch": 200}
CLASS_COUNTS = (10, 150)

MODEL = "model(i)"
GUARD = "guard.decide(i)"
BREAKER = "guard.decide(i) + circuit breaker"
TIMEOUT = "guard.decide(i) + timeout_s"
CALIBRATED = "guard.decide(i) + calibrator"
DECIDE_ONE = "policy.decide_one(p)"
ASYNC = "await guard.adecide(i)"
ORDER = (MODEL, GUARD, BREAKER, TIMEOUT, CALIBRATED, DECIDE_ONE, ASYNC)


def _summary(samples: NDArray[np.float64]) -> dict[str, Any]:
    us = samples * 1e6
    return {
        "calls": int(us.shape[0]),
        "median_us": float(np.median(us)),
        "p99_us": float(np.percentile(us, 99)),
        "p999_us": float(np.percentile(us, 99.9)),
        "mean_us": float(np.mean(us)),
        "min_us": float(np.min(us)),
    }


def _async_samples(guard: Any, calls: int, offset: int, n_rows: int) -> NDArray[np.float64]:
    async def run() -> NDArray[np.float64]:
        samples = np.empty(calls)
        clock = time.perf_counter_ns
        for i in range(calls):
            start = clock()
            await guard.adecide((offset + i) % n_rows)
            samples[i] = clock() - start
        return samples * 1e-9

    return asyncio.run(run())


def _case(n_classes: int, sizes: dict[str, int], repeats: int, seed: int) -> dict[str, Any]:
    from failwise import Policy, TemperatureScaling
    from failwise.runtime import Guard, circuit_breaker

    rng = np.random.default_rng(seed)
    logits_val, y_val = h.make_classifier_outputs(
        sizes["n_validation"], n_classes, overconfidence=OVERCONFIDENCE, rng=rng
    )
    logits, _ = h.make_classifier_outputs(
        sizes["n_rows"], n_classes, overconfidence=OVERCONFIDENCE, rng=rng
    )
    calibrator = TemperatureScaling().fit(logits_val, y_val)
    proba_val = calibrator.predict_proba(logits_val)
    proba = calibrator.predict_proba(logits)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        policy = Policy(target_risk=TARGET_RISK, confidence_level=CONFIDENCE_LEVEL).fit(
            proba_val, y_val
        )
    n_rows = proba.shape[0]
    rows = list(proba)
    logit_rows = list(logits)

    def model(i: int) -> NDArray[np.float64]:
        return rows[i]

    def logit_model(i: int) -> NDArray[np.float64]:
        return logit_rows[i]

    guards = {
        GUARD: Guard(model, None, policy),
        BREAKER: Guard(model, None, policy, circuit_breaker=circuit_breaker()),
        TIMEOUT: Guard(model, None, policy, timeout_s=1.0),
        CALIBRATED: Guard(logit_model, calibrator, policy),
    }
    asynchronous = Guard(model, None, policy)
    calls: dict[str, Callable[[int], object]] = {
        MODEL: model,
        DECIDE_ONE: lambda i: policy.decide_one(rows[i]),
        **{name: guard.decide for name, guard in guards.items()},
    }
    chunk = min(sizes["chunk"], n_rows)
    samples: dict[str, list[NDArray[np.float64]]] = {name: [] for name in ORDER}
    names = list(ORDER)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            offset = (repeat * chunk) % n_rows
            if name == ASYNC:
                samples[name].append(_async_samples(asynchronous, chunk, offset, n_rows))
                continue
            fn = calls[name]
            samples[name].append(
                h.latency_samples(lambda i, fn=fn, o=offset: fn((o + i) % n_rows), calls=chunk)
            )
    latency = {name: _summary(np.concatenate(parts)) for name, parts in samples.items()}
    base = latency[MODEL]
    overhead = {
        name: {
            "median_us": latency[name]["median_us"] - base["median_us"],
            "p99_us": latency[name]["p99_us"] - base["p99_us"],
        }
        for name in ORDER
        if name not in (MODEL, DECIDE_ONE)
    }

    batch = sizes["batch"]
    batch_times = []
    guard = guards[GUARD]
    for repeat in range(repeats):
        start = time.perf_counter()
        guard.decide_batch(range(repeat * batch % n_rows, repeat * batch % n_rows + batch))
        batch_times.append(time.perf_counter() - start)
    decisions = guard.decide_batch(range(min(n_rows, 5000)))
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d.action.value] = counts.get(d.action.value, 0) + 1
    for g in (*guards.values(), asynchronous):
        g.close()
    return {
        "n_classes": n_classes,
        "answer_threshold": policy.answer_threshold_,
        "fit_notes": sorted({f"{w.category.__name__}: {w.message}" for w in seen}),
        "action_shares": {k: v / len(decisions) for k, v in sorted(counts.items())},
        "latency": latency,
        "overhead_vs_model": overhead,
        "decide_batch": {
            "batch": batch,
            "median_s": float(np.median(batch_times)),
            "per_input_us": float(np.median(batch_times) / batch * 1e6),
        },
        "targets": {
            "guard overhead median < 50 µs": overhead[GUARD]["median_us"] < TARGET_US,
            "guard overhead p99 < 50 µs": overhead[GUARD]["p99_us"] < TARGET_US,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    repeats = h.resolve_repeats(args, default_repeats=DEFAULT_REPEATS)
    sizes = QUICK if args.quick else FULL
    h.ensure_failwise_importable()

    cases = {f"{k} classes": _case(k, sizes, repeats, args.seed) for k in CLASS_COUNTS}
    for label, case in cases.items():
        table = []
        for name in ORDER:
            stats = case["latency"][name]
            extra = case["overhead_vs_model"].get(name)
            table.append(
                [
                    name,
                    h.format_number(stats["median_us"], 3),
                    h.format_number(stats["p99_us"], 3),
                    h.format_number(stats["p999_us"], 3),
                    h.format_number(extra["median_us"], 3) if extra else "—",
                    h.format_number(extra["p99_us"], 3) if extra else "—",
                ]
            )
        batch = case["decide_batch"]
        table.append(
            [
                f"decide_batch({batch['batch']}) per input",
                h.format_number(batch["per_input_us"], 3),
                "—",
                "—",
                "—",
                "—",
            ]
        )
        shares = ", ".join(f"{k} {v:.0%}" for k, v in case["action_shares"].items())
        h.print_table(
            f"Guard per-call latency, {label} ({shares})",
            ["contender", "median µs", "p99 µs", "p99.9 µs", "overhead med", "overhead p99"],
            table,
            caption=f"target: guard.decide overhead < {TARGET_US:g} µs (median and p99); "
            f"met: {case['targets']}",
        )

    payload = {
        "benchmark": NAME,
        "description": __doc__,
        "argv": sys.argv[1:] if argv is None else argv,
        "quick": args.quick,
        "repeats": repeats,
        "seed": args.seed,
        "policy": {"target_risk": TARGET_RISK, "confidence_level": CONFIDENCE_LEVEL},
        "data": {
            "generator": "_harness.make_classifier_outputs",
            "overconfidence": OVERCONFIDENCE,
            **sizes,
        },
        "target_us": TARGET_US,
        "cases": cases,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
