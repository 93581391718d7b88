"""p-values and upper confidence bounds for an error rate measured on a sample.

A threshold is certified when the hypothesis "the error rate among the inputs it answers
exceeds ``target_risk``" is rejected at level δ = 1 − ``confidence_level``. Two p-values
are available for that hypothesis, both computed from the number of errors among the
``n_answered`` answered samples:

``"binomial"``
    The exact binomial tail, P(Binomial(n, target_risk) ≤ errors). Exact for 0/1 errors
    of i.i.d. samples (Clopper & Pearson, 1934); the tightest valid choice here.
``"hoeffding_bentkus"``
    The minimum of the Hoeffding p-value, exp(−n·h(r̂ ∧ α, α)) with h the Bernoulli
    relative entropy, and the Bentkus p-value, e·P(Binomial(n, α) ≤ ⌈n·r̂⌉), as in
    Learn-then-Test (Angelopoulos, Bates, Candès, Jordan & Lei, 2021, section 3.1). Valid for
    any loss in [0, 1] and therefore more conservative than ``"binomial"`` for 0/1 errors.

Every function here is vectorised over ``errors`` and ``n_answered``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from failwise._params import Interval, Options, check_param
from failwise._stats import _binomial_cdf, _cp_upper, _hb_upper, _hoeffding, _hoeffding_bentkus
from failwise.exceptions import InputError

__all__ = [
    "BOUNDS",
    "Bound",
    "binomial_p_value",
    "hoeffding_bentkus_p_value",
    "required_answered_samples",
    "risk_p_value",
    "risk_upper_bound",
]

#: The Hoeffding p-value and the Hoeffding–Bentkus p-value of :mod:`failwise._stats`.
_hb_hoeffding = _hoeffding
_hb_at = _hoeffding_bentkus

Bound = Literal["binomial", "hoeffding_bentkus"]

#: The p-values (and matching upper bounds) a certificate can use.
BOUNDS: Final[tuple[str, ...]] = ("binomial", "hoeffding_bentkus")

_MAX_SEARCH: Final = 1 << 40


#: ``target_risk`` and ``confidence_level`` lie strictly between 0 and 1.
_OPEN_UNIT: Final = [Interval(Real, 0, 1, closed="neither")]
_BOUND: Final = [Options(BOUNDS)]


def _check_counts(
    errors: ArrayLike, n_answered: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate error counts against sample sizes; return both as broadcast float arrays."""
    errs = np.asarray(errors)
    ns = np.asarray(n_answered)
    for name, array in (("errors", errs), ("n_answered", ns)):
        if array.dtype.kind not in "iuf" or (
            array.dtype.kind == "f"
            and not (np.isfinite(array).all() and np.all(array == np.round(array)))
        ):
            raise InputError(
                f"`{name}` must hold non-negative whole counts; got {name} of dtype "
                f"{array.dtype}. Pass integer counts of samples."
            )
    try:
        errs_b, ns_b = np.broadcast_arrays(errs.astype(np.float64), ns.astype(np.float64))
    except ValueError:
        raise InputError(
            f"`errors` and `n_answered` must have the same shape; got {errs.shape} and "
            f"{ns.shape}. Pass one error count per sample size."
        ) from None
    if errs_b.size and (errs_b.min() < 0 or (errs_b > ns_b).any()):
        raise InputError(
            "`errors` must lie between 0 and `n_answered`; got "
            f"errors={errs_b.ravel()[:3].tolist()}… for n_answered={ns_b.ravel()[:3].tolist()}…. "
            "Count the wrong answers among the answered samples."
        )
    return errs_b, ns_b


def _p_value(
    errors: NDArray[np.float64], n: NDArray[np.float64], alpha: float, bound: str
) -> NDArray[np.float64]:
    if bound == "binomial":
        # P(Binomial(n, alpha) <= errors); 1 when nothing was answered.
        return np.asarray(_binomial_cdf(errors, n, alpha), dtype=np.float64)
    return np.asarray(_hoeffding_bentkus(errors, n, alpha), dtype=np.float64)


