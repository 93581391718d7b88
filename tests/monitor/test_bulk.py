"""The bulk window statistics over a Parquet export agree with the per-window monitor."""

from __future__ import annotations

from pathlib import Path

import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.export import to_parquet
from failwise.monitor import run_monitor, window_statistics
from tests.monitor.conftest import N_KNOWN, fill, make_system


def test_duckdb_over_the_export_gives_the_monitor_s_numbers(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    system = make_system()
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as events:
        ids = fill(events, system, 1200, start=36_000.0, novel_share=0.2)
        for task_id in ids[::3]:
            task = events.task(task_id)
            if task.action == "answer":
                unseen = f"topic {N_KNOWN}" in str(task.decision)
                label = (int(task.label or 0) + 1) % N_KNOWN if unseen else int(task.label or 0)
                events.record_event(task_id, "audit_label", label=label)
        run = run_monitor(events, system.reference, window="5m", now=1e9)
    to_parquet(url, tmp_path / "export")
    bulk = window_statistics(tmp_path / "export", system.reference, window="5m")
    assert [b["window_start"] for b in bulk] == [w.window_start for w in run.windows]
    for exact, fast in zip(run.windows, bulk, strict=True):
        assert fast["n_tasks"] == exact.n_tasks
        assert fast["action_mix"] == pytest.approx(exact.stats["action_mix"])
        for key in ("estimate", "low", "high", "corrected", "corrected_low", "corrected_high"):
            assert fast["estimate"][key] == pytest.approx(exact.stats["estimate"][key]), key
        by_name = {t["name"]: t for t in exact.stats["tests"]}
        tests = {t["name"]: t for t in fast["tests"]}
        assert tests["predicted_label"]["p_value"] == pytest.approx(
            by_name["predicted_label"]["p_value"]
        )
        assert tests["confidence"]["statistic"] == pytest.approx(
            by_name["confidence"]["statistic"], abs=0.01
        )
        assert (tests["calibration"]["p_value"] < 0.01) == (
            by_name["calibration"]["p_value"] < 0.01
        )


def test_bulk_statistics_refuse_count_windows_and_a_folder_that_is_no_export(
    tmp_path: Path,
) -> None:
    system = make_system()
    with pytest.raises(InputError, match="duration"):
        window_statistics(tmp_path, system.reference, window=500)
    with pytest.raises(InputError, match="not a failwise Parquet export"):
        window_statistics(tmp_path, system.reference, window="1h")
