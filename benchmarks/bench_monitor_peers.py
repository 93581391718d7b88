"""failwise's monitor beside NannyML's CBPE and Evidently, on the same BANKING77 windows.

The production streams are those of ``bench_monitor.py`` (its functions build them): 19 of
BANKING77's 77 intents held out of training and of the reference, logistic regression on
all-MiniLM-L6-v2 embeddings, temperature-scaled, failwise's default ladder at 5 % target
risk, windows of 500 requests: ``null``, ``prior shift`` (three known intents ×6) and
``novel r`` (a share r of requests from the unseen intents). Each window is drawn once and
every contender sees exactly its rows, in one process:

* **failwise** — ``bench_monitor.run_window`` (label-free estimate among automatic answers,
  its correction with 200 audited answers, calibration broken, the unseen-input test, KS on
  confidence as the monitor runs it and as a plain two-sample test, chi-square on the
  predicted-label mix), plus the label-free estimate
  (``estimate_accuracy``) over all requests of the window;
* **NannyML CBPE** (``problem_type="classification_multiclass"``, ``metrics=["accuracy"]``,
  ``chunk_size`` = the window, default calibration), fitted on the reference rows and given
  the same calibrated probabilities: its accuracy estimate, its sampling error, its
  confidence band (± 3 sampling errors) and its alert (estimate outside the thresholds it
  derives from the reference chunks). It runs on all requests, and on the automatic answers
  only (a CBPE fitted on the answered reference rows), the population of failwise's main
  estimate; and both again on the model's raw ``predict_proba``, which CBPE calibrates
  itself (as a NannyML user would run it);
* **Evidently** ``DataDriftPreset`` over the calibrated confidence and the predicted label
  (a ``Report`` per window, default methods: with more than 1,000 reference rows, normed
  Wasserstein distance and Jensen–Shannon distance at 0.1), its default per-column tests
  over the 384 embedding columns with the preset's dataset-drift rule (≥ 50 % of columns
  drifted), and its default embedding drift (``ModelDriftMethod``: a domain classifier,
  drift when its ROC AUC exceeds 0.55). The per-column and embedding decisions call
  Evidently's own test functions directly; one full ``Report`` with ``EmbeddingsDrift`` is
  timed once, since its report overhead on 384 columns is far above the test itself.

Alarm rates are shares of windows where a detector fires (failwise: p < 0.05 per test;
peers: their own default decision). Intervals: failwise's at 95 %; CBPE's band is its
± 3σ, and its coverage at 95 % (± 1.96σ) is shown too. Timings are medians per window on a
shared machine; the load average is recorded with them.

Run it in the environment of the ``peers-monitor`` extra (see ``benchmarks/README.md``);
without NannyML or Evidently their columns are marked unavailable and failwise still runs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

h.ensure_failwise_importable()

import bench_monitor as bm  # noqa: E402  (needs the path set above)

# Both peers phone home by default; the benchmark never uses the network.
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

NAME = "monitor_peers"
NOVELTY = (0.02, 0.05, 0.10, 0.20)
CONDITIONS = [("null", 0.0), ("prior shift", 0.0)] + [("novel", r) for r in NOVELTY]
PEER_PACKAGES = ("nannyml", "evidently")
EMBEDDING_DRIFT_THRESHOLD = 0.55  # Evidently's ModelDriftMethod default (ROC AUC)


def _label(kind: str, rate: float) -> str:
    return kind if kind != "novel" else f"novel {rate:.0%}"


def _twin(rng: np.random.Generator) -> np.random.Generator:
    """A generator in the same state, so a window can be drawn again without consuming."""
    twin = np.random.Generator(type(rng.bit_generator)())
    twin.bit_generator.state = rng.bit_generator.state
    return twin


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


class CBPEPeer:
    """NannyML's CBPE, fitted per kind of score and population.

    Scores: ``calibrated`` (the temperature-scaled probabilities failwise uses) or ``raw``
    (the model's own ``predict_proba``, which CBPE calibrates itself); population: ``all``
    requests or the automatic ``answers`` only.
    """

    def __init__(
        self,
        reference: dict[str, NDArray[np.float64]],
        reference_y: NDArray[np.intp],
        answered: NDArray[np.bool_],
        size: int,
    ) -> None:
        import nannyml

        self.n_classes = reference["calibrated"].shape[1]
        self.models = {}
        self.warnings: set[str] = set()
        for scores, proba in reference.items():
            for population, rows in (("all", slice(None)), ("answers", answered)):
                model = nannyml.CBPE(
                    problem_type="classification_multiclass",
                    y_pred_proba={k: f"p{k}" for k in range(self.n_classes)},
                    y_pred="y_pred",
                    y_true="y_true",
                    metrics=["accuracy"],
                    chunk_size=size,
                )
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    self.models[scores, population] = model.fit(
                        self._frame(proba[rows], reference_y[rows])
                    )
                self.warnings.update(f"fit ({population}): {w.message}".strip() for w in caught)

    def _frame(self, proba: NDArray[np.float64], y: NDArray[np.intp] | None = None) -> Any:
        import pandas as pd

        frame = pd.DataFrame(proba, columns=[f"p{k}" for k in range(self.n_classes)])
        frame["y_pred"] = proba.argmax(axis=1)
        if y is not None:
            frame["y_true"] = y
        return frame

    def run(self, proba: NDArray[np.float64], scores: str, population: str) -> dict[str, Any]:
        model = self.models[scores, population]
        result, seconds = _timed(lambda: model.estimate(self._frame(proba)))
        row = result.filter(period="analysis").to_df().iloc[0]
        value, error = float(row[("accuracy", "value")]), float(row[("accuracy", "sampling_error")])
        return {
            "estimate": value,
            "sampling_error": error,
            "low": float(row[("accuracy", "lower_confidence_boundary")]),
            "high": float(row[("accuracy", "upper_confidence_boundary")]),
            "low95": value - 1.96 * error,
            "high95": value + 1.96 * error,
            "alert": bool(row[("accuracy", "alert")]),
            "seconds": seconds,
        }


class EvidentlyPeer:
    """Evidently's prediction drift (a Report), per-column drift and embedding drift."""

    def __init__(
        self,
        confidence: NDArray[np.float64],
        predicted: NDArray[np.intp],
        features: NDArray[np.float32],
    ) -> None:
        import pandas as pd
        from evidently import DataDefinition

        self.definition = DataDefinition(
            numerical_columns=["confidence"], categorical_columns=["prediction"]
        )
        self.reference = self._outputs(confidence, predicted)
        self.columns = [f"e{i}" for i in range(features.shape[1])]
        self.reference_features = pd.DataFrame(features, columns=self.columns)

    def _outputs(self, confidence: NDArray[np.float64], predicted: NDArray[np.intp]) -> Any:
        import pandas as pd
        from evidently import Dataset

        frame = pd.DataFrame({"confidence": confidence, "prediction": predicted.astype(str)})
        return Dataset.from_pandas(frame, data_definition=self.definition)

    def prediction_drift(
        self, confidence: NDArray[np.float64], predicted: NDArray[np.intp]
    ) -> dict[str, Any]:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        current = self._outputs(confidence, predicted)
        report = Report([DataDriftPreset(columns=["confidence", "prediction"])], include_tests=True)
        snapshot, seconds = _timed(
            lambda: report.run(current_data=current, reference_data=self.reference).dict()
        )
        column_of = {
            m["id"]: m["config"].get("column")
            for m in snapshot["metrics"]
            if m["config"]["type"].endswith("ValueDrift")
        }
        drifted: dict[str, bool] = {}
        for test in snapshot["tests"]:
            column = column_of.get(test["metric_config"]["metric_id"])
            if column is not None:
                drifted[column] = str(getattr(test["status"], "value", test["status"])) == "FAIL"
        return {
            "confidence_drift": drifted["confidence"],
            "prediction_drift": drifted["prediction"],
            "seconds": seconds,
        }

    def feature_drift(self, features: NDArray[np.float32]) -> dict[str, Any]:
        import pandas as pd
        from evidently.legacy.calculations.stattests import get_stattest
        from evidently.legacy.core import ColumnType
        from evidently.legacy.metrics.data_drift.embedding_drift_methods import ModelDriftMethod

        current = pd.DataFrame(features, columns=self.columns)

        def per_column() -> float:
            drifted = 0
            for column in self.columns:
                ref, cur = self.reference_features[column], current[column]
                test = get_stattest(ref, cur, ColumnType.Numerical, None)
                drifted += bool(test(ref, cur, ColumnType.Numerical, None).drifted)
            return drifted / len(self.columns)

        share, columns_s = _timed(per_column)
        (score, detected, _), embedding_s = _timed(
            lambda: ModelDriftMethod()(current, self.reference_features)
        )
        return {
            "drifted_column_share": share,
            "dataset_drift": share >= 0.5,
            "seconds_columns": columns_s,
            "embedding_score": float(score),
            "embedding_drift": bool(detected),
            "seconds_embedding": embedding_s,
        }

    def full_embedding_report_seconds(self, features: NDArray[np.float32]) -> float:
        """One ``Report([EmbeddingsDrift])`` as a user runs it, for its wall time."""
        import pandas as pd
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import EmbeddingsDrift

        definition = DataDefinition(
            numerical_columns=self.columns, embeddings={"emb": self.columns}
        )
        reference = Dataset.from_pandas(self.reference_features, data_definition=definition)
        current = Dataset.from_pandas(
            pd.DataFrame(features, columns=self.columns), data_definition=definition
        )
        report = Report([EmbeddingsDrift(embeddings_name="emb")])
        _, seconds = _timed(lambda: report.run(current_data=current, reference_data=reference))
        return float(seconds)


def peer_status() -> dict[str, dict[str, Any]]:
    status = {}
    for package in PEER_PACKAGES:
        module, reason = h.optional_import(package, extra="peers-monitor")
        status[package] = (
            {"status": "ok", "version": importlib.metadata.version(package), "notes": []}
            if module is not None
            else {"status": "unavailable", "version": None, "notes": [reason]}
        )
    return status


def run_window(
    world: bm.World,
    detectors: tuple[Any, ...],
    kind: str,
    rate: float,
    rng: np.random.Generator,
    size: int,
    peers: dict[str, Any],
) -> dict[str, Any]:
    """One window: failwise's ``bench_monitor.run_window`` and every peer on its rows."""
    from failwise.monitor import estimate_accuracy

    features, truth = bm._window_rows(world, kind, rate, size, _twin(rng))
    row = bm.run_window(world, detectors, kind, rate, rng, size, with_mmd=False)
    proba = world.predict(features)
    answered = np.asarray(world.policy.decide(proba).action) == "answer"
    if int(answered.sum()) != row["answered"]:
        raise RuntimeError("the peers did not get the window failwise was given")
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    realised = float(np.mean(predicted == truth))
    estimate, seconds = _timed(lambda: estimate_accuracy(confidence))
    row.update(
        realised_all=realised,
        failwise_all={
            "estimate": estimate.estimate,
            "covered": estimate.low <= realised <= estimate.high,
            "seconds": seconds,
        },
    )
    cbpe = peers.get("nannyml")
    if cbpe is not None:
        raw = world.predict_uncalibrated(features)
        for scores, given, prefix in (("calibrated", proba, "cbpe"), ("raw", raw, "cbpe_raw")):
            row[f"{prefix}_all"] = cbpe.run(given, scores, "all")
            row[f"{prefix}_answers"] = (
                cbpe.run(given[answered], scores, "answers") if answered.any() else None
            )
    evidently = peers.get("evidently")
    if evidently is not None:
        row["evidently"] = {
            **evidently.prediction_drift(confidence, predicted),
            **evidently.feature_drift(features),
        }
    return row


def _get(row: dict[str, Any], *path: str) -> Any:
    value: Any = row
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


#: Detector name → whether it fired in a window (None when it did not run).
DETECTORS: dict[str, Callable[[dict[str, Any]], bool | None]] = {
    "failwise unseen input": lambda r: r["p_unseen"] < bm.ALPHA,
    "failwise KS confidence (monitor)": lambda r: r["p_ks_confidence"] < bm.ALPHA,
    "failwise KS confidence (2-sample)": lambda r: r["p_ks_confidence_two_sample"] < bm.ALPHA,
    "failwise label mix": lambda r: r["p_label_mix"] < bm.ALPHA,
    "failwise calibration broken (200 audits)": lambda r: bool(r["calibration_broken"]),
    "CBPE alert (all requests)": lambda r: _get(r, "cbpe_all", "alert"),
    "CBPE alert (answers)": lambda r: _get(r, "cbpe_answers", "alert"),
    "CBPE on raw scores alert (all requests)": lambda r: _get(r, "cbpe_raw_all", "alert"),
    "CBPE on raw scores alert (answers)": lambda r: _get(r, "cbpe_raw_answers", "alert"),
    "Evidently confidence drift": lambda r: _get(r, "evidently", "confidence_drift"),
    "Evidently prediction drift": lambda r: _get(r, "evidently", "prediction_drift"),
    "Evidently dataset drift (384 columns)": lambda r: _get(r, "evidently", "dataset_drift"),
    "Evidently embedding drift": lambda r: _get(r, "evidently", "embedding_drift"),
}


def _alarm_rate(rows: list[dict[str, Any]], detector: str) -> float | None:
    fired = [DETECTORS[detector](r) for r in rows]
    known = [bool(f) for f in fired if f is not None]
    return float(np.mean(known)) if known else None


def _errors(rows: list[dict[str, Any]], estimate: tuple[str, ...], truth: str) -> NDArray[Any]:
    pairs = [(_get(r, *estimate), r[truth]) for r in rows]
    return np.array([e - t for e, t in pairs if e is not None and np.isfinite(t)], float)


def _covered(
    rows: list[dict[str, Any]], peer: str, truth: str, low: str, high: str
) -> float | None:
    hits = [r[peer][low] <= r[truth] <= r[peer][high] for r in rows if r.get(peer) is not None]
    return float(np.mean(hits)) if hits else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per condition: estimate errors, interval coverage and every detector's alarm rate."""
    summary: dict[str, Any] = {}
    for kind, rate in CONDITIONS:
        chosen = [r for r in rows if r["kind"] == kind and r["novel_rate"] == rate]
        if not chosen:
            continue
        entry: dict[str, Any] = {
            "windows": len(chosen),
            "realised_all": float(np.mean([r["realised_all"] for r in chosen])),
            "realised_answers": float(np.nanmean([r["realised_accuracy"] for r in chosen])),
        }
        for name, path, truth in (
            ("failwise_all", ("failwise_all", "estimate"), "realised_all"),
            ("cbpe_all", ("cbpe_all", "estimate"), "realised_all"),
            ("failwise_answers", ("estimate",), "realised_accuracy"),
            ("failwise_answers_audited", ("corrected",), "realised_accuracy"),
            ("cbpe_answers", ("cbpe_answers", "estimate"), "realised_accuracy"),
            ("cbpe_raw_all", ("cbpe_raw_all", "estimate"), "realised_all"),
            ("cbpe_raw_answers", ("cbpe_raw_answers", "estimate"), "realised_accuracy"),
        ):
            errors = _errors(chosen, path, truth)
            entry[name] = (
                {"bias": float(errors.mean()), "mae": float(np.abs(errors).mean())}
                if errors.size
                else None
            )
        entry["coverage"] = {
            "failwise_all_95": float(np.mean([r["failwise_all"]["covered"] for r in chosen])),
            "failwise_answers_95": float(np.mean([r["estimate_covered"] for r in chosen])),
            "failwise_answers_audited_95": float(np.mean([r["corrected_covered"] for r in chosen])),
            "cbpe_all_band": _covered(chosen, "cbpe_all", "realised_all", "low", "high"),
            "cbpe_all_95": _covered(chosen, "cbpe_all", "realised_all", "low95", "high95"),
            "cbpe_answers_band": _covered(
                chosen, "cbpe_answers", "realised_accuracy", "low", "high"
            ),
            "cbpe_answers_95": _covered(
                chosen, "cbpe_answers", "realised_accuracy", "low95", "high95"
            ),
            "cbpe_raw_all_band": _covered(chosen, "cbpe_raw_all", "realised_all", "low", "high"),
            "cbpe_raw_answers_band": _covered(
                chosen, "cbpe_raw_answers", "realised_accuracy", "low", "high"
            ),
        }
        entry["alarm_rate"] = {name: _alarm_rate(chosen, name) for name in DETECTORS}
        summary[_label(kind, rate)] = entry
    return summary


def false_alarms(nulls: list[dict[str, Any]]) -> dict[str, Any]:
    """Each detector's alarm rate on null windows, per reference draw (seed)."""
    out: dict[str, Any] = {}
    seeds = sorted({r["seed"] for r in nulls})
    for name in DETECTORS:
        per = [_alarm_rate([r for r in nulls if r["seed"] == s], name) for s in seeds]
        known = [p for p in per if p is not None]
        out[name] = (
            {"per_seed": per, "mean": float(np.mean(known)), "max": float(np.max(known))}
            if known
            else None
        )
    return out


def _pt(entry: dict[str, Any] | None, key: str) -> str:
    return (
        "—"
        if entry is None
        else f"{100 * entry[key]:+.1f}"
        if key == "bias"
        else (f"{100 * entry[key]:.1f}")
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _frac(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _median(rows: list[dict[str, Any]], *path: str) -> float | None:
    values = [v for v in (_get(r, *path) for r in rows) if v is not None]
    return float(np.median(values)) if values else None


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _estimate_table(summary: dict[str, Any], title: str, population: str) -> None:
    """One table of estimate errors: over all requests, or among automatic answers."""
    answers = population == "answers"
    which = "answers" if answers else "all requests"
    audited = ["+200 audits bias", "cover 95"] if answers else []
    columns = ["window", "realised %", "failwise bias", "MAE", "cover 95", *audited]
    columns += ["CBPE bias", "MAE", "cover ±3σ", "cover 95", "CBPE alert"]
    columns += ["CBPE raw bias", "MAE", "cover ±3σ", "alert"]
    rows = []
    for label, e in summary.items():
        cover = e["coverage"]
        row = [
            label,
            f"{100 * e[f'realised_{population}']:.1f}",
            _pt(e[f"failwise_{population}"], "bias"),
            _pt(e[f"failwise_{population}"], "mae"),
            _frac(cover[f"failwise_{population}_95"]),
        ]
        if answers:
            row += [_pt(e["failwise_answers_audited"], "bias")]
            row += [_frac(cover["failwise_answers_audited_95"])]
        row += [
            _pt(e[f"cbpe_{population}"], "bias"),
            _pt(e[f"cbpe_{population}"], "mae"),
            _frac(cover[f"cbpe_{population}_band"]),
            _frac(cover[f"cbpe_{population}_95"]),
            _pct(e["alarm_rate"][f"CBPE alert ({which})"]),
            _pt(e[f"cbpe_raw_{population}"], "bias"),
            _pt(e[f"cbpe_raw_{population}"], "mae"),
            _frac(cover[f"cbpe_raw_{population}_band"]),
            _pct(e["alarm_rate"][f"CBPE on raw scores alert ({which})"]),
        ]
        rows.append(row)
    h.print_table(
        f"Accuracy {'among automatic answers' if answers else 'over all requests'}: {title}",
        columns,
        rows,
        caption="bias and MAE in accuracy points (estimate − realised); failwise = mean "
        "calibrated confidence (estimate_accuracy) with its 95 % interval; CBPE = NannyML's "
        "estimate from the same calibrated probabilities, with its ± 3σ band and ± 1.96σ "
        "for 95 %; CBPE raw = CBPE given the model's own predict_proba, which it calibrates "
        "itself (its default)"
        + (
            "; this CBPE is fitted on the reference's automatic answers, and has no way to "
            "use the audit sample"
            if answers
            else ""
        ),
    )


def _print_tables(summary: dict[str, Any], fa: dict[str, Any], title: str) -> None:
    for population in ("all", "answers"):
        _estimate_table(summary, title, population)
    labels = list(summary)
    h.print_table(
        f"Alarm rate per detector: {title}",
        ["detector", *labels, "null mean / worst seed"],
        [
            [
                name,
                *[_pct(summary[label]["alarm_rate"][name]) for label in labels],
                "—" if fa[name] is None else f"{fa[name]['mean']:.1%} / {fa[name]['max']:.0%}",
            ]
            for name in DETECTORS
        ],
        caption="share of windows where the detector fires (failwise: p < 0.05; peers: their "
        "default decision); last column over every null window, including the extra ones",
    )


def _targets(summary: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calm = [r for r in rows if r["kind"] in ("null", "prior shift")]
    out = []
    for population, ours, theirs, truth in (
        ("answers", ("estimate",), ("cbpe_answers", "estimate"), "realised_accuracy"),
        ("all requests", ("failwise_all", "estimate"), ("cbpe_all", "estimate"), "realised_all"),
        ("answers", ("estimate",), ("cbpe_raw_answers", "estimate"), "realised_accuracy"),
        (
            "all requests",
            ("failwise_all", "estimate"),
            ("cbpe_raw_all", "estimate"),
            "realised_all",
        ),
    ):
        peer_name = "CBPE on raw scores" if "raw" in theirs[0] else "CBPE"
        fw = float(np.abs(_errors(calm, ours, truth)).mean())
        peer = _errors(calm, theirs, truth)
        cbpe = float(np.abs(peer).mean()) if peer.size else None
        theirs_pt = "—" if cbpe is None else f"{100 * cbpe:.2f}"
        out.append(
            {
                "target": f"label-free MAE ({population}), null + prior shift ≤ ½ {peer_name}'s",
                "measured": f"{100 * fw:.2f} pt vs {theirs_pt} pt",
                "met": None if cbpe is None else fw <= 0.5 * cbpe,
            }
        )
    ten = summary.get("novel 10%")
    if ten is not None:
        ours_10 = ten["alarm_rate"]["failwise unseen input"]
        for peer in ("Evidently embedding drift", "Evidently dataset drift (384 columns)"):
            theirs_10 = ten["alarm_rate"][peer]
            met = None
            if theirs_10 is not None:
                met = ours_10 > 0 if theirs_10 == 0 else ours_10 >= 5 * theirs_10
            out.append(
                {
                    "target": f"unseen-input power at 10 % novel ≥ 5× {peer}",
                    "measured": f"{ours_10:.0%} vs {_pct(theirs_10)}",
                    "met": met,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__ or "", default_repeats=1)
    parser.add_argument("--seeds", type=int, default=10, help="reference draws")
    parser.add_argument("--windows", type=int, default=2, help="windows per condition")
    parser.add_argument("--null-windows", type=int, default=3, help="extra null windows per seed")
    parser.add_argument("--features", choices=("minilm", "tfidf"), default="minilm")
    parser.add_argument("--cache-dir", type=Path, default=h.RESULTS_DIR / "cache")
    parser.add_argument(
        "--no-full-report",
        action="store_true",
        help="skip timing one full Evidently Report with EmbeddingsDrift (slow)",
    )
    parser.add_argument(
        "--summarise",
        type=Path,
        metavar="JSON",
        help="print the tables of a results file (a finished or cut-short run) and exit",
    )
    args = parser.parse_args(argv)
    if args.summarise is not None:
        print_report(json.loads(args.summarise.read_text(encoding="utf-8")))
        return 0
    seeds, windows, size = (1, 2, 300) if args.quick else (args.seeds, args.windows, bm.WINDOW)
    null_windows = 2 if args.quick else args.null_windows
    features_kind = "tfidf" if args.quick else args.features
    loaded = bm.load_banking77(features_kind, args.cache_dir, quick=args.quick)
    if loaded is None:
        return 2
    labels, features = loaded
    status = peer_status()

    def description(done: int) -> dict[str, Any]:
        run = bm.run_description(args.quick, features_kind, done, windows, null_windows, size)
        return {**run, "complete": done == seeds}

    rows: list[dict[str, Any]] = []
    nulls: list[dict[str, Any]] = []
    load: list[list[float] | None] = [_load_average()]
    full_report_s: float | None = None
    start = time.perf_counter()
    for seed in range(args.seed, args.seed + seeds):
        world = bm.build_world(labels, features, seed)
        ref = world.reference
        detectors = bm.unseen_detectors(world)
        peers: dict[str, Any] = {}
        if status["nannyml"]["status"] == "ok":
            scores = {
                "calibrated": world.predict(ref["features"]),
                "raw": world.predict_uncalibrated(ref["features"]),
            }
            peers["nannyml"] = CBPEPeer(scores, ref["labels"], ref["action"] == "answer", size)
            notes = status["nannyml"]["notes"]
            notes.extend(sorted(w for w in peers["nannyml"].warnings if w not in notes))
        if status["evidently"]["status"] == "ok":
            peers["evidently"] = EvidentlyPeer(ref["confidence"], ref["predicted"], ref["features"])
        rng = np.random.default_rng(1000 + seed)
        for kind, rate in CONDITIONS:
            for _ in range(windows):
                row = run_window(world, detectors, kind, rate, rng, size, peers)
                row["seed"] = seed
                rows.append(row)
        for _ in range(null_windows):
            row = run_window(world, detectors, "null", 0.0, rng, size, peers)
            row.update(seed=seed, extra_null=True)
            nulls.append(row)
        if (
            "evidently" in peers
            and full_report_s is None
            and not (args.quick or args.no_full_report)
        ):
            features_window, _ = bm._window_rows(world, "null", 0.0, size, rng)
            full_report_s = peers["evidently"].full_embedding_report_seconds(features_window)
        load.append(_load_average())
        done = seed - args.seed + 1
        partial = build_payload(description(done), status, rows, nulls, load, full_report_s)
        h.write_json(args.out, partial)  # a run cut short keeps every finished seed
        print(
            f"seed {seed} done ({time.perf_counter() - start:.0f} s, load {load[-1]})",
            file=sys.stderr,
        )

    payload = build_payload(description(seeds), status, rows, nulls, load, full_report_s)
    path = h.write_json(args.out, payload)
    print_report(payload)
    print(f"wrote {path}")
    return 0


def build_payload(
    run: dict[str, Any],
    status: dict[str, Any],
    rows: list[dict[str, Any]],
    nulls: list[dict[str, Any]],
    load: list[list[float] | None],
    full_report_s: float | None,
) -> dict[str, Any]:
    """Everything measured so far: summaries, false alarms, timings, targets, raw windows."""
    summary = summarise(rows)
    everything = rows + nulls
    timing = {
        "failwise estimate + unseen + KS + mix": _median(everything, "seconds_estimate_and_tests"),
        "failwise label-free estimate (all)": _median(everything, "failwise_all", "seconds"),
        "CBPE estimate (all)": _median(everything, "cbpe_all", "seconds"),
        "CBPE estimate (answers)": _median(everything, "cbpe_answers", "seconds"),
        "CBPE on raw scores (all)": _median(everything, "cbpe_raw_all", "seconds"),
        "Evidently prediction-drift Report": _median(everything, "evidently", "seconds"),
        "Evidently per-column tests (384)": _median(everything, "evidently", "seconds_columns"),
        "Evidently embedding drift": _median(everything, "evidently", "seconds_embedding"),
        "Evidently full EmbeddingsDrift Report (1 window)": full_report_s,
    }
    return {
        "name": NAME,
        **run,
        "peers": status,
        "summary": summary,
        "false_alarms": false_alarms(nulls + [r for r in rows if r["kind"] == "null"]),
        "timing_median_s": timing,
        "load_average": load,
        "targets": _targets(summary, rows),
        "windows": everything,
        "environment": h.environment(),
    }


def print_report(payload: dict[str, Any]) -> None:
    title = (
        f"BANKING77 ({payload['features']}), {payload['seeds']} seed(s) × "
        f"{payload['windows_per_condition']} windows of {payload['window_size']} "
        f"(+{payload['null_windows_per_seed']} null per seed)"
    )
    _print_tables(payload["summary"], payload["false_alarms"], title)
    timing = payload["timing_median_s"]
    h.print_table(
        f"Wall time per window (median of {len(payload['windows'])} windows)",
        ["step", "seconds"],
        [[name, "—" if s is None else f"{s:.3f}"] for name, s in timing.items()],
        caption="load average (1, 5, 15 min) at start and after each seed: "
        f"{payload['load_average']}",
    )
    h.print_table(
        "Targets against the peers",
        ["target", "measured", ""],
        [
            [t["target"], t["measured"], {True: "met", False: "NOT met", None: "—"}[t["met"]]]
            for t in payload["targets"]
        ],
    )
    for package, entry in payload["peers"].items():
        print(f"{package}: {entry['version'] or 'unavailable — ' + entry['notes'][0]}")


if __name__ == "__main__":
    raise SystemExit(main())
