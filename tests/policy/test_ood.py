"""Out-of-scope scores, their combination and the threshold rule."""

from __future__ import annotations

import json
import math
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

from failwise import Policy
from failwise.exceptions import InputError, NotFittedError, UncertifiedWarning
from failwise.policy._ood import (
    CombinedOODScore,
    KNNDistance,
    OODThreshold,
    energy_score,
    fit_ood_threshold,
    max_logit_score,
    max_probability_score,
)

logit_arrays = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 20), st.integers(2, 8)),
    elements=st.floats(-30, 30),
)

# --------------------------------------------------------------------------- model outputs


def test_max_probability_score_is_one_minus_the_top_probability() -> None:
    proba = [[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]]
    assert max_probability_score(proba) == pytest.approx([0.3, 2 / 3, 0.0])


def test_max_probability_score_rejects_logits_with_a_hint() -> None:
    with pytest.raises(InputError, match=r"must lie in \[0, 1\].*look like logits"):
        max_probability_score([[2.0, -1.0]])


def test_max_logit_score_negates_the_top_logit() -> None:
    assert max_logit_score([[1.0, 3.0], [-2.0, -5.0]]) == pytest.approx([-3.0, 2.0])


def test_energy_score_known_values() -> None:
    assert energy_score([[0.0, 0.0]]) == pytest.approx([-math.log(2)])
    assert energy_score([[0.0, 0.0]], temperature=2.0) == pytest.approx([-2 * math.log(2)])
    assert energy_score([[1000.0, 0.0]]) == pytest.approx([-1000.0])  # no overflow


@given(logit_arrays)
def test_energy_is_at_most_max_logit_and_tends_to_it_as_temperature_falls(z: np.ndarray) -> None:
    assert np.all(energy_score(z) <= max_logit_score(z) + 1e-9)
    assert energy_score(z, temperature=1e-3) == pytest.approx(max_logit_score(z), abs=0.01)


@given(logit_arrays)
def test_max_probability_score_stays_between_zero_and_one_minus_one_over_k(z: np.ndarray) -> None:
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    score = max_probability_score(proba)
    assert np.all((score >= 0) & (score <= 1 - 1 / z.shape[1] + 1e-12))


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), True, "1"])
def test_energy_score_rejects_bad_temperatures(temperature: object) -> None:
    with pytest.raises(InputError, match="`temperature` must be a positive"):
        energy_score([[0.0, 1.0]], temperature=temperature)  # type: ignore[arg-type]


def test_scores_name_nan_inputs() -> None:
    with pytest.raises(InputError, match="`logits` contains NaN"):
        energy_score([[0.0, float("nan")]])


# --------------------------------------------------------------------------- k-NN distance


def test_knn_cosine_distance_known_values() -> None:
    train = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    knn = KNNDistance(n_neighbors=2).fit(train)
    # [1, 1] has cosine 1/sqrt(2) to the first two rows; [2, 0] is 0 from row 0, 1 from row 1.
    assert knn.score([[1.0, 1.0], [2.0, 0.0]]) == pytest.approx([1 - 1 / math.sqrt(2), 1.0])


def test_knn_euclidean_distance_known_values() -> None:
    train = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    knn = KNNDistance(n_neighbors=2, metric="euclidean").fit(train)
    assert knn.score([[0.0, 0.0]]) == pytest.approx([5.0])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_matches_scikit_learn_across_several_blocks(
    metric: str, rng: np.random.Generator
) -> None:
    train = rng.normal(size=(20_000, 8)).astype(np.float32)  # 2**24 / 20,000 = 838 rows a block
    queries = rng.normal(size=(2_000, 8)).astype(np.float32)
    ours = KNNDistance(n_neighbors=7, metric=metric).fit(train).score(queries)
    reference = (
        NearestNeighbors(n_neighbors=7, metric=metric, algorithm="brute")
        .fit(train)
        .kneighbors(queries)[0][:, -1]
    )
    assert ours == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_sparse_and_dense_features_give_the_same_scores(
    metric: str, rng: np.random.Generator
) -> None:
    train = sp.random(300, 500, density=0.02, format="csr", random_state=rng)
    queries = sp.random(50, 500, density=0.02, format="csr", random_state=rng)
    sparse_scores = KNNDistance(n_neighbors=3, metric=metric).fit(train).score(queries)
    dense_scores = (
        KNNDistance(n_neighbors=3, metric=metric).fit(train.toarray()).score(queries.toarray())
    )
    assert sparse_scores == pytest.approx(dense_scores, abs=1e-5)


