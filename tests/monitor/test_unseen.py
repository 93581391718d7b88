"""The unseen-input detector: false alarms bounded per reference draw, power on novelty."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from failwise.exceptions import InputError, NotFittedError
from failwise.monitor import UnseenInputDetector


def _clusters(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    labels = rng.integers(0, centres.shape[0], size=n)
    return centres[labels] + rng.normal(scale=0.6, size=(n, centres.shape[1]))


@pytest.mark.slow
def test_windows_of_ordinary_inputs_rarely_alarm_for_any_reference_draw() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(12, 16))
    worst = 0.0
    rates = []
    for _ in range(10):  # ten reference draws, twenty windows each
        detector = UnseenInputDetector(metric="euclidean").fit(_clusters(rng, 1500, centres))
        alarms = float(
            np.mean([detector.test(_clusters(rng, 500, centres)).p_value < 0.05 for _ in range(20)])
        )
        rates.append(alarms)
        worst = max(worst, alarms)
    assert np.mean(rates) <= 0.05 + 0.02
    # The window test's null rate covers a draw's flag rate with probability 0.9, so a draw
    # beyond 3 alpha needs a flag rate about 3 standard errors out; at this seed one of the
    # ten draws flags 12.4 % of ordinary inputs (30 % of its windows alarm). A detector
    # without the bound alarms in about half the draws' windows beyond 3 alpha.
    assert sorted(rates)[-2] <= 3 * 0.05


def test_ten_percent_of_inputs_from_unseen_categories_are_detected_in_most_windows() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=3.0, size=(15, 16))
    known, novel = centres[:12], centres[12:]
    detector = UnseenInputDetector(metric="euclidean").fit(_clusters(rng, 1500, known))
    detected = 0
    for _ in range(30):
        window = np.concatenate([_clusters(rng, 450, known), _clusters(rng, 50, novel)])
        result = detector.test(window)
        detected += result.p_value < 0.05
        assert result.unseen[450:].mean() > result.unseen[:450].mean()
    assert detected >= 27


def test_detector_clones_and_refuses_to_score_before_fit() -> None:
    detector = UnseenInputDetector(n_neighbors=3, metric="euclidean")
    copy = clone(detector)
    assert copy.get_params() == detector.get_params()
    with pytest.raises(NotFittedError, match="call fit before test"):
        copy.test(np.ones((2, 2)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_neighbors": 0}, "`n_neighbors` must be"),
        ({"false_alarm_rate": 1.0}, "`false_alarm_rate` must be"),
        ({"metric": "manhattan"}, "`metric` must be one of"),
        ({"calibration": "k_fold"}, "`calibration` must be one of"),
    ],
)
def test_bad_parameters_are_named_at_fit(params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        UnseenInputDetector(**params).fit(np.random.default_rng(0).normal(size=(20, 3)))  # type: ignore[arg-type]


def test_reference_smaller_than_the_neighbourhood_and_mismatched_features_are_named() -> None:
    with pytest.raises(InputError, match="it needs at least 12"):
        UnseenInputDetector(n_neighbors=5).fit(np.ones((5, 3)) + np.arange(3))
    detector = UnseenInputDetector(metric="euclidean").fit(
        np.random.default_rng(0).normal(size=(50, 3))
    )
    with pytest.raises(InputError, match="has 4 feature columns but the reference had 3"):
        detector.test(np.ones((2, 4)))
    with pytest.raises(InputError, match="all-zero feature rows"):
        UnseenInputDetector().fit(np.zeros((10, 3)))


def _with_doubt(
    rng: np.random.Generator, n: int, centres: np.ndarray, novel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and a confidence that is lower, on average, for inputs of unseen categories."""
    points = _clusters(rng, n, centres)
    confidence = np.clip(rng.beta(2.0 if novel else 8.0, 1.0, size=n), 0.0, 1.0)
    return points, confidence