def binomial_p_value(
    errors: ArrayLike, n_answered: ArrayLike, target_risk: float
) -> NDArray[np.float64]:
    """Exact binomial p-value of "error rate > ``target_risk``".

    Parameters
    ----------
    errors : int or array-like of int
        Wrong answers among the answered samples.
    n_answered : int or array-like of int, broadcastable with ``errors``
        Answered samples. Where it is 0 the p-value is 1 (no evidence).
    target_risk : float in (0, 1)
        The error rate α under test.

    Returns
    -------
    ndarray of float
        P(Binomial(n_answered, α) ≤ errors), with the broadcast shape of the inputs (0-D
        for scalars). Equals ``scipy.stats.binomtest(errors, n_answered, α,
        alternative="less").pvalue``.

    References
    ----------
    Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits
    illustrated in the case of the binomial. *Biometrika* 26(4).

    Examples
    --------
    >>> from failwise.policy._bounds import binomial_p_value
    >>> round(float(binomial_p_value(0, 149, 0.02)), 4)
    0.0493
    """
    alpha = float(check_param("target_risk", target_risk, _OPEN_UNIT))
    errs, ns = _check_counts(errors, n_answered)
    return _p_value(errs, ns, alpha, "binomial")


def hoeffding_bentkus_p_value(
    errors: ArrayLike, n_answered: ArrayLike, target_risk: float
) -> NDArray[np.float64]:
    """Hoeffding–Bentkus p-value of "error rate > ``target_risk``" (Learn-then-Test).

    Parameters
    ----------
    errors : int or array-like of int
        Wrong answers among the answered samples.
    n_answered : int or array-like of int, broadcastable with ``errors``
        Answered samples. Where it is 0 the p-value is 1.
    target_risk : float in (0, 1)
        The error rate α under test.

    Returns
    -------
    ndarray of float
        min(exp(−n·h(r̂ ∧ α, α)), e·P(Binomial(n, α) ≤ ⌈n·r̂⌉), 1) with r̂ = errors / n and
        h(a, b) = a·log(a/b) + (1 − a)·log((1 − a)/(1 − b)).

    References
    ----------
    Angelopoulos, A. N., Bates, S., Candès, E. J., Jordan, M. I. & Lei, L. (2021).
    Learn then Test: Calibrating predictive algorithms to achieve risk control.
    arXiv:2110.01052, section 3.1.

    Examples
    --------
    >>> from failwise.policy._bounds import hoeffding_bentkus_p_value
    >>> round(float(hoeffding_bentkus_p_value(0, 149, 0.02)), 4)
    0.0493
    >>> round(float(hoeffding_bentkus_p_value(2, 300, 0.02)), 3)
    0.16
    """
    alpha = float(check_param("target_risk", target_risk, _OPEN_UNIT))
    errs, ns = _check_counts(errors, n_answered)
    return _p_value(errs, ns, alpha, "hoeffding_bentkus")


def risk_p_value(
    errors: ArrayLike, n_answered: ArrayLike, target_risk: float, bound: Bound = "binomial"
) -> NDArray[np.float64]:
    """p-value of "error rate > ``target_risk``" with the chosen ``bound``.

    See :func:`binomial_p_value` and :func:`hoeffding_bentkus_p_value`.

    Examples
    --------
    >>> from failwise.policy._bounds import risk_p_value
    >>> risk_p_value([0, 5], [10, 10], 0.5).round(4).tolist()
    [0.001, 0.623]
    """
    check_param("bound", bound, _BOUND)
    alpha = float(check_param("target_risk", target_risk, _OPEN_UNIT))
    errs, ns = _check_counts(errors, n_answered)
    return _p_value(errs, ns, alpha, bound)


def risk_upper_bound(
    errors: ArrayLike,
    n_answered: ArrayLike,
    confidence_level: float = 0.95,
    bound: Bound = "binomial",
) -> NDArray[np.float64]:
    """One-sided upper confidence bound of an error rate.

    For ``bound="binomial"`` this is the Clopper–Pearson bound: the error rate u with
    P(Binomial(n, u) ≤ errors) = 1 − ``confidence_level``. For ``"hoeffding_bentkus"`` it
    is the smallest u whose Hoeffding–Bentkus p-value is at most 1 − ``confidence_level``
    (found by bisection). Either way, the p-value of "error rate > α" is at most
    1 − ``confidence_level`` exactly when α is at least the bound, so a threshold is
    certified at ``target_risk`` exactly when its bound is at most ``target_risk``.

    Parameters
    ----------
    errors : int or array-like of int
        Wrong answers among the answered samples.
    n_answered : int or array-like of int, broadcastable with ``errors``
        Answered samples. Where it is 0, or where every answer is wrong, the bound is 1.
    confidence_level : float in (0, 1), default=0.95
        Probability that the true error rate lies below the bound.
    bound : {"binomial", "hoeffding_bentkus"}, default="binomial"

    Returns
    -------
    ndarray of float in [0, 1]
        The bound, with the broadcast shape of the inputs (0-D for scalars).

    References
    ----------
    Clopper & Pearson (1934), *Biometrika* 26(4); Angelopoulos et al. (2021), Learn then
    Test, arXiv:2110.01052.

    Examples
    --------
    >>> from failwise.policy._bounds import risk_upper_bound
    >>> round(float(risk_upper_bound(0, 149, 0.95)), 4)
    0.0199
    >>> round(float(risk_upper_bound(3, 1000, 0.95)), 4)
    0.0078
    """
    check_param("bound", bound, _BOUND)
    level = float(check_param("confidence_level", confidence_level, _OPEN_UNIT))
    errs, ns = _check_counts(errors, n_answered)
    return _upper_bound(errs, ns, level, bound)


