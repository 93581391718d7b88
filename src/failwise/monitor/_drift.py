"""Two-sample drift tests of one window against the reference, and their multiplicity.

Every test compares the window with the reference *sample* (the validation data the policy
was fitted on), so the reference's own sampling error is part of each null distribution:
two-sample Kolmogorov–Smirnov for continuous scores, a chi-square test of homogeneity for
label and action mixes, and a permutation test of the maximum mean discrepancy for input
features.

Multiplicity: within a window the failure monitors are combined with Holm's step-down
procedure, so the chance that a window with no real change raises any alert is at most
``alpha`` (family-wise over the tests of that window). Windows are tested one after
another at that same level: over ``W`` unchanged windows about ``alpha · W`` false alerts
are expected, and each finding says how many windows had been tested.

Two-sample p-values are valid over draws of *both* samples. Against one fixed reference,
the false-alarm rate of repeated windows varies around ``alpha`` with that reference's own
sampling error (more so the smaller the reference is next to a window). The KS test
corrects for it with ``reference_confidence`` (a bound on the reference's own distance to
the truth, see :func:`ks_drift`), as :class:`~failwise.monitor.UnseenInputDetector` does
for its flag rate; the mix and MMD tests do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Probability, check_param
from failwise._validation import check_scores, describe
from failwise.exceptions import InputError

__all__ = [
    "DriftTest",
    "holm",
    "ks_drift",
    "mix_drift",
]

#: Probability over reference draws that the monitor's score tests hold their level for
#: every window tested against that reference (``ks_drift(reference_confidence=...)``).
REFERENCE_CONFIDENCE: Final = 0.9

#: Categories expected fewer times than this in the window are pooled into one, so that the
#: chi-square approximation holds (Cochran's rule).
MIN_EXPECTED: Final = 5.0


@dataclass(frozen=True)
class DriftTest:
    """One test of one window against the reference.

    Attributes
    ----------
    name : str
        What was compared ("confidence", "ood_score", "predicted_label", "action",
        "features", ...).
    method : str
        The test ("ks", "chi-square", "mmd-permutation").
    statistic : float
        Its statistic (KS distance, chi-square, MMD²).
    p_value : float
        Two-sample p-value.
    n_reference, n_window : int
        Sample sizes compared.
    detail : mapping
        Method-specific numbers (pooled categories, bandwidth, degrees of freedom, ...).
    """

    name: str
    method: str
    statistic: float
    p_value: float
    n_reference: int
    n_window: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary."""
        return {
            "name": self.name,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "n_reference": self.n_reference,
            "n_window": self.n_window,
            "detail": dict(self.detail),
        }


def _sample(values: ArrayLike, name: str) -> NDArray[np.float64]:
    array = np.asarray(values)
    if array.ndim == 1 and array.size == 0:
        raise InputError(
            f"`{name}` is empty: a drift test needs at least one value on each side. Test "
            "windows that hold decisions."
        )
    return check_scores(values, name, ndim=1).astype(np.float64)


