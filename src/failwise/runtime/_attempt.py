"""One attempt at calibrated probabilities: model call, time limit, breaker, checks.

:class:`Attempts` calls the model for one input or a batch (a batch-capable model — an
estimator with ``predict_proba`` / ``decision_function``, such a bound method, or a callable
declared with ``batch_model=True`` — is called ONCE per batch), under the guard's time
limit and circuit breaker, checks the scores and calibrates them (once per batch). It never
raises: every input gets an :class:`Outcome`, with probabilities or with the kind of failure
(``exception``, ``timeout``, ``invalid_scores``, ``calibrator``, ``circuit_open``) and a
detail sentence. Rows of a batch whose scores are bad fail on their own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from failwise._validation import PROBABILITY_SUM_TOLERANCE, check_probabilities, describe
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError, NotFittedError
from failwise.runtime._breaker import BreakerGate
from failwise.runtime._timeout import ModelThreads, call_within

__all__ = ["Attempts", "Outcome", "short"]

# Bound methods that take a batch: called with ``[x]``, row 0 of the result is used.
_BATCH_METHODS: Final = frozenset({"predict_proba", "predict_log_proba", "decision_function"})
_MESSAGE_LIMIT: Final = 200


def short(exc: BaseException) -> str:
    """``Type: message``, cut to 200 characters, for reason sentences."""
    text = str(exc)
    label = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return label if len(label) <= _MESSAGE_LIMIT else label[: _MESSAGE_LIMIT - 1] + "…"


class InvalidScoresError(Exception):
    """The model's output is not a finite score vector of the expected length."""


class CalibratorError(Exception):
    """The calibrator raised, or returned something that is not probabilities."""


class ModelTimeoutError(TimeoutError):
    """The model did not return within ``timeout_s``."""


class Outcome(NamedTuple):
    """Calibrated probabilities of one input, or why there are none."""

    proba: NDArray[np.float64] | None
    error: BaseException | None
    kind: str | None
    detail: str
    model_s: float
    calibrate_s: float
    scores: NDArray[np.float64] | None = None


class _Batch(NamedTuple):
    """The outcomes of one batch call; ``error`` is what the breaker counts."""

    outcomes: list[Outcome]
    error: BaseException | None


def _callers(model: Any, batch_model: bool) -> tuple[Callable[[Any], Any] | None, Any]:
    """``(one, many)``: the per-input call, or None when the model takes batches (``many``)."""
    for name in ("predict_proba", "decision_function"):
        method = getattr(model, name, None)
        if method is not None and callable(method) and not inspect.isfunction(model):
            return None, method
    if not callable(model):
        raise InputError(
            f"`model` must be a callable x -> scores (one input, one score vector) or an "
            f"object with `predict_proba` or `decision_function`; got {describe(model)}."
        )
    if batch_model or (
        inspect.ismethod(model) and getattr(model, "__name__", "") in _BATCH_METHODS
    ):
        return None, model
    return model, None


