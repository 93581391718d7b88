"""RiskThreshold (Learn-then-Test) and the p-values and bounds behind it."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from failwise.exceptions import InputError, NotFittedError, UncertifiedWarning
from failwise.policy import RiskThreshold
from failwise.policy._bounds import (
    binomial_p_value,
    hoeffding_bentkus_p_value,
    required_answered_samples,
    risk_p_value,
    risk_upper_bound,
)

# ---------------------------------------------------------------------------------------
# Helpers


def _fit_quietly(model: RiskThreshold, confidence: ArrayLike, correct: ArrayLike) -> RiskThreshold:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        return model.fit(confidence, correct)


def _calibrated_sample(
    rng: np.random.Generator, n: int, low: float = 0.5
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Calibrated confidences: P(correct | confidence = c) = c."""
    confidence = rng.uniform(low, 1.0, size=n)
    return confidence, rng.uniform(size=n) < confidence


def _flat_null_hit(points: list[tuple[int, int]], alpha: float) -> float:
    """P(some point passes) when every row is wrong with probability alpha: row by row.

    ``points`` holds (answered count k, errors allowed b); point (k, b) passes when the top
    k rows hold at most b errors. The error count's distribution is carried one row at a
    time; after row k the mass of the counts that pass there is moved to "passed".
    """
    by_rank: dict[int, int] = {}
    for k, b in points:
        by_rank[k] = max(by_rank.get(k, -1), b)
    most = max(by_rank.values(), default=-1)
    mass = np.zeros(most + 2)  # counts 0..most, then "too many to pass anywhere"
    mass[0] = 1.0
    hit = 0.0
    for row in range(1, max(by_rank, default=0) + 1):
        wrong = mass * alpha
        mass = mass * (1 - alpha)
        mass[1:] += wrong[:-1]
        mass[-1] += wrong[-1]
        if row in by_rank:
            b = by_rank[row]
            hit += float(mass[: b + 1].sum())
            mass[: b + 1] = 0.0
    return hit


def _reference_plan(
    n_total: int, target_risk: float, delta: float, bound: str
) -> tuple[list[tuple[int, int, float]], list[float]]:
    """The documented plan, written plainly: [(answered count, errors allowed, level)] and
    the flat-null size of the points from each one on (binomial; empty otherwise).

    F_m(w) is the fewest answered samples with which m errors pass at level w.

    Binomial (joint levels): starts (F_m(λ), m) for m = 0..5 and restart points at 2^k ≥
    twice the deepest start, each on a share ∝ √(2^k) of 10 % of δ, allowing the most
    errors that pass there; λ the largest level whose points' flat-null size is ≤ δ; starts
    beyond 60 % of n dropped (never the first) and λ found again.

    Hoeffding–Bentkus (split): 40 % of δ at F₀(0.4δ); 50 % at F_e(0.5δ) for the largest e
    in (3, 2, 1) with F_e(0.5δ) ≤ 0.6 n (none: the 50 % goes to the first start); restart
    points at 2^k ≥ twice the last start over 10 % (none: the 10 % goes to the first start).
    """

    def fewest(m: int, level: float) -> int:
        n = m + 1
        while _reference_p_value(m, n, target_risk, bound) > level:
            n += 1
        return n

    def restarts(last: int) -> tuple[list[int], list[float]]:
        counts = [2**k for k in range(int(math.log2(n_total)) + 1) if 2**k >= 2 * last]
        total = sum(math.sqrt(c) for c in counts)
        return counts, [0.1 * delta * math.sqrt(c) / total for c in counts]

    if bound == "binomial":
        allowed = list(range(6))
        while True:

            def points(lam: float, allowed: list[int] = allowed) -> list[tuple[int, int, float]]:
                starts = [(fewest(m, lam), m, lam) for m in allowed]
                counts, shares = restarts(max(k for k, _, _ in starts))
                for count, share in zip(counts, shares, strict=True):
                    b = -1
                    while stats.binom.cdf(b + 1, count, target_risk) <= share:
                        b += 1
                    if b >= 0:
                        starts.append((count, b, share))
                return starts

            def size(lam: float) -> float:
                return _flat_null_hit([(k, b) for k, b, _ in points(lam)], target_risk)

            low, high = 1e-9, delta
            if size(high) <= delta:
                low = high
            while high - low > 1e-12:
                middle = (low + high) / 2
                low, high = (middle, high) if size(middle) <= delta else (low, middle)
            plan = points(low)
            kept = [m for k, m, lam in plan if lam == low and (m == 0 or k <= 0.6 * n_total)]
            if kept == allowed:
                pairs = [(k, b) for k, b, _ in plan]
                return plan, [_flat_null_hit(pairs[j:], target_risk) for j in range(len(plan))]
            allowed = kept
    deep = [m for m in (3, 2, 1) if fewest(m, 0.5 * delta) <= 0.6 * n_total]
    shares = [(0, 0.4), (deep[0], 0.5)] if deep else [(0, 0.9)]
    counts, weights = restarts(fewest(shares[-1][0], shares[-1][1] * delta))
    if not counts:
        shares[0] = (0, shares[0][1] + 0.1)
    split = [(fewest(m, share * delta), m, share * delta) for m, share in shares]
    return split + [(c, -1, w) for c, w in zip(counts, weights, strict=True)], []


