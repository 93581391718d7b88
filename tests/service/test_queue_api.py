"""The review queue over HTTP: claim, renew, release, resolve, undo, and the filters."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from failwise import store
from tests.service.conftest import Server, scores


def _escalate(live: Server, text: str = "hello") -> str:
    task_id = f"q-{uuid.uuid4().hex}"
    with live.client("service") as client:
        response = client.post(
            "/v1/decisions",
            json={"scores": scores(0.34), "context": {"text": text}, "task_id": task_id},
        )
    assert response.json()["action"] == "escalate", response.text
    return task_id


def _claim_task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    """Claim until the item of ``task_id`` comes up (other tests' items are released)."""
    others = []
    try:
        while True:
            item: dict[str, Any] | None = client.post("/v1/queue:claim", json={}).json()
            assert item is not None, f"the item of {task_id} never came up"
            if item["task_id"] == task_id:
                return item
            others.append(item["id"])
    finally:
        for other in others:
            client.post(f"/v1/queue/{other}/release")


def test_claim_renew_resolve_and_undo(live: Server) -> None:
    task_id = _escalate(live)
    with live.client("reviewer") as client:
        item = _claim_task(client, task_id)
        assert item["state"] == "claimed"
        assert item["claimed_by"] == live.names["reviewer"]
        renewed = client.post(f"/v1/queue/{item['id']}/renew", json={"lease_s": 900})
        assert renewed.status_code == 200
        assert renewed.json()["lease_expires_at"] > item["lease_expires_at"]
        resolved = client.post(
            f"/v1/queue/{item['id']}/resolve", json={"label": 2, "note": "<b>sure</b>"}
        )
        assert resolved.json()["state"] == "resolved"
        twice = client.post(f"/v1/queue/{item['id']}/resolve", json={"label": 1})
        assert twice.status_code == 409
        assert twice.json()["error"]["code"] == "queue_state"
        undone = client.post(f"/v1/queue/{item['id']}/undo")
        assert undone.status_code == 200
        assert undone.json()["state"] == "claimed"
        again = client.post(f"/v1/queue/{item['id']}/resolve", json={"out_of_scope": True})
        assert again.json()["label"] == -1
    with store.open(live.store_url) as opened:
        kinds = [e.kind for e in opened.events(task_id)]
        labelled = {t.task_id: t.label for t in opened.labelled_tasks()}
    assert kinds == [
        "decision",
        "escalation_created",
        "escalation_claimed",
        "escalation_renewed",
        "escalation_resolved",
        "escalation_reopened",
        "escalation_resolved",
    ]
    assert labelled[task_id] == -1


def test_a_reviewer_cannot_act_on_another_reviewers_item(live: Server) -> None:
    task_id = _escalate(live)
    with live.client("reviewer") as client:
        item = _claim_task(client, task_id)
    with store.open(live.store_url) as opened:
        other = opened.keys.create("reviewer", "someone-else").token
    headers = {"Authorization": f"Bearer {other}"}
    with httpx.Client(base_url=live.url, headers=headers) as client:
        resolve = client.post(f"/v1/queue/{item['id']}/resolve", json={"label": 1})
        release = client.post(f"/v1/queue/{item['id']}/release")
    assert resolve.status_code == release.status_code == 409
    with live.client("admin") as client:
        released = client.post(f"/v1/queue/{item['id']}/release")
        gone = client.post("/v1/queue/999999999/release")
        undo_pending = client.post(f"/v1/queue/{item['id']}/undo")
    assert released.json()["state"] == "pending"
    assert gone.status_code == 404
    assert undo_pending.status_code == 409


def test_resolve_needs_a_label_or_out_of_scope(live: Server) -> None:
    with live.client("reviewer") as client:
        both = client.post("/v1/queue/1/resolve", json={"label": 1, "out_of_scope": True})
        neither = client.post("/v1/queue/1/resolve", json={})
    assert both.status_code == neither.status_code == 422
    assert both.json()["error"]["code"] == "label_or_out_of_scope"


def test_the_list_filters_by_state_text_and_age(live: Server) -> None:
    marker = uuid.uuid4().hex
    task_id = _escalate(live, text=f"needle {marker}")
    with live.client("viewer") as client:
        found = client.get("/v1/queue", params={"q": marker.upper(), "state": "pending"}).json()
        none = client.get("/v1/queue", params={"q": marker, "state": "resolved"}).json()
        young = client.get("/v1/queue", params={"q": marker, "min_age_s": 3600}).json()
        one = client.get(f"/v1/queue/{found['items'][0]['id']}")
        page = client.get("/v1/queue", params={"limit": 1, "offset": 0}).json()
        bad = client.get("/v1/queue", params={"state": "done"})
    assert [i["task_id"] for i in found["items"]] == [task_id]
    assert found["total"] == 1
    assert found["items"][0]["due_at"] > found["items"][0]["created_at"]
    assert none["total"] == 0
    assert young["total"] == 0
    assert one.json()["item"]["task_id"] == task_id
    assert one.json()["input_text"] == f"needle {marker}"
    assert len(page["items"]) == 1
    assert page["total"] > 1
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.state"
