"""Queue changes for open pages: how soon a change reaches a page, and what polling costs.

Run ``python benchmarks/bench_queue_push.py`` (``--postgres URL`` adds PostgreSQL, ``--quick``
for a smoke run).

A real ``failwise serve --workers 2`` on loopback, over a SQLite store and (with
``--postgres``) a fresh schema on that server:

- **delay**: ``--changes`` times, an admin claims a waiting item through a new connection
  (so through either worker) while one client polls ``GET /v1/queue:changes`` every 10 ms
  on its own connection; the delay runs from the claim's 200 to the first answer that
  holds it. A page polls every ``poll_ms`` (1.5 s), so what a person sees is this delay
  plus up to one poll interval.
- **cost**: a closed loop of ``--concurrency`` clients for ``--seconds`` on
  ``GET /v1/queue:changes?after=CURSOR`` with nothing new (what every open page asks), and
  on ``GET /livez`` (no auth, no store: the same-run baseline), interleaved ``--repeats``
  times; the ratio of their medians, and how many open pages the measured rate could keep
  polling every 1.5 s.

The load average is recorded: the machine may be shared, so the ratio is the figure to read.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _harness as h
import _load

NAME = "queue_push"
POLL_MS = 1500


def _policy(folder: Path) -> Path:
    import numpy as np

    from failwise import Policy, artifacts

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.4), size=2000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    artifacts.save(Policy(target_risk=0.2).fit(proba, y), folder / "policy")
    return folder / "policy"


def _seed(url: str, n: int) -> list[int]:
    from failwise import store

    ids: list[int] = []
    with store.open(url) as opened:
        for i in range(n):
            task_id = f"push-{uuid.uuid4().hex[:10]}-{i}"
            request = store.QueueRequest(task_id, "escalation", "benchmark", priority=0.5)
            ids += opened.record_decision(task_id, {"action": "escalate"}, enqueue=[request])
    return ids


def _delays(server: Any, ids: list[int]) -> list[float]:
    import httpx

    delays = []
    with server.client("viewer") as poller:
        cursor = poller.get("/v1/queue:changes").json()["cursor"]
        for item_id in ids:
            with server.client("admin") as writer:
                claimed = writer.post(f"/v1/queue/{item_id}/claim", json={})
            acknowledged = time.perf_counter()
            if claimed.status_code != 200:
                raise RuntimeError(f"claim {item_id}: {claimed.status_code} {claimed.text}")
            seen = False
            while not seen and time.perf_counter() - acknowledged < 30:
                try:
                    body = poller.get("/v1/queue:changes", params={"after": cursor}).json()
                except httpx.HTTPError:
                    continue
                cursor = body["cursor"]
                seen = any(
                    c["item_id"] == item_id and c["change"] == "claimed" for c in body["changes"]
                )
                if not seen:
                    time.sleep(0.01)
            delays.append(time.perf_counter() - acknowledged if seen else float("inf"))
    return delays


def _cost(server: Any, *, seconds: float, concurrency: int, repeats: int) -> dict[str, Any]:
    with server.client("viewer") as client:
        cursor = client.get("/v1/queue:changes").json()["cursor"]
    auth = {"Authorization": f"Bearer {server.keys['viewer']}"}
    runs: dict[str, list[dict[str, Any]]] = {"changes": [], "livez": []}
    for _ in range(repeats):
        for name, path, headers in (
            ("livez", "/livez", {}),
            ("changes", f"/v1/queue:changes?after={cursor}", auth),
        ):
            result = _load.closed_loop(
                f"{server.url}{path}",
                method="GET",
                headers=headers,
                concurrency=concurrency,
                duration_s=seconds,
            )
            runs[name].append(result.summary())
    medians = {
        name: statistics.median(r["ok_per_s"] for r in results) for name, results in runs.items()
    }
    return {
        "runs": runs,
        "median_ok_per_s": medians,
        "ratio_changes_to_livez": h.ratio(medians["changes"], medians["livez"]),
        "pages_kept_live": medians["changes"] * POLL_MS / 1000.0,
        "non_2xx": sum(r["non_2xx"] + r["errors"] for rs in runs.values() for r in rs),
    }


def _backend(url: str, policy: Path, args: Any) -> dict[str, Any]:
    from tests.service.conftest import serve

    ids = _seed(url, args.changes)
    server = serve(url, policy, workers=2)
    try:
        load_before = os.getloadavg()[0]
        delays = _delays(server, ids)
        cost = _cost(
            server, seconds=args.seconds, concurrency=args.concurrency, repeats=args.repeats
        )
        load_after = os.getloadavg()[0]
    finally:
        server.stop()
    ordered = sorted(delays)
    return {
        "changes": len(delays),
        "delay_s": {
            "median": statistics.median(ordered),
            "p95": ordered[max(0, round(0.95 * len(ordered)) - 1)],
            "max": ordered[-1],
        },
        "delays_s": delays,
        **cost,
        "load_average": {"before": load_before, "after": load_after},
    }


def main() -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=3)
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL to add")
    parser.add_argument("--changes", type=int, default=40, help="claims timed for the delay")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each cost run")
    parser.add_argument("--concurrency", type=int, default=16, help="clients of the cost runs")
    args = parser.parse_args()
    h.ensure_failwise_importable()
    if str(h.ROOT) not in sys.path:
        sys.path.insert(0, str(h.ROOT))
    args.repeats = h.resolve_repeats(args, default_repeats=3)
    if args.quick:
        args.changes, args.seconds = 5, 1.0
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="failwise-bench-push-") as tmp:
        policy = _policy(Path(tmp))
        results["sqlite"] = _backend(f"sqlite:///{Path(tmp) / 'events.db'}", policy, args)
        if args.postgres:
            from tests.store.conftest import temporary_schema

            with temporary_schema(args.postgres, "failwise_bench_push") as url:
                results["postgresql"] = _backend(url, policy, args)
    rows = []
    for backend, r in results.items():
        rows.append(
            [
                backend,
                str(r["changes"]),
                f"{h.format_seconds(r['delay_s']['median'])} / "
                f"{h.format_seconds(r['delay_s']['p95'])} / "
                f"{h.format_seconds(r['delay_s']['max'])}",
                f"{r['median_ok_per_s']['changes']:.0f}",
                f"{r['median_ok_per_s']['livez']:.0f}",
                h.format_ratio(r["ratio_changes_to_livez"]),
                f"{r['pages_kept_live']:.0f}",
                str(r["non_2xx"]),
                f"{r['load_average']['before']:.1f} → {r['load_average']['after']:.1f}",
            ]
        )
    h.print_table(
        "Queue changes for open pages (failwise serve --workers 2)",
        [
            "backend",
            "claims",
            "delay median / p95 / max",
            "changes req/s",
            "livez req/s",
            "ratio",
            "pages at 1.5 s",
            "non-2xx",
            "load",
        ],
        rows,
        caption=(
            f"delay: from a claim's 200 to a 10 ms poller seeing it (a page adds up to "
            f"{POLL_MS} ms); req/s: median of {args.repeats} closed-loop runs of "
            f"{args.seconds:g} s, {args.concurrency} clients; {os.cpu_count()} CPUs"
        ),
    )
    payload = {
        "name": NAME,
        "quick": args.quick,
        "results": results,
        "poll_ms": POLL_MS,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
