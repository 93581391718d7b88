"""One window against the reference: the estimate, every test, one multiplicity correction.

:func:`analyse_window` runs, on one window's tasks,

* the label-free accuracy estimate among automatic answers with its audit correction
  (:func:`~failwise.monitor.estimate_accuracy`; a *calibration-broken* test when the
  window has audited answers);
* two-sample tests against the reference: calibrated confidence and out-of-scope score
  (Kolmogorov–Smirnov against the reference re-weighted to the window's predicted-label
  mix, so that a prior shift is the label-mix test's finding and not a failure, with a
  bound on the reference's own sampling error, :func:`~failwise.monitor.ks_drift`),
  predicted-label and action mixes (chi-square with sparse categories pooled), input
  features (MMD permutation test) and the unseen-input rate
  (:class:`~failwise.monitor.UnseenInputDetector`: the distance to the reference and its
  neighbour rows, and the recorded confidence when the detector was fitted with
  confidences);

and combines all their p-values with Holm's procedure at the window's level, so a window
with no real change raises any finding with probability at most that level.

Monitors that mean *failure* — a confidence shift, an out-of-scope score shift, unseen
inputs, a broken estimate — become ``alert`` findings; monitors that mean *change* — the
label mix, the action mix, the input distribution — become ``change`` findings with their
estimated accuracy impact. When the unseen-input test alerts, the unseen inputs are
clustered (:func:`~failwise.monitor.find_gaps`, with ``gap_detector`` when given: the
gap finder was tuned on a detector fitted with the reference's confidences and a split
calibration, which the window test's detector need not be) and every cluster is a ``blind_spot``
alert with its examples, centre and radius (what a quarantine needs): the farthest member
from the centre, and at least the reach of an evaluated category (:func:`category_radius`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from failwise.monitor._drift import (
    REFERENCE_CONFIDENCE,
    DriftTest,
    holm,
    ks_drift,
    mix_drift,
)
from failwise.monitor._estimate import estimate_accuracy
from failwise.monitor._gaps import find_gaps
from failwise.monitor._mmd import mmd_drift
from failwise.monitor._quarantine import far_inputs
from failwise.monitor._reference import Reference
from failwise.monitor._unseen import UnseenInputDetector, UnseenInputTest

__all__ = ["FAILURE_KINDS", "FINDING_KINDS", "WindowData", "analyse_window", "category_radius"]

#: Test name → (finding kind, severity).
FINDING_KINDS: Final = {
    "confidence": ("confidence_shift", "alert"),
    "ood_score": ("ood_score_shift", "alert"),
    "unseen_inputs": ("unseen_inputs", "alert"),
    "calibration": ("calibration_broken", "alert"),
    "predicted_label": ("label_mix_change", "change"),
    "action": ("action_mix_change", "change"),
    "features": ("input_drift", "change"),
}
FAILURE_KINDS: Final = frozenset(k for k, s in FINDING_KINDS.values() if s == "alert") | {
    "blind_spot"
}

#: Fewest tasks with a value for a two-sample test to run.
MIN_TESTED: Final = 5
#: Examples kept per finding.
N_EXAMPLES: Final = 5


@dataclass(frozen=True)
class WindowData:
    """One window's tasks as columns (from the store's monitor rows) and their features."""

    task_ids: NDArray[Any]
    created_at: NDArray[np.float64]
    action: NDArray[Any]
    label: NDArray[np.float64]
    confidence: NDArray[np.float64]
    predicted: NDArray[np.float64]
    ood_score: NDArray[np.float64]
    audit_label: NDArray[np.float64]
    audited: NDArray[np.bool_]
    corrected: NDArray[np.bool_]
    feature_rows: NDArray[np.intp]
    features: NDArray[np.float32] | None

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Sequence[Any]],
        feature_ids: Sequence[str] = (),
        features: NDArray[np.float32] | None = None,
    ) -> WindowData:
        def floats(i: int) -> NDArray[np.float64]:
            return np.array([math.nan if r[i] is None else float(r[i]) for r in rows])

        ids = np.array([str(r[0]) for r in rows], dtype=object)
        position = {t: i for i, t in enumerate(ids)}
        feature_rows = np.array([position[t] for t in feature_ids], dtype=np.intp)
        return cls(
            task_ids=ids,
            created_at=floats(1),
            action=np.array([str(r[2]) for r in rows], dtype=object),
            label=floats(3),
            confidence=floats(4),
            predicted=floats(5),
            ood_score=floats(6),
            audit_label=floats(7),
            audited=np.array([bool(r[8]) for r in rows], dtype=bool),
            corrected=np.array([bool(r[9]) for r in rows], dtype=bool),
            feature_rows=feature_rows,
            features=features if features is not None and len(feature_ids) else None,
        )

    @property
    def n(self) -> int:
        return int(self.task_ids.shape[0])


def _test_dict(test: DriftTest) -> dict[str, Any]:
    out = test.to_dict()
    detail = dict(out.pop("detail"))
    detail.pop("shares", None)  # per-category shares are summarised below, not stored
    out["detail"] = detail
    return out


def _mix_impact(
    reference: Reference, predicted: NDArray[np.float64], answered: NDArray[np.bool_]
) -> float | None:
    """Expected accuracy among answers under the window's label mix minus the reference's."""
    by_label = reference.answer_accuracy_by_label()
    if not by_label:
        return None
    mean = float(np.mean(list(by_label.values())))
    ref_answered = (
        np.ones(reference.n, dtype=bool)
        if reference.action is None
        else reference.action == "answer"
    )
    ref_labels = reference.predicted[ref_answered]
    win_labels = predicted[answered & np.isfinite(predicted)].astype(np.int64)
    if ref_labels.size == 0 or win_labels.size == 0:
        return None
    before = float(np.mean([by_label.get(int(c), mean) for c in ref_labels]))
    after = float(np.mean([by_label.get(int(c), mean) for c in win_labels]))
    return after - before


def category_radius(reference: Reference, quantile: float = 0.9) -> float | None:
    """How far an evaluated category reaches: the median over the reference's predicted
    labels of the ``quantile`` distance of its inputs to their centre (cosine: ``1 - cos``).

    A quarantine zone is at least this wide, so that it covers the category a blind spot's
    first few inputs come from rather than only those inputs.
    """
    if reference.features is None:
        return None
    points = reference.features.astype(np.float64)
    if reference.feature_metric == "cosine":
        points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    radii = []
    for label in np.unique(reference.predicted):
        members = points[reference.predicted == label]
        if members.shape[0] < 5:
            continue
        centre = members.mean(axis=0)
        if reference.feature_metric == "cosine":
            centre = centre / max(float(np.linalg.norm(centre)), 1e-12)
            distance = 1.0 - members @ centre
        else:
            distance = np.linalg.norm(members - centre, axis=1)
        radii.append(float(np.quantile(distance, quantile)))
    return float(np.median(radii)) if radii else None


def analyse_window(
    data: WindowData,
    reference: Reference,
    detector: UnseenInputDetector | None,
    *,
    level: float,
    n_permutations: int = 200,
    random_state: int = 0,
    min_gap_size: int = 5,
    example: Callable[[str], Any] = str,
    zone_radius: float | None = None,
    gap_detector: UnseenInputDetector | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Statistics and findings of one window; see the module notes.

    ``detector`` runs the unseen-input test; ``gap_detector`` (default: ``detector``)
    finds the blind spots when that test alerts.

    Returns
    -------
    stats : dict
        JSON-able: ``n_tasks``, ``action_mix``, ``estimate``, ``tests`` (each with its
        p-value and whether Holm rejected it), ``level`` and ``notes``.
    findings : list of dict
        ``kind``, ``severity``, ``statistics`` and ``examples`` of each finding.
    """
    notes: list[str] = []
    scored = np.isfinite(data.confidence)
    answered = (data.action == "answer") & scored
    kinds, counts = np.unique(data.action.astype(str), return_counts=True)
    action_mix = {str(k): int(c) / data.n for k, c in zip(kinds, counts, strict=True)}

    # --- the label-free estimate and its audit check
    audited = answered & data.audited & np.isfinite(data.audit_label)
    audit_correct = data.audit_label[audited] == data.label[audited]
    estimate = estimate_accuracy(
        data.confidence[answered],
        audit_confidence=data.confidence[audited] if audited.any() else None,
        audit_correct=audit_correct if audited.any() else None,
        alpha=min(level, 0.5),
    )
    notes.extend(estimate.notes)
    ref_answered = (
        np.ones(reference.n, dtype=bool)
        if reference.action is None
        else reference.action == "answer"
    )
    if not ref_answered.any():
        # A policy that certified nothing answers no reference row: the accuracy among
        # answers is then read over every reference row.
        ref_answered = np.ones(reference.n, dtype=bool)
        notes.append(
            "The policy answered none of the reference's rows, so the reference accuracy "
            "the estimates are compared with is over all of them."
        )
    if reference.correct is not None:
        reference_accuracy = float(reference.correct[ref_answered].mean())
    else:
        reference_accuracy = float(reference.confidence[ref_answered].mean())

    # --- the tests
    tests: list[tuple[str, float, dict[str, Any]]] = []
    if int(scored.sum()) >= MIN_TESTED:
        predicted = data.predicted[scored].astype(np.int64)
        test = ks_drift(
            reference.confidence,
            data.confidence[scored],
            name="confidence",
            reference_groups=reference.predicted,
            window_groups=predicted,
            reference_confidence=REFERENCE_CONFIDENCE,
        )
        tests.append(("confidence", test.p_value, _test_dict(test)))
        test = mix_drift(reference.predicted, predicted, name="predicted_label")
        tests.append(("predicted_label", test.p_value, _test_dict(test)))
    else:
        notes.append(
            f"only {int(scored.sum())} tasks with model scores: the confidence and label-mix "
            f"tests need at least {MIN_TESTED}"
        )
    with_ood = np.isfinite(data.ood_score) & scored
    if reference.ood_score is not None and int(with_ood.sum()) >= MIN_TESTED:
        test = ks_drift(
            reference.ood_score,
            data.ood_score[with_ood],
            name="ood_score",
            reference_groups=reference.predicted,
            window_groups=data.predicted[with_ood].astype(np.int64),
            reference_confidence=REFERENCE_CONFIDENCE,
        )
        tests.append(("ood_score", test.p_value, _test_dict(test)))
    if reference.action is not None and data.n >= MIN_TESTED:
        test = mix_drift(reference.action, data.action.astype(str), name="action")
        tests.append(("action", test.p_value, _test_dict(test)))
    if estimate.calibration_p_value is not None:
        tests.append(
            (
                "calibration",
                float(estimate.calibration_p_value),
                {
                    "name": "calibration",
                    "method": "poisson-binomial",
                    "p_value": float(estimate.calibration_p_value),
                    "n_audited": estimate.n_audited,
                    "audited_accuracy": estimate.audited_accuracy,
                    "estimate": estimate.estimate,
                },
            )
        )
    unseen = None
    tested = np.zeros(0, dtype=bool)
    features = data.features
    if reference.features is None:
        pass
    elif features is None or features.shape[0] < 2:
        notes.append(
            "no recorded features in this window: input drift, unseen inputs and blind spots "
            "need Guard(features=...) with the reference's feature function"
        )
    elif features.shape[1] != reference.features.shape[1]:
        notes.append(
            f"the recorded features have {features.shape[1]} dimensions but the reference "
            f"{reference.features.shape[1]}: input drift, unseen inputs and blind spots are not "
            "tested (use the same feature function for both)"
        )
        features = None
    else:
        test = mmd_drift(
            reference.features.astype(np.float64),
            features.astype(np.float64),
            n_permutations=n_permutations,
            random_state=random_state,
        )
        tests.append(("features", test.p_value, _test_dict(test)))
        if detector is not None:
            unseen, tested = _unseen_test(data, features, detector, notes)
            if unseen is not None:
                tests.append(
                    (
                        "unseen_inputs",
                        unseen.p_value,
                        {"name": "unseen_inputs", **unseen.to_dict()},
                    )
                )

    rejected = holm([p for _, p, _ in tests], level) if tests else np.zeros(0, dtype=bool)
    stats_tests = []
    findings: list[dict[str, Any]] = []
    for (name, p_value, detail), reject in zip(tests, rejected, strict=True):
        stats_tests.append({**detail, "p_value": p_value, "rejected": bool(reject)})
        if not reject:
            continue
        kind, severity = FINDING_KINDS[name]
        statistics: dict[str, Any] = {**detail, "level": level}
        if name == "unseen_inputs" and unseen is not None and detector is not None:
            statistics["far_inputs"] = far_inputs(data, unseen)
            statistics["metric"] = detector.metric
        if severity == "change":
            impact = (
                _mix_impact(reference, data.predicted, answered)
                if name == "predicted_label"
                else (
                    None
                    if math.isnan(estimate.estimate)
                    else estimate.estimate - reference_accuracy
                )
            )
            statistics["estimated_accuracy_impact"] = impact
        findings.append(
            {
                "kind": kind,
                "severity": severity,
                "statistics": statistics,
                "examples": _examples(name, data, unseen, audited, audit_correct, example),
            }
        )
    if unseen is not None and features is not None and bool(rejected[-1]) and detector is not None:
        if gap_detector is not None and gap_detector is not detector:
            # Its own search: the test's distances are to the test detector's index.
            tested = np.ones(features.shape[0], dtype=bool)
            if gap_detector.uses_confidence_:
                tested = np.isfinite(data.confidence[data.feature_rows])
            unseen_for_gaps = None
        else:
            gap_detector, unseen_for_gaps = detector, unseen
        findings.extend(
            _blind_spots(
                data,
                features,
                tested,
                unseen_for_gaps,
                gap_detector,
                level,
                min_gap_size,
                example,
                zone_radius,
            )
        )
    stats = {
        "n_tasks": data.n,
        "n_answers": int(answered.sum()),
        "n_audited": int(audited.sum()),
        "n_with_features": 0 if features is None else int(features.shape[0]),
        "action_mix": action_mix,
        "estimate": estimate.to_dict(),
        "reference_accuracy": reference_accuracy,
        "tests": stats_tests,
        "level": level,
        "notes": notes,
    }
    return stats, findings


