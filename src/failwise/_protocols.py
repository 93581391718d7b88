"""The typed seams between failwise's parts: what each part needs from the next one.

Each arrow of the data flow (scores → calibrator → ladder → decision → event log) has one
:class:`typing.Protocol` here, so the runtime, the CLI and a service depend on a shape, not
on a class. All are runtime-checkable (``isinstance`` checks the methods exist, not their
signatures).

- :class:`ScoreModel`: what a :class:`~failwise.runtime.Guard` calls for scores: a
  callable ``x -> scores`` or an object with ``predict_proba`` / ``decision_function``
  (:class:`BatchScoreModel`).
- :class:`Calibrator`: turns scores into calibrated probabilities.
- :class:`OutOfScopeScorer`: scores inputs for being out of scope.
- :class:`Fallback`: a deterministic rule ``x -> label | None``.
- :class:`EventSink`: what the guard needs from an event store (contract C1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from failwise.store import QueueRequest

__all__ = [
    "BatchScoreModel",
    "Calibrator",
    "EventSink",
    "Fallback",
    "OutOfScopeScorer",
    "ScoreModel",
]


@runtime_checkable
class ScoreModel(Protocol):
    """A model as a callable: ``model(x)`` returns the score vector of ONE input.

    Logits or probabilities, shape (n_classes,) (or (1, n_classes)). With
    ``Guard(..., batch_model=True)`` the callable takes a list of inputs instead and
    returns shape (n_inputs, n_classes).
    """

    def __call__(self, x: Any, /) -> ArrayLike: ...


@runtime_checkable
class BatchScoreModel(Protocol):
    """A model as an estimator: ``predict_proba(X)`` of shape (n_inputs, n_classes).

    An object with ``decision_function`` (and no ``predict_proba``) is used the same way,
    its scores calibrated by the guard's calibrator.
    """

    def predict_proba(self, X: Sequence[Any], /) -> ArrayLike: ...


@runtime_checkable
class Calibrator(Protocol):
    """Scores of shape (n_samples, n_scores) to probabilities (n_samples, n_classes)."""

    def predict_proba(self, scores: ArrayLike, /) -> ArrayLike: ...


@runtime_checkable
class OutOfScopeScorer(Protocol):
    """Out-of-scope score per input, higher = more likely out of scope (e.g. KNNDistance).

    ``score(X)`` takes a list of inputs and returns shape (n_inputs,): a
    :class:`~failwise.runtime.Guard` calls it once per ``decide_batch`` (with ``[x]`` for
    ``decide``). A plain callable ``x -> float`` works too, called per input, or with
    ``Guard(..., batch_ood=True)`` once per batch like ``score``.
    """

    def score(self, X: Sequence[Any], /) -> ArrayLike: ...


@runtime_checkable
class Fallback(Protocol):
    """A deterministic rule: a class index, -1 (out of scope) or None (no opinion)."""

    def __call__(self, x: Any, /) -> int | None: ...


@runtime_checkable
class EventSink(Protocol):
    """What a guard needs from an event store: one call per decision batch (contract C1).

    ``record_decisions`` commits the decisions and the queue items requested for them
    (escalations, audits) in ONE transaction: either all are durable or none is.
    :class:`failwise.store.Store` implements it.
    """

    def record_decisions(
        self,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        at: float | None = None,
        enqueue: Sequence[QueueRequest] | None = None,
    ) -> object: ...
