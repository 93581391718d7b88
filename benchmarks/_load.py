"""HTTP load for the service benchmarks and drills: an async httpx driver and ``wrk``.

Two ways to load a server, because each is trustworthy for a different question:

- :func:`open_loop` (asyncio) sends requests at a fixed *offered* rate, on a
  schedule that does not wait for answers, and times each request from the moment it was
  *due*, not from when the driver got round to sending it — so a server (or a driver)
  that falls behind shows up as latency instead of silently lowering the rate
  (coordinated omission). This is the driver for "p50/p99 at 300 req/s offered".
- :func:`closed_loop` keeps ``concurrency`` requests in flight and sends the next as
  soon as one returns: maximum throughput, as far as the driver itself keeps up.
- :func:`run_wrk` runs ``wrk`` (C, one event loop per thread) closed-loop with a small Lua
  script for the POST body and the JSON summary.

On two shared cores the driver's own CPU is taken from the server under test. The asyncio
drivers speak HTTP/1.1 through a lean client of their own (``driver="raw"``, the default)
or through httpx (``driver="httpx"``); httpx spends roughly ten times the CPU per request,
so it is kept for comparison only. ``wrk`` costs less still, so maximum-throughput figures
come from ``wrk``, and the asyncio driver is used where each answer matters: open-loop
latencies and the drills.

Every result records the driver's CPU seconds (this process's for the asyncio drivers, the
child's for ``wrk``), so a table can say what share of the machine the load itself used, and the
machine's load average when the run started.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_post.lua"

#: Longest a keep-alive connection is left idle before it is closed instead of reused
#: (uvicorn closes idle connections after ``timeout_keep_alive``, 5 s by default).
_MAX_IDLE_S = 3.0

#: Builds the body of request ``i`` (JSON bytes).
BodyFactory = Callable[[int], bytes]


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


@dataclass
class LoadResult:
    """What one load run saw.

    ``latencies_s`` holds one entry per answered request (any status), in seconds: from
    the due time (open loop) or the send time (closed loop) to the full response. ``wrk``
    reports percentiles instead of samples: ``reported_ms`` (50, 90, 99 and 100).
    ``errors`` counts requests with no HTTP answer (connection refused, reset, time-out),
    with their kinds in ``error_kinds``.
    """

    driver: str
    mode: str
    url: str
    duration_s: float
    concurrency: int
    offered_rate: float | None = None
    latencies_s: np.ndarray[Any, Any] = field(default_factory=lambda: np.empty(0))
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    driver_cpu_s: float = 0.0
    load_average: float | None = None
    behind_s: float = 0.0
    answers: list[tuple[int, int, Any]] = field(default_factory=list)
    reported_ms: dict[int, float] | None = None

    @property
    def answered(self) -> int:
        return int(sum(self.statuses.values()))

    @property
    def ok(self) -> int:
        return int(sum(n for status, n in self.statuses.items() if 200 <= status < 300))

    @property
    def non_2xx(self) -> int:
        return self.answered - self.ok

    @property
    def requests_per_s(self) -> float:
        return self.answered / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, q: int) -> float | None:
        """The ``q``-th latency percentile in ms (100: the maximum)."""
        if self.reported_ms is not None:
            return self.reported_ms.get(q)
        if self.latencies_s.size == 0:
            return None
        return float(np.percentile(self.latencies_s, q) * 1e3)

    def summary(self) -> dict[str, Any]:
        """The numbers a table shows and a JSON file keeps (no per-request data)."""
        return {
            "driver": self.driver,
            "mode": self.mode,
            "url": self.url,
            "duration_s": self.duration_s,
            "concurrency": self.concurrency,
            "offered_rate": self.offered_rate,
            "answered": self.answered,
            "ok": self.ok,
            "non_2xx": self.non_2xx,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "requests_per_s": self.requests_per_s,
            "ok_per_s": self.ok_per_s,
            "p50_ms": self.percentile_ms(50),
            "p90_ms": self.percentile_ms(90),
            "p99_ms": self.percentile_ms(99),
            "max_ms": self.percentile_ms(100),
            "driver_cpu_s": self.driver_cpu_s,
            "driver_cpu_share": self.driver_cpu_s / self.duration_s if self.duration_s else None,
            "driver_behind_s": self.behind_s,
            "load_average_1min": self.load_average,
        }


class _RawClient:
    """A lean HTTP/1.1 client on asyncio streams: keep-alive connections, one request at a
    time on each, the request head built once. It costs a fraction of httpx's CPU per
    request, which on two shared cores is CPU the server under test keeps."""

    def __init__(self, url: str, connections: int, timeout_s: float, headers: Mapping[str, str]):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(connections)

    async def request(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = body or b""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\n{self.extra}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode("latin-1")
        async with self.slots:
            while self.idle:
                reader, writer, since = self.idle.pop()
                # uvicorn closes a connection idle for 5 s: never reuse one near that age.
                if time.monotonic() - since < _MAX_IDLE_S and not reader.at_eof():
                    break
                writer.close()
            else:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout_s
                )
            try:
                status, data, keep_open = await asyncio.wait_for(
                    self._exchange(reader, writer, head + payload), self.timeout_s
                )
            except BaseException:
                writer.close()
                raise
            if keep_open:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return status, data

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes, bool]:
        writer.write(request)
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection")
        status = int(line.split(b" ", 2)[1])
        length, chunked, keep_open = 0, False, True
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b""):
                break
            name, _, value = header.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                keep_open = b"close" not in value.lower()
        if not chunked:
            return status, await reader.readexactly(length), keep_open
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks), keep_open
            chunks.append(chunk[:-2])

    async def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


class _HttpxClient:
    """The same interface over ``httpx.AsyncClient`` (for comparison)."""

    def __init__(self, url: str, connections: int, timeout_s: float, headers: Mapping[str, str]):
        import httpx

        self.errors: tuple[type[BaseException], ...] = (httpx.HTTPError,)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(timeout_s, pool=timeout_s),
            headers={"content-type": "application/json", **headers},
        )

    async def request(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        response = await self.client.request(method, url, content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


#: The drivers :func:`open_loop` and :func:`closed_loop` can use.
DRIVERS = {"raw": _RawClient, "httpx": _HttpxClient}


async def _send(
    client: Any,
    method: str,
    url: str,
    body: bytes | None,
    started: float,
    result: LoadResult,
    latencies: list[float],
    index: int,
    keep: Callable[[int, int, bytes], Any] | None,
) -> None:
    try:
        status, data = await client.request(method, url, body)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
        result.errors += 1
        result.error_kinds[type(error).__name__] += 1
        return
    except Exception as error:  # httpx's own errors
        if not isinstance(error, getattr(client, "errors", ())):
            raise
        result.errors += 1
        result.error_kinds[type(error).__name__] += 1
        return
    latencies.append(time.perf_counter() - started)
    result.statuses[status] += 1
    if keep is not None:
        result.answers.append((index, status, keep(index, status, data)))


async def open_loop_async(
    url: str,
    *,
    rate: float,
    duration_s: float,
    body: BodyFactory | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    max_in_flight: int = 256,
    timeout_s: float = 10.0,
    keep: Callable[[int, int, bytes], Any] | None = None,
    driver: str = "raw",
) -> LoadResult:
    """Send ``rate`` requests per second for ``duration_s`` seconds (see :func:`open_loop`)."""
    result = LoadResult(
        driver=driver,
        mode="open",
        url=url,
        duration_s=0.0,
        concurrency=max_in_flight,
        offered_rate=rate,
        load_average=load_average(),
    )
    latencies: list[float] = []
    total = round(rate * duration_s)
    cpu = time.process_time()
    client = DRIVERS[driver](url, max_in_flight, timeout_s, headers or {})
    try:
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                result.behind_s = max(result.behind_s, -wait)
            payload = body(i) if body is not None else None
            task = asyncio.create_task(
                _send(client, method, url, payload, due, result, latencies, i, keep)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        result.duration_s = max(time.perf_counter() - start, total / rate if rate else 0.0)
    finally:
        await client.close()
    result.driver_cpu_s = time.process_time() - cpu
    result.latencies_s = np.asarray(latencies, dtype=np.float64)
    return result


async def closed_loop_async(
    url: str,
    *,
    concurrency: int,
    duration_s: float,
    body: BodyFactory | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    keep: Callable[[int, int, bytes], Any] | None = None,
    driver: str = "raw",
    stagger_s: float = 0.0,
) -> LoadResult:
    """Keep ``concurrency`` requests in flight for ``duration_s`` seconds.

    With ``stagger_s``, the k-th of them starts (and opens its connection) k × ``stagger_s``
    seconds after the first: connections opened together may all be accepted by one worker
    process of a multi-worker server, which then serves them all while the others idle.
    """
    result = LoadResult(
        driver=driver,
        mode="closed",
        url=url,
        duration_s=0.0,
        concurrency=concurrency,
        load_average=load_average(),
    )
    latencies: list[float] = []
    counter = iter(range(1 << 62))
    cpu = time.process_time()
    client = DRIVERS[driver](url, concurrency, timeout_s, headers or {})
    try:
        start = time.perf_counter()
        end = start + duration_s

        async def worker(k: int) -> None:
            await asyncio.sleep(k * stagger_s)
            while time.perf_counter() < end:
                i = next(counter)
                payload = body(i) if body is not None else None
                sent = time.perf_counter()
                await _send(client, method, url, payload, sent, result, latencies, i, keep)

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        result.duration_s = time.perf_counter() - start
    finally:
        await client.close()
    result.driver_cpu_s = time.process_time() - cpu
    result.latencies_s = np.asarray(latencies, dtype=np.float64)
    return result


def open_loop(url: str, **kwargs: Any) -> LoadResult:
    """Open-loop load at a fixed offered rate, timed from each request's due time.

    Parameters
    ----------
    url : str
    rate : float
        Requests per second offered, whatever the answers do.
    duration_s : float
    body : callable ``i -> bytes``, optional
        The JSON body of request ``i``.
    method, headers, timeout_s
    max_in_flight : int, default=256
        Connections at most; beyond them requests wait for one (and their latency shows it).
    keep : callable ``(i, status, body) -> value``, optional
        Keeps ``(i, status, value)`` of every answer in ``answers`` (for drills).
    driver : {"raw", "httpx"}, default="raw"
        The lean asyncio client or httpx (see :data:`DRIVERS`).
    """
    return asyncio.run(open_loop_async(url, **kwargs))


def closed_loop(url: str, **kwargs: Any) -> LoadResult:
    """Closed-loop load: ``concurrency`` requests in flight (arguments as
    :func:`closed_loop_async`)."""
    return asyncio.run(closed_loop_async(url, **kwargs))


def wrk_available() -> str | None:
    """The path of ``wrk``, or None."""
    return shutil.which("wrk")


def run_wrk(
    url: str,
    *,
    bodies: Sequence[bytes],
    duration_s: float,
    connections: int,
    threads: int = 1,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    timeout_s: float = 10.0,
) -> LoadResult:
    """Closed-loop load with ``wrk``: ``connections`` keep-alive connections on ``threads``.

    The connections send ``bodies`` in turn (one JSON document each, without newlines;
    each request is formatted once). ``wrk`` reports latency percentiles (to the
    microsecond), the requests answered and those with a status ≥ 400 (its ``errors.status``,
    counted here as non-2xx: the service answers no 1xx/3xx to these requests), plus socket
    errors and time-outs.
    """
    wrk = wrk_available()
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="failwise-wrk-") as folder:
        body_path = Path(folder) / "body"
        if any(b"\n" in body for body in bodies):
            raise ValueError("wrk bodies are passed one per line: serialise them without newlines")
        body_path.write_bytes(b"\n".join(bodies) + b"\n" if bodies else b"")
        header_args: list[str] = []
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            header_args += ["-H", f"{name}: {value}"]
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            *header_args,
            url,
            "--",
            method,
            str(body_path),
        ]
        load = load_average()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 60, check=False
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr[-500:]}")
    line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {done.stdout[-500:]}")
    report = json.loads(line)
    answered = int(report["requests"])
    bad = int(report["status_errors"])
    result = LoadResult(
        driver="wrk",
        mode="closed",
        url=url,
        duration_s=report["duration_us"] / 1e6,
        concurrency=connections,
        load_average=load,
    )
    result.statuses[200] = answered - bad  # wrk counts, but does not tell, the 2xx statuses
    if bad:
        result.statuses[400] = bad
    socket_errors = {
        key: int(report[key])
        for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    }
    result.errors = sum(socket_errors.values())
    result.error_kinds = Counter({k: v for k, v in socket_errors.items() if v})
    result.driver_cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result.reported_ms = {q: report[f"p{q}_us"] / 1e3 for q in (50, 90, 99)} | {
        100: report["max_us"] / 1e3
    }
    return result
