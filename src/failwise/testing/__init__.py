"""Test your own ladder: scripted users and reviewers, a ready-made system, an in-memory sink.

- :func:`replay` runs inputs through a real :class:`~failwise.runtime.Guard` and event store
  and acts out the users and reviewers of an :class:`~failwise.OutcomeModel` on it — the
  same behaviour draws as :func:`~failwise.project`, so ``measure`` on the log reproduces the
  projection, and the reviewers' labels feed :mod:`failwise.loop`.
- :func:`digits_system` builds a small guarded system on scikit-learn's digits (model,
  calibrator, out-of-scope scorer, fallback rule, fitted policy), with held-out digits and
  an optional production drift.
- :class:`InMemoryEventSink` records what a guard writes, in memory, for unit tests.

Examples
--------
>>> from failwise.testing import InMemoryEventSink, digits_system
>>> system = digits_system(held_out=(8, 9))
>>> sink = InMemoryEventSink()
>>> decisions = system.guard(store=sink).decide_batch(list(system.X_test[:50]))
>>> len(sink.decisions), sink.calls, system.n_classes
(50, 1, 8)
>>> sorted({r.kind for r in sink.queued})
['escalation']
"""

from __future__ import annotations

from failwise.testing._digits import DEFAULT_POLICY, CentroidRule, DigitsSystem, digits_system
from failwise.testing._replay import ReplayResult, replay
from failwise.testing._sink import InMemoryEventSink, RecordedDecision, SinkUnavailableError

__all__ = [
    "DEFAULT_POLICY",
    "CentroidRule",
    "DigitsSystem",
    "InMemoryEventSink",
    "RecordedDecision",
    "ReplayResult",
    "SinkUnavailableError",
    "digits_system",
    "replay",
]
