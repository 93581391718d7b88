"""Decision throughput and latency of a fitted failwise ``Policy``.

Run ``python benchmarks/bench_decide.py`` (add ``--quick`` for a smoke run).

A ``Policy(target_risk=0.05, confidence_level=0.9)`` is fitted on 20k validation rows of
a synthetic 10-class classifier (``_harness.make_classifier_outputs``, overconfident by a
factor 1.5), then:

- batch: ``policy.decide(proba)`` on 1M × 10 float64 softmax probabilities, timed against
  ``proba.max(axis=1)`` on the same array (one read of every probability, the least any
  decision needs), with their order rotating between repeats. Target: within 3× of it.
- single row: ``policy.decide(proba[i : i + 1])`` (a batch of one) and, where the policy
  has it, ``policy.decide_one(proba[i])`` (one ``Decision`` object) over consecutive rows,
  one call at a time; median and p99 latency in µs, next to ``proba[i : i + 1].max(axis=1)``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

NAME = "decide"
DEFAULT_REPEATS = 7
N_CLASSES = 10
OVERCONFIDENCE = 1.5
TARGET_RISK = 0.05
CONFIDENCE_LEVEL = 0.9
FULL = {"n_validation": 20_000, "n_rows": 1_000_000, "latency_calls": 20_000}
QUICK = {"n_validation": 5_000, "n_rows": 20_000, "latency_calls": 300}

DECIDE = "failwise decide"
DECIDE_ONE = "failwise decide_one"
BASELINE = "proba.max(axis=1)"


def _proba(n_rows: int, rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    logits, labels = h.make_classifier_outputs(
        n_rows, N_CLASSES, overconfidence=OVERCONFIDENCE, rng=rng
    )
    return h.softmax_rows(logits), labels


def _summarise(decisions: object, n_rows: int) -> dict[str, Any]:
    """What the batch result looks like, without assuming more than the contract."""
    summary: dict[str, Any] = {"type": type(decisions).__name__}
    try:
        summary["length"] = len(decisions)  # type: ignore[arg-type]
    except TypeError:
        summary["length"] = None
    rates = getattr(decisions, "rates", None)
    if callable(rates):
        summary["action_rates"] = {str(action): float(rate) for action, rate in rates().items()}
    return summary


def _latency(samples: NDArray[Any]) -> dict[str, Any]:
    return {
        "calls": int(samples.shape[0]),
        "median_us": float(np.median(samples) * 1e6),
        "p99_us": float(np.percentile(samples, 99) * 1e6),
        "min_us": float(np.min(samples) * 1e6),
        "samples_us": (samples * 1e6).round(3).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    repeats = h.resolve_repeats(args, default_repeats=DEFAULT_REPEATS)
    sizes = QUICK if args.quick else FULL
    h.ensure_failwise_importable()
    module, reason = h.optional_import("failwise.policy")
    policy_cls = getattr(module, "Policy", None) if module is not None else None
    if module is not None and policy_cls is None:
        reason = "failwise.policy has no Policy"

    rng = np.random.default_rng(args.seed)
    proba_val, y_val = _proba(sizes["n_validation"], rng)
    proba, _ = _proba(sizes["n_rows"], rng)
    n_rows = proba.shape[0]

    policy: Any = None
    fit_notes: list[str] = []
    if policy_cls is not None:
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                policy = policy_cls(target_risk=TARGET_RISK, confidence_level=CONFIDENCE_LEVEL)
                policy.fit(proba_val, y_val)
            fit_notes = sorted({f"{w.category.__name__}: {w.message}" for w in seen})
        except Exception as exc:
            reason = f"Policy.fit failed: {type(exc).__name__}: {exc}"
            policy = None

    contenders = [h.Contender(BASELINE, lambda: proba.max(axis=1))]
    if policy is not None:
        contenders.insert(0, h.Contender(DECIDE, lambda: policy.decide(proba)))
    measurements, results = h.run_interleaved(contenders, repeats=repeats)
    measurements = h.with_missing(
        measurements, {} if policy is not None else {DECIDE: reason}, (DECIDE, BASELINE)
    )
    measurements[DECIDE].notes.extend(fit_notes)

    batch_ratio = h.median_ratio(measurements[DECIDE], measurements[BASELINE])
    throughput = {
        name: (n_rows / m.median_s if m.ok and m.median_s else None)
        for name, m in measurements.items()
    }
    summary = _summarise(results[DECIDE], n_rows) if DECIDE in results else None
    results.clear()

    latency: dict[str, Any] = {}
    calls = sizes["latency_calls"]
    rows = [proba[i : i + 1] for i in range(min(calls, n_rows))]

    def baseline_one(i: int) -> object:
        return rows[i % len(rows)].max(axis=1)

    latency[BASELINE] = _latency(h.latency_samples(baseline_one, calls=calls))
    if policy is not None:

        def decide_one(i: int) -> object:
            return policy.decide(rows[i % len(rows)])

        single: dict[str, Callable[[int], object]] = {DECIDE: decide_one}
        if callable(getattr(policy, "decide_one", None)):
            vectors = [row[0] for row in rows]
            single[DECIDE_ONE] = lambda i: policy.decide_one(vectors[i % len(vectors)])
        for name, fn in single.items():
            try:
                latency[name] = _latency(h.latency_samples(fn, calls=calls))
            except Exception as exc:
                latency[name] = {"status": "failed", "note": f"{type(exc).__name__}: {exc}"}

    table_rows = []
    for name in (DECIDE, DECIDE_ONE, BASELINE):
        if name == DECIDE_ONE:
            if name in latency:
                table_rows.append(
                    [
                        f"{name} (one row only)",
                        *["—"] * (len(h.MEASUREMENT_COLUMNS) + 1),
                        h.format_number(latency[name].get("median_us"), 3),
                        h.format_number(latency[name].get("p99_us"), 3),
                    ]
                )
            continue
        m = measurements[name]
        extra = [
            h.format_number(h.ratio(throughput.get(name), 1e6), 4),
            h.format_ratio(batch_ratio) if name == DECIDE else "1×",
            h.format_number(latency.get(name, {}).get("median_us"), 3),
            h.format_number(latency.get(name, {}).get("p99_us"), 3),
        ]
        table_rows.append(h.measurement_row(m, extra=extra))
    h.print_table(
        f"Policy.decide, {h.size_label(n_rows, N_CLASSES)} float64 probabilities",
        [*h.MEASUREMENT_COLUMNS, "M rows/s", "vs max", "1-row µs (med)", "1-row µs (p99)"],
        table_rows,
        caption="target: decide within 3× of proba.max(axis=1)",
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
            "dtype": "float64",
            "n_classes": N_CLASSES,
            "overconfidence": OVERCONFIDENCE,
            **sizes,
        },
        "batch": {
            "n_rows": n_rows,
            "contenders": {name: m.to_dict() for name, m in measurements.items()},
            "rows_per_second": throughput,
            "ratios": {"decide/max": batch_ratio},
            "targets": {
                "within 3× of proba.max": None if batch_ratio is None else batch_ratio <= 3
            },
            "decisions": summary,
        },
        "single_row": latency,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
