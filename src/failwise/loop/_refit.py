"""`recalibrate_tasks`: refit calibrator and thresholds on logged labels, certify or keep.

The procedure, on the logged tasks whose inclusion probability π is known:

1. **Split.** Each task goes, by an independent coin, to the evaluation part (a fixed
   share, 20 %) or not; each other task, by another coin, to the calibration part (share
   ``calibration_share``) or the threshold part, so the certificate is computed on labels
   the calibrator never saw, and the comparison on labels neither refit saw.
2. **Calibrator.** Refitted on the calibration part's labels with Horvitz–Thompson weights
   1/π: passed as ``sample_weight`` when the calibrator's ``fit`` accepts it, else as an
   inverse-probability resample of the labels (rows drawn with probability ∝ 1/π).
3. **Thresholds.** The threshold part's labels are thinned to a uniform sample (each
   logged task kept with the same probability π_min, see :func:`uniform_subsample`), which
   is an i.i.d. draw from traffic; a fresh :class:`~failwise.policy.Policy` with the old
   objective is fitted on it, with the out-of-scope scores and the fallback's recorded
   opinions when the policy in service uses them. Its answer threshold carries the exact
   binomial Learn-then-Test certificate of :class:`~failwise.policy.RiskThreshold`, valid
   because the sample is i.i.d. Selected tasks whose label has not arrived count as wrong
   answers (label -1), which can only make the certificate more conservative; they give
   the fallback no evidence either way (its opinion on them is dropped), since the ladder
   would otherwise count any fallback output on a -1 row as a correct handoff.
4. **Adopt or keep.** The refitted pair is adopted only when that certificate holds (or
   the policy has no risk target). Otherwise the pair in service is kept, an
   :class:`~failwise.exceptions.UncertifiedWarning` says so, and the report says why: how
   many labels, what bound, what a certificate would need.
5. **Compare.** Old and new on the labelled tasks of the evaluation part (held out of
   both refits, so the estimates are not in-sample) with inverse-probability weights:
   coverage, escalation rate, human hours per 1,000 tasks, task completion, ECE, and
   whether the log certifies each policy's risk target (the old policy's threshold is
   tested once, at its own value, on the same uniform sample). Coverage needs no label:
   it is exact, on every logged task.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise._validation import describe
from failwise.artifacts import artifact_hash
from failwise.calibration import BaseCalibrator
from failwise.exceptions import FailwiseError, InputError, UncertifiedWarning
from failwise.loop._log import NO_LABEL, LoggedTasks
from failwise.loop._report import PolicyFigures, RecalibrationReport
from failwise.loop._sampling import (
    inverse_probability_resample,
    inverse_probability_weights,
    uniform_subsample,
)
from failwise.loop._verdict import Evidence, bound_of, needs, verdict
from failwise.metrics import expected_calibration_error
from failwise.outcomes import OutcomeModel, project
from failwise.policy import NO_OPINION, Action, Policy
from failwise.policy._bounds import risk_p_value, risk_upper_bound

__all__ = ["recalibrate_tasks"]

_MIN_CALIBRATION_LABELS = 20
_ESTIMATE_ROWS = 40_000
#: Share of the logged tasks held out of both refits to estimate the comparison on.
_EVALUATION_SHARE = 0.2


def _accepts_weights(calibrator: BaseCalibrator) -> bool:
    try:
        return "sample_weight" in inspect.signature(calibrator.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _refit_calibrator(
    old: BaseCalibrator,
    scores: NDArray[np.float64],
    y: NDArray[np.intp],
    weights: NDArray[np.float64],
    rng: np.random.Generator,
    notes: list[str],
) -> tuple[BaseCalibrator, int]:
    in_scope = y >= 0
    n = int(in_scope.sum())
    if n < _MIN_CALIBRATION_LABELS:
        notes.append(
            f"calibrator kept: {n} in-scope label(s) in the calibration part, fewer than "
            f"{_MIN_CALIBRATION_LABELS}."
        )
        return old, 0
    fresh: Any = type(old)(**old.get_params())
    s, t, w = scores[in_scope], y[in_scope], weights[in_scope]
    if _accepts_weights(fresh):
        fitted = fresh.fit(s, t, sample_weight=w)
        notes.append(f"calibrator refitted on {n} labels with weights 1/π (sample_weight).")
    else:
        size = max(n, round(float(w.sum())))
        rows = inverse_probability_resample(w, size, rng)
        fitted = fresh.fit(s[rows], t[rows])
        notes.append(
            f"calibrator refitted on {n} labels: {type(old).__name__}.fit takes no "
            f"sample_weight, so on {size} rows drawn with probability ∝ 1/π."
        )
    return fitted, n


def _proba(calibrator: BaseCalibrator | None, scores: NDArray[np.float64]) -> NDArray[np.float64]:
    if calibrator is None:
        return scores
    return np.asarray(calibrator.predict_proba(scores), dtype=np.float64)


def _ladder_inputs(
    policy: Policy, tasks: LoggedTasks, rows: NDArray[np.intp]
) -> tuple[NDArray[np.float64] | None, NDArray[np.intp] | None]:
    ood = None
    if np.isfinite(policy.ood_threshold_) and tasks.ood_score is not None:
        ood = tasks.ood_score[rows]
    fallback = None if tasks.fallback_label is None else tasks.fallback_label[rows]
    return ood, fallback


def _audit_rates(tasks: LoggedTasks) -> dict[str, float]:
    rates: dict[str, float] = {}
    audited = tasks.action != "escalate"
    for action in ("answer", "clarify", "fallback", "abstain"):
        mask = tasks.action == action
        if mask.any():
            rates[action] = float(np.mean(tasks.review_probability[mask]))
    default = float(np.mean(tasks.review_probability[audited])) if audited.any() else 0.0
    return {a: rates.get(a, default) for a in ("answer", "clarify", "fallback", "abstain")}


def _certificate(
    policy: Policy,
    calibrator: BaseCalibrator | None,
    tasks: LoggedTasks,
    rows: NDArray[np.intp],
    y: NDArray[np.intp],
) -> tuple[int, int]:
    """Errors and answers of ``policy`` on the uniform sample ``rows`` (truth ``y``)."""
    if rows.size == 0:
        return 0, 0
    ood, fallback = _ladder_inputs(policy, tasks, rows)
    decisions = policy.decide(_proba(calibrator, tasks.scores[rows]), ood, fallback)
    answered = decisions.action_codes == Action.ANSWER.code
    wrong = answered & (decisions.label != y)
    return int(wrong.sum()), int(answered.sum())


def _shares(
    policy: Policy, calibrator: BaseCalibrator | None, tasks: LoggedTasks, rows: NDArray[np.intp]
) -> tuple[float, float]:
    """Shares of the logged tasks ``rows`` answered automatically and escalated by the ladder.

    Exact on the log: they depend on the recorded scores only, not on labels.
    """
    if rows.size == 0:
        return math.nan, math.nan
    ood, fallback = _ladder_inputs(policy, tasks, rows)
    codes = policy.decide(_proba(calibrator, tasks.scores[rows]), ood, fallback).action_codes
    automatic = np.isin(codes, (Action.ANSWER.code, Action.FALLBACK.code)).mean()
    return float(automatic), float((codes == Action.ESCALATE.code).mean())


def _figures(
    policy: Policy,
    calibrator: BaseCalibrator | None,
    tasks: LoggedTasks,
    rows: NDArray[np.intp],
    model: OutcomeModel,
    audit_rates: dict[str, float],
    certified: bool | None,
    bound: float,
    coverage: float,
) -> PolicyFigures:
    if rows.size == 0:  # no held-out label: nothing to estimate on
        nan = math.nan
        return PolicyFigures(coverage, nan, nan, nan, nan, certified, bound)
    y = tasks.y[rows]
    proba = _proba(calibrator, tasks.scores[rows])
    ood, fallback = _ladder_inputs(policy, tasks, rows)
    decisions = policy.decide(proba, ood, fallback)
    metrics = project(decisions, y, model, n_bootstrap=0, n_repeats=1, random_state=0)
    in_scope = y >= 0
    ece = (
        float(expected_calibration_error(proba[in_scope], y[in_scope]))
        if in_scope.any()
        else math.nan
    )
    # An escalation is a review already; the other actions are audited at their rate.
    by_code = np.array([audit_rates.get(a.value, 0.0) for a in Action])
    by_code[Action.ESCALATE.code] = 0.0
    audits = by_code[decisions.action_codes]
    audit_hours = float(audits.mean()) * model.human_handling_s / 3600.0 * 1000.0
    return PolicyFigures(
        coverage=coverage,
        escalation_rate=float(metrics.escalation_rate.value),
        human_hours_per_1000_tasks=float(metrics.human_hours_per_1000_tasks.value) + audit_hours,
        task_completion=float(metrics.task_completion_rate.value),
        ece=ece,
        certified=certified,
        risk_upper_bound=bound,
    )


def recalibrate_tasks(
    tasks: LoggedTasks,
    policy: Policy,
    calibrator: BaseCalibrator | None = None,
    *,
    outcome_model: OutcomeModel | None = None,
    calibration_share: float = 0.3,
    min_labels: int = 50,
    random_state: int | None = 0,
) -> RecalibrationReport:
    """Refit calibrator and thresholds on logged labels; adopt them only if certified.

    See the module docstring for the procedure and why its certificate is valid.

    Parameters
    ----------
    tasks : LoggedTasks
        The logged decisions with known inclusion probabilities (:func:`read_logged_tasks`).
    policy : Policy
        The fitted policy in service.
    calibrator : BaseCalibrator, optional
        The calibrator in service; without it the recorded scores are probabilities and
        only the policy is refitted.
    outcome_model : OutcomeModel, optional
        Behaviour behind the projected task completion and human hours.
    calibration_share : float in (0, 1), default=0.3
        Share of logged tasks whose labels refit the calibrator (the rest certify the
        thresholds). Ignored without a calibrator.
    min_labels : int, default=50
        Fewest labels (with known inclusion probability) to recalibrate on.
    random_state : int or None, default=0
        Seed of the split, the thinning and the resampling.

    Returns
    -------
    RecalibrationReport

    Warns
    -----
    UncertifiedWarning
        When the refitted thresholds are not certified and the pair in service is kept.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import Policy
    >>> from failwise.loop import LoggedTasks, recalibrate_tasks
    >>> rng = np.random.default_rng(0)
    >>> def traffic(n):
    ...     proba = rng.dirichlet(np.full(3, 0.3), size=n)
    ...     return proba, (rng.random((n, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    >>> proba, y = traffic(2000)
    >>> policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    >>> proba, y = traffic(6000)  # a day of traffic, without drift
    >>> action = np.asarray(policy.decide(proba).action)
    >>> pi = np.where(action == "escalate", 1.0, 0.2)  # escalations, and audits of the rest
    >>> selected = rng.random(pi.size) < pi
    >>> tasks = LoggedTasks(
    ...     scores=proba, y=np.where(selected, y, -2), selected=selected,
    ...     review_probability=pi, fallback_label=None, ood_score=None, action=action,
    ...     task_id=[f"t{i}" for i in range(pi.size)],
    ... )
    >>> report = recalibrate_tasks(tasks, policy)
    >>> report.adopted, report.n_labels
    (False, 1201)
    >>> report.reason.split(":")[0]
    'kept the policy in service'
    """
    if not isinstance(tasks, LoggedTasks):
        raise InputError(f"`tasks` must be LoggedTasks; got {describe(tasks)}.")
    if not isinstance(policy, Policy) or not hasattr(policy, "rungs_"):
        raise InputError(f"`policy` must be a fitted Policy; got {describe(policy)}.")
    if calibrator is not None and not isinstance(calibrator, BaseCalibrator):
        raise InputError(f"`calibrator` must be a fitted calibrator; got {describe(calibrator)}.")
    share = calibration_share
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        raise InputError(f"`calibration_share` must be in (0, 1); got {describe(share)}.")
    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 4:
        raise InputError(f"`min_labels` must be an int >= 4; got {describe(min_labels)}.")
    model = outcome_model if outcome_model is not None else OutcomeModel()
    labelled = tasks.labelled
    n_labels = int(labelled.sum())
    if n_labels < min_labels:
        raise InputError(
            f"Too few labels to recalibrate: found {n_labels} label(s) from the guard's "
            f"escalations and audits with a known review probability among {tasks.n_tasks} "
            f"logged task(s); at least {min_labels} are needed. "
            + (
                f"{tasks.n_unknown_probability} logged decision(s) carry no "
                "review_probability (written by a guard that did not record it), so their "
                "labels cannot be weighted. "
                if tasks.n_unknown_probability
                else ""
            )
            + (
                f"{tasks.n_other_labels} other label(s) (user corrections, user escalations) "
                "have an unknown inclusion probability and are not used. "
                if tasks.n_other_labels
                else ""
            )
            + "Raise the guard's audit_rate or wait for more traffic."
        )
    if tasks.scores.shape[1] != policy.n_classes_ and calibrator is None:
        raise InputError(
            f"The recorded scores have {tasks.scores.shape[1]} entries; the policy expects "
            f"{policy.n_classes_} probabilities. Pass the calibrator in service."
        )
    uses_ood = bool(np.isfinite(policy.ood_threshold_))
    if uses_ood and not tasks.ood_scored.any():
        raise InputError(
            f"The policy uses out-of-scope scores but none of the {tasks.n_tasks} logged "
            "decision(s) has one recorded; give the guard its `ood` scorer."
        )
    # Decisions the guard degraded (its out-of-scope scorer failed) have no score to replay
    # the ladder on: they are left out wherever the policy needs it.
    usable = tasks.ood_scored if uses_ood else np.ones(tasks.n_tasks, dtype=bool)
    uses_fallback = policy.fallback_accuracy_ is not None
    notes: list[str] = []
    if uses_fallback and tasks.fallback_label is None:
        raise InputError(
            "The policy trusts a fallback but the log has no `fallback_label` on every "
            "decision, so the refit could not measure it; recalibrate a log written by a "
            "guard that records the fallback's opinion."
        )

    rng = np.random.default_rng(random_state)
    n = tasks.n_tasks
    pi = tasks.review_probability
    pi_min = float(pi.min()) if n else 0.0
    eval_part = rng.random(n) < _EVALUATION_SHARE
    calib_part = (rng.random(n) < share) if calibrator is not None else np.zeros(n, bool)
    calib_part &= ~eval_part
    kept = uniform_subsample(pi, tasks.selected, rng) & ~calib_part & ~eval_part & usable
    cert_rows = np.flatnonzero(kept)
    # A selected task whose review is still open counts as out of scope: never a right answer.
    cert_y = np.where(tasks.y[cert_rows] == NO_LABEL, -1, tasks.y[cert_rows]).astype(np.intp)

    new_calibrator, n_calibration = calibrator, 0
    if calibrator is not None:
        rows = np.flatnonzero(calib_part & labelled)
        new_calibrator, n_calibration = _refit_calibrator(
            calibrator,
            tasks.scores[rows],
            tasks.y[rows],
            inverse_probability_weights(pi[rows]),
            rng,
            notes,
        )

    has_target = policy.target_risk is not None
    target = float(policy.target_risk or 0.0)
    level = float(policy.confidence_level)
    old_errors, old_answered = _certificate(policy, calibrator, tasks, cert_rows, cert_y)
    old_certified: bool | None = None
    old_bound = math.nan
    if has_target:
        old_bound = float(risk_upper_bound(old_errors, old_answered, level, bound_of(policy)))
        p = float(risk_p_value(old_errors, old_answered, target, bound_of(policy)))
        old_certified = bool(old_answered > 0 and p <= 1.0 - level)

    candidate: Policy | None = None
    failure: str | None = None
    if pi_min <= 0:
        zero = sorted(set(tasks.action[pi <= 0].tolist()))
        failure = (
            f"{int((pi <= 0).sum())} logged task(s) ({', '.join(zero)}) had review "
            "probability 0, so no sample represents all traffic; give every action an audit "
            "rate > 0"
        )
    elif cert_rows.size < 2:
        failure = f"the uniform sample holds {cert_rows.size} label(s)"
    else:
        ood, fallback = _ladder_inputs(policy, tasks, cert_rows)
        if fallback is not None:
            # The ladder counts any fallback output on an out-of-scope input as a correct
            # handoff; a pending task is not known to be out of scope, so it must not vouch
            # for the fallback. It counts as a wrong answer, and as no evidence for the
            # fallback either way.
            fallback = np.where(tasks.y[cert_rows] == NO_LABEL, NO_OPINION, fallback)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always", UncertifiedWarning)
            try:
                candidate = Policy(**policy.get_params()).fit(
                    _proba(new_calibrator, tasks.scores[cert_rows]),
                    cert_y,
                    ood_score=ood if uses_ood else None,
                    fallback=fallback if uses_fallback else None,
                )
            except FailwiseError as error:
                failure = f"the refit failed: {error}"

    new_certified: bool | None = None
    new_bound = math.nan
    if candidate is not None and has_target:
        control = candidate.risk_control_
        new_certified = bool(candidate.certified_)
        new_bound = 1.0 if control is None else float(control.risk_upper_bound_)
    replayable = np.flatnonzero(usable)
    old_coverage, old_escalated = _shares(policy, calibrator, tasks, replayable)
    new_coverage, new_escalated = (
        (old_coverage, old_escalated)
        if candidate is None
        else _shares(candidate, new_calibrator, tasks, replayable)
    )
    evidence = Evidence(
        n_cert=int(cert_rows.size),
        n_labels=n_labels,
        pi_min=pi_min,
        old_errors=old_errors,
        old_answered=old_answered,
        old_certified=old_certified,
        new_certified=new_certified,
        new_bound=new_bound,
        new_answered=0
        if candidate is None or candidate.risk_control_ is None
        else int(candidate.risk_control_.n_answered_),
        old_coverage=old_coverage,
        new_coverage=new_coverage,
        old_escalated=old_escalated,
        new_escalated=new_escalated,
    )
    adopted, reason, warn = verdict(policy, candidate, failure, evidence)
    if not adopted and has_target and evidence.new_certified is not True:
        reason += "; " + needs(policy, old_errors, old_answered, evidence.n_cert, tasks, share)
    reason += "."
    if warn:
        warnings.warn(
            f"recalibrate {reason} The returned policy is the one in service.",
            UncertifiedWarning,
            stacklevel=2,
        )

    estimate_rows = np.flatnonzero(labelled & usable & eval_part)
    size = max(_ESTIMATE_ROWS, 20 * estimate_rows.size)
    sample = (
        estimate_rows[
            inverse_probability_resample(inverse_probability_weights(pi[estimate_rows]), size, rng)
        ]
        if estimate_rows.size
        else estimate_rows
    )
    notes.append(
        f"estimates on {estimate_rows.size} held-out label(s) (a random "
        f"{_EVALUATION_SHARE:.0%} of the logged tasks, used for neither refit) with weights "
        "1/π; coverage exact on every logged task."
    )
    rates = _audit_rates(tasks)
    old_fig = _figures(
        policy, calibrator, tasks, sample, model, rates, old_certified, old_bound, old_coverage
    )
    if candidate is not None:
        new_fig = _figures(
            candidate,
            new_calibrator,
            tasks,
            sample,
            model,
            rates,
            new_certified,
            new_bound,
            new_coverage,
        )
    else:
        new_fig = old_fig
    if tasks.n_other_labels:
        notes.append(
            f"{tasks.n_other_labels} label(s) with unknown inclusion probability (user "
            "corrections, user escalations, reviews the application queued) were not used."
        )
    n_unscored = int((~usable).sum())
    if n_unscored:
        unscored = [tasks.task_id[i] for i in np.flatnonzero(~usable)]
        shown = ", ".join(unscored[:5]) + (f" and {n_unscored - 5} more" if n_unscored > 5 else "")
        notes.append(
            f"{n_unscored} logged decision(s) have no out-of-scope score (the guard degraded "
            f"them when its scorer failed: {shown}); they are left out of the threshold refit, "
            "the certificate, the coverage and the estimates, which the policy replays with "
            "that score."
        )
    if tasks.n_pending:
        notes.append(
            f"{tasks.n_pending} selected task(s) have no label yet: wrong answers in the "
            "certificate, left out of the estimates."
        )
    served_policy = candidate if adopted and candidate is not None else policy
    served_calibrator = new_calibrator if adopted else calibrator
    return RecalibrationReport(
        adopted=adopted,
        reason=reason,
        old=old_fig,
        new=new_fig,
        policy=served_policy,
        calibrator=served_calibrator,
        candidate_policy=candidate,
        candidate_calibrator=new_calibrator,
        n_tasks=n,
        n_labels=n_labels,
        n_pending=tasks.n_pending,
        n_certification=evidence.n_cert,
        n_calibration=n_calibration,
        n_unknown_probability=tasks.n_unknown_probability,
        n_without_scores=tasks.n_without_scores,
        n_without_ood_score=n_unscored,
        n_evaluation=int(estimate_rows.size),
        n_other_labels=tasks.n_other_labels,
        min_review_probability=pi_min,
        old_policy_version=artifact_hash(policy),
        policy_version=artifact_hash(served_policy),
        calibrator_version=None if served_calibrator is None else artifact_hash(served_calibrator),
        notes=notes,
    )
