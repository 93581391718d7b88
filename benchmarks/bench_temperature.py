"""Temperature-scaling fit: failwise against netcal and scikit-learn.

Run ``python benchmarks/bench_temperature.py`` (add ``--quick`` for a smoke run). Sizes:
10k×10, 100k×100 and 1M×100 float64 logits of a synthetic overconfident classifier (see
``_harness.make_classifier_outputs``; the population-optimal temperature is 1.5).

Contenders, all fitted on the same rows:

- ``failwise``: ``TemperatureScaling().fit(logits, y)``.
- ``netcal``: ``netcal.scaling.TemperatureScaling(method="mle", use_cuda=False)``. It takes
  *probabilities*, not logits: it clips them to [ε, 1 − ε] and takes their log (the
  log-softmax, which equals the logits up to a per-row constant), then minimises the mean
  cross-entropy over one multiplicative weight (an inverse temperature) with
  ``scipy.optimize.minimize`` (L-BFGS-B, finite-difference gradient), each evaluation a
  PyTorch softmax over all rows. The softmax it is given is computed outside the clock.
- ``scikit-learn``: ``CalibratedClassifierCV(FrozenEstimator(est), method="temperature")``
  where ``est.decision_function(X)`` returns ``X`` and ``X`` is the logits. scikit-learn
  asks for ``decision_function`` before ``predict_proba``, so it works on the logits as
  given (it would take ``log(p + 1e-12)`` only of an input whose rows look like
  probabilities). With a frozen estimator and ``ensemble="auto"`` it gathers those outputs
  through a 5-fold ``cross_val_predict`` (no refit), then minimises the half-multinomial
  loss over ``log β`` in [−10, 10] with bounded Brent (``minimize_scalar``, ``xatol =
  64·eps``); ``T = 1/β``.
- ``scipy logsumexp``: one ``scipy.special.logsumexp(logits, axis=1)`` pass, the
  memory-bound floor of anything that reads every logit once. ``numpy max+exp+sum`` is
  the same pass written with plain NumPy, for reference.

The NLL of each fit is measured on the fitting rows through the library's own predict
path (failwise ``predict_proba``, netcal ``transform``, scikit-learn ``predict_proba``).
Targets: failwise ≥10× faster than both peers at equal or lower NLL, and within 10× of
the logsumexp pass.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

import _harness as h

NAME = "temperature"
DEFAULT_REPEATS = 5
OVERCONFIDENCE = 1.5
FULL_SIZES = ((10_000, 10), (100_000, 100), (1_000_000, 100))
QUICK_SIZES = ((2_000, 5), (5_000, 10))
#: A peer whose single fit takes longer than this is not repeated (noted in the output).
PEER_BUDGET_S = 10.0
#: "Equal NLL" tolerance: failwise may exceed a peer's NLL by this relative amount.
NLL_RELATIVE_TOLERANCE = 1e-6

FAILWISE = "failwise"
NETCAL = "netcal"
SKLEARN = "scikit-learn"
FLOOR = "scipy logsumexp"
NUMPY_FLOOR = "numpy max+exp+sum"
PEERS = (NETCAL, SKLEARN)


def _nll(proba: NDArray[Any], labels: NDArray[np.intp]) -> float:
    picked = np.asarray(proba, dtype=np.float64)[np.arange(labels.shape[0]), labels]
    return float(-np.mean(np.log(np.maximum(picked, np.finfo(np.float64).tiny))))


def _nll_at(logits: NDArray[np.float64], labels: NDArray[np.intp], temperature: float) -> float:
    scaled = logits / temperature
    picked = scaled[np.arange(labels.shape[0]), labels]
    return float(np.mean(logsumexp(scaled, axis=1) - picked))


def _numpy_lse(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    top = logits.max(axis=1, keepdims=True)
    result: NDArray[np.float64] = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return result


def _sklearn_contender(
    logits: NDArray[np.float64], labels: NDArray[np.intp], n_classes: int
) -> tuple[Callable[[], object] | None, str]:
    try:
        from sklearn.base import BaseEstimator, ClassifierMixin
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
    except ImportError as exc:
        return None, f"scikit-learn has no temperature scaling here: {exc}"

    class LogitsPassthrough(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        """A fitted 'classifier' whose decision function is its input (the logits)."""

        def fit(self, X: NDArray[Any], y: NDArray[Any]) -> LogitsPassthrough:
            self.classes_ = np.arange(n_classes)
            return self

        def decision_function(self, X: NDArray[Any]) -> NDArray[Any]:
            return np.asarray(X)

        def predict(self, X: NDArray[Any]) -> NDArray[Any]:
            labels: NDArray[Any] = np.asarray(X).argmax(axis=1)
            return labels

    frozen = FrozenEstimator(LogitsPassthrough().fit(logits, labels))

    def run() -> object:
        return CalibratedClassifierCV(frozen, method="temperature").fit(logits, labels)

    return run, ""


def _netcal_contender(
    probabilities: NDArray[np.float64], labels: NDArray[np.intp]
) -> tuple[Callable[[], object] | None, str]:
    scaling, reason = h.optional_import("netcal.scaling", extra="peers")
    if scaling is None:
        return None, reason

    def run() -> object:
        with warnings.catch_warnings():
            # pyro (under netcal) warns that its own `independent` is deprecated.
            warnings.simplefilter("ignore", DeprecationWarning)
            model = scaling.TemperatureScaling(method="mle", use_cuda=False)
            return model.fit(probabilities, labels, tensorboard=False)

    return run, ""


def _evaluate(
    name: str,
    model: object,
    logits: NDArray[np.float64],
    probabilities: NDArray[np.float64],
    labels: NDArray[np.intp],
) -> dict[str, float | None]:
    """Fitted temperature, and the exact NLL of softmax(logits / T) at that temperature.

    The NLL is computed the same way for every library (netcal's own ``transform`` differs
    from softmax(z / T) by up to 4e-3 per probability, which would blur a 1e-6 comparison);
    the library's own predict path is still exercised and its NLL kept as ``nll_own_path``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if name == FAILWISE:
            temperature = float(model.temperature_)  # type: ignore[attr-defined]
            proba = model.predict_proba(logits)  # type: ignore[attr-defined]
        elif name == NETCAL:
            temperature = 1.0 / float(np.ravel(model.temperature)[0])  # type: ignore[attr-defined]
            proba = model.transform(probabilities)  # type: ignore[attr-defined]
        else:
            calibrator = model.calibrated_classifiers_[0].calibrators[0]  # type: ignore[attr-defined]
            temperature = 1.0 / float(calibrator.beta_)
            proba = model.predict_proba(logits)  # type: ignore[attr-defined]
    return {
        "temperature": temperature,
        "nll": _nll_at(logits, labels, temperature),
        "nll_own_path": _nll(proba, labels),
    }