def test_knn_batch_equals_one_by_one(rng: np.random.Generator) -> None:
    train, queries = rng.normal(size=(100, 5)), rng.normal(size=(12, 5))
    knn = KNNDistance(n_neighbors=4).fit(train)
    one_by_one = np.concatenate([knn.score(queries[i : i + 1]) for i in range(12)])
    assert knn.score(queries) == pytest.approx(one_by_one)


@pytest.mark.parametrize("sparse", [False, True])
def test_leave_one_out_training_scores_skip_the_row_itself(
    sparse: bool, rng: np.random.Generator
) -> None:
    train = rng.normal(size=(200, 6))
    knn = KNNDistance(n_neighbors=3).fit(sp.csr_matrix(train) if sparse else train)
    reference = (
        NearestNeighbors(n_neighbors=4, metric="cosine", algorithm="brute")
        .fit(train)
        .kneighbors(train)[0][:, -1]
    )
    assert knn.score_training() == pytest.approx(reference, abs=1e-5)


def test_all_zero_rows_are_at_cosine_distance_one() -> None:
    train = sp.csr_matrix(np.eye(3))
    knn = KNNDistance(n_neighbors=1).fit(train)
    assert knn.score(sp.csr_matrix((2, 3))) == pytest.approx([1.0, 1.0])


def test_knn_errors_name_the_problem() -> None:
    with pytest.raises(NotFittedError, match="call fit before score"):
        KNNDistance().score([[1.0, 2.0]])
    with pytest.raises(InputError, match="n_neighbors=10 but `train_features` has only 3"):
        KNNDistance().fit(np.eye(3))
    with pytest.raises(InputError, match="`metric` must be one of 'cosine', 'euclidean'"):
        KNNDistance(metric="manhattan").fit(np.eye(3))
    knn = KNNDistance(n_neighbors=1).fit(np.eye(3))
    with pytest.raises(InputError, match="has 2 features but KNNDistance was fitted on 3"):
        knn.score([[1.0, 0.0]])
    with pytest.raises(InputError, match="contains NaN"):
        knn.score(sp.csr_matrix([[np.nan, 0.0, 1.0]]))


def test_knn_pickles_and_scores_the_same(rng: np.random.Generator) -> None:
    train, queries = sp.csr_matrix(rng.normal(size=(50, 4))), rng.normal(size=(5, 4))
    knn = KNNDistance(n_neighbors=2).fit(train)
    clone = pickle.loads(pickle.dumps(knn))
    assert clone.score(queries) == pytest.approx(knn.score(queries))


# --------------------------------------------------------------------------- combination


def test_combined_score_averages_in_scope_ranks() -> None:
    reference = np.column_stack([np.arange(10.0), -np.arange(10.0)])
    combiner = CombinedOODScore().fit(reference)
    # Column 0: 4.5 is above 5 of 10 references; column 1: 0.0 is above all 10.
    assert combiner.score([[4.5, 0.0]]) == pytest.approx([0.75])
    assert CombinedOODScore(method="max").fit(reference).score([[4.5, 0.0]]) == pytest.approx([1.0])


def test_combined_score_ignores_monotone_transforms_of_a_column(rng: np.random.Generator) -> None:
    reference, scores = rng.normal(size=(200, 2)), rng.normal(size=(30, 2))
    plain = CombinedOODScore().fit(reference).score(scores)

    def warp(a: np.ndarray) -> np.ndarray:
        return np.column_stack([np.exp(a[:, 0]), 3 * a[:, 1] - 1])

    assert CombinedOODScore().fit(warp(reference)).score(warp(scores)) == pytest.approx(plain)


