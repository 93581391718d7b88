"""`recalibrate`: refit the calibrator and the ladder's thresholds on labels from the log.

Human resolutions (escalations and audits), audit labels and user corrections are labels.
Each labelled task's raw model scores come from its decision event (a
:class:`~failwise.runtime.Guard` records them as ``scores``), so the calibrator can be
refitted on them; the policy is refitted on the recalibrated probabilities (with the
recorded out-of-scope scores when the policy uses them). The latest label of a task wins
(a correction after a human resolution overrides it).

Old and new are compared on a held-out half of the labels (the new pair is fitted on the
other half for the comparison, then on all labels for the artefacts it writes): expected
calibration error, coverage (share of automatic answers) and projected task completion.
Labels from escalations are not a random sample of traffic (they are the hard inputs);
audits are. Read the comparison as "on the inputs humans labelled".
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise._validation import describe
from failwise.artifacts import Artifact, artifact_hash, load, save
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError, UncertifiedWarning
from failwise.metrics import expected_calibration_error
from failwise.outcomes import OutcomeModel, project
from failwise.policy import Policy

__all__ = ["LABEL_EVENTS", "RecalibrationReport", "recalibrate"]

#: Event kinds whose label is the true label of the task.
LABEL_EVENTS: tuple[str, ...] = (
    "escalation_resolved",
    "audit_resolved",
    "audit_label",
    "feedback_corrected",
)

_LABELS_SQL = """
SELECT ev.task_id, ev.label, d.payload
FROM events ev
JOIN events d ON d.task_id = ev.task_id AND d.kind = 'decision'
WHERE ev.kind IN ('escalation_resolved', 'audit_resolved', 'audit_label', 'feedback_corrected')
  AND ev.label IS NOT NULL AND d.at >= ?
ORDER BY ev.at, ev.id
"""


@dataclass(frozen=True)
class RecalibrationReport:
    """Old versus new calibrator and policy, on held-out labels from the event log.

    Attributes
    ----------
    n_labels : int
        Labelled tasks with recorded scores that were used.
    n_without_scores : int
        Labelled tasks skipped because their decision has no recorded scores.
    n_fit, n_eval : int
        The split behind the comparison.
    rows : list of (metric, old, new)
        ``ece``, ``coverage`` and ``task_completion`` (projected).
    policy, calibrator : fitted on all labels
    policy_version, calibrator_version : str or None
        Content hashes of the new artefacts.
    """

    n_labels: int
    n_without_scores: int
    n_fit: int
    n_eval: int
    rows: list[tuple[str, float, float]]
    policy: Policy
    calibrator: BaseCalibrator | None
    old_policy_version: str
    policy_version: str
    calibrator_version: str | None
    written: list[Artifact] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "n_labels": self.n_labels,
            "n_without_scores": self.n_without_scores,
            "n_fit": self.n_fit,
            "n_eval": self.n_eval,
            "comparison": {name: {"old": old, "new": new} for name, old, new in self.rows},
            "old_policy_version": self.old_policy_version,
            "policy_version": self.policy_version,
            "calibrator_version": self.calibrator_version,
        }

    def write(self, folder: str | os.PathLike[str]) -> list[Artifact]:
        """Save the new calibrator and policy as ``calibrator-<version>`` / ``policy-<version>``."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        out: list[Artifact] = []
        if self.calibrator is not None:
            version = str(self.calibrator_version)
            out.append(save(self.calibrator, target / f"calibrator-{version[:12]}", overwrite=True))
        out.append(save(self.policy, target / f"policy-{self.policy_version[:12]}", overwrite=True))
        self.written.extend(out)
        return out


def _gather(store: Any, since: float) -> tuple[list[Any], list[int], list[float | None], int]:
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for task_id, label, payload in store._read(_LABELS_SQL, (since,)):
        latest[str(task_id)] = (int(label), json.loads(payload))
    scores, labels, oods = [], [], []
    missing = 0
    for label, decision in latest.values():
        raw = decision.get("scores")
        if not isinstance(raw, list) or not raw:
            missing += 1
            continue
        scores.append(raw)
        labels.append(label)
        value = decision.get("ood_score")
        oods.append(None if value is None else float(value))
    return scores, labels, oods, missing