def run_case(
    n_samples: int,
    n_classes: int,
    *,
    repeats: int,
    rng: np.random.Generator,
    largest: bool,
    failwise_cls: type | None,
    failwise_reason: str,
) -> dict[str, Any]:
    logits, labels = h.make_classifier_outputs(
        n_samples, n_classes, overconfidence=OVERCONFIDENCE, rng=rng
    )
    probabilities = h.softmax_rows(logits)

    contenders: list[h.Contender] = []
    missing: dict[str, str] = {}
    if failwise_cls is not None:
        cls = failwise_cls
        contenders.append(h.Contender(FAILWISE, lambda: cls().fit(logits, labels)))
    else:
        missing[FAILWISE] = failwise_reason
    # Slow peers are not warmed up on the largest case: smaller cases in this process
    # already did, and one fit there costs tens of seconds.
    peer_warmup = 0 if largest else 1
    netcal_run, reason = _netcal_contender(probabilities, labels)
    if netcal_run is not None:
        contenders.append(h.Contender(NETCAL, netcal_run, peer_warmup, budget_s=PEER_BUDGET_S))
    else:
        missing[NETCAL] = reason
    sklearn_run, reason = _sklearn_contender(logits, labels, n_classes)
    if sklearn_run is not None:
        contenders.append(h.Contender(SKLEARN, sklearn_run, peer_warmup, budget_s=PEER_BUDGET_S))
    else:
        missing[SKLEARN] = reason
    contenders.append(h.Contender(FLOOR, lambda: logsumexp(logits, axis=1)))
    contenders.append(h.Contender(NUMPY_FLOOR, lambda: _numpy_lse(logits)))

    measurements, results = h.run_interleaved(contenders, repeats=repeats)
    measurements = h.with_missing(measurements, missing, (FAILWISE, *PEERS))

    quality: dict[str, dict[str, float | None]] = {}
    for name in (FAILWISE, *PEERS):
        if name in results:
            try:
                quality[name] = _evaluate(name, results[name], logits, probabilities, labels)
            except Exception as exc:  # record, keep the timings
                measurements[name].notes.append(f"evaluation failed: {type(exc).__name__}: {exc}")
    results.clear()

    ratios: dict[str, float | None] = {}
    failwise = measurements.get(FAILWISE)
    for peer in PEERS:
        ratios[f"failwise/{peer}"] = h.median_ratio(failwise, measurements.get(peer))
        ratios[f"{peer}/failwise (speedup)"] = h.median_ratio(measurements.get(peer), failwise)
    ratios["failwise/scipy logsumexp"] = h.median_ratio(failwise, measurements[FLOOR])
    ratios["failwise/numpy max+exp+sum"] = h.median_ratio(failwise, measurements[NUMPY_FLOOR])

    targets: dict[str, bool | None] = {}
    fw_nll = quality.get(FAILWISE, {}).get("nll")
    for peer in PEERS:
        speedup = ratios[f"{peer}/failwise (speedup)"]
        peer_nll = quality.get(peer, {}).get("nll")
        targets[f"≥10× faster than {peer}"] = None if speedup is None else speedup >= 10
        targets[f"NLL ≤ {peer}"] = (
            None
            if fw_nll is None or peer_nll is None
            else fw_nll <= peer_nll * (1 + NLL_RELATIVE_TOLERANCE)
        )
    floor_ratio = ratios["failwise/scipy logsumexp"]
    targets["within 10× of scipy logsumexp"] = None if floor_ratio is None else floor_ratio <= 10

    reference = {
        "nll_uncalibrated": _nll_at(logits, labels, 1.0),
        "nll_at_generating_temperature": _nll_at(logits, labels, OVERCONFIDENCE),
        "accuracy": float(np.mean(logits.argmax(axis=1) == labels)),
    }
    return {
        "size": h.size_label(n_samples, n_classes),
        "n_samples": n_samples,
        "n_classes": n_classes,
        "dtype": str(logits.dtype),
        "logits_bytes": int(logits.nbytes),
        "contenders": {
            name: {**m.to_dict(), **quality.get(name, {})} for name, m in measurements.items()
        },
        "reference": reference,
        "ratios": ratios,
        "targets": targets,
    }


