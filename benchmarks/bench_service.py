"""The HTTP service under load: decisions, batches, API-key cost and reviewer actions.

Run ``python benchmarks/bench_service.py`` (add ``--quick`` for a smoke run). Every server
is a real ``uvicorn`` with 2 worker processes on loopback; the load comes from
``benchmarks/_load.py`` (``wrk`` for maximum throughput, the asyncio driver for open-loop
latencies and the reviewers). The driver's own CPU is recorded next to each case: on a
2-core machine it is taken from the server.

Cases, all in one run so that they are judged by ratios on a shared, noisy machine:

- bare: a bare FastAPI app whose ``POST /v1/decisions`` parses the service's request model
  (``_service_apps.bare_app``): the same-run baseline of FastAPI + uvicorn alone.
- decisions/{sqlite,postgresql}: ``POST /v1/decisions`` of ``failwise serve`` (the fitted
  3-class policy of the tests, a realistic mix of answers, clarifications and escalations;
  every 2xx is durable, escalations with their queue item). Targets: ≥ 1,500 req/s and
  ≥ 0.3× bare; at 300 req/s offered (open loop): p50 ≤ 10 ms, p99 ≤ 50 ms, 0 non-2xx.
- batch/{sqlite,postgresql}: ``POST /v1/decisions:batch`` of 1,000 items, 8 in flight
  (4 per worker). Each worker listens on a socket of its own (``SO_REUSEPORT``) and the
  kernel places each connection by a hash of its addresses, so with 8 connections both
  workers have some (all 8 on one: p = 1/128). Target: ≥ 20,000 decisions/s. Recorded
  with it: the server's CPU per batch and each worker's CPU seconds, which show whether
  both workers served (a worker that served no connection shows ~0 s). "batch, 2 in
  flight" is the same with 2 connections, one per worker at best: the hash puts both on
  one worker half of the time, and that worker then serves them in turn.
- auth: the service's app with two routes that only parse the request model, one open and
  one behind ``require("service")`` (``_service_apps.auth_app``), in alternating rounds
  (7 of 4 s each; the order flips every round, so load drift cancels). Target: the median
  of the rounds' API-key ÷ open ratios ≥ 0.9.
- reviewers/{sqlite,postgresql}: 16 concurrent reviewers (each its own key), each looping
  claim → resolve → claim next over a queue of escalations. Target: p95 ≤ 50 ms server
  side — the server's own Prometheus histogram (the share of claims and resolves answered
  within its 50 ms bucket) and, as an upper bound, the client-side p95 on loopback.

PostgreSQL is the server named by ``$FAILWISE_BENCH_POSTGRES_URL`` (else
``$FAILWISE_TEST_POSTGRES_URL``, else a throw-away one that ``scripts/postgres`` starts);
each case gets a fresh schema. The 1-minute load average is recorded before every case.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

import _harness as h
import _load

NAME = "service"
N_CLASSES = 3
WORKERS = 2
FULL = {
    "duration_s": 10.0,
    "connections": 32,
    "batch_size": 1000,
    "queue_items": 6000,
    "auth_rounds": 7,
    "auth_round_s": 4.0,
}
QUICK = {
    "duration_s": 1.5,
    "connections": 8,
    "batch_size": 100,
    "queue_items": 300,
    "auth_rounds": 3,
    "auth_round_s": 0.75,
}
OFFERED_RATE = 300.0
#: Batches in flight in the target case (4 per worker), and in the one-per-worker case.
BATCH_IN_FLIGHT = (8, 2)
REVIEWERS = 16
TARGETS = {
    "decisions_per_s": 1500.0,
    "vs_bare": 0.3,
    "p50_ms": 10.0,
    "p99_ms": 50.0,
    "batch_decisions_per_s": 20_000.0,
    "auth_share": 0.9,
    "reviewer_p95_ms": 50.0,
}
SRC = h.ROOT / "src"
HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- set-up


def _policy(folder: Path) -> Path:
    """A policy fitted on 3-class scores (the service tests' policy) saved under ``folder``."""
    from failwise import Policy, artifacts

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(N_CLASSES, 0.4), size=3000)
    y = np.array([rng.choice(N_CLASSES, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9, clarify_max_set_size=2).fit(proba, y)
    path = folder / "policy"
    artifacts.save(policy, path)
    return path


def _bodies(count: int, seed: int) -> list[bytes]:
    """Decision requests with the score vectors of the policy's own distribution."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(N_CLASSES, 0.4), size=count)
    return [
        json.dumps({"scores": [round(float(p), 6) for p in row]}, separators=(",", ":")).encode()
        for row in proba
    ]


def _batch_body(size: int, seed: int) -> bytes:
    items = [json.loads(body) for body in _bodies(size, seed)]
    return json.dumps({"items": items}, separators=(",", ":")).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def _postgres() -> Iterator[tuple[str | None, str]]:
    for variable in ("FAILWISE_BENCH_POSTGRES_URL", "FAILWISE_TEST_POSTGRES_URL"):
        given = os.environ.get(variable, "").strip()
        if given:
            yield given, ""
            return
    script = h.ROOT / "scripts" / "postgres"
    folder = tempfile.mkdtemp(prefix="failwise-postgres-bench-")
    os.rmdir(folder)
    done = subprocess.run(
        ["bash", str(script), "start", folder],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        shutil.rmtree(folder, ignore_errors=True)
        yield None, f"scripts/postgres start exited {done.returncode}: {done.stderr[-300:]}"
        return
    try:
        yield lines[-1], ""
    finally:
        subprocess.run(
            ["bash", str(script), "stop", folder], capture_output=True, timeout=120, check=False
        )


@contextmanager
def _fresh_store(backend: str, server: str | None) -> Iterator[str]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="failwise-bench-service-")
        try:
            yield f"sqlite:///{folder}/events.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    if server is None:
        raise RuntimeError("no PostgreSQL server")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    try:
        yield f"{server}{'&' if '?' in server else '?'}{option}"
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@dataclass
class _Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def _serve(command: list[str], env: dict[str, str]) -> Iterator[_Server]:
    """Run ``command`` (a uvicorn with 2 workers) until it answers ``/livez`` (or ``/docs``)."""
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="failwise-bench-server-", suffix=".log")[1])
    full = [*command, "--port", str(port)]
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(SRC), str(HERE), environment.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            full, env=environment, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}: {log.read_text()[-800:]}")
            if _get_status(f"{url}/livez") == 200 or _get_status(f"{url}/docs") == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in 120 s: {log.read_text()[-800:]}")
            time.sleep(0.2)
        _warm_up(url)
        yield _Server(url, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        log.unlink(missing_ok=True)


def _get_status(url: str) -> int | None:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def _warm_up(url: str) -> None:
    """A second of requests to every worker's ``/livez`` (imports, first connections)."""
    _load.closed_loop(f"{url}/livez", concurrency=4, duration_s=1.0, method="GET")


def _failwise_serve(policy: Path, store_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "failwise.cli",
        "serve",
        "--policy",
        str(policy),
        "--store",
        store_url,
        "--workers",
        str(WORKERS),
        "--host",
        "127.0.0.1",
    ]


def _baseline(app: str) -> list[str]:
    return [
        sys.executable,
        str(HERE / "_service_apps.py"),
        app,
        "--host",
        "127.0.0.1",
        "--workers",
        str(WORKERS),
    ]


def _key(store_url: str, role: str, name: str) -> str:
    from failwise import store

    with store.open(store_url) as opened:
        token: str = opened.keys.create(role, name).token
    return token


# --------------------------------------------------------------------------- cases


def _row(result: _load.LoadResult, **extra: Any) -> dict[str, Any]:
    return {**result.summary(), **extra}


def _throughput(url: str, bodies: list[bytes], sizes: dict[str, Any], token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if _load.wrk_available():
        return _load.run_wrk(
            url,
            bodies=bodies,
            duration_s=sizes["duration_s"],
            connections=sizes["connections"],
            headers=headers,
        )
    body_list = bodies
    return _load.closed_loop(
        url,
        concurrency=sizes["connections"],
        duration_s=sizes["duration_s"],
        body=lambda i: body_list[i % len(body_list)],
        headers=headers,
    )


def _open_loop(url: str, bodies: list[bytes], sizes: dict[str, Any], token: str) -> Any:
    return _load.open_loop(
        url,
        rate=OFFERED_RATE,
        duration_s=sizes["duration_s"],
        body=lambda i: bodies[i % len(bodies)],
        headers={"Authorization": f"Bearer {token}"},
    )


def _histogram(url: str, token: str) -> dict[tuple[str, str], dict[float, float]]:
    """The server's request-duration histogram: (method, route) → {le: cumulative count}."""
    import httpx

    text = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    ).text
    pattern = re.compile(
        r"^failwise_http_request_duration_seconds_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$"
    )
    out: dict[tuple[str, str], dict[float, float]] = {}
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        key = (labels.get("method", ""), labels.get("route", ""))
        out.setdefault(key, {})[le] = out.get(key, {}).get(le, 0.0) + float(match["value"])
    return out


def _share_within(
    before: dict[tuple[str, str], dict[float, float]],
    after: dict[tuple[str, str], dict[float, float]],
    routes: list[str],
    limit_s: float,
) -> tuple[float | None, int]:
    """Share of requests to ``routes`` answered within ``limit_s`` (a bucket bound)."""
    within = total = 0.0
    for (method, route), buckets in after.items():
        if method != "POST" or route not in routes:
            continue
        old = before.get((method, route), {})
        total += buckets[float("inf")] - old.get(float("inf"), 0.0)
        within += buckets.get(limit_s, 0.0) - old.get(limit_s, 0.0)
    return (within / total if total else None), int(total)


async def _reviewers(url: str, tokens: list[str], duration_s: float) -> dict[str, Any]:
    """Each reviewer loops claim → resolve → claim next until the time is up or the queue
    is empty; latencies of every action, client side."""
    clients = [_load.DRIVERS["raw"](url, 1, 10.0, {"Authorization": f"Bearer {t}"}) for t in tokens]
    claims: list[float] = []
    resolves: list[float] = []
    statuses: dict[int, int] = {}
    end = time.perf_counter() + duration_s

    async def reviewer(client: Any) -> None:
        while time.perf_counter() < end:
            start = time.perf_counter()
            status, data = await client.request("POST", f"{url}/v1/queue:claim", b"{}")
            claims.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
            item = json.loads(data) if status == 200 else None
            if not item:
                return
            body = json.dumps({"label": 0, "note": "benchmark"}).encode()
            start = time.perf_counter()
            status, _ = await client.request("POST", f"{url}/v1/queue/{item['id']}/resolve", body)
            resolves.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    cpu = time.process_time()
    try:
        await asyncio.gather(*(reviewer(c) for c in clients))
    finally:
        for client in clients:
            await client.close()
    wall = time.perf_counter() - started
    every = np.asarray(claims + resolves)
    return {
        "reviewers": len(tokens),
        "duration_s": wall,
        "claims": len(claims),
        "resolves": len(resolves),
        "resolutions_per_s": len(resolves) / wall if wall else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "claim_p50_ms": float(np.percentile(claims, 50) * 1e3) if claims else None,
        "claim_p95_ms": float(np.percentile(claims, 95) * 1e3) if claims else None,
        "resolve_p50_ms": float(np.percentile(resolves, 50) * 1e3) if resolves else None,
        "resolve_p95_ms": float(np.percentile(resolves, 95) * 1e3) if resolves else None,
        "client_p95_ms": float(np.percentile(every, 95) * 1e3) if every.size else None,
        "driver_cpu_s": time.process_time() - cpu,
    }


def _fill_queue(url: str, token: str, count: int) -> None:
    """``count`` escalations, through the API (batches of low-confidence scores)."""
    import httpx

    low = [0.34, 0.33, 0.33]
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120.0
    ) as client:
        for start in range(0, count, 500):
            items = [{"scores": low} for _ in range(min(500, count - start))]
            response = client.post("/v1/decisions:batch", json={"items": items})
            response.raise_for_status()


def _backend_cases(
    backend: str,
    server: str | None,
    policy: Path,
    bodies: list[bytes],
    sizes: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with _fresh_store(backend, server) as store_url:
        token = _key(store_url, "service", "bench")
        admin = _key(store_url, "admin", "bench-admin")
        reviewers = [_key(store_url, "reviewer", f"reviewer-{i}") for i in range(REVIEWERS)]
        with _serve(_failwise_serve(policy, store_url), {}) as live:
            url = f"{live.url}/v1/decisions"
            out[f"decisions/{backend}"] = _row(_throughput(url, bodies, sizes, token))
            out[f"decisions at {OFFERED_RATE:.0f}/s/{backend}"] = _row(
                _open_loop(url, bodies, sizes, token)
            )
            batch = _batch_body(sizes["batch_size"], seed + 1)
            many, few = BATCH_IN_FLIGHT
            out[f"batch/{backend}"] = _batch_case(live, token, batch, sizes, many)
            out[f"batch, {few} in flight/{backend}"] = _batch_case(live, token, batch, sizes, few)
            _fill_queue(live.url, token, sizes["queue_items"])
            before = _histogram(live.url, admin)
            load = _load.load_average()
            reviewed = asyncio.run(_reviewers(live.url, reviewers, sizes["duration_s"]))
            after = _histogram(live.url, admin)
            routes = ["/v1/queue:claim", "/v1/queue/{item_id}/resolve"]
            share, counted = _share_within(before, after, routes, 0.05)
            out[f"reviewers/{backend}"] = {
                **reviewed,
                "server_share_within_50ms": share,
                "server_requests_counted": counted,
                "load_average_1min": load,
            }
    return out


def _worker_cpu_s(supervisor: int) -> dict[int, float]:
    """CPU seconds (user + system) of each child process of ``supervisor`` (the workers, and
    multiprocessing's resource tracker)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == supervisor:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _batch_case(
    live: _Server, token: str, batch: bytes, sizes: dict[str, Any], in_flight: int
) -> dict[str, Any]:
    """``in_flight`` batches in flight for ``duration_s``, with the server's CPU per batch
    and each worker's share of it (a worker that served no connection shows as 0)."""
    before = _worker_cpu_s(live.process.pid)
    result = _load.closed_loop(
        f"{live.url}/v1/decisions:batch",
        concurrency=in_flight,
        duration_s=sizes["duration_s"],
        body=lambda i: batch,
        headers={"Authorization": f"Bearer {token}"},
        timeout_s=120.0,
    )
    after = _worker_cpu_s(live.process.pid)
    spent = sorted((after[pid] - before.get(pid, 0.0) for pid in after), reverse=True)
    return _row(
        result,
        batch_size=sizes["batch_size"],
        decisions_per_s=result.ok_per_s * sizes["batch_size"],
        in_flight=in_flight,
        worker_cpu_s=spent[:WORKERS],
        server_cpu_ms_per_batch=1000 * sum(spent) / result.ok if result.ok else None,
    )


def _baseline_cases(bodies: list[bytes], sizes: dict[str, Any], server_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with _serve(_baseline("bare_app"), {}) as bare:
        out["bare"] = _row(_throughput(f"{bare.url}/v1/decisions", bodies, sizes, None))
    from failwise.service import SETTINGS_ENV, Settings

    token = _key(server_url, "service", "bench-auth")
    env = {SETTINGS_ENV: Settings(store=server_url, workers=WORKERS).to_env()}
    with _serve(_baseline("auth_app"), env) as app:
        out.update(_auth_rounds(app.url, bodies, sizes, token))
    return out


def _auth_rounds(
    url: str, bodies: list[bytes], sizes: dict[str, Any], token: str
) -> dict[str, Any]:
    """The open and the API-key route in alternating rounds (open first in even rounds, key
    first in odd ones), so that both see the same load; judged by the median of the rounds'
    ratios. The two rows are those of the median round."""
    rounds = {**sizes, "duration_s": sizes["auth_round_s"]}
    pairs = []
    for i in range(sizes["auth_rounds"]):
        order = ["open", "key"] if i % 2 == 0 else ["key", "open"]
        results = {}
        for arm in order:
            path, key = ("/bench/open", None) if arm == "open" else ("/bench/auth", token)
            results[arm] = _row(_throughput(f"{url}{path}", bodies, rounds, key))
        pairs.append(results)
    ratios = [h.ratio(p["key"]["ok_per_s"], p["open"]["ok_per_s"]) for p in pairs]
    known = sorted((r, i) for i, r in enumerate(ratios) if r is not None)
    middle = known[len(known) // 2][1] if known else 0
    summary = {
        "rounds": len(pairs),
        "round_s": sizes["auth_round_s"],
        "ratio_per_round": ratios,
        "ratio_median": float(np.median([r for r, _ in known])) if known else None,
        "open_ok_per_s_per_round": [p["open"]["ok_per_s"] for p in pairs],
        "key_ok_per_s_per_round": [p["key"]["ok_per_s"] for p in pairs],
    }
    return {
        "auth/open route": {**pairs[middle]["open"], "median_round": middle},
        "auth/API key": {**pairs[middle]["key"], "median_round": middle, **summary},
    }


def _targets(cases: dict[str, Any]) -> dict[str, bool | None]:
    def get(name: str, key: str) -> float | None:
        case = cases.get(name)
        return None if case is None or "error" in case else case.get(key)

    bare = get("bare", "ok_per_s")
    out: dict[str, bool | None] = {}
    for backend in ("sqlite", "postgresql"):
        rate = get(f"decisions/{backend}", "ok_per_s")
        out[f"decisions/{backend} ≥ 1,500 req/s"] = (
            None if rate is None else rate >= TARGETS["decisions_per_s"]
        )
        out[f"decisions/{backend} ≥ 0.3× bare"] = (
            None if rate is None or not bare else rate / bare >= TARGETS["vs_bare"]
        )
        name = f"decisions at {OFFERED_RATE:.0f}/s/{backend}"
        p50, p99, bad = get(name, "p50_ms"), get(name, "p99_ms"), get(name, "non_2xx")
        errors = get(name, "errors")
        out[f"{name}: p50 ≤ 10 ms, p99 ≤ 50 ms, 0 non-2xx"] = (
            None
            if p50 is None or p99 is None
            else p50 <= TARGETS["p50_ms"] and p99 <= TARGETS["p99_ms"] and bad == 0 and errors == 0
        )
        batch = get(f"batch/{backend}", "decisions_per_s")
        out[f"batch/{backend} ≥ 20,000 decisions/s"] = (
            None if batch is None else batch >= TARGETS["batch_decisions_per_s"]
        )
        share = get(f"reviewers/{backend}", "server_share_within_50ms")
        out[f"reviewers/{backend}: p95 ≤ 50 ms server side"] = (
            None if share is None else share >= 0.95
        )
    share = get("auth/API key", "ratio_median")
    out["API-key auth costs ≤ 10 % (median of interleaved rounds)"] = (
        None if share is None else share >= TARGETS["auth_share"]
    )
    return out


def _ratios(cases: dict[str, Any]) -> dict[str, float | None]:
    bare = cases.get("bare", {}).get("ok_per_s")
    out: dict[str, float | None] = {}
    for backend in ("sqlite", "postgresql"):
        rate = cases.get(f"decisions/{backend}", {}).get("ok_per_s")
        out[f"decisions/{backend} ÷ bare"] = h.ratio(rate, bare)
    out["API key ÷ open route (median round)"] = cases.get("auth/API key", {}).get("ratio_median")
    return out


def _http_stack() -> dict[str, str | None]:
    """The versions of the optional packages uvicorn and the service pick up when present."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for package in ("uvicorn", "httptools", "uvloop", "orjson"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _table(cases: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, case in cases.items():
        if "error" in case:
            rows.append([name, "failed", "—", "—", "—", "—", "—", "—", case["error"][:40]])
            continue
        if name.startswith("reviewers/"):
            share = case["server_share_within_50ms"]
            rows.append(
                [
                    name,
                    f"{_fmt(case['resolutions_per_s'])} res/s",
                    _fmt(case["claim_p50_ms"], 1),
                    "—",
                    f"p95 {_fmt(case['client_p95_ms'], 1)}",
                    str(sum(v for k, v in case["statuses"].items() if not k.startswith("2"))),
                    _fmt(100 * case["driver_cpu_s"] / case["duration_s"]),
                    _fmt(case["load_average_1min"], 2),
                    f"server ≤50 ms: {_fmt(None if share is None else 100 * share, 1)} %",
                ]
            )
            continue
        per_s = (
            f"{_fmt(case['decisions_per_s'])} dec/s"
            if "decisions_per_s" in case
            else f"{_fmt(case['ok_per_s'])} req/s"
        )
        rows.append(
            [
                name,
                per_s,
                _fmt(case["p50_ms"], 1),
                _fmt(case["p90_ms"], 1),
                _fmt(case["p99_ms"], 1),
                str(case["non_2xx"] + case["errors"]),
                _fmt(100 * (case["driver_cpu_share"] or 0.0)),
                _fmt(case["load_average_1min"], 2),
                f"{case['driver']} {case['mode']}"
                + (f" @{case['offered_rate']:.0f}/s" if case["offered_rate"] else "")
                + _server_cpu(case),
            ]
        )
    return rows


def _server_cpu(case: dict[str, Any]) -> str:
    """``; server 84 ms CPU/batch, workers 4.2 + 4.1 s`` for a batch case."""
    if case.get("server_cpu_ms_per_batch") is None:
        return ""
    workers = " + ".join(f"{spent:.1f}" for spent in case["worker_cpu_s"])
    return f"; server {case['server_cpu_ms_per_batch']:.0f} ms CPU/batch, workers {workers} s"


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=1)
    parser.add_argument(
        "--only", default="", help="run only the cases whose group (bare, sqlite, ...) is this"
    )
    args = parser.parse_args(argv)
    h.ensure_failwise_importable()
    sizes = QUICK if args.quick else FULL
    bodies = _bodies(512, args.seed)
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="failwise-bench-policy-") as folder:
        policy = _policy(Path(folder))
        with _postgres() as (server, missing):
            groups = ["baseline", "sqlite", "postgresql"]
            for group in groups:
                if args.only and args.only != group:
                    continue
                try:
                    if group == "baseline":
                        with _fresh_store("sqlite", None) as url:
                            cases.update(_baseline_cases(bodies, sizes, url))
                    elif group == "postgresql" and server is None:
                        cases["decisions/postgresql"] = {"error": f"unavailable: {missing}"}
                    else:
                        cases.update(
                            _backend_cases(group, server, policy, bodies, sizes, args.seed)
                        )
                except Exception as error:  # one failing group must not stop the others
                    cases[f"{group} (failed)"] = {"error": f"{type(error).__name__}: {error}"}
    targets = _targets(cases)
    ratios = _ratios(cases)
    h.print_table(
        f"failwise serve, {WORKERS} workers, {sizes['duration_s']:.0f} s per case"
        f" (load average before the run: {_fmt(_load.load_average(), 2)}; "
        + ", ".join(f"{k} {v or 'absent'}" for k, v in _http_stack().items())
        + ")",
        [
            "case",
            "throughput",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "non-2xx",
            "driver CPU %",
            "load 1 min",
            "driver",
        ],
        _table(cases),
        caption="ratios: "
        + ", ".join(f"{k} {h.format_ratio(v)}" for k, v in ratios.items())
        + "\ntargets: "
        + ", ".join(f"{k}: {v}" for k, v in targets.items()),
    )
    payload = {
        "name": NAME,
        "quick": args.quick,
        "workers": WORKERS,
        "sizes": sizes,
        "offered_rate": OFFERED_RATE,
        "reviewers": REVIEWERS,
        "cases": cases,
        "ratios": ratios,
        "targets": targets,
        "target_values": TARGETS,
        "wrk": _load.wrk_available(),
        "http_stack": _http_stack(),
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