def ks_drift(
    reference: ArrayLike,
    window: ArrayLike,
    *,
    name: str = "confidence",
    reference_groups: ArrayLike | None = None,
    window_groups: ArrayLike | None = None,
    reference_confidence: float | None = None,
) -> DriftTest:
    """Kolmogorov–Smirnov test of a score's distribution, optionally per group and per
    reference.

    Re-weighting by group
        With ``reference_groups`` and ``window_groups`` (the predicted label of every row),
        the window is compared with the reference *re-weighted to the window's group mix*:
        a reference row of group ``g`` weighs ``window_share(g) / reference_count(g)``. A
        window that only asks about other categories than the reference (a prior shift:
        the label-mix test's business) then matches the re-weighted reference, and the
        test sees only a change of the score *within* groups. Window rows of a group absent
        from the reference are left out (``detail["n_left_out"]``). The weighted reference
        counts as ``n_eff = (Σw)² / Σw²`` rows (Kish's effective sample size), which is
        ``n_reference`` when nothing is re-weighted.

    One fixed reference
        A two-sample p-value is valid over draws of both samples; a monitor compares every
        window with the *same* reference, and a reference whose distribution function
        happens to be off by ``ε`` raises false alarms in every window. With
        ``reference_confidence=q`` the test corrects for that: ``ε_q`` is the ``q``
        quantile of the one-sample KS distance for ``n_eff`` rows, so with probability
        ``q`` over reference draws ``sup |F_ref - F| <= ε_q``; on that event the
        statistic ``D = sup |F_window - F_ref|`` exceeds ``sup |F_window - F|`` by at most
        ``ε_q`` and ``p = P(KS_m >= D - ε_q)`` (one-sample KS law of the ``m`` window
        rows) is a valid p-value *for every window tested against this reference*. (Given
        its groups, the window's deviation from the re-weighted truth has no more variance
        at any point than an unstratified sample's.) Without ``reference_confidence`` the
        p-value is the two-sample one (exact for small samples, with ``n_eff`` rows for
        the reference when re-weighted).

    Parameters
    ----------
    reference, window : array-like of shape (n,) and (m,)
        The score (calibrated confidence, out-of-scope score) in the reference and in the
        window. Finite values only.
    name : str, default="confidence"
        What the score is, for reports.
    reference_groups, window_groups : array-like of shape (n,) and (m,), optional
        Group (predicted label) of each row; give both or neither.
    reference_confidence : float in (0, 1), optional
        Probability over reference draws that the p-value holds for every window (see
        above); None for the two-sample p-value.

    Returns
    -------
    DriftTest
        ``detail`` holds the medians, ``effective_reference_size`` and, with
        ``reference_confidence``, ``reference_error_bound`` (``ε_q``).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import ks_drift
    >>> rng = np.random.default_rng(1)
    >>> ks_drift(rng.beta(8, 1, 2000), rng.beta(8, 1, 500)).p_value > 0.05
    True
    >>> ks_drift(rng.beta(8, 1, 2000), rng.beta(3, 1, 500)).p_value < 1e-6
    True

    Two groups with different scores; the window asks mostly about the second:

    >>> ref = np.concatenate([rng.beta(9, 1, 1000), rng.beta(2, 1, 1000)])
    >>> ref_groups = np.repeat([0, 1], 1000)
    >>> win = np.concatenate([rng.beta(9, 1, 100), rng.beta(2, 1, 400)])
    >>> win_groups = np.repeat([0, 1], [100, 400])
    >>> ks_drift(ref, win).p_value < 1e-6
    True
    >>> ks_drift(ref, win, reference_groups=ref_groups, window_groups=win_groups,
    ...          reference_confidence=0.9).p_value > 0.05
    True
    """
    from scipy import stats

    ref = _sample(reference, "reference")
    win = _sample(window, "window")
    if reference_confidence is not None:
        reference_confidence = float(
            check_param(
                "reference_confidence",
                reference_confidence,
                [Probability(closed="neither")],
                where="ks_drift",
            )
        )
    if (reference_groups is None) != (window_groups is None):
        raise InputError(
            "Pass both `reference_groups` and `window_groups` (the group, e.g. predicted "
            "label, of every row) to re-weight the reference, or neither."
        )
    detail: dict[str, Any] = {"median_reference": float(np.median(ref))}
    weights = np.full(ref.size, 1.0 / ref.size)
    if reference_groups is not None and window_groups is not None:
        ref_g = _groups(reference_groups, ref.size, "reference_groups")
        win_g = _groups(window_groups, win.size, "window_groups")
        known = np.isin(win_g, np.unique(ref_g))
        detail["n_left_out"] = int(win.size - known.sum())
        if not known.any():
            raise InputError(
                f"No window row of `{name}` belongs to a group the reference has: the "
                "re-weighted test has nothing to compare. Compare without groups."
            )
        win, win_g = win[known], win_g[known]
        present, present_counts = np.unique(win_g, return_counts=True)
        weights = _reweighted_reference(
            ref_g,
            {
                k.item() if hasattr(k, "item") else k: float(c)
                for k, c in zip(present, present_counts, strict=True)
            },
        )
    n_eff = float(1.0 / np.sum(weights**2))
    statistic = _weighted_ks_distance(ref, weights, win)
    detail["effective_reference_size"] = n_eff
    detail["median_shift"] = float(np.median(win) - _weighted_median(ref, weights))
    n_ref_eff = max(1, math.floor(n_eff))
    if reference_confidence is not None:
        p_value, bound = ks_bound_p_value(statistic, n_eff, win.size, reference_confidence)
        detail["reference_error_bound"] = bound
        detail["reference_confidence"] = reference_confidence
        method = "ks-reference-bound"
    elif reference_groups is None:
        method = "ks"
        p_value = float(stats.ks_2samp(ref, win, method="auto").pvalue)
    else:
        method = "ks-reweighted"
        joint = max(1, round(n_ref_eff * win.size / (n_ref_eff + win.size)))
        p_value = float(stats.kstwo.sf(statistic, joint))
    return DriftTest(
        name,
        method,
        float(statistic),
        min(1.0, p_value),
        int(ref.size),
        int(win.size),
        detail,
    )


