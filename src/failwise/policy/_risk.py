"""Certified answer threshold: Learn-then-Test with fixed-sequence testing.

`RiskThreshold` finds the lowest confidence threshold whose selective risk (error rate
among the inputs answered automatically) is certified to be at most ``target_risk`` with
probability at least ``confidence_level``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Interval, Options, validate_params
from failwise._validation import (
    check_binary_labels,
    check_consistent_length,
    check_fitted,
    check_scores,
)
from failwise.exceptions import UncertifiedWarning
from failwise.policy._bounds import (
    BOUNDS,
    _p_value,
    _upper_bound,
    required_answered_samples,
)

__all__ = ["RiskThreshold"]

# p-values are computed block by block along the testing order; the first block is small
# because most fits stop early when the risk target is hard, and blocks double after that.
_FIRST_BLOCK: Final = 4096


class RiskThreshold:
    """Lowest confidence threshold with certified selective risk (Learn-then-Test).

    Answering every input whose confidence is at least ``threshold_`` keeps the selective
    risk, the error rate among answered inputs, at or below ``target_risk`` with
    probability at least ``confidence_level`` over the draw of the calibration set.

    Candidate thresholds are tested from the strictest down (fixed-sequence testing, Learn
    then Test; Angelopoulos, Bates, Candès, Jordan & Lei, 2021). Each candidate λ answers the
    n_λ samples with confidence ≥ λ, of which e_λ are wrong; the hypothesis "selective risk
    at λ > target_risk" gets the p-value P(Binomial(n_λ, target_risk) ≤ e_λ) (``bound=
    "binomial"``, exact given n_λ) or the Hoeffding–Bentkus p-value of the paper
    (``"hoeffding_bentkus"``, valid for any bounded loss, more conservative). Testing stops
    at the first candidate whose p-value exceeds δ = 1 − ``confidence_level``; the last
    candidate that passed is ``threshold_``. Fixed-sequence testing spends no multiplicity
    correction, so every distinct confidence can be a candidate.

    Parameters
    ----------
    target_risk : float in (0, 1), default=0.02
        Largest acceptable error rate among automatic answers.
    confidence_level : float in (0, 1), default=0.95
        Probability, over the calibration draw, that the certificate holds.
    bound : {"binomial", "hoeffding_bentkus"}, default="binomial"
        The p-value. ``"binomial"`` is exact for 0/1 errors and certifies the most coverage.
    n_candidates : int >= 1 or None, default=None
        None tests every distinct confidence value (the most coverage). An int tests at
        most that many, at evenly spaced ranks of the sorted confidences: a shorter path to
        plot, a coarser threshold.

    Attributes
    ----------
    threshold_ : float
        Answer when ``confidence >= threshold_``. ``inf`` when nothing could be certified.
    certified_ : bool
        Whether some threshold was certified.
    coverage_ : float
        Share of the calibration samples answered at ``threshold_``.
    risk_ : float
        Empirical selective risk of the calibration samples at ``threshold_`` (NaN when
        nothing is answered).
    risk_upper_bound_ : float
        Upper confidence bound, at ``confidence_level``, of the selective risk at
        ``threshold_`` (Clopper–Pearson for ``"binomial"``, the inverted Hoeffding–Bentkus
        p-value otherwise); at most ``target_risk`` when certified, 1.0 when not.
    n_answered_ : int
        Calibration samples answered at ``threshold_``.
    n_samples_ : int
        Calibration samples seen in ``fit``.
    min_answered_ : int
        Fewest answered samples that can be certified at all (with zero errors); stricter
        candidates are not tested.
    candidates_ : ndarray of shape (n_tested,)
        The tested thresholds, strictest first, up to and including the one where testing
        stopped.
    n_answered_path_ : ndarray of shape (n_tested,)
        Calibration samples answered at each tested candidate.
    errors_path_ : ndarray of shape (n_tested,)
        Wrong answers among them.
    p_values_ : ndarray of shape (n_tested,)
        The p-value of each tested candidate; all but possibly the last are ≤ δ.

    Notes
    -----
    **Guarantee.** For i.i.d. calibration and test data, P(R(``threshold_``) ≤
    ``target_risk``) ≥ ``confidence_level`` over the draw of the calibration set, where
    R(t) = P(wrong | confidence ≥ t) is the selective risk on new inputs (R(∞) = 0: an
    uncertified fit answers nothing).

    **Candidate grid.** The candidates are the observed confidences (every distinct value,
    or those at evenly spaced ranks), chosen without looking at ``correct``. Testing starts
    at the strictest candidate that answers at least ``min_answered_`` samples, the fewest
    for which a p-value ≤ δ is possible at all; testing stricter candidates would only stop
    the sequence before it starts. Because the grid depends on the (unlabelled) confidences
    rather than being fixed in advance, the argument for validity uses one assumption: R(t)
    does not increase with t, i.e. raising the threshold never raises the error rate among
    answered inputs, which holds whenever the confidence is calibrated. Then the first
    tested candidate whose risk exceeds the target answers only inputs whose error
    probabilities are each at least ``target_risk`` on average, so its error count
    dominates Binomial(n, target_risk) and it passes with probability at most δ; every
    false certificate must pass it.

    **Monotone behaviour.** With distinct confidences and the default grid, a higher
    ``target_risk`` or a lower ``confidence_level`` never lowers ``coverage_``. Ties in
    the confidences, or a coarse grid (``n_candidates``), can break this near the start of
    the testing order, because the first tested candidate depends on ``min_answered_``.

    References
    ----------
    Angelopoulos, A. N., Bates, S., Candès, E. J., Jordan, M. I. & Lei, L. (2021). Learn then
    Test: Calibrating predictive algorithms to achieve risk control. arXiv:2110.01052.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import RiskThreshold
    >>> rng = np.random.default_rng(0)
    >>> confidence = rng.uniform(0.5, 1.0, size=5000)
    >>> correct = rng.uniform(size=5000) < confidence
    >>> rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(confidence, correct)
    >>> bool(rt.certified_), round(rt.threshold_, 2), round(rt.coverage_, 2)
    (True, 0.92, 0.16)
    >>> bool(rt.risk_upper_bound_ <= 0.05)
    True
    >>> rt.predict([0.99, 0.6]).tolist()
    [True, False]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "target_risk": [Interval(Real, 0, 1, closed="neither")],
        "confidence_level": [Interval(Real, 0, 1, closed="neither")],
        "bound": [Options(BOUNDS)],
        "n_candidates": [None, Interval(Integral, 1, None)],
    }

    def __init__(
        self,
        *,
        target_risk: float = 0.02,
        confidence_level: float = 0.95,
        bound: str = "binomial",
        n_candidates: int | None = None,
    ) -> None:
        self.target_risk = target_risk
        self.confidence_level = confidence_level
        self.bound = bound
        self.n_candidates = n_candidates

    def fit(self, confidence: ArrayLike, correct: ArrayLike) -> RiskThreshold:
        """Certify the lowest threshold on labelled calibration data.

        Parameters
        ----------
        confidence : array-like of shape (n_samples,)
            Finite scores, higher meaning more confident; typically the calibrated
            probability of the predicted label.
        correct : array-like of shape (n_samples,) of bool or 0/1
            Whether the automatic answer for each sample is right.

        Returns
        -------
        self : RiskThreshold

        Warns
        -----
        UncertifiedWarning
            When no threshold can be certified; ``threshold_`` is then ``inf``.
        """
        validate_params(self, self._parameter_constraints)
        scores = check_scores(confidence, "confidence", ndim=1)
        right = check_binary_labels(correct, "correct")
        n_samples = check_consistent_length(confidence=scores, correct=right)
        alpha = float(self.target_risk)
        delta = 1.0 - float(self.confidence_level)

        # Sort once (strictest first); cumulative errors give every candidate's counts.
        order = np.argsort(scores, kind="stable")[::-1]
        ordered = scores[order]
        cum_errors = np.cumsum(right[order] == 0)
        # A candidate answers everything at or above it: its last index among ties.
        ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
        if self.n_candidates is not None and self.n_candidates < ends.size:
            ranks = np.ceil(np.arange(1, self.n_candidates + 1) * (n_samples / self.n_candidates))
            ends = np.unique(ends[np.searchsorted(ends, ranks.astype(np.intp) - 1)])
        n_answered = ends + 1
        errors = cum_errors[ends]

        self.n_samples_ = n_samples
        self.min_answered_ = required_answered_samples(
            alpha, float(self.confidence_level), bound=self.bound  # type: ignore[arg-type]
        )
        start = int(np.searchsorted(n_answered, self.min_answered_))
        stop = self._test_in_order(n_answered, errors, start, alpha, delta)
        # stop: index of the first failing candidate (or the end); all in start..stop-1 passed.
        tested = slice(start, min(stop + 1, ends.size))
        self.candidates_ = ordered[ends[tested]].astype(np.float64)
        self.n_answered_path_ = n_answered[tested].astype(np.intp)
        self.errors_path_ = errors[tested].astype(np.intp)
        self.p_values_ = _p_value(
            self.errors_path_.astype(np.float64),
            self.n_answered_path_.astype(np.float64),
            alpha,
            self.bound,
        )

        self.certified_ = stop > start
        if self.certified_:
            chosen = stop - 1
            self.threshold_ = float(ordered[ends[chosen]])
            self.n_answered_ = int(n_answered[chosen])
            n_errors = int(errors[chosen])
            self.coverage_ = self.n_answered_ / n_samples
            self.risk_ = n_errors / self.n_answered_
            self.risk_upper_bound_ = float(
                _upper_bound(
                    np.array(float(n_errors)),
                    np.array(float(self.n_answered_)),
                    float(self.confidence_level),
                    self.bound,
                )
            )
        else:
            self.threshold_ = float(np.inf)
            self.n_answered_ = 0
            self.coverage_ = 0.0
            self.risk_ = float("nan")
            self.risk_upper_bound_ = 1.0
            warnings.warn(self._uncertified_message(), UncertifiedWarning, stacklevel=2)
        return self

    def _test_in_order(
        self,
        n_answered: NDArray[np.intp],
        errors: NDArray[Any],
        start: int,
        alpha: float,
        delta: float,
    ) -> int:
        """Index of the first candidate at or after ``start`` whose p-value exceeds δ."""
        position = start
        block = _FIRST_BLOCK
        while position < n_answered.size:
            end = min(position + block, n_answered.size)
            p = _p_value(
                errors[position:end].astype(np.float64),
                n_answered[position:end].astype(np.float64),
                alpha,
                self.bound,
            )
            failed = np.flatnonzero(p > delta)
            if failed.size:
                return position + int(failed[0])
            position = end
            block *= 2
        return int(n_answered.size)

    def _uncertified_message(self) -> str:
        alpha = float(self.target_risk)
        level = float(self.confidence_level)
        bound = self.bound
        half = required_answered_samples(
            alpha,
            level,
            error_rate=alpha / 2,
            bound=bound,  # type: ignore[arg-type]
        )
        if self.candidates_.size == 0:
            why = (
                f"only {self.n_samples_} labelled samples were given, fewer than the "
                f"{self.min_answered_} answered samples any certificate needs"
            )
        else:
            why = (
                f"the strictest testable threshold ({self.candidates_[0]:.6g}, answering "
                f"{int(self.n_answered_path_[0])} of {self.n_samples_} samples) had "
                f"{int(self.errors_path_[0])} error(s), p-value {self.p_values_[0]:.3g} > "
                f"{1 - level:.3g}"
            )
        return (
            f"RiskThreshold could not certify any threshold: no confidence threshold keeps "
            f"the selective risk at or below target_risk={alpha:g} with "
            f"confidence_level={level:g} on this data, so threshold_ is inf and nothing will "
            f"be answered automatically. Reason: {why}. A certificate needs at least "
            f"{self.min_answered_} answered samples with no error, or about {half} answered "
            f"samples at an error rate of {alpha / 2:g} (half the target). Collect more "
            "labelled data, raise `target_risk`, or lower `confidence_level`."
        )

    def predict(self, confidence: ArrayLike) -> NDArray[np.bool_]:
        """Whether to answer each input automatically.

        Parameters
        ----------
        confidence : array-like of shape (n_samples,)
            Scores on the same scale as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,) and dtype bool
            ``confidence >= threshold_``; all False when nothing was certified.
        """
        check_fitted(self, "threshold_", "predict")
        scores = check_scores(confidence, "confidence", ndim=1)
        answered: NDArray[np.bool_] = scores >= self.threshold_
        return answered

    def __repr__(self) -> str:
        return (
            f"RiskThreshold(target_risk={self.target_risk!r}, "
            f"confidence_level={self.confidence_level!r}, bound={self.bound!r}, "
            f"n_candidates={self.n_candidates!r})"
        )