def _unseen_test(
    data: WindowData,
    features: NDArray[np.float32],
    detector: UnseenInputDetector,
    notes: list[str],
) -> tuple[UnseenInputTest | None, NDArray[np.bool_]]:
    """The unseen-input test of the window's recorded features (and confidences).

    A detector fitted with the reference's confidences scores each input by its distance
    *and* its recorded calibrated confidence, so only inputs with a confidence are tested;
    the returned mask says which (over the feature rows), and the test's per-input flags
    are spread back over all feature rows (untested rows are not flagged).
    """
    n_rows = int(features.shape[0])
    if not detector.uses_confidence_:
        return detector.test(features.astype(np.float64)), np.ones(n_rows, dtype=bool)
    confidence = data.confidence[data.feature_rows]
    tested = np.isfinite(confidence)
    n_tested = int(tested.sum())
    if n_tested < n_rows:
        notes.append(
            f"{n_rows - n_tested} of {n_rows} inputs with features have no model confidence "
            "(no model score recorded): the unseen-input test leaves them out"
        )
    if n_tested == 0:
        return None, tested
    result = detector.test(features[tested].astype(np.float64), confidence=confidence[tested])
    flags = np.zeros(n_rows, dtype=bool)
    flags[tested] = result.unseen
    far = np.zeros(n_rows, dtype=bool)
    far[tested] = result.far if result.far is not None else False
    distance = np.full(n_rows, np.nan)
    distance[tested] = result.distance if result.distance is not None else np.nan
    return replace(result, unseen=flags, far=far, distance=distance), tested