def _upper_bound(
    errors: NDArray[np.float64], n: NDArray[np.float64], level: float, bound: str
) -> NDArray[np.float64]:
    if bound == "binomial":
        return np.asarray(_cp_upper(errors, n, level), dtype=np.float64)
    return np.asarray(_hb_upper(errors, n, level), dtype=np.float64)


def required_answered_samples(
    target_risk: float,
    confidence_level: float = 0.95,
    *,
    error_rate: float = 0.0,
    bound: Bound = "binomial",
) -> int:
    """How many answered, labelled samples a certificate needs at a given error rate.

    The smallest n such that n answered samples with ``error_rate``·n errors reject "error
    rate > ``target_risk``" at level 1 − ``confidence_level`` (the binomial tail is
    interpolated between whole error counts, so the answer grows smoothly with
    ``error_rate``). With
    ``error_rate=0`` this is the fewest answered samples any threshold must have before it
    can be certified at all: ⌈log(1 − confidence_level) / log(1 − target_risk)⌉ for both
    bounds. The count refers to *answered* samples; divide by the share of inputs you expect
    to answer to get the size of the labelled set.

    Parameters
    ----------
    target_risk : float in (0, 1)
        The error rate to certify.
    confidence_level : float in (0, 1), default=0.95
    error_rate : float in [0, target_risk), default=0.0
        The error rate the answered samples are assumed to show.
    bound : {"binomial", "hoeffding_bentkus"}, default="binomial"

    Returns
    -------
    int

    Raises
    ------
    InputError
        If ``error_rate`` is not below ``target_risk`` (no sample size certifies it).

    Examples
    --------
    >>> from failwise.policy._bounds import required_answered_samples
    >>> required_answered_samples(0.02, 0.95)
    149
    >>> required_answered_samples(0.02, 0.95, error_rate=0.01)
    569
    """
    check_param("bound", bound, _BOUND)
    alpha = float(check_param("target_risk", target_risk, _OPEN_UNIT))
    level = float(check_param("confidence_level", confidence_level, _OPEN_UNIT))
    rate = float(error_rate)
    if not 0.0 <= rate < alpha:
        raise InputError(
            f"`error_rate` must lie in [0, target_risk) = [0, {alpha:g}); got {error_rate!r}. "
            "A sample whose error rate reaches the target never certifies it."
        )
    return _required_answered(alpha, level, rate, bound)


def _required_answered(alpha: float, level: float, rate: float, bound: str) -> int:
    """:func:`required_answered_samples` without argument checks."""
    delta = 1.0 - level
    factor = math.e if bound == "hoeffding_bentkus" else 1.0

    def certifies(n: int) -> bool:
        # The p-value with a real-valued error count rate·n (the binomial tail through the
        # regularised incomplete beta function), so that the answer grows smoothly with the
        # error rate instead of jumping with ⌊rate·n⌋.
        p = factor * float(_binomial_cdf(rate * n, float(n), alpha))
        if bound == "hoeffding_bentkus":
            hoeffding = float(_hb_hoeffding(np.array(rate), np.array(float(n)), alpha))
            p = min(p, hoeffding)
        return p <= delta

    if rate == 0.0:
        # With no error both p-values equal (1 − α)^n: solve, then settle any rounding.
        def clean(n: int) -> bool:
            return (1.0 - alpha) ** n <= delta

        guess = max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))
        while guess > 1 and clean(guess - 1):
            guess -= 1
        while not clean(guess):
            guess += 1
        return guess
    high = 1
    while not certifies(high):
        high *= 2
        if high > _MAX_SEARCH:  # pragma: no cover - error rate within ~1e-6 of the target
            raise InputError(
                f"No sample size up to {_MAX_SEARCH} certifies target_risk={alpha:g} at an "
                f"error rate of {rate:g}; lower `error_rate` or raise `target_risk`."
            )
    low = high // 2  # does not certify (or is 0)
    while high - low > 1:
        mid = (low + high) // 2
        if certifies(mid):
            high = mid
        else:
            low = mid
    return high


