"""One evaluation, shared by `failwise demo`, `failwise evaluate` and notebooks.

For each model: calibrate on the validation rows, fit the decision ladder on them, decide on
the test rows, and project product metrics; then rank the models by the tasks they complete.
Thresholds never see the test rows.

**Why the calibrator and the risk certificate may share rows.** The certificate
(:class:`~failwise.policy.RiskThreshold`) tests a sequence of thresholds fixed before the
labels it tests are seen, on a score whose order over the rows must not depend on those
labels. Temperature scaling fits one number T from the labels, so a threshold on the
calibrated top-label probability would be a threshold on a label-dependent order: T
reorders rows by max softmax(z / T). It does not reorder them by the top-two log-odds,
log p₁ − log p₂ = (z₁ − z₂) / T, which is the raw logit margin divided by the same T for
every row; the top label, and so whether each answer is right, does not depend on T either.
With ``answer_score="log_odds"`` the rows the policy answers at any threshold are the rows
above a cut of the raw margin, the certificate's path of (answered, wrong) counts is that of
the raw margins, and the certificate is the one it would be with no calibrator at all: exact,
with T fitted on every row. Only the threshold's value is reported on the calibrated scale.
Calibrators that reorder rows by the margin (vector scaling, isotonic regression, histogram
binning) would break this and need the ``"split"`` design.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from failwise._validation import (
    check_consistent_length,
    check_labels,
    check_scores,
    describe,
)
from failwise.calibration import TemperatureScaling, cross_fit_calibrate
from failwise.evaluation._summary import (
    AutomationSummary,
    FrontierRow,
    frontier_rows,
    summarise_automation,
)
from failwise.exceptions import InputError, UncertifiedWarning
from failwise.metrics import expected_calibration_error
from failwise.monitor import Reference
from failwise.outcomes import Comparison, OutcomeModel, ProductMetrics, compare
from failwise.policy import Decisions, Policy, always_answer

__all__ = [
    "MAX_NEIGHBOUR_ROWS",
    "EvaluationResult",
    "ModelEvaluation",
    "ModelScores",
    "evaluate_scores",
]


@dataclass(frozen=True)
class ModelScores:
    """A model's raw scores on validation and test inputs.

    Attributes
    ----------
    name : str
    val, test : ndarray of shape (n_val, n_classes), (n_test, n_classes)
        Logits or probabilities, as ``kind`` says.
    kind : {"logits", "probabilities"}
    val_ood, test_ood : ndarray of shape (n,), optional
        Out-of-scope scores (higher = more likely out of scope).
    val_fallback, test_fallback : ndarray of shape (n,), optional
        The deterministic fallback's label per row (-2 = no opinion).
    description : str
        One line on how the model was built, for reports.
    val_features : ndarray of shape (n_val, n_features), optional
        The validation inputs' features (embeddings, projected TF-IDF rows): the reference
        the monitor compares served traffic with (:class:`failwise.monitor.Reference`).
    train_features : ndarray of shape (n_train, n_features), optional
        The training inputs' features: saved with the reference as its neighbour rows (at
        most :data:`MAX_NEIGHBOUR_ROWS`, a seeded sample), which make the unseen-input
        test more sensitive. Needs ``val_features``.
    feature_metric : {"cosine", "euclidean"}, default="cosine"
    feature_source : str, optional
        How the features are computed, for whoever serves the policy with
        ``Guard(features=...)``.
    """

    name: str
    val: NDArray[Any]
    test: NDArray[Any]
    kind: Literal["logits", "probabilities"] = "logits"
    val_ood: NDArray[Any] | None = None
    test_ood: NDArray[Any] | None = None
    val_fallback: NDArray[Any] | None = None
    test_fallback: NDArray[Any] | None = None
    description: str = ""
    val_features: NDArray[Any] | None = None
    train_features: NDArray[Any] | None = None
    feature_metric: str = "cosine"
    feature_source: str | None = None


#: Most training rows saved as the reference's neighbour rows (about 15 MB of float16 at
#: 384 features); more are sampled down with the evaluation's seed.
MAX_NEIGHBOUR_ROWS: Final = 20_000


@dataclass(frozen=True)
class ModelEvaluation:
    """Everything measured for one model on the test rows."""

    name: str
    description: str
    calibrator: TemperatureScaling
    policy: Policy
    proba_uncalibrated: NDArray[np.float64]
    proba: NDArray[np.float64]
    decisions: Decisions
    #: Top-label accuracy over every test row (out-of-scope rows count as wrong).
    accuracy: float
    #: Top-label accuracy over the in-scope test rows: the number an offline evaluation reports.
    in_scope_accuracy: float
    ece_before: float
    ece_after: float
    metrics: ProductMetrics
    oos_recall: float | None = None
    larson_in_scope_accuracy: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: What the ladder automates on the test rows, with the headline sentence.
    automation: AutomationSummary | None = None
    #: What the validation data certifies at other targets (empty when the policy has none).
    frontier: list[FrontierRow] = field(default_factory=list)
    #: What the policy was fitted on, for the monitor (saved beside the policy).
    reference: Reference | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary: accuracy, Larson et al. numbers, every product metric."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "accuracy": self.in_scope_accuracy,
            "accuracy_all_test_rows": self.accuracy,
            "ece_before_calibration": self.ece_before,
            "ece_after_calibration": self.ece_after,
            "temperature": float(self.calibrator.temperature_),
            "policy": {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in self.policy.describe().items()
            },
            "action_rates": {a.value: r for a, r in self.decisions.rates().items()},
        }
        if self.oos_recall is not None:
            out["in_scope_accuracy"] = self.larson_in_scope_accuracy
            out["oos_recall"] = self.oos_recall
        out.update(self.metrics.to_dict())
        if self.automation is not None:
            out["automation"] = self.automation.to_dict()
        out["frontier"] = [row.to_dict() for row in self.frontier]
        out.update(self.extras)
        return out


@dataclass(frozen=True)
class EvaluationResult:
    """Per-model evaluations and the ranking by task completion."""

    models: list[ModelEvaluation]
    comparison: Comparison
    outcome_model: OutcomeModel
    y_test: NDArray[np.intp]
    baselines: dict[str, ProductMetrics] = field(default_factory=dict)
    #: Published reference rows (name, in-scope accuracy %, OOS recall %) shown beside ours.
    published: list[tuple[str, float, float]] = field(default_factory=list)

    def headlines(self) -> list[str]:
        """One sentence per model, best first: what it automates (or that it automates nothing)."""
        by_name = {m.name: m for m in self.models}
        return [
            by_name[row.name].automation.headline  # type: ignore[union-attr]
            for row in self.comparison.rows
            if by_name[row.name].automation is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary of the whole evaluation."""
        return {
            "headline": self.headlines(),
            "models": [m.summary() for m in self.models],
            "baselines_always_answer": {k: v.to_dict() for k, v in self.baselines.items()},
            "ranking": [row.name for row in self.comparison.rows],
            "outcome_model": self.outcome_model.to_dict(),
            "n_test": int(self.y_test.shape[0]),
            "published": [
                {"name": n, "in_scope_accuracy": a / 100, "oos_recall": r / 100}
                for n, a, r in self.published
            ],
        }


