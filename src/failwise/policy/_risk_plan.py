"""The pre-registered points of :class:`~failwise.policy.RiskThreshold`.

Two plans, each a function of the number of samples, ``target_risk``, δ and the bound only,
never of a label: the *joint-levels* plan for the exact binomial p-value, and the *split*
plan (shares of δ added up, Bonferroni style) for the Hoeffding–Bentkus p-value, whose
tests have no exact joint distribution to follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy import special

from failwise.policy._bounds import _answered_for_errors

#: Split plan: shares of δ on the zero-error start, the deep start and the restart points.
_ZERO_SHARE: Final = 0.4
_DEEP_SHARE: Final = 0.5
_RESTART_SHARE: Final = 0.1

#: Split plan: errors the deep start may allow, most first.
_DEEP_ERRORS: Final = (3, 2, 1)
#: Both plans keep a start allowing errors only within this share of the samples.
_REACH: Final = 0.6

#: Joint plan: errors the starts allow (those beyond the reach are dropped, not the first).
_JOINT_ERRORS: Final = tuple(range(6))

# Bisection on the joint plan's common level stops at this width.
_LEVEL_TOLERANCE: Final = 1e-12


@dataclass(frozen=True)
class Plan:
    """Pre-registered points: starts (answered counts, errors allowed, levels), restarts.

    ``deeper[j]`` is what a candidate answering fewer rows than start or restart point j
    (and at least as many as point j − 1) loses from δ in the chain: for the joint plan the
    flat-null probability that some point from j on passes, for the split plan unused.
    """

    points: NDArray[np.intp]
    errors: NDArray[np.intp]
    levels: NDArray[np.float64]
    restarts: NDArray[np.intp]
    restart_levels: NDArray[np.float64]
    restart_errors: NDArray[np.intp]
    deeper: NDArray[np.float64]
    joint: bool


def flat_null_hit(starts: list[tuple[int, int]], alpha: float) -> float:
    """P(some start passes) when every row is wrong with probability ``alpha``, independently.

    ``starts`` holds (answered count k, errors allowed b), sorted by k; start (k, b) passes
    when the top k rows hold at most b errors. The error count is followed from start to
    start, counts above the largest b dropped (they can no longer pass), so the overlap of
    the starts' tests is counted once, not once per start as a sum of levels does.
    """
    most = max((b for _, b in starts), default=-1)
    if most < 0:
        return 0.0
    mass = np.zeros(most + 1)
    mass[0] = 1.0
    hit, previous = 0.0, 0
    counts = np.arange(most + 1, dtype=np.float64)
    for k, b in starts:
        rows = float(k - previous)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_pmf = (
                special.gammaln(rows + 1.0)
                - special.gammaln(counts + 1.0)
                - special.gammaln(np.maximum(rows - counts, 0.0) + 1.0)
                + counts * np.log(alpha)
                + (rows - counts) * np.log1p(-alpha)
            )
        step = np.where(counts <= rows, np.exp(log_pmf), 0.0)
        mass = np.convolve(mass, step)[: most + 1]
        previous = k
        if b >= 0:
            hit += float(mass[: b + 1].sum())
            mass[: b + 1] = 0.0
    return hit


def _critical_count(n: int, alpha: float, level: float) -> int:
    """Most errors among ``n`` rows that pass the binomial test at ``level`` (−1: none)."""
    count = int(np.nan_to_num(special.bdtrik(level, n, alpha), nan=0.0))
    count = min(max(count, 0), n)
    while count >= 0 and special.bdtr(count, n, alpha) > level:
        count -= 1
    while count < n and special.bdtr(count + 1, n, alpha) <= level:
        count += 1
    return count


def _fewest(alpha: float, level: float, errors: int) -> int:
    """Fewest answered rows with which ``errors`` errors pass the binomial test at ``level``."""
    guess = special.bdtrin(errors, level, alpha)
    n = max(int(guess) if np.isfinite(guess) else errors + 1, errors + 1)
    while n > errors + 1 and special.bdtr(errors, n - 1, alpha) <= level:
        n -= 1
    while special.bdtr(errors, n, alpha) > level:
        n += 1
    return n


def _restarts(
    n_samples: int, last: int, share: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Restart points 2^k from twice ``last`` up to n, and their levels ∝ 2^(k/2)."""
    counts = 2 ** np.arange(int(np.log2(max(n_samples, 1))) + 1)
    counts = counts[counts >= 2 * last]
    return counts, share * np.sqrt(counts) / np.sqrt(counts).sum() if counts.size else np.empty(0)


