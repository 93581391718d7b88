"""Slice finding on synthetic labelled tasks with a planted slice, beside SliceLine.

Each setting draws ``n`` tasks (1,500 to 20,000) with three to eight categorical context
columns of two to six values and one numeric column, plants a slice of one or two
predicates whose failure rate is three to five times the base rate (3 to 12 %), and asks
:func:`failwise.monitor.find_slices` for its top slices (``min_size=20``, ``max_level=2``,
Holm at 5 %). It records whether the planted slice is the top-1, whether the top-K by
score equals the ``sliceline`` package's (same ``alpha=0.95``, ``min_sup``, ``max_l``; the
``peers`` extra) and the time of both. A second run without a planted slice counts how
often anything is reported (the family-wise false-alarm rate).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import _harness as h

h.ensure_failwise_importable()

NAME = "slices"
K = 5


def setting(seed: int, planted: bool = True) -> tuple[dict[str, Any], Any, set[Any]]:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1500, 3000, 6000, 20000]))
    n_columns = int(rng.integers(3, 9))
    context: dict[str, Any] = {}
    for c in range(n_columns):
        levels = int(rng.integers(2, 7))
        context[f"c{c}"] = rng.choice([f"v{i}" for i in range(levels)], size=n)
    context["amount"] = rng.lognormal(3.0, 1.0, size=n)
    mask = np.ones(n, dtype=bool)
    truth = set()
    if planted:
        for c in rng.choice(n_columns, size=int(rng.integers(1, 3)), replace=False):
            value = str(context[f"c{c}"][0])
            mask &= context[f"c{c}"] == value
            truth.add((f"c{c}", f"== {value!r}"))
    else:
        mask[:] = False
    base = float(rng.uniform(0.03, 0.12))
    failed = rng.random(n) < np.where(mask, base * float(rng.uniform(3.0, 5.0)), base)
    return context, failed, truth


def main(argv: list[str] | None = None) -> int:
    from failwise.monitor import find_slices

    parser = h.build_parser(NAME, __doc__ or "", default_repeats=1)
    parser.add_argument("--settings", type=int, default=50)
    args = parser.parse_args(argv)
    settings = 6 if args.quick else args.settings
    sliceline, why = h.optional_import("sliceline", extra="peers")
    rows = []
    for seed in range(args.seed, args.seed + settings):
        context, failed, truth = setting(seed)
        start = time.perf_counter()
        found = find_slices(context, failed, min_size=20)
        ours_s = time.perf_counter() - start
        row: dict[str, Any] = {
            "seed": seed,
            "n": int(failed.size),
            "columns": len(context),
            "planted_top1": bool(found) and set(found[0].predicates) == truth,
            "reported": len(found),
            "seconds_find_slices": ours_s,
        }
        if sliceline is not None:
            categorical = {k: v for k, v in context.items() if k != "amount"}
            codes = np.stack(
                [np.unique(v, return_inverse=True)[1] for v in categorical.values()], 1
            )
            start = time.perf_counter()
            finder = sliceline.Slicefinder(alpha=0.95, k=K, max_l=2, min_sup=20, verbose=False)
            finder.fit(codes, failed.astype(float))
            row["seconds_sliceline"] = time.perf_counter() - start
            theirs = [
                {
                    (name, f"== {str(np.unique(values)[code])!r}")
                    for (name, values), code in zip(categorical.items(), r, strict=True)
                    if code is not None
                }
                for r in finder.top_slices_
            ]
            ours = find_slices(categorical, failed, min_size=20, k=K, alpha=1.0)
            row["same_top_k_as_sliceline"] = [set(s.predicates) for s in ours] == theirs
        rows.append(row)
    nulls = []
    for seed in range(10_000 + args.seed, 10_000 + args.seed + settings):
        context, failed, _ = setting(seed, planted=False)
        nulls.append(bool(find_slices(context, failed, min_size=20)))
    top1 = float(np.mean([r["planted_top1"] for r in rows]))
    same = (
        float(np.mean([r["same_top_k_as_sliceline"] for r in rows]))
        if sliceline is not None
        else None
    )
    false_alarm = float(np.mean(nulls))
    table = [
        ["planted slice is top-1", f"{top1:.0%}", "≥ 90 %", "met" if top1 >= 0.9 else "NOT met"],
        [
            f"top-{K} equal to sliceline's",
            "—" if same is None else f"{same:.0%}",
            "100 %",
            why if same is None else ("met" if same == 1.0 else "NOT met"),
        ],
        [
            "any slice reported without a planted one",
            f"{false_alarm:.0%}",
            "≤ 5 % (Holm)",
            "met" if false_alarm <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / settings) else "NOT met",
        ],
        [
            "median seconds, failwise / sliceline",
            f"{np.median([r['seconds_find_slices'] for r in rows]):.3f} / "
            + (
                f"{np.median([r['seconds_sliceline'] for r in rows]):.3f}"
                if sliceline is not None
                else "—"
            ),
            "",
            "",
        ],
    ]
    h.print_table(
        f"find_slices on {settings} synthetic settings (1,500-20,000 tasks)",
        ["measure", "value", "target", ""],
        table,
        caption="sliceline runs on the categorical columns only (it takes pre-binned codes); "
        "its comparison uses alpha=1 (no significance filter) for failwise",
    )
    path = h.write_json(
        args.out,
        {
            "name": NAME,
            "settings": settings,
            "planted_top1": top1,
            "same_top_k_as_sliceline": same,
            "null_any_reported": false_alarm,
            "rows": rows,
            "environment": h.environment(),
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