def ks_bound_p_value(
    statistic: float, n_reference: float, n_window: int, reference_confidence: float
) -> tuple[float, float]:
    """p-value of a KS distance against a fixed reference of ``n_reference`` (effective)
    rows, and the bound ``ε`` on the reference's own distance (see :func:`ks_drift`)."""
    from scipy import stats

    bound = float(stats.kstwo.ppf(reference_confidence, max(1, math.floor(n_reference))))
    return float(stats.kstwo.sf(max(0.0, statistic - bound), n_window)), bound


def _reweighted_reference(
    reference_groups: NDArray[Any], window_counts: Mapping[Any, float]
) -> NDArray[np.float64]:
    """Weights (summing to 1) of the reference rows re-weighted to a window's group mix:
    a row of group ``g`` weighs ``window_share(g) / reference_count(g)``; groups the
    reference lacks are left out of the window's mix (at least one must be shared)."""
    keys, index, counts = np.unique(reference_groups, return_inverse=True, return_counts=True)
    share = np.array(
        [float(window_counts.get(k.item() if hasattr(k, "item") else k, 0.0)) for k in keys]
    )
    weights = (share / counts)[index]
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _groups(values: ArrayLike, n: int, name: str) -> NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != n:
        raise InputError(f"`{name}` must hold one group per row ({n}); got {describe(values)}.")
    return array


def _weighted_ks_distance(
    reference: NDArray[np.float64], weights: NDArray[np.float64], window: NDArray[np.float64]
) -> float:
    """``sup |F_window - F_reference|`` with the reference's rows weighted (summing to 1)."""
    order = np.argsort(reference, kind="stable")
    ref_sorted = reference[order]
    ref_cdf = np.concatenate([[0.0], np.cumsum(weights[order])])
    win_sorted = np.sort(window)
    points = np.concatenate([ref_sorted, win_sorted])
    # Both distribution functions just after each observed value (right-continuous).
    f_ref = ref_cdf[np.searchsorted(ref_sorted, points, side="right")]
    f_win = np.searchsorted(win_sorted, points, side="right") / win_sorted.size
    return float(np.max(np.abs(f_win - f_ref)))


def _weighted_median(values: NDArray[np.float64], weights: NDArray[np.float64]) -> float:
    order = np.argsort(values, kind="stable")
    position = int(np.searchsorted(np.cumsum(weights[order]), 0.5))
    return float(values[order][min(position, values.size - 1)])


