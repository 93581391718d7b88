"""The reviewer page and the dashboard through the in-process client: every form, every
refusal, the numbers against the JSON API, and hostile text printed literally."""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from failwise import store
from failwise.service import Settings, create_app

#: Text that would run a script, break out of an attribute or a textarea, or reorder the
#: page, if it were printed unescaped.
HOSTILE = (
    "<script>window.__pwned=1</script>",
    '" onmouseover="window.__pwned=1" data-x="',
    "</textarea><script>window.__pwned=2</script>",
    "'><img src=x onerror=window.__pwned=3>",
    "\u202eevil\u202c \u200fمرحبا\u200f",
)
LONG = "𝕌𝕟𝕚𝕔𝕠𝕕𝕖 ﷽ " * 200
LABELS = ("refund", "card_lost", HOSTILE[0])


def _decision(text: str, *, confidence: float = 0.3, **extra: Any) -> dict[str, Any]:
    return {
        "action": "escalate",
        "predicted": 0,
        "confidence": confidence,
        "prediction_set": [0, 1],
        "top_labels": [[0, confidence], [1, 0.25], [2, 0.2]],
        "reason": f"escalate: confidence {confidence:.2f} below the answer threshold",
        "context": {"text": text, "user": HOSTILE[1]},
        **extra,
    }


