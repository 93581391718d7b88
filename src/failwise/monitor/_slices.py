"""Slices: groups of labelled tasks, named by their context, that fail more than the rest.

:func:`find_slices` searches conjunctions of up to ``max_level`` predicates over the
context columns of labelled tasks (audits, corrections, resolutions): ``column == value``
for a categorical column, ``low <= column < high`` for a numeric one cut at its quantiles.
The lattice is searched level by level as in SliceLine (Sagadeeva & Boehm, 2021): a slice
is extended only while it keeps ``min_size`` tasks, and a slice is scored by

``score = w · (failure rate in the slice / overall failure rate - 1) - (1 - w) · (n / size - 1)``

(``w`` = ``error_weight``), which trades the slice's lift against its size; the search is
exhaustive up to ``max_level``, so the top slices by score are the ones the ``sliceline``
package returns for the same ``error_weight``, ``min_size`` and ``max_level``.

A high score is not evidence. Every slice the search evaluated is tested: one-sided
Fisher exact test of "the slice fails no more often than the rest" (the hypergeometric tail
of its failure count given the totals). The p-values are adjusted with Holm's step-down
procedure over *all evaluated slices*, not just the reported ones, so the chance that any
reported slice is a fluke of a slice that fails no more than the rest is at most ``alpha``
(family-wise, valid under any dependence between the overlapping slices). Only slices
significant at that level and with a positive score are reported, best score first.

References
----------
Sagadeeva, S. & Boehm, M. (2021). SliceLine: fast, linear-algebra-based slice finding for
ML model debugging. *SIGMOD*.
Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
Journal of Statistics* 6(2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Count, Interval, check_param
from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["Slice", "find_slices"]


@dataclass(frozen=True)
class Slice:
    """One group of tasks that fails significantly more often than the rest.

    Attributes
    ----------
    rank : int
        1 for the best score.
    predicates : tuple of (str, str)
        ``(column, condition)`` pairs, all of which hold for the slice's tasks.
    description : str
        The predicates joined with " and " (``"channel == 'email' and amount in [50, 200)"``).
    size, n_failed : int
        Tasks in the slice, and failed ones among them.
    failure_rate, rest_failure_rate : float
        Failure rate in the slice and among all other tasks.
    lift : float
        ``failure_rate`` over the overall failure rate.
    score : float
        SliceLine's score (see the module notes).
    p_value, adjusted_p_value : float
        One-sided Fisher exact p-value of slice vs rest, and its Holm adjustment over every
        evaluated slice.
    metric_deltas : mapping of str to float
        Per product metric given to :func:`find_slices`: mean in the slice minus mean in
        the rest.
    rows : ndarray of int
        Positions of the slice's tasks.
    """

    rank: int
    predicates: tuple[tuple[str, str], ...]
    description: str
    size: int
    n_failed: int
    failure_rate: float
    rest_failure_rate: float
    lift: float
    score: float
    p_value: float
    adjusted_p_value: float
    metric_deltas: Mapping[str, float]
    rows: NDArray[np.intp] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary (without the rows)."""
        return {
            "rank": self.rank,
            "predicates": [list(p) for p in self.predicates],
            "description": self.description,
            "size": self.size,
            "n_failed": self.n_failed,
            "failure_rate": self.failure_rate,
            "rest_failure_rate": self.rest_failure_rate,
            "lift": self.lift,
            "score": self.score,
            "p_value": self.p_value,
            "adjusted_p_value": self.adjusted_p_value,
            "metric_deltas": dict(self.metric_deltas),
        }


def _columns(context: Any) -> dict[str, NDArray[Any]]:
    if not isinstance(context, Mapping) or not context:
        raise InputError(
            "`context` must be a non-empty mapping of column name -> one value per task "
            f"(a data frame: dict(frame)); got {describe(context)}."
        )
    columns: dict[str, NDArray[Any]] = {}
    n = None
    for name, values in context.items():
        array = np.asarray(values)
        if array.ndim != 1:
            raise InputError(
                f"Context column {name!r} must be 1-D (one value per task); got shape "
                f"{array.shape}."
            )
        if n is not None and array.shape[0] != n:
            raise InputError(
                f"Context column {name!r} has {array.shape[0]} values but the others have "
                f"{n}; every column needs one value per task."
            )
        n = array.shape[0]
        columns[str(name)] = array
    return columns


