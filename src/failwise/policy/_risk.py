"""Certified answer threshold: Learn-then-Test with fixed-sequence testing and restarts.

`RiskThreshold` finds the lowest confidence threshold whose selective risk (error rate
among the inputs answered automatically) is certified to be at most ``target_risk`` with
probability at least ``confidence_level``. The guarantee is finite-sample and exact under
one assumption, stated once in the Notes of :class:`RiskThreshold` (the *monotone-risk
assumption*: selective risk does not increase with the threshold, which holds when the
confidence is calibrated).
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from failwise._base import Estimator
from failwise._params import Interval, Options
from failwise._validation import (
    check_binary_labels,
    check_consistent_length,
    check_fitted,
    check_scores,
)
from failwise.exceptions import UncertifiedWarning
from failwise.policy._bounds import (
    BOUNDS,
    _answered_for_errors,
    _hb_hoeffding,
    _p_value,
    _required_answered,
    _upper_bound,
)

__all__ = ["RiskThreshold"]

#: The pre-registered starts: (errors allowed, share of δ). Each start is the candidate
#: answering the fewest samples with which that many errors pass at the start's own share of
#: δ, so where it lies depends on ``target_risk`` and ``confidence_level`` only. The first
#: catches a clean top; the second starts deep enough that a few unlucky errors among the
#: most confident answers still pass, and inherits the first one's level when the first
#: sequence reaches it alive.
_STARTS: Final = ((0, 0.4), (3, 0.5))

#: Share of δ spread over the restart points (answered counts 2^k beyond the last start),
#: for a bad patch among the most confident answers above a clean majority.
_RESTART_SHARE: Final = 0.1

# Candidates are tested block by block along the testing order; blocks double in size, so
# a sequence that fails early costs little and a long one takes few passes.
_FIRST_BLOCK: Final = 16384

# The cheap bounds must decide a candidate by this relative margin, so that rounding in
# them never decides a candidate differently from its fully computed p-value.
_SCREEN_MARGIN: Final = 1e-6


def _first_failure(
    errors: NDArray[Any],
    n_answered: NDArray[Any],
    alpha: float,
    level: NDArray[np.float64],
    bound: str,
) -> int | None:
    """Index of the first candidate whose p-value exceeds its ``level`` (None if all pass).

    Fully computed p-values need the incomplete beta function, the costly part of a fit. Cheap
    bounds decide most candidates first: with π = P(Binomial(n, α) = e) and
    ρ = e(1 − α) / ((n − e + 1)α) < 1, the binomial tail lies in [π, π / (1 − ρ)]
    (its terms fall geometrically below e); the Hoeffding term, cheaper still, bounds either
    p-value from above. Only candidates the bounds cannot decide get the full computation.

    ``level`` must not decrease along the block (it only grows while no test fails).
    """
    # Along the block the level never decreases and n grows, so a candidate that adds no
    # error has a p-value no larger than its predecessor's: only the first candidate and
    # those that add an error can fail.
    critical = np.flatnonzero(np.diff(errors, prepend=-1) > 0)
    e = errors[critical].astype(np.float64)
    n = n_answered[critical].astype(np.float64)
    level = level[critical]
    # At or above ⌈nα⌉ errors the count reaches the median of Binomial(n, α), so either
    # p-value is at least 1/2: a sure failure at any level below 1/2. Nothing after the
    # first such candidate needs a look.
    at_median = np.flatnonzero((e >= np.ceil(n * alpha)) & (level < 0.5))
    cut = int(at_median[0]) if at_median.size else e.size
    e, n, level = e[:cut], n[:cut], level[:cut]
    hoeffding = _hb_hoeffding(e / n, n, alpha)
    rest = np.flatnonzero(hoeffding > level * (1.0 - _SCREEN_MARGIN))
    e_rest, n_rest, level_rest = e[rest], n[rest], level[rest]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_pmf = (
            special.gammaln(n_rest + 1.0)
            - special.gammaln(e_rest + 1.0)
            - special.gammaln(n_rest - e_rest + 1.0)
            + e_rest * math.log(alpha)
            + (n_rest - e_rest) * math.log1p(-alpha)
        )
        low = np.exp(log_pmf)
        ratio = e_rest * (1.0 - alpha) / ((n_rest - e_rest + 1.0) * alpha)
        high = np.where(ratio < 1.0, low / (1.0 - ratio), np.inf)
    if bound != "binomial":
        high = np.minimum(hoeffding[rest], math.e * high)
        low = np.minimum(hoeffding[rest], math.e * low)
    sure_fail = np.flatnonzero(low > level_rest * (1.0 + _SCREEN_MARGIN))
    limit = int(sure_fail[0]) if sure_fail.size else rest.size
    unsure = np.flatnonzero(high[:limit] > level_rest[:limit] * (1.0 - _SCREEN_MARGIN))
    # Full p-values for the undecided, a few at a time: only the first failure matters.
    chunk = 64
    for first in range(0, unsure.size, chunk):
        part = unsure[first : first + chunk]
        full = _p_value(e_rest[part], n_rest[part], alpha, bound)
        failed = np.flatnonzero(full > level_rest[part])
        if failed.size:
            return int(critical[rest[part[failed[0]]]])
        chunk *= 4
    if limit < rest.size:
        return int(critical[rest[limit]])
    return int(critical[cut]) if cut < critical.size else None


class RiskThreshold(Estimator):
    """Lowest confidence threshold with certified selective risk (Learn-then-Test).

    Answering every input whose confidence is at least ``threshold_`` keeps the selective
    risk, the error rate among answered inputs, at or below ``target_risk`` with
    probability at least ``confidence_level`` over the draw of the calibration set, under
    the monotone-risk assumption (see Notes: selective risk does not increase with the
    threshold, which holds when the confidence is calibrated).

    Candidate thresholds are tested from the strictest down, as in Learn then Test
    (Angelopoulos, Bates, Candès, Jordan & Lei, 2021). Candidate λ answers the n_λ samples
    with confidence ≥ λ, e_λ of them wrongly; the hypothesis "selective risk at λ >
    target_risk" gets the p-value P(Binomial(n_λ, target_risk) ≤ e_λ) (``bound="binomial"``,
    exact given n_λ under the monotone-risk assumption of the Notes) or the paper's
    Hoeffding–Bentkus p-value (``"hoeffding_bentkus"``, valid for any bounded loss, more
    conservative). A candidate passes when its p-value is at most the level it is tested
    at; ``threshold_`` is the lowest candidate that passed.

    The levels follow the fallback procedure (Wiens, 2003), a fixed-sequence test with
    several pre-registered starts that controls the family-wise error rate at δ = 1 −
    ``confidence_level``. δ is split, before looking at any label, over the starts:

    * 40 % of δ on the first start, the candidate answering ``min_answered_`` samples: the
      fewest with which zero errors pass at that level;
    * 50 % on the second start, the fewest answered samples with which **three** errors
      pass at that level. A single start near the top ends the search at the first unlucky
      error among the most confident answers (one error in the top 150 fails a 2 % target
      at 95 %); the second start lies deep enough that a few such errors still pass.
      When the second start would answer more than half of the samples, its share goes to
      the first start (so with few samples the first start gets 90 % of δ);
    * 10 % on restart points, the candidates answering 2^k samples (weights ∝ 2^(k/2);
      points closer to the top than twice the last start are unused), for a bad patch
      at the top above a clean majority.

    From a start, candidates are tested in order (strictest first) at the running level; a
    pass carries the level on to the next candidate, and each start or restart point that
    is reached adds its share, so a first sequence that reaches the second start alive goes
    on at 90 % of δ. A failure drops the level to 0 until the next start or restart point,
    which goes on at its own share. Every distinct confidence can be a candidate: there is
    no multiplicity correction along a sequence. Thresholds stricter than the first start
    are not tested. ``start_points_`` and ``start_levels_`` hold the starts.

    Parameters
    ----------
    target_risk : float in (0, 1), default=0.02
        Largest acceptable error rate among automatic answers.
    confidence_level : float in (0, 1), default=0.95
        Probability, over the calibration draw, that the certificate holds.
    bound : {"binomial", "hoeffding_bentkus"}, default="binomial"
        The p-value. ``"binomial"`` is exact for 0/1 errors (under the monotone-risk
        assumption, see Notes) and certifies the most coverage.
    n_candidates : int >= 1 or None, default=None
        None tests every distinct confidence value (the most coverage). An int keeps at
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
        p-value otherwise): at most ``target_risk`` when certified, since the p-value there
        was at most its level and every level is at most δ; 1.0 when nothing is certified.
    n_answered_ : int
        Calibration samples answered at ``threshold_``.
    n_samples_ : int
        Calibration samples seen in ``fit``.
    min_answered_ : int
        Fewest answered samples that pass at the first start's level with zero errors,
        ⌈log(w) / log(1 − target_risk)⌉ with w = ``start_levels_[0]``: below this many
        labelled samples nothing can be certified.
    start_answered_ : int
        Answered count of the first start (equal to ``min_answered_``).
    start_points_ : ndarray of shape (n_starts,)
        Answered counts of the pre-registered starts (zero and three errors allowed; one
        start when the second would answer more than half of the samples).
    start_levels_ : ndarray of shape (n_starts,)
        The share of δ each start adds to the running level.
    candidates_ : ndarray of shape (n_tests,)
        Every tested threshold, in testing order (strictest first). Candidates skipped
        after a failure, before the next restart point, are not listed.
    n_answered_path_ : ndarray of shape (n_tests,)
        Calibration samples answered at each tested candidate.
    errors_path_ : ndarray of shape (n_tests,)
        Wrong answers among them.
    p_values_ : ndarray of shape (n_tests,)
        The p-value of each test (computed when first read).
    levels_ : ndarray of shape (n_tests,)
        The level each candidate was tested at; it passed when ``p_values_ <= levels_``.

    Notes
    -----
    **The monotone-risk assumption.** Every claim here that the guarantee is *exact*
    (finite-sample, no asymptotics, no slack for the data-dependent candidate grid) rests on
    this one assumption: the selective risk R(t) = P(wrong | confidence ≥ t) on new inputs
    does not increase with the threshold t, i.e. raising the threshold never raises the
    error rate among answered inputs. It holds whenever P(wrong | confidence = c) does not
    increase with c, in particular when the confidence is calibrated
    (P(wrong | confidence = c) = 1 − c). A badly miscalibrated model, whose most confident
    inputs are wrong more often than less confident ones, can break it; calibrate first
    (:mod:`failwise.calibration`). The algorithm does not check it.

    **Guarantee.** For i.i.d. calibration and test data, and under the monotone-risk
    assumption, P(R(``threshold_``) ≤ ``target_risk``) ≥ ``confidence_level`` over the
    draw of the calibration set (R(∞) = 0: an uncertified fit answers nothing).

    **Why several starts keep the guarantee exact.** Under the monotone-risk assumption, the
    hypotheses H_t: "R(t) > ``target_risk``" are nested: the false ones are the strict
    thresholds, the true ones every threshold from some t* down. Each start begins a chain
    that tests candidates from strict to loose, so a chain can wrongly pass a true H_t
    only by wrongly passing the *first* true hypothesis it meets (t*, or its own start if
    that is already past t*), and it tests that one at a level no larger than the shares
    of δ that reached it. The procedure is a graphical Bonferroni procedure (each candidate
    hands its level to the next; Bretz, Maurer, Brannath & Posch, 2009): the shares are
    fixed before any label is seen and add up to δ, so P(some true hypothesis passes) ≤ δ,
    for any dependence between the tests. Placing a start deep is not a look at the data:
    its answered count depends on ``target_risk``, ``confidence_level`` and ``bound``
    only. Learn then Test (Angelopoulos et al., 2021) allows any such pre-registered
    graph; selective-guaranteed-risk search (Geifman & El-Yaniv, 2017) instead splits δ
    over the ⌈log₂ n⌉ steps of a binary search, which costs more than two starts.

    **Candidate grid.** The candidates are the observed confidences (every distinct value,
    or those at evenly spaced ranks), chosen without looking at ``correct``; the starts
    and the restart points are fixed by answered counts, ``target_risk`` and
    ``confidence_level`` alone. Because the grid comes from the (unlabelled) calibration
    confidences rather than being fixed in advance, the argument for validity uses the
    monotone-risk assumption (above). Then the answered set of the strictest candidate
    whose risk exceeds the target, and of every start or restart point below it, holds only
    inputs whose error probabilities are at least ``target_risk`` on average, so each of
    those tests wrongly passes with probability at most its level, and those levels add
    up to at most δ.

    **Monotone behaviour.** With distinct confidences and the default grid, a higher
    ``target_risk`` or a lower ``confidence_level`` almost never lowers ``coverage_``: the
    restart points do not depend on either, each start only moves up (towards stricter
    thresholds) as they relax, and whatever error count passes at the stricter setting's
    start also passes from the relaxed setting's start on. Ties in the confidences, or a
    coarse grid (``n_candidates``), can break this near the top.

    References
    ----------
    Angelopoulos, A. N., Bates, S., Candès, E. J., Jordan, M. I. & Lei, L. (2021). Learn then
    Test: Calibrating predictive algorithms to achieve risk control. arXiv:2110.01052.
    Wiens, B. L. (2003). A fixed sequence Bonferroni procedure for testing multiple
    endpoints. *Pharmaceutical Statistics* 2(3), 211–215.
    Bretz, F., Maurer, W., Brannath, W. & Posch, M. (2009). A graphical approach to
    sequentially rejective multiple test procedures. *Statistics in Medicine* 28(4),
    586–604.
    Geifman, Y. & El-Yaniv, R. (2017). Selective classification for deep neural networks.
    *NeurIPS 30*.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import RiskThreshold
    >>> rng = np.random.default_rng(0)
    >>> confidence = rng.uniform(0.5, 1.0, size=5000)
    >>> correct = rng.uniform(size=5000) < confidence
    >>> rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(confidence, correct)
    >>> bool(rt.certified_), round(rt.threshold_, 2), round(rt.coverage_, 2)
    (True, 0.94, 0.12)
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
        self._validate_params()
        scores = check_scores(confidence, "confidence", ndim=1)
        right = check_binary_labels(correct, "correct")
        n_samples = check_consistent_length(confidence=scores, correct=right)
        alpha = float(self.target_risk)
        delta = 1.0 - float(self.confidence_level)

        # Sort once, strictest first (ties in any order: they are answered together).
        # Candidate t answers the n_t samples with confidence ≥ t, e_t of them wrongly.
        order = np.argsort(scores)[::-1]
        ordered = scores[order]
        cum_errors = np.cumsum(right[order] == 0)
        # A candidate's answered count is its last position among ties, plus one.
        ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
        if self.n_candidates is not None and self.n_candidates < ends.size:
            # Answered counts ⌈k·n / n_candidates⌉, k = 1..n_candidates, in exact integers.
            m = int(self.n_candidates)
            counts = (np.arange(1, m + 1, dtype=np.int64) * n_samples + m - 1) // m
            ends = np.unique(ends[np.searchsorted(ends, counts - 1)])
        thresholds = ordered[ends]
        n_answered = ends + 1
        errors = cum_errors[ends]

        self.n_samples_ = n_samples
        first, second = _STARTS
        deep = _answered_for_errors(alpha, 1.0 - second[1] * delta, second[0], self.bound)
        # A second start deeper than half the samples would rarely be reached by a region
        # worth certifying: its share goes to the first start instead (this depends on the
        # number of samples only, not on labels).
        two = 2 * deep <= n_samples
        plan = [first, second] if two else [(first[0], first[1] + second[1])]
        self.start_levels_ = np.array([share * delta for _, share in plan])
        self.start_points_ = np.array(
            [
                _answered_for_errors(alpha, 1.0 - level, errors, self.bound)
                for (errors, _), level in zip(plan, self.start_levels_, strict=True)
            ],
            dtype=np.intp,
        )
        self.min_answered_ = int(self.start_points_[0])
        self.start_answered_ = int(self.start_points_[0])
        tested, levels, passed = self._test(n_answered, errors, alpha, delta)
        self.candidates_ = thresholds[tested].astype(np.float64)
        self.n_answered_path_ = n_answered[tested].astype(np.intp)
        self.errors_path_ = errors[tested].astype(np.intp)
        self.levels_ = levels
        self._p_values: NDArray[np.float64] | None = None

        passed_at = np.flatnonzero(passed)
        self.certified_ = bool(passed_at.size)
        if self.certified_:
            chosen = int(tested[passed_at[-1]])
            self.threshold_ = float(thresholds[chosen])
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

    @property
    def p_values_(self) -> NDArray[np.float64]:
        """The p-value of each test on the path (``candidates_``), computed on first use.

        A candidate passed when ``p_values_ <= levels_``.
        """
        check_fitted(self, "levels_", "p_values_")
        if self._p_values is None:
            self._p_values = _p_value(
                self.errors_path_.astype(np.float64),
                self.n_answered_path_.astype(np.float64),
                float(self.target_risk),
                self.bound,
            )
        return self._p_values

    def _shares(self, n_answered: NDArray[np.intp], delta: float) -> NDArray[np.float64]:
        """Share of δ placed on each candidate: the starts and the restart points."""
        n_samples = int(n_answered[-1])
        shares = np.zeros(n_answered.size + 1)  # the extra slot collects points past the end
        for point, level in zip(self.start_points_, self.start_levels_, strict=True):
            shares[np.searchsorted(n_answered, point)] += level
        # Restart points at answered counts 2^k with weights ∝ 2^(k/2), fixed in advance;
        # those closer to the top than twice the last start are not used.
        counts = 2 ** np.arange(int(np.log2(n_samples)) + 1)
        weights = _RESTART_SHARE * delta * np.sqrt(counts) / np.sqrt(counts).sum()
        used = counts >= 2 * int(self.start_points_[-1])
        np.add.at(shares, np.searchsorted(n_answered, counts[used]), weights[used])
        return shares[:-1]

    def _test(
        self, n_answered: NDArray[np.intp], errors: NDArray[Any], alpha: float, delta: float
    ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
        """Run the fallback procedure; return the tested indices, their levels, passes.

        While no test fails, the level at candidate i is the sum of the shares up to i since
        the last (re)start, so a block of candidates is tested at once with those levels.
        A failure drops the level to 0 and testing resumes at the next restart point.
        """
        shares = self._shares(n_answered, delta)
        points = np.flatnonzero(shares)
        accumulated = np.cumsum(shares)
        tested: list[NDArray[np.intp]] = []
        level_parts: list[NDArray[np.float64]] = []
        passed_parts: list[NDArray[np.bool_]] = []
        start = int(points[0]) if points.size else int(n_answered.size)
        offset = accumulated[start - 1] if start > 0 else 0.0  # shares before the restart
        block = _FIRST_BLOCK
        while start < n_answered.size:
            stop = min(start + block, int(n_answered.size))
            levels = accumulated[start:stop] - offset
            failed = _first_failure(
                errors[start:stop], n_answered[start:stop], alpha, levels, self.bound
            )
            count = stop - start if failed is None else failed + 1
            tested.append(np.arange(start, start + count, dtype=np.intp))
            level_parts.append(levels[:count])
            ok = np.ones(count, dtype=bool)
            passed_parts.append(ok)
            if failed is None:
                start = stop
                block *= 2
                continue
            ok[-1] = False
            # Restart at the first later restart point that passes on its own share; those
            # before it fail at once (they are tests too, so they join the path).
            later = points[np.searchsorted(points, start + failed, side="right") :]
            if not later.size:
                break
            own = shares[later]
            p_own = _p_value(
                errors[later].astype(np.float64),
                n_answered[later].astype(np.float64),
                alpha,
                self.bound,
            )
            live = np.flatnonzero(p_own <= own)
            dead = later[: live[0]] if live.size else later
            tested.append(dead.astype(np.intp))
            level_parts.append(own[: dead.size])
            passed_parts.append(np.zeros(dead.size, dtype=bool))
            if not live.size:
                break
            start = int(later[live[0]])
            offset = accumulated[start - 1]
            block = _FIRST_BLOCK
        if not tested:
            return np.empty(0, dtype=np.intp), np.empty(0), np.empty(0, dtype=bool)
        return np.concatenate(tested), np.concatenate(level_parts), np.concatenate(passed_parts)

    def _uncertified_message(self) -> str:
        alpha = float(self.target_risk)
        level = float(self.confidence_level)
        bound = self.bound
        # Counted at the level of the first start, like `min_answered_`.
        half = _required_answered(alpha, 1.0 - float(self.start_levels_[0]), alpha / 2, bound)
        if self.candidates_.size == 0:
            why = (
                f"only {self.n_samples_} labelled samples were given, fewer than the "
                f"{self.min_answered_} answered samples any certificate needs"
            )
        else:
            why = (
                f"testing started at threshold {self.candidates_[0]:.6g} (answering "
                f"{int(self.n_answered_path_[0])} of {self.n_samples_} samples), which had "
                f"{int(self.errors_path_[0])} error(s), p-value {self.p_values_[0]:.3g} > its "
                f"level {self.levels_[0]:.3g}, and no later start or restart point passed"
            )
        return (
            f"RiskThreshold could not certify any threshold: no confidence threshold keeps "
            f"the selective risk at or below target_risk={alpha:g} with "
            f"confidence_level={level:g} on this data, so threshold_ is inf and nothing will "
            f"be answered automatically. Reason: {why}. A certificate needs at least "
            f"{self.min_answered_} labelled samples above the threshold with no error, or "
            f"about {half} at an error rate of {alpha / 2:g} (half the target). Collect more "
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
