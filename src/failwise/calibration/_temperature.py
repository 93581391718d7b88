"""Temperature scaling (Guo et al. 2017), fitted exactly by a streaming 1-D Newton solver.

The mean negative log-likelihood of ``softmax(beta * z)`` is convex in the inverse
temperature ``beta``:

    f(beta)    = mean_i [ log sum_j exp(beta z_ij) - beta z_iy ]
    f'(beta)   = mean_i [ E_p[z_i] - z_iy ]
    f''(beta)  = mean_i Var_p[z_i]              >= 0
    f'''(beta) = mean_i E_p[(z_i - E_p z_i)^3]

with ``p = softmax(beta z_i)``. One streaming pass over the rows yields all four at once:
each chunk of rows is shifted by its row maxima, exponentiated in the input precision
(float32 stays float32) inside two small reusable buffers, and reduced to per-row sums that
are accumulated in float64. The solver starts from the optimum on a strided subsample, then
takes safeguarded Halley/Newton steps on the full data inside a bracket that the sign of
``f'`` maintains; it stops when the quadratic-convergence error estimate
``|f'''| delta^2 / (2 f'')`` of the last step is negligible, which on a good start takes two
full passes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
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
#: Rows in the subsample whose optimum starts the full-data solver.
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


class _Logits:
    """Streams chunks of logits (or log-probabilities) out of a 2-D array without copying it.

    The first pass also records the row maxima and the true-class logits; after that the
    extra memory is two buffers of ``chunk`` rows and a few arrays of length n_samples.
    """

    def __init__(
        self,
        array: NDArray[np.floating[Any]],
        labels: NDArray[np.intp],
        *,
        chunk: int,
        from_probabilities: bool,
    ) -> None:
        self.array = array
        self.labels = labels
        self.n_samples, self.n_classes = array.shape
        self.chunk = chunk
        self.from_probabilities = from_probabilities
        dtype = array.dtype
        rows = min(chunk, self.n_samples)
        self.shifted = np.empty((rows, self.n_classes), dtype=dtype)
        self.work = np.empty((rows, self.n_classes), dtype=dtype)
        self.ones = np.ones(self.n_classes, dtype=dtype)
        self.sample_index = np.arange(rows)
        # Row maxima (of the logits) and true-class logits minus them, filled by the first pass.
        self.row_max = np.empty((self.n_samples, 1), dtype=dtype)
        self.true_shifted = np.empty(self.n_samples, dtype=np.float64)
        self.ready = False
        # Per-row sums of exp(beta z'), times z', z'^2 and z'^3, rewritten by every pass.
        self.moments = np.empty((4, self.n_samples), dtype=dtype)

    def shifted_chunk(self, start: int, stop: int) -> NDArray[np.floating[Any]]:
        """Logits of rows ``start:stop`` minus their row maximum, in the input precision."""
        out = self.shifted[: stop - start]
        block = self.array[start:stop]
        row_max = self.row_max[start:stop]
        if self.from_probabilities:
            np.maximum(block, LOG_EPSILON, out=out)
            np.log(out, out=out)
            logits = out
        else:
            logits = block
        if not self.ready:
            np.max(logits, axis=1, out=row_max[:, 0])
            true = logits[self.sample_index[: stop - start], self.labels[start:stop]]
            self.true_shifted[start:stop] = true - row_max[:, 0]
        np.subtract(logits, row_max, out=out)
        return out

    def sums(self, beta: float) -> _Sums:
        """One pass over all rows: mean NLL and its derivatives at ``beta``."""
        scale = self.array.dtype.type(beta)
        s0, s1, s2, s3 = self.moments
        for start in range(0, self.n_samples, self.chunk):
            stop = min(start + self.chunk, self.n_samples)
            shifted = self.shifted_chunk(start, stop)
            e = self.work[: stop - start]
            np.multiply(shifted, scale, out=e)
            np.exp(e, out=e)
            np.matmul(e, self.ones, out=s0[start:stop])
            np.einsum("ij,ij->i", e, shifted, out=s1[start:stop])
            np.multiply(e, shifted, out=e)
            np.einsum("ij,ij->i", e, shifted, out=s2[start:stop])
            np.multiply(e, shifted, out=e)
            np.einsum("ij,ij->i", e, shifted, out=s3[start:stop])
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

    Returns the minimiser, the minimum (extrapolated to the final step) and the number of
    evaluations.
    """
    low, high = _BETA_MIN, _BETA_MAX  # the minimiser lies in [low, high]
    for evaluation in range(1, _MAX_PASSES + 1):
        sums = evaluate(beta)
        g, h, t = sums.gradient, sums.hessian, sums.third
        if g < 0.0:
            low = beta
        elif g > 0.0:
            high = beta
        else:
            return beta, sums.value, evaluation
        if h > 1e-300 and math.isfinite(g / h):
            newton = -g / h
            denominator = 1.0 + newton * t / (2.0 * h)
            step = newton / denominator if denominator >= 0.5 else newton
            candidate = beta + step
            error = abs(t) * newton * newton / (2.0 * h)
        else:
            candidate, error, newton = math.inf if g < 0.0 else 0.0, math.inf, math.inf
        if not low < candidate < high:
            # Outside the bracket: bisect it in log space, or expand it by a factor of 10.
            if high < _BETA_MAX and low > _BETA_MIN:
                candidate = math.sqrt(low * high)
            else:
                candidate = min(beta * 10.0, _BETA_MAX) if g < 0.0 else max(beta / 10.0, _BETA_MIN)
                candidate = min(max(candidate, low), high)
            error = math.inf
        if candidate == beta:  # pinned at a bound of the search interval
            return beta, sums.value, evaluation
        converged = abs(candidate - beta) <= rtol * beta or error <= 0.01 * rtol * beta
        if converged:
            delta = candidate - beta
            value = sums.value + g * delta + 0.5 * h * delta * delta
            return candidate, value, evaluation
        beta = candidate
    return beta, evaluate(beta).value, _MAX_PASSES + 1  # pragma: no cover - never observed


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
    two chunk-sized buffers plus two arrays of length n_samples. A good start from a
    subsample means large inputs need about two full passes.

    Parameters
    ----------
    from_probabilities : bool, default=False
        If True, ``fit`` and ``predict_proba`` take probabilities (validated: rows in
        [0, 1] summing to 1) and use their logarithms, clipped at 1e-12, as logits.
    chunk_size : int or None, default=None
        Rows processed at a time. None picks about 65,536 values per chunk, which keeps the
        working buffers in cache. Results do not depend on it beyond rounding.

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
    }

    temperature_: float
    nll_: float
    n_iter_: int

    def __init__(self, *, from_probabilities: bool = False, chunk_size: int | None = None) -> None:
        self.from_probabilities = from_probabilities
        self.chunk_size = chunk_size

    def _state_schema(self) -> dict[str, StateKind]:
        return {"n_classes_": "int", "temperature_": "float", "nll_": "float", "n_iter_": "int"}

    def _check_input(
        self, scores: ArrayLike, n_classes: int | None = None
    ) -> NDArray[np.floating[Any]]:
        if self.from_probabilities:
            return check_probabilities(scores, "scores", n_classes=n_classes)
        array = _check_logits(scores, "scores")
        if n_classes is not None and array.shape[1] != n_classes:
            raise InputError(
                f"`scores` has {array.shape[1]} columns but {n_classes} classes were seen in "
                "fit. Pass the logits of the same model, with columns in the same class order."
            )
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

        beta = 1.0
        step = n_samples // _SUBSAMPLE_ROWS
        if step >= 4:
            # Solve on a strided view (no copy) first: its optimum is within a fraction of a
            # percent of the full one, so the full data need about two passes.
            sample = _Logits(
                array[::step],
                labels[::step],
                chunk=chunk,
                from_probabilities=self.from_probabilities,
            )
            beta, _, _ = _minimise(sample.sums, beta, 1e-6)
        data = _Logits(array, labels, chunk=chunk, from_probabilities=self.from_probabilities)
        beta, nll, passes = _minimise(data.sums, beta, _RTOL)
        _warn_at_bound(beta)
        self.n_classes_ = int(array.shape[1])
        self.temperature_ = 1.0 / beta
        self.nll_ = float(nll)
        self.n_iter_ = passes
        return self

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
