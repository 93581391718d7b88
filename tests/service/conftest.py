"""Fixtures for the service tests: a fitted policy, stores on both backends, and real
uvicorn servers started in a subprocess on a free loopback port.

``live`` is one server per backend for the module (SQLite file, and a fresh schema in the
PostgreSQL of ``$FAILWISE_TEST_POSTGRES_URL`` or the one ``scripts/postgres`` starts),
with one API key per role. :func:`start_server` starts one with other settings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

import failwise
from failwise import Policy, artifacts, store
from failwise.service import SETTINGS_ENV, Settings
from tests.store.conftest import postgres_server, temporary_schema

__all__ = ["postgres_server"]

SRC = Path(failwise.__file__).resolve().parents[1]
#: The browser the page tests drive, and where they leave screenshots for people to look at.
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
N_CLASSES = 3


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy artefact fitted on 3-class scores: it answers from 0.9, escalates below 0.4."""
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(N_CLASSES, 0.4), size=3000)
    y = np.array([rng.choice(N_CLASSES, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9, clarify_max_set_size=2).fit(proba, y)
    folder = tmp_path_factory.mktemp("policy") / "policy"
    artifacts.save(policy, folder)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Server:
    """A running service: its base URL, store URL and one API key per role."""

    url: str
    store_url: str
    process: subprocess.Popen[bytes]
    keys: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    log_path: str = ""

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return Path(self.log_path).read_text(encoding="utf-8", errors="replace")

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        Path(self.log_path).unlink(missing_ok=True)


def create_keys(store_url: str) -> tuple[dict[str, str], dict[str, str]]:
    tokens, names = {}, {}
    with store.open(store_url) as opened:
        for role in store.ROLES:
            name = f"{role}-{uuid.uuid4().hex[:6]}"
            tokens[role] = opened.keys.create(role, name).token
            names[role] = name
    return tokens, names


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus ``extra``, with the checkout's ``src`` first on PYTHONPATH."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def status_of(url: str, timeout_s: float = 2.0) -> int | None:
    """The HTTP status of ``GET url``; None when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code
    except httpx.HTTPError:
        return None


def worker_pids(supervisor: int) -> set[int]:
    """The worker processes uvicorn's supervisor ``supervisor`` runs (not its helpers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def _wait_until_up(
    server: Server, ready: Callable[[], bool], *, timeout_s: float, poll_s: float, what: str
) -> Server:
    """``server`` once ``ready()``; stopped, with its log in the error, when it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise RuntimeError(f"{what} exited {code}: {server.log()[-3000:]}")
        if ready():
            return server
        time.sleep(poll_s)
    server.stop()
    raise RuntimeError(f"{what} did not start within {timeout_s} s: {server.log()[-3000:]}")


def start_server(
    settings: Settings,
    *,
    workers: int = 1,
    timeout_s: float = 90.0,
    env: dict[str, str] | None = None,
) -> Server:
    """Start ``uvicorn`` on a free port with ``settings``; return once ``/livez`` answers."""
    port = free_port()
    tokens, names = create_keys(settings.store)
    child_env = _child_env({**(env or {}), SETTINGS_ENV: settings.to_env()})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "failwise.service:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with tempfile.NamedTemporaryFile(prefix="failwise-server-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(command, env=child_env, stdout=subprocess.DEVNULL, stderr=log)
    server = Server(f"http://127.0.0.1:{port}", settings.store, process, tokens, names, log.name)
    return _wait_until_up(
        server,
        lambda: status_of(f"{server.url}/livez", timeout_s=1.0) == 200,
        timeout_s=timeout_s,
        poll_s=0.1,
        what="the server",
    )


def serve(
    store_url: str,
    policy_dir: Path,
    *,
    workers: int = 2,
    timeout_s: float = 120.0,
    args: Sequence[str] = (),
) -> Server:
    """``failwise serve`` (the CLI) on a free port, with more options ``args``; returns once
    every worker is up."""
    port = free_port()
    tokens, names = create_keys(store_url)
    command = [
        sys.executable,
        "-m",
        "failwise.cli",
        "serve",
        "--policy",
        str(policy_dir),
        "--store",
        store_url,
        "--workers",
        str(workers),
        "--port",
        str(port),
        *args,
    ]
    handle, log_path = tempfile.mkstemp(prefix="failwise-drill-", suffix=".log")
    with os.fdopen(handle, "wb") as log:
        process = subprocess.Popen(command, env=_child_env(), stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", store_url, process, tokens, names, log_path)

    def ready() -> bool:
        up = len(worker_pids(process.pid)) == (workers if workers > 1 else 0)
        return up and status_of(f"{server.url}/livez") == 200

    return _wait_until_up(server, ready, timeout_s=timeout_s, poll_s=0.2, what="failwise serve")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new, empty store URL on each backend (one per test module)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'events.db'}"
        return
    base: str = request.getfixturevalue("postgres_server")
    with temporary_schema(base, "failwise_svc") as url:
        yield url


@pytest.fixture(scope="module")
def live(backend_url: str, policy_dir: Path) -> Iterator[Server]:
    """A real server on each backend, for the whole module."""
    server = start_server(Settings(policy=policy_dir, store=backend_url, undo_window_s=60.0))
    try:
        yield server
    finally:
        server.stop()


def scores(confidence: float) -> list[float]:
    """A 3-class probability vector whose top class (0) has ``confidence``."""
    rest = (1.0 - confidence) / 2
    return [confidence, rest, rest]


# ------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium for the module (skipped where there is none)."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts install it)")
    with playwright_sync.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def off_origin(site: Server, urls: list[str]) -> list[str]:
    """The ``urls`` that leave ``site``'s origin (scheme and host:port)."""
    origin = urlsplit(site.url)
    return [
        url
        for url in urls
        if (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    ]