def _predicates(
    name: str, values: NDArray[Any], n_bins: int
) -> list[tuple[str, NDArray[np.bool_]]]:
    """``(condition, mask)`` for every value (or quantile bin) of one column."""
    numeric = np.issubdtype(values.dtype, np.number) and values.dtype != np.bool_
    if numeric:
        finite = np.isfinite(values.astype(np.float64))
        distinct = np.unique(values[finite])
        if distinct.size > n_bins:
            edges = np.unique(
                np.quantile(values[finite].astype(np.float64), np.linspace(0, 1, n_bins + 1))
            )
            out = []
            for i, (low, high) in enumerate(pairwise(edges)):
                last = i == edges.size - 2
                upper = values <= high if last else values < high
                mask = finite & (values >= low) & upper
                bracket = "]" if last else ")"
                out.append((f"in [{low:.4g}, {high:.4g}{bracket}", mask))
            if not finite.all():
                out.append(("is missing", ~finite))
            return out
    labels = np.array([str(v) for v in values.tolist()], dtype=object)
    return [(f"== {value!r}", labels == value) for value in sorted(set(labels.tolist()))]


def _holm(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(p_values, kind="stable")
    m = p_values.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p_values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def find_slices(
    context: Any,
    failed: ArrayLike,
    *,
    min_size: int = 20,
    alpha: float = 0.05,
    max_level: int = 2,
    k: int = 10,
    error_weight: float = 0.95,
    n_bins: int = 4,
    metrics: Mapping[str, ArrayLike] | None = None,
) -> list[Slice]:
    """The top slices of labelled tasks whose failure rate is significantly above the rest.

    Parameters
    ----------
    context : mapping of str to array-like
        One column per context field (channel, locale, amount, ...), one value per task; a
        data frame passes as ``dict(frame)``. Numeric columns with more than ``n_bins``
        distinct values are cut at quantiles; every other column is categorical.
    failed : array-like of bool or 0/1, shape (n,)
        Whether each labelled task failed (the audit said wrong, the user corrected, ...).
    min_size : int, default=20
        Smallest slice evaluated.
    alpha : float, default=0.05
        Family-wise level of the Holm-adjusted tests over every evaluated slice (1 reports
        the top slices by score whatever their p-values, as SliceLine does).
    max_level : int, default=2
        Most predicates in one slice.
    k : int, default=10
        Most slices returned.
    error_weight : float, default=0.95
        SliceLine's ``alpha``: weight of the lift against the size in the score.
    n_bins : int, default=4
        Quantile bins per numeric column.
    metrics : mapping of str to array-like, optional
        Per-task product metrics (task completed, handling seconds, ...); each slice reports
        its mean minus the rest's.

    Returns
    -------
    list of Slice
        Best score first; empty when no slice is significant (or nothing failed).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import find_slices
    >>> rng = np.random.default_rng(0)
    >>> channel = rng.choice(["app", "web", "email"], size=2000)
    >>> locale = rng.choice(["en", "de", "fr"], size=2000)
    >>> failed = rng.random(2000) < np.where((channel == "email") & (locale == "de"), 0.4, 0.05)
    >>> top = find_slices({"channel": channel, "locale": locale}, failed)[0]
    >>> top.description
    "channel == 'email' and locale == 'de'"
    """
    from scipy import stats

    where = "find_slices"
    size_floor = int(check_param("min_size", min_size, [Count(1)], where=where))
    level = float(check_param("alpha", alpha, [Interval(Real, 0, 1, closed="right")], where=where))
    depth = int(check_param("max_level", max_level, [Count(1)], where=where))
    top_k = int(check_param("k", k, [Count(1)], where=where))
    weight = float(
        check_param(
            "error_weight", error_weight, [Interval(Real, 0, 1, closed="both")], where=where
        )
    )
    bins = int(check_param("n_bins", n_bins, [Count(2)], where=where))
    columns = _columns(context)
    n = next(iter(columns.values())).shape[0]
    errors = np.asarray(failed)
    if errors.ndim != 1 or errors.shape[0] != n:
        raise InputError(
            f"`failed` must hold one 0/1 or bool per task ({n}, as the context); got "
            f"{describe(failed)}."
        )
    if errors.dtype != np.bool_ and not (
        np.issubdtype(errors.dtype, np.number) and np.isin(errors, (0, 1)).all()
    ):
        raise InputError(f"`failed` must hold booleans or 0/1; got {describe(failed)}.")
    errors = errors.astype(bool)
    deltas_of: dict[str, NDArray[np.float64]] = {}
    for name, values in (metrics or {}).items():
        array = np.asarray(values)
        if array.shape != (n,) or not np.issubdtype(array.dtype, np.number):
            raise InputError(
                f"Metric {name!r} must be numeric with one value per task ({n}); got "
                f"{describe(values)}."
            )
        deltas_of[str(name)] = array.astype(np.float64)
    total_failed = int(errors.sum())
    if n == 0 or total_failed == 0:
        return []

    atoms: list[tuple[int, str, NDArray[np.bool_]]] = []
    for position, (name, values) in enumerate(columns.items()):
        for condition, mask in _predicates(name, values, bins):
            if mask.sum() >= size_floor:
                atoms.append((position, f"{name} {condition}", mask))
    # Level-wise lattice: a slice is a sorted tuple of atom indices on distinct columns.
    evaluated: list[tuple[tuple[int, ...], NDArray[np.bool_]]] = []
    frontier: list[tuple[tuple[int, ...], NDArray[np.bool_]]] = [
        ((i,), atom[2]) for i, atom in enumerate(atoms)
    ]
    for _ in range(depth):
        evaluated.extend(frontier)
        following: list[tuple[tuple[int, ...], NDArray[np.bool_]]] = []
        for members, mask in frontier:
            used = {atoms[i][0] for i in members}
            for j in range(members[-1] + 1, len(atoms)):
                if atoms[j][0] in used:
                    continue
                joined = mask & atoms[j][2]
                if joined.sum() >= size_floor:
                    following.append(((*members, j), joined))
        frontier = following
        if not frontier:
            break
    if not evaluated:
        return []
    masks = np.stack([mask for _, mask in evaluated])
    sizes = masks.sum(axis=1)
    fails = masks.astype(np.int64) @ errors.astype(np.int64)
    overall = total_failed / n
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = weight * ((fails / sizes) / overall - 1.0) - (1.0 - weight) * (n / sizes - 1.0)
    p_values = np.asarray(stats.hypergeom.sf(fails - 1, n, total_failed, sizes), dtype=np.float64)
    p_values = np.clip(p_values, 0.0, 1.0)
    adjusted = _holm(p_values)
    chosen = np.flatnonzero((adjusted <= level) & (scores > 0))
    chosen = chosen[np.lexsort((np.arange(chosen.size), -scores[chosen]))][:top_k]
    out = []
    for rank, i in enumerate(chosen, start=1):
        members, mask = evaluated[int(i)]
        rest = ~mask
        predicates = tuple(
            (list(columns)[atoms[j][0]], atoms[j][1][len(list(columns)[atoms[j][0]]) + 1 :])
            for j in members
        )
        out.append(
            Slice(
                rank=rank,
                predicates=predicates,
                description=" and ".join(atoms[j][1] for j in members),
                size=int(sizes[i]),
                n_failed=int(fails[i]),
                failure_rate=float(fails[i] / sizes[i]),
                rest_failure_rate=float(errors[rest].mean()) if rest.any() else float("nan"),
                lift=float(fails[i] / sizes[i] / overall),
                score=float(scores[i]),
                p_value=float(p_values[i]),
                adjusted_p_value=float(adjusted[i]),
                metric_deltas={
                    name: float(values[mask].mean() - values[rest].mean())
                    if rest.any()
                    else float("nan")
                    for name, values in deltas_of.items()
                },
                rows=np.flatnonzero(mask),
            )
        )
    return out
