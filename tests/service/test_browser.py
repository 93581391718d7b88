"""The pages in a real Chromium against a real uvicorn server, on SQLite and PostgreSQL:
sign in, claim, resolve with the keyboard, undo, watch the dashboard move; no request
leaves the server's origin; hostile text never runs; screenshots for people to look at."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failwise import store
from failwise.service import Settings
from tests.service.conftest import SCREENSHOTS, Server, off_origin, start_server
from tests.service.seeding import LABELS, seed_day, seed_waiting

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")

HOSTILE = (
    "<script>window.__pwned=1</script>",
    '" onmouseover="window.__pwned=2" x="',
    "</textarea><img src=x onerror=window.__pwned=3>",
    "\u202eevil\u202c \u200fمرحبا\u200f",
)


@pytest.fixture(scope="module")
def site(backend_url: str, policy_dir: Path) -> Iterator[Server]:
    """A server over a lived-in day of traffic, with label names."""
    seed_day(backend_url, now=time.time(), n_tasks=400)
    settings = Settings(policy=policy_dir, store=backend_url, labels=LABELS, undo_window_s=120.0)
    server = start_server(settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(chromium: Any, site: Server) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.requests = []
    tab.on("request", lambda request: tab.requests.append(request.url))
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        yield tab
    finally:
        context.close()


def _sign_in(page: Any, site: Server, role: str = "reviewer", path: str = "/review") -> None:
    page.goto(f"{site.url}{path}")
    assert "/sign-in" in page.url
    page.fill("#key", site.keys[role])
    page.press("#key", "Enter")
    page.wait_for_url(f"{site.url}{path}")


def _tile(page: Any, name: str) -> float:
    value = page.get_attribute(f'.tile[data-metric="{name}"]', "data-value")
    return float(value) if value else float("nan")


def test_a_reviewer_works_the_queue_with_the_keyboard_and_the_dashboard_moves(
    page: Any, site: Server
) -> None:
    waiting = seed_waiting(site.store_url, 6, now=time.time(), prefix=f"kb{time.time_ns()}")
    _sign_in(page, site, "reviewer", "/dashboard")
    before = _tile(page, "task_completion_rate")
    page.goto(f"{site.url}/review")
    page.keyboard.press("?")
    assert page.is_visible("#keymap")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    assert page.locator("table.items tbody tr.selected").count() == 1
    page.keyboard.press("n")
    page.wait_for_url("**/review/items/*")
    resolved = []
    for _ in range(4):
        item_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
        first_choice = page.get_attribute('button.choice[data-key="1"]', "value")
        with page.expect_navigation():
            page.keyboard.press("1")
        resolved.append((item_id, int(first_choice or "-9")))
    with store.open(site.store_url) as events:
        for item_id, label in resolved:
            item = events.queue.get(item_id)
            assert (item.state, item.label, item.resolved_by) == (
                "resolved",
                label,
                site.names["reviewer"],
            )
    # undo the last resolution from the side panel, with its key
    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.url.endswith(f"/review/items/{resolved[-1][0]}?n=undone")
    with store.open(site.store_url) as events:
        assert events.queue.get(resolved[-1][0]).state == "claimed"
    # out of scope with its key, after a note typed with the keyboard
    page.keyboard.press("e")
    page.keyboard.type("not a banking question")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("o")
    with store.open(site.store_url) as events:
        item = events.queue.get(resolved[-1][0])
        assert (item.label, item.note) == (-1, "not a banking question")
    page.goto(f"{site.url}/dashboard")
    assert _tile(page, "task_completion_rate") > before
    assert len(waiting) == 6
    assert off_origin(site, page.requests) == []
    assert page.dialogs == []


def test_the_label_picker_and_forms_work_without_javascript(chromium: Any, site: Server) -> None:
    (item_id,) = seed_waiting(site.store_url, 1, now=time.time(), prefix=f"nojs{time.time_ns()}")
    context = chromium.new_context(java_script_enabled=False)
    tab = context.new_page()
    try:
        _sign_in(tab, site, "reviewer")
        tab.goto(f"{site.url}/review/items/{item_id}")
        tab.click("text=Claim this item")
        tab.fill("#label-search", LABELS[5])
        tab.fill("#note", "picked from the list")
        tab.uncheck('input[type=checkbox][name="next"]')
        tab.click("text=Resolve with it")
        tab.wait_for_url(f"{site.url}/review?n=resolved")
        assert "Resolved." in tab.inner_text(".notice")
    finally:
        context.close()
    with store.open(site.store_url) as events:
        item = events.queue.get(item_id)
        assert (item.state, item.label, item.note) == ("resolved", 5, "picked from the list")


def test_screenshots_of_the_reviewer_page_and_the_dashboard(
    page: Any, site: Server, backend_url: str
) -> None:
    if not backend_url.startswith("sqlite"):
        pytest.skip("the screenshots are taken once, on the SQLite server")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _sign_in(page, site, "reviewer")
    page.screenshot(path=str(SCREENSHOTS / "reviewer-queue.png"), full_page=True)
    page.click("table.items tbody tr:nth-child(1) td.input a")
    page.wait_for_url("**/review/items/*")
    if page.query_selector("text=Claim this item"):
        page.click("text=Claim this item")
    page.screenshot(path=str(SCREENSHOTS / "reviewer-item.png"), full_page=True)
    page.goto(f"{site.url}/dashboard")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    page.goto(f"{site.url}/dashboard?window=7d&bucket=day")
    assert page.locator("svg.chart").count() >= 6
    for name in ("reviewer-queue.png", "reviewer-item.png", "dashboard.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
    assert off_origin(site, page.requests) == []


def test_hostile_text_shows_literally_and_never_runs(page: Any, site: Server) -> None:
    ids = [
        _escalation(
            site,
            f"hostile-{time.time_ns()}-{i}",
            {"text": text, HOSTILE[1]: HOSTILE[2]},
            reason=f"escalate: {HOSTILE[(i + 1) % len(HOSTILE)]}",
            queue_reason=HOSTILE[i],
        )
        for i, text in enumerate(HOSTILE)
    ]
    _sign_in(page, site)
    page.goto(f"{site.url}/review?q=window.__pwned")
    for item_id in [None, *ids]:
        if item_id is not None:
            page.goto(f"{site.url}/review/items/{item_id}")
            page.click("summary")  # open the context
        for element in page.query_selector_all("td, blockquote, dd, dt, p"):
            if element.is_visible():
                element.hover(timeout=2000, force=True)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        text = page.inner_text("main")
        if item_id is not None:
            assert HOSTILE[ids.index(item_id)] in text
    assert HOSTILE[0] in page.inner_text("main")
    assert page.dialogs == []
    assert off_origin(site, page.requests) == []


def _escalation(
    site: Server, task: str, context: dict[str, str], *, reason: str, queue_reason: str
) -> int:
    """One escalated decision (top labels 1 and 2) and its queue item; the item's id."""
    decision = {
        "action": "escalate",
        "predicted": 1,
        "confidence": 0.2,
        "prediction_set": [1, 2],
        "top_labels": [[1, 0.2], [2, 0.19]],
        "reason": reason,
        "context": context,
    }
    request = store.QueueRequest(task, "escalation", queue_reason, 0.99)
    with store.open(site.store_url) as events:
        (item_id,) = events.record_decision(task, decision, at=time.time() - 1, enqueue=[request])
    return item_id