def test_confidence_in_the_score_adds_power_and_keeps_false_alarms_per_draw() -> None:
    rng = np.random.default_rng(7)
    known = rng.normal(scale=3.0, size=(12, 16))
    novel = known[:3] + rng.normal(scale=0.3, size=(3, 16))  # beside known categories
    plain_hits = combined_hits = 0
    flag_rates, bounds = [], []
    for _ in range(4):
        reference, ref_conf = _with_doubt(rng, 1500, known, novel=False)
        plain = UnseenInputDetector(metric="euclidean").fit(reference)
        combined = UnseenInputDetector(metric="euclidean").fit(reference, confidence=ref_conf)
        assert combined.uses_confidence_
        assert not plain.uses_confidence_
        for _ in range(10):
            ordinary, conf = _with_doubt(rng, 450, known, novel=False)
            strange, strange_conf = _with_doubt(rng, 50, novel, novel=True)
            window = np.concatenate([ordinary, strange])
            window_conf = np.concatenate([conf, strange_conf])
            plain_hits += plain.test(window).p_value < 0.05
            combined_hits += combined.test(window, confidence=window_conf).p_value < 0.05
        # This draw's flag rate of ordinary inputs (20,000 of them: within 0.5 point) must
        # stay under the null rate that the window test assumes.
        many, many_conf = _with_doubt(rng, 20_000, known, novel=False)
        flag_rates.append(float(combined.unseen(many, confidence=many_conf).mean()))
        bounds.append(combined.null_rate_)
    # 7 and 27 of 40 windows at this seed; flag rates 0.088-0.102 under a bound of 0.114.
    assert combined_hits >= plain_hits + 10
    assert all(rate <= bound for rate, bound in zip(flag_rates, bounds, strict=True))


def test_confidence_must_be_given_exactly_when_the_detector_was_fitted_with_it() -> None:
    rng = np.random.default_rng(8)
    reference = rng.normal(size=(60, 3))
    combined = UnseenInputDetector(metric="euclidean").fit(
        reference, confidence=rng.uniform(size=60)
    )
    with pytest.raises(InputError, match="needs the served inputs' confidence"):
        combined.test(reference[:5])
    with pytest.raises(InputError, match="one calibrated confidence per input"):
        combined.test(reference[:5], confidence=[0.5, 0.5])
    plain = UnseenInputDetector(metric="euclidean").fit(reference)
    with pytest.raises(InputError, match="fitted without confidences"):
        plain.score(reference[:5], confidence=np.full(5, 0.5))
    with pytest.raises(InputError, match="`confidence_weight` must be"):
        UnseenInputDetector(confidence_weight=-1.0).fit(reference)
    constant = UnseenInputDetector(metric="euclidean").fit(reference, confidence=np.ones(60))
    assert np.isfinite(constant.test(reference[:5], confidence=np.ones(5)).p_value)


@pytest.mark.parametrize(("metric", "k"), [("cosine", 1), ("euclidean", 3)])
def test_split_scores_are_the_kth_neighbour_distances_to_the_index_half(
    metric: str, k: int
) -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(8)
    centres = rng.normal(scale=3.0, size=(6, 8))
    reference, served = _clusters(rng, 1000, centres), _clusters(rng, 35_000, centres)
    detector = UnseenInputDetector(metric=metric, n_neighbors=k, calibration="split").fit(reference)
    if metric == "cosine":
        reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
        served = served / np.linalg.norm(served, axis=1, keepdims=True)
    order = np.random.default_rng(0).permutation(1000)  # the detector's own split
    index = NearestNeighbors(n_neighbors=k).fit(reference[order[:500]])
    expected, _ = index.kneighbors(served)  # more rows than one block of the search
    np.testing.assert_allclose(detector.score(served), expected[:, -1], rtol=1e-9)
    calibration, _ = index.kneighbors(reference[order[500:]])
    np.testing.assert_allclose(detector.reference_distances_, calibration[:, -1], rtol=1e-9)


@pytest.mark.parametrize(("metric", "k"), [("cosine", 1), ("euclidean", 3)])
def test_leave_one_out_calibrates_on_every_index_row_against_the_others(
    metric: str, k: int
) -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(9)
    centres = rng.normal(scale=3.0, size=(6, 8))
    reference, training = _clusters(rng, 300, centres), _clusters(rng, 900, centres)
    served = _clusters(rng, 400, centres)
    detector = UnseenInputDetector(metric=metric, n_neighbors=k).fit(
        reference, neighbour_features=training
    )
    rows = np.vstack([reference, training])
    if metric == "cosine":
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        served = served / np.linalg.norm(served, axis=1, keepdims=True)
    index = NearestNeighbors(n_neighbors=k + 1).fit(rows)
    own, _ = index.kneighbors(rows)  # the first neighbour of a row is itself
    np.testing.assert_allclose(detector.reference_distances_, own[:, k], rtol=1e-9, atol=1e-12)
    expected, _ = index.kneighbors(served, n_neighbors=k)
    np.testing.assert_allclose(detector.score(served), expected[:, -1], rtol=1e-9)
    assert detector.n_index_ == 1200
    m = 1200
    rank = int(np.ceil((m + 1) * 0.9))
    assert detector.threshold_ == pytest.approx(np.sort(own[:, k])[rank - 1], rel=1e-9)
    # With confidences only the reference rows (whose confidences are out of sample)
    # calibrate, against every other index row.
    combined = UnseenInputDetector(metric=metric, n_neighbors=k).fit(
        reference, confidence=rng.uniform(0.5, 1.0, 300), neighbour_features=training
    )
    assert combined.reference_distances_.size == 300
    expected_cut = np.sort(own[:300, k])[int(np.ceil(301 * 0.9)) - 1]
    assert combined.distance_threshold_ == pytest.approx(expected_cut, rel=1e-9)


