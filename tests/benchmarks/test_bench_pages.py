"""The dashboard and reviewer benchmarks run end to end on tiny sizes and keep their claims.

Nothing here looks at how fast anything is (a quick run's numbers mean nothing); the
tests prove that the scripts work, that the dashboard's totals equal ``measure`` and that
the scripted reviewer resolved every item once, with the label it was shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.quick_run import quick_run


@pytest.mark.slow
def test_the_dashboard_benchmark_times_the_page_and_its_totals_equal_measure(
    tmp_path: Path,
) -> None:
    pytest.importorskip("duckdb")
    payload = quick_run("bench_dashboard.py", tmp_path / "dashboard.json", timeout_s=900)
    ran = [case for case in payload["cases"] if "unavailable" not in case]
    assert ran
    for case in ran:
        assert case["totals_equal_measure"] is True
        assert case["buckets"] in (720, 721)
        assert len(case["seconds"]["page"]) == payload["repeats"]
    assert len(payload["load_average"]["before"]) == 3


@pytest.mark.slow
@pytest.mark.browser
def test_the_reviewer_benchmark_resolves_every_item_once_with_the_keyboard(
    tmp_path: Path,
) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    payload = quick_run("bench_reviewer.py", tmp_path / "reviewer.json", timeout_s=900)
    assert payload["resolved"] == payload["items"] == 15
    assert payload["all_seeded_resolved"] is True
    assert payload["each_resolved_once_with_the_label_shown"] is True
    assert payload["per_minute"] > 0
