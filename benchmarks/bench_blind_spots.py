"""Blind spots on real data: unseen intents and out-of-scope queries in a production batch.

Two settings, all-MiniLM-L6-v2 sentence embeddings (TF-IDF with ``--quick``, which needs
no torch) and logistic regression, the reference
being the validation data the policy was fitted on (:func:`bench_monitor.build_world`):

* **BANKING77** — 19 of 77 intents held out of training and of the reference; a batch of
  2,500 requests with 10 % or 20 % from the unseen intents (about 13 / 26 requests each).
* **CLINC150** — 19 of 150 intents held out the same way, and a further 5 % of the batch
  drawn from CLINC150's out-of-scope queries (``oos_val`` and ``oos_test``), which belong
  to no intent at all: a gap made mostly of them is a real blind spot too.

Each batch is searched with two unseen-input detectors: one indexing the reference alone,
and one whose index also holds the training inputs' features (``neighbour_features``, what
:func:`failwise.monitor.run_monitor` uses when the reference carries them). For each,
:func:`failwise.monitor.find_gaps` reports clusters; a reported gap is
*real* when at least 60 % of it is one unseen intent (that intent is *surfaced*) or, on
CLINC150, out-of-scope queries. Beside it: k-means over all traffic with one cluster per
intent, and HDBSCAN over all traffic, scored the same way (clusters of >= 5 inputs).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

h.ensure_failwise_importable()

from bench_monitor import World, _data_dir, _features, build_world, load_banking77  # noqa: E402

NAME = "blind_spots"
BATCH = 2500
OOS = -2  # truth code of an out-of-scope query (known intents are -1)


def banking77(cache_dir: Any, kind: str) -> tuple[NDArray[np.intp], NDArray[np.float32], int, None]:
    loaded = load_banking77(kind, Path(cache_dir))
    if loaded is None:
        raise SystemExit(2)
    return loaded[0], loaded[1], 77, None


def clinc150(
    cache_dir: Any, kind: str
) -> tuple[NDArray[np.intp], NDArray[np.float32], int, NDArray[np.float32]]:
    data = json.loads((_data_dir() / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    if kind == "tfidf":  # one vectorizer over every split
        texts = [t for key in data for t, _ in data[key]]
        encoded = _features(texts, kind, cache_dir, len(texts))
        ends = np.cumsum([len(data[key]) for key in data])
        parts = dict(zip(data, np.split(encoded, ends[:-1]), strict=True))
    else:  # each split encoded (and cached) on its own
        from failwise.models import SentenceEmbedder

        encoder = SentenceEmbedder(cache=True, cache_dir=cache_dir)
        parts = {key: encoder.encode([t for t, _ in data[key]]) for key in data}
    names = sorted({label for key in ("train", "val", "test") for _, label in data[key]})
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[lab] for key in ("train", "val", "test") for _, lab in data[key]])
    features = np.concatenate([parts[k] for k in ("train", "val", "test")]).astype(np.float32)
    oos = np.concatenate([parts["oos_val"], parts["oos_test"]]).astype(np.float32)
    return labels, features, len(index), oos


def _real(truth: NDArray[np.intp], rows: NDArray[np.intp]) -> int | None:
    """The unseen intent (or OOS) a cluster is made of, None when it is not real."""
    values, counts = np.unique(truth[rows], return_counts=True)
    top = int(values[counts.argmax()])
    return top if top != -1 and counts.max() / rows.size >= 0.6 else None


def score(truth: NDArray[np.intp], groups: list[NDArray[np.intp]]) -> dict[str, Any]:
    kept = [g for g in groups if g.size >= 5]
    labels = [_real(truth, g) for g in kept]
    intents = {lab for lab in labels if lab is not None and lab >= 0}
    covered = np.zeros(truth.size, dtype=bool)
    for g, lab in zip(kept, labels, strict=True):
        if lab == OOS:
            covered[g[truth[g] == OOS]] = True
    n_oos = int(np.sum(truth == OOS))
    return {
        "clusters": len(kept),
        "real": sum(lab is not None for lab in labels),
        "intents_surfaced": len(intents),
        "oos_clusters": sum(lab == OOS for lab in labels),
        "oos_in_oos_clusters": float(covered.sum() / n_oos) if n_oos else None,
    }


#: The detectors compared: the reference alone, and with the training inputs as neighbours.
INDEXES = ("reference", "reference + training")


def batch(
    world: World,
    detectors: dict[str, Any],
    rate: float,
    oos: NDArray[np.float32] | None,
    oos_rate: float,
    rng: np.random.Generator,
    n_clusters: int,
) -> dict[str, Any]:
    from sklearn.cluster import HDBSCAN, KMeans

    from failwise.monitor import find_gaps

    intents = np.unique(world.unseen_labels)
    per_intent = max(1, round(rate * BATCH) // intents.size)
    novel = np.concatenate(
        [
            rng.choice(np.flatnonzero(world.unseen_labels == c), size=per_intent, replace=False)
            for c in intents
        ]
    )
    n_oos = 0 if oos is None else round(oos_rate * BATCH)
    out_of_scope = (
        np.zeros((0, world.known_features.shape[1]), np.float32)
        if oos is None
        else oos[rng.choice(oos.shape[0], size=n_oos, replace=False)]
    )
    known = rng.choice(world.known_labels.size, size=BATCH - novel.size - n_oos, replace=False)
    features = np.concatenate(
        [world.known_features[known], world.unseen_features[novel], out_of_scope]
    )
    truth = np.concatenate(
        [np.full(known.size, -1), world.unseen_labels[novel], np.full(n_oos, OOS)]
    )
    confidence = world.predict(features).max(axis=1)
    found: dict[str, Any] = {}
    for index, detector in detectors.items():
        start = time.perf_counter()
        gaps = find_gaps(detector, features, confidence=confidence)
        found[index] = {
            **score(truth, [np.asarray(g.rows) for g in gaps]),
            "seconds": time.perf_counter() - start,
        }
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.maximum(norms, np.finfo(np.float32).tiny)
    km = KMeans(n_clusters=n_clusters, n_init=1, random_state=0).fit_predict(features)
    hdb = HDBSCAN(min_cluster_size=5, copy=True).fit_predict(unit)
    return {
        "novel_rate": rate,
        "oos_rate": oos_rate if oos is not None else 0.0,
        "per_unseen_intent": per_intent,
        "failwise": found,
        "kmeans": score(truth, [np.flatnonzero(km == c) for c in range(n_clusters)]),
        "hdbscan": score(truth, [np.flatnonzero(hdb == c) for c in np.unique(hdb) if c >= 0]),
    }


def _table_row(dataset: str, rate: float, index: str, chosen: list[dict[str, Any]]) -> list[str]:
    """One line of the table: ``index``'s gaps beside the peers, averaged over draws."""

    def values(key: str, method: str = "failwise") -> list[float]:
        picked = [r[method][index] if method == "failwise" else r[method] for r in chosen]
        return [p[key] for p in picked if p[key] is not None]

    def mean(key: str, method: str = "failwise") -> float:
        found = values(key, method)
        return float(np.mean(found)) if found else float("nan")

    clinc = dataset == "clinc150"
    return [
        dataset,
        f"{rate:.0%}" + (" + 5 % OOS" if clinc else ""),
        index,
        f"{mean('intents_surfaced'):.1f} / 19",
        " ".join(f"{v:.0f}" for v in values("intents_surfaced")),
        f"{mean('clusters'):.1f}",
        f"{mean('real') / max(mean('clusters'), 1e-9):.0%}",
        f"{mean('oos_clusters'):.1f}" if clinc else "—",
        f"{mean('oos_in_oos_clusters'):.0%}" if clinc else "—",
        f"{mean('intents_surfaced', 'kmeans'):.1f} ({mean('clusters', 'kmeans'):.0f})",
        f"{mean('intents_surfaced', 'hdbscan'):.1f} ({mean('clusters', 'hdbscan'):.0f})",
        f"{np.median(values('seconds')):.2f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__ or "", default_repeats=1)
    parser.add_argument("--seeds", type=int, default=5, help="held-out intent draws")
    parser.add_argument("--cache-dir", default=str(h.RESULTS_DIR / "cache"))
    parser.add_argument("--datasets", default="banking77,clinc150")
    args = parser.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    kind = "tfidf" if args.quick else "minilm"
    from failwise.monitor import UnseenInputDetector

    loaders = {"banking77": banking77, "clinc150": clinc150}
    rows: list[dict[str, Any]] = []
    for dataset in args.datasets.split(","):
        labels, features, n_classes, oos = loaders[dataset](args.cache_dir, kind)
        for seed in range(args.seed, args.seed + seeds):
            world = build_world(labels, features, seed, n_classes=n_classes, n_unseen=19)
            ref = world.reference
            # TF-IDF rows of unknown words are all zero, with no direction for the cosine.
            metric = "euclidean" if kind == "tfidf" else "cosine"
            # Training queries that repeat a reference query (TF-IDF rows of unknown words
            # are all zero) are left out of the index, as the evaluation pipeline does.
            seen = {row.tobytes() for row in np.asarray(ref["features"])}
            train = np.asarray(world.train_features)
            neighbours = train[[row.tobytes() not in seen for row in train]]
            detectors = {
                # Split calibration, as run_monitor's gap detector.
                index: UnseenInputDetector(metric=metric, calibration="split").fit(
                    ref["features"],
                    ref["labels"],
                    confidence=ref["confidence"],
                    neighbour_features=None if index == "reference" else neighbours,
                )
                for index in INDEXES
            }
            rng = np.random.default_rng(1000 + seed)
            for rate in (0.10, 0.20):
                result = batch(world, detectors, rate, oos, 0.05, rng, n_classes)
                rows.append({"dataset": dataset, "seed": seed, **result})
            print(f"{dataset} seed {seed} done", file=sys.stderr)

    table = []
    for dataset in args.datasets.split(","):
        for rate in (0.10, 0.20):
            chosen = [r for r in rows if r["dataset"] == dataset and r["novel_rate"] == rate]
            if not chosen:
                continue
            for index in INDEXES:
                table.append(_table_row(dataset, rate, index, chosen))
    h.print_table(
        f"Blind spots in a batch of {BATCH} requests, mean over {seeds} held-out draw(s)",
        [
            "data",
            "unseen",
            "index",
            "intents found",
            "per draw",
            "gaps",
            "real",
            "OOS gaps",
            "OOS in them",
            "k-means (clusters)",
            "HDBSCAN (clusters)",
            "find_gaps s",
        ],
        table,
        caption="real: >= 60 % one unseen intent (or out-of-scope queries); clusters >= 5",
    )
    h.write_json(
        args.out,
        {
            "benchmark": NAME,
            "quick": args.quick,
            "features": kind,
            "seeds": seeds,
            "environment": h.environment(),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
