"""`RecalibrationReport`: the policy in service against the refitted one, and what was kept."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from failwise.artifacts import Artifact, save
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError
from failwise.policy import Policy

__all__ = ["METRICS", "PolicyFigures", "RecalibrationReport"]

#: Rows of the comparison, in order: (attribute, label).
METRICS: tuple[tuple[str, str], ...] = (
    ("coverage", "coverage (automation)"),
    ("escalation_rate", "escalation rate"),
    ("human_hours_per_1000_tasks", "human hours / 1,000 tasks"),
    ("task_completion", "task completion"),
    ("ece", "ECE"),
    ("certified", "certified"),
)


@dataclass(frozen=True)
class PolicyFigures:
    """What one calibrator + policy does on the logged traffic.

    Coverage is exact on the logged tasks (it needs no labels). The other product metrics
    are estimated on held-out labelled tasks (a random share used for neither the
    calibrator nor the threshold refit, so not in-sample) with inverse-probability weights
    (each label stands for 1/π logged tasks), so they describe all traffic rather than the
    inputs humans happened to see; NaN when no label was held out.

    Attributes
    ----------
    coverage : float
        Share of logged tasks given an automatic output (answer or trusted fallback).
    escalation_rate : float
        Share of tasks escalated to a human, by the ladder or by the user.
    human_hours_per_1000_tasks : float
        Reviewer working hours per 1,000 tasks: escalations and audits.
    task_completion : float
    ece : float
        Expected calibration error of the probabilities (in-scope tasks).
    certified : bool or None
        Whether the log certifies the answer threshold's risk target (None: the policy has
        no risk target).
    risk_upper_bound : float
        Upper confidence bound on the error rate among answers, from the uniform sample
        (NaN when there is no risk target; 1.0 when nothing answered).
    """

    coverage: float
    escalation_rate: float
    human_hours_per_1000_tasks: float
    task_completion: float
    ece: float
    certified: bool | None
    risk_upper_bound: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "coverage": self.coverage,
            "escalation_rate": self.escalation_rate,
            "human_hours_per_1000_tasks": self.human_hours_per_1000_tasks,
            "task_completion": self.task_completion,
            "ece": self.ece,
            "certified": self.certified,
            "risk_upper_bound": self.risk_upper_bound,
        }


@dataclass(frozen=True)
class RecalibrationReport:
    """The policy in service (old) against the refitted one (new), on the logged traffic.

    Attributes
    ----------
    adopted : bool
        Whether the refitted pair replaces the one in service. False when the weighted
        sample does not certify its risk target (then ``policy`` and ``calibrator`` are the
        ones in service and ``reason`` says why).
    reason : str
        One sentence: why the new pair was adopted or kept out.
    old, new : PolicyFigures
        The policy in service and the refitted candidate (whether adopted or not).
    policy, calibrator : the pair to serve from now on
    candidate_policy, candidate_calibrator : the refitted pair (adopted or not)
    n_tasks : int
        Logged decisions with a known inclusion probability.
    n_labels : int
        Their labels from the guard's own escalations and audits (the labels used).
    n_pending : int
        Tasks selected for review whose label has not arrived (counted as wrong answers in
        the certificate, left out of the estimates).
    n_certification : int
        Labels in the uniform sample the thresholds were fitted and certified on.
    n_calibration : int
        Labels the calibrator was refitted on (0 when it was not refitted).
    n_unknown_probability, n_without_scores, n_other_labels : int
        What was left out, and why (see :class:`LoggedTasks`).
    min_review_probability : float
        π_min: the rate of the uniform sample.
    n_evaluation : int
        Held-out labels (used for neither refit) the comparison is estimated on.
    n_without_ood_score : int
        Logged decisions without an out-of-scope score (the guard degraded them) while the
        policy uses one: left out of the threshold refit, the certificate, the coverage and
        the estimates, and named in ``notes``.
    notes : list of str
        How the calibrator was refitted, what the certificate would need, and so on.
    """

    adopted: bool
    reason: str
    old: PolicyFigures
    new: PolicyFigures
    policy: Policy
    calibrator: BaseCalibrator | None
    candidate_policy: Policy | None
    candidate_calibrator: BaseCalibrator | None
    n_tasks: int
    n_labels: int
    n_pending: int
    n_certification: int
    n_calibration: int
    n_unknown_probability: int
    n_without_scores: int
    n_other_labels: int
    min_review_probability: float
    old_policy_version: str
    policy_version: str
    calibrator_version: str | None
    notes: list[str] = field(default_factory=list)
    n_without_ood_score: int = 0
    n_evaluation: int = 0
    written: list[Artifact] = field(default_factory=list)

    @property
    def n_fit(self) -> int:
        """Labels the thresholds were fitted on (the uniform sample)."""
        return self.n_certification

    @property
    def n_eval(self) -> int:
        """Held-out labels the comparison is estimated on (used for neither refit)."""
        return self.n_evaluation

    @property
    def rows(self) -> list[tuple[str, float, float]]:
        """``(metric, old, new)`` for every row of the comparison (certified as 0/1, NaN)."""
        out = []
        for name, _ in METRICS:
            old, new = getattr(self.old, name), getattr(self.new, name)
            if name == "certified":
                old = math.nan if old is None else float(old)
                new = math.nan if new is None else float(new)
            out.append((name, float(old), float(new)))
        return out

    def regressions(self) -> list[str]:
        """Ways the new policy serves users less well than the old: fewer answers, more humans."""
        out = []
        if self.new.coverage < self.old.coverage - 1e-9:
            out.append(
                f"answers {self.new.coverage:.1%} of tasks instead of {self.old.coverage:.1%}"
            )
        if self.new.escalation_rate > self.old.escalation_rate + 1e-9:
            out.append(
                f"escalates {self.new.escalation_rate:.1%} of tasks instead of "
                f"{self.old.escalation_rate:.1%}"
            )
        if self.new.human_hours_per_1000_tasks > self.old.human_hours_per_1000_tasks + 1e-9:
            out.append(
                f"needs {self.new.human_hours_per_1000_tasks:.2f} human hours per 1,000 tasks "
                f"instead of {self.old.human_hours_per_1000_tasks:.2f}"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "adopted": self.adopted,
            "reason": self.reason,
            "estimated_with": (
                "inverse-probability weights over held-out labelled tasks (used for neither "
                "refit); coverage exact on every logged task"
            ),
            "n_evaluation": self.n_evaluation,
            "comparison": {
                name: {"old": getattr(self.old, name), "new": getattr(self.new, name)}
                for name, _ in METRICS
            },
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "regressions": self.regressions(),
            "n_tasks": self.n_tasks,
            "n_labels": self.n_labels,
            "n_pending": self.n_pending,
            "n_certification": self.n_certification,
            "n_calibration": self.n_calibration,
            "n_unknown_probability": self.n_unknown_probability,
            "n_without_scores": self.n_without_scores,
            "n_other_labels": self.n_other_labels,
            "n_without_ood_score": self.n_without_ood_score,
            "min_review_probability": self.min_review_probability,
            "old_policy_version": self.old_policy_version,
            "policy_version": self.policy_version,
            "calibrator_version": self.calibrator_version,
            "notes": list(self.notes),
        }

    def write(
        self, folder: str | os.PathLike[str], *, allow_less_automation: bool = False
    ) -> list[Artifact]:
        """Save the new calibrator and policy as ``calibrator-<version>`` / ``policy-<version>``.

        Parameters
        ----------
        folder : path
        allow_less_automation : bool, default=False
            Write a new policy that answers less, escalates more or needs more human hours
            than the one in service. Without it such a policy is refused.

        Raises
        ------
        InputError
            When the refitted pair was not adopted (nothing new to write), or when it serves
            users less well and ``allow_less_automation`` is False.
        """
        if not self.adopted:
            raise InputError(f"Nothing written: the policy in service was kept. {self.reason}")
        worse = self.regressions()
        if worse and not allow_less_automation:
            raise InputError(
                "Refusing to write the new policy: it "
                + "; ".join(worse)
                + " on the logged traffic. "
                "Pass allow_less_automation=True (CLI: --allow-less-automation) to write it "
                "anyway."
            )
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        out: list[Artifact] = []
        if self.calibrator is not None and self.calibrator_version is not None:
            version = self.calibrator_version
            out.append(save(self.calibrator, target / f"calibrator-{version[:12]}", overwrite=True))
        out.append(save(self.policy, target / f"policy-{self.policy_version[:12]}", overwrite=True))
        self.written.extend(out)
        return out
