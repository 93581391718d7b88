"""Binomial confidence bounds and p-values: the one copy every certificate uses.

Every function is vectorised: counts broadcast against each other, a scalar input gives a
0-d array (``float(...)`` turns it into a number). Counts may be real-valued where a
weighted or estimated count is meaningful (Wilson, the incomplete-beta tails); the exact
intervals are exact for whole counts. Only :mod:`scipy.special` is used, so importing this
module stays cheap.

Conventions
-----------
- ``successes`` out of ``trials``; where ``trials`` is 0 there is no evidence, and an
  interval is ``(0, 1)`` and a p-value is 1.
- ``confidence_level`` is the coverage of the bound or interval, e.g. 0.95. A one-sided
  bound at 0.95 is the matching end of a two-sided interval at 0.90.

References
----------
Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits illustrated
in the case of the binomial. *Biometrika* 26(4).
Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
*JASA* 22(158).
Hoeffding, W. (1963). Probability inequalities for sums of bounded random variables. *JASA* 58.
Bentkus, V. (2004). On Hoeffding's inequalities. *Annals of Probability* 32(2).
Angelopoulos, A. N., Bates, S., Candès, E. J., Jordan, M. I. & Lei, L. (2021). Learn then
Test: Calibrating predictive algorithms to achieve risk control. arXiv:2110.01052.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from failwise._params import Interval, check_param
from failwise.exceptions import InputError

__all__ = [
    "binomial_cdf",
    "binomial_p_value",
    "binomial_sf",
    "clopper_pearson_interval",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "hoeffding_bentkus_p_value",
    "hoeffding_bentkus_upper",
    "hoeffding_p_value",
    "normal_quantile",
    "wilson_interval",
    "wilson_lower",
    "wilson_upper",
]

# Inverting the Hoeffding–Bentkus p-value: _ROUNDS rounds of a _GRID-point search shrink
# the interval by (_GRID − 1)^_ROUNDS ≈ 1e12.
_GRID: Final = 33
_ROUNDS: Final = 8


# ------------------------------------------------------------------------------ checks


_OPEN_UNIT: Final = [Interval(Real, 0, 1, closed="neither")]


def _level(confidence_level: Any, name: str = "confidence_level") -> float:
    return float(check_param(name, confidence_level, _OPEN_UNIT))


def _counts(
    successes: ArrayLike, trials: ArrayLike, names: tuple[str, str] = ("successes", "trials")
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Broadcast two count arrays to float64 and check 0 <= successes <= trials."""
    arrays = []
    for name, value in zip(names, (successes, trials), strict=True):
        array = np.asarray(value)
        if array.dtype.kind not in "iuf" or (
            array.dtype.kind == "f" and not np.isfinite(array).all()
        ):
            raise InputError(
                f"`{name}` must hold finite non-negative counts; got dtype {array.dtype}"
                + (" with NaN or infinite values" if array.dtype.kind == "f" else "")
                + ". Pass numbers of samples."
            )
        arrays.append(array.astype(np.float64))
    try:
        k, n = np.broadcast_arrays(arrays[0], arrays[1])
    except ValueError:
        raise InputError(
            f"`{names[0]}` and `{names[1]}` must have broadcastable shapes; got "
            f"{arrays[0].shape} and {arrays[1].shape}. Pass one count per sample size."
        ) from None
    if k.size and (k.min() < 0 or n.min() < 0 or (k > n).any()):
        raise InputError(
            f"`{names[0]}` must lie between 0 and `{names[1]}`; got {names[0]}="
            f"{k.ravel()[:3].tolist()} for {names[1]}={n.ravel()[:3].tolist()} (first values). "
            f"Count the {names[0]} among the {names[1]}."
        )
    return k, n


def _rate(value: Any, name: str) -> NDArray[np.float64]:
    array = np.asarray(value, dtype=np.float64)
    if not (np.isfinite(array).all() and (array > 0).all() and (array < 1).all()):
        raise InputError(
            f"`{name}` must lie strictly between 0 and 1; got {value!r}. It is the rate under "
            "test, e.g. 0.02."
        )
    return array


def normal_quantile(probability: float) -> float:
    """The standard normal quantile Φ⁻¹(``probability``).

    Examples
    --------
    >>> round(normal_quantile(0.975), 4)
    1.96
    """
    return float(special.ndtri(_level(probability, "probability")))