def _reference_p_value(e: int, n: int, target_risk: float, bound: str) -> float:
    binom = float(stats.binom.cdf(e, n, target_risk))
    if bound == "binomial":
        return binom
    rate = min(e / n, target_risk)
    kl = (rate * math.log(rate / target_risk) if rate > 0 else 0.0) + (1 - rate) * math.log(
        (1 - rate) / (1 - target_risk)
    )
    return min(math.exp(-n * kl), math.e * binom, 1.0)


def _reference_path(
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    target_risk: float,
    confidence_level: float,
    bound: str,
) -> tuple[list[float], list[float], list[bool]]:
    """The documented procedure, written plainly: one candidate at a time.

    Candidates: distinct confidences, strictest first; each point of `_reference_plan` sits
    at the first candidate answering at least its count. Binomial: a point passes when its
    candidate has at most the errors it allows (recorded level: the binomial p-value of
    that many errors there); below the deepest point that passes, the candidate answering
    r samples is tested at δ minus the flat-null size of the points beyond r. Split: each
    point is tested on its own share; below the deepest that passes, each candidate at the
    sum of the shares at or above it. The chain runs to the first failure.
    """
    delta = 1.0 - confidence_level
    values = np.unique(confidence)[::-1]
    answered = [int((confidence >= v).sum()) for v in values]
    errors = [int(((confidence >= v) & ~correct).sum()) for v in values]
    plan, deeper = _reference_plan(confidence.size, target_risk, delta, bound)

    def p_value(i: int) -> float:
        return _reference_p_value(errors[i], answered[i], target_risk, bound)

    own: dict[int, float] = {}
    allowed: dict[int, int] = {}
    for count, b, level in plan:
        index = next((i for i, n in enumerate(answered) if n >= count), None)
        if index is not None:
            own[index] = own.get(index, 0.0) + level
            allowed[index] = max(allowed.get(index, -1), b)
    where = sorted(i for i in own if bound != "binomial" or allowed[i] >= 0)
    if bound == "binomial":
        levels_at = [float(stats.binom.cdf(allowed[i], answered[i], target_risk)) for i in where]
        passed = [errors[i] <= allowed[i] for i in where]
    else:
        levels_at = [own[i] for i in where]
        passed = [p_value(i) <= own[i] for i in where]
    if not any(passed):
        return [float(values[i]) for i in where], levels_at, passed
    deepest = max(k for k, ok in enumerate(passed) if ok)
    tested = [float(values[i]) for i in where[: deepest + 1]]
    levels, passes = levels_at[: deepest + 1], passed[: deepest + 1]
    for i in range(where[deepest] + 1, len(values)):
        if bound == "binomial":
            beyond = [j for j, (count, _, _) in enumerate(plan) if count > answered[i]]
            level = delta - (deeper[beyond[0]] if beyond else 0.0)
        else:
            level = sum(own.get(j, 0.0) for j in range(i + 1))
        ok = p_value(i) <= level
        tested.append(float(values[i]))
        levels.append(level)
        passes.append(ok)
        if not ok:
            break
    return tested, levels, passes


# ---------------------------------------------------------------------------------------
# p-values and bounds


