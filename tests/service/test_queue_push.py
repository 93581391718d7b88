"""``GET /v1/queue:changes``: what an open page learns, on both backends and across servers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from failwise import store
from failwise.service import Settings, create_app
from failwise.service._queue_push import ChangeFeed
from tests.service.conftest import start_server


def _escalate(url: str, prefix: str = "push") -> int:
    task_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
    request = store.QueueRequest(task_id, "escalation", reason="low confidence", priority=0.9)
    with store.open(url) as opened:
        return opened.record_decision(task_id, {"action": "escalate"}, enqueue=[request])[0]


def _changes_until(
    client: httpx.Client | TestClient, cursor: int, wanted: int, timeout_s: float = 15.0
) -> tuple[int, list[dict[str, Any]]]:
    """Poll as a page does until ``wanted`` changes came after ``cursor``."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = client.get("/v1/queue:changes", params={"after": cursor})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert not body["reset"]
        seen += body["changes"]
        cursor = body["cursor"]
        if len(seen) >= wanted:
            break
        time.sleep(0.1)
    return cursor, seen


@pytest.fixture(scope="module")
def app(backend_url: str, policy_dir: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = {}
    with store.open(backend_url) as opened:
        for role in ("reviewer", "viewer", "admin"):
            tokens[role] = opened.keys.create(role, f"{role}-{uuid.uuid4().hex[:6]}").token
    with TestClient(create_app(Settings(policy=policy_dir, store=backend_url))) as client:
        yield client, tokens


def test_a_page_learns_who_changed_which_item_after_its_cursor(
    app: tuple[TestClient, dict[str, str]], backend_url: str
) -> None:
    client, tokens = app
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    client.headers.update(viewer)
    first = client.get("/v1/queue:changes")
    assert first.status_code == 200
    assert first.json()["changes"] == []
    assert not first.json()["reset"]
    assert first.json()["poll_ms"] > 0
    cursor = first.json()["cursor"]
    item_id = _escalate(backend_url)
    claimed = client.post(
        f"/v1/queue/{item_id}/claim",
        headers={"Authorization": f"Bearer {tokens['reviewer']}"},
        json={},
    )
    assert claimed.status_code == 200, claimed.text
    cursor, seen = _changes_until(client, cursor, 2)
    mine = [(c["item_id"], c["change"]) for c in seen if c["item_id"] == item_id]
    assert mine == [(item_id, "created"), (item_id, "claimed")]
    reviewer = client.get("/v1/queue/" + str(item_id)).json()["item"]["claimed_by"]
    assert [c["reviewer"] for c in seen if c["item_id"] == item_id] == [None, reviewer]
    again = client.get("/v1/queue:changes", params={"after": cursor}).json()
    assert again["changes"] == []
    assert again["cursor"] == cursor


def test_a_cursor_ahead_of_the_log_gets_a_reset_and_a_bad_one_a_422(
    app: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app
    client.headers.update({"Authorization": f"Bearer {tokens['viewer']}"})
    ahead = client.get("/v1/queue:changes", params={"after": 2**61}).json()
    assert ahead["reset"] is True
    assert ahead["cursor"] < 2**61
    for bad in ("-1", "soon", "1.5", "0.0", "1e3", "٣"):
        refused = client.get("/v1/queue:changes", params={"after": bad})
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "query.after"
    unknown = client.get("/v1/queue:changes", params={"after": 0, "wait": 5})
    assert unknown.status_code == 422


def test_a_feed_answers_an_older_cursor_from_the_log_and_forgets_what_it_cannot_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(sqlite_url) as opened:
        start = opened.queue.last_event_id()
        older = _escalate(sqlite_url)
        feed = ChangeFeed(opened.queue, store.listen_queue(sqlite_url))
        now = feed.cursor()  # the feed starts here: it holds nothing before
        answer = feed.since(start)
        assert [(c.item_id, c.change) for c in answer.changes] == [(older, "created")]
        assert (answer.cursor, answer.reset) == (now, False)
        monkeypatch.setattr("failwise.service._queue_push.KEEP", 3)
        monkeypatch.setattr("failwise.service._queue_push.MIN_READ_S", 0.0)
        fresh = ChangeFeed(opened.queue, store.listen_queue(sqlite_url))
        base = fresh.cursor()
        items = [_escalate(sqlite_url) for _ in range(5)]
        late = fresh.since(base)  # more than it keeps: it skips to the newest
        assert late.reset is False
        assert [c.item_id for c in late.changes] == items  # read from the log
        monkeypatch.setattr("failwise.service._queue_push.MAX_BEHIND", 0)
        assert fresh.since(base).reset is True
        feed.close()
        fresh.close()


@pytest.mark.slow
def test_a_change_made_through_one_server_reaches_a_page_of_another(
    backend_url: str, policy_dir: Path
) -> None:
    settings = Settings(policy=policy_dir, store=backend_url)
    one = start_server(settings)
    other = start_server(settings)
    try:
        with one.client("reviewer") as writer, other.client("viewer") as reader:
            cursor = reader.get("/v1/queue:changes").json()["cursor"]
            item_id = _escalate(backend_url, "hosts")
            assert writer.post(f"/v1/queue/{item_id}/claim", json={}).status_code == 200
            assert writer.post(f"/v1/queue/{item_id}/release").status_code == 200
            _, seen = _changes_until(reader, cursor, 3)
        changes = [(c["change"], c["reviewer"]) for c in seen if c["item_id"] == item_id]
        name = one.names["reviewer"]
        assert changes == [("created", None), ("claimed", name), ("released", name)]
    finally:
        one.stop()
        other.stop()
