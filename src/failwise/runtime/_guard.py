"""`Guard`: the runtime wrapper that turns one model call into one `Decision`.

For every input the guard calls the model (with an optional time limit and circuit
breaker), calibrates its scores, scores the input for being out of scope, runs the fitted
decision ladder and, with a store, records the decision and queues escalations and audits.
Whatever the model does — raise, hang, return NaN or a vector of the wrong length — the
caller gets a :class:`~failwise.Decision`: the input goes down the ladder without the model
(a trusted fallback label, else a human, else an honest abstention) and the decision's
``reason`` says what happened.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from failwise._validation import (
    PROBABILITY_SUM_TOLERANCE,
    check_fitted,
    check_probabilities,
    describe,
)
from failwise.artifacts import artifact_hash
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError, NotFittedError
from failwise.policy import NO_LABEL, Action, Band, Decision, Policy
from failwise.runtime._audit import AuditSampler, audit_reason
from failwise.runtime._breaker import BreakerGate, is_circuit_breaker
from failwise.runtime._one_row import OneRowLadder, Verdict
from failwise.runtime._timeout import ModelThreads
from failwise.store import StoreError

__all__ = ["DecisionNotRecordedError", "Guard"]

#: Most worker threads a guard keeps for model calls (time limits and ``adecide``).
MAX_MODEL_THREADS: Final = 32

_NO_OPINION: Final = -2
_BANDS: Final = (Band.LOW, Band.MEDIUM, Band.HIGH)
# Bound methods that take a batch: called with ``[x]``, row 0 of the result is used.
_BATCH_METHODS: Final = frozenset({"predict_proba", "predict_log_proba", "decision_function"})
_MODEL_KINDS: Final = frozenset({"exception", "timeout", "invalid_scores", "circuit_open"})
_REACHED_FALLBACK: Final = frozenset({Action.FALLBACK, Action.ESCALATE, Action.ABSTAIN})
_MESSAGE_LIMIT: Final = 200


class DecisionNotRecordedError(StoreError):
    """The ladder decided, but the store did not record the decision (or its queue item).

    The product rule is that no accepted event is ever lost silently, so the guard raises
    this instead of returning. The decisions are attached: serve them to the user if you
    must, and record them again (``store.record_decision(d.task_id, d.to_dict())``) once
    the store is back.

    Attributes
    ----------
    decisions : list of Decision
        What the ladder decided, in input order.
    decision_recorded : bool
        True when the decisions were recorded and only queueing an escalation or audit item
        failed.
    """

    def __init__(self, message: str, decisions: list[Decision], decision_recorded: bool) -> None:
        super().__init__(message)
        self.decisions = decisions
        self.decision_recorded = decision_recorded

    @property
    def decision(self) -> Decision:
        """The first (for ``decide``, the only) decision."""
        return self.decisions[0]


class _InvalidScoresError(Exception):
    """The model's output is not a finite score vector of the expected length."""


class _CalibratorError(Exception):
    """The calibrator raised, or returned something that is not probabilities."""


class _ModelTimeoutError(TimeoutError):
    """The model did not return within ``timeout_s``."""


class _Outcome(NamedTuple):
    """Calibrated probabilities of one input, or why there are none."""

    proba: NDArray[np.float64] | None
    error: BaseException | None
    kind: str | None
    detail: str
    model_s: float
    calibrate_s: float
    scores: NDArray[np.float64] | None = None


class _Done(NamedTuple):
    """The verdict for one input and what the decision records next to it."""

    verdict: Verdict
    failure: str | None
    ood: float | None
    ood_error: str | None


def _timings(outcome: _Outcome, ood_s: float) -> dict[str, float]:
    return {
        "model_s": outcome.model_s,
        "calibrate_s": outcome.calibrate_s,
        "ood_s": ood_s,
        "decide_s": 0.0,
        "store_s": 0.0,
        "total_s": 0.0,
    }


def _short(exc: BaseException) -> str:
    text = str(exc)
    label = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return label if len(label) <= _MESSAGE_LIMIT else label[: _MESSAGE_LIMIT - 1] + "…"


def _model_caller(model: Any) -> Callable[[Any], Any]:
    method = getattr(model, "predict_proba", None)
    if method is not None and callable(method):
        return lambda x: method([x])
    if not callable(model):
        raise InputError(
            f"`model` must be a callable x -> scores (one input, one score vector) or an "
            f"object with `predict_proba`; got {describe(model)}."
        )
    if inspect.ismethod(model) and getattr(model, "__name__", "") in _BATCH_METHODS:
        return lambda x: model([x])
    caller: Callable[[Any], Any] = model
    return caller


