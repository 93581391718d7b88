"""A scripted keyboard-only reviewer in Chromium: resolutions per minute on the reviewer page.

Run ``python benchmarks/bench_reviewer.py`` (``--items N``, ``--quick`` for a smoke run).

A real ``failwise serve`` server (uvicorn, one worker, on loopback) over a SQLite store (or
the PostgreSQL of ``--postgres``) holds ``--items`` waiting escalations. Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) signs in with a reviewer key, opens the queue,
presses ``n`` to claim the first item and then ``1`` on every item page: each press
resolves the item with its most probable label and claims the next one (a form POST and
a redirect to the next item's page). The clock runs from the first ``1`` to the page after
the last resolution; every resolution is then checked in the store (resolved once, by the
reviewer, with the label shown first). Target: ≥ 120 resolutions per minute. The load
average is recorded: the machine may be shared.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h

NAME = "reviewer"
CHROMIUM = "/usr/bin/chromium"


def _run(store_url: str, n_items: int, policy_dir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    from tests.service.conftest import start_server
    from tests.service.seeding import LABELS, seed_waiting

    from failwise import store
    from failwise.service import Settings

    ids = seed_waiting(store_url, n_items, now=time.time(), prefix="bench")
    server = start_server(Settings(policy=policy_dir, store=store_url, labels=LABELS))
    shown: list[tuple[int, int]] = []
    latencies: list[float] = []
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{server.url}/sign-in?next=/review")
            page.fill("#key", server.keys["reviewer"])
            page.press("#key", "Enter")
            page.wait_for_url(f"{server.url}/review")
            with page.expect_navigation():
                page.keyboard.press("n")
            start = time.perf_counter()
            while "/review/items/" in page.url:
                item_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
                label = int(page.get_attribute('button.choice[data-key="1"]', "value") or "-9")
                began = time.perf_counter()
                with page.expect_navigation():
                    page.keyboard.press("1")
                latencies.append(time.perf_counter() - began)
                shown.append((item_id, label))
            elapsed = time.perf_counter() - start
            browser.close()
    finally:
        server.stop()
    with store.open(store_url) as events:
        correct = all(
            (item.state, item.label) == ("resolved", label)
            for item_id, label in shown
            for item in [events.queue.get(item_id)]
        )
        resolved_events = sum(1 for e in events.iter_events() if e.kind == "escalation_resolved")
    return {
        "items": n_items,
        "resolved": len(shown),
        "all_seeded_resolved": sorted(i for i, _ in shown) == sorted(ids),
        "each_resolved_once_with_the_label_shown": correct and resolved_events == len(shown),
        "elapsed_s": elapsed,
        "per_minute": 60.0 * len(shown) / elapsed if elapsed > 0 else float("nan"),
        "latency_s": {
            "median": statistics.median(latencies),
            "p95": sorted(latencies)[max(0, round(0.95 * len(latencies)) - 1)],
            "max": max(latencies),
        },
        "latencies_s": latencies,
    }


def main() -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=1)
    parser.add_argument("--items", type=int, default=300, help="waiting escalations")
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL instead of SQLite")
    args = parser.parse_args()
    h.ensure_failwise_importable()
    if str(h.ROOT) not in sys.path:
        sys.path.insert(0, str(h.ROOT))
    if not Path(CHROMIUM).exists():
        print(f"bench_reviewer needs Chromium at {CHROMIUM}")
        return 1
    n_items = 15 if args.quick else args.items
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="failwise-bench-reviewer-") as tmp:
        policy_dir = _policy(Path(tmp))
        if args.postgres:
            url, backend = args.postgres, "postgresql"
        else:
            url, backend = f"sqlite:///{Path(tmp) / 'events.db'}", "sqlite"
        result = _run(url, n_items, policy_dir)
    load_after = os.getloadavg()
    h.print_table(
        "Keyboard-only reviewer in Chromium (press 1 on each item: resolve and claim the next)",
        ["backend", "resolved", "seconds", "per minute", "median / p95 per item", "checked"],
        [
            [
                backend,
                str(result["resolved"]),
                f"{result['elapsed_s']:.1f}",
                f"{result['per_minute']:.0f}",
                f"{h.format_seconds(result['latency_s']['median'])} / "
                f"{h.format_seconds(result['latency_s']['p95'])}",
                str(result["each_resolved_once_with_the_label_shown"]),
            ]
        ],
        caption=(
            f"target: ≥ 120 resolutions per minute; load average {load_before[0]:.2f} before, "
            f"{load_after[0]:.2f} after, {os.cpu_count()} CPUs"
        ),
    )
    payload = {
        "name": NAME,
        "quick": args.quick,
        "backend": backend,
        **result,
        "target_per_minute": 120,
        "load_average": {"before": load_before, "after": load_after},
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


def _policy(folder: Path) -> Path:
    import numpy as np

    from failwise import Policy, artifacts

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.4), size=3000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9, clarify_max_set_size=2).fit(proba, y)
    artifacts.save(policy, folder / "policy")
    return folder / "policy"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