def _split_validation(
    y_val: NDArray[np.intp], share: float, rng: np.random.Generator
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Stratified split of the validation rows into a calibration part and a policy part."""
    calib, rest = [], []
    for label in np.unique(y_val):
        rows = rng.permutation(np.flatnonzero(y_val == label))
        cut = round(rows.size * share) if label >= 0 else 0
        calib.append(rows[:cut])
        rest.append(rows[cut:])
    return np.sort(np.concatenate(calib)), np.sort(np.concatenate(rest))


def evaluate_scores(
    models: Sequence[ModelScores],
    y_val: Any,
    y_test: Any,
    *,
    policy: Policy | None = None,
    outcome_model: OutcomeModel | None = None,
    calibration_share: float = 0.3,
    n_bootstrap: int = 200,
    random_state: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    calibration: str = "all",
) -> EvaluationResult:
    """Calibrate, fit the ladder, decide and project product metrics for several models.

    Parameters
    ----------
    models : sequence of ModelScores
    y_val, y_test : array-like of int
        True labels of the validation and test rows; ``-1`` marks out-of-scope inputs.
        Out-of-scope validation rows go to the policy part (the calibrator needs in-scope
        labels).
    policy : Policy, optional
        Template whose parameters every model's ladder is fitted with (default ``Policy()``).
    outcome_model : OutcomeModel, optional
    calibration_share : float, default=0.3
        With ``calibration="split"``: share of in-scope validation rows used to fit the
        calibrator (temperature scaling has one parameter and needs few rows); the rest fit
        the policy, so the risk certificate holds on data the calibrator has not seen.
    n_bootstrap : int, default=200
    random_state : int, default=0
    progress : callable, optional
        Called as ``progress(done, total, step)`` before each step (fitting a model, the
        bootstrap of the metrics) and once at the end with ``done == total``.
    calibration : {"all", "split", "cross_fit"}, default="all"
        ``"all"``: temperature scaling is fitted on every in-scope validation row and the
        policy on every validation row, answering by the calibrated top-two log-odds
        (``answer_score="log_odds"``, set on the policy whatever the template says). The
        risk certificate stays exact (module notes): the order it tests does not depend on
        the temperature. The clarify rung's prediction sets are then fitted on rows the
        temperature saw, so their coverage is nominal rather than exact (one fitted
        parameter). ``"split"``: the calibrator and the policy get disjoint rows
        (``calibration_share``); the policy answers by the template's ``answer_score``.
        ``"cross_fit"``: every validation row fits the policy, with out-of-fold
        probabilities from :func:`failwise.calibration.cross_fit_calibrate` (5 folds); the
        certificate is then approximate (see that function's notes).

    Returns
    -------
    EvaluationResult
    """
    if not models:
        raise InputError("evaluate_scores needs at least one model; got none.")
    if not 0 < calibration_share < 1:
        raise InputError(f"`calibration_share` must lie in (0, 1); got {calibration_share!r}.")
    yv = check_labels(y_val, "y_val", allow_out_of_scope=True)
    yt = check_labels(y_test, "y_test", allow_out_of_scope=True)
    template = policy if policy is not None else Policy()
    outcome = outcome_model if outcome_model is not None else OutcomeModel()
    rng = np.random.default_rng(random_state)
    calib_rows, policy_rows = _split_validation(yv, calibration_share, rng)
    if calibration not in ("all", "split", "cross_fit"):
        raise InputError(
            f"`calibration` must be 'all', 'split' or 'cross_fit'; got {calibration!r}."
        )
    params = template.get_params()
    if calibration != "split":
        calib_rows, policy_rows = np.flatnonzero(yv >= 0), np.arange(yv.size)
    if calibration == "all":
        params["answer_score"] = "log_odds"

    evaluations: list[ModelEvaluation] = []
    entries: dict[str, Any] = {}
    baselines: dict[str, ProductMetrics] = {}
    in_scope = yt >= 0
    total = 2 * len(models) + 1
    report = progress if progress is not None else (lambda done, total, step: None)
    for done, scores in enumerate(models):
        report(done, total, f"calibrating and fitting the ladder of {scores.name}")
        val = check_scores(scores.val, f"{scores.name}: val scores")
        test = check_scores(scores.test, f"{scores.name}: test scores")
        check_consistent_length(**{"val scores": val, "y_val": yv})
        check_consistent_length(**{"test scores": test, "y_test": yt})
        calibrator = TemperatureScaling(from_probabilities=scores.kind == "probabilities")
        if calibration == "cross_fit":
            out_of_fold, calibrator = cross_fit_calibrate(
                calibrator, val[calib_rows], yv[calib_rows], random_state=random_state
            )
            proba_val = calibrator.predict_proba(val)  # out-of-scope rows: never fitted on
            proba_val[calib_rows] = out_of_fold
        else:
            calibrator.fit(val[calib_rows], yv[calib_rows])
            proba_val = calibrator.predict_proba(val[policy_rows])  # all rows unless "split"
        proba_test = calibrator.predict_proba(test)
        raw_test = _as_probabilities(test, scores.kind)

        def pick(array: Any, rows: NDArray[np.intp] | None) -> Any:
            if array is None:
                return None
            arr = np.asarray(array)
            return arr if rows is None else arr[rows]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncertifiedWarning)
            fitted = Policy(**params).fit(
                proba_val,
                yv[policy_rows],
                ood_score=pick(scores.val_ood, policy_rows),
                fallback=pick(scores.val_fallback, policy_rows),
            )
        for warning in caught:  # say which model could not be certified
            message = f"{scores.name}: {warning.message}"
            warnings.warn(message, warning.category, stacklevel=2)
        extras = {
            k: v
            for k, v in (
                ("ood_score", pick(scores.test_ood, None)),
                ("fallback", pick(scores.test_fallback, None)),
            )
            if v is not None
        }
        decisions = fitted.decide(proba_test, **extras)
        entries[scores.name] = decisions
        predicted = decisions.predicted
        oos_recall = larson_acc = None
        if (~in_scope).any() and scores.test_ood is not None:
            flagged = np.asarray(scores.test_ood) > fitted.ood_threshold_
            oos_recall = float(flagged[~in_scope].mean())
            larson_acc = float(((predicted == yt) & ~flagged)[in_scope].mean())
        evaluations.append(
            ModelEvaluation(
                name=scores.name,
                description=scores.description,
                calibrator=calibrator,
                policy=fitted,
                proba_uncalibrated=raw_test,
                proba=proba_test,
                decisions=decisions,
                accuracy=float(np.mean(predicted == yt)),
                in_scope_accuracy=float(np.mean(predicted[in_scope] == yt[in_scope])),
                ece_before=expected_calibration_error(raw_test[in_scope], yt[in_scope]),
                ece_after=expected_calibration_error(proba_test[in_scope], yt[in_scope]),
                metrics=None,  # type: ignore[arg-type]  # filled from the comparison below
                oos_recall=oos_recall,
                larson_in_scope_accuracy=larson_acc,
                reference=Reference.from_policy(
                    fitted,
                    proba_val,
                    yv[policy_rows],
                    ood_score=pick(scores.val_ood, policy_rows),
                    fallback=pick(scores.val_fallback, policy_rows),
                    **_reference_features(scores, policy_rows, random_state),
                ),
            )
        )
    report(len(models), total, f"projecting product metrics ({n_bootstrap} bootstrap draws)")
    comparison = compare(entries, yt, outcome, n_bootstrap=n_bootstrap, random_state=random_state)
    by_name = {row.name: row.metrics for row in comparison.rows}
    evaluations = [_with_metrics(e, by_name[e.name], yt) for e in evaluations]
    for done, e in enumerate(evaluations, start=len(models) + 1):
        report(done, total, f"projecting {e.name} without the ladder")
        baseline = compare(
            {e.name: always_answer(e.proba)},
            yt,
            outcome,
            n_bootstrap=n_bootstrap,
            random_state=random_state,
        )
        baselines[e.name] = baseline.rows[0].metrics
    report(total, total, "done")
    return EvaluationResult(evaluations, comparison, outcome, yt, baselines)


def _reference_features(scores: ModelScores, rows: NDArray[np.intp], seed: int) -> dict[str, Any]:
    """The reference's features and neighbour rows of one model (empty without features).

    Neighbour rows that repeat a reference row (the same input in training and validation)
    are dropped, since a repeat would lower the unseen-input test's cut; beyond
    :data:`MAX_NEIGHBOUR_ROWS` a seeded sample is kept.
    """
    if scores.val_features is None:
        if scores.train_features is not None:
            raise InputError(
                f"{scores.name}: `train_features` needs `val_features` (the reference's own "
                "features); pass both or neither."
            )
        return {}
    features = np.asarray(scores.val_features)
    if features.ndim != 2 or features.shape[0] != scores.val.shape[0]:
        raise InputError(
            f"{scores.name}: `val_features` must have one row per validation input "
            f"({scores.val.shape[0]}); got {describe(scores.val_features)}."
        )
    features = features[rows]
    out: dict[str, Any] = {
        "features": features,
        "feature_metric": scores.feature_metric,
        "feature_source": scores.feature_source,
    }
    if scores.train_features is not None:
        train = np.asarray(scores.train_features)
        if train.ndim == 2 and train.shape[1] == features.shape[1]:
            seen = {row.tobytes() for row in features.astype(np.float16)}
            half = train.astype(np.float16)
            train = train[[i for i, row in enumerate(half) if row.tobytes() not in seen]]
            if train.shape[0] > MAX_NEIGHBOUR_ROWS:
                picked = np.random.default_rng(seed).choice(
                    train.shape[0], MAX_NEIGHBOUR_ROWS, replace=False
                )
                train = train[np.sort(picked)]
        out["neighbour_features"] = train  # a wrong shape is named by the Reference
    return out


def _with_metrics(
    evaluation: ModelEvaluation, metrics: ProductMetrics, y_test: NDArray[np.intp]
) -> ModelEvaluation:
    automation = summarise_automation(
        evaluation.name,
        evaluation.decisions,
        y_test,
        evaluation.policy,
        task_completion=metrics.task_completion_rate.value,
    )
    return replace(
        evaluation,
        metrics=metrics,
        automation=automation,
        frontier=frontier_rows(evaluation.policy),
    )


def _as_probabilities(scores: NDArray[Any], kind: str) -> NDArray[np.float64]:
    if kind == "probabilities":
        return np.asarray(scores, dtype=np.float64)
    from failwise.calibration import softmax

    return softmax(np.asarray(scores, dtype=np.float64))
