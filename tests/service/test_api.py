"""The API over a real uvicorn server, on SQLite and PostgreSQL: what it answers is in the
store, and its metrics are ``measure`` over that store."""

from __future__ import annotations

import math
import uuid

from failwise import store
from failwise.outcomes import measure
from tests.service.conftest import N_CLASSES, Server, scores


def test_a_decision_is_in_the_store_with_its_queue_item(live: Server) -> None:
    task_id = f"t-{uuid.uuid4().hex}"
    with live.client("service") as client:
        response = client.post(
            "/v1/decisions",
            json={
                "scores": scores(0.34),
                "context": {"text": "où est ma carte", "account": 2**70},
                "task_id": task_id,
            },
        )
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["task_id"] == task_id
    assert decision["action"] == "escalate"
    assert decision["context"] == {"text": "où est ma carte", "account": 2**70}
    with store.open(live.store_url) as opened:
        task = opened.task(task_id)
        items = opened.queue.of_task(task_id)
    assert task.action == "escalate"
    assert task.decision["reason"] == decision["reason"]
    assert task.decision["context"] == decision["context"]
    assert [(i.kind, i.state) for i in items] == [("escalation", "pending")]


def test_a_batch_is_recorded_in_one_call_in_input_order(live: Server) -> None:
    ids = [f"b-{uuid.uuid4().hex}" for _ in range(5)]
    confidences = [0.99, 0.36, 0.98, 0.35, 0.97]
    items = [{"scores": scores(c), "task_id": t} for c, t in zip(confidences, ids, strict=True)]
    with live.client("service") as client:
        response = client.post("/v1/decisions:batch", json={"items": items})
    assert response.status_code == 200, response.text
    decisions = response.json()["decisions"]
    assert [d["task_id"] for d in decisions] == ids
    with store.open(live.store_url) as opened:
        recorded = [opened.task(t).action for t in ids]
        queued = {t for t in ids if opened.queue.of_task(t)}
    assert recorded == [d["action"] for d in decisions]
    assert queued == {d["task_id"] for d in decisions if d["action"] == "escalate"}
    assert len(queued) >= 2


def test_a_taken_task_id_is_a_conflict_and_writes_nothing_more(live: Server) -> None:
    task_id = f"d-{uuid.uuid4().hex}"
    body = {"scores": scores(0.99), "task_id": task_id}
    with live.client("service") as client:
        assert client.post("/v1/decisions", json=body).status_code == 200
        again = client.post("/v1/decisions", json=body)
        batch = client.post(
            "/v1/decisions:batch",
            json={"items": [{"scores": scores(0.5), "task_id": f"n-{task_id}"}, body]},
        )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "task_exists"
    assert batch.status_code == 409
    with store.open(live.store_url) as opened:
        assert len(opened.events(task_id)) == 1
        try:
            opened.task(f"n-{task_id}")
        except store.UnknownTaskError:
            pass
        else:  # pragma: no cover - the assertion message
            raise AssertionError("a batch with a taken task id was partly written")


def test_feedback_and_the_task_with_its_events(live: Server) -> None:
    with live.client("service") as client:
        decision = client.post("/v1/decisions", json={"scores": scores(0.99)}).json()
        task_id = decision["task_id"]
        written = client.post(
            f"/v1/tasks/{task_id}/feedback", json={"outcome": "corrected", "label": 2}
        )
        unknown = client.post("/v1/tasks/nope-nope/feedback", json={"outcome": "accepted"})
    assert written.status_code == 200
    assert unknown.status_code == 404
    with live.client("viewer") as client:
        task = client.get(f"/v1/tasks/{task_id}")
        missing = client.get("/v1/tasks/nope-nope")
    assert task.status_code == 200
    body = task.json()
    assert body["task"]["action"] == decision["action"]
    assert [(e["kind"], e["label"]) for e in body["events"]] == [
        ("decision", decision["label"]),
        ("feedback_corrected", 2),
    ]
    assert body["events"][1]["id"] == written.json()["event_id"]
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_metrics_equal_measure_over_the_same_store(live: Server) -> None:
    with live.client("service") as client:
        for c in (0.99, 0.98, 0.34):
            task_id = client.post("/v1/decisions", json={"scores": scores(c)}).json()["task_id"]
            client.post(f"/v1/tasks/{task_id}/feedback", json={"outcome": "accepted"})
    with live.client("viewer") as client:
        served = client.get("/v1/metrics", params={"since": 0, "until": 4e9}).json()
        everything = client.get("/v1/metrics").json()
        bad = client.get("/v1/metrics", params={"since": 10, "until": 5})
    with store.open(live.store_url) as opened:
        expected = measure(opened, 0, 4e9).to_dict()
    assert served["n_tasks"] == expected["n_tasks"] == everything["n_tasks"] > 0
    for name, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert served[name] is None
        else:
            assert served[name] == value, name
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.since"


def test_probes_and_prometheus(live: Server) -> None:
    with live.client() as client:
        assert client.get("/livez").json()["status"] == "ok"
        ready = client.get("/readyz")
        closed = client.get("/metrics")
    assert ready.status_code == 200
    assert ready.json()["schema_version"] == store.SCHEMA_VERSION
    assert closed.status_code == 401
    with live.client("viewer") as client:
        text = client.get("/metrics")
    assert text.status_code == 200
    assert 'failwise_http_requests_total{method="GET",route="/readyz",status="200"}' in text.text
    assert "failwise_decisions_total" in text.text


def test_the_score_vector_must_have_one_score_per_class(live: Server) -> None:
    with live.client("service") as client:
        response = client.post("/v1/decisions", json={"scores": [0.5] * (N_CLASSES + 1)})
        without = client.post("/v1/decisions", json={"input": "some text"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "scores"
    assert error["expected"] == f"{N_CLASSES} scores"
    assert without.status_code == 422
    assert without.json()["error"]["code"] == "no_model"
