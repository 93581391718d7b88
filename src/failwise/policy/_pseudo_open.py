"""Choosing among candidates from their per-fold scores in pseudo-open cross-validation.

:func:`~failwise.policy.pseudo_open_folds` gives the folds; this module turns the folds'
scores of every candidate into one choice, either the best mean or the one-standard-error
rule, which keeps a default unless another candidate beats it by more than the folds'
spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from failwise._params import Options, check_param
from failwise.exceptions import InputError

__all__ = ["choose_by_folds"]

_RULES = ("best", "one_standard_error")


def choose_by_folds(
    scores: Mapping[str, Sequence[float]],
    *,
    default: str,
    rule: str = "one_standard_error",
) -> str:
    """The candidate to keep, from each candidate's score on the same folds (higher is better).

    With few folds, the candidate with the best mean often wins by less than the folds
    disagree, and the next draw of folds picks another: the choice is noise and costs
    on new data. ``rule="one_standard_error"`` (Hastie, Tibshirani & Friedman, *The
    Elements of Statistical Learning*, §7.10) keeps ``default`` unless some candidate's
    mean advantage over it, fold by fold, exceeds one standard error of that advantage
    (the standard deviation of the per-fold differences over the square root of the
    number of folds); among the candidates that clear that bar the highest mean wins.
    ``rule="best"`` takes the highest mean (ties: ``default``, then the earlier
    candidate).

    Parameters
    ----------
    scores : mapping of str to sequence of float
        Each candidate's score on every fold, the folds in the same order for every
        candidate (paired), at least two folds for the one-standard-error rule.
    default : str
        The candidate kept unless another is clearly better; a key of ``scores``.
    rule : {"one_standard_error", "best"}, default="one_standard_error"

    Returns
    -------
    str
        A key of ``scores``.

    Examples
    --------
    >>> folds = {"old": [0.80, 0.82, 0.78], "new": [0.81, 0.80, 0.80], "far": [0.9, 0.91, 0.9]}
    >>> choose_by_folds({k: folds[k] for k in ("old", "new")}, default="old")
    'old'
    >>> choose_by_folds({k: folds[k] for k in ("old", "new")}, default="old", rule="best")
    'new'
    >>> choose_by_folds(folds, default="old")
    'far'
    """
    where = "choose_by_folds"
    check_param("rule", rule, [Options(_RULES)], where=where)
    if default not in scores:
        raise InputError(
            f"{where}: `default` is {default!r}, which is not a candidate; expected one of "
            f"{sorted(scores)}."
        )
    table = {name: np.asarray(values, dtype=np.float64) for name, values in scores.items()}
    n_folds = {values.shape for values in table.values()}
    if len(n_folds) != 1 or len(next(iter(n_folds))) != 1:
        shapes = {name: values.shape for name, values in table.items()}
        raise InputError(
            f"{where}: every candidate needs one score per fold, the same folds for all; "
            f"got shapes {shapes}. Pass a flat list of fold scores per candidate."
        )
    folds = next(iter(n_folds))[0]
    minimum = 2 if rule == "one_standard_error" else 1
    if folds < minimum or not all(np.isfinite(v).all() for v in table.values()):
        raise InputError(
            f"{where}: got {folds} fold score(s) per candidate (finite ones only are "
            f"usable); rule={rule!r} needs at least {minimum} finite scores per candidate."
        )
    means = {name: float(values.mean()) for name, values in table.items()}
    order = [default, *(name for name in table if name != default)]
    if rule == "best":
        return max(order, key=lambda name: means[name])  # max keeps the first of equals
    clear = [default]
    for name in order[1:]:
        gain = table[name] - table[default]
        if gain.mean() > gain.std(ddof=1) / math.sqrt(folds):
            clear.append(name)
    return max(clear, key=lambda name: means[name])
