"""The monitor at scale: window statistics over 10 M events, features and clusters per 100k.

Three measurements, each timed ``--repeats`` times (median reported):

* **window statistics** — :func:`failwise.monitor.window_statistics` with DuckDB over a
  Parquet export of ~10 M events (tasks with their decision events, user feedback on 85 %
  of them and audits on 4 %, hourly windows over 30 days): the label-free estimate, the
  audit-corrected estimate, the confidence KS and label-mix tests of every window. The
  export is synthetic, written with the export's own schema (:data:`failwise.export.TABLES`),
  because writing 10 M events through a store would measure the store, not the monitor.
* **features and clusters per 100k inputs** — 384-dimensional features (a mixture of 60
  known and 10 unseen categories), a reference of 10k: fitting the unseen-input detector,
  the unseen-input test over 100k inputs, the feature MMD test of each of their 200
  windows of 500, and :func:`failwise.monitor.find_gaps` over the 100k (given the
  unseen-input test, so the reference is searched once).
* **one window** — :func:`failwise.monitor.analyse_window` on one window of 500 with
  features (estimate, every test, Holm, blind spots): what ``run_monitor`` spends per window.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import _harness as h

h.ensure_failwise_importable()

NAME = "monitor_scale"


def write_export(folder: Path, n_tasks: int, rng: np.random.Generator) -> int:
    """A synthetic Parquet export with ``n_tasks`` tasks; returns the number of events."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from failwise.export import TABLES

    def schema(name: str) -> Any:
        return pa.schema([(c, getattr(pa, t)()) for c, t in TABLES[name][0]])

    folder.mkdir(parents=True, exist_ok=True)
    ids = pc.binary_join_element_wise("t", pc.cast(pa.array(np.arange(n_tasks)), pa.string()), "")
    created = np.sort(rng.uniform(0, 30 * 86400.0, n_tasks))
    confidence = rng.beta(8, 1.2, n_tasks)
    predicted = rng.integers(0, 58, n_tasks)
    actions = np.where(
        confidence > 0.7, "answer", np.where(confidence > 0.4, "clarify", "escalate")
    )
    label = np.where(actions == "answer", predicted, -99)
    tasks = pa.table(
        {
            "task_id": ids,
            "created_at": created,
            "action": pa.array(actions),
            "label": pa.array(label, mask=label == -99, type=pa.int64()),
            "confidence": confidence,
            "predicted": pa.array(predicted, type=pa.int64()),
            "band": pa.array(np.where(confidence > 0.7, "high", "low")),
            "ood_score": pa.nulls(n_tasks, pa.float64()),
            "policy_version": pa.array(["v1"] * 1, pa.string()).take(
                pa.array(np.zeros(n_tasks, int))
            ),
        },
        schema=schema("tasks"),
    )
    pq.write_table(tasks, folder / "tasks.parquet", row_group_size=1_000_000)
    feedback = np.flatnonzero(rng.random(n_tasks) < 0.85)
    audited = np.flatnonzero((rng.random(n_tasks) < 0.04) & (actions == "answer"))
    right = rng.random(audited.size) < confidence[audited]
    audit_label = np.where(right, predicted[audited], (predicted[audited] + 1) % 58)
    rows = np.concatenate([np.arange(n_tasks), feedback, audited])
    kinds = np.concatenate(
        [
            np.full(n_tasks, "decision", object),
            np.full(feedback.size, "feedback_accepted", object),
            np.full(audited.size, "audit_label", object),
        ]
    )
    labels = np.concatenate([np.full(n_tasks + feedback.size, -99), audit_label])
    n_events = int(rows.size)
    events = pa.table(
        {
            "id": np.arange(1, n_events + 1),
            "task_id": ids.take(pa.array(rows)),
            "kind": pa.array(kinds.astype(str)),
            "at": created[rows] + np.where(kinds == "decision", 0.0, 30.0),
            "label": pa.array(labels, mask=labels == -99, type=pa.int64()),
            "payload": pa.array(["{}"] * 1).take(pa.array(np.zeros(n_events, int))),
        },
        schema=schema("events"),
    )
    pq.write_table(events, folder / "events.parquet", row_group_size=1_000_000)
    return n_events


