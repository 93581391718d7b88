"""Quarantining a blind spot found by the monitor, and releasing it after review."""

from __future__ import annotations

import numpy as np
import pytest

from failwise import store
from failwise.exceptions import InputError
from failwise.monitor import (
    quarantine,
    quarantine_unseen,
    release,
    release_reviewed,
    run_monitor,
)
from failwise.runtime import Guard
from tests.monitor.conftest import N_KNOWN, System, fill


def _quarantine_guard(system: System, events: store.Store) -> Guard:
    """A guard of ``system`` that records its inputs as features and runs the quarantine."""
    return Guard(
        lambda x: system.proba[0],
        None,
        system.policy,
        store=events,
        features=lambda x: x,
        quarantine=True,
    )


def test_a_quarantined_blind_spot_is_escalated_then_released_after_review(
    events: store.Store, system: System
) -> None:
    fill(events, system, 1000, novel_share=0.3)
    run = run_monitor(events, system.reference, window=500, now=1e9)
    spot = next(f for f in run.findings if f.kind == "blind_spot")
    zone = quarantine(events, spot.id)
    assert quarantine(events, spot.id) == zone  # quarantining twice changes nothing
    centre = np.asarray(spot.statistics["centre"])

    inside = centre * 5.0
    guard = _quarantine_guard(system, events)
    decisions = [guard.decide(inside + 0.001 * i) for i in range(3)]
    assert all(d.action.value == "escalate" for d in decisions)
    assert release_reviewed(events, min_labelled=3) == []  # nobody reviewed yet
    for _ in decisions:
        item = events.queue.claim("alice")
        assert item is not None
        events.queue.resolve(item.id, label=N_KNOWN - 1, reviewer="alice")
    (released,) = release_reviewed(events, min_labelled=3)
    assert (released.quarantine_id, released.n_labelled) == (zone, 3)
    assert events.quarantines(active_only=True) == []
    assert "reviewed escalations" in (events.quarantines()[0].note or "")


def test_only_blind_spots_can_be_quarantined_and_release_is_explicit_too(
    sqlite_url: str, system: System
) -> None:
    with store.open(sqlite_url) as events:
        fill(events, system, 500, novel_share=0.3)
        run = run_monitor(events, system.reference, window=500, now=1e9)
        other = next(f for f in run.findings if f.kind != "blind_spot")
        with pytest.raises(InputError, match="only blind spots"):
            quarantine(events, other.id)
        spot = next(f for f in run.findings if f.kind == "blind_spot")
        zone = quarantine(events, spot.id, note="checking")
        assert release(events, zone, by="bob") is True
        assert release(events, zone, by="bob") is False
        with pytest.raises(InputError, match="failwise store"):
            quarantine(object(), 1)
        with pytest.raises(InputError, match="min_labelled"):
            release_reviewed(events, min_labelled=0)


def test_an_unseen_input_alert_quarantines_inputs_nearer_its_far_inputs_than_the_reference(
    events: store.Store, system: System
) -> None:
    fill(events, system, 500, novel_share=0.2)
    run = run_monitor(events, system.reference, window=500, now=1e9)
    alert = next(f for f in run.findings if f.kind == "unseen_inputs")
    far = alert.statistics["far_inputs"]
    assert far
    assert alert.statistics["metric"] == "cosine"
    zones = quarantine_unseen(events, alert.id)
    assert len(zones) == len(far)
    assert quarantine_unseen(events, alert.id) == zones  # quarantining twice changes nothing
    assert {z.finding_id for z in events.quarantines(active_only=True)} >= {alert.id}
    guard = _quarantine_guard(system, events)
    # Unseen categories fall inside the zones of their far neighbours; known ones do not.
    novel = [guard.decide(x) for x in system.features(N_KNOWN, 20)]
    known = [guard.decide(x) for x in system.features(0, 20)]
    caught = [d for d in novel if "quarantine" in d.extra]
    assert len(caught) >= 10
    assert sum("quarantine" in d.extra for d in known) <= 1
    assert f"finding {alert.id})" in caught[0].reason
    # Reviews of any of the finding's zones add up; all its zones are released together.
    for _ in range(3):
        item = events.queue.claim("alice")
        assert item is not None
        events.queue.resolve(item.id, label=0, reviewer="alice")
    released = release_reviewed(events, min_labelled=3)
    assert {r.quarantine_id for r in released} >= set(zones)
    assert {r.n_labelled for r in released if r.finding_id == alert.id} == {3}
    assert not [z for z in events.quarantines(active_only=True) if z.finding_id == alert.id]


def test_only_an_unseen_input_alert_has_far_inputs_to_quarantine(
    sqlite_url: str, system: System
) -> None:
    with store.open(sqlite_url) as events:
        fill(events, system, 500, novel_share=0.3)
        run = run_monitor(events, system.reference, window=500, now=1e9)
        spot = next(f for f in run.findings if f.kind == "blind_spot")
        with pytest.raises(InputError, match="takes an 'unseen_inputs' alert"):
            quarantine_unseen(events, spot.id)
        with pytest.raises(InputError, match="failwise store"):
            quarantine_unseen(object(), 1)
        with pytest.raises(InputError, match="`reach` must be"):
            quarantine_unseen(events, spot.id, reach=0.0)
