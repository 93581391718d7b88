"""Temperature scaling (Guo et al. 2017), fitted exactly by a streaming 1-D Newton solver.

The mean negative log-likelihood of ``softmax(beta * z)`` is convex in the inverse
temperature ``beta``:

    f(beta)    = mean_i [ log sum_j exp(beta z_ij) - beta z_iy ]
    f'(beta)   = mean_i [ E_p[z_i] - z_iy ]
    f''(beta)  = mean_i Var_p[z_i]              >= 0
    f'''(beta) = mean_i E_p[(z_i - E_p z_i)^3]

with ``p = softmax(beta z_i)``. One streaming pass over the rows yields all four at once:
each chunk of rows is shifted by its row maxima, exponentiated in the input precision
(float32 stays float32) inside two small reusable buffers, and reduced to per-row sums;
the sums over rows are taken in float64. Threads share a pass by taking contiguous blocks
of rows. The solver starts from the optimum on a strided subsample (a view, not a copy),
then takes safeguarded Halley/Newton steps on the full data inside a bracket that the sign
of ``f'`` maintains. It stops when the error estimate of the last step (``kappa delta^2``
for Newton, ``4 kappa^2 |delta|^3`` for Halley, with ``kappa = |f'''| / (2 f'')``) is below
1e-11 relative, which from the subsample's start takes two full passes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Interval
from failwise._validation import (
    check_consistent_length,
    check_labels,
    check_probabilities,
    check_scores,
)
from failwise.calibration._base import LOG_EPSILON, BaseCalibrator, StateKind
from failwise.exceptions import InputError

__all__ = ["TemperatureScaling"]

#: Values per chunk when ``chunk_size`` is None: two buffers of this size stay in L2 cache.
_CHUNK_VALUES = 1 << 16
#: Inputs with at least this many rows start the solver from the optimum on a subsample of
#: an eighth of the rows, at most _SUBSAMPLE_ROWS of them.
_SUBSAMPLE_MIN_ROWS = 1 << 13
_SUBSAMPLE_ROWS = 1 << 15
#: The inverse temperature is searched in [_BETA_MIN, _BETA_MAX].
_BETA_MIN = 1e-6
_BETA_MAX = 1e6
#: Relative precision of the fitted inverse temperature.
_RTOL = 1e-10
_MAX_PASSES = 100


@dataclass
class _Sums:
    """Per-sample means of the NLL and its first three derivatives in beta."""

    value: float
    gradient: float
    hessian: float
    third: float
    #: Every true class has the largest logit, so the likelihood grows without bound in beta.
    separable: bool


class _Logits:
    """Streams chunks of logits (or log-probabilities) out of a 2-D array without copying it.

    Rows are split into one contiguous block per thread; each thread walks its block in
    chunks through two buffers of its own and writes per-row sums into shared arrays of
    length n_samples (disjoint slices, so no locking). Every row is reduced the same way
    whatever the chunking and threading, and the sums over rows are taken afterwards in
    one thread, so the result does not depend on the number of threads. The first pass
    also records the row maxima and the true-class logits.
    """

    def __init__(
        self,
        array: NDArray[np.floating[Any]],
        labels: NDArray[np.intp],
        *,
        chunk: int,
        from_probabilities: bool,
        pool: ThreadPoolExecutor | None = None,
        n_threads: int = 1,
    ) -> None:
        self.array = array
        self.labels = labels
        self.n_samples, self.n_classes = array.shape
        self.chunk = chunk
        self.from_probabilities = from_probabilities
        self.pool = pool
        dtype = array.dtype
        # Row maxima (of the logits) and true-class logits minus them, filled by the first pass.
        self.row_max = np.empty((self.n_samples, 1), dtype=dtype)
        self.true_shifted = np.empty(self.n_samples, dtype=np.float64)
        self.ready = False
        # Per-row sums of exp(beta z'), times z', z'^2 and z'^3, rewritten by every pass.
        self.moments = np.empty((4, self.n_samples), dtype=dtype)
        # A block per thread, but at least a few chunks per block.
        n_blocks = max(1, min(n_threads, self.n_samples // (4 * chunk))) if pool else 1
        edges = np.linspace(0, self.n_samples, n_blocks + 1).astype(int)
        self.blocks = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))

    def _walk(self, first: int, last: int, beta: float) -> None:
        """Fill the per-row sums of rows ``first:last`` at ``beta``."""
        dtype = self.array.dtype
        rows = min(self.chunk, last - first)
        shifted = np.empty((rows, self.n_classes), dtype=dtype)
        work = np.empty((rows, self.n_classes), dtype=dtype)
        sample_index = np.arange(rows)
        scale = dtype.type(beta)
        s0, s1, s2, s3 = self.moments
        for start in range(first, last, self.chunk):
            stop = min(start + self.chunk, last)
            size = stop - start
            out, e = shifted[:size], work[:size]
            block = self.array[start:stop]
            row_max = self.row_max[start:stop]
            if self.from_probabilities:
                np.maximum(block, LOG_EPSILON, out=out)
                np.log(out, out=out)
                block = out
            if not self.ready:
                np.max(block, axis=1, out=row_max[:, 0])
                true = block[sample_index[:size], self.labels[start:stop]]
                self.true_shifted[start:stop] = true - row_max[:, 0]
            np.subtract(block, row_max, out=out)
            np.multiply(out, scale, out=e)
            np.exp(e, out=e)
            np.einsum("ij->i", e, out=s0[start:stop])
            np.einsum("ij,ij->i", e, out, out=s1[start:stop])
            np.multiply(e, out, out=e)
            np.einsum("ij,ij->i", e, out, out=s2[start:stop])
            np.multiply(e, out, out=e)
            np.einsum("ij,ij->i", e, out, out=s3[start:stop])

    def sums(self, beta: float) -> _Sums:
        """One pass over all rows: mean NLL and its derivatives at ``beta``."""
        if self.pool is None or len(self.blocks) == 1:
            for first, last in self.blocks:
                self._walk(first, last, beta)
        else:
            list(self.pool.map(lambda block: self._walk(block[0], block[1], beta), self.blocks))
        s0, s1, s2, s3 = self.moments
        self.ready = True
        total = s0.astype(np.float64)
        mean = s1 / total
        second = s2 / total
        variance = np.maximum(second - mean * mean, 0.0)
        skew = s3 / total - mean * (3.0 * second - 2.0 * mean * mean)
        true = self.true_shifted
        sums = _Sums(
            value=float(np.mean(np.log(total)) - beta * np.mean(true)),
            gradient=float(np.mean(mean) - np.mean(true)),
            hessian=float(np.mean(variance)),
            third=float(np.mean(skew)),
            separable=bool(np.all(true >= 0.0)),
        )
        if not all(map(math.isfinite, (sums.value, sums.gradient, sums.hessian))):
            raise InputError(
                f"The temperature-scaling objective is not finite at temperature {1 / beta:.4g}: "
                "the logits are too large for the input precision. Pass float64 logits or "
                "divide them by a constant first."
            )
        return sums


def _minimise(
    evaluate: Callable[[float], _Sums], beta: float, rtol: float
) -> tuple[float, float, int]:
    """Safeguarded Halley/Newton minimisation of a convex 1-D function on [_BETA_MIN, _BETA_MAX].

    Every evaluation narrows a bracket ``[low, high]`` that holds the minimiser (by the sign
    of the derivative). A step that leaves the bracket is replaced by a bisection in log
    space, or by a tenfold expansion while one side is still open. Steps that shrink slowly
    in one direction (the flat tail of a nearly separable problem, where Newton creeps) are
    doubled until the bracket closes.

    Returns the minimiser, the minimum (extrapolated to the final step) and the number of
    evaluations.
    """
    low, high = _BETA_MIN, _BETA_MAX
    previous_step, boost = 0.0, 1.0
    for evaluation in range(1, _MAX_PASSES + 1):
        sums = evaluate(beta)
        g, h, t = sums.gradient, sums.hessian, sums.third
        if g < 0.0 and sums.separable:
            return _BETA_MAX, evaluate(_BETA_MAX).value, evaluation + 1
        if g == 0.0:
            return beta, sums.value, evaluation
        if g < 0.0:
            low = beta
        else:
            high = beta
        step, error = _step(g, h, t)
        if step * previous_step > 0.0 and abs(step) > 0.5 * abs(previous_step):
            boost *= 2.0  # linear, not quadratic, convergence: lengthen the steps
            error = math.inf
        else:
            boost = 1.0
        previous_step = step
        candidate = beta + boost * step
        if not low < candidate < high:
            if high < _BETA_MAX and low > _BETA_MIN:
                candidate = math.sqrt(low * high)
            else:
                candidate = min(beta * 10.0, _BETA_MAX) if g < 0.0 else max(beta / 10.0, _BETA_MIN)
                candidate = min(max(candidate, low), high)
            error = math.inf
        if candidate == beta:  # pinned at a bound of the search interval
            return beta, sums.value, evaluation
        if abs(candidate - beta) <= rtol * beta or error <= 0.1 * rtol * beta:
            delta = candidate - beta
            return candidate, sums.value + g * delta + 0.5 * h * delta * delta, evaluation
        beta = candidate
    return beta, evaluate(beta).value, _MAX_PASSES + 1  # pragma: no cover - never observed


def _step(g: float, h: float, t: float) -> tuple[float, float]:
    """Halley (or Newton) step from the first three derivatives, and its error estimate.

    With ``delta = -g / h`` and ``kappa = |t| / (2 h)``, a Newton step leaves an error of
    about ``kappa delta^2``. Halley's leaves about ``|delta|^3`` times ``(t / h)^2 / 4`` minus
    a fourth-derivative term; ``4 kappa^2 |delta|^3 = (t / h)^2 |delta|^3`` stands for both.
    """
    if not (h > 1e-300 and math.isfinite(g / h)):
        return (math.inf if g < 0.0 else -math.inf), math.inf
    newton = -g / h
    kappa = abs(t) / (2.0 * h)
    denominator = 1.0 + newton * t / (2.0 * h)
    if denominator >= 0.5:
        step = newton / denominator
        error = min(kappa * newton * newton, 4.0 * kappa * kappa * abs(newton * newton * newton))
    else:
        step, error = newton, kappa * newton * newton
    return step, (error if math.isfinite(error) else math.inf)


def _thread_count(n_threads: int | None) -> int:
    if n_threads is not None:
        return int(n_threads)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _chunk_rows(chunk_size: int | None, n_classes: int) -> int:
    if chunk_size is not None:
        return int(chunk_size)
    return max(1, _CHUNK_VALUES // n_classes)


class TemperatureScaling(BaseCalibrator):
    """Temperature scaling of multiclass logits (Guo, Pleiss, Sun & Weinberger, ICML 2017).

    Calibrated probabilities are ``softmax(logits / T)`` with one temperature ``T > 0``
    fitted by maximum likelihood. ``T > 1`` softens an overconfident model; the predicted
    class never changes.

    The fit is exact: the negative log-likelihood is convex in ``beta = 1 / T``, so a
    safeguarded Newton/Halley iteration with analytic derivatives finds the optimum to
    about 1e-10 relative. It streams over the rows in chunks: the input is never copied,
    float32 input is processed in float32 with float64 accumulation, and the extra memory is
    two chunk-sized buffers plus a few arrays of length n_samples (about 90 bytes per
    sample). Starting from the optimum on a subsample, large inputs need two full passes.

    Parameters
    ----------
    from_probabilities : bool, default=False
        If True, ``fit`` and ``predict_proba`` take probabilities (validated: rows in
        [0, 1] summing to 1) and use their logarithms, clipped at 1e-12, as logits.
    chunk_size : int or None, default=None
        Rows processed at a time. None picks about 65,536 values per chunk, which keeps the
        working buffers in cache. Results do not depend on it beyond rounding.
    n_threads : int or None, default=None
        Threads that share the passes over large inputs (NumPy releases the GIL inside
        each chunk). None uses every CPU core available to the process. The fitted
        temperature does not depend on it.

    Attributes
    ----------
    temperature_ : float
        Fitted temperature ``T``.
    nll_ : float
        Mean negative log-likelihood of the calibration data at ``temperature_``.
    n_classes_ : int
        Number of classes (columns) seen in ``fit``.
    n_iter_ : int
        Passes over the full data made by the solver.

    Warns
    -----
    UserWarning
        When the optimum lies at a bound of the search range: ``T = 1e-6`` if the predicted
        class is right on every calibration sample (the likelihood then grows without limit
        as ``T`` falls), ``T = 1e6`` if the logits carry no information about the labels.

    See Also
    --------
    VectorScaling : a scale and a bias per class.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import TemperatureScaling
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, size=500)
    >>> logits = 4.0 * (np.eye(3)[y] + rng.normal(size=(500, 3)))  # overconfident
    >>> ts = TemperatureScaling().fit(logits, y)
    >>> bool(ts.temperature_ > 1.0)
    True
    >>> ts.predict_proba(logits[:2]).sum(axis=1).round(6)
    array([1., 1.])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "from_probabilities": [bool],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    temperature_: float
    nll_: float
    n_iter_: int

    def __init__(
        self,
        *,
        from_probabilities: bool = False,
        chunk_size: int | None = None,
        n_threads: int | None = None,
    ) -> None:
        self.from_probabilities = from_probabilities
        self.chunk_size = chunk_size
        self.n_threads = n_threads

    def _state_schema(self) -> dict[str, StateKind]:
        return {"n_classes_": "int", "temperature_": "float", "nll_": "float", "n_iter_": "int"}

    def _check_input(
        self, scores: ArrayLike, n_classes: int | None = None
    ) -> NDArray[np.floating[Any]]:
        if self.from_probabilities:
            array = check_probabilities(scores, "scores", n_classes=n_classes)
        else:
            array = _check_logits(scores, "scores")
            if n_classes is not None and array.shape[1] != n_classes:
                raise InputError(
                    f"`scores` has {array.shape[1]} columns but {n_classes} classes were seen "
                    "in fit. Pass the logits of the same model, with columns in the same class "
                    "order."
                )
        if array.dtype not in (np.float32, np.float64):  # float16 and long double
            array = array.astype(np.float64)
        return array

    def fit(self, scores: ArrayLike, y: ArrayLike) -> TemperatureScaling:
        """Fit the temperature by maximum likelihood.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_classes)
            Logits (or probabilities with ``from_probabilities=True``); float32 input is
            used as it is, without a float64 copy. At least two columns.
        y : array-like of shape (n_samples,)
            True class indices in ``0..n_classes-1``.

        Returns
        -------
        self : TemperatureScaling
        """
        self._validate_params()
        array = self._check_input(scores)
        if array.shape[1] < 2:
            raise InputError(
                f"`scores` must have at least 2 columns (one per class); got shape "
                f"{array.shape}. For a single binary score use `PlattScaling`."
            )
        labels = check_labels(y, "y", n_classes=array.shape[1])
        n_samples = check_consistent_length(scores=array, y=labels)
        chunk = _chunk_rows(self.chunk_size, array.shape[1])
        n_threads = _thread_count(self.n_threads)
        # Threads pay off once each gets a few chunks.
        pool = ThreadPoolExecutor(n_threads) if n_threads > 1 and n_samples >= 8 * chunk else None
        try:
            beta, nll, passes = self._solve(array, labels, chunk, pool, n_threads)
        finally:
            if pool is not None:
                pool.shutdown()
        _warn_at_bound(beta)
        self.n_classes_ = int(array.shape[1])
        self.temperature_ = 1.0 / beta
        self.nll_ = float(nll)
        self.n_iter_ = passes
        return self

    def _solve(
        self,
        array: NDArray[np.floating[Any]],
        labels: NDArray[np.intp],
        chunk: int,
        pool: ThreadPoolExecutor | None,
        n_threads: int,
    ) -> tuple[float, float, int]:
        """Minimise the NLL over beta; return beta, the NLL and the full passes made."""
        n_samples = array.shape[0]
        beta = 1.0
        if n_samples >= _SUBSAMPLE_MIN_ROWS:
            # Solve on a strided view (no copy) first: its optimum is within about a percent
            # of the full one, so the full data then need about two passes.
            step = n_samples // min(_SUBSAMPLE_ROWS, n_samples // 8)
            sample = _Logits(
                array[::step],
                labels[::step],
                chunk=chunk,
                from_probabilities=self.from_probabilities,
                pool=pool,
                n_threads=n_threads,
            )
            beta, _, _ = _minimise(sample.sums, beta, 1e-6)
            if not _BETA_MIN < beta < _BETA_MAX:
                beta = 1.0
        data = _Logits(
            array,
            labels,
            chunk=chunk,
            from_probabilities=self.from_probabilities,
            pool=pool,
            n_threads=n_threads,
        )
        return _minimise(data.sums, beta, _RTOL)

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return ``softmax(logits / temperature_)``.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_classes)
            Logits, or probabilities with ``from_probabilities=True``, from the same model
            as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            Calibrated probabilities; rows sum to 1.
        """
        self._check_is_fitted("predict_proba")
        array = self._check_input(scores, self.n_classes_)
        return _scaled_softmax(
            array,
            1.0 / self.temperature_,
            chunk=_chunk_rows(self.chunk_size, array.shape[1]),
            from_probabilities=self.from_probabilities,
        )


def _scaled_softmax(
    array: NDArray[np.floating[Any]], beta: float, *, chunk: int, from_probabilities: bool
) -> NDArray[np.float64]:
    """``softmax(beta * logits)`` computed chunk by chunk straight into the float64 output."""
    out = np.empty(array.shape, dtype=np.float64)
    for start in range(0, array.shape[0], chunk):
        stop = min(start + chunk, array.shape[0])
        block = out[start:stop]
        if from_probabilities:
            np.maximum(array[start:stop], LOG_EPSILON, out=block)
            np.log(block, out=block)
        else:
            block[...] = array[start:stop]
        block -= block.max(axis=1, keepdims=True)
        block *= beta
        np.exp(block, out=block)
        block /= block.sum(axis=1, keepdims=True)
    return out


def _check_logits(scores: ArrayLike, name: str) -> NDArray[np.floating[Any]]:
    """Validate a 2-D logit matrix without a full-size temporary.

    Finiteness is checked through the row sums (NaN and inf propagate into them); only when
    that fails does the exact, message-producing check in :func:`check_scores` run.
    """
    if scores is None:
        raise InputError(f"`{name}` is required; got None.")
    if isinstance(scores, np.ndarray) and scores.dtype.kind == "f":
        array: NDArray[np.floating[Any]] = scores
    else:
        return check_scores(scores, name, ndim=2)
    if array.ndim != 2 or array.size == 0:
        return check_scores(array, name, ndim=2)
    sums = array @ np.ones(array.shape[1], dtype=array.dtype)
    if not np.isfinite(sums).all():
        check_scores(array, name, ndim=2)
    return array


def _warn_at_bound(beta: float) -> None:
    if beta >= _BETA_MAX:
        warnings.warn(
            "Temperature scaling reached its smallest temperature (1e-6): on the calibration "
            "data the predicted class is always right, so the likelihood keeps growing as "
            "the temperature falls and every confidence becomes 1. Calibrate on more data, "
            "including errors, before trusting these confidences.",
            UserWarning,
            stacklevel=3,
        )
    elif beta <= _BETA_MIN:
        warnings.warn(
            "Temperature scaling reached its largest temperature (1e6): the logits carry no "
            "information about the labels, so every prediction becomes uniform. Check that "
            "the labels and logits refer to the same samples and class order.",
            UserWarning,
            stacklevel=3,
        )
