"""Vector scaling: a scale and a bias per class on the logits (Guo et al. 2017)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # ships no stubs

from failwise._params import Interval
from failwise._validation import (
    check_consistent_length,
    check_labels,
    check_probabilities,
    check_scores,
)
from failwise.calibration._base import LOG_EPSILON, BaseCalibrator, StateKind, check_columns
from failwise.exceptions import InputError

__all__ = ["VectorScaling"]


def _log_softmax_rows(z: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted: NDArray[np.float64] = z - z.max(axis=1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted


class VectorScaling(BaseCalibrator):
    """Vector scaling of multiclass logits (Guo, Pleiss, Sun & Weinberger, ICML 2017).

    Calibrated probabilities are ``softmax(coef_ * logits + intercept_)``: each class gets
    its own scale and bias, fitted by maximum likelihood with L-BFGS and an analytic
    gradient. It can fix class-dependent over- and under-confidence that one temperature
    cannot, at the price of ``2 * n_classes`` parameters (use a few hundred calibration
    samples per class or more). Unlike temperature scaling it can change the predicted class.

    Parameters
    ----------
    from_probabilities : bool, default=False
        If True, ``fit`` and ``predict_proba`` take probabilities and use their logarithms,
        clipped at 1e-12, as logits.
    l2_penalty : float, default=1e-4
        Ridge penalty ``0.5 * l2_penalty * (||coef - 1||**2 + ||intercept||**2)`` added to
        the mean NLL: a pull towards the uncalibrated model. Without it (``0.0``, the
        unregularised fit of Guo et al.) a class whose logit separates its samples
        perfectly, common with clipped probabilities, sends its scale to infinity.
    max_iter : int, default=500
        Maximum number of L-BFGS iterations.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes,)
        Per-class scale.
    intercept_ : ndarray of shape (n_classes,)
        Per-class bias; it sums to zero (softmax ignores a shared shift).
    nll_ : float
        Mean negative log-likelihood of the calibration data at the optimum.
    n_classes_ : int
        Number of classes seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import VectorScaling
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, size=600)
    >>> logits = 3.0 * (np.eye(3)[y] + rng.normal(size=(600, 3)))
    >>> vs = VectorScaling().fit(logits, y)
    >>> vs.coef_.shape, bool(np.all(vs.coef_ < 1.0))
    ((3,), True)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "from_probabilities": [bool],
        "l2_penalty": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    coef_: NDArray[np.float64]
    intercept_: NDArray[np.float64]
    nll_: float

    def __init__(
        self, *, from_probabilities: bool = False, l2_penalty: float = 1e-4, max_iter: int = 1000
    ) -> None:
        self.from_probabilities = from_probabilities
        self.l2_penalty = l2_penalty
        self.max_iter = max_iter

    def _state_schema(self) -> dict[str, StateKind]:
        return {"n_classes_": "int", "coef_": "array", "intercept_": "array", "nll_": "float"}

    def _logits(self, scores: ArrayLike, n_classes: int | None = None) -> NDArray[np.float64]:
        if self.from_probabilities:
            proba = check_probabilities(scores, "scores", n_classes=n_classes)
            return np.log(np.maximum(proba.astype(np.float64), LOG_EPSILON))
        logits = check_scores(scores, "scores", ndim=2)
        if n_classes is not None:
            check_columns(logits, n_classes, "scores")
        return np.asarray(logits, dtype=np.float64)

    def fit(self, scores: ArrayLike, y: ArrayLike) -> VectorScaling:
        """Fit the per-class scales and biases by maximum likelihood.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_classes)
            Logits (or probabilities with ``from_probabilities=True``); at least 2 columns.
        y : array-like of shape (n_samples,)
            True class indices in ``0..n_classes-1``.

        Returns
        -------
        self : VectorScaling
        """
        self._validate_params()
        logits = self._logits(scores)
        n_samples, n_classes = logits.shape
        if n_classes < 2:
            raise InputError(
                f"`scores` must have at least 2 columns (one per class); got shape "
                f"{logits.shape}. For a single binary score use `PlattScaling`."
            )
        labels = check_labels(y, "y", n_classes=n_classes)
        check_consistent_length(scores=logits, y=labels)
        onehot = np.zeros((n_samples, n_classes))
        onehot[np.arange(n_samples), labels] = 1.0
        start = np.concatenate([np.ones(n_classes), np.zeros(n_classes)])
        penalty = float(self.l2_penalty)

        def nll(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            log_p = _log_softmax_rows(logits * params[:n_classes] + params[n_classes:])
            residual = (np.exp(log_p) - onehot) / n_samples
            gradient = np.concatenate(
                [np.einsum("ij,ij->j", residual, logits), residual.sum(axis=0)]
            )
            return -float(np.sum(log_p * onehot)) / n_samples, gradient

        def objective(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            value, gradient = nll(params)
            offset = params - start
            return value + 0.5 * penalty * float(offset @ offset), gradient + penalty * offset

        # L-BFGS-B calls BLAS on matrices of a few dozen entries; a multi-threaded BLAS
        # spends far longer waking its threads than computing (100x slower on a busy host).
        with threadpool_limits(limits=1, user_api="blas"):
            result = minimize(
                objective,
                start,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.max_iter, "gtol": 1e-10, "ftol": 1e-15},
            )
        params = np.asarray(result.x, dtype=np.float64)
        self.n_classes_ = int(n_classes)
        self.coef_ = params[:n_classes].copy()
        self.intercept_ = params[n_classes:] - params[n_classes:].mean()
        self.nll_ = nll(params)[0]
        return self

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return ``softmax(coef_ * logits + intercept_)``.

        Parameters
        ----------
        scores : array-like of shape (n_samples, n_classes)
            Logits (or probabilities with ``from_probabilities=True``) of the same model.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            Calibrated probabilities; rows sum to 1.
        """
        self._check_is_fitted("predict_proba")
        logits = self._logits(scores, self.n_classes_)
        log_p = _log_softmax_rows(logits * self.coef_ + self.intercept_)
        proba: NDArray[np.float64] = np.exp(log_p)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba
