"""The monitor's report section: its charts and cards, and a screenshot in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.monitor import run_monitor
from failwise.report import render_monitor_report, write_monitor_report
from tests.monitor.conftest import N_KNOWN, fill, make_system

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


@pytest.fixture
def monitored(tmp_path: Path) -> dict[str, Any]:
    """Windows and findings of a monitor run over ordinary and unseen traffic with audits."""
    system = make_system()
    with store.open(f"sqlite:///{tmp_path / 'events.db'}") as events:
        for k in range(6):
            ids = fill(events, system, 400, first=400 * k, novel_share=0.0 if k < 3 else 0.25)
            for task_id in ids[::4]:
                task = events.task(task_id)
                if task.action != "answer":
                    continue
                unseen = f"topic {N_KNOWN}" in str(task.decision) or f"topic {N_KNOWN + 1}" in str(
                    task.decision
                )
                label = (int(task.label or 0) + 1) % N_KNOWN if unseen else int(task.label or 0)
                events.record_event(task_id, "audit_label", label=label)
        run = run_monitor(events, system.reference, window=400, now=1e9)
        events.quarantine(
            next(f.id for f in run.findings if f.kind == "blind_spot"),
            centre=[1.0] * 16,
            radius=0.1,
        )
        states = {z.finding_id: z.state for z in events.quarantines()}
    return {
        "windows": [
            {
                "window_start": w.window_start,
                "window_end": w.window_end,
                "n_tasks": w.n_tasks,
                "stats": w.stats,
            }
            for w in run.windows
        ],
        "findings": [f.to_dict() for f in run.findings],
        "quarantined": states,
    }


def test_the_page_shows_the_estimate_the_p_values_and_every_blind_spot(
    monitored: dict[str, Any],
) -> None:
    page = render_monitor_report(title="Support assistant", generated_by="test", **monitored)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2
    assert "audit-corrected" in page
    assert "level 0.0021" in page
    spots = [f for f in monitored["findings"] if f["kind"] == "blind_spot"]
    assert page.count('class="spot"') == len(spots) > 0
    assert "active" in page
    assert "request " in page
    assert "<script" not in page
    assert "http" not in page.split("</style>")[1]


def test_an_empty_monitor_still_renders_and_bad_rows_are_refused(tmp_path: Path) -> None:
    page = render_monitor_report(title="t", windows=[], findings=[], generated_by="test")
    assert "no window monitored yet" in page
    assert "<svg" not in page
    with pytest.raises(InputError, match="window_start"):
        render_monitor_report(title="t", windows=[{"n_tasks": 1}], findings=[], generated_by="x")
    with pytest.raises(InputError, match="folder"):
        write_monitor_report(tmp_path, title="t", windows=[], findings=[], generated_by="x")


def test_a_screenshot_of_the_monitor_report(monitored: dict[str, Any], tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    page_path = write_monitor_report(
        tmp_path / "monitor.html",
        title="Support assistant: monitor",
        generated_by="test",
        **monitored,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / "monitor-report.png"
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            view = browser.new_page(viewport={"width": 1100, "height": 900})
            view.goto(page_path.as_uri())
            assert view.locator("svg.chart").count() == 2
            width = view.evaluate(
                "document.querySelector('svg.chart').getBoundingClientRect().width"
            )
            assert width > 500
            view.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()
    assert target.stat().st_size > 10_000
