"""Correctness calibration: any confidence signal(s) → P(output correct)."""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from failwise._params import Interval, Options
from failwise._validation import check_consistent_length, check_scores
from failwise.calibration._base import BaseCalibrator, StateKind, binary_labels, positive_to_proba
from failwise.calibration._isotonic import fit_isotonic
from failwise.calibration._logistic import fit_logistic
from failwise.exceptions import InputError

__all__ = ["CorrectnessCalibration"]


class CorrectnessCalibration(BaseCalibrator):
    """Map confidence signals to the probability that an output is correct.

    Many systems have no class probabilities to calibrate, only signals that go with a
    correct output: an LLM's mean token log-probability, the agreement rate of several
    samples (self-consistency), a verifier's score, a retrieval similarity. This calibrator
    learns ``P(correct | signals)`` from outputs labelled correct or wrong.

    - ``method="logistic"``: logistic regression on the standardised signals (Platt-style),
      for one or several columns. Smooth, needs little data, and combines signals.
    - ``method="isotonic"``: isotonic regression on a single signal (Zadrozny & Elkan
      2002): any monotone relation, but needs more data.

    Parameters
    ----------
    method : {"logistic", "isotonic"}, default="logistic"
        How signals map to P(correct).
    l2_penalty : float, default=1e-4
        Ridge penalty on the standardised logistic coefficients (``method="logistic"``
        only); it keeps them finite when a signal separates right from wrong perfectly.
    increasing : {True, False, "auto"}, default="auto"
        Direction of the isotonic map (``method="isotonic"`` only). ``"auto"`` takes the sign
        of the Spearman correlation between the signal and correctness, so a signal such as
        entropy, where larger means less reliable, works without flipping it.

    Attributes
    ----------
    n_signals_ : int
        Number of signal columns seen in ``fit`` (1 for 1-D input).
    n_classes_ : int
        Always 2 (wrong, correct).
    mean_, scale_ : ndarray of shape (n_signals_,)
        Standardisation of each column (``method="logistic"``).
    coef_ : ndarray of shape (n_signals_,)
        Logistic coefficients on the standardised columns (``method="logistic"``).
    intercept_ : float
        Logistic intercept (``method="logistic"``).
    thresholds_, values_ : ndarray of shape (n_knots,)
        Knots of the isotonic map (``method="isotonic"``).
    increasing_ : bool
        Direction of the isotonic map (``method="isotonic"``).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import CorrectnessCalibration
    >>> rng = np.random.default_rng(0)
    >>> mean_logprob = rng.normal(-1.0, 0.5, size=1000)
    >>> correct = rng.uniform(size=1000) < 1 / (1 + np.exp(-4 * (mean_logprob + 1)))
    >>> cal = CorrectnessCalibration().fit(mean_logprob, correct)
    >>> cal.predict_confidence([-2.0, -1.0, 0.0]).round(1)
    array([0. , 0.5, 1. ])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "method": [Options(("logistic", "isotonic"))],
        "l2_penalty": [Interval(Real, 0.0, None, closed="left")],
        "increasing": [Options((True, False, "auto"))],
    }

    n_signals_: int
    mean_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    coef_: NDArray[np.float64]
    intercept_: float
    thresholds_: NDArray[np.float64]
    values_: NDArray[np.float64]
    increasing_: bool

    def __init__(
        self,
        *,
        method: str = "logistic",
        l2_penalty: float = 1e-4,
        increasing: bool | str = "auto",
    ) -> None:
        self.method = method
        self.l2_penalty = l2_penalty
        self.increasing = increasing

    def _state_schema(self) -> dict[str, StateKind]:
        schema: dict[str, StateKind] = {"n_classes_": "int", "n_signals_": "int"}
        if self.method == "isotonic":
            schema.update(thresholds_="array", values_="array", increasing_="bool")
        else:
            schema.update(mean_="array", scale_="array", coef_="array", intercept_="float")
        return schema

    def _signals(self, signals: ArrayLike) -> NDArray[np.float64]:
        array = check_scores(signals, "signals", ndim=None)
        matrix = np.asarray(array, dtype=np.float64)
        return matrix[:, None] if matrix.ndim == 1 else matrix

    def fit(self, signals: ArrayLike, correct: ArrayLike) -> CorrectnessCalibration:
        """Learn P(correct | signals).

        Parameters
        ----------
        signals : array-like of shape (n_samples,) or (n_samples, n_signals)
            One or several confidence signals per output; any real values.
        correct : array-like of shape (n_samples,)
            1/True where the output was correct, 0/False where it was wrong; both must occur.

        Returns
        -------
        self : CorrectnessCalibration
        """
        self._validate_params()
        matrix = self._signals(signals)
        labels = binary_labels(correct, "correct")
        check_consistent_length(signals=matrix, correct=labels)
        targets = labels.astype(np.float64)
        n_signals = matrix.shape[1]
        if self.method == "isotonic":
            if n_signals != 1:
                raise InputError(
                    f"CorrectnessCalibration(method='isotonic') takes a single signal column; "
                    f"got {n_signals} columns. Use method='logistic' to combine several "
                    "signals, or pass one column."
                )
            signal = matrix[:, 0]
            increasing = self.increasing
            if increasing == "auto":
                increasing = _spearman(signal, targets) >= 0.0
            oriented = signal if increasing else -signal
            thresholds, values = fit_isotonic(oriented, targets)
            self.thresholds_ = thresholds if increasing else -thresholds[::-1]
            self.values_ = values if increasing else values[::-1].copy()
            self.increasing_ = bool(increasing)
        else:
            mean = matrix.mean(axis=0)
            scale = matrix.std(axis=0)
            scale[scale == 0.0] = 1.0
            coef, intercept = fit_logistic(
                (matrix - mean) / scale, targets, l2_penalty=float(self.l2_penalty)
            )
            self.mean_, self.scale_ = mean, scale
            self.coef_, self.intercept_ = coef, intercept
        self.n_signals_ = int(n_signals)
        self.n_classes_ = 2
        return self

    def predict_confidence(self, signals: ArrayLike) -> NDArray[np.float64]:
        """Return P(correct) for each output.

        Parameters
        ----------
        signals : array-like of shape (n_samples,) or (n_samples, n_signals_)
            The same signals, in the same column order, as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,), float64 in [0, 1]
        """
        self._check_is_fitted("predict_confidence")
        matrix = self._signals(signals)
        if matrix.shape[1] != self.n_signals_:
            raise InputError(
                f"`signals` has {matrix.shape[1]} columns but {self.n_signals_} signal(s) were "
                "seen in fit. Pass the same signals, in the same column order."
            )
        if self.method == "isotonic":
            confidence: NDArray[np.float64] = np.interp(
                matrix[:, 0], self.thresholds_, self.values_
            )
        else:
            confidence = expit(((matrix - self.mean_) / self.scale_) @ self.coef_ + self.intercept_)
        return np.clip(confidence, 0.0, 1.0)

    def predict_proba(self, signals: ArrayLike) -> NDArray[np.float64]:
        """Return ``[P(wrong), P(correct)]`` for each output.

        Parameters
        ----------
        signals : array-like of shape (n_samples,) or (n_samples, n_signals_)

        Returns
        -------
        ndarray of shape (n_samples, 2), float64
        """
        self._check_is_fitted("predict_proba")
        return positive_to_proba(self.predict_confidence(signals))


def _spearman(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    from scipy.stats import rankdata  # scipy.stats loads slowly: only when needed

    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = float(np.sqrt((rx @ rx) * (ry @ ry)))
    return float(rx @ ry) / denominator if denominator > 0.0 else 0.0
