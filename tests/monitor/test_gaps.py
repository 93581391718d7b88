"""Blind spots: unseen categories surface as gaps, the fringe of known ones does not."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError, NotFittedError
from failwise.monitor import Gap, UnseenInputDetector, find_gaps

DIM = 16

#: Isotropic Gaussian categories at random centres are all about as far from one another
#: as from the reference, so two unseen ones merge at the default ratio (see MERGE_RATIO);
#: a smaller one keeps them apart.
SEPARATE = 0.4


def _world(seed: int) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng, rng.normal(scale=4.0, size=(20, DIM))


def _draw(rng: np.random.Generator, centres: np.ndarray, c: int, n: int) -> np.ndarray:
    points: np.ndarray = centres[c] + rng.normal(scale=0.5, size=(n, DIM))
    return points


def _fitted(rng: np.random.Generator, centres: np.ndarray, known: int) -> UnseenInputDetector:
    reference = np.concatenate([_draw(rng, centres, c, 120) for c in range(known)])
    labels = np.repeat(np.arange(known), 120)
    return UnseenInputDetector(metric="euclidean").fit(reference, labels)


@pytest.mark.parametrize("seed", range(5))
def test_each_unseen_category_surfaces_as_one_pure_gap(seed: int) -> None:
    rng, centres = _world(seed)
    detector = _fitted(rng, centres, known=12)
    ordinary = np.concatenate([_draw(rng, centres, c, 80) for c in range(12)])
    novel = np.concatenate([_draw(rng, centres, c, 13) for c in range(12, 20)])
    served = np.concatenate([ordinary, novel])
    truth = np.concatenate([np.full(ordinary.shape[0], -1), np.repeat(np.arange(12, 20), 13)])
    gaps = find_gaps(detector, served, merge_ratio=SEPARATE)
    surfaced = set()
    for gap in gaps:
        categories, counts = np.unique(truth[list(gap.rows)], return_counts=True)
        assert categories[counts.argmax()] != -1, "a gap made of ordinary inputs"
        assert counts.max() / gap.size >= 0.9
        surfaced.add(int(categories[counts.argmax()]))
    assert len(surfaced) >= 7


def test_gaps_are_ranked_by_expected_silent_failures_from_audits() -> None:
    rng, centres = _world(0)
    detector = _fitted(rng, centres, known=4)
    served = np.concatenate(
        [_draw(rng, centres, 0, 200), _draw(rng, centres, 10, 30), _draw(rng, centres, 11, 20)]
    )
    action = np.array(["answer"] * 200 + ["escalate"] * 20 + ["answer"] * 10 + ["answer"] * 20)
    audit = np.full(250, np.nan)
    audit[230:240] = 0.0  # the smaller cluster's audits were all wrong
    texts = [f"request {i}" for i in range(250)]
    gaps = find_gaps(
        detector,
        served,
        action=action,
        audit_correct=audit,
        examples=texts,
        timestamps=np.arange(250.0),
        confidence=np.full(250, 0.9),
        merge_ratio=SEPARATE,
    )
    assert len(gaps) == 2
    first, second = gaps
    # The 20 audited-wrong inputs rank first although the other gap is larger.
    assert set(first.rows) <= set(range(230, 250))
    assert set(second.rows) <= set(range(200, 230))
    assert first.size >= 18
    assert second.size >= 27
    assert first.rank == 1
    assert first.audit_error_rate == 1.0
    audited = sum(230 <= r < 240 for r in first.rows)
    assert first.n_audited == audited
    assert first.expected_silent_failures == pytest.approx(
        first.size * (audited + 1) / (audited + 2)
    )
    answered = sum(r >= 220 for r in second.rows)
    assert second.action_mix["answer"] == pytest.approx(answered / second.size)
    assert second.escalation_rate == pytest.approx(1 - answered / second.size)
    assert second.expected_silent_failures == pytest.approx(answered * 0.5)
    assert all(text.startswith("request 2") for text in first.examples)
    assert first.first_seen is not None
    assert first.last_seen is not None
    assert 230.0 <= first.first_seen < first.last_seen <= 249.0
    assert first.to_dict()["examples"] == list(first.examples)


def test_cosine_metric_surfaces_unseen_directions_as_gaps() -> None:
    rng = np.random.default_rng(4)
    directions = rng.normal(size=(10, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def draw(c: int, n: int) -> np.ndarray:
        scale = rng.uniform(0.5, 3.0, size=(n, 1))  # norms vary; only directions matter
        points: np.ndarray = scale * (directions[c] + rng.normal(scale=0.04, size=(n, DIM)))
        return points

    reference = np.concatenate([draw(c, 150) for c in range(6)])
    detector = UnseenInputDetector().fit(reference, np.repeat(np.arange(6), 150))
    served = np.concatenate([draw(c, 60) for c in range(6)] + [draw(8, 25), draw(9, 25)])
    gaps = find_gaps(detector, served, merge_ratio=SEPARATE)
    assert len(gaps) == 2
    assert all(min(gap.rows) >= 360 for gap in gaps)


def test_traffic_like_the_reference_has_no_gap() -> None:
    rng, centres = _world(1)
    detector = _fitted(rng, centres, known=6)
    served = np.concatenate([_draw(rng, centres, c, 150) for c in range(6)])
    assert find_gaps(detector, served) == []


def test_bad_arguments_are_named() -> None:
    rng, centres = _world(2)
    detector = _fitted(rng, centres, known=3)
    served = _draw(rng, centres, 0, 10)
    with pytest.raises(InputError, match="`min_size` must be an int >= 2"):
        find_gaps(detector, served, min_size=1)
    with pytest.raises(InputError, match="`action` must hold one value per input"):
        find_gaps(detector, served, action=["answer"])
    with pytest.raises(InputError, match="same number of samples"):
        find_gaps(detector, served, examples=["x"])
    with pytest.raises(NotFittedError, match="call fit before find_gaps"):
        find_gaps(UnseenInputDetector(), served)


def test_with_a_confidence_detector_unsure_groups_are_gaps_and_confident_ones_fringe() -> None:
    rng, centres = _world(3)
    reference = np.concatenate([_draw(rng, centres, c, 120) for c in range(6)])
    detector = UnseenInputDetector(metric="euclidean").fit(
        reference, np.repeat(np.arange(6), 120), confidence=np.full(720, 0.95)
    )
    served = np.concatenate(
        [_draw(rng, centres, c, 60) for c in range(6)] + [_draw(rng, centres, 9, 20)]
    )
    unsure = np.r_[np.full(360, 0.95), np.full(20, 0.4)]
    gaps = find_gaps(detector, served, confidence=unsure)
    assert len(gaps) == 1
    assert min(gaps[0].rows) >= 360
    assert gaps[0].mean_confidence == pytest.approx(0.4)
    with pytest.raises(InputError, match="needs the served inputs' `confidence`"):
        find_gaps(detector, served)


def _surfaced(gaps: list[Gap], truth: np.ndarray) -> set[int]:
    found = set()
    for gap in gaps:
        categories, counts = np.unique(truth[list(gap.rows)], return_counts=True)
        if categories[counts.argmax()] >= 0 and counts.max() / gap.size >= 0.9:
            found.add(int(categories[counts.argmax()]))
    return found


def test_a_bounded_clustering_sample_finds_the_same_gaps() -> None:
    rng, centres = _world(2)
    detector = _fitted(rng, centres, known=10)
    sizes = range(8, 28, 2)
    ordinary = np.concatenate([_draw(rng, centres, c, 60) for c in range(10)])
    novel = np.concatenate(
        [_draw(rng, centres, c, n) for c, n in zip(range(10, 20), sizes, strict=True)]
    )
    served = np.concatenate([ordinary, novel])
    truth = np.concatenate([np.full(600, -1), np.repeat(np.arange(10, 20), list(sizes))])
    whole = find_gaps(detector, served, merge_ratio=SEPARATE)
    assert len(_surfaced(whole, truth)) >= 8
    for limit in (60, 25):  # far fewer than the far inputs, so most are assigned
        sampled = find_gaps(detector, served, merge_ratio=SEPARATE, max_clustered=limit)
        assert _surfaced(sampled, truth) == _surfaced(whole, truth)
        assert len(sampled) == len(whole)
    with pytest.raises(InputError, match="`max_clustered` must be an int >= 2"):
        find_gaps(detector, served, max_clustered=1)


def test_the_window_tests_neighbour_search_is_reused_with_the_same_gaps() -> None:
    rng, centres = _world(5)
    reference = np.concatenate([_draw(rng, centres, c, 120) for c in range(6)])
    detector = UnseenInputDetector(metric="euclidean").fit(
        reference, np.repeat(np.arange(6), 120), confidence=np.full(720, 0.95)
    )
    served = np.concatenate(
        [_draw(rng, centres, c, 60) for c in range(6)] + [_draw(rng, centres, 9, 20)]
    )
    confidence = np.r_[np.full(360, 0.95), np.full(20, 0.4)]
    test = detector.test(served, confidence=confidence)
    assert test.distance is not None
    assert np.array_equal(test.unseen, detector.unseen(served, confidence=confidence))
    searched = find_gaps(detector, served, confidence=confidence)
    reused = find_gaps(detector, served, confidence=confidence, unseen=test)
    assert [g.rows for g in reused] == [g.rows for g in searched]
    assert len(reused) == 1
    assert min(reused[0].rows) >= 360
    with pytest.raises(InputError, match="`unseen` tested 380 inputs but `features` has"):
        find_gaps(detector, served[:100], confidence=confidence[:100], unseen=test)
    with pytest.raises(InputError, match="`unseen` must be the UnseenInputTest"):
        find_gaps(detector, served, confidence=confidence, unseen=test.distance)  # type: ignore[arg-type]


def test_candidates_are_the_inputs_beyond_the_references_candidate_quantile() -> None:
    rng, centres = _world(6)
    detector = _fitted(rng, centres, known=8)
    ordinary = np.concatenate([_draw(rng, centres, c, 80) for c in range(8)])
    # An unseen category next to a known one: only some of it is beyond the detector's cut.
    novel = centres[0] + 0.1 * (centres[12] - centres[0]) + rng.normal(scale=0.5, size=(10, DIM))
    served = np.concatenate([ordinary, novel])
    scores = detector.score(served)
    flagged = set(np.flatnonzero(scores > detector.threshold_))
    # The category is narrow beside the reference's spacing here: a wider ratio keeps its
    # few candidates at the detector's cut in one group.
    narrow = find_gaps(detector, served, candidate_rate=1e-9, merge_ratio=1.15)
    assert narrow
    assert all(set(gap.rows) <= flagged for gap in narrow)
    calibration = np.sort(detector.reference_distances_)
    cut = calibration[int(np.ceil((calibration.size + 1) * 0.85)) - 1]
    wide = find_gaps(detector, served, merge_ratio=1.15)  # candidate_rate=0.15
    assert wide
    assert all(scores[list(gap.rows)].min() > cut for gap in wide)
    assert all(min(gap.rows) >= 640 for gap in wide)


def test_merge_ratio_and_candidate_rate_are_checked() -> None:
    rng, centres = _world(7)
    detector = _fitted(rng, centres, known=3)
    served = _draw(rng, centres, 0, 10)
    with pytest.raises(InputError, match="merge_ratio"):
        find_gaps(detector, served, merge_ratio=0.0)
    with pytest.raises(InputError, match="candidate_rate"):
        find_gaps(detector, served, candidate_rate=1.0)


def test_a_detector_fitted_without_categories_finds_the_gap() -> None:
    rng, centres = _world(8)
    reference = np.concatenate([_draw(rng, centres, c, 120) for c in range(3)])
    detector = UnseenInputDetector(metric="euclidean").fit(reference)
    served = np.concatenate([_draw(rng, centres, 0, 50), _draw(rng, centres, 9, 20)])
    gaps = find_gaps(detector, served)
    assert [gap.size for gap in gaps] == [20]
    assert min(gaps[0].rows) >= 50


def test_an_unseen_category_is_one_gap_with_a_thin_and_a_dense_index() -> None:
    """Training inputs in the index bring the reference's edge nearer; an unseen category
    is one gap with either index at the same ratio."""
    rng, centres = _world(9)
    labels = np.repeat(np.arange(6), 100)
    reference = np.concatenate([_draw(rng, centres, c, 100) for c in range(6)])
    training = np.concatenate([_draw(rng, centres, c, 600) for c in range(6)])
    thin = UnseenInputDetector(metric="euclidean").fit(reference, labels)
    dense = UnseenInputDetector(metric="euclidean").fit(
        reference, labels, neighbour_features=training
    )
    assert dense.distance_threshold_ < 0.9 * thin.distance_threshold_
    served = np.concatenate(
        [_draw(rng, centres, c, 60) for c in range(6)] + [_draw(rng, centres, 9, 30)]
    )
    for detector in (thin, dense):
        gaps = find_gaps(detector, served, merge_ratio=SEPARATE)
        assert [gap.size for gap in gaps] == [30]
        assert min(gaps[0].rows) >= 360
