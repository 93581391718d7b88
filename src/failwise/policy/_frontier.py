"""What a labelled sample can certify: coverage per target risk, and the data a target needs.

When a risk target cannot be met, "nothing certified" is not the whole answer: the same
rows may certify a large share at a slightly higher target, or the requested target may be
a few hundred labelled rows away. :func:`certification_frontier` computes both.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike

from failwise._params import Interval, Options, check_param
from failwise._validation import check_binary_labels, check_consistent_length, check_scores
from failwise.exceptions import InputError, UncertifiedWarning
from failwise.policy._bounds import BOUNDS, _required_answered, _upper_bound
from failwise.policy._risk import RiskThreshold

__all__ = ["CertificationFrontier", "FrontierPoint", "certification_frontier"]

#: Target risks the frontier is computed at (the requested target is added).
DEFAULT_TARGET_RISKS: Final = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)

#: Top-confidence shares at which the data a target needs is estimated.
_PLAN_COVERAGES: Final = tuple(k / 20 for k in range(1, 21))

#: Share of 1 − confidence_level at which `answered_needed` sizes the rows needed.
_SIZING_SHARE: Final = 0.5


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class FrontierPoint:
    """What the data certifies at one target risk.

    Attributes
    ----------
    target_risk : float
    certified : bool
        Whether :class:`RiskThreshold` certifies a threshold at this target.
    coverage : float
        Share of the rows answered at the certified threshold (0 when none).
    threshold : float
        The certified threshold (``inf`` when none).
    risk_upper_bound : float
        Upper confidence bound of the selective risk there (1.0 when none).
    additional_rows : int or None
        About how many more labelled rows this target needs at the observed error rate
        (0 when certified; None when no share of the rows has an error rate below it).
        The estimate is described under :class:`CertificationFrontier`.
    """

    target_risk: float
    certified: bool
    coverage: float
    threshold: float
    risk_upper_bound: float
    additional_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (``threshold`` is None when nothing is certified)."""
        return {
            "target_risk": self.target_risk,
            "certified": self.certified,
            "coverage": self.coverage,
            "threshold": _finite_or_none(self.threshold),
            "risk_upper_bound": self.risk_upper_bound,
            "additional_rows": self.additional_rows,
        }


