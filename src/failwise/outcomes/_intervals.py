"""The confidence intervals of measured metrics: Wilson rates, order-statistic ranks.

Binomial intervals come from :mod:`failwise._stats` (the one copy the certificates use
too); counts here may be fractional estimates, clamped to ``[0, n]`` as rates are to
``[0, 1]``.
"""

from __future__ import annotations

import math

from failwise._stats import normal_quantile, wilson_interval
from failwise.outcomes._metrics import Estimate

__all__ = ["quantile_ranks", "rate", "wilson", "z_of"]


def z_of(level: float) -> float:
    """The two-sided normal quantile of a confidence ``level`` in (0, 1)."""
    return float(normal_quantile(0.5 + level / 2))


def wilson(successes: float, n: float, level: float) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` at ``level``; NaN when ``n <= 0``."""
    if n <= 0:
        return math.nan, math.nan
    low, high = wilson_interval(min(max(successes, 0.0), n), n, level)
    return float(low), float(high)


def rate(successes: float, n: float, level: float) -> Estimate:
    """``successes / n`` with its Wilson interval; NaN when ``n <= 0``."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    low, high = wilson(successes, n, level)
    return Estimate(successes / n, low, high)


def quantile_ranks(n: int, q: float, z: float) -> tuple[int, int, int, int]:
    """0-based ranks: the two around numpy's linear estimate, and the CI bounds.

    The bounds are the distribution-free order-statistic interval of the ``q`` quantile
    (normal approximation of the binomial rank distribution at quantile ``z``).
    """
    position = (n - 1) * q
    below, above = math.floor(position), math.ceil(position)
    spread = z * math.sqrt(n * q * (1 - q))
    low = min(max(math.floor(n * q - spread) - 1, 0), n - 1)
    high = min(max(math.ceil(n * q + spread), 0), n - 1)
    return below, above, low, high