def _timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def feature_world(rng: np.random.Generator, n: int, dims: int) -> dict[str, Any]:
    centres = rng.normal(size=(70, dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(categories: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return (
            centres[categories]
            + 0.55 * rng.normal(size=(categories.size, dims)) / np.sqrt(dims) * 6
        )

    ref_labels = rng.integers(0, 60, 10_000)
    served_labels = np.where(rng.random(n) < 0.05, rng.integers(60, 70, n), rng.integers(0, 60, n))
    return {
        "reference": draw(ref_labels).astype(np.float32),
        "reference_labels": ref_labels,
        "served": draw(served_labels).astype(np.float32),
    }


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__ or "", default_repeats=3)
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the export")
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs for the feature step")
    args = parser.parse_args(argv)
    repeats = h.resolve_repeats(args, default_repeats=3)
    n_events = 60_000 if args.quick else args.events
    n_inputs = 5_000 if args.quick else args.inputs
    dims = 64 if args.quick else 384
    rng = np.random.default_rng(args.seed)

    from failwise.monitor import (
        Reference,
        UnseenInputDetector,
        WindowData,
        analyse_window,
        find_gaps,
        mmd_drift,
        window_statistics,
    )

    reference = Reference(
        confidence=rng.beta(8, 1.2, 5000),
        predicted=rng.integers(0, 58, 5000),
        action=np.full(5000, "answer"),
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        start = time.perf_counter()
        written = write_export(folder, max(2, int(n_events / 1.89)), rng)
        print(f"export: {written:,} events in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        times, windows = _timed(lambda: window_statistics(folder, reference, window="1h"), repeats)
    flagged = sum(any(t["rejected"] for t in w["tests"]) for w in windows)
    results["window_statistics"] = {
        "events": written,
        "windows": len(windows),
        "windows_flagged": flagged,
        "times_s": times,
        "median_s": float(np.median(times)),
    }

    world = feature_world(rng, n_inputs, dims)
    steps: dict[str, list[float]] = {"fit": [], "unseen": [], "mmd": [], "gaps": []}
    n_gaps = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        detector = UnseenInputDetector(metric="cosine").fit(
            world["reference"], world["reference_labels"]
        )
        t1 = time.perf_counter()
        test = detector.test(world["served"])
        t2 = time.perf_counter()
        for start in range(0, n_inputs - 499, 500):
            mmd_drift(world["reference"], world["served"][start : start + 500], n_permutations=200)
        t3 = time.perf_counter()
        n_gaps = len(find_gaps(detector, world["served"], unseen=test))
        t4 = time.perf_counter()
        for name, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            steps[name].append(value)
    totals = [sum(step[i] for step in steps.values()) for i in range(repeats)]
    results["features_and_clusters"] = {
        "inputs": n_inputs,
        "dims": dims,
        "reference": int(world["reference"].shape[0]),
        "gaps_found": n_gaps,
        "steps_median_s": {k: float(np.median(v)) for k, v in steps.items()},
        "times_s": totals,
        "median_s": float(np.median(totals)),
    }

    served = world["served"][:500]
    rows = [
        (f"t{i}", float(i), "answer", 1, float(c), 1, None, None, 0, 0)
        for i, c in enumerate(rng.beta(8, 1.2, 500))
    ]
    data = WindowData.from_rows(rows, [f"t{i}" for i in range(500)], served)
    with_features = Reference(
        confidence=reference.confidence[:2000],
        predicted=reference.predicted[:2000],
        action=reference.action[:2000],  # type: ignore[index]
        features=world["reference"][:2000],
        feature_metric="cosine",
    )
    detector = UnseenInputDetector().fit(
        world["reference"][:2000], world["reference_labels"][:2000]
    )
    times, _ = _timed(
        lambda: analyse_window(data, with_features, detector, level=0.05 / 24, n_permutations=960),
        repeats,
    )
    results["one_window"] = {
        "window": 500,
        "reference": 2000,
        "dims": dims,
        "n_permutations": 960,
        "times_s": times,
        "median_s": float(np.median(times)),
    }

    table = [
        [
            f"window statistics ({written:,} events, {len(windows)} hourly windows, DuckDB)",
            f"{results['window_statistics']['median_s']:.2f} s",
            "< 10 s",
        ],
        [
            f"features + clusters ({n_inputs:,} inputs × {dims})",
            f"{results['features_and_clusters']['median_s']:.1f} s",
            "< 60 s",
        ],
        [
            "one window of 500 (estimate + tests + gaps)",
            f"{results['one_window']['median_s']:.3f} s",
            "< 0.2 s",
        ],
    ]
    h.print_table(
        f"failwise.monitor at scale, median of {repeats} run(s)"
        + (" (--quick: sizes are tiny, times mean nothing)" if args.quick else ""),
        ["step", "median", "target"],
        table,
        caption="feature steps (median s): "
        + ", ".join(
            f"{k} {v:.2f}" for k, v in results["features_and_clusters"]["steps_median_s"].items()
        ),
    )
    h.write_json(
        args.out,
        {
            "benchmark": NAME,
            "quick": args.quick,
            "repeats": repeats,
            "environment": h.environment(),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
