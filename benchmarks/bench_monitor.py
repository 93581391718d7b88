"""The monitor on production streams with a known truth: BANKING77 with unseen intents.

Setting (the blind-spot issue's): a quarter of BANKING77's 77 intents (19) are held out of
training *and* of the reference. Every known-intent row of train and test is pooled and
split at random: 45 % training, 10 % calibration (temperature scaling), 20 % reference (the
"validation data the policy was fitted on") and 25 % production pool, so that null windows
really are drawn like the reference. The model is logistic regression on all-MiniLM-L6-v2
sentence embeddings (``--features tfidf`` swaps in TF-IDF, which needs no torch); the
policy is failwise's default ladder at 5 % target risk, fitted on the reference.
Production windows of 500 requests are drawn without replacement from the production pool
and from every row of the unseen intents:

* ``null`` — known intents, as in the reference;
* ``prior shift`` — three known intents six times as frequent (a harmless mix change);
* ``novel r`` — a share r of requests from the unseen intents (2, 5, 10, 20, 30 %).

Per window it records the label-free accuracy estimate among answers and its audit-
corrected version (200 audited answers, or all answers when fewer), the calibration-broken
test, the unseen-input test (as the monitor runs it: the distance alone, the training
inputs as extra neighbours, and the cut calibrated on every index row's leave-one-out
distance; this setting was chosen on held-out intent draws 10-19, not this benchmark's
seeds 0-9. Beside it: the earlier default, the reference's confidences in the score with
the cut calibrated on a split of the reference; the confidences with leave-one-out
calibration on the reference rows; and the reference alone, with and without the
confidences), the KS test on
calibrated confidence (as the monitor runs it: re-weighted to the window's predicted-label
mix with the reference's sampling error bounded; and the plain two-sample test beside
it), the MMD permutation test on the embeddings, and the chi-square test of the
predicted-label mix. Detection rates are shares of windows with p < 0.05. A blind-spot
batch (10 % and 20 % of 2,500 requests from the unseen intents) measures how many unseen
intents :func:`failwise.monitor.find_gaps` surfaces (clusters of >= 5 inputs, purity >=
0.6) against k-means on all traffic with one cluster per intent.

Peers: NannyML's CBPE and Evidently run on these same windows in
``bench_monitor_peers.py``, in the environment of the ``peers-monitor`` extra; the MMD test
here is failwise's own scipy-free implementation of the same statistic as Alibi Detect's.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

h.ensure_failwise_importable()

NAME = "monitor"
WINDOW = 500
AUDITS = 200
ALPHA = 0.05
NOVELTY = (0.02, 0.05, 0.10, 0.20, 0.30)


@dataclass
class World:
    """One seed's model, reference and production pools."""

    reference: dict[str, Any]
    known_features: NDArray[np.float32]
    known_labels: NDArray[np.intp]
    unseen_features: NDArray[np.float32]
    unseen_labels: NDArray[np.intp]
    predict: Any
    policy: Any
    n_known: int
    predict_uncalibrated: Any = None
    train_features: NDArray[np.float32] | None = None


def _data_dir() -> Path:
    given = os.environ.get("FAILWISE_DATA_DIR")
    return Path(given) if given else h.ROOT.parent / "shared" / "data"


def _read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def _features(texts: list[str], kind: str, cache_dir: Path, split: int) -> NDArray[np.float32]:
    if kind == "tfidf":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(
            texts
        )
        return np.asarray(TruncatedSVD(128, random_state=0).fit_transform(tfidf), np.float32)
    from failwise.models import SentenceEmbedder

    encoder = SentenceEmbedder(cache=True, cache_dir=cache_dir)
    # Train and test are encoded (and cached) separately, as the other benchmarks do.
    parts = [encoder.encode(list(part)) for part in np.split(np.asarray(texts, object), [split])]
    return np.asarray(np.concatenate(parts), np.float32)