class Attempts:
    """Model calls and score checks for a guard (see the module docstring).

    Parameters
    ----------
    model : ScoreModel or BatchScoreModel
    calibrator : Calibrator or None
    n_classes : int
    timeout : float or None
    gate : BreakerGate or None
    threads : callable returning the guard's ModelThreads
    batch_model : bool
    """

    def __init__(
        self,
        model: Any,
        calibrator: Any,
        n_classes: int,
        *,
        timeout: float | None,
        gate: BreakerGate | None,
        threads: Callable[[], ModelThreads],
        batch_model: bool,
    ) -> None:
        self._one, self._many = _callers(model, batch_model)
        self.n_classes = n_classes
        self.timeout = timeout
        self.gate = gate
        self._threads = threads
        self.calibrator = calibrator
        self._check_calibrator(calibrator)

    @property
    def batched(self) -> bool:
        """Whether the model is called once per batch."""
        return self._many is not None

    def _check_calibrator(self, calibrator: Any) -> None:
        self.score_length: int | None = self.n_classes
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
            self.score_length, self._binary_scores = 1, True
        elif not isinstance(calibrator, BaseCalibrator):
            self.score_length = None  # an outside calibrator checks its own input

    # -- calling the model ---------------------------------------------------------------------
    def _call(self, xs: list[Any]) -> Any:
        """The model's raw output for ``xs`` (one input unless the model takes batches)."""
        if self._many is not None:
            return self._many(xs)
        return self._one(xs[0])  # type: ignore[misc]  # set whenever _many is None

    def _raw(self, xs: list[Any]) -> Any:
        return call_within(self._threads, self._call, xs, self.timeout, ModelTimeoutError)

    def _catching(self, xs: list[Any]) -> tuple[Any, BaseException | None, float]:
        """The raw output, or the model's exception, and the seconds spent; never raises."""
        start = time.perf_counter()
        try:
            raw = self._call(xs)
        except Exception as exc:  # the model's failure is the ladder's business
            return None, exc, time.perf_counter() - start
        return raw, None, time.perf_counter() - start

    def _attempt(self, xs: list[Any]) -> _Batch:
        start = time.perf_counter()
        try:
            raw, error = self._raw(xs), None
        except Exception as exc:  # the model's failure is the ladder's business
            raw, error = None, exc
        return self._finish(raw, error, time.perf_counter() - start, len(xs))

    def _open(self, n: int) -> _Batch:
        detail = self.gate.describe_open() if self.gate is not None else "circuit open"
        return _Batch([Outcome(None, None, "circuit_open", detail, 0.0, 0.0)] * n, None)

    def _gated(self, xs: list[Any]) -> list[Outcome]:
        if self.gate is None:
            return self._attempt(xs).outcomes
        return self.gate.run(lambda: self._attempt(xs), lambda: self._open(len(xs))).outcomes

    def one(self, x: Any) -> Outcome:
        """The outcome for one input."""
        return self._gated([x])[0]

    def many(self, xs: list[Any]) -> list[Outcome]:
        """The outcomes for a batch: one model call if the model takes batches."""
        if not xs:
            return []
        if self._many is None or len(xs) == 1:
            return [self._gated([x])[0] for x in xs]
        return self._gated(xs)

    async def aone(self, x: Any) -> Outcome:
        """:meth:`one` without blocking the event loop (the model runs in a worker thread)."""
        threads = self._threads()
        if self.gate is not None and self.gate.is_open:
            return await asyncio.wrap_future(threads.submit(self.one, x))
        start = time.perf_counter()
        try:
            raw, error, _ = await asyncio.wait_for(
                asyncio.wrap_future(threads.submit(self._catching, [x])), timeout=self.timeout
            )
        except TimeoutError:
            raw, error = None, ModelTimeoutError(f"TimeoutError after {self.timeout:g} s")
        batch = self._finish(raw, error, time.perf_counter() - start, 1)
        if self.gate is not None:
            self.gate.report(batch)
        return batch.outcomes[0]

    # -- checking and calibrating ----------------------------------------------------------------
    def _finish(self, raw: Any, error: BaseException | None, model_s: float, n: int) -> _Batch:
        """Turn the model's raw output (or error) for ``n`` inputs into outcomes."""
        share = model_s / n
        if error is not None:
            kind = "timeout" if isinstance(error, ModelTimeoutError) else "exception"
            detail = str(error) if kind == "timeout" else short(error)
            return _Batch([Outcome(None, error, kind, detail, share, 0.0)] * n, error)
        if n == 1:
            return self._finish_one(raw, share)
        try:
            rows = self._rows(raw, n)
        except InvalidScoresError as exc:
            return _Batch([Outcome(None, exc, "invalid_scores", str(exc), share, 0.0)] * n, exc)
        outcomes: list[Outcome | None] = [None] * n
        good: list[int] = []
        checked: list[NDArray[np.float64]] = []
        matrix: NDArray[np.float64] | None = None
        if self._all_valid(rows):
            good, checked, matrix = list(range(n)), list(rows), rows
        else:
            for i, row in enumerate(rows):
                try:
                    checked.append(self._scores(row))
                    good.append(i)
                except InvalidScoresError as exc:
                    outcomes[i] = Outcome(None, exc, "invalid_scores", str(exc), share, 0.0)
        if good:
            start = time.perf_counter()
            calibrated = self._calibrate(np.stack(checked) if matrix is None else matrix)
            spent = (time.perf_counter() - start) / len(good)
            for i, scores, result in zip(good, checked, calibrated, strict=True):
                if isinstance(result, CalibratorError):
                    outcomes[i] = Outcome(None, result, "calibrator", str(result), share, spent)
                elif isinstance(result, InvalidScoresError):
                    outcomes[i] = Outcome(None, result, "invalid_scores", str(result), share, 0.0)
                else:
                    outcomes[i] = Outcome(result, None, None, "", share, spent, scores)
        done = [o for o in outcomes if o is not None]
        failed = all(o.proba is None for o in done)
        return _Batch(done, done[0].error if failed else None)

    def _finish_one(self, raw: Any, model_s: float) -> _Batch:
        """:meth:`_finish` for one input (the per-request path, without batch bookkeeping)."""
        try:
            scores = self._scores(raw)
        except InvalidScoresError as exc:
            return _Batch([Outcome(None, exc, "invalid_scores", str(exc), model_s, 0.0)], exc)
        start = time.perf_counter()
        if self.calibrator is None:
            result: Any = self._as_probabilities(scores)
        else:
            result = self._calibrate(scores[None, :])[0]
        spent = time.perf_counter() - start
        if isinstance(result, CalibratorError):
            outcome = Outcome(None, result, "calibrator", str(result), model_s, spent)
        elif isinstance(result, InvalidScoresError):
            outcome = Outcome(None, result, "invalid_scores", str(result), model_s, 0.0)
        else:
            return _Batch([Outcome(result, None, None, "", model_s, spent, scores)], None)
        return _Batch([outcome], result)

    def _all_valid(self, rows: Any) -> bool:
        """Whether a batch's scores pass :meth:`_scores` row by row, checked at once."""
        return (
            isinstance(rows, np.ndarray)
            and self.score_length is not None
            and rows.shape[1] == self.score_length
            and bool(np.isfinite(rows).all())
        )

    def _rows(self, raw: Any, n: int) -> Any:
        """A batch call's output as one raw score row per input (a 2-D array)."""
        if self._many is None or n == 1:
            return [raw]
        try:
            scores = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidScoresError(
                f"the model returned {describe(raw)}, not an array of scores"
            ) from None
        if scores.ndim == 1 and self.score_length == 1:
            scores = scores[:, None]
        if scores.ndim != 2 or scores.shape[0] != n:
            raise InvalidScoresError(
                f"the model returned scores of shape {scores.shape} for a batch of {n} inputs; "
                f"expected ({n}, {self.score_length or 'n_classes'})"
            )
        return scores

    def _scores(self, raw: Any) -> NDArray[np.float64]:
        """One input's output as one finite float64 vector."""
        try:
            scores = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidScoresError(
                f"the model returned {describe(raw)}, not a vector of numbers"
            ) from None
        if scores.ndim == 2 and scores.shape[0] == 1:
            scores = scores[0]
        elif scores.ndim == 0:
            scores = scores.reshape(1)
        if scores.ndim != 1 or scores.size == 0:
            raise InvalidScoresError(
                f"the model returned scores of shape {scores.shape}; expected one vector of "
                f"{self.score_length or 'n_classes'} scores"
            )
        if not np.isfinite(scores).all():
            what = "NaN" if np.isnan(scores).any() else "infinite values"
            raise InvalidScoresError(f"the model returned scores containing {what}")
        if self.score_length is not None and scores.shape[0] != self.score_length:
            raise InvalidScoresError(
                f"the model returned {scores.shape[0]} scores; expected {self.score_length}"
            )
        return scores

    def _calibrate(
        self, scores: NDArray[np.float64]
    ) -> Sequence[NDArray[np.float64] | CalibratorError | InvalidScoresError]:
        """Calibrated probabilities per row (one calibrator call), or each row's failure."""
        if self.calibrator is None:
            return self._as_probabilities_many(scores)
        m = scores.shape[0]
        try:
            out = self.calibrator.predict_proba(scores[:, 0] if self._binary_scores else scores)
            proba = np.asarray(out, dtype=np.float64)
        except Exception as exc:  # any calibrator error degrades the inputs
            return [CalibratorError(short(exc))] * m
        if proba.shape != (m, self.n_classes):
            return [
                CalibratorError(
                    f"the calibrator returned shape {proba.shape}; expected ({m}, {self.n_classes})"
                )
            ] * m
        ok = (
            np.isfinite(proba).all(axis=1)
            & (proba >= 0.0).all(axis=1)
            & (proba <= 1.0).all(axis=1)
            & (np.abs(proba.sum(axis=1) - 1.0) <= PROBABILITY_SUM_TOLERANCE)
        )
        results: list[NDArray[np.float64] | CalibratorError | InvalidScoresError] = []
        for i in range(m):
            if ok[i]:
                results.append(np.ascontiguousarray(proba[i]))
                continue
            try:
                check_probabilities(proba[i : i + 1], "the calibrated probabilities")
                results.append(np.ascontiguousarray(proba[i]))
            except InputError as exc:
                results.append(CalibratorError(str(exc).split(". ")[0]))
        return results

    @classmethod
    def _as_probabilities_many(
        cls, scores: NDArray[np.float64]
    ) -> list[NDArray[np.float64] | InvalidScoresError]:
        """:meth:`_as_probabilities` of every row, checked at once (rows that fail, again
        one by one for their message)."""
        with np.errstate(over="ignore"):
            totals = scores.sum(axis=1)
        ok = (scores.min(axis=1) >= 0.0) & (np.abs(totals - 1.0) <= PROBABILITY_SUM_TOLERANCE)
        rows: list[NDArray[np.float64] | InvalidScoresError] = list(scores)
        if bool(ok.all()):
            return rows
        return [
            row if fine else cls._as_probabilities(row)  # type: ignore[arg-type]
            for row, fine in zip(rows, ok, strict=True)
        ]

    @staticmethod
    def _as_probabilities(row: NDArray[np.float64]) -> NDArray[np.float64] | InvalidScoresError:
        # The conditions of `check_probabilities`, for one finite row.
        low = float(row.min())
        with np.errstate(over="ignore"):  # finite scores near the float limit sum to inf
            total = float(row.sum())
        if low < 0.0 or abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
            return InvalidScoresError(
                f"the model returned scores from {low:.4g} to {float(row.max()):.4g} "
                f"summing to {total:.6g}, not probabilities; pass a calibrator for logits"
            )
        return row
