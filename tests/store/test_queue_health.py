"""Queue health in one statement equals the definitions computed item by item in Python,
on both backends: empty queues, every item past due, claims, leases that ran out, and
resolutions undone."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failwise import store

T0 = 1_699_999_200.0  # a whole hour
DAY = 86_400.0
_DAYS = itertools.count(1)

#: Due within a minute of queueing, whatever the kind: everything not resolved at once
#: is past due.
TIGHT = store.ServiceLevels(escalation_minutes=[(0.0, 1.0)], audit_minutes=1.0)


def _expected(
    events: store.Store, since: float, until: float, width: float, levels: Any, at: float
) -> dict[str, Any]:
    """Every figure of :class:`~failwise.store.QueueHealth`, from the items one by one."""
    rows = events._read(
        "SELECT kind, priority, created_at, state, lease_expires_at, resolved_at, resolved_by "
        "FROM queue_items"
    )
    start = math.floor(since / width) * width
    n = max(math.ceil((until - start) / width), 1)
    end = start + n * width
    created, resolved, breaches = [0] * n, [0] * n, [0] * n
    reviewers: list[set[str]] = [set() for _ in range(n)]
    open_at_start = 0
    open_now: list[tuple[float, bool, bool, bool]] = []  # queued, waiting, claimed, past due

    def bucket(t: float) -> int | None:
        k = math.floor((t - start) / width)
        return k if start <= t < end and 0 <= k < n else None

    for kind, priority, queued, state, lease, resolved_at, by in rows:
        due = queued + levels.due_s(kind, priority)
        done = state == "resolved"
        if queued < start:
            open_at_start += 1 if not (done and resolved_at < start) else 0
        elif (k := bucket(queued)) is not None:
            created[k] += 1
        if done and (k := bucket(resolved_at)) is not None:
            resolved[k] += 1
            reviewers[k] |= set() if by is None else {by}
        passed = due <= at and (not done or resolved_at > due)
        if passed and (k := bucket(due)) is not None:
            breaches[k] += 1
        if not done and queued <= at:
            expired = lease is not None and lease <= at
            waiting = state in ("pending", "expired") or expired
            held = state == "claimed" and lease is not None and lease > at
            open_now.append((queued, waiting, held, due <= at))
    depth = list(itertools.accumulate(c - r for c, r in zip(created, resolved, strict=True)))
    times = [o[0] for o in open_now]
    return {
        "at": at,
        "waiting": sum(o[1] for o in open_now),
        "claimed": sum(o[2] for o in open_now),
        "oldest_age_s": at - min(times) if times else math.nan,
        "median_age_s": at - statistics.median(times) if times else math.nan,
        "breached": sum(o[3] for o in open_now),
        "starts": [start + k * width for k in range(n)],
        "bucket_s": width,
        "depth": [open_at_start + d for d in depth],
        "created": created,
        "resolved": resolved,
        "reviewers": [len(r) for r in reviewers],
        "breaches": breaches,
    }


def _check(
    events: store.Store, since: float, until: float, width: float, levels: Any, at: float
) -> store.QueueHealth:
    health = events.queue.health(since, until, width, levels=levels, at=at)
    got = {name: getattr(health, name) for name in health.__dataclass_fields__}
    want = _expected(events, since, until, width, levels, at)
    for name, value in want.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == value, name
    return health


def _queue(events: store.Store, base: float, items: list[tuple[float, str, float]]) -> list[int]:
    ids = [f"h{base:.0f}-{i}" for i in range(len(items))]
    decisions = [
        (task, {"action": "escalate"}, base + at)
        for task, (at, _, _) in zip(ids, items, strict=True)
    ]
    requests = [
        store.QueueRequest(task, kind, "sampled" if kind == "audit" else "low confidence", priority)
        for task, (_, kind, priority) in zip(ids, items, strict=True)
    ]
    return events.record_decisions(decisions, enqueue=requests) if items else []


def _work(
    events: store.Store, item: int, queued: float, fate: tuple[str, float, float, int]
) -> None:
    """What reviewers did with one item: nothing, a claim (its lease may run out), a
    release, a resolution, or a resolution undone."""
    action, wait, handling, who = fate
    if action == "none":
        return
    reviewer = ("ann", "bob")[who]
    claimed = queued + wait
    events.queue.claim_item(item, reviewer, lease_s=600.0, at=claimed)
    if action == "release":
        events.queue.release(item, at=claimed + handling)
    elif action in ("resolve", "undo"):
        events.queue.resolve(item, who, reviewer=reviewer, at=claimed + handling)
        if action == "undo":
            events.queue.reopen(item, at=claimed + handling + 30.0)


_item = st.tuples(
    st.floats(0.0, 6 * 3600.0),
    st.sampled_from(["escalation", "audit"]),
    st.sampled_from([0.1, 0.6, 0.9]),
)
_fate = st.tuples(
    st.sampled_from(["none", "claim", "release", "resolve", "resolve", "undo"]),
    st.floats(0.0, 7200.0),
    st.floats(1.0, 550.0),
    st.integers(0, 1),
)


@pytest.fixture
def events(store_url: str) -> Iterator[store.Store]:
    with store.open(store_url) as opened:
        yield opened


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=st.lists(st.tuples(_item, _fate), max_size=25),
    window=st.tuples(st.floats(-3600.0, 3 * 3600.0), st.floats(600.0, DAY / 2)),
    width=st.sampled_from([600.0, 3600.0, 1234.5]),
    later=st.floats(-7200.0, DAY),
    tight=st.booleans(),
)
def test_health_equals_the_definitions_item_by_item(
    events: store.Store,
    items: list[tuple[tuple[float, str, float], tuple[str, float, float, int]]],
    window: tuple[float, float],
    width: float,
    later: float,
    tight: bool,
) -> None:
    # A store shared by the examples, each on a day of its own: the earlier days' items are
    # the queue before the window.
    base = T0 + next(_DAYS) * DAY
    ids = _queue(events, base, [item for item, _ in items])
    for item, ((queued, _, _), fate) in zip(ids, items, strict=True):
        _work(events, item, base + queued, fate)
    since = base + window[0]
    until = since + window[1]
    levels = TIGHT if tight else store.ServiceLevels()
    _check(events, since, until, width, levels, until + later)


def test_an_empty_queue_has_no_depth_flow_or_age(events: store.Store) -> None:
    health = _check(events, T0, T0 + 7200.0, 3600.0, store.ServiceLevels(), T0 + 7200.0)
    assert (health.depth, health.created, health.breaches) == ([0, 0], [0, 0], [0, 0])
    assert (health.waiting, health.claimed, health.breached) == (0, 0, 0)
    assert math.isnan(health.oldest_age_s)
    assert math.isnan(health.median_age_s)


def test_when_every_item_is_past_due_every_one_is_a_breach(events: store.Store) -> None:
    ids = _queue(
        events, T0, [(60.0 * k, "escalation" if k % 2 else "audit", 0.9) for k in range(6)]
    )
    events.queue.claim_item(ids[0], "ann", lease_s=60.0, at=T0 + 10.0)
    health = _check(events, T0, T0 + 3 * 3600.0, 3600.0, TIGHT, T0 + 3 * 3600.0)
    assert health.breached == sum(health.breaches) == 6
    assert (health.waiting, health.claimed) == (6, 0)  # the claim's lease ran out


def test_a_resolution_undone_opens_its_item_again(events: store.Store) -> None:
    first, second = _queue(events, T0, [(0.0, "escalation", 0.6), (100.0, "escalation", 0.6)])
    for item in (first, second):
        events.queue.claim_item(item, "ann", lease_s=3600.0, at=T0 + 200.0)
        events.queue.resolve(item, 1, reviewer="ann", at=T0 + 300.0)
    events.queue.reopen(second, at=T0 + 400.0)
    health = _check(events, T0, T0 + 3600.0, 600.0, store.ServiceLevels(), T0 + 3000.0)
    assert (health.resolved[0], health.reviewers[0], health.depth[-1]) == (1, 1, 1)
    # the undo's lease (300 s) ran out: the item waits again
    assert (health.waiting, health.claimed, health.median_age_s) == (1, 0, 2900.0)