def load_banking77(
    kind: str, cache_dir: Path, *, quick: bool = False
) -> tuple[NDArray[np.intp], NDArray[np.float32]] | None:
    """BANKING77's train + test rows as (intent ids, features); None when it is missing.

    ``quick`` keeps a fixed random 6,000 of the 13,083 rows.
    """
    root = _data_dir() / "banking77"
    if not (root / "train.csv").is_file():
        print(f"BANKING77 not found in {root}; set FAILWISE_DATA_DIR", file=sys.stderr)
        return None
    train_texts, train_labels = _read(root / "train.csv")
    test_texts, test_labels = _read(root / "test.csv")
    index = {name: i for i, name in enumerate(sorted(set(train_labels)))}
    texts = train_texts + test_texts
    labels = np.array([index[n] for n in train_labels + test_labels])
    if quick:
        keep = np.random.default_rng(0).choice(len(texts), size=6000, replace=False)
        texts = [texts[i] for i in keep]
        labels = labels[keep]
    start = time.perf_counter()
    features = _features(texts, kind, cache_dir, len(train_texts))
    print(
        f"features ({kind}): {features.shape} in {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
    )
    return labels, features


def build_world(
    labels: NDArray[np.intp],
    features: NDArray[np.float32],
    seed: int,
    *,
    n_classes: int = 77,
    n_unseen: int = 19,
) -> World:
    from sklearn.linear_model import LogisticRegression

    from failwise import Policy, TemperatureScaling

    rng = np.random.default_rng(seed)
    intents = rng.permutation(n_classes)
    unseen_ids, known_ids = intents[:n_unseen], np.sort(intents[n_unseen:])
    relabel = np.full(n_classes, -1)
    relabel[known_ids] = np.arange(known_ids.size)
    y = relabel[labels]
    known = np.flatnonzero(y >= 0)
    rng.shuffle(known)
    cuts = (np.cumsum([0.45, 0.10, 0.20]) * known.size).astype(int)
    fit_rows, cal_rows, ref_rows, known_prod = np.split(known, cuts)
    model = LogisticRegression(C=10.0, max_iter=2000).fit(features[fit_rows], y[fit_rows])
    calibrator = TemperatureScaling().fit(model.decision_function(features[cal_rows]), y[cal_rows])

    def predict(rows_features: NDArray[np.float32]) -> NDArray[np.float64]:
        proba: NDArray[np.float64] = calibrator.predict_proba(
            model.decision_function(rows_features)
        )
        return proba

    ref_proba = predict(features[ref_rows])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = Policy(target_risk=0.05, confidence_level=0.95).fit(ref_proba, y[ref_rows])
    decisions = policy.decide(ref_proba)
    reference = {
        "confidence": ref_proba.max(axis=1),
        "predicted": ref_proba.argmax(axis=1),
        "action": np.asarray(decisions.action),
        "features": features[ref_rows],
        "labels": y[ref_rows],
    }
    unseen_prod = np.flatnonzero(np.isin(labels, unseen_ids))
    return World(
        reference,
        features[known_prod],
        y[known_prod],
        features[unseen_prod],
        labels[unseen_prod],
        predict,
        policy,
        int(known_ids.size),
        model.predict_proba,
        features[fit_rows],
    )


def unseen_detectors(world: World) -> tuple[Any, ...]:
    """The unseen-input detectors compared: distance, reference alone; with the reference's
    confidences, reference alone; the monitor's (distance, the training inputs as extra
    neighbours, leave-one-out calibration on every index row); the earlier default (with
    confidences, calibrated on a split of the reference); and with confidences and
    leave-one-out calibration on the reference rows."""
    from failwise.monitor import UnseenInputDetector

    ref = world.reference
    train = world.train_features
    return (
        UnseenInputDetector().fit(ref["features"], ref["labels"]),
        UnseenInputDetector().fit(ref["features"], ref["labels"], confidence=ref["confidence"]),
        UnseenInputDetector().fit(ref["features"], ref["labels"], neighbour_features=train),
        UnseenInputDetector(calibration="split").fit(
            ref["features"], ref["labels"], confidence=ref["confidence"], neighbour_features=train
        ),
        UnseenInputDetector().fit(
            ref["features"], ref["labels"], confidence=ref["confidence"], neighbour_features=train
        ),
    )


