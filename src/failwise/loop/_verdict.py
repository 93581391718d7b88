"""Adopt the refitted pair or keep the one in service, and say why in one sentence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from failwise.loop._log import LoggedTasks
from failwise.policy import Policy
from failwise.policy._frontier import answered_needed

__all__ = ["Evidence", "bound_of", "needs", "verdict"]


def bound_of(policy: Policy) -> Literal["binomial", "hoeffding_bentkus"]:
    """The policy's p-value family, typed."""
    return "hoeffding_bentkus" if policy.bound == "hoeffding_bentkus" else "binomial"


@dataclass(frozen=True)
class Evidence:
    """What the log says about the policy in service and the refitted candidate."""

    n_cert: int
    n_labels: int
    pi_min: float
    old_errors: int
    old_answered: int
    old_certified: bool | None
    new_certified: bool | None
    new_bound: float
    new_answered: int
    old_coverage: float
    new_coverage: float
    old_escalated: float
    new_escalated: float


def verdict(
    policy: Policy, candidate: Policy | None, failure: str | None, ev: Evidence
) -> tuple[bool, str, bool]:
    """Adopt the candidate, or keep the policy in service: (adopted, reason, warn)."""
    target = float(policy.target_risk or 0.0)
    level = float(policy.confidence_level)
    sample = (
        f"a uniform sample of {ev.n_cert} labels (rate π_min = {ev.pi_min:.3g}, thinned from "
        f"{ev.n_labels} labels weighted by 1/π)"
    )
    if candidate is None or ev.new_certified is False:
        why = failure or (
            f"no refitted threshold is certified at target {target:g} and confidence "
            f"{level:g} on {sample}"
        )
        # Warn unless the log itself certifies the policy in service.
        return False, f"kept the policy in service: {why}", ev.old_certified is not True
    if ev.new_certified is None:
        return True, f"adopted: the policy has no risk target ({candidate.mode_} mode)", False
    certified = (
        f"the refitted threshold answers {ev.new_answered} of them with risk bound "
        f"{ev.new_bound:.3f} ≤ target {target:g} at confidence {level:g}"
    )
    more = ev.new_coverage > ev.old_coverage + 1e-12 and ev.new_escalated <= ev.old_escalated
    observed = ev.old_errors / ev.old_answered if ev.old_answered else 0.0
    drifted = ev.old_answered > 0 and observed > target
    if more:
        return (
            True,
            f"adopted: on {sample}, {certified}, and it answers more without escalating more",
            False,
        )
    if drifted:
        return (
            True,
            f"adopted: the policy in service misses its target on the log ({ev.old_errors} of "
            f"{ev.old_answered} sampled answers wrong, {observed:.1%} > {target:g}); on "
            f"{sample}, {certified}",
            False,
        )
    status = "certifies" if ev.old_certified else "does not certify (too few labels) but"
    return (
        False,
        f"kept the policy in service: the log {status} shows no sign that it misses its target "
        f"({ev.old_errors} of {ev.old_answered} sampled answers wrong), and the certified refit "
        f"would answer {ev.new_coverage:.1%} instead of {ev.old_coverage:.1%} and escalate "
        f"{ev.new_escalated:.1%} instead of {ev.old_escalated:.1%}",
        False,
    )


def needs(
    policy: Policy, errors: int, answered: int, n_sample: int, tasks: LoggedTasks, share: float
) -> str:
    """What a certificate would need, from the error rate the old threshold shows."""
    target = float(policy.target_risk or 0.0)
    level = float(policy.confidence_level)
    if answered == 0:
        return "no labelled task in the uniform sample was answered at the old threshold"
    rate = errors / answered
    if rate >= target:
        return (
            f"at the old threshold {errors} of {answered} sampled answers were wrong "
            f"({rate:.1%} ≥ target {target:g}), so no number of labels certifies that "
            f"threshold; a stricter one needs more uniformly sampled labels than the "
            f"{n_sample} here: raise the audit rate of every action (now at least "
            f"{tasks.review_probability.min():.3g}) or recalibrate on a longer log"
        )
    need = answered_needed(errors, answered, target, level, bound_of(policy))
    if need is None:
        return (
            f"at the old threshold {errors} of {answered} sampled answers were wrong, too "
            f"close to target {target:g} to plan a certificate on {n_sample} uniformly "
            f"sampled labels: raise the audit rate of every action (now at least "
            f"{tasks.review_probability.min():.3g}) or recalibrate on a longer log"
        )
    answered_share = answered / max(n_sample, 1)
    labels = math.ceil(need / max(answered_share, 1e-12))
    rate_needed = labels / max(tasks.n_tasks * (1.0 - share), 1.0)
    return (
        f"at the old threshold {errors} of {answered} sampled answers were wrong; a "
        f"certificate at that error rate needs about {need} answered labels in the uniform "
        f"sample (about {labels} uniformly sampled labels, an audit rate of about "
        f"{min(rate_needed, 1.0):.2f} at this traffic)"
    )