def _long_reason_item(site: Server) -> int:
    """An escalation whose reason is too long for its cell (the queue shows "more")."""
    reason = (
        "escalate: inside quarantined blind spot (quarantine 4, finding 17), where answers "
        "were wrong 41% of the time; "
        + " ".join(["the monitor found inputs unlike the reference"] * 3)
    )
    text = "my transfer to my landlord bounced and I was charged twice"
    return _escalation(
        site, f"long-{time.time_ns()}", {"text": text}, reason=reason, queue_reason=reason
    )


#: Widths of a desktop, a small laptop, a split window and phones.
WIDTHS = (1280, 800, 560, 414, 360)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pages_fit_the_window_without_sideways_scrolling(
    chromium: Any, site: Server, backend_url: str, width: int
) -> None:
    """Queue, item (with its resolve form), dashboard and the keymap fit every width, down
    to a 360 px phone: tables scroll in their own box or become cards, charts scale."""
    long_item = _long_reason_item(site)
    context = chromium.new_context(viewport={"width": width, "height": 900})
    tab = context.new_page()
    shots = backend_url.startswith("sqlite") and width != 800
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def fits(name: str, *, full_page: bool = True) -> None:
        scroll, inner = tab.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= inner, (name, width, scroll)
        if shots:
            tab.screenshot(path=str(SCREENSHOTS / f"{name}-{width}px.png"), full_page=full_page)

    try:
        _sign_in(tab, site, "admin", "/review")
        fits("queue")
        row = tab.locator(f'table.items tbody tr[data-href="/review/items/{long_item}"]')
        row.locator("summary").click()  # the rest of the reason, in place
        assert row.locator("details.more").get_attribute("open") is not None
        assert tab.url == f"{site.url}/review"  # the disclosure does not open the item
        assert "the monitor found inputs unlike the reference" in row.inner_text()
        fits("queue-reason")
        tab.keyboard.press("?")
        assert tab.is_visible("#keymap")
        fits("keymap", full_page=False)  # the dialog sits in the middle of the screen
        tab.keyboard.press("Escape")
        tab.goto(f"{site.url}/review/items/{long_item}")
        tab.click("text=Claim this item")
        tab.wait_for_url(f"**/review/items/{long_item}?n=claimed")
        assert tab.is_visible("#resolve")
        fits("item")
        for name, path in (
            ("dashboard", "/dashboard"),
            ("dashboard-7d", "/dashboard?window=7d&bucket=day"),
        ):
            tab.goto(f"{site.url}{path}")
            fits(name)
            for chart in tab.query_selector_all("svg.chart"):
                box = chart.bounding_box()
                assert box is not None
                assert 0 <= box["x"] <= box["x"] + box["width"] <= width
    finally:
        context.close()