def _joint_points(
    n_samples: int, alpha: float, delta: float, level: float, errors: tuple[int, ...]
) -> tuple[list[tuple[int, int]], list[tuple[int, int, float]]]:
    starts = [(_fewest(alpha, level, e), e) for e in errors]
    return starts, _joint_restarts(n_samples, alpha, delta, max(k for k, _ in starts))


@lru_cache(maxsize=1024)
def _joint_restarts(
    n_samples: int, alpha: float, delta: float, last: int
) -> list[tuple[int, int, float]]:
    """Restart points beyond ``last``: (answered count, errors allowed, level)."""
    counts, shares = _restarts(n_samples, last, _RESTART_SHARE * delta)
    return [
        (count, b, share)
        for count, share in zip(counts.tolist(), shares.tolist(), strict=True)
        if (b := _critical_count(count, alpha, share)) >= 0
    ]


@lru_cache(maxsize=256)
def _joint_plan(n_samples: int, alpha: float, delta: float) -> Plan:
    """Starts allowing 0–5 errors at one common level λ, restarts on 10 % of δ.

    λ is the largest level (by bisection) at which the starts and restarts pass together
    with probability at most δ under the flat null; starts beyond 60 % of the samples are
    then dropped and λ found again for the rest (the zero-error start always stays).
    """
    errors = _JOINT_ERRORS
    while True:

        def size(level: float, errors: tuple[int, ...] = errors) -> float:
            starts, restarts = _joint_points(n_samples, alpha, delta, level, errors)
            return flat_null_hit([*starts, *((k, b) for k, b, _ in restarts)], alpha)

        low, high = 1e-9, delta
        if size(high) <= delta:
            low = high
        while high - low > _LEVEL_TOLERANCE:
            middle = (low + high) / 2
            low, high = (middle, high) if size(middle) <= delta else (low, middle)
        starts, restarts = _joint_points(n_samples, alpha, delta, low, errors)
        kept = tuple(e for k, e in starts if e == 0 or k <= _REACH * n_samples)
        if kept == errors:
            break
        errors = kept
    every = [*starts, *((k, b) for k, b, _ in restarts)]
    deeper = [flat_null_hit(every[j:], alpha) for j in range(len(every))] + [0.0]
    return Plan(
        points=np.array([k for k, _ in starts], dtype=np.intp),
        errors=np.array([e for _, e in starts], dtype=np.intp),
        levels=np.full(len(starts), low),
        restarts=np.array([k for k, _, _ in restarts], dtype=np.intp),
        restart_levels=np.array([w for _, _, w in restarts], dtype=np.float64),
        restart_errors=np.array([b for _, b, _ in restarts], dtype=np.intp),
        deeper=np.array(deeper),
        joint=True,
    )


def _split_plan(n_samples: int, alpha: float, delta: float, bound: str) -> Plan:
    """Zero-error start on 40 % of δ, a deep start on 50 %, restarts on 10 %."""
    deep = [
        (errors, point)
        for errors in _DEEP_ERRORS
        if (point := _answered_for_errors(alpha, 1.0 - _DEEP_SHARE * delta, errors, bound))
        <= _REACH * n_samples
    ]
    if deep:
        shares = [_ZERO_SHARE, _DEEP_SHARE]
        points = [_answered_for_errors(alpha, 1.0 - _ZERO_SHARE * delta, 0, bound), deep[0][1]]
        allowed = [0, deep[0][0]]
    else:
        allowed = [0]
        shares = [_ZERO_SHARE + _DEEP_SHARE]
        points = [_answered_for_errors(alpha, 1.0 - shares[0] * delta, 0, bound)]
    # With no power of two in range the restarts' share goes to the first start.
    counts, restart_levels = _restarts(n_samples, points[-1], _RESTART_SHARE * delta)
    if not counts.size:
        shares[0] += _RESTART_SHARE
        points[0] = _answered_for_errors(alpha, 1.0 - shares[0] * delta, 0, bound)
    return Plan(
        points=np.array(points, dtype=np.intp),
        errors=np.array(allowed, dtype=np.intp),
        levels=np.array(shares) * delta,
        restarts=counts.astype(np.intp),
        restart_levels=restart_levels,
        restart_errors=np.full(counts.size, -1, dtype=np.intp),
        deeper=np.empty(0),
        joint=False,
    )


def _plan(n_samples: int, alpha: float, delta: float, bound: str) -> Plan:
    """The plan for ``bound``: joint levels for the binomial, split shares otherwise."""
    if bound == "binomial":
        return _joint_plan(n_samples, alpha, delta)
    return _split_plan(n_samples, alpha, delta, bound)