@dataclass(frozen=True)
class CertificationFrontier:
    """Certified coverage per target risk, and the labelled rows the requested target needs.

    Attributes
    ----------
    target_risk : float
        The requested target.
    confidence_level : float
    n_samples : int
        Labelled rows the frontier was computed on.
    target_risks : tuple of float
        The grid, in increasing order (the requested target included).
    certified_at, coverages, thresholds, risk_upper_bounds, additional_rows_at : tuples
        Per target of the grid: whether it is certified, the share answered, the threshold
        (``inf`` when none), the upper confidence bound of the risk (1.0 when none) and the
        estimated additional labelled rows (as ``additional_rows``, for that target).
        :attr:`points` gives the same as :class:`FrontierPoint` objects.
    certified : bool
        Whether the requested target is certified on these rows.
    planned_coverage : float or None
        The top-confidence share (5 %, 10 %, …, 100 % of the rows) the estimate below
        plans for. None when no share's error rate is below the target.
    observed_error_rate : float or None
        Observed error rate of the rows in that share.
    rows_needed : int or None
        Estimated labelled rows (answered or not) that certify the requested target at
        ``planned_coverage``, if the error rate stays as observed:
        ⌈n*(r) / c⌉, where c is ``planned_coverage``, r is the one-sided 50 %
        Clopper–Pearson bound of the share's error rate (e errors in m rows: the median
        of Beta(e + 1, m − e), a little above e / m) and n*(r) is the fewest answered rows
        with which the error rate r passes the one-sided binomial test of "risk >
        target_risk" at half of 1 − ``confidence_level`` (between the common level of
        :class:`RiskThreshold`'s starts, about a third of it, and the level of the chain
        below them, about nine tenths; see
        :func:`~failwise.policy._bounds.required_answered_samples`). The share is the one
        with the smallest ⌈n*(r) / c⌉. An estimate, not a promise: the rate is itself
        uncertain, and the test path must survive to that point. None when no share's
        rate is below the target (more data of the same kind cannot certify it: improve
        the model or raise the target).
    additional_rows : int or None
        ``max(rows_needed − n_samples, 0)``; 0 when the target is already certified.
    """

    target_risk: float
    confidence_level: float
    n_samples: int
    target_risks: tuple[float, ...]
    certified_at: tuple[bool, ...]
    coverages: tuple[float, ...]
    thresholds: tuple[float, ...]
    risk_upper_bounds: tuple[float, ...]
    additional_rows_at: tuple[int | None, ...]
    certified: bool
    planned_coverage: float | None
    observed_error_rate: float | None
    rows_needed: int | None
    additional_rows: int | None

    @property
    def points(self) -> tuple[FrontierPoint, ...]:
        """One :class:`FrontierPoint` per target risk, in increasing order of target."""
        return tuple(
            FrontierPoint(risk, ok, cov, thr, up, more)
            for risk, ok, cov, thr, up, more in zip(
                self.target_risks,
                self.certified_at,
                self.coverages,
                self.thresholds,
                self.risk_upper_bounds,
                self.additional_rows_at,
                strict=True,
            )
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One plain record per target: target_risk, confidence_level, coverage, certified,
        extra_rows (the estimated additional labelled rows; None when more rows of the same
        kind cannot reach the target)."""
        return [
            {
                "target_risk": p.target_risk,
                "confidence_level": self.confidence_level,
                "coverage": p.coverage,
                "certified": p.certified,
                "extra_rows": p.additional_rows,
            }
            for p in self.points
        ]

    def best_target(self) -> FrontierPoint | None:
        """The smallest target risk on the grid that certifies something (None if none)."""
        return next((p for p in self.points if p.certified), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: every float finite or None."""
        return {
            "target_risk": self.target_risk,
            "confidence_level": self.confidence_level,
            "n_samples": self.n_samples,
            "certified": self.certified,
            "points": [p.to_dict() for p in self.points],
            "planned_coverage": self.planned_coverage,
            "observed_error_rate": self.observed_error_rate,
            "rows_needed": self.rows_needed,
            "additional_rows": self.additional_rows,
        }


_OPEN_UNIT: Final = [Interval(Real, 0, 1, closed="neither")]


def certification_frontier(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    target_risk: float = 0.02,
    confidence_level: float = 0.95,
    target_risks: Sequence[float] | None = None,
    bound: str = "binomial",
) -> CertificationFrontier:
    """Certified coverage at each target risk, and the rows the requested target needs.

    Each point fits :class:`RiskThreshold` at one target risk and ``confidence_level`` on
    the same rows. Every point carries the guarantee of its own fit; the points are not a
    simultaneous guarantee, so choose the target from the table *before* relying on it
    (or fit again on fresh rows). The estimate of the labelled rows the requested target
    needs is described under :class:`CertificationFrontier`.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Finite scores, higher meaning more confident.
    correct : array-like of shape (n_samples,) of bool or 0/1
        Whether the automatic answer for each row is right.
    target_risk : float in (0, 1), default=0.02
        The requested target; always on the grid.
    confidence_level : float in (0, 1), default=0.95
    target_risks : sequence of float in (0, 1), optional
        The grid (default: 1, 2, 3, 5, 7.5, 10, 15 and 20 %).
    bound : {"binomial", "hoeffding_bentkus"}, default="binomial"

    Returns
    -------
    CertificationFrontier

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import certification_frontier
    >>> rng = np.random.default_rng(0)
    >>> confidence = rng.uniform(0.5, 1.0, size=400)
    >>> correct = rng.uniform(size=400) < np.minimum(confidence + 0.05, 1.0)
    >>> frontier = certification_frontier(confidence, correct, target_risk=0.02)
    >>> frontier.certified
    False
    >>> [(p.target_risk, round(p.coverage, 2)) for p in frontier.points][3:6]
    [(0.05, 0.0), (0.075, 0.17), (0.1, 0.26)]
    >>> frontier.additional_rows > 0
    True
    """
    where = "certification_frontier"
    alpha = float(check_param("target_risk", target_risk, _OPEN_UNIT, where=where))
    level = float(check_param("confidence_level", confidence_level, _OPEN_UNIT, where=where))
    check_param("bound", bound, [Options(BOUNDS)], where=where)
    grid = DEFAULT_TARGET_RISKS if target_risks is None else tuple(target_risks)
    if not grid:
        raise InputError("`target_risks` is empty; pass at least one target risk, or None.")
    risks = sorted(
        {float(check_param("target_risks[...]", r, _OPEN_UNIT, where=where)) for r in grid}
        | {alpha}
    )
    scores = check_scores(confidence, "confidence", ndim=1)
    right = check_binary_labels(correct, "correct")
    n_samples = check_consistent_length(confidence=scores, correct=right)

    order = np.argsort(scores, kind="stable")[::-1]
    wrong = np.cumsum(right[order] == 0)
    points = []
    plans: dict[float, tuple[int, float, float] | None] = {}
    for risk in risks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncertifiedWarning)
            fitted = RiskThreshold(target_risk=risk, confidence_level=level, bound=bound).fit(
                scores, right
            )
        plans[risk] = _plan(wrong, risk, level, bound)
        plan = plans[risk]
        more = 0 if fitted.certified_ else (None if plan is None else max(plan[0] - n_samples, 0))
        points.append(
            FrontierPoint(
                target_risk=risk,
                certified=bool(fitted.certified_),
                coverage=float(fitted.coverage_),
                threshold=float(fitted.threshold_),
                risk_upper_bound=float(fitted.risk_upper_bound_),
                additional_rows=more,
            )
        )
    requested = next(p for p in points if p.target_risk == alpha)
    certified = requested.certified
    best = plans[alpha]
    if best is None:
        rows_needed = None
        planned = observed = None
    else:
        rows_needed, planned, observed = best
    additional = requested.additional_rows
    return CertificationFrontier(
        target_risk=alpha,
        confidence_level=level,
        n_samples=n_samples,
        target_risks=tuple(p.target_risk for p in points),
        certified_at=tuple(p.certified for p in points),
        coverages=tuple(p.coverage for p in points),
        thresholds=tuple(p.threshold for p in points),
        risk_upper_bounds=tuple(p.risk_upper_bound for p in points),
        additional_rows_at=tuple(p.additional_rows for p in points),
        certified=certified,
        planned_coverage=planned,
        observed_error_rate=observed,
        rows_needed=rows_needed,
        additional_rows=additional,
    )


