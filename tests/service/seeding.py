"""A realistic day of a support assistant's intent routing, written to a store.

Banking-style intents, confidence that depends on how hard the query is, the ladder's
actions from that confidence, users who accept, correct or abandon, reviewers who work
the escalations and audits with human handling times, and a few items still waiting.
Used by the browser tests (screenshots of a lived-in queue and dashboard) and by the
reviewer benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from failwise import store

__all__ = ["LABELS", "Seeded", "seed_day", "seed_waiting"]

LABELS: tuple[str, ...] = (
    "card_arrival",
    "card_lost_or_stolen",
    "refund_not_showing",
    "transfer_failed",
    "exchange_rate",
    "pin_blocked",
    "top_up_failed",
    "cash_withdrawal_fee",
)

_QUERIES: dict[int, tuple[str, ...]] = {
    0: (
        "When will my new card arrive?",
        "My card still hasn't come, it's been 10 days",
        "how long does card delivery take to Spain",
    ),
    1: (
        "I lost my card on the train",
        "someone stole my wallet with the card in it",
        "Freeze my card please, I can't find it",
    ),
    2: (
        "The refund from the shop is not in my account yet",
        "refund still not showing after a week",
        "Where is the money the merchant sent back?",
    ),
    3: (
        "My transfer to my landlord failed",
        "why did the bank transfer bounce back?",
        "Transfer says declined but money left my account",
    ),
    4: (
        "What rate do you use for USD to EUR?",
        "exchange rate looks worse than Google's",
        "How much is 100 GBP in yen today",
    ),
    5: (
        "I typed my PIN wrong three times",
        "PIN is blocked, how do I unlock it",
        "card blocked after wrong pin at ATM",
    ),
    6: (
        "Top up with Apple Pay didn't work",
        "my top-up is pending for hours",
        "can't add money from my debit card",
    ),
    7: (
        "Why was I charged for taking cash out?",
        "ATM fee on my statement I didn't expect",
        "is there a limit for free withdrawals",
    ),
}
_HARD = (
    "Can you help me with something?",
    "it doesn't work",
    "I need to talk to someone",
    "Is my money safe??",
    "card thing again",
)


@dataclass
class Seeded:
    """What :func:`seed_day` wrote."""

    n_tasks: int = 0
    waiting: list[int] = field(default_factory=list)
    reviewers: tuple[str, ...] = ()


def _decision(rng: np.random.Generator, truth: int, hard: bool) -> tuple[dict[str, Any], str]:
    n = len(LABELS)
    alpha = np.full(n, 0.3)
    alpha[truth] += 1.5 if hard else 6.0
    proba = rng.dirichlet(alpha)
    order = np.argsort(-proba)
    top = int(order[0])
    confidence = float(proba[top])
    cumulative = np.cumsum(proba[order])
    prediction_set = [int(j) for j in order[: int(np.searchsorted(cumulative, 0.9)) + 1]]
    if confidence >= 0.8:
        action, reason = "answer", f"answer: confidence {confidence:.2f} ≥ answer threshold 0.80"
    elif len(prediction_set) <= 3 and confidence >= 0.45:
        action, reason = (
            "clarify",
            (f"clarify: {len(prediction_set)} likely labels; confidence {confidence:.2f}"),
        )
    elif rng.random() < 0.08:
        action, reason = "abstain", "abstain: out of scope score 0.93 above threshold 0.80"
    else:
        action, reason = (
            "escalate",
            (
                f"escalate: confidence {confidence:.2f} below the answer threshold 0.80 and the "
                f"prediction set has {len(prediction_set)} labels"
            ),
        )
    decision = {
        "action": action,
        "label": top if action == "answer" else None,
        "predicted": top,
        "confidence": confidence,
        "band": "high" if confidence >= 0.8 else "medium" if confidence >= 0.5 else "low",
        "prediction_set": prediction_set,
        "reason": reason,
        "top_labels": [[int(j), float(proba[j])] for j in order[:5]],
        "label_name": LABELS[top] if action == "answer" else None,
    }
    return decision, action


def seed_day(
    url: str,
    *,
    now: float,
    n_tasks: int = 600,
    hours: float = 24.0,
    waiting: int = 18,
    reviewers: tuple[str, ...] = ("maria", "jonas", "priya"),
    seed: int = 7,
) -> Seeded:
    """Write ``n_tasks`` tasks spread over the ``hours`` before ``now``, with what followed.

    Escalations and audits older than half an hour are worked by ``reviewers``; the most
    recent ``waiting`` escalations are left in the queue.
    """
    rng = np.random.default_rng(seed)
    times = np.sort(now - rng.uniform(60.0, hours * 3600.0, n_tasks))
    rows, requests, plans = [], [], []
    for i, at in enumerate(times):
        truth = int(rng.integers(len(LABELS)))
        hard = rng.random() < 0.18
        text = (
            str(rng.choice(_HARD))
            if hard and rng.random() < 0.5
            else str(rng.choice(_QUERIES[truth]))
        )
        decision, action = _decision(rng, truth, hard)
        decision["context"] = {
            "text": text,
            "channel": str(rng.choice(["chat", "app", "email"])),
            "user": f"u{int(rng.integers(10_000, 99_999))}",
        }
        task = f"day-{seed}-{i}"
        rows.append((task, decision, float(at)))
        priority = round(1.0 - decision["confidence"], 3)
        if action == "escalate":
            requests.append(store.QueueRequest(task, "escalation", decision["reason"], priority))
        elif action == "answer" and rng.random() < 0.12:
            reason = (
                f"audit: a random 0.12 share of answer decisions is reviewed; this one had "
                f"confidence {decision['confidence']:.3f}"
            )
            requests.append(store.QueueRequest(task, "audit", reason, priority))
        plans.append((task, float(at), action, truth, decision))
    seeded = Seeded(n_tasks=n_tasks, reviewers=reviewers)
    with store.open(url) as events:
        ids = events.record_decisions(rows, enqueue=requests)
        item_of = {request.task_id: item for request, item in zip(requests, ids, strict=True)}
        for task, at, action, truth, decision in plans:
            draw = rng.random()
            if action == "answer":
                if decision["label"] == truth or draw < 0.5:
                    events.feedback(task, "accepted", at=at + float(rng.uniform(2, 40)))
                elif draw < 0.8:
                    events.feedback(task, "corrected", label=truth, at=at + 50.0)
                else:
                    events.feedback(task, "abandoned", at=at + 70.0)
            elif action == "clarify":
                pick = truth if truth in decision["prediction_set"] and draw < 0.85 else None
                events.record_event(task, "clarification_choice", label=pick, at=at + 9.0)
            elif action == "abstain" and draw < 0.6:
                events.feedback(task, "accepted", at=at + 3.0)
        recent = sorted((at, task) for task, at, action, *_ in plans if action == "escalate")[
            -waiting:
        ]
        keep = {task for _, task in recent}
        truths = {task: truth for task, _, _, truth, _ in plans}
        created = {task: at for task, at, *_ in plans}
        for task, item_id in sorted(item_of.items(), key=lambda kv: created[kv[0]]):
            if task in keep:
                seeded.waiting.append(item_id)
                continue
            start = created[task] + float(rng.uniform(60, 1500))
            if start > now - 60:
                seeded.waiting.append(item_id)
                continue
            reviewer = str(rng.choice(reviewers))
            events.queue.claim_item(item_id, reviewer, lease_s=3600.0, at=start)
            label = truths[task] if rng.random() < 0.93 else int(rng.integers(len(LABELS)))
            done = min(start + float(rng.gamma(2.0, 25.0)), now - 1.0)
            events.queue.resolve(item_id, label, reviewer=reviewer, at=done)
        events.append_monitor_window(
            "confidence-1h",
            after=None,
            window_start=now - 7200.0,
            window_end=now - 3600.0,
            last_task=None,
            n_tasks=n_tasks // 24,
            stats={"mean_confidence": 0.71},
            findings=[
                {
                    "kind": "calibration_broken",
                    "severity": "alert",
                    "statistics": {"audit_accuracy": 0.78, "mean_confidence": 0.91, "n": 42},
                },
                {
                    "kind": "confidence_drift",
                    "severity": "change",
                    "statistics": {"p_value": 0.0031, "shift": -0.06},
                },
            ],
            at=now - 3500.0,
        )
    return seeded


def seed_waiting(
    url: str, n: int, *, now: float, seed: int = 11, prefix: str = "wait"
) -> list[int]:
    """``n`` escalations queued just before ``now``, for a reviewer to work through."""
    rng = np.random.default_rng(seed)
    rows, requests = [], []
    for i in range(n):
        truth = int(rng.integers(len(LABELS)))
        decision, _ = _decision(rng, truth, hard=True)
        decision.update(
            action="escalate",
            label=None,
            label_name=None,
            reason=(
                f"escalate: confidence {decision['confidence']:.2f} below the answer threshold "
                f"0.80 and the prediction set has {len(decision['prediction_set'])} labels"
            ),
        )
        decision["context"] = {"text": str(rng.choice(_QUERIES[truth])), "channel": "chat"}
        task = f"{prefix}-{seed}-{i}"
        rows.append((task, decision, now - n + i))
        requests.append(
            store.QueueRequest(task, "escalation", decision["reason"], 1.0 - decision["confidence"])
        )
    with store.open(url) as events:
        return events.record_decisions(rows, enqueue=requests)
