"""The digits system of :func:`failwise.testing.digits_system`, with the policies the tests use.

Digits 0–7 are the model's classes; 8 and 9 are out of scope (label -1). A logistic
regression gives logits, temperature scaling calibrates them, a k-nearest-neighbour
distance on the pixels scores out-of-scope inputs, and a nearest-centroid rule is the
deterministic fallback (it answers only when one centroid is clearly nearest).
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from failwise import OutcomeCosts, Policy
from failwise.exceptions import UncertifiedWarning
from failwise.testing import CentroidRule, DigitsSystem, digits_system

__all__ = [
    "N_CLASSES",
    "POLICIES",
    "CentroidRule",
    "Digits",
    "digits",
    "fit_policy",
    "named_policy",
]

N_CLASSES = 8
#: The shared system is :class:`failwise.testing.DigitsSystem`.
Digits = DigitsSystem


@cache
def digits() -> DigitsSystem:
    """Digits 0–7 in scope, 8 and 9 out of scope; the same system every call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        return digits_system(held_out=(8, 9), random_state=0)


def fit_policy(
    data: DigitsSystem, *, ood: bool = False, fallback: bool = False, **params: Any
) -> Policy:
    """A policy fitted on the validation split (with OOD scores and fallback labels if asked)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        return Policy(**params).fit(
            data.proba(data.X_val),
            data.y_val,
            ood_score=data.ood(data.X_val) if ood else None,
            fallback=data.fallback_labels(data.X_val) if fallback else None,
        )


#: Policies covering every rung: (constructor arguments, fit with OOD scores, with fallback).
POLICIES: dict[str, tuple[dict[str, Any], bool, bool]] = {
    "risk": ({"target_risk": 0.05}, False, False),
    "risk_ood_fallback_capacity": (
        {"target_risk": 0.05, "fallback_min_accuracy": 0.6, "max_escalation_rate": 0.15},
        True,
        True,
    ),
    "cost_aps_ood_fallback_capacity": (
        {
            "target_risk": None,
            "costs": OutcomeCosts(),
            "max_escalation_rate": 0.15,
            "clarify_method": "aps",
        },
        True,
        True,
    ),
    "no_humans": ({"target_risk": 0.05, "escalate": False}, True, False),
    "capacity": ({"target_risk": None, "max_escalation_rate": 0.2}, False, False),
}


def named_policy(name: str) -> Policy:
    params, ood, fallback = POLICIES[name]
    return fit_policy(digits(), ood=ood, fallback=fallback, **params)
