"""Two worker processes behind one port: Prometheus counts every worker's requests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from failwise.service import Settings
from tests.service.conftest import scores, start_server


@pytest.mark.slow
def test_metrics_add_up_over_two_workers(policy_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    settings = Settings(policy=policy_dir, store=f"sqlite:///{tmp_path / 'events.db'}")
    server = start_server(settings, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    try:
        n = 40
        for _ in range(n):
            with server.client("service") as client:  # a new connection each time
                assert (
                    client.post("/v1/decisions", json={"scores": scores(0.99)}).status_code == 200
                )
        with server.client("viewer") as client:
            text = client.get("/metrics").text
    finally:
        server.stop()
    decided = re.search(r'^failwise_decisions_total\{action="answer"\} (\S+)$', text, re.M)
    assert decided is not None, text[:2000]
    assert float(decided.group(1)) == n
    assert len(list(folder.glob("*.db"))) >= 2