def test_combined_score_checks_columns_and_order() -> None:
    with pytest.raises(NotFittedError, match="call fit before score"):
        CombinedOODScore().score([[0.0]])
    combiner = CombinedOODScore().fit(np.zeros((5, 2)))
    with pytest.raises(InputError, match="has 3 column"):
        combiner.score(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "scorer", [KNNDistance(n_neighbors=3, metric="euclidean"), CombinedOODScore(method="max")]
)
def test_scorers_clone_to_unfitted_copies_with_the_same_parameters(
    scorer: KNNDistance | CombinedOODScore, rng: np.random.Generator
) -> None:
    fitted = scorer.fit(rng.normal(size=(20, 2)))
    copy = clone(fitted)
    assert type(copy) is type(scorer)
    assert copy.get_params() == scorer.get_params()
    with pytest.raises(NotFittedError, match="call fit before score"):
        copy.score(rng.normal(size=(2, 2)))
    assert repr(copy) in (
        "KNNDistance(n_neighbors=3, metric='euclidean')",
        "CombinedOODScore(method='max')",
    )


def test_scorers_reject_unknown_parameters() -> None:
    with pytest.raises(InputError, match="KNNDistance has no parameter `k`"):
        KNNDistance().set_params(k=3)
    assert KNNDistance().set_params(n_neighbors=3).n_neighbors == 3


# --------------------------------------------------------------------------- threshold


def test_threshold_is_the_conformal_quantile_of_in_scope_scores() -> None:
    scores = np.arange(1.0, 100.0)  # 99 in-scope scores
    fitted = fit_ood_threshold(scores, max_false_alarm_rate=0.05)
    # ceil(100 * 0.95) = 95th smallest.
    assert float(fitted) == 95.0
    assert fitted.false_alarm_rate == pytest.approx(4 / 99)
    assert fitted.limited_by == "false_alarm_rate"
    assert fitted.oos_recall is None
    assert fitted.flag([95.0, 95.5]).tolist() == [False, True]


def test_out_of_scope_rows_never_move_the_threshold(rng: np.random.Generator) -> None:
    inside = rng.normal(size=500)
    alone = fit_ood_threshold(inside)
    for oos in (rng.normal(3, 1, 50), rng.normal(-3, 1, 400)):
        mixed = fit_ood_threshold(
            np.concatenate([inside, oos]), np.r_[np.zeros(500), np.ones(oos.size)]
        )
        assert mixed.threshold == alone.threshold
        assert mixed.n_out_of_scope == oos.size
    assert mixed.oos_recall is not None
    assert mixed.oos_recall < 0.05


def test_too_few_in_scope_scores_keep_the_screen_on_beyond_every_in_scope_score() -> None:
    with pytest.warns(UncertifiedWarning, match="at least 19 are needed") as caught:
        fitted = fit_ood_threshold(np.arange(10.0), max_false_alarm_rate=0.05)
    assert fitted.threshold == 9.0
    assert fitted.limited_by == "too_few_samples"
    assert fitted.flag([1e9, 9.0]).tolist() == [True, False]
    assert fitted.unmet == ("max_false_alarm_rate",)
    assert "`max_false_alarm_rate=0.05`" in str(caught[0].message)


