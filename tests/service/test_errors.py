"""Malformed requests, oversized bodies and overload, against a real server: always a JSON
4xx/503 that names the field, never a 500 and never a hang."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failwise.service import Settings
from tests.service.conftest import Server, scores, start_server


@pytest.fixture(scope="module")
def small(policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that takes 2 KiB bodies at most and one request at a time."""
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'events.db'}"
    settings = Settings(
        policy=policy_dir, store=url, max_body_bytes=2048, concurrency_limit=1, max_batch_size=3
    )
    server = start_server(settings)
    try:
        yield server
    finally:
        server.stop()


MALFORMED: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/decisions", {"scores": [False, 0.5, 0.5]}, "scores[0]"),
    ("POST", "/v1/decisions", {"scores": "0.3"}, "scores"),
    ("POST", "/v1/decisions", {"scores": ["0.3", 0.3, 0.4]}, "scores[0]"),
    ("POST", "/v1/decisions", {"scores": []}, "scores"),
    ("POST", "/v1/decisions", {"scores": [0.2, 0.3, 0.5], "extra": 1}, "extra"),
    ("POST", "/v1/decisions", '{"scores": [NaN, 0.5, 0.5]}', "scores[0]"),
    ("POST", "/v1/decisions", '{"scores": [1e400, 0.5, 0.5]}', "scores[0]"),
    ("POST", "/v1/decisions", {"scores": [0.2, 0.3, 0.5], "task_id": "x" * 300}, "task_id"),
    ("POST", "/v1/decisions", {"scores": [0.2, 0.3, 0.5], "task_id": "   "}, "task_id"),
    ("POST", "/v1/decisions", {"scores": [0.2, 0.3, 0.5], "context": [1]}, "context"),
    ("POST", "/v1/decisions", {"scores": [0.2, 0.3, 0.5], "ood_score": True}, "ood_score"),
    ("POST", "/v1/decisions", {}, "scores"),
    ("POST", "/v1/decisions", '{"scores": [0.2, 0.3,', "body"),
    ("POST", "/v1/decisions", [1, 2], "body"),
    ("POST", "/v1/decisions:batch", {"items": []}, "items"),
    ("POST", "/v1/decisions:batch", {"items": [{"scores": scores(0.9)}] * 4}, "items"),
    ("POST", "/v1/decisions:batch", {"items": [{"scores": [0.5, 0.5]}]}, "items[0].scores"),
    ("POST", "/v1/tasks/t1/feedback", {"outcome": "liked"}, "outcome"),
    ("POST", "/v1/tasks/t1/feedback", {"outcome": "corrected", "label": "2"}, "label"),
    ("POST", "/v1/tasks/t1/feedback", {"outcome": "corrected", "label": 10**30}, "label"),
    ("POST", "/v1/queue/abc/release", None, "path.item_id"),
    ("POST", "/v1/queue/0/release", None, "path.item_id"),
    ("POST", "/v1/queue/100000000000000000000/release", None, "path.item_id"),
    ("POST", "/v1/queue/1/resolve", {"label": 1.5}, "label"),
    ("POST", "/v1/queue/1/resolve", {"label": 1, "note": ""}, "note"),
    ("POST", "/v1/queue:claim", {"lease_s": -1}, "lease_s"),
    ("POST", "/v1/queue:claim", {"kind": "bug"}, "kind"),
    ("GET", "/v1/queue?limit=0", None, "query.limit"),
    ("GET", "/v1/queue?min_age_s=nan", None, "query.min_age_s"),
    ("GET", "/v1/queue?min_age_s=10&max_age_s=5", None, "query.min_age_s"),
    ("GET", "/v1/metrics?since=inf", None, "query.since"),
    ("GET", "/v1/metrics?since=0&bogus=1", None, "query.bogus"),
    ("GET", "/v1/queue?State=open", None, "query.State"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), MALFORMED)
def test_a_malformed_request_is_a_json_422_naming_the_field(
    small: Server, method: str, path: str, body: Any, field: str
) -> None:
    role = "service" if path.startswith(("/v1/decisions", "/v1/tasks")) else "admin"
    with small.client(role) as client:
        if isinstance(body, str):
            headers = {"Content-Type": "application/json"}
            response = client.request(method, path, content=body.encode(), headers=headers)
        elif body is None:
            response = client.request(method, path)
        else:
            response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    errors = error if isinstance(error, list) else [error]
    assert field in [e["field"] for e in errors], errors
    for entry in errors:
        assert set(entry) == {"code", "message", "field", "received", "expected"}
        assert entry["message"]
        assert entry["expected"]


def test_an_oversized_body_is_413_before_it_is_read(small: Server) -> None:
    big = {"scores": scores(0.5), "context": {"text": "x" * 5000}}
    with small.client("service") as client:
        declared = client.post("/v1/decisions", json=big)
        streamed = client.post(
            "/v1/decisions",
            content=iter([b'{"scores": [0.5, 0.25, 0.25], "context": {"t": "', b"x" * 3000]),
            headers={"Content-Type": "application/json"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body_too_large"


def test_beyond_the_concurrency_limit_the_answer_is_503_at_once(small: Server) -> None:
    first_chunk_sent = threading.Event()
    finish = threading.Event()
    slow: dict[str, Any] = {}

    def body() -> Iterator[bytes]:
        yield b'{"scores": [0.99, 0.005, 0.005],'
        first_chunk_sent.set()
        finish.wait(timeout=60)
        yield b' "context": {"slow": true}}'

    def send_slowly() -> None:
        with small.client("service") as client:
            slow["response"] = client.post(
                "/v1/decisions", content=body(), headers={"Content-Type": "application/json"}
            )

    sender = threading.Thread(target=send_slowly)
    sender.start()
    try:
        assert first_chunk_sent.wait(timeout=30)
        refused = None
        with small.client("viewer") as client:
            for _ in range(200):
                response = client.get("/v1/queue")
                if response.status_code == 503:
                    refused = response
                    break
        assert refused is not None, "the second request was never refused"
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        with small.client() as client:
            assert client.get("/livez").status_code == 200
    finally:
        finish.set()
        sender.join(timeout=60)
    assert slow["response"].status_code == 200, slow["response"].text
    with small.client("viewer") as client:
        assert client.get("/v1/queue").status_code == 200


def test_unknown_routes_and_methods_are_json_errors(small: Server) -> None:
    with small.client("admin") as client:
        missing = client.get("/v2/nothing")
        method = client.delete("/v1/queue")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert method.status_code == 405
    assert method.json()["error"]["code"] == "method_not_allowed"


def test_a_store_that_is_gone_gives_503_not_an_acknowledgement(
    policy_dir: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from failwise import store
    from failwise.service import create_app

    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as opened:
        token = opened.keys.create("admin", "root").token
    app = create_app(Settings(policy=policy_dir, store=url))
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app, headers=headers) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/decisions", json={"scores": scores(0.99)}).status_code == 200
        app.state.service.store.close()
        decided = client.post("/v1/decisions", json={"scores": scores(0.99)})
        ready = client.get("/readyz")
    assert decided.status_code == 503
    assert decided.headers["Retry-After"] == "1"
    assert decided.json()["error"]["code"] == "store_unavailable"
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
