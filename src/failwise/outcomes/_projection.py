"""`project`: product metrics projected from an evaluation set and an outcome model.

Each task goes down the path its decision opened, and the outcome model says what users and
humans then do (notice a wrong answer or not, pick the right option or not, how long a
human takes): :func:`~failwise.outcomes.draw_behaviour`, the same draws that
:func:`failwise.testing.replay` acts out online. The random parts are simulated many times
over the evaluation set; confidence intervals come from a bootstrap over tasks that also
redraws the behaviour.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.outcomes._behaviour import Behaviour, TaskPaths, draw_behaviour, task_paths
from failwise.outcomes._metrics import Estimate, ProductMetrics
from failwise.outcomes._model import OutcomeModel
from failwise.policy import Decisions

__all__ = ["TaskPaths", "project", "task_paths"]


def _summaries(draw: Behaviour, keep: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
    """The nine metrics of one draw, over the tasks ``keep`` selects (all when None)."""
    b = draw
    if keep is None:
        completed, time_s, escalated = b.completed, b.time_s, b.escalated
        first_incorrect, recovered, silent = b.first_wrong, b.recovered, b.silent
        automatic, automatic_correct, human_seconds = (
            b.automatic,
            b.automatic_correct,
            b.human_seconds,
        )
    else:
        completed, time_s, escalated = b.completed[keep], b.time_s[keep], b.escalated[keep]
        first_incorrect, recovered, silent = b.first_wrong[keep], b.recovered[keep], b.silent[keep]
        automatic, automatic_correct = b.automatic[keep], b.automatic_correct[keep]
        human_seconds = b.human_seconds[keep]
    n = completed.shape[0]
    times = time_s[completed]
    first_wrong = int(first_incorrect.sum())
    n_auto = int(automatic.sum())
    return np.array(
        [
            completed.mean(),
            np.median(times) if times.size else np.nan,
            np.quantile(times, 0.9) if times.size else np.nan,
            escalated.mean(),
            recovered.sum() / first_wrong if first_wrong else np.nan,
            silent.mean(),
            automatic.mean(),
            automatic_correct.sum() / n_auto if n_auto else np.nan,
            human_seconds.sum() / 3600.0 / n * 1000.0,
        ]
    )


def _slice_mask(rows: Any, n: int) -> NDArray[np.bool_]:
    """``rows`` (a boolean mask or row indices into the traffic) as a boolean mask."""
    hint = (
        "Pass a boolean mask of length n_samples or integer row indices into `decisions`, "
        "e.g. `rows=y_true == -1`."
    )
    try:
        array = np.asarray(rows)
    except (TypeError, ValueError):
        raise InputError(
            f"`rows` must be a mask or row indices; got {describe(rows)}. {hint}"
        ) from None
    if array.ndim != 1:
        raise InputError(f"`rows` must be one-dimensional; got shape {array.shape}. {hint}")
    if array.dtype == bool:
        if array.shape[0] != n:
            raise InputError(
                f"`rows` is a boolean mask of length {array.shape[0]} but `decisions` has "
                f"{n} rows. {hint}"
            )
        mask = array.copy()
    elif np.issubdtype(array.dtype, np.integer) or array.size == 0:
        index = array.astype(np.intp)
        if index.size and (index.min() < -n or index.max() >= n):
            raise InputError(
                f"`rows` holds row indices outside [0, {n}) (`decisions` has {n} rows); got "
                f"{describe(rows)}. {hint}"
            )
        mask = np.zeros(n, dtype=bool)
        mask[index] = True
        if int(mask.sum()) != index.size:
            raise InputError(f"`rows` repeats a row index; got {describe(rows)}. {hint}")
    else:
        raise InputError(
            f"`rows` must be a boolean mask or integer row indices; got dtype {array.dtype}. {hint}"
        )
    if not mask.any():
        raise InputError(f"`rows` selects no task; a projection needs at least one. {hint}")
    return mask


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
    rows: ArrayLike | None = None,
    n_bootstrap: int = 200,
    n_repeats: int | None = None,
    interval_level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> ProductMetrics:
    """Project product metrics from decisions on a labelled evaluation set.

    Parameters
    ----------
    decisions : Decisions
        Output of :meth:`Policy.decide` on the evaluation inputs: the whole traffic the
        humans serve.
    y_true : array-like of shape (n_samples,)
        True labels; ``-1`` marks out-of-scope inputs, which count as correctly handled only
        when escalated, sent to the fallback or abstained on.
    outcome_model : OutcomeModel, optional
        Assumptions about users and humans; the documented defaults when None.
    rows : array-like of bool of shape (n_samples,) or of int, optional
        Project a slice of the traffic (the unseen inputs, one intent, one channel): the
        metrics are those of these tasks only, while human capacity
        (:meth:`OutcomeModel.human_capacity_share`) is shared with the escalations of every
        row of ``decisions``, as it is in production. Projecting the slice on its own
        (``project(decisions.select(mask), y[mask])``) instead sizes capacity as if the
        slice were all the traffic, which starves (or spoils) the reviewers. The bootstrap
        resamples the slice and the rest of the traffic separately, so the slice keeps its
        size. ``n_tasks`` of the result is the slice's size.
    n_bootstrap : int, default=200
        Bootstrap replicates for the confidence intervals (tasks resampled, behaviour redrawn).
    n_repeats : int, optional
        Behaviour draws averaged into the point estimate; default: enough for ~200,000 tasks.
    interval_level : float, default=0.95
        Level of the percentile confidence intervals.
    random_state : int, Generator or None, default=0
        Seed for the behaviour draws (:func:`~failwise.outcomes.draw_behaviour`) and the
        bootstrap.

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
    >>> decisions = policy.decide(proba[1500:])
    >>> metrics = project(decisions, y[1500:], n_bootstrap=50)
    >>> 0.0 <= metrics.task_completion_rate.value <= 1.0
    True

    The tasks of one class, with the reviewers of the whole traffic:

    >>> first_class = project(decisions, y[1500:], rows=y[1500:] == 0, n_bootstrap=50)
    >>> first_class.n_tasks == int((y[1500:] == 0).sum())
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
    n = paths.action.shape[0]
    keep = None if rows is None else _slice_mask(rows, n)
    rng = np.random.default_rng(random_state)
    repeats = n_repeats if n_repeats is not None else max(1, min(50, 200_000 // max(n, 1)))
    tiled = paths.take(np.tile(np.arange(n), repeats))
    point = _summaries(
        draw_behaviour(tiled, model, rng), None if keep is None else np.tile(keep, repeats)
    )
    if n_bootstrap:
        replicates = np.empty((n_bootstrap, point.size))
        inside = rest = np.arange(n)
        if keep is not None:
            inside, rest = np.flatnonzero(keep), np.flatnonzero(~keep)
            slice_mask = np.arange(n) < inside.size
        for b in range(n_bootstrap):
            if keep is None:
                resampled = np.asarray(rng.integers(0, n, size=n), dtype=np.intp)
                replicates[b] = _summaries(draw_behaviour(paths.take(resampled), model, rng))
                continue
            resampled = np.concatenate(
                [
                    inside[rng.integers(0, inside.size, size=inside.size)],
                    rest[rng.integers(0, max(rest.size, 1), size=rest.size)],
                ]
            )
            draw = draw_behaviour(paths.take(resampled), model, rng)
            replicates[b] = _summaries(draw, slice_mask)
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
    n_tasks = n if keep is None else int(keep.sum())
    return ProductMetrics(
        **values, n_tasks=n_tasks, interval_level=interval_level, source="projected"
    )
