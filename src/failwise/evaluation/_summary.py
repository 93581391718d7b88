"""What a fitted ladder automates on the test rows, in the words the CLI, JSON and report share.

The headline says plainly when nothing is answered automatically ("answers nothing
automatically: 98 % of requests go to clarification") instead of leading with task completion,
and the test-time error rate among automatic answers is set beside the target. When the
target is exceeded only because out-of-scope inputs in the test rows were answered (inputs
the validation rows did not contain), the note says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise.policy import Action, Decisions, Policy

__all__ = ["AutomationSummary", "FrontierRow", "frontier_rows", "summarise_automation"]

#: How each hand-off reads in a sentence ("... go to clarification").
_DESTINATION = {
    Action.CLARIFY: "clarification",
    Action.FALLBACK: "the fallback",
    Action.ESCALATE: "a human",
    Action.ABSTAIN: "an honest 'not sure'",
}


def _pct(value: float) -> str:
    return f"{value:.1%}"


@dataclass(frozen=True)
class FrontierRow:
    """What the validation data certifies at one target: coverage, and rows still needed."""

    target_risk: float
    confidence_level: float
    coverage: float
    rows_needed: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "target_risk": self.target_risk,
            "confidence_level": self.confidence_level,
            "certified_coverage": self.coverage,
            "labelled_rows_needed": self.rows_needed,
        }


def _field(item: Any, *names: str) -> Any:
    for name in names:
        if isinstance(item, Mapping) and name in item:
            return item[name]
        if hasattr(item, name):
            return getattr(item, name)
    return None


def frontier_rows(policy: Policy) -> list[FrontierRow]:
    """The policy's certification frontier (``policy.frontier_``), when it has one.

    Each entry gives a target risk (and confidence level), the coverage the validation data
    certifies there, and how many more labelled rows the requested target needs at the
    observed error rate. Policies fitted without a frontier give an empty list.
    """
    raw = getattr(policy, "frontier_", None)
    if raw is None:
        return []
    if hasattr(raw, "rows") and not isinstance(raw, Sequence):
        raw = raw.rows
    if hasattr(raw, "to_records"):
        raw = raw.to_records()
    rows = []
    for item in raw:
        target = _field(item, "target_risk", "risk")
        coverage = _field(item, "coverage", "certified_coverage")
        if target is None or coverage is None:
            continue
        level = _field(item, "confidence_level", "level")
        needed = _field(item, "rows_needed", "labelled_rows_needed", "n_needed", "extra_rows")
        rows.append(
            FrontierRow(
                float(target),
                float(level if level is not None else policy.confidence_level),
                float(coverage),
                None if needed is None or not math.isfinite(float(needed)) else int(needed),
            )
        )
    return rows


@dataclass(frozen=True)
class AutomationSummary:
    """What one model's ladder automates on the test rows.

    Attributes
    ----------
    headline : str
        One sentence: what is automated and how often it is wrong, or that nothing is.
    answered : float
        Share of test rows answered automatically.
    action_rates : dict
        Share of test rows per action.
    n_answered, n_answered_out_of_scope : int
        Test rows answered; of those, rows that are out of scope (always wrong).
    test_risk : float or None
        Error rate among the automatic answers on the test rows (None: nothing answered).
    test_risk_in_scope : float or None
        The same among answered in-scope rows only.
    target_risk : float or None
    certified : bool
    out_of_scope_over_target : bool
        The test risk is above the target, and only because of answered out-of-scope inputs.
    risk_note : str or None
        A sentence on the test risk when it is above the target; None otherwise.
    screen_unmet : tuple of str
        Parameters of the out-of-scope screen whose rule the validation data could not meet.
    screen_notes : tuple of str
        One sentence per unmet rule (what was asked, what the data allows, what to change).
    """

    headline: str
    answered: float
    action_rates: dict[str, float]
    n_answered: int
    n_answered_out_of_scope: int
    test_risk: float | None
    test_risk_in_scope: float | None
    target_risk: float | None
    certified: bool
    out_of_scope_over_target: bool
    risk_note: str | None
    screen_unmet: tuple[str, ...] = ()
    screen_notes: tuple[str, ...] = ()

    @property
    def automates_nothing(self) -> bool:
        """Whether the ladder answers no test row automatically."""
        return self.n_answered == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "headline": self.headline,
            "answered_automatically": self.answered,
            "automates_nothing": self.automates_nothing,
            "test_risk_among_answers": self.test_risk,
            "test_risk_among_in_scope_answers": self.test_risk_in_scope,
            "target_risk": self.target_risk,
            "certified": self.certified,
            "n_answered": self.n_answered,
            "n_answered_out_of_scope": self.n_answered_out_of_scope,
            "out_of_scope_pushes_risk_over_target": self.out_of_scope_over_target,
            "risk_note": self.risk_note,
            "out_of_scope_screen_unmet": list(self.screen_unmet),
            "out_of_scope_screen_notes": list(self.screen_notes),
        }


def _nothing_answered(name: str, rates: Mapping[Action, float]) -> str:
    handoffs = sorted(
        ((rate, action) for action, rate in rates.items() if action is not Action.ANSWER),
        key=lambda item: -item[0],
    )
    parts = [f"{_pct(rate)} of requests go to {_DESTINATION[action]}" for rate, action in handoffs]
    shown = [p for (rate, _), p in zip(handoffs, parts, strict=True) if rate >= 0.005]
    return f"{name} answers nothing automatically: " + (", ".join(shown[:2]) or parts[0]) + "."


def summarise_automation(
    name: str,
    decisions: Decisions,
    y_test: NDArray[np.intp],
    policy: Policy,
    task_completion: float | None = None,
) -> AutomationSummary:
    """Summarise what ``decisions`` automate on test rows with true labels ``y_test``.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import Policy
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    >>> y = np.array([rng.choice(3, p=p) for p in proba])
    >>> policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    >>> summary = summarise_automation("toy", policy.decide(proba), y, policy)
    >>> summary.headline.startswith("toy answers ")
    True
    """
    y = np.asarray(y_test)
    rates = decisions.rates()
    answered = decisions.mask(Action.ANSWER)
    n_answered = int(answered.sum())
    wrong = decisions.predicted != y
    in_scope = y >= 0
    n_oos = int((answered & ~in_scope).sum())
    target = policy.target_risk
    certified = bool(getattr(policy, "certified_", False))
    risk = float(wrong[answered].mean()) if n_answered else None
    in_scope_answered = answered & in_scope
    risk_in = float(wrong[in_scope_answered].mean()) if in_scope_answered.any() else None
    over = risk is not None and target is not None and risk > target + 1e-12
    oos_over = bool(
        over
        and n_oos > 0
        and risk_in is not None
        and target is not None
        and risk_in <= target + 1e-12
    )
    if n_answered == 0:
        headline = _nothing_answered(name, rates)
    else:
        headline = (
            f"{name} answers {_pct(n_answered / y.size)} of requests automatically, "
            f"{_pct(risk or 0.0)} of those answers wrong on the test rows"
        )
        headline += f" (target {_pct(target)})" if target is not None else ""
        if task_completion is not None and math.isfinite(task_completion):
            headline += f", and completes {_pct(task_completion)} of tasks"
        headline += "."
    screen = getattr(policy, "ood_screen_", None)
    unmet = tuple(str(u) for u in getattr(screen, "unmet", ()) or ())
    screen_notes = tuple(str(n) for n in getattr(screen, "notes", ()) or ())
    if unmet:
        headline += (
            f" Its out-of-scope screen cannot meet `{'`, `'.join(unmet)}` on this data "
            "(see the notes)."
        )
    note = None
    if over and risk is not None and target is not None:
        if oos_over:
            note = (
                f"{name}: {_pct(risk)} of automatic answers are wrong on the test rows, above "
                f"the {_pct(target)} target, because {n_oos} out-of-scope test input(s) were "
                f"answered; among in-scope inputs {_pct(risk_in or 0.0)} of answers are wrong. "
                "The certificate covers inputs like the validation rows; "
                + (
                    "the out-of-scope screen let these through (add out-of-scope examples to "
                    "validation, or use a sharper out-of-scope score)."
                    if math.isfinite(float(getattr(policy, "ood_threshold_", math.inf)))
                    else "give the policy an out-of-scope score to screen such inputs."
                )
            )
        else:
            note = (
                f"{name}: {_pct(risk)} of automatic answers are wrong on the test rows, above "
                f"the {_pct(target)} target"
                + (
                    f" certified at {policy.confidence_level:.0%} confidence over validation "
                    "draws; an excess can happen by chance or when test traffic differs "
                    "from validation."
                    if certified
                    else "; this threshold is not certified."
                )
            )
    return AutomationSummary(
        headline=headline,
        answered=n_answered / y.size if y.size else 0.0,
        action_rates={a.value: float(r) for a, r in rates.items()},
        n_answered=n_answered,
        n_answered_out_of_scope=n_oos,
        test_risk=risk,
        test_risk_in_scope=risk_in,
        target_risk=target,
        certified=certified,
        out_of_scope_over_target=oos_over,
        risk_note=note,
        screen_unmet=unmet,
        screen_notes=screen_notes,
    )