@given(
    hnp.arrays(np.float64, st.integers(20, 200), elements=st.floats(-5, 5)),
    st.floats(0.05, 0.5),
    st.floats(0.05, 0.5),
)
def test_a_larger_false_alarm_budget_never_raises_the_threshold(
    scores: np.ndarray, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        strict = fit_ood_threshold(scores, max_false_alarm_rate=low)
        lenient = fit_ood_threshold(scores, max_false_alarm_rate=high)
    assert lenient.threshold <= strict.threshold
    assert strict.false_alarm_rate <= low + 1e-12


def test_accuracy_floor_raises_the_threshold_until_accuracy_is_certified(
    rng: np.random.Generator,
) -> None:
    n = 3000
    scores = rng.uniform(size=n)
    correct = rng.uniform(size=n) > 0.5 * scores  # uncertain inputs are wrong more often
    plain = fit_ood_threshold(scores, correct=correct, max_false_alarm_rate=0.2)
    floored = fit_ood_threshold(
        scores, correct=correct, max_false_alarm_rate=0.2, min_in_scope_accuracy=0.70
    )
    assert plain.in_scope_accuracy is not None
    assert plain.in_scope_accuracy < 0.70
    assert floored.limited_by == "in_scope_accuracy"
    assert floored.threshold > plain.threshold
    assert floored.in_scope_accuracy_lower_bound is not None
    assert floored.in_scope_accuracy_lower_bound >= 0.70


def test_uncertifiable_accuracy_floor_keeps_the_false_alarm_threshold_and_says_so() -> None:
    scores = np.linspace(0, 1, 200)
    correct = np.arange(200) % 2 == 0  # 50% accurate
    with pytest.warns(UncertifiedWarning, match="`min_in_scope_accuracy=0.9` cannot be certified"):
        fitted = fit_ood_threshold(scores, correct=correct, min_in_scope_accuracy=0.9)
    assert fitted.threshold == float(fit_ood_threshold(scores))
    assert fitted.limited_by == "false_alarm_rate"
    assert fitted.unmet == ("min_in_scope_accuracy",)
    assert fitted.false_alarm_rate > 0.03


def test_accuracy_budget_is_a_conformal_bound_on_correct_answers_flagged(
    rng: np.random.Generator,
) -> None:
    n = 2000
    scores = rng.uniform(size=n)
    correct = rng.uniform(size=n) > scores**2  # high scores are mostly wrong answers
    fitted = fit_ood_threshold(
        scores, correct=correct, max_false_alarm_rate=0.3, max_accuracy_loss=0.02
    )
    ranked = np.sort(scores[correct])
    # Smallest k with P(Binomial(m, 0.98) < k) >= 0.95: the 95% upper bound on the share of
    # new correct rows flagged is at most 2%.
    k = 1 + int(
        np.flatnonzero(stats.binom.cdf(np.arange(ranked.size), ranked.size, 0.98) >= 0.95)[0]
    )
    assert fitted.threshold == ranked[k - 1]
    assert fitted.limited_by == "accuracy_loss"
    assert fitted.accuracy_loss is not None
    assert fitted.accuracy_loss <= 0.02
    # Wrong answers are flagged freely: far more than 2% of the in-scope rows go.
    assert fitted.false_alarm_rate > 0.05
    assert fitted.met


def test_accuracy_budget_of_one_leaves_the_false_alarm_rule_alone(rng: np.random.Generator) -> None:
    scores, correct = rng.normal(size=300), rng.uniform(size=300) < 0.9
    plain = fit_ood_threshold(scores, correct=correct)
    loose = fit_ood_threshold(scores, correct=correct, max_accuracy_loss=1.0)
    assert loose.threshold == plain.threshold
    assert loose.limited_by == "false_alarm_rate"


def test_accuracy_budget_needs_enough_correct_rows_and_names_its_parameter() -> None:
    scores, correct = np.arange(30.0), np.ones(30, dtype=bool)
    with pytest.warns(
        UncertifiedWarning, match=r"`max_accuracy_loss=0.02` cannot be certified.*149"
    ):
        fitted = fit_ood_threshold(scores, correct=correct, max_accuracy_loss=0.02)
    assert fitted.threshold == 29.0  # still on: flags anything beyond the data
    assert fitted.unmet == ("max_accuracy_loss",)


def test_threshold_record_is_json_ready() -> None:
    with pytest.warns(UncertifiedWarning):
        fitted = fit_ood_threshold(np.arange(5.0), correct=np.ones(5), max_accuracy_loss=0.1)
    data = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    assert data["met"] is False
    assert data["unmet"] == ["max_false_alarm_rate", "max_accuracy_loss"]
    assert len(data["notes"]) == 2


def test_threshold_arguments_are_checked() -> None:
    scores = np.arange(50.0)
    with pytest.raises(InputError, match="needs `correct`"):
        fit_ood_threshold(scores, min_in_scope_accuracy=0.9)
    with pytest.raises(InputError, match="`max_accuracy_loss` needs `correct`"):
        fit_ood_threshold(scores, max_accuracy_loss=0.02)
    with pytest.raises(InputError, match=r"`max_accuracy_loss` must be a number in \(0, 1\]"):
        fit_ood_threshold(scores, correct=np.ones(50), max_accuracy_loss=0.0)
    with pytest.raises(InputError, match="`scores` contains NaN in 1 row"):
        fit_ood_threshold(np.r_[scores, np.nan])
    with pytest.raises(InputError, match="`scores` contains infinite values in 1 row"):
        fit_ood_threshold(np.r_[scores, np.inf])
    with pytest.raises(InputError, match=r"`max_false_alarm_rate` must be a number in \(0, 1\)"):
        fit_ood_threshold(scores, max_false_alarm_rate=5)
    with pytest.raises(InputError, match="marks all 50 rows out of scope"):
        fit_ood_threshold(scores, np.ones(50, dtype=bool))
    with pytest.raises(InputError, match="same number of samples"):
        fit_ood_threshold(scores, np.zeros(49, dtype=bool))
    with pytest.raises(InputError, match="`scores` must be 1-D"):
        fit_ood_threshold(np.zeros((5, 2)))


def test_threshold_result_converts_to_float_and_pickles() -> None:
    fitted = fit_ood_threshold(np.arange(100.0))
    assert isinstance(fitted, OODThreshold)
    assert float(pickle.loads(pickle.dumps(fitted))) == float(fitted)


@pytest.mark.slow
def test_false_alarm_rate_guarantee_holds_over_many_calibration_draws(seed: int) -> None:
    rng = np.random.default_rng(seed)
    alpha, n, repeats = 0.1, 50, 4000
    rates = []
    for _ in range(repeats):
        fitted = fit_ood_threshold(rng.standard_t(3, size=n), max_false_alarm_rate=alpha)
        rates.append(np.mean(rng.standard_t(3, size=200) > fitted.threshold))
    mean = float(np.mean(rates))
    # Split conformal: alpha - 1/(n+1) <= P(flag) <= alpha; Monte Carlo error ~0.001.
    assert alpha - 1 / (n + 1) - 0.005 <= mean <= alpha + 0.005


@pytest.mark.slow
def test_accuracy_floor_holds_with_the_stated_confidence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    floor, level, repeats, n = 0.8, 0.9, 400, 500

    def draw(size: int) -> tuple[np.ndarray, np.ndarray]:
        scores = rng.uniform(size=size)
        return scores, rng.uniform(size=size) > 0.35 * scores

    fresh_scores, fresh_correct = draw(200_000)
    failures = 0
    for _ in range(repeats):
        scores, correct = draw(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncertifiedWarning)
            fitted = fit_ood_threshold(
                scores,
                correct=correct,
                max_false_alarm_rate=0.5,
                min_in_scope_accuracy=floor,
                confidence_level=level,
            )
        accuracy = np.mean(fresh_correct & (fresh_scores <= fitted.threshold))
        # Learn-then-Test: P(the floor is reported met and yet violated) <= 1 - level.
        failures += int(fitted.met and accuracy < floor)
    assert failures / repeats <= (1 - level) + 0.03


@pytest.mark.slow
def test_accuracy_budget_holds_with_the_stated_confidence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    budget, level, n, repeats = 0.05, 0.9, 300, 2000
    # Scores of correct answers are standard normal: the share of new correct rows flagged
    # is exactly 1 - Phi(threshold).
    failures = 0
    for _ in range(repeats):
        correct = rng.uniform(size=n) < 0.85
        scores = np.where(correct, rng.normal(size=n), rng.normal(2.0, 1.0, n))
        fitted = fit_ood_threshold(
            scores,
            correct=correct,
            max_false_alarm_rate=0.5,
            max_accuracy_loss=budget,
            confidence_level=level,
        )
        failures += int(stats.norm.sf(fitted.threshold) > budget)
    rate = failures / repeats
    assert rate <= (1 - level) + 0.02
    assert rate >= (1 - level) - 0.06  # not vacuous: close to the stated level


# --------------------------------------------------------------------------- in a Policy


def _intents(
    rng: np.random.Generator, n_in: int, n_out: int = 0, n_classes: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated probabilities, labels (-1 = unseen intent) and a distance-like OOD score."""
    proba = rng.dirichlet(np.full(n_classes, 0.05), size=n_in + n_out)
    y = np.array([rng.choice(n_classes, p=p) for p in proba])
    y[n_in:] = -1
    ood = np.r_[rng.normal(0.0, 1.0, n_in), rng.normal(2.5, 1.0, n_out)]
    return proba, y, ood


@pytest.mark.parametrize("budget", [None, 0.02])
def test_screen_flags_unseen_inputs_from_a_small_validation_set_without_any(
    budget: float | None, rng: np.random.Generator
) -> None:
    proba, y, ood = _intents(rng, 300)  # 300 in-scope rows, no out-of-scope example
    policy = Policy(target_risk=0.1, ood_max_accuracy_loss=budget).fit(proba, y, ood_score=ood)
    assert policy.ood_screen_ is not None
    assert policy.ood_screen_.met
    test_proba, test_y, test_ood = _intents(rng, 2000, 2000)
    decisions = policy.decide(test_proba, ood_score=test_ood)
    screened = decisions.reason_codes == decisions.reason_codes[np.argmax(test_ood)]
    assert screened[test_y < 0].mean() > 0.5  # most unseen inputs are caught
    assert screened[test_y >= 0].mean() < 0.08  # few in-scope ones are


def test_policy_names_only_its_own_parameters_when_a_screen_rule_is_unmet(
    rng: np.random.Generator,
) -> None:
    proba, y, ood = _intents(rng, 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy = Policy(target_risk=0.1, ood_max_accuracy_loss=0.02).fit(proba, y, ood_score=ood)
    screen_notes = [str(w.message) for w in caught if "out-of-scope" in str(w.message)]
    assert screen_notes
    named = {m for note in screen_notes for m in re.findall(r"`([a-z_]+)[=`]", note)}
    assert named == {"ood_max_accuracy_loss"}
    assert "min_in_scope_accuracy" not in " ".join(screen_notes)
    summary = policy.describe()["ood_screen"]
    assert json.loads(json.dumps(summary, allow_nan=False))["unmet"] == ["ood_max_accuracy_loss"]
    assert summary["notes"] == [note.removeprefix("Policy: ") for note in screen_notes]
    assert np.isfinite(policy.ood_threshold_)  # the screen stays on


def test_policy_accepts_the_largest_allowed_accuracy_budget(rng: np.random.Generator) -> None:
    proba, y, ood = _intents(rng, 300)
    policy = Policy(target_risk=0.1, ood_max_accuracy_loss=1.0).fit(proba, y, ood_score=ood)
    assert policy.ood_screen_ is not None
    assert policy.ood_screen_.limited_by == "false_alarm_rate"
    with pytest.raises(InputError, match="`ood_max_accuracy_loss`"):
        Policy(ood_max_accuracy_loss=0.0).fit(proba, y, ood_score=ood)


@pytest.mark.parametrize(("budget", "lowest", "spread"), [(None, 0.6, 0.06), (0.02, 0.2, 0.15)])
def test_screen_is_stable_across_validation_draws(
    budget: float | None, lowest: float, spread: float
) -> None:
    caught, alarms = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        proba, y, ood = _intents(rng, 300)
        policy = Policy(target_risk=0.1, ood_max_accuracy_loss=budget)
        policy.fit(proba, y, ood_score=ood)
        caught.append(np.mean(rng.normal(2.5, 1.0, 5000) > policy.ood_threshold_))
        alarms.append(np.mean(rng.normal(0.0, 1.0, 5000) > policy.ood_threshold_))
    # Never off in any draw, and no bimodal swings: the spread is that of a quantile of 300.
    assert min(caught) > lowest
    assert float(np.std(caught)) < spread
    assert float(np.mean(alarms)) <= 0.05 + 0.005
    assert float(np.std(alarms)) < 0.02


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_policy_names_non_finite_out_of_scope_scores(bad: float, rng: np.random.Generator) -> None:
    proba, y, ood = _intents(rng, 100)
    ood[7] = bad
    kind = "NaN" if np.isnan(bad) else "infinite values"
    with pytest.raises(InputError, match=f"`ood_score` contains {kind} in 1 row.*first at row 7"):
        Policy(target_risk=0.1).fit(proba, y, ood_score=ood)
    ood[7] = 0.0
    policy = Policy(target_risk=0.1).fit(proba, y, ood_score=ood)
    ood[3] = bad
    with pytest.raises(InputError, match=f"`ood_score` contains {kind}.*first at row 3"):
        policy.decide(proba, ood_score=ood)