def print_case(case: dict[str, Any]) -> None:
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
        extra = [
            str(len(entry["times_s"])),
            h.format_number(entry.get("temperature")),
            h.format_number(entry.get("nll"), 6),
            h.format_ratio(speedup) if speedup is not None else "",
        ]
        rows.append(h.measurement_row(measurement, extra=extra))
    ref = case["reference"]
    caption = (
        f"failwise / scipy logsumexp = {h.format_ratio(case['ratios']['failwise/scipy logsumexp'])}"
        f"; NLL at T=1: {ref['nll_uncalibrated']:.6g}, at T=1.5: "
        f"{ref['nll_at_generating_temperature']:.6g}; * = repeats capped"
    )
    h.print_table(
        f"Temperature-scaling fit, {case['size']} float64 logits",
        [*h.MEASUREMENT_COLUMNS, "n", "T", "NLL", "peer/failwise"],
        rows,
        caption=caption,
    )


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    repeats = h.resolve_repeats(args, default_repeats=DEFAULT_REPEATS)
    h.ensure_failwise_importable()
    module, failwise_reason = h.optional_import("failwise.calibration")
    failwise_cls = getattr(module, "TemperatureScaling", None) if module else None
    if module is not None and failwise_cls is None:
        failwise_reason = "failwise.calibration has no TemperatureScaling"

    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    rng = np.random.default_rng(args.seed)
    cases = []
    for index, (n_samples, n_classes) in enumerate(sizes):
        case = run_case(
            n_samples,
            n_classes,
            repeats=repeats,
            rng=rng,
            largest=index == len(sizes) - 1 and not args.quick,
            failwise_cls=failwise_cls,
            failwise_reason=failwise_reason,
        )
        print_case(case)
        cases.append(case)

    payload = {
        "benchmark": NAME,
        "description": __doc__,
        "argv": sys.argv[1:] if argv is None else argv,
        "quick": args.quick,
        "repeats": repeats,
        "seed": args.seed,
        "data": {
            "generator": "_harness.make_classifier_outputs",
            "dtype": "float64",
            "overconfidence": OVERCONFIDENCE,
            "note": "labels drawn from softmax(logits / 1.5); the population-optimal "
            "temperature is 1.5",
        },
        "peer_budget_s": PEER_BUDGET_S,
        "nll_relative_tolerance": NLL_RELATIVE_TOLERANCE,
        "cases": cases,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
