"""The monitor section's helpers: a window written once per day."""

from __future__ import annotations

from datetime import UTC, datetime

from failwise.service._dashboard_monitor import window_span


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_window_names_its_end_date_only_when_it_differs() -> None:
    assert window_span(_at("2026-01-05 09:00:00"), _at("2026-01-05 10:00:00")) == (
        "2026-01-05 09:00:00 – 10:00:00"
    )
    assert window_span(_at("2026-01-05 23:30:00"), _at("2026-01-06 00:30:00")) == (
        "2026-01-05 23:30:00 – 2026-01-06 00:30:00"
    )
    assert window_span(None, _at("2026-01-05 10:00:00")) == "—"