def _fit(
    old_policy: Policy,
    old_calibrator: BaseCalibrator | None,
    scores: NDArray[np.float64],
    y: NDArray[np.intp],
    ood: NDArray[np.float64] | None,
) -> tuple[Policy, BaseCalibrator | None]:
    calibrator = None
    proba = scores
    if old_calibrator is not None:
        in_scope = y >= 0
        fresh: Any = type(old_calibrator)(**old_calibrator.get_params())
        calibrator = fresh.fit(scores[in_scope], y[in_scope])
        proba = calibrator.predict_proba(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        policy = Policy(**old_policy.get_params()).fit(proba, y, ood_score=ood)
    return policy, calibrator


def _evaluate(
    policy: Policy,
    calibrator: BaseCalibrator | None,
    scores: NDArray[np.float64],
    y: NDArray[np.intp],
    ood: NDArray[np.float64] | None,
    model: OutcomeModel,
) -> dict[str, float]:
    proba = calibrator.predict_proba(scores) if calibrator is not None else scores
    in_scope = y >= 0
    ece = (
        float(expected_calibration_error(proba[in_scope], y[in_scope]))
        if in_scope.any()
        else math.nan
    )
    decisions = policy.decide(proba, ood_score=ood)
    metrics = project(decisions, y, model, n_bootstrap=0)
    return {
        "ece": ece,
        "coverage": metrics.automation_rate.value,
        "task_completion": metrics.task_completion_rate.value,
    }


def recalibrate(
    store: Any,
    policy_path: str | os.PathLike[str],
    *,
    calibrator_path: str | os.PathLike[str] | None = None,
    since: float | None = None,
    outcome_model: OutcomeModel | None = None,
    min_labels: int = 50,
    random_state: int | None = 0,
) -> RecalibrationReport:
    """Refit calibrator and thresholds on the labels gathered in the event log.

    Parameters
    ----------
    store : Store or str
        An open store or a store URL.
    policy_path : path
        The policy artefact in service (:func:`failwise.artifacts.save`).
    calibrator_path : path, optional
        The calibrator artefact in service; without it the recorded scores are taken to be
        probabilities already and only the policy is refitted.
    since : float, optional
        Only tasks decided at or after this Unix time.
    outcome_model : OutcomeModel, optional
        For the projected task completion in the comparison.
    min_labels : int, default=50
        Fewest labelled tasks (with recorded scores) to refit on.
    random_state : int or None, default=0
        Seed of the fit / evaluation split.

    Returns
    -------
    RecalibrationReport
        Nothing is written until :meth:`RecalibrationReport.write`.

    Raises
    ------
    InputError
        With fewer than ``min_labels`` labelled tasks, saying how many there are and how
        to get more.
    """
    from failwise import store as store_module

    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 4:
        raise InputError(f"`min_labels` must be an int >= 4; got {describe(min_labels)}.")
    if since is not None and (
        isinstance(since, bool) or not isinstance(since, (int, float)) or not math.isfinite(since)
    ):
        raise InputError(f"`since` must be a time in Unix seconds; got {describe(since)}.")
    old_policy = load(policy_path)
    if not isinstance(old_policy, Policy):
        raise InputError(
            f"`policy_path` {os.fspath(policy_path)!r} holds a {type(old_policy).__name__}, not a "
            "policy; pass the policy artefact (and the calibrator with --calibrator)."
        )
    old_calibrator = None if calibrator_path is None else load(calibrator_path)
    if old_calibrator is not None and not isinstance(old_calibrator, BaseCalibrator):
        raise InputError(
            f"`calibrator_path` {os.fspath(calibrator_path)!r} holds a "  # type: ignore[arg-type]
            f"{type(old_calibrator).__name__}, not a calibrator."
        )
    model = outcome_model if outcome_model is not None else OutcomeModel()
    opened = store_module.open(store) if isinstance(store, str) else None
    source = opened if opened is not None else store
    if not isinstance(source, store_module.Store):
        raise InputError(f"`store` must be a Store or a store URL; got {describe(store)}.")
    try:
        raw, labels, oods, missing = _gather(source, -1.0e300 if since is None else float(since))
    finally:
        if opened is not None:
            opened.close()
    if len(raw) < min_labels:
        hint = (
            f" ({missing} more labelled task(s) have no recorded scores: wrap the model in a "
            "Guard with record_scores=True)"
            if missing
            else ""
        )
        raise InputError(
            f"Too few labels to recalibrate: found {len(raw)} labelled task(s) with recorded "
            f"scores{hint}; at least {min_labels} are needed. Labels come from resolved "
            "escalations, audits (raise the guard's audit_rate) and user corrections."
        )
    n_classes = int(old_policy.n_classes_)
    widths = {len(r) for r in raw}
    if widths != {n_classes} and old_calibrator is None:
        raise InputError(
            f"The recorded scores have {sorted(widths)} entries; the policy expects "
            f"{n_classes} probabilities. Pass the calibrator artefact with calibrator_path."
        )
    if len(widths) != 1:
        raise InputError(f"The recorded scores have different lengths {sorted(widths)}.")
    scores = np.asarray(raw, dtype=np.float64)
    y = np.asarray(labels, dtype=np.intp)
    uses_ood = bool(np.isfinite(old_policy.ood_threshold_))
    ood = None
    if uses_ood:
        if any(v is None for v in oods):
            raise InputError(
                "The policy uses out-of-scope scores but some labelled decisions have none "
                "recorded; recalibrate with a policy fitted without them."
            )
        ood = np.asarray(oods, dtype=np.float64)

    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(y))
    fit_rows, eval_rows = np.sort(order[: len(y) // 2]), np.sort(order[len(y) // 2 :])

    def pick(a: NDArray[Any] | None, rows: NDArray[np.intp]) -> NDArray[Any] | None:
        return None if a is None else a[rows]

    trial_policy, trial_calibrator = _fit(
        old_policy, old_calibrator, scores[fit_rows], y[fit_rows], pick(ood, fit_rows)
    )
    args = (scores[eval_rows], y[eval_rows], pick(ood, eval_rows), model)
    before = _evaluate(old_policy, old_calibrator, *args)
    after = _evaluate(trial_policy, trial_calibrator, *args)
    policy, calibrator = _fit(old_policy, old_calibrator, scores, y, ood)
    return RecalibrationReport(
        n_labels=len(y),
        n_without_scores=missing,
        n_fit=len(fit_rows),
        n_eval=len(eval_rows),
        rows=[(name, before[name], after[name]) for name in ("ece", "coverage", "task_completion")],
        policy=policy,
        calibrator=calibrator,
        old_policy_version=artifact_hash(old_policy),
        policy_version=artifact_hash(policy),
        calibrator_version=None if calibrator is None else artifact_hash(calibrator),
    )