def test_the_keyboard_acts_on_what_has_the_focus_and_never_behind_the_help(
    page: Any, site: Server
) -> None:
    """``j`` moves the focus to the selected item; Enter on another control presses that
    control, not the selected row; no shortcut acts while the keymap is open; ``c`` claims
    the item on screen; the first Tab offers to skip the header; the focused control always
    shows a visible outline."""
    _sign_in(page, site, "reviewer")
    page.goto(f"{site.url}/review?state=pending")
    page.keyboard.press("j")
    page.keyboard.press("j")
    selected = page.locator("table.items tbody tr.selected")
    assert selected.count() == 1
    href = selected.get_attribute("data-href")
    assert page.evaluate("() => document.activeElement.closest('tr.selected') !== null"), (
        "the selected row's link has the focus"
    )
    page.focus("form.filters input[name=q]")
    page.keyboard.press("Escape")  # leaves the field: shortcuts work again
    page.focus("form.filters button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/review?" in page.url  # the filter ran, the row did not open
    assert "/items/" not in page.url
    page.keyboard.press("?")
    assert page.is_visible("#keymap")
    page.keyboard.press("n")  # claim next: not while the help is open
    page.keyboard.press("j")
    assert page.is_visible("#keymap")
    assert "/items/" not in page.url
    page.keyboard.press("Escape")
    assert page.is_hidden("#keymap")
    assert href is not None
    page.goto(f"{site.url}{href}")
    with page.expect_navigation():
        page.keyboard.press("c")
    assert page.url.endswith("?n=claimed")
    assert page.is_visible("#resolve")
    page.keyboard.press("Tab")  # the first stop skips the header
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    assert page.is_visible("a.skip")
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert outline[0] != "none", outline
    assert outline[1] >= 2, outline
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("1")  # the shortcuts still work from there
    page.wait_for_url("**/review**n=resolved")
    assert off_origin(site, page.requests) == []
