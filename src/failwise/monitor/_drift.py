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

These two-sample p-values are valid over draws of *both* samples. Against one fixed
reference, the false-alarm rate of repeated windows varies around ``alpha`` with that
reference's own sampling error (more so the smaller the reference is next to a window);
only :class:`~failwise.monitor.UnseenInputDetector` bounds it per reference.
"""

from __future__ import annotations

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


def ks_drift(reference: ArrayLike, window: ArrayLike, *, name: str = "confidence") -> DriftTest:
    """Two-sample Kolmogorov–Smirnov test of a score's distribution.

    Parameters
    ----------
    reference, window : array-like of shape (n,) and (m,)
        The score (calibrated confidence, out-of-scope score) in the reference and in the
        window. Finite values only.
    name : str, default="confidence"
        What the score is, for reports.

    Returns
    -------
    DriftTest

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import ks_drift
    >>> rng = np.random.default_rng(1)
    >>> ks_drift(rng.beta(8, 1, 2000), rng.beta(8, 1, 500)).p_value > 0.05
    True
    >>> ks_drift(rng.beta(8, 1, 2000), rng.beta(3, 1, 500)).p_value < 1e-6
    True
    """
    from scipy import stats

    ref = _sample(reference, "reference")
    win = _sample(window, "window")
    result = stats.ks_2samp(ref, win, method="auto")
    shift = float(np.median(win) - np.median(ref))
    return DriftTest(
        name,
        "ks",
        float(result.statistic),
        float(result.pvalue),
        int(ref.size),
        int(win.size),
        {"median_reference": float(np.median(ref)), "median_shift": shift},
    )


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
