"""`draw_behaviour`: the one model of what users and humans do with each task.

A decision opens a path (answer, clarify, fallback, escalate, abstain); an
:class:`~failwise.OutcomeModel` says what people then do on it: whether a user notices a
wrong answer and asks for a human or gives up, which label a user picks when asked to
clarify, whether humans have the capacity to take an escalation, how long they take and
whether they get it right. :func:`draw_behaviour` draws one realisation of all of it for
every task, vectorised.

Both sides of the consistency check read the same draws: :func:`~failwise.project` turns
them into projected product metrics, and :func:`failwise.testing.replay` acts them out as
scripted users and reviewers on a real :class:`~failwise.runtime.Guard` and event store, so
that :func:`~failwise.measure` on the log measures what ``project`` projected. With the same
seed both see the same person doing the same thing on the same task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_consistent_length, check_labels, describe
from failwise.exceptions import InputError
from failwise.outcomes._model import OutcomeModel
from failwise.policy import Action, Decisions

__all__ = ["Behaviour", "TaskPaths", "draw_behaviour", "task_paths"]

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

    def __len__(self) -> int:
        return int(self.action.shape[0])


def task_paths(decisions: Decisions, y_true: ArrayLike) -> TaskPaths:
    """Combine decisions with the true labels: the path each task takes, before behaviour.

    The deterministic half of :func:`~failwise.outcomes.project`: which action each task
    got, whether its output (answer or fallback label) was right, whether its clarify set
    holds the true label, and whether it was out of scope. :func:`draw_behaviour` then
    draws what users and humans do on these paths.

    Parameters
    ----------
    decisions : Decisions
        From :meth:`failwise.Policy.decide`.
    y_true : array-like of shape (n_samples,)
        True labels, ``-1`` for out-of-scope inputs.

    Returns
    -------
    TaskPaths
        Arrays of shape (n_samples,): ``action``, ``output_correct``, ``set_has_truth``,
        ``out_of_scope``.

    Raises
    ------
    InputError
        When ``decisions`` is not a Decisions, or the lengths differ.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.outcomes import task_paths
    >>> from failwise.policy import always_answer
    >>> paths = task_paths(always_answer(np.array([[0.9, 0.1], [0.2, 0.8]])), [0, 0])
    >>> paths.output_correct.tolist()
    [True, False]
    """
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
class Behaviour:
    """One realisation of what users and humans did with each task (arrays of shape (n,)).

    Attributes
    ----------
    picks_right, none_of_these, picks_wrong : ndarray of bool
        Asked to clarify, the user picked the right label, said "none of these" (and was
        escalated) or picked a wrong label. False on every other path.
    first_right, first_wrong : ndarray of bool
        The first output delivered (answer, fallback, picked label) was right / wrong.
    noticed, user_escalates, gives_up : ndarray of bool
        After a wrong first output: the user noticed it; then asked for a human, or gave up.
    escalated : ndarray of bool
        The task reached the human queue: the ladder escalated, "none of these", or a user
        escalation.
    absorbed : ndarray of bool
        An escalation that humans had the capacity to take.
    human_right : ndarray of bool
        The human who labels this task (a resolved escalation, an audit) gets it right.
    honest : ndarray of bool
        An abstention on an out-of-scope input: the right handling.
    first_output_s : ndarray of float
        Time from the request to the first output (or abstention message); 0 for escalations.
    wait_s : ndarray of float
        Extra time before a user escalation (the user's time to notice); 0 elsewhere.
    human_response_s : ndarray of float
        Log-normal time a human takes to resolve the escalation, counted from when it is
        queued.
    human_capacity_share : float
        Share of escalations humans could absorb at this draw's escalation rate.
    completed : ndarray of bool
        A correct output reached the user within the deadline.
    time_s : ndarray of float
        Request → correct output for completed tasks; NaN for the others.
    recovered, silent : ndarray of bool
        A wrong first output later put right by a human in time / a wrong automatic output
        nobody noticed.
    automatic, automatic_correct : ndarray of bool
        Answered automatically (answer or fallback) / and right.
    human_seconds : ndarray of float
        Reviewer working time spent on the task's escalation (``human_handling_s`` when
        absorbed, else 0).
    """

    picks_right: NDArray[np.bool_]
    none_of_these: NDArray[np.bool_]
    picks_wrong: NDArray[np.bool_]
    first_right: NDArray[np.bool_]
    first_wrong: NDArray[np.bool_]
    noticed: NDArray[np.bool_]
    user_escalates: NDArray[np.bool_]
    gives_up: NDArray[np.bool_]
    escalated: NDArray[np.bool_]
    absorbed: NDArray[np.bool_]
    human_right: NDArray[np.bool_]
    honest: NDArray[np.bool_]
    first_output_s: NDArray[np.float64]
    wait_s: NDArray[np.float64]
    human_response_s: NDArray[np.float64]
    human_capacity_share: float
    completed: NDArray[np.bool_]
    time_s: NDArray[np.float64]
    recovered: NDArray[np.bool_]
    silent: NDArray[np.bool_]
    automatic: NDArray[np.bool_]
    automatic_correct: NDArray[np.bool_]
    human_seconds: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.completed.shape[0])


def draw_behaviour(
    paths: TaskPaths, outcome_model: OutcomeModel, rng: np.random.Generator
) -> Behaviour:
    """Draw one realisation of user and human behaviour for every task.

    The draws, in this order (so that a seed fixes them): four uniforms per task (the
    clarification pick, noticing a wrong output, escalating after noticing, a place within
    human capacity), a standard normal per task (the human's log-normal response time) and
    a uniform per task (whether the human is right). Human capacity is shared by every
    escalation of ``paths``: ``outcome_model.human_capacity_share`` at this draw's
    escalation rate.

    Parameters
    ----------
    paths : TaskPaths
        From :func:`task_paths` (decisions with their true labels).
    outcome_model : OutcomeModel
        The probabilities and latencies of the people involved.
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    Behaviour

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import OutcomeModel
    >>> from failwise.policy import always_answer
    >>> paths = task_paths(always_answer(np.tile([[0.9, 0.1]], (1000, 1))), np.zeros(1000, int))
    >>> b = draw_behaviour(paths, OutcomeModel(), np.random.default_rng(0))
    >>> bool(b.completed.all()), float(b.time_s[0])
    (True, 1.0)
    """
    if not isinstance(paths, TaskPaths):
        raise InputError(
            f"`paths` must be TaskPaths from failwise.outcomes.task_paths(decisions, y); got "
            f"{describe(paths)}."
        )
    if not isinstance(outcome_model, OutcomeModel):
        raise InputError(
            f"`outcome_model` must be an OutcomeModel; got {describe(outcome_model)}. Use "
            "`OutcomeModel()` for the documented defaults."
        )
    if not isinstance(rng, np.random.Generator):
        raise InputError(
            f"`rng` must be a numpy.random.Generator; got {describe(rng)}. Pass "
            "`numpy.random.default_rng(seed)`."
        )
    model = outcome_model
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
    human_right: NDArray[np.bool_] = np.less(rng.random(n), model.human_accuracy)

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
    automatic = answer | fallback
    return Behaviour(
        picks_right=picks_right,
        none_of_these=none_of_these,
        picks_wrong=picks_wrong,
        first_right=first_right,
        first_wrong=first_wrong,
        noticed=noticed,
        user_escalates=user_escalates,
        gives_up=noticed & ~user_escalates,
        escalated=escalated,
        absorbed=absorbed,
        human_right=human_right,
        honest=honest,
        first_output_s=base,
        wait_s=wait,
        human_response_s=human_time,
        human_capacity_share=float(share),
        completed=completed,
        time_s=np.where(completed, time, np.nan),
        recovered=first_wrong & human_done & in_time,
        silent=silent & automatic,
        automatic=automatic,
        automatic_correct=automatic & paths.output_correct,
        human_seconds=np.where(absorbed, model.human_handling_s, 0.0),
    )
