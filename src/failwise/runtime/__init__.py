"""The runtime: wrap a model in a :class:`Guard` so every input gets a decision.

:class:`Guard` calls the model (with a time limit and a circuit breaker if asked),
calibrates its scores, runs the fitted decision ladder, samples confident answers for
audit and records everything in an event store. Model failures never reach the caller:
they send the input down the ladder, and the decision's ``reason`` says what happened.
"""

from __future__ import annotations

from failwise.runtime._audit import AuditSampler
from failwise.runtime._breaker import circuit_breaker
from failwise.runtime._group_commit import GroupCommit
from failwise.runtime._guard import DecisionNotRecordedError, Guard

__all__ = [
    "AuditSampler",
    "DecisionNotRecordedError",
    "GroupCommit",
    "Guard",
    "circuit_breaker",
]
