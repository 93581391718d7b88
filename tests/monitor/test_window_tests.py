"""One window's tests, with a detector fitted with the reference's confidences."""

from __future__ import annotations

import numpy as np

from failwise.monitor import Reference, UnseenInputDetector, WindowData, analyse_window


def _window(features: np.ndarray, confidence: np.ndarray) -> WindowData:
    n = features.shape[0]
    return WindowData(
        task_ids=np.array([f"t{i}" for i in range(n)], dtype=object),
        created_at=np.arange(n, dtype=np.float64),
        action=np.array(["answer"] * n, dtype=object),
        label=np.zeros(n),
        confidence=confidence,
        predicted=np.zeros(n),
        ood_score=np.full(n, np.nan),
        audit_label=np.full(n, np.nan),
        audited=np.zeros(n, dtype=bool),
        corrected=np.zeros(n, dtype=bool),
        feature_rows=np.arange(n, dtype=np.intp),
        features=features.astype(np.float32),
    )


def test_a_detector_fitted_with_confidences_tests_only_inputs_with_a_confidence() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 6))
    confidence = rng.uniform(0.7, 1.0, 600)
    reference = Reference(
        confidence=confidence, predicted=np.zeros(600, dtype=int), features=features
    )
    labels = rng.integers(0, 3, 600)
    detector = UnseenInputDetector(metric="euclidean").fit(features, labels, confidence=confidence)
    served = rng.normal(size=(200, 6))
    doubtful = np.full(200, 0.05)  # the least confidence: beyond the reference by doubt
    doubtful[::10] = np.nan  # no model score recorded
    stats, findings = analyse_window(
        _window(served, doubtful), reference, detector, level=0.05, n_permutations=50
    )
    unseen = next(t for t in stats["tests"] if t["name"] == "unseen_inputs")
    assert unseen["n_inputs"] == 180
    assert unseen["rejected"]
    assert any(
        "20 of 200 inputs with features have no model confidence" in n for n in stats["notes"]
    )
    assert "unseen_inputs" in {f["kind"] for f in findings}
    nothing = np.full(200, np.nan)
    stats, _ = analyse_window(
        _window(served, nothing), reference, detector, level=0.05, n_permutations=50
    )
    assert "unseen_inputs" not in {t["name"] for t in stats["tests"]}


def test_a_gap_detector_finds_the_blind_spots_of_an_alerting_window() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=4.0, size=(5, 6))
    labels = rng.integers(0, 4, 800)
    features = centres[labels] + rng.normal(scale=0.5, size=(800, 6))
    confidence = rng.uniform(0.7, 1.0, 800)
    reference = Reference(confidence=confidence, predicted=labels, features=features)
    test_detector = UnseenInputDetector(metric="euclidean").fit(features, labels)
    gap_detector = UnseenInputDetector(metric="euclidean", calibration="split").fit(
        features, labels, confidence=confidence
    )
    served = np.concatenate(
        [
            centres[rng.integers(0, 4, 170)] + rng.normal(scale=0.5, size=(170, 6)),
            centres[4] + rng.normal(scale=0.5, size=(30, 6)),  # a category nobody evaluated
        ]
    )
    served_confidence = np.concatenate([rng.uniform(0.7, 1.0, 170), np.full(30, 0.4)])
    served_confidence[0] = np.nan  # no model score: left out of the gap detector's search
    stats, findings = analyse_window(
        _window(served, served_confidence),
        reference,
        test_detector,
        level=0.05,
        n_permutations=50,
        gap_detector=gap_detector,
    )
    unseen = next(t for t in stats["tests"] if t["name"] == "unseen_inputs")
    assert unseen["rejected"]
    assert unseen["n_inputs"] == 200  # the test scores positions: every input
    spots = [f for f in findings if f["kind"] == "blind_spot"]
    assert spots
    members = {int(t[1:]) for spot in spots for t in spot["statistics"]["task_ids"]}
    assert members
    assert all(m >= 170 for m in members)


def test_a_reference_the_policy_answered_nothing_of_is_compared_over_all_its_rows() -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 4))
    confidence = rng.uniform(0.6, 1.0, 300)
    correct = rng.uniform(size=300) < confidence
    reference = Reference(
        confidence=confidence,
        predicted=np.zeros(300, dtype=int),
        features=features,
        action=["escalate"] * 300,
        correct=correct,
    )
    detector = UnseenInputDetector(metric="euclidean").fit(features)
    stats, _ = analyse_window(
        _window(rng.normal(size=(120, 4)), rng.uniform(0.6, 1.0, 120)),
        reference,
        detector,
        level=0.05,
        n_permutations=50,
    )
    assert stats["reference_accuracy"] == float(correct.mean())
    assert any("answered none of the reference's rows" in n for n in stats["notes"])