# ------------------------------------------------------------------------------ binomial tails


def _binomial_cdf(k: Any, n: Any, p: Any) -> Any:
    """P(Binomial(n, p) <= k) by the regularised incomplete beta function, no checks.

    Valid for whole and real-valued ``k``; 1 where ``k >= n`` (including n = 0), 0 where
    ``k < 0``.
    """
    full = k >= n
    with np.errstate(all="ignore"):
        tail = special.betainc(np.where(full, 1.0, n - k), np.maximum(k, 0.0) + 1.0, 1.0 - p)
    return np.where(full, 1.0, np.where(k < 0, 0.0, tail))


def _binomial_sf(k: Any, n: Any, p: Any) -> Any:
    """P(Binomial(n, p) >= k), no checks; 1 where ``k <= 0``, 0 where ``k > n``."""
    none = k <= 0
    with np.errstate(all="ignore"):
        tail = special.betainc(np.where(none, 1.0, k), np.maximum(n - k, 0.0) + 1.0, p)
    return np.where(none, 1.0, np.where(k > n, 0.0, tail))


def binomial_cdf(successes: ArrayLike, trials: ArrayLike, probability: ArrayLike) -> Any:
    """P(Binomial(``trials``, ``probability``) ≤ ``successes``).

    Parameters
    ----------
    successes, trials : array-like of counts, broadcastable
        Real-valued ``successes`` interpolate between whole counts (the incomplete beta
        function), which keeps sample-size searches smooth.
    probability : float or array-like in (0, 1)

    Returns
    -------
    ndarray of float in [0, 1]

    Examples
    --------
    >>> round(float(binomial_cdf(2, 10, 0.5)), 6)
    0.054688
    """
    k, n = _counts(successes, trials)
    return np.asarray(_binomial_cdf(k, n, _rate(probability, "probability")), dtype=np.float64)


def binomial_sf(successes: ArrayLike, trials: ArrayLike, probability: ArrayLike) -> Any:
    """P(Binomial(``trials``, ``probability``) ≥ ``successes``).

    The p-value of "the success rate is at most ``probability``" after ``successes``
    successes (e.g. certifying that an accuracy exceeds a floor). Equals
    ``scipy.stats.binom.sf(successes - 1, trials, probability)``.

    Examples
    --------
    >>> round(float(binomial_sf(8, 10, 0.5)), 6)
    0.054688
    """
    k, n = _counts(successes, trials)
    return np.asarray(_binomial_sf(k, n, _rate(probability, "probability")), dtype=np.float64)


def binomial_p_value(errors: ArrayLike, trials: ArrayLike, target_risk: ArrayLike) -> Any:
    """Exact binomial p-value of "the error rate is at least ``target_risk``".

    P(Binomial(trials, target_risk) ≤ errors): small when far fewer errors were seen than
    the target allows. 1 where nothing was tried. Equals
    ``scipy.stats.binomtest(errors, trials, target_risk, alternative="less").pvalue``.

    Examples
    --------
    >>> round(float(binomial_p_value(0, 149, 0.02)), 4)
    0.0493
    """
    return binomial_cdf(errors, trials, target_risk)


