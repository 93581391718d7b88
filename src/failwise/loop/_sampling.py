"""From labels with known, unequal inclusion probabilities to samples the fitters can use.

A guard sends task i for a human label with a probability π_i fixed at decision time:
1 for an escalation, the audit rate of its action otherwise. The labelled tasks are then a
Poisson sample of traffic with known inclusion probabilities, and two classical tools turn
them back into traffic:

* :func:`uniform_subsample` thins the sample (keeps task i with probability π_min / π_i),
  so that every logged task ends up in it with the same probability π_min. The kept tasks
  are an i.i.d. draw from production traffic, which is exactly what a risk certificate
  needs (see :func:`uniform_subsample` for the argument).
* :func:`inverse_probability_resample` draws rows with probability ∝ 1/π_i
  (Horvitz–Thompson weights, self-normalised as Hájek's estimator), for point estimates
  such as a calibrator fit without ``sample_weight`` or the product metrics of a policy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import InputError

__all__ = ["inverse_probability_resample", "inverse_probability_weights", "uniform_subsample"]


def _check(review_probability: NDArray[np.float64], selected: NDArray[np.bool_]) -> None:
    if review_probability.shape != selected.shape or review_probability.ndim != 1:
        raise InputError(
            f"`review_probability` and `selected` must be 1-D of one length; got shapes "
            f"{review_probability.shape} and {selected.shape}."
        )
    if review_probability.size and (
        not np.all(np.isfinite(review_probability))
        or review_probability.min() < 0
        or review_probability.max() > 1
    ):
        raise InputError("`review_probability` must hold probabilities in [0, 1] (no NaN).")


def uniform_subsample(
    review_probability: NDArray[np.float64],
    selected: NDArray[np.bool_],
    rng: np.random.Generator,
) -> NDArray[np.bool_]:
    """Thin a Poisson sample with known inclusion probabilities to a uniform one.

    Task i was selected for labelling with probability π_i = ``review_probability[i]``,
    drawn independently of its true label given its input. Keeping a selected task with
    probability π_min / π_i (π_min = the smallest π over *all* logged tasks) gives every
    task the same inclusion probability P(kept | x, y) = π_i · π_min / π_i = π_min.

    **Why that makes the kept tasks i.i.d. from traffic.** The logged tasks (x_i, y_i) are
    i.i.d.; whether task i is kept depends on task i alone, with a probability that does not
    depend on (x_i, y_i). So, given which tasks were kept, the kept tasks are independent
    and each has the traffic distribution P(x, y) · π_min / π_min = P(x, y). Any procedure
    valid on an i.i.d. labelled sample — the exact binomial Learn-then-Test certificate of
    :class:`~failwise.policy.RiskThreshold`, the Wilson bounds of fallback trust — stays
    valid on the kept tasks, with no approximation. Escalations (π = 1) are thinned the
    most; the labels thrown away are the ones that would bias the certificate towards hard
    inputs if they were used as they are.

    Parameters
    ----------
    review_probability : ndarray of shape (n,)
        π_i for every logged task (selected or not).
    selected : ndarray of bool, shape (n,)
        Whether task i was selected for a label.
    rng : numpy.random.Generator
        Source of the thinning draws (independent of the data).

    Returns
    -------
    ndarray of bool, shape (n,)
        The kept tasks (a subset of ``selected``); empty when some π_i is 0, since tasks
        that could never be labelled cannot be represented.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pi = np.where(rng.random(100_000) < 0.2, 1.0, 0.1)   # escalations and audits
    >>> selected = rng.random(pi.size) < pi
    >>> kept = uniform_subsample(pi, selected, rng)
    >>> print(round(kept[pi == 1.0].mean(), 2), round(kept[pi == 0.1].mean(), 2))
    0.1 0.1
    """
    _check(review_probability, selected)
    if review_probability.size == 0 or review_probability.min() <= 0:
        return np.zeros(review_probability.shape, dtype=bool)
    keep = review_probability.min() / np.maximum(review_probability, 1e-300)
    return np.asarray(selected & (rng.random(review_probability.shape) < keep))


def inverse_probability_weights(review_probability: NDArray[np.float64]) -> NDArray[np.float64]:
    """Horvitz–Thompson weights 1/π_i (each labelled task stands for 1/π_i logged tasks)."""
    if review_probability.size and review_probability.min() <= 0:
        raise InputError(
            "Inverse-probability weights need every review probability > 0; got "
            f"{float(review_probability.min())!r}."
        )
    return np.asarray(1.0 / review_probability, dtype=np.float64)


def inverse_probability_resample(
    weights: NDArray[np.float64], size: int, rng: np.random.Generator
) -> NDArray[np.intp]:
    """Row indices drawn with replacement, with probability ∝ ``weights``.

    Averages over the drawn rows are Hájek (self-normalised Horvitz–Thompson) estimates of
    traffic averages, up to the resampling noise, which shrinks as ``size`` grows.

    Examples
    --------
    >>> import numpy as np
    >>> rows = inverse_probability_resample(np.array([1.0, 3.0]), 40_000, np.random.default_rng(0))
    >>> round(float((rows == 1).mean()), 2)
    0.75
    """
    if weights.ndim != 1 or weights.size == 0 or not np.all(np.isfinite(weights)):
        raise InputError(
            f"`weights` must be a non-empty 1-D array of finite numbers; got shape {weights.shape}."
        )
    if weights.min() < 0 or weights.sum() <= 0:
        raise InputError("`weights` must be >= 0 with a positive sum.")
    return np.asarray(rng.choice(weights.size, size=size, p=weights / weights.sum()), np.intp)
