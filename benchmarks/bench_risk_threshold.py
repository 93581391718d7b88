"""Certified risk threshold: failwise ``RiskThreshold`` against MAPIE's LTT controllers.

Run ``python benchmarks/bench_risk_threshold.py`` (add ``--quick`` for a smoke run). Sizes:
10k, 100k and 1M calibration rows of a synthetic 10-class classifier that is overconfident
by a factor 1.5 (``_harness.make_classifier_outputs``): ``confidence`` is its top softmax
probability and ``correct`` says whether its top class equals a label drawn from the
calibrated distribution, so P(correct) is below the confidence, as with a real network.

The statement every contender certifies is the same: *among the inputs answered
automatically (confidence ≥ threshold), the error rate is at most ``target_risk``, with
probability at least ``confidence_level`` over the calibration draw*; each then picks the
threshold that answers the most inputs.

- ``failwise``: ``RiskThreshold(target_risk, confidence_level).fit(confidence, correct)``:
  fixed-sequence testing from the strictest candidate down, every distinct confidence a
  candidate, exact binomial p-values. ``failwise (hoeffding_bentkus)`` is the same with
  ``bound="hoeffding_bentkus"``, the p-value MAPIE uses, for reference (not a target).
- ``mapie binary``: ``BinaryClassificationController`` with ``risk="precision"`` and
  ``target_level = 1 − target_risk``. "Answer" is the positive prediction (its
  ``predict_function`` returns ``[1 − confidence, confidence]``, so an input is positive
  when confidence ≥ λ) and "correct" is the positive label. Precision is then P(correct |
  answered), the selective accuracy, so precision ≥ 1 − target_risk is exactly selective
  risk ≤ target_risk. MAPIE runs Learn-Then-Test on its default grid λ ∈ {0, 0.01, …,
  0.99} with binary Hoeffding–Bentkus p-values and Bonferroni–Holm family-wise control at
  δ = 1 − confidence_level, then among the valid λ maximises recall (the share of correct
  inputs answered), which, as both fall with λ, is the smallest valid λ: the most coverage.
- ``mapie binary (fixed sequence)``: the same with ``fwer_method="fixed_sequence"``, which
  tests λ from strict to lenient without a multiplicity correction (valid because the
  risk is monotone in λ); MAPIE's most powerful setting for this problem.
- ``mapie multiclass``: ``MultiClassificationLTTController`` on the full probability
  matrix and the labels: it predicts the top class when its probability is ≥ λ and
  abstains otherwise. The controlled risk is a custom ``BinaryRisk`` "selective accuracy"
  (occurrence: prediction equals label; condition: not abstained) at level 1 −
  target_risk, and the threshold is chosen to minimise MAPIE's ``abstention_rate``.

Reported per contender: fit time, the threshold, the coverage it certifies on the
calibration rows, the selective risk there, and the coverage and selective risk on a fresh
test draw of the same size (answering when confidence ≥ threshold). Targets: failwise's
coverage ≥ MAPIE's, and failwise ≥10× faster.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

NAME = "risk_threshold"
DEFAULT_REPEATS = 5
N_CLASSES = 10
OVERCONFIDENCE = 1.5
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 5_000)
PEER_BUDGET_S = 30.0

FAILWISE = "failwise"
FAILWISE_HB = "failwise (hoeffding_bentkus)"
MAPIE_BINARY = "mapie binary"
MAPIE_FIXED = "mapie binary (fixed sequence)"
MAPIE_MULTI = "mapie multiclass"
PEERS = (MAPIE_BINARY, MAPIE_FIXED, MAPIE_MULTI)
PRIMARY_PEER = MAPIE_BINARY


def _draw(
    n_samples: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
    logits, labels = h.make_classifier_outputs(
        n_samples, N_CLASSES, overconfidence=OVERCONFIDENCE, rng=rng
    )
    proba = h.softmax_rows(logits)
    del logits
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == labels
    return proba, labels, confidence, correct


def _mapie_binary(
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    *,
    target_risk: float,
    confidence_level: float,
    fwer_method: str,
) -> tuple[Callable[[], object] | None, str]:
    risk_control, reason = h.optional_import("mapie.risk_control", extra="peers")
    if risk_control is None:
        return None, reason
    correct_int = correct.astype(np.int64)

    def answer_proba(X: NDArray[np.float64]) -> NDArray[np.float64]:
        scores = np.asarray(X, dtype=np.float64).reshape(-1)
        return np.column_stack([1.0 - scores, scores])

    def run() -> object:
        controller = risk_control.BinaryClassificationController(
            predict_function=answer_proba,
            risk="precision",
            target_level=1.0 - target_risk,
            confidence_level=confidence_level,
            fwer_method=fwer_method,
        )
        return controller.calibrate(confidence, correct_int)

    return run, ""


def _mapie_multiclass(
    proba: NDArray[np.float64],
    labels: NDArray[np.intp],
    *,
    target_risk: float,
    confidence_level: float,
) -> tuple[Callable[[], object] | None, str]:
    risk_control, reason = h.optional_import("mapie.risk_control", extra="peers")
    if risk_control is None:
        return None, reason
    if not hasattr(risk_control, "MultiClassificationLTTController"):
        return None, "this MAPIE has no MultiClassificationLTTController"

    def answered(y_true: NDArray[Any], y_pred: NDArray[Any]) -> NDArray[np.bool_]:
        return ~np.isnan(np.asarray(y_pred, dtype=np.float64).ravel())

    def right(y_true: NDArray[Any], y_pred: NDArray[Any]) -> NDArray[np.bool_]:
        result: NDArray[np.bool_] = np.asarray(y_pred).ravel() == np.asarray(y_true).ravel()
        return result

    selective_accuracy = risk_control.BinaryRisk(
        risk_occurrence=right, risk_condition=answered, higher_is_better=True
    )

    def run() -> object:
        controller = risk_control.MultiClassificationLTTController(
            predict_function=lambda X: X,
            risks=[selective_accuracy],
            target_level=[1.0 - target_risk],
            confidence_level=confidence_level,
            best_predict_param_choice=risk_control.abstention_rate,
            classes=np.arange(N_CLASSES),
        )
        return controller.calibrate(proba, labels)

    return run, ""


def _operating_point(
    threshold: float | None, confidence: NDArray[np.float64], correct: NDArray[np.bool_]
) -> dict[str, float | None]:
    """Coverage and selective risk when answering where confidence ≥ threshold."""
    if threshold is None or not np.isfinite(threshold):
        return {"coverage": 0.0, "selective_risk": None}
    answered = confidence >= threshold
    count = int(answered.sum())
    risk = float(1.0 - correct[answered].mean()) if count else None
    return {"coverage": count / confidence.shape[0], "selective_risk": risk}


def _evaluate(
    name: str,
    model: object,
    calibration: tuple[NDArray[np.float64], NDArray[np.bool_]],
    test: tuple[NDArray[np.float64], NDArray[np.bool_]],
) -> dict[str, Any]:
    if name in (FAILWISE, FAILWISE_HB):
        threshold = float(model.threshold_)  # type: ignore[attr-defined]
        certified = bool(model.certified_)  # type: ignore[attr-defined]
        extra: dict[str, Any] = {
            "coverage_reported": float(model.coverage_),  # type: ignore[attr-defined]
            "risk_upper_bound": float(model.risk_upper_bound_),  # type: ignore[attr-defined]
        }
    else:
        best = model.best_predict_param  # type: ignore[attr-defined]
        certified = best is not None
        threshold = float(best) if best is not None else float("nan")
        extra = {"valid_thresholds": int(np.size(model.valid_predict_params))}  # type: ignore[attr-defined]
    calib = _operating_point(threshold if certified else None, *calibration)
    fresh = _operating_point(threshold if certified else None, *test)
    return {
        "threshold": threshold,
        "certified": certified,
        "coverage": calib["coverage"],
        "selective_risk": calib["selective_risk"],
        "test_coverage": fresh["coverage"],
        "test_selective_risk": fresh["selective_risk"],
        **extra,
    }


def run_case(
    n_samples: int,
    *,
    repeats: int,
    rng: np.random.Generator,
    target_risk: float,
    confidence_level: float,
    failwise_cls: type | None,
    failwise_reason: str,
) -> dict[str, Any]:
    proba, labels, confidence, correct = _draw(n_samples, rng)
    _, _, test_confidence, test_correct = _draw(n_samples, rng)

    contenders: list[h.Contender] = []
    missing: dict[str, str] = {}
    if failwise_cls is not None:
        cls = failwise_cls

        def fit_failwise() -> object:
            model = cls(target_risk=target_risk, confidence_level=confidence_level)
            return model.fit(confidence, correct)

        def fit_failwise_hb() -> object:
            model = cls(
                target_risk=target_risk,
                confidence_level=confidence_level,
                bound="hoeffding_bentkus",
            )
            return model.fit(confidence, correct)

        contenders.append(h.Contender(FAILWISE, fit_failwise))
        contenders.append(h.Contender(FAILWISE_HB, fit_failwise_hb))
    else:
        missing[FAILWISE] = missing[FAILWISE_HB] = failwise_reason

    peer_runs = {
        MAPIE_BINARY: _mapie_binary(
            confidence,
            correct,
            target_risk=target_risk,
            confidence_level=confidence_level,
            fwer_method="bonferroni_holm",
        ),
        MAPIE_FIXED: _mapie_binary(
            confidence,
            correct,
            target_risk=target_risk,
            confidence_level=confidence_level,
            fwer_method="fixed_sequence",
        ),
        MAPIE_MULTI: _mapie_multiclass(
            proba, labels, target_risk=target_risk, confidence_level=confidence_level
        ),
    }
    for name, (run, reason) in peer_runs.items():
        if run is None:
            missing[name] = reason
        else:
            contenders.append(h.Contender(name, run, budget_s=PEER_BUDGET_S))

    measurements, results = h.run_interleaved(contenders, repeats=repeats)
    measurements = h.with_missing(measurements, missing, (FAILWISE, FAILWISE_HB, *PEERS))

    quality: dict[str, dict[str, Any]] = {}
    for name, model in results.items():
        try:
            quality[name] = _evaluate(
                name, model, (confidence, correct), (test_confidence, test_correct)
            )
        except Exception as exc:
            measurements[name].notes.append(f"evaluation failed: {type(exc).__name__}: {exc}")

    failwise = measurements.get(FAILWISE)
    ratios: dict[str, float | None] = {}
    targets: dict[str, bool | None] = {}
    fw_coverage = quality.get(FAILWISE, {}).get("coverage")
    for peer in PEERS:
        ratios[f"failwise/{peer}"] = h.median_ratio(failwise, measurements.get(peer))
        speedup = h.median_ratio(measurements.get(peer), failwise)
        ratios[f"{peer}/failwise (speedup)"] = speedup
        peer_coverage = quality.get(peer, {}).get("coverage")
        ratios[f"coverage failwise − {peer}"] = (
            None if fw_coverage is None or peer_coverage is None else fw_coverage - peer_coverage
        )
        targets[f"≥10× faster than {peer}"] = None if speedup is None else speedup >= 10
        targets[f"coverage ≥ {peer}"] = (
            None if fw_coverage is None or peer_coverage is None else fw_coverage >= peer_coverage
        )

    return {
        "size": h.size_label(n_samples),
        "n_samples": n_samples,
        "n_classes": N_CLASSES,
        "calibration_accuracy": float(correct.mean()),
        "contenders": {
            name: {**m.to_dict(), **quality.get(name, {})} for name, m in measurements.items()
        },
        "ratios": ratios,
        "targets": targets,
    }


def print_case(case: dict[str, Any], *, target_risk: float, confidence_level: float) -> None:
    rows = []
    for name, entry in case["contenders"].items():
        measurement = h.Measurement(
            name=name,
            times_s=entry["times_s"],
            peak_rss_bytes=entry["peak_rss_bytes"],
            status=entry["status"],
            notes=entry["notes"],
        )
        speedup = case["ratios"].get(f"{name}/failwise (speedup)")
        certified = entry.get("certified")
        extra = [
            h.format_number(entry.get("threshold")),
            "—" if certified is None else ("yes" if certified else "no"),
            h.format_number(entry.get("coverage")),
            h.format_number(entry.get("test_coverage")),
            h.format_number(entry.get("test_selective_risk")),
            h.format_ratio(speedup) if speedup is not None else "",
        ]
        rows.append(h.measurement_row(measurement, extra=extra))
    h.print_table(
        f"Risk threshold fit, {case['size']} scores (selective risk ≤ {target_risk} "
        f"with {confidence_level:.0%} confidence; accuracy {case['calibration_accuracy']:.3f})",
        [
            *h.MEASUREMENT_COLUMNS,
            "threshold",
            "certified",
            "coverage",
            "test cov.",
            "test risk",
            "peer/failwise",
        ],
        rows,
        caption="coverage on the calibration rows; test = a fresh draw of the same size",
    )


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=DEFAULT_REPEATS)
    parser.add_argument("--target-risk", type=float, default=0.05)
    parser.add_argument("--confidence-level", type=float, default=0.9)
    args = parser.parse_args(argv)
    repeats = h.resolve_repeats(args, default_repeats=DEFAULT_REPEATS)
    h.ensure_failwise_importable()
    failwise_cls, failwise_reason = _import_failwise()

    rng = np.random.default_rng(args.seed)
    cases = []
    for n_samples in QUICK_SIZES if args.quick else FULL_SIZES:
        case = run_case(
            n_samples,
            repeats=repeats,
            rng=rng,
            target_risk=args.target_risk,
            confidence_level=args.confidence_level,
            failwise_cls=failwise_cls,
            failwise_reason=failwise_reason,
        )
        print_case(case, target_risk=args.target_risk, confidence_level=args.confidence_level)
        cases.append(case)

    payload = {
        "benchmark": NAME,
        "description": __doc__,
        "argv": sys.argv[1:] if argv is None else argv,
        "quick": args.quick,
        "repeats": repeats,
        "seed": args.seed,
        "target_risk": args.target_risk,
        "confidence_level": args.confidence_level,
        "data": {
            "generator": "_harness.make_classifier_outputs",
            "n_classes": N_CLASSES,
            "overconfidence": OVERCONFIDENCE,
            "confidence": "top softmax probability",
            "correct": "top class equals a label drawn from softmax(logits / 1.5)",
        },
        "equivalence": {
            "statement": "P(selective risk among answered ≤ target_risk) ≥ confidence_level",
            MAPIE_BINARY: "risk='precision', target_level=1 − target_risk, positive prediction "
            "= answer (confidence ≥ λ), positive label = correct; precision = selective "
            "accuracy; best λ maximises recall = maximises coverage",
            MAPIE_FIXED: "as above with fwer_method='fixed_sequence'",
            MAPIE_MULTI: "MultiClassificationLTTController, custom BinaryRisk selective "
            "accuracy (occurrence y_pred == y_true, condition: not abstained) at 1 − "
            "target_risk; best λ minimises abstention_rate",
            "mapie_grid": "λ ∈ linspace(0, 0.99, 100) (MAPIE's default)",
        },
        "peer_budget_s": PEER_BUDGET_S,
        "cases": cases,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


def _import_failwise() -> tuple[type | None, str]:
    reasons = []
    for module_name in ("failwise.policy", "failwise.policy._risk"):
        module, reason = h.optional_import(module_name)
        cls = getattr(module, "RiskThreshold", None) if module is not None else None
        if isinstance(cls, type):
            return cls, ""
        reasons.append(reason or f"{module_name} has no RiskThreshold")
    return None, "; ".join(reasons)


if __name__ == "__main__":
    sys.exit(main())