@pytest.mark.parametrize(("errors", "n", "alpha"), [(0, 10, 0.1), (3, 100, 0.05), (7, 50, 0.2)])
def test_binomial_p_value_equals_scipy_one_sided_binomial_test(
    errors: int, n: int, alpha: float
) -> None:
    expected = stats.binomtest(errors, n, alpha, alternative="less").pvalue
    assert float(binomial_p_value(errors, n, alpha)) == pytest.approx(expected, rel=1e-10)


def test_binomial_p_value_of_a_clean_sample_is_the_chance_of_no_error() -> None:
    # 149 answers without an error: P(no error | risk 2 %) = 0.98^149 ≈ 0.0493.
    assert float(binomial_p_value(0, 149, 0.02)) == pytest.approx(0.98**149, rel=1e-12)


def test_p_values_are_one_when_nothing_is_answered() -> None:
    assert risk_p_value([0, 0], [0, 0], 0.1).tolist() == [1.0, 1.0]
    assert float(hoeffding_bentkus_p_value(0, 0, 0.1)) == 1.0


def test_hoeffding_bentkus_p_value_is_the_smaller_of_its_two_bounds() -> None:
    errors, n, alpha = 4, 200, 0.05
    rate = errors / n
    kl = rate * math.log(rate / alpha) + (1 - rate) * math.log((1 - rate) / (1 - alpha))
    hoeffding = math.exp(-n * kl)
    bentkus = math.e * stats.binom.cdf(errors, n, alpha)
    expected = min(hoeffding, bentkus)
    assert float(hoeffding_bentkus_p_value(errors, n, alpha)) == pytest.approx(expected)


def test_hoeffding_bentkus_p_value_is_never_below_the_exact_binomial() -> None:
    errors = np.arange(0, 30)
    n = np.full(errors.shape, 300)
    binomial = binomial_p_value(errors, n, 0.05)
    hb = hoeffding_bentkus_p_value(errors, n, 0.05)
    assert np.all(hb >= binomial)


def test_clopper_pearson_bound_matches_scipy_exact_interval() -> None:
    # The one-sided 95 % bound is the upper end of the two-sided 90 % exact interval.
    expected = stats.binomtest(3, 1000).proportion_ci(confidence_level=0.90, method="exact").high
    assert float(risk_upper_bound(3, 1000, 0.95)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("bound", ["binomial", "hoeffding_bentkus"])
def test_upper_bound_is_where_the_p_value_crosses_one_minus_confidence(bound: str) -> None:
    ucb = float(risk_upper_bound(6, 400, 0.9, bound=bound))  # type: ignore[arg-type]
    assert float(risk_p_value(6, 400, ucb * (1 + 1e-6), bound)) <= 0.1  # type: ignore[arg-type]
    assert float(risk_p_value(6, 400, ucb * (1 - 1e-4), bound)) > 0.1  # type: ignore[arg-type]


def test_upper_bound_is_trivial_without_evidence() -> None:
    assert risk_upper_bound([0, 5], [0, 5], 0.95).tolist() == [1.0, 1.0]


def test_required_answered_samples_with_no_error_solves_the_clean_sample_equation() -> None:
    n = required_answered_samples(0.02, 0.95)
    assert n == math.ceil(math.log(0.05) / math.log(0.98)) == 149
    assert 0.98**n <= 0.05 < 0.98 ** (n - 1)


def test_required_answered_samples_grows_with_the_error_rate() -> None:
    sizes = [required_answered_samples(0.05, 0.9, error_rate=r) for r in (0.0, 0.01, 0.03, 0.04)]
    assert sizes == sorted(sizes)
    assert sizes[0] < sizes[-1]


def test_required_answered_samples_rejects_an_error_rate_at_the_target() -> None:
    with pytest.raises(InputError, match=r"`error_rate` must lie in \[0, target_risk\)"):
        required_answered_samples(0.05, 0.9, error_rate=0.05)


def test_bound_functions_name_bad_arguments() -> None:
    with pytest.raises(InputError, match="`errors` must lie between 0 and `n_answered`"):
        binomial_p_value(5, 3, 0.1)
    with pytest.raises(InputError, match=r"`target_risk` must be a number in \(0, 1\)"):
        binomial_p_value(1, 3, 1.5)
    with pytest.raises(InputError, match="`bound` must be one of"):
        risk_p_value(1, 3, 0.1, "chernoff")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="whole counts"):
        risk_upper_bound(0.5, 3)


# ---------------------------------------------------------------------------------------
# RiskThreshold: known cases


