"""Roles, keys, sessions and CSRF: every route × role, from one route table.

:data:`ROUTES` lists every route of the app with the roles it admits and a request that
succeeds for an admitted caller; a route missing from it fails the test, so a new route
cannot escape the matrix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from failwise import store
from failwise.service import API_ROUTERS, CSRF_HEADER, SESSION_COOKIE, Settings, create_app
from failwise.service._state import KeyCache
from tests.service.conftest import Server, scores

#: A request factory: (store, caller's name) → (path, JSON body or None).
Factory = Callable[[store.Store, str], tuple[str, Any]]

OPEN = frozenset(["open"])
ANY_READER = frozenset(["admin", "reviewer", "viewer"])
REVIEWER = frozenset(["admin", "reviewer"])
SERVICE = frozenset(["admin", "service"])
VIEWER = frozenset(["admin", "viewer"])


def _task(opened: store.Store, *, claimed_by: str | None = None, resolve: bool = False) -> int:
    task_id = f"r-{uuid.uuid4().hex}"
    request = store.QueueRequest(task_id, "escalation", "role matrix", priority=-1000.0)
    item_id = opened.record_decision(task_id, {"action": "escalate"}, enqueue=[request])[0]
    if claimed_by is not None:
        opened.queue.claim_item(item_id, claimed_by)
        if resolve:
            opened.queue.resolve(item_id, 1, reviewer=claimed_by)
    return item_id


def _task_id(opened: store.Store, item_id: int) -> str:
    return opened.queue.get(item_id).task_id


ROUTES: dict[tuple[str, str], tuple[frozenset[str], Factory]] = {
    ("GET", "/livez"): (OPEN, lambda s, n: ("/livez", None)),
    ("GET", "/readyz"): (OPEN, lambda s, n: ("/readyz", None)),
    ("POST", "/sign-in"): (OPEN, lambda s, n: ("/sign-in", None)),
    ("POST", "/sign-out"): (OPEN, lambda s, n: ("/sign-out", None)),
    ("GET", "/metrics"): (VIEWER, lambda s, n: ("/metrics", None)),
    ("GET", "/v1/metrics"): (VIEWER, lambda s, n: ("/v1/metrics", None)),
    ("POST", "/v1/decisions"): (
        SERVICE,
        lambda s, n: ("/v1/decisions", {"scores": scores(0.99)}),
    ),
    ("POST", "/v1/decisions:batch"): (
        SERVICE,
        lambda s, n: ("/v1/decisions:batch", {"items": [{"scores": scores(0.99)}]}),
    ),
    ("POST", "/v1/tasks/{task_id}/feedback"): (
        SERVICE,
        lambda s, n: (f"/v1/tasks/{_task_id(s, _task(s))}/feedback", {"outcome": "abandoned"}),
    ),
    ("GET", "/v1/tasks/{task_id}"): (
        ANY_READER,
        lambda s, n: (f"/v1/tasks/{_task_id(s, _task(s))}", None),
    ),
    ("GET", "/v1/queue"): (ANY_READER, lambda s, n: ("/v1/queue", None)),
    ("GET", "/v1/queue:changes"): (ANY_READER, lambda s, n: ("/v1/queue:changes?after=0", None)),
    ("GET", "/v1/queue/{item_id}"): (ANY_READER, lambda s, n: (f"/v1/queue/{_task(s)}", None)),
    ("POST", "/v1/queue:claim"): (REVIEWER, lambda s, n: ("/v1/queue:claim", {})),
    ("POST", "/v1/queue/{item_id}/claim"): (
        REVIEWER,
        lambda s, n: (f"/v1/queue/{_task(s)}/claim", {}),
    ),
    ("POST", "/v1/queue/{item_id}/renew"): (
        REVIEWER,
        lambda s, n: (f"/v1/queue/{_task(s, claimed_by=n)}/renew", {"lease_s": 60}),
    ),
    ("POST", "/v1/queue/{item_id}/release"): (
        REVIEWER,
        lambda s, n: (f"/v1/queue/{_task(s, claimed_by=n)}/release", None),
    ),
    ("POST", "/v1/queue/{item_id}/resolve"): (
        REVIEWER,
        lambda s, n: (f"/v1/queue/{_task(s, claimed_by=n)}/resolve", {"label": 2}),
    ),
    ("POST", "/v1/queue/{item_id}/undo"): (
        REVIEWER,
        lambda s, n: (f"/v1/queue/{_task(s, claimed_by=n, resolve=True)}/undo", None),
    ),
}


def _declared_roles(route: APIRoute) -> frozenset[str]:
    """The roles the route's ``require`` dependency admits ("open" without one)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        roles = getattr(dependency.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        pending.extend(dependency.dependencies)
    return OPEN


