"""`failwise keys` in process, and `failwise serve` as a real process on a free port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

import failwise
from failwise import Policy, artifacts, store
from failwise.cli import app

runner = CliRunner(env={"COLUMNS": "200"})
SRC = Path(failwise.__file__).resolve().parents[1]


def test_keys_create_list_and_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    created = runner.invoke(
        app, ["keys", "create", "--role", "reviewer", "--name", "ann", "--store", url]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"fw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    with store.open(url) as opened:
        key = opened.keys.verify(token)
    assert key is not None
    assert (key.role, key.name) == ("reviewer", "ann")
    listed = runner.invoke(app, ["keys", "list", "--store", url])
    assert key.id in listed.output
    assert token not in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", key.id, "--store", url])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked reviewer key {key.id}" in revoked.output
    with store.open(url) as opened:
        assert opened.keys.verify(token) is None


def test_keys_refuse_a_bad_role_or_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store.open(url).close()
    bad_role = runner.invoke(app, ["keys", "create", "--role", "root", "--store", url])
    assert bad_role.exit_code == 2
    assert "--role must be one of admin, reviewer, viewer, service; got 'root'" in bad_role.output
    bad_id = runner.invoke(app, ["keys", "revoke", "0123456789ab", "--store", url])
    assert bad_id.exit_code == 2
    assert "No API key '0123456789ab'" in bad_id.output
    malformed = runner.invoke(app, ["keys", "revoke", "nope", "--store", url])
    assert malformed.exit_code == 2
    assert "KEY_ID must be the 12 hexadecimal digits" in malformed.stderr
    assert "got 'nope'" in malformed.stderr


@pytest.mark.parametrize("command", [["list"], ["revoke", "0123456789ab"]])
def test_keys_list_or_revoke_on_a_missing_store_create_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    result = runner.invoke(app, ["keys", *command, "--store", url])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "No failwise store at sqlite:///" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "99999"], "--port must be a TCP port from 1 to 65535; got 99999."),
        (["--workers", "0"], "--workers must be at least 1; got 0."),
    ],
)
def test_serve_refuses_a_port_or_worker_count_out_of_range_naming_the_flag(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    result = runner.invoke(app, ["serve", "--store", url, *flags])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {message}"


def test_serve_refuses_a_bad_config_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text("workers = 'many'\n")
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "`workers` got 'many'" in result.output


def test_serve_refuses_a_bad_labels_file_or_one_that_does_not_match_the_policy(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.4), size=300)
    y = np.array([rng.choice(3, p=p) for p in proba])
    artifacts.save(Policy(target_risk=0.2).fit(proba, y), tmp_path / "policy")
    gap = tmp_path / "gap.txt"
    gap.write_text("a\n\nb\n")
    result = runner.invoke(app, ["serve", "--labels", str(gap)])
    assert result.exit_code == 2
    assert "line 2 is blank" in " ".join(result.output.split())
    two = tmp_path / "two.txt"
    two.write_text("a\nb\n")
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    common = ["serve", "--policy", str(tmp_path / "policy"), "--store", store_url]
    result = runner.invoke(app, [*common, "--labels", str(two)])
    assert result.exit_code == 2
    assert "names 2 labels, but the policy has 3 classes" in " ".join(result.output.split())
    config = tmp_path / "serve.toml"
    config.write_text('labels = ["a"]\n')
    result = runner.invoke(app, [*common, "--config", str(config)])
    assert result.exit_code == 2
    assert "`labels` in" in result.output
    assert "names 1 labels" in result.output


@pytest.mark.slow
def test_serve_starts_with_a_saved_policy_and_says_how_to_make_a_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.full(3, 0.4), size=1000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    artifacts.save(policy, tmp_path / "saved" / "model-a" / "policy")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [
        sys.executable,
        "-m",
        "failwise.cli",
        "serve",
        "--policy",
        "saved",
        "--port",
        str(port),
    ]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready is not None, log.read_text()
        assert ready.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    output = " ".join(log.read_text().split())
    assert "failwise keys create --role admin" in output
    assert "saved/model-a/policy" in output
    assert (tmp_path / "failwise.db").is_file()