def _plan(wrong: Any, alpha: float, level: float, bound: str) -> tuple[int, float, float] | None:
    """(rows needed, planned share, observed rate) for one target, or None.

    ``wrong`` is the running error count along the confidence order, strictest first.
    """
    n_samples = int(wrong.size)
    best: tuple[int, float, float] | None = None
    for share in _PLAN_COVERAGES:
        answered = max(1, math.ceil(share * n_samples))
        errors = float(wrong[answered - 1])
        need = answered_needed(errors, answered, alpha, level, bound)
        if need is None:
            continue
        needed = math.ceil(need / share)
        if best is None or needed < best[0]:
            best = (needed, share, errors / answered)
    return best


def answered_needed(
    errors: float, answered: int, alpha: float, level: float, bound: str
) -> int | None:
    """Answered labelled rows that certify ``alpha`` at the error rate ``errors / answered``.

    Sized at half of 1 − ``level`` (between the common level of :class:`RiskThreshold`'s
    starts and the level of the chain below them), with the median-unbiased (50 %)
    Clopper–Pearson bound of the rate, so that a share with few errors does not look
    cleaner than it is. None when that rate is not below ``alpha`` (no number of rows
    certifies it). Shared by the frontier and the
    recalibration report, so the two agree.
    """
    second_level = 1.0 - _SIZING_SHARE * (1.0 - level)
    rate = float(_upper_bound(np.array(errors), np.array(float(answered)), 0.5, "binomial"))
    if rate >= alpha:
        return None
    return _required_answered(alpha, second_level, rate, bound)