def test_all_correct_sample_certifies_answering_everything() -> None:
    confidence = np.linspace(0.5, 0.99, 100)
    rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(confidence, np.ones(100))
    assert rt.certified_
    assert rt.threshold_ == pytest.approx(0.5)
    assert rt.coverage_ == 1.0
    assert rt.risk_ == 0.0
    # Clopper–Pearson with no error: 1 − 0.1^(1/100).
    assert rt.risk_upper_bound_ == pytest.approx(1 - 0.1 ** (1 / 100))
    # No deep start lies within 60 of the 100 samples (one error passes at 5 % from 93
    # answers on) and no restart point within 2 · 47 … 100, so the first start gets all of
    # δ: 0.95^n ≤ 0.1 → n = 45.
    assert rt.start_points_.tolist() == [45]
    assert rt.start_levels_ == pytest.approx([0.1])
    assert rt.restart_points_.size == 0
    assert rt.min_answered_ == 45
    assert rt.n_answered_path_[0] == 45
    assert np.allclose(rt.p_values_, 0.95**rt.n_answered_path_)


def test_errors_below_a_clean_block_stop_the_threshold_where_the_p_value_exceeds_its_level() -> (
    None
):
    # 200 confident correct answers, then 100 wrong ones below them.
    confidence = np.linspace(1.0, 0.4, 300)
    correct = np.arange(300) < 200
    rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(confidence, correct)
    tested, _, passes = _reference_path(confidence, correct, 0.05, 0.9, "binomial")
    last = max(i for i, ok in enumerate(passes) if ok)
    assert rt.threshold_ == tested[last]
    # The threshold lets in a few of the wrong answers, no more than the test allows.
    assert 200 < rt.n_answered_ < 215
    assert rt.risk_upper_bound_ <= 0.05


def test_too_few_samples_leave_nothing_certified_and_say_how_many_are_needed() -> None:
    confidence = np.linspace(0.9, 0.99, 40)
    with pytest.warns(
        UncertifiedWarning, match=r"only 40 labelled samples.*at least 45 labelled samples above"
    ):
        rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(confidence, np.ones(40))
    assert not rt.certified_
    assert rt.threshold_ == np.inf
    assert rt.coverage_ == 0.0
    assert rt.n_answered_ == 0
    assert math.isnan(rt.risk_)
    assert rt.risk_upper_bound_ == 1.0
    assert rt.candidates_.size == 0
    assert not rt.predict([0.999, 1.0]).any()


def test_uncertified_warning_names_the_failing_threshold_and_the_fixes() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(size=500)
    correct = rng.uniform(size=500) < 0.7  # 30 % wrong everywhere
    with pytest.warns(UncertifiedWarning) as record:
        RiskThreshold(target_risk=0.02, confidence_level=0.95).fit(confidence, correct)
    message = str(record[0].message)
    assert "could not certify any threshold" in message
    assert "threshold_ is inf" in message
    assert "raise `target_risk`" in message
    assert "lower `confidence_level`" in message
    assert "at an error rate of 0.01 (half the target)" in message


def test_predict_answers_confidences_at_or_above_the_threshold() -> None:
    confidence = np.linspace(0.5, 0.99, 100)
    rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(confidence, np.ones(100))
    t = rt.threshold_
    assert rt.predict([t, np.nextafter(t, 0.0), 1.0]).tolist() == [True, False, True]


@pytest.mark.parametrize("bound", ["binomial", "hoeffding_bentkus"])
def test_fit_matches_a_direct_implementation_of_the_procedure(seed: int, bound: str) -> None:
    rng = np.random.default_rng(seed)
    for n in (60, 400, 3000):
        confidence, correct = _calibrated_sample(rng, n, low=0.3)
        confidence = np.round(confidence, 3)  # ties, like real scores
        rt = _fit_quietly(
            RiskThreshold(target_risk=0.08, confidence_level=0.9, bound=bound), confidence, correct
        )
        tested, levels, passes = _reference_path(confidence, correct, 0.08, 0.9, bound)
        assert rt.candidates_.tolist() == tested
        assert np.allclose(rt.levels_, levels)
        assert ((rt.p_values_ <= rt.levels_) == np.array(passes, dtype=bool)).all()
        expected = min((v for v, ok in zip(tested, passes, strict=True) if ok), default=None)
        assert rt.threshold_ == (np.inf if expected is None else expected)


