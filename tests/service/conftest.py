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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import failwise
from failwise import Policy, artifacts, store
from failwise.service import SETTINGS_ENV, Settings
from tests.store.conftest import _with_search_path, postgres_server

__all__ = ["postgres_server"]

SRC = Path(failwise.__file__).resolve().parents[1]
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
    env = {**os.environ, **(env or {}), SETTINGS_ENV: settings.to_env()}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
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
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    server = Server(f"http://127.0.0.1:{port}", settings.store, process, tokens, names, log.name)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited {process.returncode}: {server.log()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/livez", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server did not answer /livez within {timeout_s} s")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new, empty store URL on each backend (one per test module)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'events.db'}"
        return
    import psycopg

    base: str = request.getfixturevalue("postgres_server")
    schema = f"failwise_svc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


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
