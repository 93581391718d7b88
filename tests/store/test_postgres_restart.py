"""A PostgreSQL store across a server restart: refused while down, whole again once back.

The server is a throw-away one of this module (``scripts/postgres start``), stopped and
started again with ``scripts/postgres pause`` / ``resume``; never the shared test server.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from failwise import store
from tests.store.conftest import POSTGRES_SCRIPT, _on_ci

pytestmark = pytest.mark.slow


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def own_server() -> Iterator[tuple[str, Path]]:
    pytest.importorskip("psycopg")
    folder = Path(tempfile.mkdtemp(prefix="failwise-restart-postgres-"))
    folder.rmdir()
    done = _script("start", str(folder))
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        message = f"scripts/postgres start exited {done.returncode}: {done.stderr[-800:]}"
        if _on_ci():
            pytest.fail(message + " (CI=true: the PostgreSQL tests must run on CI)")
        pytest.skip(message)
    try:
        yield lines[-1], folder
    finally:
        _script("stop", str(folder))


def test_a_store_refuses_writes_while_the_server_is_down_and_works_at_once_after(
    own_server: tuple[str, Path],
) -> None:
    url, folder = own_server
    with store.open(url) as events:
        events.record_decision("before", {"action": "answer", "label": 1})
        # Readers in parallel: the pool holds several connections, all idle afterwards.
        barrier = threading.Barrier(4)

        def read() -> None:
            barrier.wait(timeout=30)
            for _ in range(20):
                events.task("before")

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert _script("pause", str(folder)).returncode == 0
        with pytest.raises(store.StoreError):
            events.record_decision("during", {"action": "answer", "label": 1})
        assert _script("resume", str(folder)).returncode == 0

        # Every request after the restart succeeds: no idle connection left from before.
        for i in range(10):
            events.record_decision(f"after-{i}", {"action": "answer", "label": 1})
            assert events.task(f"after-{i}").action == "answer"
        assert events.task("before").action == "answer"
        with pytest.raises(store.UnknownTaskError):
            events.task("during")


def test_after_a_long_outage_the_first_request_once_the_server_is_back_succeeds(
    own_server: tuple[str, Path],
) -> None:
    # The pool's reconnection delay doubles while the server is down; held for 20 s of
    # refused requests it would reach 16 s, longer than a request waits for a connection.
    url, folder = own_server
    with store.open(url, connect_timeout_s=2.0) as events:
        events.record_decision("long-before", {"action": "answer", "label": 1})
        assert _script("pause", str(folder)).returncode == 0
        refused = 0
        until = time.monotonic() + 20.0
        while time.monotonic() < until:
            with pytest.raises(store.StoreError):
                events.record_decision(f"long-during-{refused}", {"action": "answer", "label": 1})
            refused += 1
        assert _script("resume", str(folder)).returncode == 0

        events.record_decision("long-after", {"action": "answer", "label": 1})
        assert events.task("long-after").action == "answer"
        assert events.task("long-before").action == "answer"
        assert refused > 0