def test_a_bad_patch_near_the_top_does_not_end_the_search(seed: int) -> None:
    # 25 wrong answers among the 1,000 most confident make the first sequence fail at its
    # start; further down the model is clean, and a restart point still certifies most of it.
    rng = np.random.default_rng(seed)
    confidence = np.sort(rng.uniform(0.6, 1.0, size=20_000))[::-1]
    correct = rng.uniform(size=20_000) < 0.998
    correct[:1000] = True
    correct[rng.choice(1000, size=25, replace=False)] = False
    rt = RiskThreshold(target_risk=0.02, confidence_level=0.9).fit(confidence, correct)
    assert rt.p_values_[0] > rt.levels_[0]  # the first start failed
    assert rt.certified_
    assert rt.coverage_ > 0.8


def test_hoeffding_bentkus_never_certifies_more_than_the_exact_binomial(seed: int) -> None:
    rng = np.random.default_rng(seed)
    confidence, correct = _calibrated_sample(rng, 5000)
    exact = RiskThreshold(target_risk=0.1, confidence_level=0.9).fit(confidence, correct)
    hb = RiskThreshold(target_risk=0.1, confidence_level=0.9, bound="hoeffding_bentkus")
    hb.fit(confidence, correct)
    assert hb.coverage_ <= exact.coverage_
    assert hb.risk_upper_bound_ >= hb.risk_


def test_n_candidates_thins_the_path_to_observed_confidences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    confidence, correct = _calibrated_sample(rng, 5000)
    full = RiskThreshold(target_risk=0.1, confidence_level=0.9).fit(confidence, correct)
    coarse = RiskThreshold(target_risk=0.1, confidence_level=0.9, n_candidates=50)
    coarse.fit(confidence, correct)
    assert coarse.candidates_.size <= 50
    assert np.isin(coarse.candidates_, confidence).all()
    assert coarse.threshold_ in coarse.candidates_
    assert coarse.coverage_ <= full.coverage_ + 0.05


def test_fitted_model_pickles_and_predicts_the_same(seed: int) -> None:
    rng = np.random.default_rng(seed)
    confidence, correct = _calibrated_sample(rng, 2000)
    rt = RiskThreshold(target_risk=0.1, confidence_level=0.9).fit(confidence, correct)
    clone = pickle.loads(pickle.dumps(rt))
    assert clone.threshold_ == rt.threshold_
    assert (clone.predict(confidence) == rt.predict(confidence)).all()
    assert np.array_equal(clone.p_values_, rt.p_values_)


def test_fit_accepts_float32_scores_and_boolean_labels() -> None:
    rng = np.random.default_rng(0)
    confidence, correct = _calibrated_sample(rng, 3000)
    as64 = RiskThreshold(target_risk=0.1, confidence_level=0.9).fit(
        confidence.astype(np.float32).astype(np.float64), correct.astype(int)
    )
    as32 = RiskThreshold(target_risk=0.1, confidence_level=0.9).fit(
        confidence.astype(np.float32), correct
    )
    assert as32.threshold_ == as64.threshold_
    assert (
        as32.predict(confidence.astype(np.float32))
        == (confidence.astype(np.float32) >= as32.threshold_)
    ).all()


# ---------------------------------------------------------------------------------------
# Errors