def _window_rows(
    world: World, kind: str, rate: float, size: int, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    n_novel = round(rate * size)
    weights = np.ones(world.known_labels.size)
    if kind == "prior shift":
        boosted = rng.choice(world.n_known, size=3, replace=False)
        weights[np.isin(world.known_labels, boosted)] = 6.0
    known = rng.choice(
        world.known_labels.size, size=size - n_novel, replace=False, p=weights / weights.sum()
    )
    novel = rng.choice(world.unseen_labels.size, size=n_novel, replace=False)
    features = np.concatenate([world.known_features[known], world.unseen_features[novel]])
    truth = np.concatenate([world.known_labels[known], np.full(n_novel, -1)])
    return features, truth


def run_window(
    world: World,
    detectors: tuple[Any, ...],
    kind: str,
    rate: float,
    rng: np.random.Generator,
    size: int,
    with_mmd: bool = True,
) -> dict[str, Any]:
    from failwise.monitor import estimate_accuracy, ks_drift, mix_drift, mmd_drift

    features, truth = _window_rows(world, kind, rate, size, rng)
    proba = world.predict(features)
    decisions = world.policy.decide(proba)
    action = np.asarray(decisions.action)
    answered = action == "answer"
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    audited = rng.choice(
        np.flatnonzero(answered), size=min(AUDITS, int(answered.sum())), replace=False
    )
    plain_detector, reference_only, detector, earlier, with_doubt = detectors
    start = time.perf_counter()
    unseen = detector.test(features)
    estimate = estimate_accuracy(
        confidence[answered],
        audit_confidence=confidence[audited],
        audit_correct=correct[audited],
        audit_unseen=unseen.unseen[audited],
    )
    predicted = proba.argmax(axis=1)
    # As the monitor tests it: re-weighted to the window's predicted-label mix, with the
    # reference's own sampling error bounded (see ks_drift).
    ks = ks_drift(
        world.reference["confidence"],
        confidence,
        reference_groups=world.reference["predicted"],
        window_groups=predicted,
        reference_confidence=0.9,
    )
    mix = mix_drift(world.reference["predicted"], proba.argmax(axis=1))
    window_s = time.perf_counter() - start
    plain_estimate = estimate_accuracy(
        confidence[answered], audit_confidence=confidence[audited], audit_correct=correct[audited]
    )
    plain_unseen = plain_detector.test(features)
    reference_only_unseen = reference_only.test(features, confidence=confidence)
    earlier_p = earlier.test(features, confidence=confidence).p_value
    with_doubt_p = with_doubt.test(features, confidence=confidence).p_value
    plain_ks = ks_drift(world.reference["confidence"], confidence)
    mmd_p, mmd_s = float("nan"), float("nan")
    if with_mmd:
        start = time.perf_counter()
        mmd_p = mmd_drift(
            world.reference["features"], features, n_permutations=200, random_state=rng
        ).p_value
        mmd_s = time.perf_counter() - start
    realised = float(correct[answered].mean()) if answered.any() else float("nan")
    return {
        "kind": kind,
        "novel_rate": rate,
        "answered": int(answered.sum()),
        "realised_accuracy": realised,
        "estimate": estimate.estimate,
        "estimate_covered": estimate.low <= realised <= estimate.high,
        "corrected": estimate.corrected,
        "corrected_covered": (estimate.corrected_low or 0)
        <= realised
        <= (estimate.corrected_high or 1),
        "corrected_half_width": (
            ((estimate.corrected_high or 0) - (estimate.corrected_low or 0)) / 2
        ),
        "calibration_broken": estimate.calibration_broken,
        "calibration_broken_plain": plain_estimate.calibration_broken,
        "p_unseen": unseen.p_value,
        "p_unseen_distance": plain_unseen.p_value,
        "p_unseen_reference_only": reference_only_unseen.p_value,
        "p_unseen_split_doubt": earlier_p,
        "p_unseen_doubt": with_doubt_p,
        "excess_unseen": unseen.excess_rate,
        "p_ks_confidence": ks.p_value,
        "p_ks_confidence_two_sample": plain_ks.p_value,
        "p_label_mix": mix.p_value,
        "p_mmd": mmd_p,
        "seconds_estimate_and_tests": window_s,
        "seconds_mmd": mmd_s,
    }


def gap_batch(
    world: World, detector: Any, rate: float, rng: np.random.Generator, size: int
) -> dict[str, Any]:
    from sklearn.cluster import KMeans

    from failwise.monitor import find_gaps

    n_novel = round(rate * size)
    per_intent = max(1, n_novel // 19)
    novel_rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(world.unseen_labels == c), size=per_intent, replace=False)
            for c in np.unique(world.unseen_labels)
        ]
    )
    known = rng.choice(world.known_labels.size, size=size - novel_rows.size, replace=False)
    features = np.concatenate([world.known_features[known], world.unseen_features[novel_rows]])
    truth = np.concatenate([np.full(known.size, -1), world.unseen_labels[novel_rows]])
    confidence = world.predict(features).max(axis=1)
    start = time.perf_counter()
    gaps = find_gaps(detector, features, confidence=confidence)
    gaps_s = time.perf_counter() - start

    def surfaced(groups: list[NDArray[np.intp]]) -> tuple[set[int], int]:
        found, real = set(), 0
        for rows in groups:
            if rows.size < 5:
                continue
            values, counts = np.unique(truth[rows], return_counts=True)
            top = int(values[counts.argmax()])
            if top >= 0 and counts.max() / rows.size >= 0.6:
                found.add(top)
                real += 1
        return found, real

    ours, ours_real = surfaced([np.asarray(g.rows) for g in gaps])
    labels = KMeans(n_clusters=77, n_init=1, random_state=0).fit_predict(features)
    km_groups = [np.flatnonzero(labels == c) for c in range(77)]
    km_found, _ = surfaced(km_groups)
    from sklearn.cluster import HDBSCAN

    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    hdb = HDBSCAN(min_cluster_size=5).fit_predict(unit)
    hdb_groups = [np.flatnonzero(hdb == c) for c in np.unique(hdb) if c >= 0]
    hdb_found, _ = surfaced(hdb_groups)
    return {
        "novel_rate": rate,
        "requests": size,
        "per_unseen_intent": per_intent,
        "gaps_reported": len(gaps),
        "unseen_intents_surfaced": len(ours),
        "reported_that_are_real": ours_real / len(gaps) if gaps else None,
        "kmeans_clusters": sum(g.size >= 5 for g in km_groups),
        "kmeans_unseen_intents_surfaced": len(km_found),
        "hdbscan_clusters": sum(g.size >= 5 for g in hdb_groups),
        "hdbscan_unseen_intents_surfaced": len(hdb_found),
        "seconds_find_gaps": gaps_s,
    }


