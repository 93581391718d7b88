"""`Guard`: the runtime wrapper that turns one model call into one `Decision`.

For every input the guard calls the model (with an optional time limit and circuit
breaker; :mod:`~failwise.runtime._attempt`), calibrates its scores, scores the input for
being out of scope, asks the fallback, runs the policy's fitted ladder (the same rung
objects as :meth:`failwise.Policy.decide`; :mod:`~failwise.runtime._degrade` when the model
failed), draws the audit sample, builds each :class:`~failwise.Decision` once, and with a
store records the decisions and their queue items in one transaction
(:mod:`~failwise.runtime._record`). ``decide``, ``decide_batch`` and ``adecide`` share this
one pipeline; they differ only in how the model is called and where the work runs.
Whatever the model does — raise, hang, return NaN or a vector of the wrong length — the
caller gets a decision whose ``reason`` says what happened.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral
from typing import Any, Final

import numpy as np

from failwise._params import Seconds, check_param
from failwise._protocols import EventSink, Fallback
from failwise._validation import check_fitted, describe
from failwise.artifacts import artifact_hash
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError
from failwise.policy import NO_OPINION, Action, Decision, Policy, RowState, run_row
from failwise.runtime._attempt import Attempts, Outcome, short
from failwise.runtime._audit import AuditSampler
from failwise.runtime._breaker import BreakerGate, is_circuit_breaker
from failwise.runtime._degrade import Degrader
from failwise.runtime._fields import fresh_ids, score_lists, top_labels
from failwise.runtime._guard_args import (
    check_batch,
    check_context,
    check_contexts,
    check_labels,
    check_timeout,
)
from failwise.runtime._monitoring import FeatureCalls, QuarantineZones
from failwise.runtime._record import (
    DecisionNotRecordedError,
    Recorder,
    check_sink,
    check_task_ids,
)
from failwise.runtime._scorer import ScorerCalls
from failwise.runtime._timeout import ModelThreads

__all__ = ["DecisionNotRecordedError", "Guard"]

#: Most worker threads a guard keeps for model calls (time limits and ``adecide``).
MAX_MODEL_THREADS: Final = 32

#: How many of the most probable labels a decision records (``extra["top_labels"]``).
TOP_LABELS: Final = 5

_ESCALATE: Final = Action.ESCALATE


class Guard:
    """Wrap a model so that every input gets a :class:`~failwise.Decision`, whatever happens.

    Parameters
    ----------
    model : ScoreModel or BatchScoreModel
        ``x -> scores`` for ONE input: a 1-D vector of n_classes logits or probabilities
        (shape (1, n_classes) is accepted too). An object with ``predict_proba`` or
        ``decision_function`` — or such a bound method, or a callable with
        ``batch_model=True`` — takes a list of inputs: ``decide`` calls it with ``[x]``
        and ``decide_batch`` once with the whole batch (see :mod:`failwise._protocols`).
    calibrator : Calibrator or None
        Turns the scores into calibrated probabilities with ``predict_proba``; None when the
        model already returns calibrated probabilities.
    policy : Policy
        The fitted decision ladder.
    fallback : Fallback, optional
        ``x -> label | None`` (e.g. :class:`~failwise.policy.KeywordRules`). Its label is
        used where the policy trusts it (``policy.fallback_trusted_``; fit the policy with
        ``fallback=`` labels so that it can measure them). Asked for every input; its
        opinion is recorded as ``Decision.fallback_label`` (so that a refit can measure
        it), whether or not the ladder uses it.
    ood : OutOfScopeScorer or callable, optional
        Out-of-scope score (higher = more out of scope). An object with ``score`` (e.g. a
        fitted KNNDistance), such a bound method, or a callable with ``batch_ood=True``
        takes a list of inputs: ``decide`` calls it with ``[x]`` and ``decide_batch`` once
        per batch; otherwise ``ood(x)`` per input. Required when the policy was fitted
        with out-of-scope scores.
    store : EventSink, optional
        Event store from :func:`failwise.store.open`. Every decision is recorded together
        with its queue items, in one transaction per call: escalations with priority
        ``1 - confidence`` (1.0 when the model failed), audit samples as ``"audit"``
        items. The recorded payload is the returned ``decision.to_dict()``, exactly.
    timeout_s : float, optional
        Longest wait for the model, and separately for the out-of-scope scorer, in seconds.
        Each then runs in a worker thread; on time-out the guard stops waiting and decides
        without it. The thread cannot be killed:
        it is abandoned and finishes on its own (worker threads are daemons, at most 32 per
        guard; see :mod:`failwise.runtime._timeout`).
    circuit_breaker : pybreaker.CircuitBreaker, optional
        E.g. :func:`failwise.runtime.circuit_breaker`. Model exceptions, time-outs and
        invalid scores count as failures; while the breaker is open the model is not called.
    audit_rate : float in [0, 1] or mapping of action to float, default=0.0
        Share of non-escalated decisions (answer, clarify, fallback, abstain) also queued
        for human review (non-blocking): one rate for all, or per action, e.g.
        ``{"answer": 0.02, "fallback": 0.1}`` (missing actions: 0). Each decision records
        the rate of its action as ``review_probability`` (1.0 for escalations) and
        ``review="audit"`` when sampled (also ``extra["audit"] = True``).
    random_state : int, numpy.random.Generator or None
        Seed of the audit draws.
    labels : sequence of str, optional
        Class names; decisions then carry ``extra["label_name"]``.
    record_scores : bool, default=True
        With a store, record the model's raw scores in the decision
        (``extra["scores"]``), so that labels gathered later can refit the calibrator
        (:func:`failwise.loop.recalibrate`). Turn off to keep large score vectors out of
        the event log.
    batch_model : bool, default=False
        Whether ``model`` is a callable that takes a list of inputs and returns one score
        row per input (shape (n_inputs, n_classes)); estimators and their bound
        ``predict_proba`` / ``decision_function`` are recognised without it.
    batch_ood : bool, default=False
        Whether ``ood`` is a callable that takes a list of inputs and returns one score per
        input; objects with ``score`` are recognised without it.
    features : callable, optional
        ``x -> 1-D feature vector`` (an embedding, a TF-IDF row; the same function as the
        monitor's :class:`~failwise.monitor.Reference`). With a store, each decision's
        features are recorded as float16 in ``task_features``, in the decision's
        transaction, for the monitor's input drift, unseen inputs and blind spots. A
        function that fails records no features (``extra["features_error"]``).
    batch_features : bool, default=False
        Whether ``features`` takes a list of inputs and returns one row per input.
    quarantine : bool, default=False
        Escalate inputs inside the store's active quarantines (blind spots a team
        quarantined, :mod:`failwise.policy._quarantine`), whatever their confidence; the
        zones are read again every ``quarantine_refresh_s``. Needs ``store`` and
        ``features``.
    quarantine_refresh_s : float, default=5.0

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
    A decision made from calibrated probabilities records the most probable labels with
    their probabilities in ``extra["top_labels"]`` (``[[label, probability], ...]``, at most
    five, most probable first, to six decimals): what the reviewer page shows for an
    escalation.

    Failures never raise: model exceptions, time-outs, NaN or infinite scores, scores of the
    wrong shape, calibrator errors, out-of-scope scorer errors and time-outs (when the
    policy uses the scores) and an open circuit breaker all produce a decision whose
    ``extra["failure"]`` names the kind and whose ``reason`` says what happened, e.g.
    ``"fallback: model failed: TimeoutError after 0.2 s; the fallback gave label 3"``. Only
    invalid arguments from the caller raise :class:`~failwise.InputError`, and a store that
    fails to record raises
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
        fallback: Fallback | Callable[[Any], int | None] | None = None,
        ood: Any = None,
        store: EventSink | None = None,
        timeout_s: float | None = None,
        circuit_breaker: Any = None,
        audit_rate: float | Mapping[str, float] = 0.0,
        random_state: int | np.random.Generator | None = None,
        labels: Sequence[str] | None = None,
        record_scores: bool = True,
        batch_model: bool = False,
        batch_ood: bool = False,
        features: Callable[[Any], Any] | None = None,
        batch_features: bool = False,
        quarantine: bool = False,
        quarantine_refresh_s: float = 5.0,
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
        self.batch_model = batch_model
        self.batch_ood = batch_ood
        self.features = features
        self.quarantine = quarantine
        flags = {
            "record_scores": record_scores,
            "batch_model": batch_model,
            "batch_ood": batch_ood,
            "batch_features": batch_features,
            "quarantine": quarantine,
        }
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise InputError(f"`{name}` must be True or False; got {describe(flag)}.")

        self.n_classes = int(policy.n_classes_)
        if fallback is not None and not callable(fallback):
            raise InputError(
                f"`fallback` must be a callable x -> label | None (e.g. KeywordRules, "
                f"RegexRules); got {describe(fallback)}."
            )
        self._ood_required = bool(np.isfinite(policy.ood_threshold_))
        if self._ood_required and ood is None:
            raise InputError(
                "This policy was fitted with out-of-scope scores (ood_threshold_ = "
                f"{policy.ood_threshold_:.4g}), so the guard needs the same scorer: pass "
                "`ood=` (a callable x -> float or a fitted KNNDistance)."
            )
        check_sink(store)
        timeout = check_timeout(timeout_s)
        if circuit_breaker is not None and not is_circuit_breaker(circuit_breaker):
            raise InputError(
                f"`circuit_breaker` must be a pybreaker.CircuitBreaker (see "
                f"`failwise.runtime.circuit_breaker`); got {describe(circuit_breaker)}."
            )
        self._threads: ModelThreads | None = None
        self._threads_lock = threading.Lock()
        self._attempts = Attempts(
            model,
            calibrator,
            self.n_classes,
            timeout=timeout,
            gate=None if circuit_breaker is None else BreakerGate(circuit_breaker),
            threads=self._model_threads,
            batch_model=batch_model,
        )
        self._ood = None
        if ood is not None:
            self._ood = ScorerCalls(
                ood, timeout=timeout, threads=self._model_threads, batch_ood=batch_ood
            )
        self._sampler = AuditSampler(audit_rate, random_state)
        self._labels = check_labels(labels, self.n_classes)

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
        self._rungs = list(policy.rungs_)
        self._context = policy.describe()
        self._medium = float(policy.medium_band_floor)
        self._answer = float(policy.answer_threshold_)
        self._degrader = Degrader(policy)
        self._recorder = None if store is None else Recorder(store)
        self._features = None if features is None else FeatureCalls(features, batch=batch_features)
        self._zones = None
        if quarantine:
            if store is None or features is None:
                raise InputError(
                    "`quarantine=True` escalates inputs by their features inside the store's "
                    "quarantined zones: pass both `store=` and `features=`."
                )
            refresh = check_param(
                "quarantine_refresh_s", quarantine_refresh_s, [Seconds()], where="Guard"
            )
            self._zones = QuarantineZones(store, float(refresh))

    # -- argument checks (failwise.runtime._guard_args) ------------------------------------------
    def _check_context(self, context: Any) -> dict[str, Any] | None:
        return check_context(context, recorded=self.store is not None)

    def _check_contexts(self, contexts: Any, n: int) -> list[dict[str, Any] | None]:
        return check_contexts(contexts, n, recorded=self.store is not None)

    def _model_threads(self) -> ModelThreads:
        threads = self._threads
        if threads is None:
            with self._threads_lock:
                if self._threads is None:
                    self._threads = ModelThreads(MAX_MODEL_THREADS)
                threads = self._threads
        return threads

    # -- the other signals --------------------------------------------------------------------
    def _run_fallback(self, x: Any) -> tuple[int, str | None]:
        rule = self.fallback
        if rule is None:
            return NO_OPINION, None
        try:
            value = rule(x)
        except Exception as exc:  # a failing rule means "no opinion"
            return NO_OPINION, short(exc)
        if value is None:
            return NO_OPINION, None
        if isinstance(value, bool) or not isinstance(value, Integral):
            return NO_OPINION, f"the fallback returned {describe(value)}, not an int label"
        label = int(value)
        if label < -1 or label >= self.n_classes:
            return NO_OPINION, (
                f"the fallback returned label {label}, outside -1..{self.n_classes - 1}"
            )
        return label, None

    # -- the pipeline ---------------------------------------------------------------------------
    def _ladder(
        self,
        outcomes: list[Outcome],
        oods: list[tuple[float | None, str | None]],
        fallbacks: list[tuple[int, str | None]],
        feats: list[tuple[Any, str | None]],
    ) -> list[tuple[dict[str, Any], str | None]]:
        """Decision fields and failure kind per input: the fitted ladder, or degraded."""
        out: list[tuple[dict[str, Any], str | None] | None] = [None] * len(outcomes)
        rows: list[int] = []
        for i, outcome in enumerate(outcomes):
            ood_error = oods[i][1]
            if outcome.proba is None:
                kind = str(outcome.kind)
                fields = self._degrader.fields(kind, outcome.detail, fallbacks[i][0])
                out[i] = (fields, kind)
            elif ood_error is not None and self._ood_required:
                fields = self._degrader.fields("ood", ood_error, fallbacks[i][0], outcome.proba)
                out[i] = (fields, "ood")
            else:
                rows.append(i)
        if self._zones is not None and rows:
            ladder = (self._context, self._medium, self._answer)
            rows = self._zones.claim(rows, outcomes, oods, fallbacks, feats, out, ladder)
        if len(rows) == 1:
            i = rows[0]
            row = RowState(outcomes[i].proba, oods[i][0], fallbacks[i][0])  # type: ignore[arg-type]
            run_row(row, self._rungs)
            out[i] = (row.fields(self._context, self._medium, self._answer), None)
        elif rows:
            proba = np.stack([outcomes[i].proba for i in rows])  # type: ignore[misc]
            scores = [oods[i][0] for i in rows]
            ood = None if any(v is None for v in scores) else np.array(scores, dtype=np.float64)
            labels = np.array([fallbacks[i][0] for i in rows], dtype=np.intp)
            decided = self.policy.decide(proba, ood, labels).all_fields()
            for j, i in enumerate(rows):
                fields = decided[j]
                fields["ood_score"] = scores[j]
                out[i] = (fields, None)
        return out  # type: ignore[return-value]

    def _decide(
        self,
        items: list[Any],
        contexts: list[dict[str, Any] | None],
        outcomes: list[Outcome],
        start: float,
        task_ids: list[str | None] | None = None,
    ) -> tuple[list[Decision], list[Any]]:
        """Everything after the model: signals, ladder, audit draws, the decisions (and
        each input's feature vector, or None)."""
        n = max(len(items), 1)
        t0 = time.perf_counter()
        oods: list[tuple[float | None, str | None]] = [(None, None)] * len(items)
        if self._ood is not None:
            scored = [i for i, o in enumerate(outcomes) if o.proba is not None]
            for i, signal in zip(scored, self._ood.many([items[i] for i in scored]), strict=True):
                oods[i] = signal
        t1 = time.perf_counter()
        fallbacks = [self._run_fallback(x) for x in items]
        feats: list[tuple[Any, str | None]] = (
            [(None, None)] * len(items) if self._features is None else self._features.many(items)
        )
        t2 = time.perf_counter()
        verdicts = self._ladder(outcomes, oods, fallbacks, feats)
        end = time.perf_counter()
        shared = {
            "ood_s": (t1 - t0) / n,
            "fallback_s": (t2 - t1) / n,
            "decide_s": (end - t2) / n,
            "total_s": (end - start) / n,
        }
        asked = self.fallback is not None
        ids = fresh_ids(task_ids if task_ids is not None else [None] * len(items))
        tops = top_labels(outcomes, TOP_LABELS)
        scores = (
            score_lists(outcomes)
            if self.store is not None and self.record_scores
            else [None] * len(outcomes)
        )
        decisions = []
        for i, (fields, failure) in enumerate(verdicts):
            outcome = outcomes[i]
            action: Action = fields["action"]
            review: str | None
            if action is _ESCALATE:
                review, probability = "escalation", 1.0
            else:
                name = action._value_  # `.value` goes through a descriptor, per row
                probability = self._sampler.rate_for(name)
                review = "audit" if self._sampler.draw(name) else None
            extra: dict[str, Any] = {"audit": review == "audit"}
            quarantined = fields.pop("_quarantine", None)
            if quarantined is not None:
                extra["quarantine"] = quarantined
            if feats[i][1] is not None:
                extra["features_error"] = feats[i][1]
            if failure is not None:
                extra["failure"] = failure
            ood_error = oods[i][1]
            if ood_error is not None and failure is None:
                extra["ood_error"] = ood_error
            fb_label, fb_error = fallbacks[i]
            if fb_error is not None:
                extra["fallback_error"] = fb_error
            if self.calibrator_version is not None:
                extra["calibrator_version"] = self.calibrator_version
            if self._labels is not None:
                label = fields["label"]
                extra["label_name"] = (
                    self._labels[label] if label is not None and label >= 0 else None
                )
            if contexts[i] is not None:
                extra["context"] = contexts[i]
            if tops[i] is not None:
                # What a reviewer sees first: the most probable labels, calibrated (to six
                # decimals: a batch and one-by-one calibration agree that far, not further).
                extra["top_labels"] = tops[i]
            if scores[i] is not None:
                extra["scores"] = scores[i]
            decisions.append(
                Decision(
                    **fields,
                    task_id=ids[i],
                    policy_version=self.policy_version,
                    timings={
                        "model_s": outcome.model_s,
                        "calibrate_s": outcome.calibrate_s,
                        **shared,
                    },
                    extra=extra,
                    review_probability=probability,
                    review=review,
                    fallback_label=fb_label if asked and fb_label != NO_OPINION else None,
                )
            )
        return decisions, [vector for vector, _ in feats]

    def _record(self, batch: tuple[list[Decision], list[Any]]) -> list[Decision]:
        decisions, vectors = batch
        if self._recorder is not None and decisions:
            recorded = None if self._features is None else vectors
            self._recorder.record(decisions, features=recorded)
        return decisions

    # -- the three entry points -------------------------------------------------------------------
    def decide(
        self, x: Any, context: Mapping[str, Any] | None = None, *, task_id: str | None = None
    ) -> Decision:
        """Decide what to do with one input.

        Parameters
        ----------
        x : any
            One input, as the model takes it.
        context : mapping, optional
            Anything to keep with the decision (user id, channel); recorded in
            ``extra["context"]``. Must be JSON-serialisable when the guard has a store.
        task_id : str, optional
            The id of the task the decision opens; a fresh uuid4 hex by default.

        Returns
        -------
        Decision
            With a fresh ``task_id`` (uuid4 hex), ``policy_version``, ``timings``
            (``model_s``, ``calibrate_s``, ``ood_s``, ``fallback_s``, ``decide_s`` and
            ``total_s``, measured before recording), ``review_probability``, ``review``
            and ``fallback_label``. With a store, exactly this decision's ``to_dict()``
            is recorded.

        Raises
        ------
        InputError
            When ``context`` is not a mapping with str keys (never for model failures).
        DecisionNotRecordedError
            When the guard has a store and it failed to record the decision.
        """
        start = time.perf_counter()
        ctx = self._check_context(context)
        ids = check_task_ids(None if task_id is None else [task_id], 1)
        outcome = self._attempts.one(x)
        return self._record(self._decide([x], [ctx], [outcome], start, ids))[0]

    def decide_batch(
        self,
        xs: Iterable[Any],
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        task_ids: Sequence[str | None] | None = None,
    ) -> list[Decision]:
        """Decide for a batch: one model call (if it takes batches), one ladder, one write.

        A model that takes batches (see ``model``) is called once and its scores are
        calibrated once; a per-input callable is called per input. Rows whose scores are
        bad go down the ladder without the model on their own. A scorer that takes batches
        (see ``ood``) is likewise called once; rows it fails on are scored again one by one.

        Parameters
        ----------
        xs : iterable of inputs
        contexts : sequence of mappings (or None), optional
            One context per input.
        task_ids : sequence of str (or None), optional
            One task id per input (None: a fresh one).

        Returns
        -------
        list of Decision
            In input order; equal, apart from ids and timings, to calling :meth:`decide` on
            each input in turn. Timings are the batch's, divided by the number of inputs.
        """
        start = time.perf_counter()
        items = check_batch(xs)
        ctxs = self._check_contexts(contexts, len(items))
        ids = check_task_ids(task_ids, len(items))
        outcomes = self._attempts.many(items)
        return self._record(self._decide(items, ctxs, outcomes, start, ids))

    async def adecide(self, x: Any, context: Mapping[str, Any] | None = None) -> Decision:
        """:meth:`decide` for asyncio services: the model never blocks the event loop.

        The model (and the out-of-scope scorer and the store) run in the guard's worker
        threads; ``timeout_s`` is enforced with :func:`asyncio.wait_for`, after which the
        call is abandoned as in :meth:`decide`.
        """
        start = time.perf_counter()
        ctx = self._check_context(context)
        outcome = await self._attempts.aone(x)
        if self._ood is None and self._features is None:
            batch = self._decide([x], [ctx], [outcome], start)
        else:
            batch = await self._in_thread(self._decide, [x], [ctx], [outcome], start)
        if self._recorder is not None:
            await self._in_thread(self._record, batch)
        return batch[0][0]

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._model_threads().submit(fn, *args))

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
        if self.timeout_s is not None:
            parts.append(f"timeout_s={float(self.timeout_s):g}")
        if self._sampler.enabled:
            parts.append(f"audit_rate={self.audit_rate!r}")
        return f"Guard({', '.join(parts)})"