def test_leave_one_out_flags_no_more_ordinary_inputs_than_the_nominal_rate() -> None:
    # Over reference draws, the share of ordinary inputs beyond the cut is at most the
    # nominal rate (full conformal, module notes); the split cut is exact, and its bound
    # on a draw's rate is wider for having fewer calibration rows.
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=3.0, size=(12, 16))
    many = _clusters(rng, 20_000, centres)
    rates, bounds = [], {}
    for calibration in ("leave_one_out", "split"):
        for _ in range(8):
            detector = UnseenInputDetector(metric="euclidean", calibration=calibration).fit(
                _clusters(rng, 1000, centres)
            )
            if calibration == "leave_one_out":
                rates.append(float(detector.unseen(many).mean()))
        bounds[calibration] = detector.null_rate_
    assert np.mean(rates) <= 0.1 + 0.01
    assert bounds["leave_one_out"] < bounds["split"]


def test_neighbour_rows_densify_the_index_and_keep_false_alarms_per_draw() -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=0.5, size=(15, 16))  # unseen categories close to known ones
    known, novel = centres[:12], centres[12:]
    reference, training = _clusters(rng, 200, known), _clusters(rng, 3000, known)
    alone = UnseenInputDetector(metric="euclidean").fit(reference)
    dense = UnseenInputDetector(metric="euclidean").fit(reference, neighbour_features=training)
    assert (dense.n_index_, dense.reference_distances_.size) == (3200, 3200)
    assert (alone.n_index_, alone.reference_distances_.size) == (200, 200)
    split = UnseenInputDetector(metric="euclidean", calibration="split")
    assert split.fit(reference, neighbour_features=training).reference_distances_.size == 150
    assert split.fit(reference).n_index_ == 100
    found = {"alone": 0, "dense": 0}
    for _ in range(10):
        window = np.concatenate([_clusters(rng, 450, known), _clusters(rng, 50, novel)])
        found["alone"] += alone.test(window).p_value < 0.05
        found["dense"] += dense.test(window).p_value < 0.05
    assert found["dense"] >= 8
    assert found["dense"] >= found["alone"] + 4
    alarms: list[bool] = []
    for _ in range(3):  # other reference draws, each with its own training rows
        detector = UnseenInputDetector(metric="euclidean").fit(
            _clusters(rng, 200, known), neighbour_features=_clusters(rng, 2000, known)
        )
        alarms.extend(detector.test(_clusters(rng, 500, known)).p_value < 0.05 for _ in range(10))
    assert np.mean(alarms) <= 0.1


def test_the_test_reports_each_inputs_distance_and_whether_it_is_far_by_position() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(400, 4))
    confidence = rng.uniform(0.5, 1.0, size=400)
    detector = UnseenInputDetector(metric="euclidean").fit(reference, confidence=confidence)
    window = np.concatenate([rng.normal(size=(40, 4)), rng.normal(6.0, size=(10, 4))])
    result = detector.test(window, confidence=np.full(50, 0.6))
    assert result.distance is not None
    assert result.far is not None
    np.testing.assert_allclose(result.distance, detector._distance_to_reference(window))
    assert np.all(result.far <= result.unseen)
    assert result.far[40:].all()
    beyond = result.distance > detector.distance_threshold_
    assert np.array_equal(result.far, result.unseen & beyond)


def test_neighbour_rows_that_repeat_the_reference_or_do_not_fit_are_refused() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(200, 5))
    for calibration in ("leave_one_out", "split"):
        with pytest.raises(InputError, match="also appear in `neighbour_features`"):
            UnseenInputDetector(metric="euclidean", calibration=calibration).fit(
                reference, neighbour_features=reference
            )
    with pytest.raises(InputError, match="has 4 feature columns but `X` has 5"):
        UnseenInputDetector().fit(reference, neighbour_features=np.ones((10, 4)))
    with pytest.raises(InputError, match="has 1 rows but n_neighbors=2"):
        UnseenInputDetector(n_neighbors=2).fit(reference, neighbour_features=np.ones((1, 5)))