def test_every_route_is_in_the_table_with_the_roles_it_declares(policy_dir: Path) -> None:
    app = create_app(Settings(policy=policy_dir))
    published = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    declared = {
        (method, route.path): _declared_roles(route)
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert published == set(ROUTES)
    assert declared == {key: roles for key, (roles, _) in ROUTES.items()}


def _send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return (
        client.request(method, path, json=body)
        if body is not None
        else client.request(method, path)
    )


@pytest.mark.parametrize(("method", "template"), sorted(ROUTES))
def test_each_route_answers_401_403_or_2xx_by_role(
    live: Server, method: str, template: str
) -> None:
    admitted, factory = ROUTES[(method, template)]
    with store.open(live.store_url) as opened:
        if admitted == OPEN:
            path, body = factory(opened, "anyone")
            if template == "/sign-in":
                body = {"key": live.keys["viewer"]}
            with live.client() as client:
                assert _send(client, method, path, body).status_code < 300
            return
        path, body = factory(opened, "nobody")
        for headers in ({}, {"Authorization": "Bearer fw_000000000000_" + "x" * 43}):
            with httpx.Client(base_url=live.url, headers=headers) as client:
                response = _send(client, method, path, body)
            assert response.status_code == 401, (headers, response.text)
            assert response.json()["error"]["code"] == "unauthenticated"
        for role in store.ROLES:
            path, body = factory(opened, live.names[role])
            with live.client(role) as client:
                response = _send(client, method, path, body)
            if role in admitted:
                assert 200 <= response.status_code < 300, (role, response.text)
            else:
                assert response.status_code == 403, (role, response.text)
                assert response.json()["error"]["code"] == "forbidden"


def test_a_revoked_key_stops_working(live: Server) -> None:
    with store.open(live.store_url) as opened:
        created = opened.keys.create("viewer", "short-lived")
        headers = {"Authorization": f"Bearer {created.token}"}
        opened.keys.revoke(created.key.id)
    with httpx.Client(base_url=live.url, headers=headers) as client:
        assert client.get("/v1/queue").status_code == 401


# ------------------------------------------------------------------ sessions, in process
@pytest.fixture
def app_client(policy_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    tokens = {}
    with store.open(url) as opened:
        for role in ("reviewer", "viewer"):
            tokens[role] = opened.keys.create(role, f"{role}-1").token
    with TestClient(create_app(Settings(policy=policy_dir, store=url))) as client:
        yield client, tokens


def test_sign_in_sets_an_http_only_same_site_cookie(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    bad = client.post("/sign-in", json={"key": "fw_nope"})
    assert bad.status_code == 401
    response = client.post("/sign-in", json={"key": tokens["reviewer"]})
    assert response.status_code == 200
    assert response.json()["role"] == "reviewer"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    assert tokens["reviewer"] not in cookie
    assert client.get("/v1/queue").status_code == 200


def test_the_cookie_is_secure_over_https(policy_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as opened:
        token = opened.keys.create("viewer", "v").token
    app = create_app(Settings(policy=policy_dir, store=url))
    with TestClient(app, base_url="https://testserver") as client:
        response = client.post("/sign-in", json={"key": token})
    assert "Secure" in response.headers["set-cookie"]


def test_a_state_change_by_cookie_needs_the_csrf_token(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    csrf = client.post("/sign-in", json={"key": tokens["reviewer"]}).json()["csrf_token"]
    refused = client.post("/v1/queue:claim", json={})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/v1/queue:claim", json={}, headers={CSRF_HEADER: "nope"})
    assert wrong.status_code == 403
    assert client.post("/v1/queue:claim", json={}, headers={CSRF_HEADER: csrf}).status_code == 200
    assert client.post("/v1/queue/999/release", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/v1/queue/999/release", data={"csrf_token": "x"}).status_code == 403
    assert client.post("/sign-out").status_code == 403
    assert client.post("/sign-out", headers={CSRF_HEADER: csrf}).status_code == 204
    assert client.get("/v1/queue").status_code == 401


def test_a_form_sign_in_redirects_to_a_local_page_only(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    form = {"key": tokens["viewer"], "next": "https://evil.example/"}
    response = client.post("/sign-in", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    form["next"] = "/queue?state=open"
    response = client.post("/sign-in", data=form, follow_redirects=False)
    assert response.headers["location"] == "/queue?state=open"
    missing = client.post("/sign-in", data={"next": "/"})
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "key"


def test_a_wrong_key_in_the_form_gets_the_sign_in_page_again_and_the_api_json(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = app_client
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    form = {"key": "fw_000000000000_" + "x" * 43, "next": "/review"}
    page = client.post("/sign-in", data=form, headers=html, follow_redirects=False)
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "That API key is not valid" in page.text
    assert 'name="next" value="/review"' in page.text  # signing in again goes on to /review
    assert "Content-Security-Policy" in page.headers
    assert SESSION_COOKIE not in page.headers.get("set-cookie", "")
    empty = client.post("/sign-in", data={"key": "", "next": "/"}, headers=html)
    assert empty.status_code == 422
    assert "Enter your API key" in empty.text
    script = client.post("/sign-in", data=form)  # no HTML asked for: the JSON error
    assert script.status_code == 401
    assert script.json()["error"]["field"] == "key"
    api = client.post("/sign-in", json={"key": form["key"]}, headers=html)
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "unauthenticated"


def test_a_tampered_cookie_is_no_session(app_client: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_client
    client.post("/sign-in", json={"key": tokens["viewer"]})
    value = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    assert client.get("/v1/queue").status_code == 401
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/v1/queue").status_code == 401


def test_the_key_check_is_one_dependency_that_reads_the_header_as_bearer_does(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = app_client
    [route] = [
        r
        for router in API_ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and r.path == "/v1/queue" and "GET" in (r.methods or ())
    ]
    [gate] = [d for d in route.dependant.dependencies if getattr(d.call, "roles", None)]
    assert gate.dependencies == []
    token = tokens["viewer"]
    for header, status in [
        (f"Bearer {token}", 200),
        (f"bearer {token}", 200),
        (f"Token {token}", 401),
        ("Bearer", 401),
        ("", 401),
    ]:
        response = client.get("/v1/queue", headers={"Authorization": header})
        assert response.status_code == status, header


def test_the_key_cache_answers_a_hit_without_the_store_and_keeps_no_token(
    tmp_path: Path,
) -> None:
    opened = store.open(f"sqlite:///{tmp_path / 'events.db'}")
    created = opened.keys.create("service", "cached")
    unseen = opened.keys.create("service", "never verified before the store closes")
    cache = KeyCache(opened.keys, ttl_s=60.0)
    found = cache.verify(created.token)
    assert found is not None
    assert found.id == created.key.id
    assert cache.verify(created.token + "x") is None
    opened.close()
    with pytest.raises(store.StoreError):  # a miss reads the store, which is closed now
        cache.verify(unseen.token)
    hit = cache.verify(created.token)  # a hit does not read it
    assert hit is not None
    assert hit.id == created.key.id
    assert cache.cached_token(created.token + "x") == (True, None)
    assert created.token not in repr(vars(cache))
