"""`project`: product metrics projected from an evaluation set and an outcome model.

Each task goes down the path its decision opened, and the outcome model says what users and
humans then do (notice a wrong answer or not, pick the right option or not, how long a
human takes). The random parts are simulated many times over the evaluation set; confidence
intervals come from a bootstrap over tasks that also redraws the behaviour.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_consistent_length, check_labels
from failwise.exceptions import InputError
from failwise.outcomes._metrics import Estimate, ProductMetrics
from failwise.outcomes._model import OutcomeModel
from failwise.policy._decision import Action, Decisions

__all__ = ["TaskPaths", "project", "task_paths"]

_Z90 = 1.2815515655446004  # standard normal 90th percentile


@dataclass(frozen=True)
class TaskPaths:
    """What each task's decision implies before user behaviour is drawn.

    Attributes
    ----------
    action : ndarray of int8, shape (n,)
        Ladder code of each decision.
    output_correct : ndarray of bool, shape (n,)
        Whether the label delivered (answer / fallback) is the right handling of the input.
    set_has_truth : ndarray of bool, shape (n,)
        For clarify rows, whether the offered labels contain the right one.
    out_of_scope : ndarray of bool, shape (n,)
    """

    action: NDArray[np.int8]
    output_correct: NDArray[np.bool_]
    set_has_truth: NDArray[np.bool_]
    out_of_scope: NDArray[np.bool_]

    def take(self, rows: NDArray[np.intp]) -> TaskPaths:
        """Rows ``rows`` of every column."""
        return TaskPaths(
            self.action[rows],
            self.output_correct[rows],
            self.set_has_truth[rows],
            self.out_of_scope[rows],
        )


def task_paths(decisions: Decisions, y_true: ArrayLike) -> TaskPaths:
    """Combine decisions with the true labels (``-1`` = out of scope)."""
    if not isinstance(decisions, Decisions):
        raise InputError(
            f"`decisions` must be the Decisions returned by Policy.decide; got "
            f"{type(decisions).__name__}."
        )
    y = check_labels(y_true, "y_true", allow_out_of_scope=True)
    check_consistent_length(decisions=decisions.action_codes, y_true=y)
    oos = y < 0
    action = decisions.action_codes
    fallback = action == Action.FALLBACK.code
    # An out-of-scope input sent to the fallback got the right handling: a handoff.
    output_correct = (decisions.label == y) | (fallback & oos)
    has_truth = np.zeros(y.shape[0], dtype=bool)
    if decisions.set_rows.size:
        rows = decisions.set_rows
        truth = y[rows]
        inside = decisions.set_masks[np.arange(rows.size), np.maximum(truth, 0)]
        has_truth[rows] = inside & (truth >= 0)
    return TaskPaths(action, output_correct, has_truth, oos)


@dataclass(frozen=True)
class _Draw:
    completed: NDArray[np.bool_]
    time: NDArray[np.float64]
    escalated: NDArray[np.bool_]
    first_incorrect: NDArray[np.bool_]
    recovered: NDArray[np.bool_]
    silent: NDArray[np.bool_]
    automatic: NDArray[np.bool_]
    automatic_correct: NDArray[np.bool_]
    human_seconds: NDArray[np.float64]


def _simulate(paths: TaskPaths, model: OutcomeModel, rng: np.random.Generator) -> _Draw:
    """Draw one realisation of user and human behaviour for every task."""
    n = paths.action.shape[0]
    a = paths.action
    answer = a == Action.ANSWER.code
    clarify = a == Action.CLARIFY.code
    fallback = a == Action.FALLBACK.code
    escalate = a == Action.ESCALATE.code
    abstain = a == Action.ABSTAIN.code
    u = rng.random((4, n))
    sigma = (
        np.log(max(model.human_response_p90_s, 1e-9) / max(model.human_response_median_s, 1e-9))
        / _Z90
    )
    human_time = model.human_response_median_s * np.exp(sigma * rng.standard_normal(n))
    human_right = rng.random(n) < model.human_accuracy

    # Clarification: the user picks the right label, says "none of these", or picks wrong.
    picks_right = clarify & paths.set_has_truth & (u[0] < model.user_picks_right_label)
    none_of_these = clarify & ~paths.set_has_truth & (u[0] < model.user_flags_none_of_these)
    picks_wrong = clarify & ~picks_right & ~none_of_these

    # First output delivered to the user and whether it was right.
    delivered = answer | fallback | picks_right | picks_wrong
    first_right = ((answer | fallback) & paths.output_correct) | picks_right
    first_wrong = delivered & ~first_right
    base = np.select(
        [answer, clarify, fallback, abstain],
        [
            np.full(n, model.answer_latency_s),
            np.full(n, model.answer_latency_s + model.clarify_latency_s),
            np.full(n, model.fallback_latency_s),
            np.full(n, model.abstain_latency_s),
        ],
        default=0.0,
    )

    # A wrong output is noticed (or not); noticed ones may be escalated by the user.
    noticed = first_wrong & (u[1] < model.user_notices_wrong_answer)
    user_escalates = noticed & (u[2] < model.user_escalates_after_noticing)
    silent = first_wrong & ~noticed

    escalated = escalate | none_of_these | user_escalates
    share = model.human_capacity_share(float(escalated.mean()) if n else 0.0)
    absorbed = escalated & (u[3] < share)
    human_done = absorbed & human_right
    wait = np.where(user_escalates, model.time_to_notice_s, 0.0)
    human_total = base + wait + human_time

    # An abstention on an out-of-scope input is the right handling.
    honest = abstain & paths.out_of_scope
    time = np.where(first_right | honest, base, np.where(human_done, human_total, np.nan))
    in_time = time <= model.deadline_s
    completed = (first_right | honest | human_done) & in_time
    recovered = first_wrong & human_done & in_time
    automatic = answer | fallback
    return _Draw(
        completed=completed,
        time=np.where(completed, time, np.nan),
        escalated=escalated,
        first_incorrect=first_wrong,
        recovered=recovered,
        silent=silent & automatic,
        automatic=automatic,
        automatic_correct=automatic & paths.output_correct,
        human_seconds=np.where(absorbed, model.human_handling_s, 0.0),
    )


def _summaries(draw: _Draw) -> NDArray[np.float64]:
    n = draw.completed.shape[0]
    times = draw.time[draw.completed]
    first_wrong = int(draw.first_incorrect.sum())
    n_auto = int(draw.automatic.sum())
    return np.array(
        [
            draw.completed.mean(),
            np.median(times) if times.size else np.nan,
            np.quantile(times, 0.9) if times.size else np.nan,
            draw.escalated.mean(),
            draw.recovered.sum() / first_wrong if first_wrong else np.nan,
            draw.silent.mean(),
            draw.automatic.mean(),
            draw.automatic_correct.sum() / n_auto if n_auto else np.nan,
            draw.human_seconds.sum() / 3600.0 / n * 1000.0,
        ]
    )


_FIELDS = (
    "task_completion_rate",
    "time_to_correct_output_median_s",
    "time_to_correct_output_p90_s",
    "escalation_rate",
    "recovery_rate",
    "silent_failure_rate",
    "automation_rate",
    "selective_accuracy",
    "human_hours_per_1000_tasks",
)


def project(
    decisions: Decisions,
    y_true: ArrayLike,
    outcome_model: OutcomeModel | None = None,
    *,
    n_bootstrap: int = 200,
    n_repeats: int | None = None,
    interval_level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> ProductMetrics:
    """Project product metrics from decisions on a labelled evaluation set.

    Parameters
    ----------
    decisions : Decisions
        Output of :meth:`Policy.decide` on the evaluation inputs.
    y_true : array-like of shape (n_samples,)
        True labels; ``-1`` marks out-of-scope inputs, which count as correctly handled only
        when escalated, sent to the fallback or abstained on.
    outcome_model : OutcomeModel, optional
        Assumptions about users and humans; the documented defaults when None.
    n_bootstrap : int, default=200
        Bootstrap replicates for the confidence intervals (tasks resampled, behaviour redrawn).
    n_repeats : int, optional
        Behaviour draws averaged into the point estimate; default: enough for ~200,000 tasks.
    interval_level : float, default=0.95
        Level of the percentile confidence intervals.
    random_state : int, Generator or None, default=0
        Seed for the behaviour draws and the bootstrap.

    Returns
    -------
    ProductMetrics

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import Policy, project
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.full(4, 0.3), size=3000)
    >>> y = np.array([rng.choice(4, p=p) for p in proba])
    >>> policy = Policy(target_risk=0.2).fit(proba[:1500], y[:1500])
    >>> metrics = project(policy.decide(proba[1500:]), y[1500:], n_bootstrap=50)
    >>> 0.0 <= metrics.task_completion_rate.value <= 1.0
    True
    """
    model = outcome_model if outcome_model is not None else OutcomeModel()
    if not isinstance(model, OutcomeModel):
        raise InputError(f"`outcome_model` must be an OutcomeModel; got {type(model).__name__}.")
    if not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise InputError(f"`n_bootstrap` must be an int ≥ 0; got {n_bootstrap!r}.")
    if not 0 < interval_level < 1:
        raise InputError(f"`interval_level` must lie in (0, 1); got {interval_level!r}.")
    paths = task_paths(decisions, y_true)
    rng = np.random.default_rng(random_state)
    n = paths.action.shape[0]
    repeats = n_repeats if n_repeats is not None else max(1, min(50, 200_000 // max(n, 1)))
    tiled = paths.take(np.tile(np.arange(n), repeats))
    point = _summaries(_simulate(tiled, model, rng))
    if n_bootstrap:
        replicates = np.empty((n_bootstrap, point.size))
        for b in range(n_bootstrap):
            rows = np.asarray(rng.integers(0, n, size=n), dtype=np.intp)
            replicates[b] = _summaries(_simulate(paths.take(rows), model, rng))
        tail = (1 - interval_level) / 2 * 100
        with warnings.catch_warnings():  # a metric undefined in every replicate stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanpercentile(replicates, tail, axis=0) if n else point
            high = np.nanpercentile(replicates, 100 - tail, axis=0) if n else point
    else:
        low = high = np.full(point.size, np.nan)
    values: dict[str, Any] = {
        name: Estimate(float(point[i]), float(low[i]), float(high[i]))
        for i, name in enumerate(_FIELDS)
    }
    return ProductMetrics(**values, n_tasks=n, interval_level=interval_level, source="projected")
