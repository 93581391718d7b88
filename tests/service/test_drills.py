"""Failure drills on a real ``failwise serve --workers 2`` (uvicorn's supervisor), loopback only.

- A worker killed with SIGKILL under load: every decision answered 2xx is in the store,
  and the supervisor starts a new worker that serves.
- PostgreSQL stopped (a throw-away server of its own, never the shared one): ``/readyz``
  answers 503 within its 2 s time-out, a worker killed then is restarted without its
  store instead of stopping the service, decisions are refused with 503 (nothing is
  acknowledged that is not durable), and after the database is back ``/readyz`` answers
  200 and decisions are recorded again.
- 16 reviewer clients working one queue through two workers (and, past one machine, two
  separate ``failwise serve`` processes on one PostgreSQL): every item is resolved exactly
  once.

Every wait is bounded by a deadline and every request by a time-out, so a drill that
goes wrong fails instead of hanging.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from failwise import store
from failwise.service._run import reuse_port_supported
from tests.service.conftest import (
    Server,
    scores,
    serve,
    status_of,
    worker_pids,
)
from tests.store.conftest import _on_ci, temporary_schema

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres"
REVIEWERS = 16


# ------------------------------------------------------------------------------ servers


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.1)


def reviewer_keys(store_url: str, count: int) -> list[str]:
    with store.open(store_url) as opened:
        return [
            opened.keys.create("reviewer", f"drill-reviewer-{uuid.uuid4().hex[:8]}").token
            for _ in range(count)
        ]


def stored_task_ids(store_url: str) -> set[str]:
    with store.open(store_url) as opened:
        return {str(row[0]) for page in opened.table_pages("tasks") for row in page}


def listening_sockets(server: Server) -> int:
    """How many sockets listen on ``server``'s port (IPv4): one per worker where each worker
    has its own (SO_REUSEPORT), else the shared one."""
    port = f"{int(server.url.rsplit(':', 1)[1]):04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port}") and fields[3] == "0A":  # 0A: LISTEN
            count += 1
    return count


def fresh_client(server: Server, role: str) -> httpx.Client:
    """A client that opens a new connection per request, so requests spread over workers."""
    return server.client(role, limits=httpx.Limits(max_keepalive_connections=0))


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def two_workers(backend_url: str, policy_dir: Path) -> Iterator[Server]:
    server = serve(backend_url, policy_dir, workers=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[tuple[str, Path]]:
    """A throw-away PostgreSQL server of this module (URL, folder), to be stopped at will."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'failwise[postgres]')")
    folder = Path(tempfile.mkdtemp(prefix="failwise-drill-postgres-"))
    folder.rmdir()
    done = subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "start", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        message = f"scripts/postgres start exited {done.returncode}: {done.stderr[-800:]}"
        if _on_ci():
            pytest.fail(message + " (CI=true: the PostgreSQL drills must run on CI)")
        pytest.skip(message)
    try:
        yield lines[-1], folder
    finally:
        subprocess.run(
            ["bash", str(POSTGRES_SCRIPT), "stop", str(folder)],
            capture_output=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """A fresh schema in the shared test PostgreSQL."""
    with temporary_schema(postgres_server, "failwise_drill") as url:
        yield url


# ------------------------------------------------------------------------------ load


class Load:
    """Threads posting decisions (unique task ids) until stopped; what each got back."""

    def __init__(self, server: Server, threads: int = 6) -> None:
        self.server = server
        self.stop = threading.Event()
        self.answers: list[tuple[str, int | None, dict[str, Any] | None]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with fresh_client(self.server, "service") as client:
            i = 0
            while not self.stop.is_set():
                task_id = f"load-{uuid.uuid4().hex}"
                confidence = (0.99, 0.6, 0.34)[i % 3]
                i += 1
                try:
                    response = client.post(
                        "/v1/decisions",
                        json={"scores": scores(confidence), "task_id": task_id},
                        timeout=10.0,
                    )
                except httpx.HTTPError:
                    answer: tuple[str, int | None, dict[str, Any] | None] = (task_id, None, None)
                else:
                    body = response.json() if response.status_code == 200 else None
                    answer = (task_id, response.status_code, body)
                with self.lock:
                    self.answers.append(answer)

    def ok_count(self) -> int:
        with self.lock:
            return sum(1 for _, status, _ in self.answers if status == 200)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a load thread hangs"


def review_everything(urls: list[str], tokens: list[str]) -> list[tuple[str, int, int]]:
    """One thread per reviewer key (spread over ``urls``): claim → resolve → claim next
    until the queue is empty. Returns (reviewer, item id, resolve status) of every resolve."""
    resolved: list[tuple[str, int, int]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def reviewer(index: int, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=urls[index % len(urls)], headers=headers, timeout=30.0) as c:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                claim = c.post("/v1/queue:claim", json={})
                if claim.status_code != 200:
                    with lock:
                        failures.append(f"claim {claim.status_code}: {claim.text[:200]}")
                    return
                item = claim.json()
                if item is None:
                    return
                answer = c.post(f"/v1/queue/{item['id']}/resolve", json={"label": 0})
                with lock:
                    resolved.append((token, int(item["id"]), answer.status_code))
            with lock:
                failures.append("a reviewer was still working after 180 s")

    threads = [
        threading.Thread(target=reviewer, args=(i, t), daemon=True) for i, t in enumerate(tokens)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a reviewer thread hangs"
    assert failures == []
    return resolved


def fill_queue(url: str, token: str, count: int) -> list[str]:
    """``count`` escalations through the batch API; their task ids."""
    ids = [f"esc-{uuid.uuid4().hex}" for _ in range(count)]
    items = [{"scores": scores(0.34), "task_id": t} for t in ids]
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
    ) as client:
        response = client.post("/v1/decisions:batch", json={"items": items})
    assert response.status_code == 200, response.text
    assert {d["action"] for d in response.json()["decisions"]} == {"escalate"}
    return ids


def assert_resolved_exactly_once(store_url: str, resolved: list[tuple[str, int, int]]) -> None:
    assert resolved, "no item was resolved"
    assert {status for _, _, status in resolved} == {200}
    per_item = Counter(item for _, item, _ in resolved)
    assert max(per_item.values()) == 1, "an item was resolved twice"
    with store.open(store_url) as opened:
        items = opened.queue.items(limit=100_000)
        assert items, "the queue is empty"
        assert {i.state for i in items} == {"resolved"}
        assert {i.id for i in items} == set(per_item)
        for item in items:
            kinds = [e.kind for e in opened.events(item.task_id)]
            assert kinds.count("escalation_resolved") == 1, (item.task_id, kinds)


# ------------------------------------------------------------------------------ drills


def test_a_worker_killed_under_load_loses_no_acknowledged_decision(two_workers: Server) -> None:
    supervisor = two_workers.process.pid
    before = worker_pids(supervisor)
    assert len(before) == 2
    listeners = 2 if reuse_port_supported() else 1
    wait_for(lambda: listening_sockets(two_workers) == listeners, 60, "both workers listen")
    victim = min(before)
    with Load(two_workers) as load:
        wait_for(lambda: load.ok_count() >= 50, 60, "50 decisions before the kill")
        os.kill(victim, signal.SIGKILL)
        if listeners == 2:
            # The dead worker's socket is gone with it (its replacement listens only once it
            # serves), so new connections meanwhile reach the live worker: none is refused
            # or left waiting in a queue nobody accepts from.
            wait_for(lambda: listening_sockets(two_workers) < 2, 10, "the victim's socket closes")
        with fresh_client(two_workers, "service") as client:
            while_down = [client.get("/livez", timeout=5.0).status_code for _ in range(20)]
        assert while_down == [200] * 20
        wait_for(
            lambda: (
                len(worker_pids(supervisor) - before) == 1 and len(worker_pids(supervisor)) == 2
            ),
            60,
            "the supervisor starts a new worker",
        )
        wait_for(lambda: listening_sockets(two_workers) == listeners, 60, "the new worker listens")
        served = load.ok_count()
        wait_for(lambda: load.ok_count() >= served + 50, 60, "50 decisions after the restart")
    assert two_workers.process.poll() is None
    acknowledged = {task_id for task_id, status, _ in load.answers if status == 200}
    assert acknowledged <= stored_task_ids(two_workers.store_url)
    # Escalations were acknowledged with their queue item, never without it.
    escalated = [
        t
        for t, status, body in load.answers
        if status == 200 and body is not None and body["action"] == "escalate"
    ]
    assert escalated
    with store.open(two_workers.store_url) as opened:
        assert all(opened.queue.of_task(t) for t in escalated)
    # The new worker serves: fresh connections reach both workers' accept queues.
    with fresh_client(two_workers, "service") as client:
        statuses = {
            client.post("/v1/decisions", json={"scores": scores(0.99)}).status_code
            for _ in range(20)
        }
    assert statuses == {200}


def test_sixteen_reviewers_on_two_workers_resolve_every_item_exactly_once(
    two_workers: Server,
) -> None:
    fill_queue(two_workers.url, two_workers.keys["service"], 200)
    tokens = reviewer_keys(two_workers.store_url, REVIEWERS)
    resolved = review_everything([two_workers.url], tokens)
    assert_resolved_exactly_once(two_workers.store_url, resolved)
    assert len({token for token, _, _ in resolved}) > 1  # the reviewers really competed


def _post_once_more_on_reset(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    """POST a decision; sent again once if the connection was reset before any answer.

    The drill's client sits idle while the database stops or starts, longer than the
    server's keep-alive time-out, so its next request can race the server closing that
    connection. A client resends then, as this does; the task id makes the retry safe
    (a second record of the same task is refused, never written twice).
    """
    try:
        return client.post("/v1/decisions", json=body, timeout=30.0)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        return client.post("/v1/decisions", json=body, timeout=30.0)


def test_postgres_stopped_readyz_503_decisions_refused_then_recovered(
    own_postgres: tuple[str, Path], policy_dir: Path
) -> None:
    url, folder = own_postgres
    server = serve(url, policy_dir, workers=2)
    try:
        with fresh_client(server, "service") as client:
            assert status_of(f"{server.url}/readyz") == 200
            assert client.post("/v1/decisions", json={"scores": scores(0.99)}).status_code == 200

            subprocess.run(
                ["bash", str(POSTGRES_SCRIPT), "pause", str(folder)],
                capture_output=True,
                timeout=120,
                check=True,
            )
            # Answered within the readiness time-out (the client gives up after 2 s).
            ready = httpx.get(f"{server.url}/readyz", timeout=2.0)
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            # A worker restarted during the outage starts without its store (it answers
            # 503 and keeps trying) instead of failing start-up, which would make the
            # supervisor stop the whole service.
            supervisor = server.process.pid
            before = worker_pids(supervisor)
            os.kill(min(before), signal.SIGKILL)
            wait_for(
                lambda: (
                    len(worker_pids(supervisor) - before) == 1 and len(worker_pids(supervisor)) == 2
                ),
                30,
                "a new worker during the outage",
            )
            time.sleep(1.0)  # past the new worker's start-up
            assert server.process.poll() is None, "the supervisor stopped"
            assert {status_of(f"{server.url}/readyz") for _ in range(10)} == {503}
            during = [f"outage-{uuid.uuid4().hex}" for _ in range(10)]
            answers = [
                _post_once_more_on_reset(client, {"scores": scores(c), "task_id": t})
                for c, t in zip((0.99, 0.34) * 5, during, strict=True)
            ]
            assert [a.status_code for a in answers] == [503] * 10
            assert all(a.headers.get("Retry-After") for a in answers)
            batch = client.post(
                "/v1/decisions:batch",
                json={"items": [{"scores": scores(0.99)}, {"scores": scores(0.34)}]},
                timeout=30.0,
            )
            assert batch.status_code == 503

            subprocess.run(
                ["bash", str(POSTGRES_SCRIPT), "resume", str(folder)],
                capture_output=True,
                timeout=120,
                check=True,
            )
            # Every worker back: ten fresh connections in a row find the store ready.
            wait_for(
                lambda: all(status_of(f"{server.url}/readyz") == 200 for _ in range(10)),
                30,
                "/readyz back to 200",
            )
            after = [f"after-{uuid.uuid4().hex}" for _ in range(20)]
            statuses = [
                _post_once_more_on_reset(client, {"scores": scores(0.99), "task_id": t}).status_code
                for t in after
            ]
            assert statuses == [200] * 20
        stored = stored_task_ids(url)
        assert set(after) <= stored
        assert not set(during) & stored  # refused, and indeed not written
    except (AssertionError, httpx.HTTPError):
        print(f"failwise serve's log (last 6000 characters):\n{server.log()[-6000:]}")
        raise
    finally:
        server.stop()


def test_two_serve_processes_on_one_postgres_share_decisions_and_the_queue(
    postgres_schema: str, policy_dir: Path
) -> None:
    first = serve(postgres_schema, policy_dir, workers=1)
    second = serve(postgres_schema, policy_dir, workers=1)
    try:
        ids = fill_queue(first.url, first.keys["service"], 80)
        ids += fill_queue(second.url, second.keys["service"], 80)
        tokens = reviewer_keys(postgres_schema, REVIEWERS)
        resolved = review_everything([first.url, second.url], tokens)
        assert_resolved_exactly_once(postgres_schema, resolved)
        assert set(ids) <= stored_task_ids(postgres_schema)
        # Either process measures the one store.
        metrics = []
        until = time.time() + 3600
        for server in (first, second):
            with server.client("viewer") as client:
                body = client.get("/v1/metrics", params={"until": until}).json()
            body.pop("generated_at")
            metrics.append(body)
        assert metrics[0] == metrics[1]
        assert metrics[0]["n_tasks"] == len(ids)
    finally:
        first.stop()
        second.stop()