def _ood_caller(ood: Any) -> Callable[[Any], Any] | None:
    if ood is None:
        return None
    score = getattr(ood, "score", None)
    if score is not None and callable(score) and not inspect.isfunction(ood):
        return lambda x: score([x])
    if callable(ood):
        caller: Callable[[Any], Any] = ood
        return caller
    raise InputError(
        f"`ood` must be a callable x -> float (higher = more likely out of scope) or an "
        f"object with `.score`, such as a fitted KNNDistance; got {describe(ood)}."
    )


class Guard:
    """Wrap a model so that every input gets a :class:`~failwise.Decision`, whatever happens.

    Parameters
    ----------
    model : callable or object with ``predict_proba``
        ``x -> scores`` for ONE input: a 1-D vector of n_classes logits or probabilities
        (shape (1, n_classes) is accepted too). An object with ``predict_proba`` — or a
        bound ``predict_proba``/``decision_function`` method — is called with ``[x]`` and
        row 0 of its result is used.
    calibrator : fitted calibrator or None
        Turns the scores into calibrated probabilities with ``predict_proba``; None when the
        model already returns calibrated probabilities.
    policy : Policy
        The fitted decision ladder.
    fallback : callable, optional
        ``x -> label | None`` (e.g. :class:`~failwise.policy.KeywordRules`). Its label is
        used where the policy trusts it (``policy.fallback_trusted_``; fit the policy with
        ``fallback=`` labels so that it can measure them). Called only for inputs that reach
        the fallback rung or whose model call failed.
    ood : callable or object with ``score``, optional
        Out-of-scope score of one input (higher = more out of scope): ``ood(x)``, or
        ``ood.score([x])[0]``. Required when the policy was fitted with out-of-scope scores.
    store : Store, optional
        Event store from :func:`failwise.store.open`. Every decision is recorded, escalations
        are queued with priority ``1 - confidence`` (1.0 when the model failed), and audit
        samples are queued as ``"audit"`` items.
    timeout_s : float, optional
        Longest wait for the model, in seconds. The model then runs in a worker thread; on
        time-out the guard stops waiting and decides without it. The thread cannot be killed:
        it is abandoned and finishes on its own (worker threads are daemons, at most 32 per
        guard; see :mod:`failwise.runtime._timeout`).
    circuit_breaker : pybreaker.CircuitBreaker, optional
        E.g. :func:`failwise.runtime.circuit_breaker`. Model exceptions, time-outs and
        invalid scores count as failures; while the breaker is open the model is not called.
    audit_rate : float in [0, 1], default=0.0
        Share of ``answer`` decisions also queued for human review (non-blocking); those
        decisions have ``extra["audit"] = True``.
    random_state : int, numpy.random.Generator or None
        Seed of the audit draws.
    labels : sequence of str, optional
        Class names; decisions then carry ``extra["label_name"]``.
    record_scores : bool, default=True
        With a store, record the model's raw scores in the decision
        (``extra["scores"]``), so that labels gathered later can refit the calibrator
        (:func:`failwise.loop.recalibrate`). Turn off to keep large score vectors out of
        the event log.

    Attributes
    ----------
    policy_version : str
        Content hash of the policy (:func:`failwise.artifacts.artifact_hash`), computed once
        here and recorded in every decision. Build a new guard after refitting the policy.
    calibrator_version : str or None
        Content hash of the calibrator when it is a failwise calibrator.
    n_classes : int

    Notes
    -----
    Failures never raise: model exceptions, time-outs, NaN or infinite scores, scores of the
    wrong shape, calibrator errors, out-of-scope scorer errors (when the policy uses the
    scores) and an open circuit breaker all produce a decision whose ``extra["failure"]``
    names the kind and whose ``reason`` says what happened, e.g. ``"fallback: model failed:
    TimeoutError after 0.2 s; the fallback gave label 3"``. Only invalid arguments from the
    caller raise :class:`~failwise.InputError`, and a store that fails to record raises
    :class:`DecisionNotRecordedError` (with the decisions attached).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import Policy
    >>> from failwise.runtime import Guard
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    >>> y = np.array([rng.choice(3, p=p) for p in proba])
    >>> policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    >>> guard = Guard(lambda i: proba[i], None, policy)
    >>> decision = guard.decide(5)
    >>> decision.action.value, decision.label
    ('answer', 2)
    >>> decision.reason.split(" (")
    ['answer: confidence 0.886 ≥ answer threshold 0.756',
     'certified selective risk ≤ 0.1 at confidence 0.9)']
    >>> decision.policy_version == guard.policy_version, len(decision.task_id)
    (True, 32)
    >>> def broken(x):
    ...     raise ConnectionError("model server down")
    >>> Guard(broken, None, policy).decide(0).reason.split("; ")
    ['escalate: model failed: ConnectionError: model server down',
     'no trusted fallback label, so a human decides']
    """

    def __init__(
        self,
        model: Any,
        calibrator: Any,
        policy: Policy,
        *,
        fallback: Callable[[Any], int | None] | None = None,
        ood: Any = None,
        store: Any = None,
        timeout_s: float | None = None,
        circuit_breaker: Any = None,
        audit_rate: float = 0.0,
        random_state: int | np.random.Generator | None = None,
        labels: Sequence[str] | None = None,
        record_scores: bool = True,
    ) -> None:
        if not isinstance(policy, Policy):
            raise InputError(
                f"`policy` must be a fitted failwise Policy; got {describe(policy)}. Fit one "
                "with `Policy(...).fit(proba, y)` or load one with `failwise.artifacts.load`."
            )
        check_fitted(policy, "rungs_", "wrapping it in a Guard")
        self.model = model
        self.calibrator = calibrator
        self.policy = policy
        self.fallback = fallback
        self.ood = ood
        self.store = store
        self.timeout_s = timeout_s
        self.circuit_breaker = circuit_breaker
        self.audit_rate = audit_rate
        self.random_state = random_state
        self.labels = labels
        self.record_scores = record_scores
        if not isinstance(record_scores, bool):
            raise InputError(
                f"`record_scores` must be True or False; got {describe(record_scores)}."
            )

        self.n_classes = int(policy.n_classes_)
        self._call_model = _model_caller(model)
        self._check_calibrator(calibrator)
        if fallback is not None and not callable(fallback):
            raise InputError(
                f"`fallback` must be a callable x -> label | None (e.g. KeywordRules, "
                f"RegexRules); got {describe(fallback)}."
            )
        self._call_ood = _ood_caller(ood)
        self._ood_required = bool(np.isfinite(policy.ood_threshold_))
        if self._ood_required and ood is None:
            raise InputError(
                "This policy was fitted with out-of-scope scores (ood_threshold_ = "
                f"{policy.ood_threshold_:.4g}), so the guard needs the same scorer: pass "
                "`ood=` (a callable x -> float or a fitted KNNDistance)."
            )
        self._check_store(store)
        self._timeout = self._check_timeout(timeout_s)
        if circuit_breaker is not None and not is_circuit_breaker(circuit_breaker):
            raise InputError(
                f"`circuit_breaker` must be a pybreaker.CircuitBreaker (see "
                f"`failwise.runtime.circuit_breaker`); got {describe(circuit_breaker)}."
            )
        self._gate = None if circuit_breaker is None else BreakerGate(circuit_breaker)
        self._sampler = AuditSampler(audit_rate, random_state)
        self._labels = self._check_labels(labels)

        try:
            self.policy_version = artifact_hash(policy)
        except InputError as exc:
            raise InputError(
                f"Every decision records the content hash of its policy, and this policy cannot "
                f"be hashed: {exc} Wrap a policy as `Policy.fit` built it (or as "
                "`failwise.artifacts.load` returns it)."
            ) from None
        self.calibrator_version = (
            artifact_hash(calibrator) if isinstance(calibrator, BaseCalibrator) else None
        )
        self._trusted = np.asarray(policy.fallback_trusted_, dtype=bool).tolist()
        self._fallback_used = fallback is not None and any(self._trusted)
        self._ladder = OneRowLadder.from_policy(policy)
        self._threads: ModelThreads | None = None
        self._threads_lock = threading.Lock()

    # -- construction checks ------------------------------------------------------------------
    def _check_calibrator(self, calibrator: Any) -> None:
        self._score_length: int | None = self.n_classes
        self._binary_scores = False
        if calibrator is None:
            return
        if not callable(getattr(calibrator, "predict_proba", None)):
            raise InputError(
                f"`calibrator` must be a fitted calibrator with `predict_proba` (e.g. "
                f"TemperatureScaling), or None when the model returns calibrated "
                f"probabilities; got {describe(calibrator)}."
            )
        if isinstance(calibrator, BaseCalibrator) and not hasattr(calibrator, "n_classes_"):
            raise NotFittedError(
                f"This {type(calibrator).__name__} is not fitted yet: call fit before wrapping "
                "it in a Guard."
            )
        k = getattr(calibrator, "n_classes_", None)
        if k is not None and int(k) != self.n_classes:
            raise InputError(
                f"The calibrator returns {int(k)} classes but the policy was fitted on "
                f"{self.n_classes}. Use the calibrator whose probabilities the policy was "
                "fitted on."
            )
        if getattr(calibrator, "input_ndim_", None) == 1:
            self._score_length, self._binary_scores = 1, True
        elif not isinstance(calibrator, BaseCalibrator):
            self._score_length = None  # an outside calibrator checks its own input

    @staticmethod
    def _check_store(store: Any) -> None:
        if store is None:
            return
        queue = getattr(store, "queue", None)
        if not (
            callable(getattr(store, "record_decision", None))
            and callable(getattr(store, "record_decisions", None))
            and callable(getattr(queue, "enqueue", None))
        ):
            raise InputError(
                f"`store` must be an event store from `failwise.store.open(url)` (with "
                f"record_decision, record_decisions and queue.enqueue); got {describe(store)}."
            )

    @staticmethod
    def _check_timeout(timeout_s: Any) -> float | None:
        if timeout_s is None:
            return None
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, Real)
            or not math.isfinite(float(timeout_s))
            or timeout_s <= 0
        ):
            raise InputError(
                f"`timeout_s` must be None or a positive number of seconds, e.g. 0.5; got "
                f"{describe(timeout_s)}."
            )
        return float(timeout_s)

    def _check_labels(self, labels: Any) -> list[str] | None:
        if labels is None:
            return None
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
            raise InputError(f"`labels` must be a sequence of class names; got {describe(labels)}.")
        names = list(labels)
        if len(names) != self.n_classes or not all(isinstance(n, str) for n in names):
            raise InputError(
                f"`labels` must hold {self.n_classes} class names (str), one per class in the "
                f"policy's order; got {describe(labels)}."
            )
        return names

    def _check_context(self, context: Any) -> dict[str, Any] | None:
        if context is None:
            return None
        if not isinstance(context, Mapping) or not all(isinstance(k, str) for k in context):
            raise InputError(
                f"`context` must be a mapping with str keys (e.g. {{'user': 'u1'}}) or None; "
                f"got {describe(context)}."
            )
        ctx = dict(context)
        if self.store is not None:
            try:
                json.dumps(ctx, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"`context` is recorded with the decision, so it must be JSON-serialisable; "
                    f"{exc}. Pass plain str, number, bool, list and dict values."
                ) from None
        return ctx

    # -- the model call -----------------------------------------------------------------------
    def _model_threads(self) -> ModelThreads:
        threads = self._threads
        if threads is None:
            with self._threads_lock:
                if self._threads is None:
                    self._threads = ModelThreads(MAX_MODEL_THREADS)
                threads = self._threads
        return threads

    def _raw_scores(self, x: Any) -> Any:
        if self._timeout is None:
            return self._call_model(x)
        future = self._model_threads().submit(self._call_model, x)
        try:
            return future.result(timeout=self._timeout)
        except TimeoutError:
            if future.done():
                raise  # the model itself raised a TimeoutError
            future.cancel()
            raise _ModelTimeoutError(f"TimeoutError after {self._timeout:g} s") from None

    def _scores(self, raw: Any) -> tuple[NDArray[np.float64], float]:
        """The model's output as one finite float64 vector, and its sum."""
        try:
            scores = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise _InvalidScoresError(
                f"the model returned {describe(raw)}, not a vector of numbers"
            ) from None
        if scores.ndim == 2 and scores.shape[0] == 1:
            scores = scores[0]
        elif scores.ndim == 0:
            scores = scores.reshape(1)
        if scores.ndim != 1 or scores.size == 0:
            raise _InvalidScoresError(
                f"the model returned scores of shape {scores.shape}; expected one vector of "
                f"{self._score_length or 'n_classes'} scores"
            )
        total = float(scores.sum())
        if not math.isfinite(total):
            what = "NaN" if np.isnan(scores).any() else "infinite values"
            raise _InvalidScoresError(f"the model returned scores containing {what}")
        if self._score_length is not None and scores.shape[0] != self._score_length:
            raise _InvalidScoresError(
                f"the model returned {scores.shape[0]} scores; expected {self._score_length}"
            )
        return scores, total

    def _calibrate(self, scores: NDArray[np.float64], total: float) -> NDArray[np.float64]:
        if self.calibrator is None:
            # The conditions of `check_probabilities`, for one finite row.
            low = float(scores.min())
            if low < 0.0 or abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
                raise _InvalidScoresError(
                    f"the model returned scores from {low:.4g} to {float(scores.max()):.4g} "
                    f"summing to {total:.6g}, not probabilities; pass a calibrator for logits"
                )
            return scores
        try:
            out = self.calibrator.predict_proba(scores if self._binary_scores else scores[None, :])
            proba = np.asarray(out, dtype=np.float64)
        except Exception as exc:  # any calibrator error degrades the input
            raise _CalibratorError(_short(exc)) from None
        if proba.shape != (1, self.n_classes):
            raise _CalibratorError(
                f"the calibrator returned shape {proba.shape}; expected (1, {self.n_classes})"
            )
        try:
            check_probabilities(proba, "the calibrated probabilities")
        except InputError as exc:
            raise _CalibratorError(str(exc).split(". ")[0]) from None
        return np.ascontiguousarray(proba[0])

    def _finish(self, raw: Any, error: BaseException | None, model_s: float) -> _Outcome:
        """Turn the model's raw output (or error) into an outcome."""
        if error is not None:
            kind = "timeout" if isinstance(error, _ModelTimeoutError) else "exception"
            detail = str(error) if kind == "timeout" else _short(error)
            return _Outcome(None, error, kind, detail, model_s, 0.0)
        start = time.perf_counter()
        scores: NDArray[np.float64] | None = None
        try:
            scores, total = self._scores(raw)
            proba = self._calibrate(scores, total)
        except _InvalidScoresError as exc:
            return _Outcome(None, exc, "invalid_scores", str(exc), model_s, 0.0)
        except _CalibratorError as exc:
            spent = time.perf_counter() - start
            return _Outcome(None, exc, "calibrator", str(exc), model_s, spent)
        return _Outcome(proba, None, None, "", model_s, time.perf_counter() - start, scores)

    def _attempt(self, x: Any) -> _Outcome:
        start = time.perf_counter()
        try:
            raw = self._raw_scores(x)
        except Exception as exc:  # the model's failure is the ladder's business
            return self._finish(None, exc, time.perf_counter() - start)
        return self._finish(raw, None, time.perf_counter() - start)

    def _open_outcome(self) -> _Outcome:
        detail = self._gate.describe_open() if self._gate is not None else "circuit open"
        return _Outcome(None, None, "circuit_open", detail, 0.0, 0.0)

    def _outcome(self, x: Any) -> _Outcome:
        if self._gate is None:
            return self._attempt(x)
        return self._gate.run(lambda: self._attempt(x), self._open_outcome)

    # -- the other signals --------------------------------------------------------------------
    def _ood_score(self, x: Any) -> tuple[float | None, str | None]:
        if self._call_ood is None:
            return None, None
        try:
            values = np.asarray(self._call_ood(x), dtype=np.float64).reshape(-1)
        except Exception as exc:  # a failing scorer degrades the input
            return None, _short(exc)
        if values.size != 1:
            return None, f"the scorer returned {values.size} values for one input"
        value = float(values[0])
        if not math.isfinite(value):
            return None, f"the scorer returned {value}"
        return value, None

    def _run_fallback(self, x: Any) -> tuple[int, str | None]:
        rule = self.fallback
        if rule is None:
            return _NO_OPINION, None
        try:
            value = rule(x)
        except Exception as exc:  # a failing rule means "no opinion"
            return _NO_OPINION, _short(exc)
        if value is None:
            return _NO_OPINION, None
        if isinstance(value, bool) or not isinstance(value, Integral):
            return _NO_OPINION, f"the fallback returned {describe(value)}, not an int label"
        label = int(value)
        if label < _NO_OPINION or label >= self.n_classes:
            return _NO_OPINION, (
                f"the fallback returned label {label}, outside -1..{self.n_classes - 1}"
            )
        return label, None

    # -- deciding -----------------------------------------------------------------------------
    def _verdict(self, x: Any, proba: NDArray[np.float64], ood: float | None) -> Verdict:
        """The fitted ladder on one row of probabilities."""
        fallback = (lambda: self._run_fallback(x)) if self._fallback_used else None
        return self._ladder.decide(proba, ood, fallback)

    @staticmethod
    def _verdict_of(decisions: Any, row: int, called: bool, fb_error: str | None) -> Verdict:
        decision = decisions[row]
        reached = called and decision.action in _REACHED_FALLBACK
        return Verdict(
            action=decision.action,
            label=decision.label,
            confidence=decision.confidence,
            band_code=int(decisions.band_codes[row]),
            prediction_set=decision.prediction_set,
            reason=decision.reason,
            predicted=decision.predicted,
            fallback_called=reached,
            fallback_error=fb_error if reached else None,
        )

    def _degraded(
        self, x: Any, outcome: _Outcome, proba: NDArray[np.float64] | None = None
    ) -> tuple[Verdict, str]:
        """Down the ladder without the model: trusted fallback, else escalate, else abstain."""
        fb_label, fb_error = self._run_fallback(x)
        trusted = fb_label != _NO_OPINION and self._trusted[fb_label + 1]
        if outcome.kind == "calibrator":
            what = "calibrator failed"
        elif outcome.kind == "ood":
            what = "out-of-scope scorer failed"
        else:
            what = "model failed"
        if trusted:
            action, label = Action.FALLBACK, fb_label
            said = "out of scope (-1)" if fb_label < 0 else f"label {fb_label}"
            tail = f"the fallback gave {said}"
        elif self.policy.escalate:
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
        verdict = Verdict(
            action=action,
            label=label,
            confidence=confidence,
            band_code=0,
            prediction_set=(),
            reason=f"{action.value}: {what}: {outcome.detail}; {tail}",
            predicted=predicted,
            fallback_called=self.fallback is not None,
            fallback_error=fb_error,
        )
        return verdict, str(outcome.kind)

    def _decision(
        self,
        done: _Done,
        *,
        task_id: str,
        context: dict[str, Any] | None,
        timings: dict[str, float],
        scores: NDArray[np.float64] | None = None,
    ) -> Decision:
        verdict = done.verdict
        audit = verdict.action is Action.ANSWER and self._sampler.draw()
        extra: dict[str, Any] = {"audit": audit}
        if done.failure is not None:
            extra["failure"] = done.failure
        if done.ood_error is not None:
            extra["ood_error"] = done.ood_error
        if verdict.fallback_error is not None:
            extra["fallback_error"] = verdict.fallback_error
        if self.calibrator_version is not None:
            extra["calibrator_version"] = self.calibrator_version
        if self._labels is not None:
            label = verdict.label
            extra["label_name"] = self._labels[label] if label is not None and label >= 0 else None
        if context is not None:
            extra["context"] = context
        if scores is not None and self.store is not None and self.record_scores:
            extra["scores"] = scores.tolist()
        return Decision(
            action=verdict.action,
            label=verdict.label,
            confidence=verdict.confidence,
            band=_BANDS[verdict.band_code],
            prediction_set=verdict.prediction_set,
            reason=verdict.reason,
            predicted=verdict.predicted,
            ood_score=done.ood,
            task_id=task_id,
            policy_version=self.policy_version,
            timings=timings,
            extra=extra,
        )

    def _after_model(
        self, x: Any, outcome: _Outcome, ood: float | None, ood_error: str | None
    ) -> _Done:
        """The verdict for an input whose model outcome and out-of-scope score are known."""
        if outcome.proba is None:
            verdict, failure = self._degraded(x, outcome)
            return _Done(verdict, failure, None, None)
        if ood_error is not None and self._ood_required:
            failed = _Outcome(None, None, "ood", ood_error, 0.0, 0.0)
            verdict, failure = self._degraded(x, failed, outcome.proba)
            return _Done(verdict, failure, None, None)
        return _Done(self._verdict(x, outcome.proba, ood), None, ood, ood_error)

    def decide(self, x: Any, context: Mapping[str, Any] | None = None) -> Decision:
        """Decide what to do with one input.

        Parameters
        ----------
        x : any
            One input, as the model takes it.
        context : mapping, optional
            Anything to keep with the decision (user id, channel); recorded in
            ``extra["context"]``. Must be JSON-serialisable when the guard has a store.

        Returns
        -------
        Decision
            With a fresh ``task_id`` (uuid4 hex), ``policy_version`` and ``timings``
            (``model_s``, ``calibrate_s``, ``ood_s``, ``decide_s``, ``store_s``, ``total_s``).

        Raises
        ------
        InputError
            When ``context`` is not a mapping with str keys (never for model failures).
        DecisionNotRecordedError
            When the guard has a store and it failed to record the decision.
        """
        start = time.perf_counter()
        ctx = self._check_context(context)
        task_id = uuid.uuid4().hex
        outcome = self._outcome(x)
        ood_start = time.perf_counter()
        ood, ood_error = self._ood_score(x) if outcome.proba is not None else (None, None)
        decide_start = time.perf_counter()
        done = self._after_model(x, outcome, ood, ood_error)
        timings = _timings(outcome, decide_start - ood_start)
        decision = self._decision(
            done, task_id=task_id, context=ctx, timings=timings, scores=outcome.scores
        )
        store_start = time.perf_counter()
        timings["decide_s"] = store_start - decide_start
        if self.store is not None:
            self._record([decision])
        end = time.perf_counter()
        timings["store_s"] = end - store_start
        timings["total_s"] = end - start
        return decision

    def decide_batch(
        self, xs: Iterable[Any], contexts: Sequence[Mapping[str, Any] | None] | None = None
    ) -> list[Decision]:
        """Decide for a batch: a model call per input, one ``policy.decide``, one store write.

        Parameters
        ----------
        xs : iterable of inputs
        contexts : sequence of mappings (or None), optional
            One context per input.

        Returns
        -------
        list of Decision
            In input order; equal, apart from ids and timings, to calling :meth:`decide` on
            each input in turn. ``decide_s`` and ``store_s`` are the whole batch's.
        """
        start = time.perf_counter()
        items = self._check_batch(xs)
        ctxs = self._check_contexts(contexts, len(items))
        outcomes = [self._outcome(x) for x in items]
        ood_start = time.perf_counter()
        scored = [
            self._ood_score(x) if o.proba is not None else (None, None)
            for x, o in zip(items, outcomes, strict=True)
        ]
        ood_s = (time.perf_counter() - ood_start) / max(len(items), 1)
        decide_start = time.perf_counter()
        done: dict[int, _Done] = {}
        rows: list[int] = []
        for i, (x, outcome, (ood, ood_error)) in enumerate(
            zip(items, outcomes, scored, strict=True)
        ):
            if outcome.proba is None or (ood_error is not None and self._ood_required):
                done[i] = self._after_model(x, outcome, ood, ood_error)
            else:
                rows.append(i)
        if rows:
            done.update(self._decide_rows(items, outcomes, scored, rows))
        timings = [_timings(outcome, ood_s) for outcome in outcomes]
        decisions = [
            self._decision(
                done[i],
                task_id=uuid.uuid4().hex,
                context=ctxs[i],
                timings=timings[i],
                scores=outcomes[i].scores,
            )
            for i in range(len(items))
        ]
        store_start = time.perf_counter()
        for entry in timings:
            entry["decide_s"] = store_start - decide_start
        if self.store is not None and decisions:
            self._record(decisions)
        end = time.perf_counter()
        for entry in timings:
            entry["store_s"] = end - store_start
            entry["total_s"] = end - start
        return decisions

    def _decide_rows(
        self,
        items: list[Any],
        outcomes: list[_Outcome],
        scored: list[tuple[float | None, str | None]],
        rows: list[int],
    ) -> dict[int, _Done]:
        """One vectorised ``policy.decide`` over the rows whose model call succeeded."""
        proba = np.stack([outcomes[i].proba for i in rows])  # type: ignore[misc]
        oods = [scored[i][0] for i in rows]
        ood_array = (
            None
            if self._call_ood is None or any(v is None for v in oods)
            else np.array(oods, dtype=np.float64)
        )
        fallbacks = [self._run_fallback(items[i]) for i in rows] if self._fallback_used else None
        decisions = self.policy.decide(
            proba,
            ood_array,
            None if fallbacks is None else np.array([label for label, _ in fallbacks]),
        )
        done: dict[int, _Done] = {}
        for j, i in enumerate(rows):
            fb_error = None if fallbacks is None else fallbacks[j][1]
            verdict = self._verdict_of(decisions, j, fallbacks is not None, fb_error)
            done[i] = _Done(verdict, None, oods[j], scored[i][1])
        return done

    @staticmethod
    def _check_batch(xs: Any) -> list[Any]:
        if isinstance(xs, (str, bytes)) or not isinstance(xs, Iterable):
            raise InputError(
                f"`xs` must be a sequence of inputs; got {describe(xs)}. Use `decide` for one "
                "input, or wrap it in a list."
            )
        return list(xs)

    def _check_contexts(self, contexts: Any, n: int) -> list[dict[str, Any] | None]:
        if contexts is None:
            return [None] * n
        if isinstance(contexts, (str, bytes, Mapping)) or not isinstance(contexts, Sequence):
            raise InputError(
                f"`contexts` must be a sequence with one mapping (or None) per input; got "
                f"{describe(contexts)}."
            )
        if len(contexts) != n:
            raise InputError(
                f"`contexts` has {len(contexts)} entries for {n} inputs; pass one per input."
            )
        return [self._check_context(c) for c in contexts]

    # -- async ----------------------------------------------------------------------------------
    def _attempt_catching(self, x: Any) -> tuple[Any, BaseException | None, float]:
        """Call the model in a worker thread; never raises (so time-outs are unambiguous)."""
        start = time.perf_counter()
        try:
            raw = self._call_model(x)
        except Exception as exc:  # handed back to the event loop as a value
            return None, exc, time.perf_counter() - start
        return raw, None, time.perf_counter() - start

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._model_threads().submit(fn, *args))

    async def _aoutcome(self, x: Any) -> _Outcome:
        if self._gate is not None and self._gate.is_open:
            outcome: _Outcome = await self._in_thread(self._outcome, x)
            return outcome
        start = time.perf_counter()
        try:
            raw, error, _ = await asyncio.wait_for(
                self._in_thread(self._attempt_catching, x), timeout=self._timeout
            )
        except TimeoutError:
            raw, error = None, _ModelTimeoutError(f"TimeoutError after {self._timeout:g} s")
        outcome = self._finish(raw, error, time.perf_counter() - start)
        if self._gate is not None:
            self._gate.report(outcome)
        return outcome

    async def adecide(self, x: Any, context: Mapping[str, Any] | None = None) -> Decision:
        """:meth:`decide` for asyncio services: the model never blocks the event loop.

        The model (and the out-of-scope scorer and the store) run in the guard's worker
        threads; ``timeout_s`` is enforced with :func:`asyncio.wait_for`, after which the
        call is abandoned as in :meth:`decide`.
        """
        start = time.perf_counter()
        ctx = self._check_context(context)
        task_id = uuid.uuid4().hex
        outcome = await self._aoutcome(x)
        ood_start = time.perf_counter()
        if outcome.proba is not None and self._call_ood is not None:
            ood, ood_error = await self._in_thread(self._ood_score, x)
        else:
            ood, ood_error = None, None
        decide_start = time.perf_counter()
        done = self._after_model(x, outcome, ood, ood_error)
        timings = _timings(outcome, decide_start - ood_start)
        decision = self._decision(
            done, task_id=task_id, context=ctx, timings=timings, scores=outcome.scores
        )
        store_start = time.perf_counter()
        timings["decide_s"] = store_start - decide_start
        if self.store is not None:
            await self._in_thread(self._record, [decision])
        end = time.perf_counter()
        timings["store_s"] = end - store_start
        timings["total_s"] = end - start
        return decision

    # -- recording ------------------------------------------------------------------------------
    def _record(self, decisions: list[Decision]) -> None:
        """Record the decisions and queue their escalations and audits; raise if any fails."""
        store = self.store
        try:
            if len(decisions) == 1:
                store.record_decision(decisions[0].task_id, decisions[0].to_dict())
            else:
                store.record_decisions([(d.task_id, d.to_dict()) for d in decisions])
        except Exception as exc:
            raise DecisionNotRecordedError(
                f"The store did not record {len(decisions)} decision(s) ({_short(exc)}); "
                "nothing of them was written by this call. The decisions are attached as "
                "`.decisions`: record them again once the store is back.",
                decisions,
                decision_recorded=False,
            ) from exc
        for decision in decisions:
            try:
                if decision.action is Action.ESCALATE:
                    priority = 1.0 if "failure" in decision.extra else 1.0 - decision.confidence
                    store.queue.enqueue(decision.task_id, "escalation", decision.reason, priority)
                if decision.extra.get("audit"):
                    store.queue.enqueue(
                        decision.task_id,
                        "audit",
                        audit_reason(self._sampler.rate, decision.confidence),
                        1.0 - decision.confidence,
                    )
            except Exception as exc:
                raise DecisionNotRecordedError(
                    f"Task {decision.task_id}: the decision was recorded but its "
                    f"{'escalation' if decision.action is Action.ESCALATE else 'audit'} item "
                    f"was not queued ({_short(exc)}). Enqueue it again with "
                    "`store.queue.enqueue(...)` once the store is back.",
                    decisions,
                    decision_recorded=True,
                ) from exc

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the idle worker threads (calls still running are left to finish)."""
        with self._threads_lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False)

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        parts = [
            f"model={getattr(self.model, '__name__', type(self.model).__name__)}",
            f"calibrator={type(self.calibrator).__name__ if self.calibrator else None}",
            f"policy_version={self.policy_version[:12]}",
        ]
        if self._timeout is not None:
            parts.append(f"timeout_s={self._timeout:g}")
        if self.audit_rate:
            parts.append(f"audit_rate={self.audit_rate:g}")
        return f"Guard({', '.join(parts)})"