def _share(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{np.mean(known):.0%}" if known else "—"


def _rate(rows: list[dict[str, Any]], key: str, **where: Any) -> float:
    chosen = [r for r in rows if all(r[k] == v for k, v in where.items())]
    values = [r[key] < ALPHA for r in chosen if np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def _per_seed(rows: list[dict[str, Any]], key: str, flag: bool = False) -> list[float]:
    seeds = sorted({r["seed"] for r in rows})
    out = []
    for seed in seeds:
        chosen = [r for r in rows if r["seed"] == seed]
        out.append(
            float(np.mean([bool(r[key]) for r in chosen]))
            if flag
            else float(np.mean([r[key] < ALPHA for r in chosen]))
        )
    return out


def _target_row(
    name: str, measured: float, target: str, met: bool, fmt: str = "{:.0%}"
) -> list[str]:
    return [name, fmt.format(measured), target, "met" if met else "NOT met"]


def run_description(
    quick: bool, features: str, seeds: int, windows: int, null_windows: int, size: int
) -> dict[str, Any]:
    """The sizes of a run, as the JSON files of the monitor benchmarks record them."""
    return {
        "quick": quick,
        "features": features,
        "seeds": seeds,
        "windows_per_condition": windows,
        "null_windows_per_seed": null_windows,
        "window_size": size,
        "audits_per_window": AUDITS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__ or "", default_repeats=1)
    parser.add_argument("--seeds", type=int, default=10, help="reference draws")
    parser.add_argument("--windows", type=int, default=10, help="windows per condition")
    parser.add_argument(
        "--null-windows", type=int, default=60, help="extra null windows per seed (no MMD)"
    )
    parser.add_argument("--mmd-seeds", type=int, default=5, help="seeds that run the MMD test")
    parser.add_argument("--features", choices=("minilm", "tfidf"), default="minilm")
    parser.add_argument("--cache-dir", type=Path, default=h.RESULTS_DIR / "cache")
    args = parser.parse_args(argv)
    seeds, windows, size = (1, 2, 300) if args.quick else (args.seeds, args.windows, WINDOW)
    null_windows = 4 if args.quick else args.null_windows
    features_kind = "tfidf" if args.quick else args.features
    loaded = load_banking77(features_kind, args.cache_dir, quick=args.quick)
    if loaded is None:
        return 2
    labels, features = loaded

    rows: list[dict[str, Any]] = []
    nulls: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    conditions = [("null", 0.0), ("prior shift", 0.0)] + [("novel", r) for r in NOVELTY]
    for seed in range(args.seed, args.seed + seeds):
        world = build_world(labels, features, seed)
        detectors = unseen_detectors(world)
        rng = np.random.default_rng(1000 + seed)
        with_mmd = seed - args.seed < args.mmd_seeds
        for kind, rate in conditions:
            for _ in range(windows):
                row = run_window(world, detectors, kind, rate, rng, size, with_mmd)
                row["seed"] = seed
                rows.append(row)
        for _ in range(null_windows):
            row = run_window(world, detectors, "null", 0.0, rng, size, with_mmd=False)
            row["seed"] = seed
            nulls.append(row)
        for rate in (0.10, 0.20):
            # The blind spots run on the detector run_monitor gives the gap finder.
            batch = gap_batch(world, detectors[3], rate, rng, min(2500, world.known_labels.size))
            batch["seed"] = seed
            gaps.append(batch)
        print(f"seed {seed} done", file=sys.stderr)

    table = []
    summary: dict[str, Any] = {}
    for kind, rate in conditions:
        chosen = [r for r in rows if r["kind"] == kind and r["novel_rate"] == rate]
        label = kind if kind != "novel" else f"novel {rate:.0%}"
        errors = np.array([r["estimate"] - r["realised_accuracy"] for r in chosen])
        corrected = np.array([r["corrected"] - r["realised_accuracy"] for r in chosen])
        entry = {
            "windows": len(chosen),
            "estimate_mae": float(np.nanmean(np.abs(errors))),
            "estimate_bias": float(np.nanmean(errors)),
            "corrected_bias": float(np.nanmean(corrected)),
            "corrected_coverage": float(np.mean([r["corrected_covered"] for r in chosen])),
            "corrected_half_width": float(np.mean([r["corrected_half_width"] for r in chosen])),
            "calibration_broken_rate": float(np.mean([r["calibration_broken"] for r in chosen])),
            "calibration_broken_plain_rate": float(
                np.mean([r["calibration_broken_plain"] for r in chosen])
            ),
            "unseen_alarm_rate": _rate(chosen, "p_unseen"),
            "unseen_distance_alarm_rate": _rate(chosen, "p_unseen_distance"),
            "unseen_reference_only_alarm_rate": _rate(chosen, "p_unseen_reference_only"),
            "unseen_split_doubt_alarm_rate": _rate(chosen, "p_unseen_split_doubt"),
            "unseen_doubt_alarm_rate": _rate(chosen, "p_unseen_doubt"),
            "ks_confidence_alarm_rate": _rate(chosen, "p_ks_confidence"),
            "ks_confidence_two_sample_alarm_rate": _rate(chosen, "p_ks_confidence_two_sample"),
            "mmd_alarm_rate": _rate(chosen, "p_mmd"),
            "label_mix_alarm_rate": _rate(chosen, "p_label_mix"),
        }
        summary[label] = entry
        table.append(
            [
                label,
                f"{100 * entry['estimate_bias']:+.1f}",
                f"{100 * entry['corrected_bias']:+.1f}",
                f"{entry['corrected_coverage']:.2f}",
                f"{100 * entry['corrected_half_width']:.1f}",
                f"{entry['calibration_broken_plain_rate']:.0%}",
                f"{entry['calibration_broken_rate']:.0%}",
                f"{entry['unseen_distance_alarm_rate']:.0%}",
                f"{entry['unseen_reference_only_alarm_rate']:.0%}",
                f"{entry['unseen_split_doubt_alarm_rate']:.0%}",
                f"{entry['unseen_doubt_alarm_rate']:.0%}",
                f"{entry['unseen_alarm_rate']:.0%}",
                f"{entry['ks_confidence_two_sample_alarm_rate']:.0%}",
                f"{entry['ks_confidence_alarm_rate']:.0%}",
                f"{entry['mmd_alarm_rate']:.0%}",
                f"{entry['label_mix_alarm_rate']:.0%}",
            ]
        )
    h.print_table(
        f"failwise.monitor on BANKING77 ({features_kind}), {seeds} seed(s) × {windows} "
        f"windows of {size} (MMD on {min(seeds, args.mmd_seeds)} seeds)",
        [
            "window",
            "est. bias pt",
            "corr. bias pt",
            "corr. cover",
            "corr. ±pt",
            "cal. broken (plain)",
            "cal. broken (weighted)",
            "unseen (distance, ref. only)",
            "unseen (+doubt, ref. only)",
            "unseen (+doubt, + train, split)",
            "unseen (+doubt, + train, LOO ref.)",
            "unseen (monitor: + train, LOO all)",
            "KS conf (2-sample)",
            "KS conf (monitor)",
            "MMD",
            "label mix",
        ],
        table,
        caption="alarm columns: share of windows with p < 0.05; estimates among automatic "
        f"answers, corrected with {AUDITS} audited answers; KS conf (monitor): re-weighted "
        "to the window's predicted-label mix, reference error bounded at 0.9; MMD = "
        "scipy-free permutation MMD (the statistic of Alibi Detect's MMDDrift, reproduced, "
        "not Alibi itself)",
    )

    # False alarms per reference draw on the extra null windows.
    fa: dict[str, Any] = {}
    fa_rows = []
    for key, name, flag in (
        ("p_unseen", "unseen (monitor: + train, LOO all)", False),
        ("p_unseen_split_doubt", "unseen (+doubt, + train, split)", False),
        ("p_unseen_doubt", "unseen (+doubt, + train, LOO ref.)", False),
        ("p_unseen_reference_only", "unseen (+doubt, ref. only)", False),
        ("p_unseen_distance", "unseen (distance, ref. only)", False),
        ("p_ks_confidence", "KS confidence (monitor)", False),
        ("p_ks_confidence_two_sample", "KS confidence (2-sample)", False),
        ("p_label_mix", "label mix", False),
        ("calibration_broken", "cal. broken (weighted)", True),
        ("calibration_broken_plain", "cal. broken (plain)", True),
    ):
        per = _per_seed(nulls, key, flag)
        fa[name] = {"per_seed": per, "mean": float(np.mean(per)), "max": float(np.max(per))}
        ok = np.mean(per) <= ALPHA + 0.02 and np.max(per) <= 3 * ALPHA
        fa_rows.append(
            [
                name,
                f"{np.mean(per):.1%}",
                f"{np.max(per):.1%}",
                "≤ 7 % / ≤ 15 %",
                "met" if ok else "NOT met",
            ]
        )
    h.print_table(
        f"False alarms on null windows: {seeds} reference draws × {null_windows} windows",
        ["detector", "mean", "worst draw", "target (mean / worst)", ""],
        fa_rows,
        caption="null windows drawn from each seed's production pool (disjoint from its "
        "reference and training rows)",
    )

    gap_rows = []
    for rate in (0.10, 0.20):
        chosen = [g for g in gaps if g["novel_rate"] == rate]
        gap_rows.append(
            [
                f"{rate:.0%} unseen",
                f"{np.mean([g['unseen_intents_surfaced'] for g in chosen]):.1f} / 19",
                f"{np.mean([g['gaps_reported'] for g in chosen]):.1f}",
                _share([g["reported_that_are_real"] for g in chosen]),
                f"{np.mean([g['kmeans_unseen_intents_surfaced'] for g in chosen]):.1f} / 19",
                f"{np.mean([g['kmeans_clusters'] for g in chosen]):.0f}",
                f"{np.mean([g['hdbscan_unseen_intents_surfaced'] for g in chosen]):.1f} / 19",
                f"{np.mean([g['hdbscan_clusters'] for g in chosen]):.0f}",
                f"{np.median([g['seconds_find_gaps'] for g in chosen]):.2f}",
            ]
        )
    h.print_table(
        f"Blind spots in a batch of {gaps[0]['requests'] if gaps else 0} requests",
        [
            "batch",
            "surfaced",
            "gaps",
            "real",
            "k-means surfaced",
            "k-means clusters",
            "HDBSCAN-all surfaced",
            "HDBSCAN-all clusters",
            "find_gaps s",
        ],
        gap_rows,
        caption="surfaced: unseen intents that are the majority (>= 60 %) of a reported "
        "cluster of >= 5 inputs; k-means (k = 77) and HDBSCAN (min_cluster_size = 5) "
        "cluster all traffic",
    )

    def g_mean(rate: float, key: str) -> float:
        values = [g[key] for g in gaps if g["novel_rate"] == rate and g[key] is not None]
        return float(np.mean(values)) if values else float("nan")

    label_free = [
        abs(r["estimate"] - r["realised_accuracy"])
        for r in rows
        if r["kind"] in ("null", "prior shift")
    ]
    novel_rows = [r for r in rows if r["kind"] == "novel"]
    worst_bias = max(abs(summary[f"novel {r:.0%}"]["corrected_bias"]) for r in NOVELTY)
    coverage = float(np.mean([r["corrected_covered"] for r in rows]))
    half = float(np.mean([r["corrected_half_width"] for r in rows]))
    high_novel = [r for r in novel_rows if r["novel_rate"] >= 0.10]
    cb_power = float(np.mean([r["calibration_broken"] for r in high_novel]))
    cb_null = fa["cal. broken (weighted)"]["mean"]
    u10 = summary["novel 10%"]["unseen_alarm_rate"]
    u5 = summary["novel 5%"]["unseen_alarm_rate"]
    mmd10 = summary["novel 10%"]["mmd_alarm_rate"]
    prior_fail = float(
        np.mean(
            [
                (r["p_unseen"] < ALPHA) or (r["p_ks_confidence"] < ALPHA) or r["calibration_broken"]
                for r in rows
                if r["kind"] == "prior shift"
            ]
        )
    )
    targets = [
        _target_row(
            "label-free MAE, null + prior shift (pt)",
            100 * float(np.mean(label_free)),
            "≤ 1.5",
            np.mean(label_free) <= 0.015,
            "{:.2f}",
        ),
        _target_row(
            "corrected |bias|, worst novelty rate (pt)",
            100 * worst_bias,
            "≤ 1",
            worst_bias <= 0.01,
            "{:.2f}",
        ),
        _target_row("corrected 95 % coverage", coverage, "≥ 0.93", coverage >= 0.93, "{:.3f}"),
        _target_row("corrected half-width (pt)", 100 * half, "≤ 4", half <= 0.04, "{:.2f}"),
        _target_row("calibration broken, ≥ 10 % novel", cb_power, "≥ 80 %", cb_power >= 0.8),
        _target_row("calibration broken, null", cb_null, "≤ 5 %", cb_null <= 0.05, "{:.1%}"),
        _target_row("unseen-input power, 10 % novel", u10, "≥ 90 %", u10 >= 0.9),
        _target_row("unseen-input power, 5 % novel", u5, "≥ 60 %", u5 >= 0.6),
        _target_row(
            "unseen vs MMD at 10 % (ratio)",
            u10 / mmd10 if mmd10 else float("inf"),
            "≥ 5×",
            (mmd10 == 0 and u10 > 0) or u10 >= 5 * mmd10,
            "{:.1f}",
        ),
        _target_row("failure alarms on prior shift", prior_fail, "≤ 10 %", prior_fail <= 0.1),
        _target_row(
            "gaps surfaced, 10 % novel (of 19)",
            g_mean(0.1, "unseen_intents_surfaced"),
            "≥ 12",
            g_mean(0.1, "unseen_intents_surfaced") >= 12,
            "{:.1f}",
        ),
        _target_row(
            "gaps surfaced, 20 % novel (of 19)",
            g_mean(0.2, "unseen_intents_surfaced"),
            "≥ 15",
            g_mean(0.2, "unseen_intents_surfaced") >= 15,
            "{:.1f}",
        ),
        _target_row(
            "reported gaps that are real, 10 %",
            g_mean(0.1, "reported_that_are_real"),
            "≥ 75 %",
            g_mean(0.1, "reported_that_are_real") >= 0.75,
        ),
        _target_row(
            "gaps to read vs k-means clusters, 10 %",
            g_mean(0.1, "gaps_reported") / g_mean(0.1, "kmeans_clusters"),
            "≤ 0.25",
            g_mean(0.1, "gaps_reported") <= 0.25 * g_mean(0.1, "kmeans_clusters"),
            "{:.2f}",
        ),
        _target_row(
            "surfaced minus k-means surfaced, 10 %",
            g_mean(0.1, "unseen_intents_surfaced") - g_mean(0.1, "kmeans_unseen_intents_surfaced"),
            "> 0",
            g_mean(0.1, "unseen_intents_surfaced") > g_mean(0.1, "kmeans_unseen_intents_surfaced"),
            "{:+.1f}",
        ),
    ]
    h.print_table(
        "Targets (issue: the categories nobody evaluated)",
        ["target", "measured", "target", ""],
        targets,
        caption="NannyML CBPE and Evidently: bench_monitor_peers.py; MMD is failwise's "
        "scipy reproduction of Alibi Detect's test",
    )
    timing = {
        "estimate_and_tests_median_s": float(
            np.median([r["seconds_estimate_and_tests"] for r in rows])
        ),
        "mmd_median_s": float(np.nanmedian([r["seconds_mmd"] for r in rows])),
    }
    print(
        f"one window's estimate + unseen + KS + mix tests: "
        f"{timing['estimate_and_tests_median_s']:.3f} s median; MMD "
        f"{timing['mmd_median_s']:.3f} s"
    )
    payload = {
        "name": NAME,
        **run_description(args.quick, features_kind, seeds, windows, null_windows, size),
        "summary": summary,
        "false_alarms": fa,
        "targets": [
            dict(zip(("target", "measured", "goal", "status"), t, strict=True)) for t in targets
        ],
        "gaps": gaps,
        "timing": timing,
        "windows": rows,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