def _counts(values: ArrayLike | Mapping[Any, int], name: str) -> dict[Any, int]:
    if isinstance(values, Mapping):
        out = {}
        for key, count in values.items():
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                raise InputError(
                    f"`{name}` maps categories to counts (ints >= 0); got {describe(count)} for "
                    f"{key!r}."
                )
            out[key] = int(count)
        return out
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(
            f"`{name}` must be 1-D (one category per input) or a mapping of counts; got shape "
            f"{array.shape}."
        )
    keys, counts = np.unique(array, return_counts=True)
    return {
        k.item() if hasattr(k, "item") else k: int(c) for k, c in zip(keys, counts, strict=True)
    }


def mix_drift(
    reference: ArrayLike | Mapping[Any, int],
    window: ArrayLike | Mapping[Any, int],
    *,
    name: str = "predicted_label",
) -> DriftTest:
    """Chi-square test that the window's category mix equals the reference's.

    Categories (predicted labels, actions) whose expected count in the window is below five
    are pooled into one "other" category before testing, so sparse classes neither inflate
    the statistic nor break the approximation; categories seen only in the window are
    pooled too (their expected count is what the reference's pooled share predicts).

    Parameters
    ----------
    reference, window : array-like of categories, or mapping category -> count
    name : str, default="predicted_label"

    Returns
    -------
    DriftTest
        ``detail`` holds the pooled categories and each kept category's share in both.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import mix_drift
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.integers(0, 20, 3000)
    >>> mix_drift(reference, rng.integers(0, 20, 500)).p_value > 0.01
    True
    >>> shifted = np.concatenate([rng.integers(0, 20, 300), np.full(200, 3)])
    >>> mix_drift(reference, shifted).p_value < 1e-6
    True
    """
    from scipy import stats

    ref = _counts(reference, "reference")
    win = _counts(window, "window")
    n_ref, n_win = sum(ref.values()), sum(win.values())
    if n_ref == 0 or n_win == 0:
        raise InputError(
            f"`{'reference' if n_ref == 0 else 'window'}` holds no category: a mix test "
            "needs counts on both sides."
        )
    categories = sorted(set(ref) | set(win), key=str)
    expected = {c: n_win * ref.get(c, 0) / n_ref for c in categories}
    kept = [c for c in categories if expected[c] >= MIN_EXPECTED]
    pooled = [c for c in categories if expected[c] < MIN_EXPECTED]
    table_ref = [ref.get(c, 0) for c in kept]
    table_win = [win.get(c, 0) for c in kept]
    if pooled:
        table_ref.append(sum(ref.get(c, 0) for c in pooled))
        table_win.append(sum(win.get(c, 0) for c in pooled))
    columns = [i for i in range(len(table_ref)) if table_ref[i] + table_win[i] > 0]
    detail: dict[str, Any] = {
        "pooled": [str(c) for c in pooled],
        "shares": {
            str(c): {"reference": ref.get(c, 0) / n_ref, "window": win.get(c, 0) / n_win}
            for c in kept
        },
    }
    if len(columns) < 2:
        detail["note"] = "fewer than two categories after pooling: nothing to compare"
        return DriftTest(name, "chi-square", 0.0, 1.0, n_ref, n_win, detail)
    table = np.array([[table_ref[i] for i in columns], [table_win[i] for i in columns]])
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    detail["degrees_of_freedom"] = int(dof)
    return DriftTest(name, "chi-square", float(chi2), float(p_value), n_ref, n_win, detail)


def holm(
    p_values: Sequence[float] | NDArray[np.float64], alpha: float | np.floating[Any]
) -> NDArray[np.bool_]:
    """Holm's step-down rejections: family-wise error at most ``alpha``, any dependence.

    Examples
    --------
    >>> from failwise.monitor import holm
    >>> holm([0.001, 0.04, 0.3], alpha=0.05).tolist()
    [True, False, False]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise InputError(f"`p_values` must be a 1-D array of values in [0, 1]; got {describe(p)}.")
    level = float(check_param("alpha", alpha, [Probability(closed="neither")], where="holm"))
    order = np.argsort(p, kind="stable")
    rejected = np.zeros(p.size, dtype=bool)
    for rank, index in enumerate(order):
        if p[index] > level / (p.size - rank):
            break
        rejected[index] = True
    return rejected