def _examples(
    name: str,
    data: WindowData,
    unseen: Any,
    audited: NDArray[np.bool_],
    audit_correct: NDArray[np.bool_],
    example: Callable[[str], Any],
) -> list[Any]:
    """A few tasks that show the finding: the most unusual, or the ones it is about."""
    if name == "unseen_inputs" and unseen is not None:
        rows = data.feature_rows[np.flatnonzero(unseen.unseen)][:N_EXAMPLES]
    elif name == "calibration":
        rows = np.flatnonzero(audited)[~audit_correct][:N_EXAMPLES]
    elif name in ("confidence", "predicted_label"):
        confidence = np.where(np.isfinite(data.confidence), data.confidence, np.inf)
        rows = np.argsort(confidence, kind="stable")[:N_EXAMPLES]
    else:
        rows = np.arange(min(N_EXAMPLES, data.n))
    return [example(str(data.task_ids[int(r)])) for r in rows]


def _blind_spots(
    data: WindowData,
    features: NDArray[np.float32],
    tested: NDArray[np.bool_],
    unseen: UnseenInputTest | None,
    detector: UnseenInputDetector,
    level: float,
    min_size: int,
    example: Callable[[str], Any],
    zone_radius: float | None,
) -> list[dict[str, Any]]:
    rows = data.feature_rows[tested]
    features = features[tested]
    audit = np.where(data.audited & np.isfinite(data.audit_label), 0.0, np.nan)
    audit[data.audited & (data.audit_label == data.label)] = 1.0
    gaps = find_gaps(
        detector,
        features.astype(np.float64),
        confidence=np.nan_to_num(data.confidence[rows], nan=0.0),
        action=data.action[rows].astype(str),
        audit_correct=audit[rows],
        corrected=data.corrected[rows],
        timestamps=data.created_at[rows],
        min_size=min_size,
        unseen=None
        if unseen is None
        else replace(
            unseen,
            unseen=unseen.unseen[tested],
            distance=None if unseen.distance is None else unseen.distance[tested],
            far=None if unseen.far is None else unseen.far[tested],
        ),
    )
    out = []
    for gap in gaps:
        members = np.asarray(gap.rows, dtype=np.intp)
        points = detector._prepare(features[members].astype(np.float64), "features")
        centre = np.asarray(gap.centroid, dtype=np.float64)
        if detector.metric == "cosine":
            centre = centre / max(float(np.linalg.norm(centre)), np.finfo(float).tiny)
            distance = 1.0 - points @ centre
        else:
            distance = np.linalg.norm(points - centre, axis=1)
        statistics = gap.to_dict()
        statistics.pop("rows")
        statistics.pop("examples")
        statistics.update(
            {
                "task_ids": [str(data.task_ids[rows[int(m)]]) for m in members],
                "centre": [round(float(v), 6) for v in centre],
                "radius": max(float(np.max(distance)) * 1.05 + 1e-6, zone_radius or 0.0),
                "metric": detector.metric,
                "level": level,
            }
        )
        shown = [int(e) for e in gap.examples]
        out.append(
            {
                "kind": "blind_spot",
                "severity": "alert",
                "statistics": statistics,
                "examples": [example(str(data.task_ids[rows[r]])) for r in shown],
            }
        )
    return out