def _answered_for_errors(alpha: float, level: float, errors: int, bound: str) -> int:
    """Smallest n at which n answered samples with ``errors`` errors pass at 1 − ``level``.

    Both p-values fall as n grows with the error count fixed: bracket n on a geometric grid,
    then scan the bracket, each in one vectorised call.
    """
    delta = 1.0 - level
    if errors == 0:
        return _required_answered(alpha, level, 0.0, bound)
    start = errors + 1
    grid = np.unique(np.ceil(start * 1.1 ** np.arange(400)))
    grid = grid[grid <= _MAX_SEARCH]
    e = float(errors)
    passing = np.flatnonzero(_p_value(np.full(grid.shape, e), grid, alpha, bound) <= delta)
    if not passing.size:  # pragma: no cover - needs an error count near 1e16 · target_risk
        raise InputError(f"No sample size certifies {errors} errors at target_risk={alpha:g}.")
    high = int(grid[passing[0]])
    low = int(grid[passing[0] - 1]) + 1 if passing[0] > 0 else errors + 1
    n = np.arange(low, high + 1, dtype=np.float64)
    first = np.flatnonzero(_p_value(np.full(n.shape, e), n, alpha, bound) <= delta)[0]
    return int(n[first])


# The cheap bounds must decide a candidate by this relative margin, so that rounding in
# them never decides a candidate differently from its fully computed p-value.
_SCREEN_MARGIN: Final = 1e-6


def _first_failure(
    errors: NDArray[Any],
    n_answered: NDArray[Any],
    alpha: float,
    level: NDArray[np.float64],
    bound: str,
) -> int | None:
    """Index of the first candidate whose p-value exceeds its ``level`` (None if all pass).

    Fully computed p-values need the incomplete beta function, the costly part of a fit. Cheap
    bounds decide most candidates first: with π = P(Binomial(n, α) = e) and
    ρ = e(1 − α) / ((n − e + 1)α) < 1, the binomial tail lies in [π, π / (1 − ρ)]
    (its terms fall geometrically below e); the Hoeffding term, cheaper still, bounds either
    p-value from above. Only candidates the bounds cannot decide get the full computation.

    ``level`` must not decrease along the block (it only grows while no test fails).
    """
    # Along the block the level never decreases and n grows, so a candidate that adds no
    # error has a p-value no larger than its predecessor's: only the first candidate and
    # those that add an error can fail.
    critical = np.flatnonzero(np.diff(errors, prepend=-1) > 0)
    e = errors[critical].astype(np.float64)
    n = n_answered[critical].astype(np.float64)
    level = level[critical]
    # At or above ⌈nα⌉ errors the count reaches the median of Binomial(n, α), so either
    # p-value is at least 1/2: a sure failure at any level below 1/2. Nothing after the
    # first such candidate needs a look.
    at_median = np.flatnonzero((e >= np.ceil(n * alpha)) & (level < 0.5))
    cut = int(at_median[0]) if at_median.size else e.size
    e, n, level = e[:cut], n[:cut], level[:cut]
    hoeffding = _hb_hoeffding(e / n, n, alpha)
    rest = np.flatnonzero(hoeffding > level * (1.0 - _SCREEN_MARGIN))
    e_rest, n_rest, level_rest = e[rest], n[rest], level[rest]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_pmf = (
            special.gammaln(n_rest + 1.0)
            - special.gammaln(e_rest + 1.0)
            - special.gammaln(n_rest - e_rest + 1.0)
            + e_rest * math.log(alpha)
            + (n_rest - e_rest) * math.log1p(-alpha)
        )
        low = np.exp(log_pmf)
        ratio = e_rest * (1.0 - alpha) / ((n_rest - e_rest + 1.0) * alpha)
        high = np.where(ratio < 1.0, low / (1.0 - ratio), np.inf)
    if bound != "binomial":
        high = np.minimum(hoeffding[rest], math.e * high)
        low = np.minimum(hoeffding[rest], math.e * low)
    sure_fail = np.flatnonzero(low > level_rest * (1.0 + _SCREEN_MARGIN))
    limit = int(sure_fail[0]) if sure_fail.size else rest.size
    unsure = np.flatnonzero(high[:limit] > level_rest[:limit] * (1.0 - _SCREEN_MARGIN))
    # Full p-values for the undecided, a few at a time: only the first failure matters.
    chunk = 64
    for first in range(0, unsure.size, chunk):
        part = unsure[first : first + chunk]
        full = _p_value(e_rest[part], n_rest[part], alpha, bound)
        failed = np.flatnonzero(full > level_rest[part])
        if failed.size:
            return int(critical[rest[part[failed[0]]]])
        chunk *= 4
    if limit < rest.size:
        return int(critical[rest[limit]])
    return int(critical[cut]) if cut < critical.size else None
