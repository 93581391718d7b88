"""Open reviewer pages in Chromium see other people's changes without reloading, against a
real ``failwise serve --workers 2 --labels FILE`` on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from failwise import store
from tests.service.conftest import SCREENSHOTS, Server, off_origin, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright_sync = pytest.importorskip("playwright.sync_api")

NAMES = ("card_arrival", "card_lost_or_stolen", "refund_not_showing")
#: The pages' lease: short, so that a renewal is needed within the test.
LEASE_S = 9.0


@pytest.fixture(scope="module")
def site(
    backend_url: str, policy_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("labels")
    labels = folder / "labels.txt"
    labels.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    config = folder / "serve.toml"  # the settings file still counts: --labels wins over it
    config.write_text(f'lease_s = {LEASE_S}\nlabels = ["x", "y", "z"]\n', encoding="utf-8")
    args = ["--labels", str(labels), "--config", str(config)]
    server = serve(backend_url, policy_dir, workers=2, args=args)
    try:
        yield server
    finally:
        server.stop()


def _queue(site: Server, n: int) -> list[int]:
    ids = []
    with store.open(site.store_url) as opened:
        for i in range(n):
            task_id = f"live-{uuid.uuid4().hex[:10]}"
            decision = {
                "action": "escalate",
                "predicted": i % 3,
                "confidence": 0.3,
                "prediction_set": [0, 1],
                "top_labels": [[i % 3, 0.3], [(i + 1) % 3, 0.25]],
                "context": {"text": f"where is my card {i}"},
            }
            request = store.QueueRequest(task_id, "escalation", "low confidence", 0.99)
            ids += opened.record_decision(task_id, decision, enqueue=[request])
    return ids


def _api(site: Server, path: str, body: Any = None) -> httpx.Response:
    """One POST as the admin, on a new connection (so on either worker)."""
    with site.client("admin") as client:
        response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response


def _sign_in(page: Any, site: Server, path: str) -> None:
    page.goto(f"{site.url}{path}")
    page.fill("#key", site.keys["reviewer"])
    page.press("#key", "Enter")
    page.wait_for_url(f"{site.url}{path}")


def _row(page: Any, item_id: int) -> Any:
    return page.locator(f'table.items tbody tr[data-href="/review/items/{item_id}"]')


def test_the_open_queue_shows_claims_made_elsewhere_without_a_reload(
    chromium: Any, site: Server, backend_url: str
) -> None:
    ids = _queue(site, 4)
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        _sign_in(page, site, "/review")
        assert page.get_attribute("[data-live-queue]", "data-live") == "on"
        page.evaluate("window.__loaded = 'once'")
        page.keyboard.press("j")
        admin = site.names["admin"]
        for item_id in ids[:3]:  # each through a new connection: both workers serve them
            _api(site, f"/v1/queue/{item_id}/claim", {"lease_s": 300})
        # a change written by another process straight into the store, as another host would
        with store.open(site.store_url) as opened:
            opened.queue.claim_item(ids[3], "someone-else", 60.0)
        for item_id, holder in [*((i, admin) for i in ids[:3]), (ids[3], "someone-else")]:
            row = _row(page, item_id)
            row.locator(f"text=claimed · {holder}").wait_for(timeout=20_000)
        assert "changed" in (_row(page, ids[3]).get_attribute("class") or "")
        status = page.locator("[data-live-status]")
        assert status.is_visible()
        assert "claimed by" in status.inner_text()
        assert page.evaluate("window.__loaded") == "once"  # the page was never reloaded
        assert page.locator("table.items tbody tr.selected").count() == 1  # j still holds
        if backend_url.startswith("sqlite"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "reviewer-queue-live.png"), full_page=True)
        # released elsewhere: the row shows it waiting again
        _api(site, f"/v1/queue/{ids[0]}/release")
        _row(page, ids[0]).locator("td", has_text="pending").wait_for(timeout=20_000)
        assert page.evaluate("window.__loaded") == "once"
        assert off_origin(site, requests) == []
    finally:
        context.close()


def test_an_open_item_is_flagged_when_it_is_claimed_or_resolved_elsewhere(
    chromium: Any, site: Server, backend_url: str
) -> None:
    mine, theirs = _queue(site, 2)
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        _sign_in(page, site, f"/review/items/{theirs}")
        assert page.is_hidden("[data-live-status]")
        _api(
            site, f"/v1/queue/{theirs}/claim", {"lease_s": 300}
        )  # someone else takes the one I look at
        status = page.locator("[data-live-status]")
        status.wait_for(state="visible", timeout=20_000)
        assert f"#{theirs} claimed by {site.names['admin']}" in status.inner_text()
        assert status.locator("a", has_text="Reload").count() == 1
        page.goto(f"{site.url}/review/items/{mine}")
        page.click("text=Claim this item")
        page.wait_for_url(f"**/review/items/{mine}?n=claimed")
        assert page.is_visible("#resolve")
        assert page.is_hidden("[data-live-status]")
        _api(site, f"/v1/queue/{mine}/resolve", {"label": 1})  # an admin resolves it for me
        status.wait_for(state="visible", timeout=20_000)
        assert f"#{mine} resolved by you" in status.inner_text()
        if backend_url.startswith("sqlite"):
            page.screenshot(path=str(SCREENSHOTS / "reviewer-item-changed.png"), full_page=True)
    finally:
        context.close()


def test_the_lease_of_an_open_item_is_renewed_while_its_page_is_open(
    chromium: Any, site: Server
) -> None:
    (item_id,) = _queue(site, 1)
    context = chromium.new_context()
    page = context.new_page()
    try:
        _sign_in(page, site, f"/review/items/{item_id}")
        page.click("text=Claim this item")
        page.wait_for_url(f"**/review/items/{item_id}?n=claimed")
        assert "renewed while this page is open" in page.inner_text(".lease")
        with store.open(site.store_url) as opened:
            first = opened.queue.get(item_id).lease_expires_at
        assert first is not None
        deadline = time.monotonic() + 60
        renewed = first
        while time.monotonic() < deadline and renewed <= first + LEASE_S:
            page.wait_for_timeout(500)
            with store.open(site.store_url) as opened:
                item = opened.queue.get(item_id)
            assert item.state == "claimed"
            assert item.claimed_by == site.names["reviewer"]
            renewed = item.lease_expires_at or first
        assert renewed > first + LEASE_S  # held past the end of its first lease
        shown = page.get_attribute(".lease [data-lease-time]", "datetime")
        assert shown is not None
        assert shown > page.evaluate(
            f"new Date({first} * 1000).toISOString().replace('T', ' ').slice(0, 19)"
        )
    finally:
        context.close()


def test_a_wrong_key_shows_the_sign_in_page_again_with_the_error(
    chromium: Any, site: Server
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{site.url}/review")
        page.fill("#key", "fw_000000000000_" + "x" * 43)
        with page.expect_response(lambda r: r.url.endswith("/sign-in")) as answer:
            page.press("#key", "Enter")
        assert answer.value.status == 401
        assert "That API key is not valid" in page.inner_text("[role=alert]")
        page.fill("#key", site.keys["reviewer"])
        page.press("#key", "Enter")
        page.wait_for_url(f"{site.url}/review")
        # the names of --labels reached the page's label picker
        assert page.locator(f'#label-options option[value="{NAMES[2]}"]').count() == 1
    finally:
        context.close()
