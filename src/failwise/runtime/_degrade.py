"""The ladder without the model: what an input gets when there are no probabilities.

When the model raised, hung, returned bad scores, the calibrator failed, the circuit breaker
is open, or the out-of-scope scorer failed while the policy relies on it, only the rungs
that need no model remain: the policy's trusted fallback label, else a human (escalate),
else an honest abstention. The reason sentence says what failed and what was done.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from failwise.policy import NO_LABEL, Action, Band, FallbackRung, Policy

__all__ = ["Degrader"]

_WHAT: Final = {"calibrator": "calibrator failed", "ood": "out-of-scope scorer failed"}


class Degrader:
    """Decides inputs without the model, with the fallback trust of ``policy``'s ladder."""

    def __init__(self, policy: Policy) -> None:
        rungs = [r for r in policy.rungs_ if isinstance(r, FallbackRung)]
        self._fallback = rungs[0] if rungs else FallbackRung(policy.fallback_trusted_)
        self._escalate = bool(policy.escalate)

    def fields(
        self,
        kind: str,
        detail: str,
        fallback_label: int,
        proba: NDArray[np.float64] | None = None,
    ) -> dict[str, Any]:
        """:class:`~failwise.Decision` fields for an input whose model step failed.

        ``proba`` is given when only the out-of-scope scorer failed: the confidence and
        top label are then recorded, though not acted on.
        """
        what = _WHAT.get(kind, "model failed")
        if self._fallback.trusts(fallback_label):
            action, label = Action.FALLBACK, fallback_label
            said = "out of scope (-1)" if fallback_label < 0 else f"label {fallback_label}"
            tail = f"the fallback gave {said}"
        elif self._escalate:
            action, label = Action.ESCALATE, None
            tail = "no trusted fallback label, so a human decides"
        else:
            action, label = Action.ABSTAIN, None
            tail = "no trusted fallback label and escalation to humans is turned off"
        if proba is not None:
            predicted = int(proba.argmax())
            confidence = float(proba[predicted])
        else:
            predicted, confidence = NO_LABEL, 0.0
        return {
            "action": action,
            "label": label,
            "confidence": confidence,
            "band": Band.LOW,
            "prediction_set": (),
            "reason": f"{action.value}: {what}: {detail}; {tail}",
            "predicted": predicted,
            "ood_score": None,
        }
