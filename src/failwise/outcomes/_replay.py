"""Deprecated home of the replay; use :func:`failwise.testing.replay`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from failwise._validation import check_consistent_length, check_labels, describe
from failwise.exceptions import InputError
from failwise.outcomes._model import OutcomeModel
from failwise.policy import Decision
from failwise.testing._replay import ReplayResult, act_out, check_model

__all__ = ["ReplaySummary", "replay"]

#: Deprecated name of :class:`failwise.testing.ReplayResult`.
ReplaySummary = ReplayResult


def replay(
    store: Any,
    decisions: Sequence[Decision],
    y_true: ArrayLike,
    outcome_model: OutcomeModel | None = None,
    *,
    n_classes: int | None = None,
    clarification_audit_rate: float = 0.2,
    random_state: int | np.random.Generator | None = 0,
) -> ReplayResult:
    """Act out users and reviewers for decisions a guard recorded in ``store``.

    .. deprecated::
        Use :func:`failwise.testing.replay(guard, X, y, ...) <failwise.testing.replay>`,
        which also runs the inputs through the guard.
    """
    warnings.warn(
        "failwise.outcomes._replay.replay(store, decisions, y) is deprecated; use "
        "failwise.testing.replay(guard, X, y, outcome_model), which runs the inputs through "
        "the guard and acts out the same users and reviewers.",
        DeprecationWarning,
        stacklevel=2,
    )
    from failwise.store import Store

    if not isinstance(store, Store):
        raise InputError(
            f"`store` must be a Store from failwise.store.open; got {describe(store)}."
        )
    items = list(decisions)
    if not all(isinstance(d, Decision) and isinstance(d.task_id, str) for d in items):
        raise InputError(
            "`decisions` must be the Decisions a Guard with a store returned (each with its "
            "task_id)."
        )
    y = check_labels(y_true, "y_true", allow_out_of_scope=True)
    check_consistent_length(decisions=items, y_true=y)
    model = check_model(outcome_model)
    if (
        isinstance(clarification_audit_rate, bool)
        or not isinstance(clarification_audit_rate, (int, float))
        or not 0.0 <= clarification_audit_rate <= 1.0
    ):
        raise InputError(
            "`clarification_audit_rate` must be a share in [0, 1]; got "
            f"{describe(clarification_audit_rate)}."
        )
    k = int(n_classes) if n_classes is not None else int(max(int(y.max()), 0) + 1)
    return act_out(
        store,
        items,
        y,
        model,
        n_classes=k,
        clarification_audit_rate=float(clarification_audit_rate),
        audit_accuracy=1.0,  # as this entry point always did: auditors give the true label
        rng=np.random.default_rng(random_state),
    )