def _hoeffding(observed_rate: Any, n: Any, alpha: Any) -> Any:
    # exp(-n·h(min(r̂, α), α)), h the Bernoulli relative entropy (Hoeffding, 1963, eq. 2.1).
    rate = np.minimum(observed_rate, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(rate > 0, rate * np.log(rate / alpha), 0.0)
        second = (1.0 - rate) * np.log((1.0 - rate) / (1.0 - alpha))
    return np.exp(-n * (first + second))


def _hoeffding_bentkus(errors: Any, n: Any, alpha: Any) -> Any:
    """Hoeffding–Bentkus p-value, no checks; alpha may be an array in (0, 1); 1 where n = 0."""
    alpha = np.clip(alpha, 1e-300, 1.0 - 1e-16)
    hoeffding = _hoeffding(errors / np.maximum(n, 1.0), n, alpha)
    bentkus = math.e * _binomial_cdf(np.ceil(errors), n, alpha)
    return np.where(n > 0, np.minimum(np.minimum(hoeffding, bentkus), 1.0), 1.0)


def hoeffding_p_value(errors: ArrayLike, trials: ArrayLike, target_risk: ArrayLike) -> Any:
    """Hoeffding p-value exp(−n·h(r̂ ∧ α, α)) of "the error rate is at least α".

    Valid for any loss in [0, 1] with mean ``errors / trials``.

    Examples
    --------
    >>> round(float(hoeffding_p_value(0, 149, 0.02)), 4)
    0.0493
    """
    k, n = _counts(errors, trials, ("errors", "trials"))
    alpha = _rate(target_risk, "target_risk")
    return np.asarray(np.where(n > 0, _hoeffding(k / np.maximum(n, 1.0), n, alpha), 1.0))


def hoeffding_bentkus_p_value(errors: ArrayLike, trials: ArrayLike, target_risk: ArrayLike) -> Any:
    """Hoeffding–Bentkus p-value of "the error rate is at least ``target_risk``".

    min(exp(−n·h(r̂ ∧ α, α)), e·P(Binomial(n, α) ≤ ⌈n·r̂⌉), 1), with h the Bernoulli
    relative entropy, as in Learn-then-Test (Angelopoulos et al., 2021, section 3.1).

    Examples
    --------
    >>> round(float(hoeffding_bentkus_p_value(2, 300, 0.02)), 3)
    0.16
    """
    k, n = _counts(errors, trials, ("errors", "trials"))
    alpha = _rate(target_risk, "target_risk")
    return np.asarray(_hoeffding_bentkus(k, n, alpha), dtype=np.float64)


# ------------------------------------------------------------------------------ Clopper–Pearson


def _cp_upper(k: Any, n: Any, level: float) -> Any:
    """One-sided Clopper–Pearson upper bound, no checks; 1 where k >= n or n = 0."""
    trivial = (n <= 0) | (k >= n)
    with np.errstate(all="ignore"):
        bound = special.betaincinv(k + 1.0, np.maximum(n - k, 1.0), level)
    return np.where(trivial, 1.0, bound)


def _cp_lower(k: Any, n: Any, level: float) -> Any:
    """One-sided Clopper–Pearson lower bound, no checks; 0 where k <= 0."""
    trivial = k <= 0
    with np.errstate(all="ignore"):
        bound = special.betaincinv(np.maximum(k, 1e-300), n - k + 1.0, 1.0 - level)
    return np.where(trivial, 0.0, bound)


def clopper_pearson_upper(
    successes: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95
) -> Any:
    """One-sided exact upper bound u: P(Binomial(n, u) ≤ successes) = 1 − ``confidence_level``.

    Examples
    --------
    >>> round(float(clopper_pearson_upper(0, 149, 0.95)), 4)
    0.0199
    """
    level = _level(confidence_level)
    k, n = _counts(successes, trials)
    return np.asarray(_cp_upper(k, n, level), dtype=np.float64)


def clopper_pearson_lower(
    successes: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95
) -> Any:
    """One-sided exact lower bound l: P(Binomial(n, l) ≥ successes) = 1 − ``confidence_level``.

    Examples
    --------
    >>> round(float(clopper_pearson_lower(149, 149, 0.95)), 4)
    0.9801
    """
    level = _level(confidence_level)
    k, n = _counts(successes, trials)
    return np.asarray(_cp_lower(k, n, level), dtype=np.float64)


def clopper_pearson_interval(
    successes: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95
) -> tuple[Any, Any]:
    """Two-sided exact interval: each end holds with probability (1 + level) / 2.

    Returns
    -------
    low, high : ndarray of float in [0, 1]
        ``(0, 1)`` where there are no trials.

    Examples
    --------
    >>> low, high = clopper_pearson_interval(5, 10, 0.95)
    >>> round(float(low), 4), round(float(high), 4)
    (0.1871, 0.8129)
    """
    level = _level(confidence_level)
    k, n = _counts(successes, trials)
    one_sided = 0.5 + level / 2.0
    low = np.asarray(_cp_lower(k, n, one_sided), dtype=np.float64)
    high = np.asarray(_cp_upper(k, n, one_sided), dtype=np.float64)
    return low, high


# ------------------------------------------------------------------------------ Wilson


def _wilson(k: Any, n: Any, z: float) -> tuple[Any, Any]:
    """Wilson score interval at normal quantile ``z``, no checks; (0, 1) where n = 0."""
    empty = n <= 0
    n_safe = np.where(empty, 1.0, n)
    p = np.clip(k / n_safe, 0.0, 1.0)
    z2 = z * z
    denominator = 1.0 + z2 / n_safe
    centre = (p + z2 / (2.0 * n_safe)) / denominator
    half = z * np.sqrt(p * (1.0 - p) / n_safe + z2 / (4.0 * n_safe * n_safe)) / denominator
    # Clamp rounding so that low <= p̂ <= high, with the exact ends at p̂ = 0 and p̂ = 1.
    low = np.where(p <= 0.0, 0.0, np.minimum(np.maximum(centre - half, 0.0), p))
    high = np.where(p >= 1.0, 1.0, np.maximum(np.minimum(centre + half, 1.0), p))
    return np.where(empty, 0.0, low), np.where(empty, 1.0, high)


def wilson_interval(
    successes: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95
) -> tuple[Any, Any]:
    """Two-sided Wilson score interval of ``successes / trials``.

    Counts may be real-valued (weighted or estimated counts).

    Returns
    -------
    low, high : ndarray of float in [0, 1]
        ``(0, 1)`` where there are no trials.

    Examples
    --------
    >>> low, high = wilson_interval(5, 10, 0.95)
    >>> round(float(low), 4), round(float(high), 4)
    (0.2366, 0.7634)
    """
    level = _level(confidence_level)
    k, n = _counts(successes, trials)
    low, high = _wilson(k, n, float(special.ndtri(0.5 + level / 2.0)))
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def wilson_lower(successes: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95) -> Any:
    """One-sided Wilson lower bound (the lower end of the two-sided interval at 2·level − 1).

    Examples
    --------
    >>> round(float(wilson_lower(95, 100, 0.95)), 4)
    0.9008
    """
    level = _level(confidence_level)
    k, n = _counts(successes, trials)
    return np.asarray(_wilson(k, n, float(special.ndtri(level)))[0], dtype=np.float64)


def wilson_upper(successes: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95) -> Any:
    """One-sided Wilson upper bound.

    Examples
    --------
    >>> round(float(wilson_upper(5, 100, 0.95)), 4)
    0.0992
    """
    level = _level(confidence_level)
    k, n = _counts(successes, trials)
    return np.asarray(_wilson(k, n, float(special.ndtri(level)))[1], dtype=np.float64)


# ------------------------------------------------------------------------------ Hoeffding–Bentkus


def _hb_upper(errors: NDArray[np.float64], n: NDArray[np.float64], level: float) -> Any:
    """Smallest rate whose Hoeffding–Bentkus p-value is at most 1 − level, no checks."""
    trivial = (n <= 0) | (errors >= n)
    # The p-value falls as the tested rate rises: search [r̂, 1] on a grid of _GRID points
    # per round (the p-value at r̂ is 1, at 1 it is 0), keeping the first rejected point.
    delta = 1.0 - level
    flat_e, flat_n = errors.ravel()[:, None], n.ravel()[:, None]
    low = np.where(flat_n > 0, flat_e / np.maximum(flat_n, 1.0), 0.0)
    high = np.ones_like(low)
    steps = np.linspace(0.0, 1.0, _GRID)[None, :]
    for _ in range(_ROUNDS):
        grid = low + (high - low) * steps
        rejected = _hoeffding_bentkus(flat_e, flat_n, grid) <= delta
        first = np.argmax(rejected, axis=1)[:, None]  # the last point is always rejected
        high = np.take_along_axis(grid, first, axis=1)
        low = np.take_along_axis(grid, np.maximum(first - 1, 0), axis=1)
    return np.where(trivial, 1.0, high.reshape(errors.shape))


def hoeffding_bentkus_upper(
    errors: ArrayLike, trials: ArrayLike, confidence_level: float = 0.95
) -> Any:
    """Upper confidence bound of an error rate from the Hoeffding–Bentkus p-value.

    The smallest rate u whose :func:`hoeffding_bentkus_p_value` is at most
    1 − ``confidence_level`` (to a relative precision of about 1e-12); 1 where nothing was
    tried or every trial erred.

    Examples
    --------
    >>> round(float(hoeffding_bentkus_upper(0, 149, 0.95)), 4)
    0.0199
    """
    level = _level(confidence_level)
    k, n = _counts(errors, trials, ("errors", "trials"))
    return np.asarray(_hb_upper(k, n, level), dtype=np.float64)