@pytest.fixture
def app(tmp_path: Path, policy_dir: Path) -> Iterator[tuple[TestClient, str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    keys = {}
    with store.open(url) as opened:
        keys["reviewer"] = opened.keys.create("reviewer", HOSTILE[3]).token
        keys["other"] = opened.keys.create("reviewer", "bob").token
        keys["viewer"] = opened.keys.create("viewer", "vic").token
        keys["admin"] = opened.keys.create("admin", "ada").token
    settings = Settings(policy=policy_dir, store=url, labels=LABELS, undo_window_s=120.0)
    with TestClient(create_app(settings)) as client:
        yield client, url, keys


def _sign_in(client: TestClient, key: str) -> str:
    client.cookies.clear()
    response = client.post("/sign-in", data={"key": key, "next": "/review"}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get("/dashboard")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _seed(url: str, n: int = 3, text: str = "where is my refund") -> list[int]:
    now = time.time()
    ids = []
    with store.open(url) as opened:
        for i in range(n):
            task = f"task-{i}-{time.monotonic_ns()}"
            request = store.QueueRequest(task, "escalation", "low confidence", 0.9 - i / 10)
            ids += opened.record_decision(
                task, _decision(f"{text} {i}"), at=now - 60 * i, enqueue=[request]
            )
    return ids


def _location(response: Any) -> str:
    assert response.status_code == 303, response.text[:500]
    return str(response.headers["location"])


def test_pages_ask_to_sign_in_and_roles_see_only_their_pages(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, _, keys = app
    assert _location(client.get("/review", follow_redirects=False)).startswith(
        "/sign-in?next=%2Freview"
    )
    assert client.get("/sign-in?next=//evil.example").text.count("//evil.example") == 0
    _sign_in(client, keys["viewer"])
    forbidden = client.get("/review")
    assert forbidden.status_code == 403
    assert "admin, reviewer" in forbidden.text
    assert client.get("/dashboard").status_code == 200
    assert _location(client.get("/", follow_redirects=False)) == "/dashboard"
    _sign_in(client, keys["reviewer"])
    assert _location(client.get("/", follow_redirects=False)) == "/review"
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/../_app.py").status_code == 404
    assert client.get("/static/other.js").status_code == 404


def test_every_page_forbids_other_origins(app: tuple[TestClient, str, dict[str, str]]) -> None:
    client, _, keys = app
    _sign_in(client, keys["reviewer"])
    for path in ("/review", "/dashboard", "/sign-in"):
        policy = client.get(path).headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "form-action 'self'" in policy


def test_claim_resolve_next_and_undo_through_the_forms(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    first, second, third = _seed(url)
    csrf = _sign_in(client, keys["reviewer"])
    assert client.post("/review/claim", data={}).status_code == 403  # no CSRF token
    opened = _location(
        client.post("/review/claim", data={"csrf_token": csrf}, follow_redirects=False)
    )
    assert opened == f"/review/items/{first}"
    item = client.get(opened)
    assert "where is my refund 0" in item.text
    assert 'data-key="1"' in item.text
    assert "30.0%" in item.text  # the top label's calibrated probability
    moved = client.post(
        f"/review/items/{first}/resolve",
        data={"csrf_token": csrf, "label": "1", "note": "customer wants money back", "next": "1"},
        follow_redirects=False,
    )
    assert _location(moved) == f"/review/items/{second}?n=resolved"
    with store.open(url) as events:
        done = events.queue.get(first)
        assert (done.state, done.label, done.note) == ("resolved", 1, "customer wants money back")
    queue = client.get("/review")
    assert f"/review/items/{first}/undo" in queue.text
    undone = client.post(
        f"/review/items/{first}/undo", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert _location(undone) == f"/review/items/{first}?n=undone"
    with store.open(url) as events:
        assert events.queue.get(first).state == "claimed"
    # a typed label name, then out of scope, then nothing left to claim
    typed = client.post(
        f"/review/items/{first}/resolve",
        data={"csrf_token": csrf, "label_name": "CARD_LOST"},
        follow_redirects=False,
    )
    assert _location(typed) == "/review?n=resolved"
    client.post(f"/review/items/{second}/resolve", data={"csrf_token": csrf, "out_of_scope": "1"})
    assert _location(
        client.post("/review/claim", data={"csrf_token": csrf}, follow_redirects=False)
    ) == (f"/review/items/{third}")
    assert (
        _location(
            client.post(
                f"/review/items/{third}/release", data={"csrf_token": csrf}, follow_redirects=False
            )
        )
        == "/review?n=released"
    )
    with store.open(url) as events:
        assert [events.queue.get(i).label for i in (first, second)] == [1, -1]
        assert events.queue.get(third).state == "pending"


def test_refusals_come_back_as_notices_and_write_nothing(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    (item,) = _seed(url, 1)
    csrf = _sign_in(client, keys["reviewer"])
    # not claimed yet: resolving is refused
    refused = client.post(
        f"/review/items/{item}/resolve",
        data={"csrf_token": csrf, "label": "0"},
        follow_redirects=False,
    )
    assert _location(refused) == f"/review/items/{item}?n=conflict"
    assert "Someone else changed this item first" in client.get(_location(refused)).text
    client.post(f"/review/items/{item}/claim", data={"csrf_token": csrf})
    unknown = client.post(
        f"/review/items/{item}/resolve",
        data={"csrf_token": csrf, "label_name": "no such label"},
        follow_redirects=False,
    )
    assert _location(unknown) == f"/review/items/{item}?n=label"
    other = _sign_in(client, keys["other"])
    taken = client.post(
        f"/review/items/{item}/claim", data={"csrf_token": other}, follow_redirects=False
    )
    assert _location(taken) == f"/review/items/{item}?n=conflict"
    assert (
        _location(
            client.post(
                f"/review/items/{item}/undo", data={"csrf_token": other}, follow_redirects=False
            )
        )
        == f"/review/items/{item}?n=too-late"
    )
    assert client.get("/review/items/999999").status_code == 404
    assert (
        _location(
            client.post(
                "/review/items/999999/release", data={"csrf_token": other}, follow_redirects=False
            )
        )
        == "/review?n=refused"
    )
    with store.open(url) as events:
        assert events.queue.get(item).claimed_by == HOSTILE[3]


def test_filters_search_and_bulk_resolve_with_a_dry_run_count(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    spam = _seed(url, 3, text="WIN crypto now")
    keep = _seed(url, 2, text="lost my card")
    csrf = _sign_in(client, keys["reviewer"])
    listed = client.get("/review", params={"q": "crypto"})
    assert listed.text.count("WIN crypto now") == 3
    assert "lost my card" not in listed.text
    assert "3 items" in listed.text
    dry = client.post(
        "/review/bulk",
        data={"csrf_token": csrf, "q": "crypto", "action": "resolve", "label_name": "out of scope"},
    )
    assert re.search(r"data-bulk-count>3<", dry.text)
    with store.open(url) as events:
        assert all(events.queue.get(i).state == "pending" for i in spam)
    applied = client.post(
        "/review/bulk",
        data={
            "csrf_token": csrf,
            "q": "crypto",
            "action": "resolve",
            "label_name": "out of scope",
            "note": "spam wave",
            "confirm": "yes",
        },
        follow_redirects=False,
    )
    assert _location(applied) == "/review?q=crypto&n=bulk-done"
    with store.open(url) as events:
        assert {events.queue.get(i).label for i in spam} == {-1}
        assert all(events.queue.get(i).state == "pending" for i in keep)
    # release: claim two, count, release
    client.post("/review/claim", data={"csrf_token": csrf})
    client.post("/review/claim", data={"csrf_token": csrf})
    counted = client.post("/review/bulk", data={"csrf_token": csrf, "action": "release"})
    assert re.search(r"data-bulk-count>2<", counted.text)
    client.post("/review/bulk", data={"csrf_token": csrf, "action": "release", "confirm": "yes"})
    with store.open(url) as events:
        assert all(events.queue.get(i).state == "pending" for i in keep)
    missing = client.post(
        "/review/bulk",
        data={"csrf_token": csrf, "action": "resolve", "label_name": "?"},
        follow_redirects=False,
    )
    assert _location(missing) == "/review?n=label"
    for params in (
        {"kind": "audit"},
        {"state": "resolved", "predicted": "refund"},
        {"min_age_min": "1", "breached": "no", "assignee": "bob", "reason": "low"},
        {"kind": "nonsense", "state": "nonsense", "predicted": "nonsense", "min_age_min": "x"},
        {"offset": "50"},
        {"offset": "x"},
    ):
        assert client.get("/review", params=params).status_code == 200


def test_hostile_text_is_printed_literally_everywhere(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    now = time.time()
    ids: list[int] = []
    with store.open(url) as events:
        for i, text in enumerate((*HOSTILE, LONG)):
            task = f"hostile-{i}"
            request = store.QueueRequest(task, "escalation", HOSTILE[i % len(HOSTILE)], 0.5)
            ids += events.record_decision(task, _decision(text), at=now - i, enqueue=[request])
        item = events.queue.claim(HOSTILE[3], at=now)
        assert item is not None
        events.queue.resolve(item.id, 2, note=HOSTILE[2], reviewer=HOSTILE[3], at=now)
    csrf = _sign_in(client, keys["reviewer"])
    assert csrf
    pages = [
        client.get("/review"),
        client.get(f"/review/items/{item.id}"),
        client.get("/dashboard"),
    ]
    pages += [client.get(f"/review/items/{queue_item}") for queue_item in ids]
    for response in pages:
        assert response.status_code == 200
        body = response.text
        for text in (*HOSTILE, LABELS[2]):
            if any(c in text for c in "<>\"'"):
                assert text not in body
        assert "<script>window" not in body
        assert 'onmouseover="' not in body
        assert "<img src=x" not in body
    item_page = pages[1].text
    assert html.escape(HOSTILE[2], quote=True) in item_page or html.escape(HOSTILE[2]) in item_page
    assert html.escape(LABELS[2]) in item_page  # the label name of the resolution
    assert "\u202eevil\u202c" in pages[0].text  # unicode control characters stay as text
    assert LONG.strip()[:40] in pages[-1].text


def _last_hour_window(
    events: Any, monitor: str, now: float, *, at: float | None = None, **fields: Any
) -> None:
    """A window of ``monitor`` over the hour before the last, stored at ``at`` (default: 50
    minutes ago)."""
    events.append_monitor_window(
        monitor,
        after=None,
        window_start=now - 7200.0,
        window_end=now - 3600.0,
        last_task=None,
        at=now - 3000.0 if at is None else at,
        **fields,
    )


def test_the_dashboard_shows_the_numbers_of_the_metrics_api(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    now = time.time()
    with store.open(url) as events:
        for i in range(40):
            decision = {
                "action": "answer" if i % 4 else "escalate",
                "label": 1,
                "predicted": 1,
                "confidence": 0.5 + i / 100,
            }
            events.record_decision(f"d{i}", decision, at=now - 3600 * (i % 20) - 10)
            if i % 4:
                events.feedback(
                    f"d{i}",
                    "accepted" if i % 3 else "corrected",
                    label=None if i % 3 else 2,
                    at=now - 3600 * (i % 20),
                )
        _last_hour_window(
            events,
            "drift-1h",
            now,
            n_tasks=40,
            stats={},
            findings=[
                {
                    "kind": "blind_spot",
                    "severity": "alert",
                    "statistics": {"size": 7, "share": 0.25},
                },
                {"kind": "custom_check", "severity": "change", "statistics": {"x": HOSTILE[0]}},
                {"kind": "calibration_broken", "severity": "alert", "statistics": {}},
                {"kind": "unseen_inputs", "severity": "alert", "statistics": {"n_unseen": 3}},
            ],
        )
    _sign_in(client, keys["viewer"])
    monitor = client.get("/dashboard").text
    assert "Blind spot" in monitor
    assert "7 inputs (25.0% of the window)" in monitor
    assert "Custom check" in monitor
    assert html.escape(HOSTILE[0]) in monitor
    # Findings without the statistics of their sentence are listed as they are.
    assert "? audits" not in monitor
    assert "— on" not in monitor
    assert "no statistics recorded" in monitor
    assert "n unseen 3" in monitor
    for window, bucket in (("24h", "hour"), ("7d", "day"), ("6h", "hour"), ("bad", "bad")):
        page = client.get("/dashboard", params={"window": window, "bucket": bucket})
        assert page.status_code == 200
        since = float(re.search(r'data-since="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
        until = float(re.search(r'data-until="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
        api = client.get(
            "/v1/metrics",
            params={"since": since, "until": until},
            headers={"Authorization": f"Bearer {keys['viewer']}"},
        ).json()
        shown = dict(re.findall(r'data-metric="([a-z0-9_]+)" data-value="([^"]*)"', page.text))
        assert set(shown) >= {"task_completion_rate", "escalation_rate", "automation_rate"}
        for name, value in shown.items():
            expected = api[name]
            if expected is None:
                assert value == ""
            else:
                assert math.isclose(float(value), expected, rel_tol=1e-12), name
        assert "<svg" in page.text
    assert "Calibration in production" in page.text
    assert 'class="chart"' in page.text


def test_every_page_action_needs_a_reviewer_and_a_csrf_token(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    (item,) = _seed(url, 1)
    actions = [
        "/review/claim",
        "/review/bulk",
        f"/review/items/{item}/claim",
        f"/review/items/{item}/resolve",
        f"/review/items/{item}/release",
        f"/review/items/{item}/undo",
    ]
    client.cookies.clear()
    for path in actions:
        assert client.post(path, data={}).status_code == 401, path
    viewer = _sign_in(client, keys["viewer"])
    for path in actions:
        assert client.post(path, data={"csrf_token": viewer}).status_code == 403, path
    reviewer = _sign_in(client, keys["reviewer"])
    for path in actions:
        assert client.post(path, data={"csrf_token": reviewer + "x"}).status_code == 403, path
    assert client.get(f"/review/items/{item}").status_code == 200
    with store.open(url) as events:
        assert events.queue.get(item).state == "pending"  # nothing was written
    admin = _sign_in(client, keys["admin"])
    assert client.get("/review").status_code == 200
    assert (
        _location(
            client.post(
                f"/review/items/{item}/claim", data={"csrf_token": admin}, follow_redirects=False
            )
        )
        == f"/review/items/{item}?n=claimed"
    )


def test_the_dashboard_shows_what_the_monitor_found_in_words(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    """A real monitor run: blind spots (one quarantined), unseen inputs, and each window's
    label-free estimate against an audit sample that contradicts it."""
    from failwise.monitor import quarantine, run_monitor
    from tests.monitor.conftest import N_KNOWN, fill, make_system

    client, url, keys = app
    now = time.time()
    system = make_system()
    with store.open(url) as events:
        ids = fill(events, system, 600, start=now - 3 * 3600.0, novel_share=0.3)
        for i, task in enumerate(ids[::10]):  # audits that disagree with most answers
            events.record_event(task, "audit_label", label=i % N_KNOWN, at=now - 60.0)
        run = run_monitor(events, system.reference, window=300, now=now)
        spot = next(f for f in run.findings if f.kind == "blind_spot")
        quarantine(events, spot.id)
    _sign_in(client, keys["viewer"])
    page = client.get("/dashboard", params={"window": "6h"}).text
    monitor = page[page.index('id="monitor-title"') :]
    assert monitor.count('data-kind="blind_spot"') == sum(
        f.kind == "blind_spot" for f in run.findings
    )
    assert "Blind spot (quarantined: escalated)" in re.sub(r"<[^>]+>", "", monitor)
    assert "inputs unlike the reference" in monitor  # unseen inputs, counted
    assert "Label-free estimate" in monitor
    assert len(re.findall(r"contradicts <span[^>]*>\(p = [^;]+; below ", monitor)) == 2


def test_the_dashboard_lists_every_recent_monitor_window_with_or_without_findings(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    """Windows that made no finding are in the estimate table too, and so is a window whose
    monitor stored no estimate; only the latest 12 are read, every field escaped."""
    from failwise.monitor import run_monitor
    from tests.monitor.conftest import fill, make_system

    client, url, keys = app
    now = time.time()
    system = make_system()
    hostile = '<script>alert("m")</script>/1h'
    with store.open(url) as events:
        fill(events, system, 900, start=now - 3 * 3600.0, novel_share=0.0)
        run = run_monitor(events, system.reference, window=300, now=now)
        windows = events.monitor_windows(run.monitor)
        _last_hour_window(events, hostile, now, at=now, n_tasks=0, stats={"n_tasks": 0})
        for i in range(14):  # older windows of a third monitor, stored later: 8 are listed
            events.append_monitor_window(
                "old/1h",
                after=None if i == 0 else events.last_monitor_window("old/1h").id,  # type: ignore[union-attr]
                window_start=now - 5 * 3600.0 + i,
                window_end=now - 5 * 3600.0 + i + 1,
                last_task=None,
                n_tasks=1,
                stats={"estimate": {"estimate": 0.5, "n_answers": 1}},
            )
    assert len(windows) == 3
    _sign_in(client, keys["viewer"])
    page = client.get("/dashboard", params={"window": "6h"}).text
    table = page[page.index('class="compact estimates') :]
    table = table[: table.index("</table>")]
    rows = [html.unescape(m) for m in re.findall(r'<tr data-monitor="([^"]*)"', table)]
    assert len(rows) == 12
    assert rows.count(run.monitor) == 3  # each window, whether or not it found anything
    assert rows.count(hostile) == 1
    assert "<script>" not in table
    assert "not estimated" not in table
    assert "no automatic answer" in table
    assert table.count("no audit") == 12  # no window of these has an audit
    # by end time, latest first: the hostile window, the run's, then the old monitor's
    assert rows[:4] == [hostile] + [run.monitor] * 3


def _tiles(page: str) -> dict[str, str]:
    """Each tile's text, tags removed, by metric name."""
    tiles = re.findall(
        r'<div class="tile" data-metric="([^"]+)"[^>]*>(.*?)</div>\s*</div>', page, re.S
    )
    return {name: " ".join(re.sub(r"<[^>]+>", " ", body).split()) for name, body in tiles}


def test_a_metric_without_a_value_shows_its_bounds_and_why(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    _sign_in(client, keys["viewer"])
    empty = _tiles(client.get("/dashboard").text)
    assert empty["task_completion_rate"].endswith("— no task in the window")
    _seed(url, 2)  # escalations only: nothing answered automatically
    waiting = _tiles(client.get("/dashboard").text)
    assert waiting["selective_accuracy"].endswith("— no automatic answer")
    now = time.time()
    with store.open(url) as events:  # answers nobody audited, and no feedback yet
        for i in range(10):
            decision = {"action": "answer", "label": 1, "predicted": 1, "confidence": 0.9}
            events.record_decision(f"a{i}", decision, at=now - 60.0 * (i + 1))
    tiles = _tiles(client.get("/dashboard").text)
    completion = tiles["task_completion_rate"]
    assert re.search(r"— between \d+\.\d% and \d+\.\d% bounds only: needs more audited", completion)
    assert "bounds only" in tiles["silent_failure_rate"]
    assert "bounds only" in tiles["selective_accuracy"]
    assert tiles["automation_rate"].startswith("Automation rate 83.3%")  # 10 of 12


def test_an_items_history_reads_in_words(app: tuple[TestClient, str, dict[str, str]]) -> None:
    client, url, keys = app
    (item,) = _seed(url, 1)
    with store.open(url) as events:
        claimed = events.queue.claim("bob")
        assert claimed is not None
        events.queue.resolve(claimed.id, label=1, reviewer="bob", note=HOSTILE[2])
    _sign_in(client, keys["reviewer"])
    page = client.get(f"/review/items/{item}").text
    history = page[page.index('class="history"') :]
    history = " ".join(re.sub(r"<[^>]+>", "", history[: history.index("</ol>")]).split())
    assert re.search(r"Decided: escalate .* Escalation queued .* Escalation claimed · bob", history)
    assert "Escalation resolved → card_lost · bob" in history
    assert 'data-kind="escalation_resolved"' in page
    assert HOSTILE[2] not in page  # the note is escaped
    assert "In the prediction set" in page  # this decision has one


def _queue_rows(page: str) -> list[str]:
    """The queue table's item rows, as HTML."""
    return re.findall(r'<tr data-href="/review/items/\d+".*?</tr>', page, re.S)


def test_a_long_reason_is_readable_in_the_queue_with_the_rest_behind_more(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    """A short reason shows whole; a long one shows its first clause (or as many whole
    words as fit), and the rest behind a disclosure: nothing is cut mid-word, nothing lost."""
    client, url, keys = app
    short = "escalate: confidence 0.31 < answer threshold 0.8 and no trusted fallback applies"
    clause = "escalate: inside quarantined blind spot (quarantine 4, finding 17) found at 09:00"
    long = f"{clause}; " + " ".join(["inputs there were wrong 41% of the time in the audits"] * 2)
    wordy = "escalate " + " ".join(["because-of-a-very-long-token"] * 8)  # no "; " to cut after
    hostile = HOSTILE[0] + "; " + HOSTILE[1] * 3
    unbroken = "escalate:" + "x" * 150  # no space at all: cut at the limit
    now = time.time()
    with store.open(url) as events:
        for i, reason in enumerate((short, long, wordy, hostile, unbroken)):
            request = store.QueueRequest(f"r{i}", "escalation", reason, 0.9 - i / 10)
            events.record_decision(f"r{i}", _decision(f"query {i}"), at=now - i, enqueue=[request])
    _sign_in(client, keys["reviewer"])
    rows = _queue_rows(client.get("/review").text)
    assert len(rows) == 5
    cells = [re.search(r'<td class="reason"[^>]*>(.*?)</td>', row, re.S) for row in rows]
    shown = [cell.group(1) if cell else "" for cell in cells]
    assert shown[0] == html.escape(short)  # whole, no disclosure
    assert shown[4].startswith(f'<details class="more"><summary>{unbroken[:120]}<')
    assert shown[4].endswith(f"</summary>{unbroken[120:]}</details>")
    for text, cell in zip((long, wordy, hostile), shown[1:4], strict=True):
        found = re.fullmatch(
            r'<details class="more"><summary>(.*?)<span class="more-hint"> … more</span>'
            r"</summary>(.*?)</details>",
            cell,
            re.S,
        )
        assert found is not None, cell
        head, rest = (html.unescape(part) for part in found.groups())
        assert f"{head} {rest}" == text  # nothing lost, cut at a space
        assert 40 <= len(head) <= 120
    assert html.unescape(re.sub("<[^>]+>", "", shown[1])).startswith(f"{clause};")
    assert "<script>window" not in "".join(shown)
    assert 'onmouseover="' not in "".join(shown)


def test_empty_queue_and_dashboard_say_why_they_are_empty(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    _sign_in(client, keys["reviewer"])
    queue = client.get("/review").text
    assert "Nothing is waiting: the queue is empty." in queue
    assert "nothing open" in queue
    dashboard = client.get("/dashboard").text
    assert "No task was decided in the window" in dashboard
    assert "No item was queued, open or resolved in the window." in dashboard
    assert 'class="chart"' not in dashboard  # no empty axes
    _seed(url, 2, text="card thing")
    filtered = client.get("/review", params={"q": "no such words"}).text
    assert "Nothing matches these filters." in filtered
    assert 'href="/review">Clear them</a>' in filtered
    assert "oldest " in client.get("/review").text
    charted = client.get("/dashboard").text
    assert "No task was decided" not in charted
    assert "No item was queued" not in charted
    assert charted.count('class="chart"') == 6


def test_counts_on_the_dashboard_have_separators_and_shares_are_percentages(
    app: tuple[TestClient, str, dict[str, str]],
) -> None:
    client, url, keys = app
    with store.open(url) as events:
        _last_hour_window(
            events,
            "big/1h",
            time.time(),
            n_tasks=1_234_567,
            stats={"estimate": {"estimate": 0.91, "n_answers": 45_210, "n_audited": 2_048}},
            findings=[
                {
                    "kind": "audit_gap",
                    "severity": "alert",
                    "statistics": {
                        "audit_accuracy": 0.78,
                        "mean_confidence": 0.9125,
                        "n": 12_345,
                        "spread": 2.5,
                    },
                }
            ],
        )
    _sign_in(client, keys["viewer"])
    page = client.get("/dashboard").text
    table = page[page.index('class="compact estimates') :]
    for count in ("1,234,567", "45,210", "2,048"):
        assert f">{count}</td>" in table
    # a finding of a kind without a sentence: shares as percentages, counts with separators
    assert "audit accuracy 78.0%, mean confidence 91.2%, n 12,345, spread 2.5" in page
