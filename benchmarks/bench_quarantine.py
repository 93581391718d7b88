"""What quarantining a blind spot does for users: the same stream with and without monitoring.

Setting: :mod:`bench_monitor`'s BANKING77 world (19 of 77 intents held out of training and
reference; logistic regression on all-MiniLM-L6-v2 embeddings, ``--features tfidf`` without
torch; failwise's default ladder at 5 % target risk). A stream of ``--windows`` windows of
500 requests: the first two drawn like the reference, the others with ``--novel`` (10 %) of
requests from the unseen intents (out of scope: their right handling is a human, never an
answer). Both arms serve the *same* requests to the *same* scripted users and reviewers
(:func:`failwise.testing.replay`, same seeds) through a real :class:`~failwise.runtime.Guard`
recording into its own SQLite store with a 5 % audit sample:

* **without monitoring** — the guard as deployed;
* **blind spots quarantined** — after each window, :func:`failwise.monitor.run_monitor`
  (count windows of 500, ``--horizon`` 1: a 5 % chance of any false finding per window;
  the reference carries the training inputs as extra neighbours) and every new blind-spot
  finding quarantined at once (:func:`failwise.monitor.quarantine`); the guard
  (``quarantine=True``) escalates inputs inside a quarantined zone from the next window on;
* **blind spots and unseen-input alerts quarantined** — the same, and every
  ``unseen_inputs`` alert quarantined too (:func:`failwise.monitor.quarantine_unseen`:
  the inputs nearer to one of the alert's far inputs than to anything evaluated).

Reported from the first window with unseen requests on (the same windows in every arm):
silent failures on the unseen intents (a wrong automatic answer nobody noticed, from the
replay's draws), task completion and escalation rate (exact from the draws, and task
completion as :func:`failwise.measure` measures it on each store), and escalations of
known-intent requests (the cost: beyond those of the unmonitored arm, they are reviewers'
work the quarantine adds).
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

import bench_monitor as bm  # noqa: E402  (a sibling script, importable once the path is set)

NAME = "quarantine"
WINDOW = 500
ONSET = 2  # the first window with unseen requests
REACH = 0.75  # quarantine_unseen's default
ARMS = (
    "without monitoring",
    "blind spots quarantined",
    "blind spots + unseen alerts quarantined",
)


def _arm(
    world: Any,
    reference: Any,
    stream: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    features: np.ndarray[Any, Any],
    folder: Path,
    *,
    arm: str,
    seed: int,
    horizon: int,
    onset: int,
    reach: float,
) -> dict[str, Any]:
    from failwise import store
    from failwise.monitor import quarantine, quarantine_unseen, run_monitor
    from failwise.outcomes import measure
    from failwise.runtime import Guard
    from failwise.testing import replay

    monitored = arm != ARMS[0]
    url = f"sqlite:///{folder / (str(ARMS.index(arm)) + '.db')}"
    out: dict[str, Any] = {"windows": [], "detected_in": None, "quarantined": []}
    with store.open(url) as events:
        guard = Guard(
            lambda rows: world.predict(features[np.asarray(rows)]),
            None,
            world.policy,
            store=events,
            batch_model=True,
            features=lambda rows: features[np.asarray(rows)],
            batch_features=True,
            quarantine=monitored,
            quarantine_refresh_s=0.001,
            audit_rate=0.05,
            random_state=seed,
        )
        starts = []
        for w, (rows, labels, unseen) in enumerate(stream):
            starts.append(time.time())
            time.sleep(0.002)  # the quarantine zones are read again before this window
            result = replay(guard, list(rows), labels, random_state=seed * 1000 + w)
            behaviour = result.behaviour
            actions = np.array([d.action.value for d in result.decisions])
            out["windows"].append(
                {
                    "silent_unseen": int(np.sum(behaviour.silent & unseen)),
                    "unseen": int(unseen.sum()),
                    "completed": int(np.sum(behaviour.completed)),
                    "escalated": int(np.sum(actions == "escalate")),
                    "escalated_known": int(np.sum((actions == "escalate") & ~unseen)),
                    "quarantined": int(sum("quarantine" in d.extra for d in result.decisions)),
                    "quarantined_unseen": int(
                        sum(
                            "quarantine" in d.extra
                            for d, u in zip(result.decisions, unseen, strict=True)
                            if u
                        )
                    ),
                    "n": int(rows.size),
                }
            )
            if monitored:
                run = run_monitor(
                    events, reference, window=WINDOW, horizon=horizon, release_after=None
                )
                for finding in run.findings:
                    zones = []
                    if finding.kind == "blind_spot":
                        zones = [quarantine(events, finding.id)]
                    elif finding.kind == "unseen_inputs" and arm == ARMS[2]:
                        zones = quarantine_unseen(events, finding.id, reach=reach)
                    out["quarantined"].extend(zones)
                    if zones and out["detected_in"] is None:
                        out["detected_in"] = w
        out["starts"] = starts
        out["measured_task_completion"] = measure(
            events, since=starts[onset]
        ).task_completion_rate.value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__ or "", default_repeats=1)
    parser.add_argument("--seeds", type=int, default=3, help="worlds (intent splits)")
    parser.add_argument("--windows", type=int, default=8, help="windows of 500 per stream")
    parser.add_argument("--novel", type=float, default=0.10, help="share of unseen requests")
    parser.add_argument("--features", choices=("minilm", "tfidf"), default="minilm")
    parser.add_argument(
        "--horizon", type=int, default=1, help="run_monitor's horizon (false alarms per window)"
    )
    parser.add_argument(
        "--reach",
        type=float,
        default=REACH,
        help="quarantine_unseen's zone radius, as a share of each far input's distance",
    )
    parser.add_argument("--cache-dir", type=Path, default=h.RESULTS_DIR / "cache")
    args = parser.parse_args(argv)
    seeds, n_windows = (1, 4) if args.quick else (args.seeds, args.windows)
    root = bm._data_dir() / "banking77"
    if not (root / "train.csv").is_file():
        print(f"BANKING77 not found in {root}; set FAILWISE_DATA_DIR", file=sys.stderr)
        return 2
    train_texts, train_labels = bm._read(root / "train.csv")
    test_texts, test_labels = bm._read(root / "test.csv")
    names = sorted(set(train_labels))
    index = {name: i for i, name in enumerate(names)}
    texts = train_texts + test_texts
    labels = np.array([index[n] for n in train_labels + test_labels])
    kind = "tfidf" if args.quick else args.features
    features = bm._features(texts, kind, args.cache_dir, len(train_texts))
    print(f"features ({kind}): {features.shape}", file=sys.stderr)

    from failwise.monitor import Reference

    rows: list[dict[str, Any]] = []
    for seed in range(args.seed, args.seed + seeds):
        world = bm.build_world(labels, features, seed)
        ref = world.reference
        reference = Reference(
            confidence=ref["confidence"],
            predicted=ref["predicted"],
            action=ref["action"],
            correct=ref["predicted"] == ref["labels"],
            features=ref["features"],
            neighbour_features=world.train_features,
        )
        pool = np.concatenate([world.known_features, world.unseen_features])
        truth = np.concatenate([world.known_labels, np.full(world.unseen_labels.size, -1)])
        n_known = world.known_labels.size
        rng = np.random.default_rng(500 + seed)
        # The known pool (a quarter of the known rows) is shorter than a long stream: it is
        # served again in a fresh order once used up, so every window has its full share.
        passes = -(-n_windows * WINDOW // n_known)
        known_order = np.concatenate([rng.permutation(n_known) for _ in range(passes)])
        unseen_order = n_known + rng.permutation(world.unseen_labels.size)
        stream = []
        k = u = 0
        for w in range(n_windows):
            n_unseen = 0 if w < ONSET else round(args.novel * WINDOW)
            take = np.concatenate(
                [known_order[k : k + WINDOW - n_unseen], unseen_order[u : u + n_unseen]]
            )
            k, u = k + WINDOW - n_unseen, u + n_unseen
            take = rng.permutation(take)
            stream.append((take, truth[take], truth[take] < 0))
        with tempfile.TemporaryDirectory() as tmp:
            results = {
                arm: _arm(
                    world,
                    reference,
                    stream,
                    pool,
                    Path(tmp),
                    arm=arm,
                    seed=seed,
                    horizon=args.horizon,
                    onset=ONSET,
                    reach=args.reach,
                )
                for arm in ARMS
            }
        for arm, result in results.items():
            chosen = result["windows"][ONSET:]
            n = sum(c["n"] for c in chosen)
            rows.append(
                {
                    "seed": seed,
                    "arm": arm,
                    "detected_in_window": result["detected_in"],
                    "windows": len(chosen),
                    "requests": n,
                    "unseen_requests": sum(c["unseen"] for c in chosen),
                    "silent_failures_unseen": sum(c["silent_unseen"] for c in chosen),
                    "completed": sum(c["completed"] for c in chosen),
                    "escalated": sum(c["escalated"] for c in chosen),
                    "escalated_known": sum(c["escalated_known"] for c in chosen),
                    "quarantined_requests": sum(c["quarantined"] for c in chosen),
                    "quarantined_unseen": sum(c["quarantined_unseen"] for c in chosen),
                    "measured_task_completion": result["measured_task_completion"],
                    "zones": len(result["quarantined"]),
                }
            )
        detected = {arm: results[arm]["detected_in"] for arm in ARMS[1:]}
        print(f"seed {seed} done (first quarantine in window: {detected})", file=sys.stderr)

    table = []
    summary: dict[str, Any] = {}
    baseline_known = sum(r["escalated_known"] for r in rows if r["arm"] == ARMS[0])
    for arm in ARMS:
        chosen = [r for r in rows if r["arm"] == arm]
        n = sum(r["requests"] for r in chosen)
        unseen = sum(r["unseen_requests"] for r in chosen)
        silent = sum(r["silent_failures_unseen"] for r in chosen)
        known = n - unseen
        measured = [r["measured_task_completion"] for r in chosen]
        quarantined = sum(r["quarantined_requests"] for r in chosen)
        extra_known = sum(r["escalated_known"] for r in chosen) - baseline_known
        entry = {
            "requests": n,
            "unseen_requests": unseen,
            "silent_failures_unseen": silent,
            "silent_share_of_unseen": silent / unseen if unseen else None,
            "task_completion": sum(r["completed"] for r in chosen) / n if n else None,
            "measured_task_completion": float(np.mean(measured)) if measured else None,
            "escalation_rate": sum(r["escalated"] for r in chosen) / n if n else None,
            "extra_known_escalations": extra_known,
            "extra_known_escalation_rate": extra_known / known if known else None,
            "quarantined_rate": quarantined / n if n else None,
            "quarantined_unseen_share": (
                sum(r["quarantined_unseen"] for r in chosen) / quarantined if quarantined else None
            ),
            "first_quarantine_window": [r["detected_in_window"] for r in chosen],
        }
        summary[arm] = entry

        def pct(value: float | None) -> str:
            return "—" if value is None else f"{100 * value:.1f}%"

        firsts = entry["first_quarantine_window"]
        table.append(
            [
                arm,
                f"{silent} / {unseen}",
                pct(entry["silent_share_of_unseen"]),
                pct(entry["task_completion"]),
                pct(entry["measured_task_completion"]),
                pct(entry["escalation_rate"]),
                f"{extra_known:+d} ({pct(entry['extra_known_escalation_rate'])})",
                pct(entry["quarantined_unseen_share"]),
                ", ".join("—" if w is None else str(w + 1) for w in firsts),
            ]
        )
    h.print_table(
        f"quarantine on BANKING77 ({kind}), {seeds} seed(s) × {n_windows} windows of {WINDOW}, "
        f"{args.novel:.0%} unseen from window {ONSET + 1}; windows {ONSET + 1}–{n_windows}",
        [
            "arm",
            "silent unseen",
            "silent share",
            "completion",
            "measured",
            "escalated",
            "extra known escalations",
            "quarantined that are unseen",
            "first quarantine (window, per seed)",
        ],
        table,
        caption="silent unseen: wrong automatic answers on unseen intents nobody noticed; "
        "completion: exact from the replay's draws; measured: failwise.measure on the store "
        f"from window {ONSET + 1}; extra known escalations: known-intent requests escalated "
        "beyond the unmonitored arm's (share of known-intent requests)",
    )
    h.write_json(
        args.out,
        {
            "benchmark": NAME,
            "quick": args.quick,
            "environment": h.environment(),
            "settings": {
                "seeds": seeds,
                "windows": n_windows,
                "novel": args.novel,
                "horizon": args.horizon,
                "reach": args.reach,
                "features": kind,
                "window": WINDOW,
            },
            "summary": summary,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