def test_predict_before_fit_spells_out_the_call_order() -> None:
    with pytest.raises(NotFittedError, match="call fit before predict"):
        RiskThreshold().predict([0.5])
    with pytest.raises(NotFittedError, match="call fit before p_values_"):
        _ = RiskThreshold().p_values_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"target_risk": 0.0}, r"`target_risk` must be a number in \(0, 1\); got 0.0"),
        ({"target_risk": 1}, r"`target_risk` must be a number in \(0, 1\)"),
        ({"confidence_level": 1.5}, r"`confidence_level` must be a number in \(0, 1\)"),
        ({"bound": "chernoff"}, r"`bound` must be one of 'binomial', 'hoeffding_bentkus'"),
        ({"n_candidates": 0}, r"`n_candidates` must be None or an int >= 1"),
    ],
)
def test_invalid_parameters_are_named_at_fit(params: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        RiskThreshold(**params).fit([0.9, 0.8], [1, 0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("confidence", "correct", "match"),
    [
        ([[0.9, 0.8]], [1, 0], r"`confidence` must be 1-D; got shape \(1, 2\)"),
        ([0.9, np.nan], [1, 0], r"`confidence` contains NaN in 1 row\(s\), first at row 1"),
        ([], [], r"`confidence` is empty"),
        ([0.9, 0.8, 0.7], [1, 0], r"same number of samples; `confidence` has 3, `correct` has 2"),
        ([0.9, 0.8], [1, 2], r"`correct` must be binary \(0/1 or bool\)"),
        ([0.9, 0.8], ["yes", "no"], r"`correct` must hold integer class indices"),
    ],
)
def test_bad_inputs_say_what_arrived_and_how_to_fix_it(
    confidence: object, correct: object, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        RiskThreshold().fit(confidence, correct)  # type: ignore[arg-type]


def test_predict_checks_its_input_too() -> None:
    rt = RiskThreshold(target_risk=0.05, confidence_level=0.9).fit(
        np.linspace(0.5, 1, 100), np.ones(100)
    )
    with pytest.raises(InputError, match="`confidence` must be 1-D"):
        rt.predict([[0.5]])


# ---------------------------------------------------------------------------------------
# Properties


@st.composite
def _labelled_scores(draw: st.DrawFn) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Distinct confidences with correctness drawn as if calibrated, plus some noise."""
    n = draw(st.integers(min_value=1, max_value=600))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    confidence = np.unique(rng.uniform(0.0, 1.0, size=n))
    skill = draw(st.floats(min_value=0.0, max_value=1.0))
    p_correct = skill * confidence + (1.0 - skill) * 0.9
    return confidence, rng.uniform(size=confidence.size) < p_correct


@given(
    data=_labelled_scores(),
    risks=st.tuples(st.floats(0.01, 0.5), st.floats(0.01, 0.5)),
    level=st.floats(0.5, 0.99),
)
def test_higher_target_risk_never_lowers_coverage(
    data: tuple[NDArray[np.float64], NDArray[np.bool_]], risks: tuple[float, float], level: float
) -> None:
    low, high = sorted(risks)
    strict = _fit_quietly(RiskThreshold(target_risk=low, confidence_level=level), *data)
    loose = _fit_quietly(RiskThreshold(target_risk=high, confidence_level=level), *data)
    # The documented exception: a relaxed target whose deep start allows more errors
    # further down, or that gains or loses restart points, is another procedure.
    assume(strict.start_errors_.tolist() == loose.start_errors_.tolist())
    assume(strict.restart_points_.size == loose.restart_points_.size)
    assert loose.coverage_ >= strict.coverage_


@given(
    data=_labelled_scores(),
    levels=st.tuples(st.floats(0.5, 0.999), st.floats(0.5, 0.999)),
    risk=st.floats(0.01, 0.3),
    bound=st.sampled_from(["binomial", "hoeffding_bentkus"]),
)
def test_lower_confidence_level_never_lowers_coverage(
    data: tuple[NDArray[np.float64], NDArray[np.bool_]],
    levels: tuple[float, float],
    risk: float,
    bound: str,
) -> None:
    low, high = sorted(levels)
    sure = _fit_quietly(RiskThreshold(target_risk=risk, confidence_level=high, bound=bound), *data)
    relaxed = _fit_quietly(
        RiskThreshold(target_risk=risk, confidence_level=low, bound=bound), *data
    )
    # The documented exception: a relaxed level whose plan has other starts or restart
    # points is another procedure.
    assume(sure.start_errors_.tolist() == relaxed.start_errors_.tolist())
    assume(sure.restart_points_.size == relaxed.restart_points_.size)
    assert relaxed.coverage_ >= sure.coverage_


@given(
    n=st.integers(1, 800),
    seed=st.integers(0, 2**32 - 1),
    decimals=st.integers(1, 4),
    risk=st.floats(0.01, 0.4),
    level=st.floats(0.05, 0.999),
    n_candidates=st.none() | st.integers(1, 100),
)
def test_threshold_is_a_passed_candidate_or_infinity(
    n: int, seed: int, decimals: int, risk: float, level: float, n_candidates: int | None
) -> None:
    rng = np.random.default_rng(seed)
    confidence = np.round(rng.uniform(size=n), decimals)  # ties on purpose
    correct = rng.uniform(size=n) < confidence
    rt = _fit_quietly(
        RiskThreshold(target_risk=risk, confidence_level=level, n_candidates=n_candidates),
        confidence,
        correct,
    )
    passed = rt.p_values_ <= rt.levels_
    if rt.certified_:
        assert rt.threshold_ == rt.candidates_[passed][-1]
        assert rt.threshold_ in confidence
        assert rt.risk_upper_bound_ <= risk + 1e-12
        assert rt.n_answered_ == int((confidence >= rt.threshold_).sum())
        assert rt.risk_ == pytest.approx(1 - correct[confidence >= rt.threshold_].mean())
    else:
        assert rt.threshold_ == np.inf
        assert not passed.any()
    assert np.all(rt.levels_ <= 1.0 - level + 1e-12)
    assert np.all(np.diff(rt.candidates_) < 0)  # strictest first, each tested once


@given(data=_labelled_scores(), risk=st.floats(0.02, 0.3), seed=st.integers(0, 1000))
def test_increasing_transform_or_shuffle_of_the_scores_changes_no_decision(
    data: tuple[NDArray[np.float64], NDArray[np.bool_]], risk: float, seed: int
) -> None:
    confidence, correct = data
    assume(confidence.size > 0)
    base = _fit_quietly(RiskThreshold(target_risk=risk, confidence_level=0.9), confidence, correct)
    order = np.random.default_rng(seed).permutation(confidence.size)
    moved = _fit_quietly(
        RiskThreshold(target_risk=risk, confidence_level=0.9),
        np.exp(3.0 * confidence[order]),
        correct[order],
    )
    assert moved.n_answered_ == base.n_answered_
    assert (moved.predict(np.exp(3.0 * confidence)) == base.predict(confidence)).all()


def test_clones_and_parameters_follow_scikit_learn() -> None:
    from sklearn.base import clone

    rt = RiskThreshold(target_risk=0.1, bound="hoeffding_bentkus")
    assert rt.get_params()["target_risk"] == 0.1
    copy = clone(rt)
    assert copy.get_params() == rt.get_params()
    assert copy.set_params(confidence_level=0.8).confidence_level == 0.8
    with pytest.raises(InputError, match="RiskThreshold has no parameter `alpha`"):
        rt.set_params(alpha=0.1)


def test_one_error_among_the_most_confident_answers_does_not_end_the_search() -> None:
    # 1,500 rows with a 1 % error rate, one of the errors at rank 20: the first start fails
    # at once (one error among its few hundred answers), the second start still certifies.
    rng = np.random.default_rng(3)
    confidence = np.linspace(1.0, 0.5, 1500)
    correct = rng.uniform(size=1500) >= 0.01
    correct[:300] = True
    correct[20] = False
    correct[800:] = rng.uniform(size=700) >= 0.2  # the model is poor below the top half
    rt = RiskThreshold(target_risk=0.02, confidence_level=0.95).fit(confidence, correct)
    assert rt.p_values_[0] > rt.levels_[0]  # the first start failed
    assert rt.certified_
    assert rt.coverage_ > 0.3
    assert rt.start_points_.tolist() == sorted(rt.start_points_.tolist())
    # One common level for the starts, below δ: their joint flat-null size is what adds up.
    assert np.ptp(rt.start_levels_) == 0.0
    assert 0.01 < rt.start_levels_[0] < 0.05


def test_starts_depend_only_on_the_number_of_samples_target_and_confidence() -> None:
    rng = np.random.default_rng(4)
    first = RiskThreshold().fit(*_calibrated_sample(rng, 3000, low=0.9))
    second = _fit_quietly(RiskThreshold(), *_calibrated_sample(rng, 3000, low=0.3))
    assert first.start_points_.tolist() == second.start_points_.tolist()
    assert first.restart_points_.tolist() == second.restart_points_.tolist() == [2048]
    assert first.start_errors_.tolist() == [0, 1, 2, 3, 4, 5]
    # Each start is the fewest answers with which its errors pass at the common level.
    level = float(first.start_levels_[0])
    for k, e in zip(first.start_points_, first.start_errors_, strict=True):
        assert stats.binom.cdf(e, k, 0.02) <= level < stats.binom.cdf(e, k - 1, 0.02)
    # The documented plans at 2 % / 95 %.
    plans = {575: [(170, 0), (262, 1)], 1200: [(200, 0), (297, 1), (382, 2), (460, 3)]}
    for n, plan in plans.items():
        rt = _fit_quietly(RiskThreshold(), *_calibrated_sample(rng, n, low=0.3))
        got = list(zip(rt.start_points_.tolist(), rt.start_errors_.tolist(), strict=True))
        assert got[: len(plan)] == plan
        assert rt.start_points_[-1] <= 0.6 * n
    # Below about 300 samples only the zero-error start fits, with all of δ.
    small = _fit_quietly(RiskThreshold(), *_calibrated_sample(rng, 250, low=0.3))
    assert small.start_points_.tolist() == [149]
    assert small.start_levels_ == pytest.approx([0.05])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "target_risk", "confidence_level"),
    [(250, 0.02, 0.95), (575, 0.02, 0.95), (1200, 0.02, 0.95), (5000, 0.05, 0.9), (900, 0.1, 0.8)],
)
def test_joint_flat_null_size_of_the_plan_is_at_most_delta_row_by_row(
    n: int, target_risk: float, confidence_level: float
) -> None:
    # The chance that any start or restart point passes when every row is wrong with
    # probability target_risk, carried one row at a time: at most δ, and close to it.
    rt = _fit_quietly(
        RiskThreshold(target_risk=target_risk, confidence_level=confidence_level),
        *_calibrated_sample(np.random.default_rng(n), n),
    )
    delta = 1.0 - confidence_level
    points = list(zip(rt.start_points_.tolist(), rt.start_errors_.tolist(), strict=True))
    for count, share in zip(rt.restart_points_, rt.restart_levels_, strict=True):
        allowed = int(stats.binom.ppf(share, count, target_risk))
        while stats.binom.cdf(allowed, count, target_risk) > share:
            allowed -= 1
        points.append((int(count), allowed))
    size = _flat_null_hit(points, target_risk)
    assert 0.9 * delta < size <= delta
    plan, deeper = _reference_plan(n, target_risk, delta, "binomial")
    assert [(k, b) for k, b, _ in plan] == points
    assert deeper[0] == pytest.approx(size)


@pytest.mark.slow
def test_flat_null_rows_certify_with_probability_at_most_delta() -> None:
    # Monte Carlo: every row wrong with probability 2 %, so no threshold has risk ≤ 2 %;
    # a certificate is wrong every time it is issued. 4,000 draws of 1,200 rows.
    rng = np.random.default_rng(11)
    draws, n = 4000, 1200
    wrong = 0
    for _ in range(draws):
        rt = _fit_quietly(RiskThreshold(), rng.uniform(size=n), rng.uniform(size=n) >= 0.02)
        wrong += rt.certified_
    rate, se = wrong / draws, math.sqrt(0.05 * 0.95 / draws)
    assert rate <= 0.05 + 3 * se
    assert rate >= 0.05 - 4 * se  # the plan spends nearly all of δ


def test_a_failed_zero_error_start_keeps_its_share_below_a_deep_start_that_passes() -> None:
    # An error at rank 5 fails the zero-error start; a deeper start passes; below the
    # deepest start every candidate is tested at δ minus the restart points' flat-null
    # size, not at the common start level.
    confidence = np.linspace(1.0, 0.5, 1200)
    correct = np.ones(1200, dtype=bool)
    correct[[5, 300, 500]] = False
    correct[700:] = np.arange(500) % 10 != 0
    rt = RiskThreshold().fit(confidence, correct)
    assert rt.p_values_[0] > rt.levels_[0]
    assert (rt.levels_[1:6] <= rt.start_levels_[0]).all()
    deep = int(rt.start_points_[-1])
    below = rt.n_answered_path_ > deep
    assert np.allclose(rt.levels_[below], 0.05)  # no restart point fits in 1,200 rows
    assert rt.certified_
    assert rt.n_answered_ > 700


def test_every_exactness_claim_rests_on_the_one_stated_monotone_risk_assumption() -> None:
    import failwise.policy._risk as module

    doc = RiskThreshold.__doc__ or ""
    assert doc.count("**The monotone-risk assumption.**") == 1
    stated = doc.split("**The monotone-risk assumption.**")[1].split("\n\n")[0]
    assert "does not increase with the threshold" in stated
    assert "calibrated" in stated
    for text in (doc, module.__doc__ or ""):
        for paragraph in text.split("\n\n"):
            if "exact" in paragraph.lower():
                flat = " ".join(paragraph.split())
                assert "monotone-risk assumption" in flat, flat
