"""Certified answer threshold: Learn-then-Test with fixed-sequence testing and restarts.

`RiskThreshold` finds the lowest confidence threshold whose selective risk (error rate
among the inputs answered automatically) is certified to be at most ``target_risk`` with
probability at least ``confidence_level``. The guarantee is finite-sample and exact under
one assumption, stated once in the Notes of :class:`RiskThreshold` (the *monotone-risk
assumption*: selective risk does not increase with the threshold, which holds when the
confidence is calibrated).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
    _first_failure,
    _p_value,
    _required_answered,
    _upper_bound,
)
from failwise.policy._risk_plan import Plan, _plan

__all__ = ["RiskThreshold"]

# Candidates are tested block by block along the testing order; blocks double in size, so
# a sequence that fails early costs little and a long one takes few passes.
_FIRST_BLOCK: Final = 16384


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

    The levels come from a closed test over a few pre-registered points (Marcus, Peritz &
    Gabriel, 1976), fixed before any label is seen by the number of samples n,
    ``target_risk``, δ = 1 − ``confidence_level`` and ``bound`` only. For
    ``bound="binomial"`` (the *joint-levels* plan):

    * **starts** allowing 0, 1, …, 5 errors, all at one common level λ: the start allowing
      *e* errors is the fewest answered samples with which *e* errors pass at λ. Starts
      beyond 60 % of the n samples are dropped (the zero-error start always stays). A
      single start near the top ends the search at the first unlucky error among the most
      confident answers; deeper starts let a few such errors pass;
    * **restart points** on 10 % of δ, the candidates answering 2^k samples from twice the
      deepest start up to n (levels ∝ 2^(k/2)), for a bad patch at the top above a clean
      majority; each allows the most errors that pass at its level;
    * λ is the largest level at which the starts and restart points, together, pass with
      probability at most δ when every answer is wrong with probability ``target_risk``
      independently (the *flat null*). That probability is computed, without
      approximation, by following the error count from point to point, so the overlap of
      the points' tests is counted once, not once per point as a sum of levels would.

    A point passes when its candidate has at most the errors it allows. Every candidate
    stricter than the deepest point that passes is certified through it; from that point
    on, the candidate answering r samples is tested at δ minus the flat-null probability
    that some point answering more than r samples passes; the first candidate that fails
    ends the search and ``threshold_`` is the one before it. So an unlucky error near the
    top costs nothing once a deeper start passes, and below the deepest start the level is
    δ minus the restart points' part. At 2 % / 95 %: 575 samples give starts at (170
    answered, 0 errors) and (262, 1); 1,200 samples give (200, 0), (297, 1), (382, 2),
    (460, 3), (535, 4) and (608, 5), at λ ≈ 0.017.

    For ``bound="hoeffding_bentkus"``, whose tests have no joint distribution to follow,
    the shares of δ are added up instead (the *split* plan): 40 % on the zero-error start,
    50 % on a deep start allowing the most errors in (3, 2, 1) whose start lies within
    60 % of the samples (none: its share goes to the zero-error start), 10 % on the
    restart points as above (none in range: their share goes to the zero-error start).
    Each point is tested on its own share, and below the deepest point that passes each
    candidate is tested at the sum of the shares of every point at or above it.

    Every distinct confidence can be a candidate: there is no multiplicity correction along
    the chain. ``start_points_``/``start_levels_`` and ``restart_points_``/``restart_levels_``
    hold the plan.

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
        Answered counts of the pre-registered starts, shallowest first.
    start_levels_ : ndarray of shape (n_starts,)
        The level of each start: the common level λ for ``"binomial"`` (not a share of δ:
        the starts' joint flat-null probability, with the restart points', is at most δ),
        the share of δ on each start for ``"hoeffding_bentkus"``.
    start_errors_ : ndarray of shape (n_starts,)
        The errors each start allows (0 to 5 for ``"binomial"``; 0, then the deep start's
        1, 2 or 3 for ``"hoeffding_bentkus"``).
    restart_points_ : ndarray of shape (n_restarts,)
        Answered counts of the restart points (powers of two from twice the deepest start;
        for ``"binomial"`` only those at which some error count passes).
    restart_levels_ : ndarray of shape (n_restarts,)
        The share of δ on each restart point.
    candidates_ : ndarray of shape (n_tests,)
        Every tested threshold, strictest first: the starts and restart points tested on
        their own share, down to the deepest that passed (all of them when none passed),
        then the candidates below it, to the first that failed.
    n_answered_path_ : ndarray of shape (n_tests,)
        Calibration samples answered at each tested candidate.
    errors_path_ : ndarray of shape (n_tests,)
        Wrong answers among them.
    p_values_ : ndarray of shape (n_tests,)
        The p-value of each test (computed when first read).
    levels_ : ndarray of shape (n_tests,)
        The level each candidate was tested at; it passed when ``p_values_ <= levels_``.
        For a ``"binomial"`` start or restart point this is P(Binomial(n, target_risk) ≤
        allowed errors) at the candidate's answered count n: at most the point's level,
        equal to it up to the discreteness of the binomial.

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

    **Why several starts keep the guarantee exact (split plan).** Under the monotone-risk
    assumption the
    hypotheses H_t: "R(t) > ``target_risk``" are nested: if H_t holds, so does H_s for every
    looser threshold s < t. The true ones are every threshold from some t* down, and a
    certificate is wrong exactly when it certifies t* or a looser threshold. The procedure
    is the closed test (Marcus, Peritz & Gabriel, 1976) whose local test φ_t of the
    intersection of {H_s : s ≥ t}, which under nesting is H_t itself, is a Bonferroni test
    of the p-values at points *looser than or equal to* t: a point p at or above t is
    replaced by t itself, which takes its share, and a point below t keeps its own. Under
    H_t every p-value φ_t reads belongs to a true hypothesis, and the shares add up to δ,
    so P(φ_t rejects) ≤ δ. A threshold is certified only when φ_u rejects for every
    candidate u at or above it; in particular a wrong certificate needs φ_{t*} to reject,
    which happens with probability at most δ, for any dependence between the tests. The
    rule in the description is this closed test written out: φ_u rejects when u lies above
    a point that passes on its own share, or when u's p-value is at most the shares of
    all points at or above u. Placing a start deep is not a look at the data: the points
    depend on n, ``target_risk``, δ and ``bound`` only. This is more powerful than the
    fallback procedure (Wiens, 2003) that passes the level along one chain and loses a
    failed chain's share: here a share is never lost. Selective-guaranteed-risk search
    (Geifman & El-Yaniv, 2017) instead splits δ over the ⌈log₂ n⌉ steps of a binary search,
    which costs more than two starts.

    **Why the joint levels keep the guarantee exact (``"binomial"``).** Under the
    monotone-risk assumption, in its form P(wrong | confidence = c) does not increase with
    c, the hypotheses are nested as above; the procedure is again a closed test, whose
    local test φ_t rejects when some point answering more samples than t passes, or when
    t's p-value is at most δ − J_t, J_t being the flat-null probability that some point
    answering more than n_t samples passes. Let t* be the strictest threshold with
    R(t*) > ``target_risk`` and m the samples at or above it. Given m, their error count is
    Binomial(m, R(t*)), and every sample below them is wrong with probability at least
    R(t*) (its error probability is at least that of every sample above t*, hence at least
    their average), independently: so the error count, followed from rank m on, is
    stochastically larger than under the flat null. φ_{t*} is a "few errors" event of that
    count at ranks m and beyond (a point passes when the count at its rank is at most the
    errors it allows), so its probability is at most its flat-null probability, at most
    (δ − J_{t*}) + J_{t*} = δ since the binomial p-value is valid. A wrong certificate
    needs φ_{t*} to reject, so it has probability at most δ. λ and the points are a function of n,
    ``target_risk`` and δ only; finding λ is a computation, not a look at the labels.

    **Why the points do not adapt to the calibration confidences.** The argument above
    conditions on m alone: given m, the rows above t* are i.i.d. draws from the inputs above
    t*, so their error count is Binomial(m, R(t*)) *averaged over where their confidences
    fall*. Given the confidences themselves, those rows are wrong independently with
    probabilities q(c_i) = P(wrong | confidence = c_i), whose mean can be below
    ``target_risk`` while R(t*) exceeds it (when, by chance, few calibration rows fall in a
    band of confident but error-prone inputs above t*). A plan read off those confidences
    (starts placed where the expected error count Σ(1 − c_i) makes a pass likely, say) is no
    longer independent of the errors it tests given m, so its flat-null size does not bound
    the chance of a wrong certificate (conditioning on the features instead, a plan built on
    them tests a statement about those rows' own error probabilities, not about R(t)).
    Cross-fitting a calibrator does not lift this: a plan for one fold built on a calibrator
    fitted to the other fold's labels depends on labels the same certificate tests, unless
    each fold is certified on its own, with half the samples. A plan may depend on n,
    ``target_risk``, δ and on anything independent of the calibration rows;
    ``RiskThreshold`` uses the first three only.

    **Candidate grid.** The candidates are the observed confidences (every distinct value,
    or those at evenly spaced ranks), chosen without looking at ``correct``; the starts
    and the restart points are fixed by answered counts, n, ``target_risk`` and
    ``confidence_level`` alone. Because the grid comes from the (unlabelled) calibration
    confidences rather than being fixed in advance, the argument for validity uses the
    monotone-risk assumption (above). Then the answered set of the strictest candidate
    whose risk exceeds the target, and of every start or restart point below it, holds only
    inputs whose error probabilities are at least ``target_risk`` on average, so each of
    those tests wrongly passes with probability at most its level, and those levels add
    up to at most δ (split plan) or pass together with probability at most δ (joint plan).

    **Monotone behaviour.** With distinct confidences and the default grid, a higher
    ``target_risk`` or a lower ``confidence_level`` almost never lowers ``coverage_``: each
    start only moves up (towards stricter thresholds) as they relax, and whatever error
    count passes at the stricter setting's start also passes from the relaxed setting's
    start on. Ties in the confidences, a coarse grid (``n_candidates``), or a relaxed
    setting whose plan has different starts or restart points (more errors allowed
    further down, a start dropped or kept at the 60 % reach) can break this.

    References
    ----------
    Angelopoulos, A. N., Bates, S., Candès, E. J., Jordan, M. I. & Lei, L. (2021). Learn then
    Test: Calibrating predictive algorithms to achieve risk control. arXiv:2110.01052.
    Marcus, R., Peritz, E. & Gabriel, K. R. (1976). On closed testing procedures with
    special reference to ordered analysis of variance. *Biometrika* 63(3), 655–660.
    Wiens, B. L. (2003). A fixed sequence Bonferroni procedure for testing multiple
    endpoints. *Pharmaceutical Statistics* 2(3), 211–215.
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
        plan = _plan(n_samples, alpha, delta, self.bound)
        self.start_points_ = plan.points.copy()
        self.start_levels_ = plan.levels.copy()
        self.start_errors_ = plan.errors.copy()
        self.restart_points_ = plan.restarts.copy()
        self.restart_levels_ = plan.restart_levels.copy()
        self.min_answered_ = int(self.start_points_[0])
        self.start_answered_ = int(self.start_points_[0])
        tested, levels, passed = self._test(n_answered, errors, alpha, delta, plan)
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

    def _points(
        self,
        n_answered: NDArray[np.intp],
        errors: NDArray[Any],
        alpha: float,
        delta: float,
        plan: Plan,
    ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
        """The points' candidates, own levels and passes, and every candidate's chain level.

        A point maps to the first candidate answering at least its count (points past the
        last candidate are not tested; points on one candidate are tested together).
        """
        ranks = np.concatenate([plan.points, plan.restarts])
        at = np.searchsorted(n_answered, ranks)
        if not plan.joint:
            # Split plan: a point passes on its own share, p ≤ share; the chain level is the
            # sum of the shares of every point at or above the candidate.
            shares = np.zeros(n_answered.size + 1)  # the extra slot collects points past the end
            np.add.at(shares, at, np.concatenate([plan.levels, plan.restart_levels]))
            points = np.flatnonzero(shares[:-1])
            own = shares[points]
            p_own = _p_value(
                errors[points].astype(np.float64),
                n_answered[points].astype(np.float64),
                alpha,
                self.bound,
            )
            return points, own, p_own <= own, np.cumsum(shares[:-1])
        # Joint plan: a point passes when its candidate has at most the errors it allows,
        # i.e. a p-value at most P(Binomial(n, α) ≤ allowed) there; the chain level is δ
        # minus the flat-null probability that some point deeper than the candidate passes.
        allowed = np.full(n_answered.size + 1, -1)
        np.maximum.at(allowed, at, np.concatenate([plan.errors, plan.restart_errors]))
        points = np.flatnonzero(allowed[:-1] >= 0)
        most = allowed[points]
        own = _p_value(
            most.astype(np.float64), n_answered[points].astype(np.float64), alpha, self.bound
        )
        chain = delta - plan.deeper[np.searchsorted(ranks, n_answered, side="right")]
        return points, own, errors[points] <= most, chain

    def _test(
        self,
        n_answered: NDArray[np.intp],
        errors: NDArray[Any],
        alpha: float,
        delta: float,
        plan: Plan,
    ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
        """Run the closed test; return the tested indices, their levels and passes.

        First every start and restart point is tested on its own; the deepest one that
        passes, E, is where the chain begins (every candidate stricter than E is certified
        through it). From E on, each candidate is tested at its chain level; the first
        failure ends the chain. The levels only grow along the chain, so a block of
        candidates is tested at once.
        """
        points, own, own_passed, accumulated = self._points(n_answered, errors, alpha, delta, plan)
        if not points.size:
            return np.empty(0, dtype=np.intp), np.empty(0), np.empty(0, dtype=bool)
        live = np.flatnonzero(own_passed)
        if not live.size:
            return points.astype(np.intp), own, np.zeros(points.size, dtype=bool)
        deepest = int(live[-1])
        # The points' own tests down to the deepest that passed (strictest first) ...
        tested = [points[: deepest + 1].astype(np.intp)]
        level_parts = [own[: deepest + 1]]
        passed_parts = [own_passed[: deepest + 1]]
        # ... then the chain below it, each candidate at its chain level.
        start = int(points[deepest]) + 1
        block = _FIRST_BLOCK
        while start < n_answered.size:
            stop = min(start + block, int(n_answered.size))
            levels = accumulated[start:stop]
            failed = _first_failure(
                errors[start:stop], n_answered[start:stop], alpha, levels, self.bound
            )
            count = stop - start if failed is None else failed + 1
            tested.append(np.arange(start, start + count, dtype=np.intp))
            level_parts.append(levels[:count])
            ok = np.ones(count, dtype=bool)
            passed_parts.append(ok)
            if failed is not None:
                ok[-1] = False
                break
            start = stop
            block *= 2
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
