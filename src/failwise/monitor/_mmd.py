"""Input drift on features: the maximum mean discrepancy with a permutation test.

:func:`mmd_drift` compares a window's features with the reference's (Gretton et al., 2012):
a Gaussian kernel whose bandwidth is the median squared distance of the pooled sample, the
unbiased MMD² statistic, and a p-value from random permutations of the pooled rows, exact
for any sample size.

A monitor tests every window against the *same* reference rows, so the reference's share
of the work is done once: its pairwise squared distances and their sorted values are kept
(for the last few references, keyed by their content) and each window adds only its own
rows. The pooled median comes from merging the window's distances into the kept sorted
values around their middle, which gives exactly the median of all pooled pairs without
sorting them again. Permutations are drawn in batches, one matrix product per batch, and
stop as soon as the window plainly looks like the reference (see :func:`mmd_drift`).

References
----------
Gretton, A., Borgwardt, K. M., Rasch, M. J., Schölkopf, B. & Smola, A. (2012). A kernel
two-sample test. *Journal of Machine Learning Research* 13, 723–773.

Besag, J. & Clifford, P. (1991). Sequential Monte Carlo p-values. *Biometrika* 78(2),
301–304.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_scores, describe
from failwise.exceptions import InputError
from failwise.monitor._drift import DriftTest

__all__ = ["mmd_drift"]

#: Permutations drawn per matrix product.
PERMUTATION_BATCH: Final = 32

#: References whose pairwise distances are kept between calls.
CACHED_REFERENCES: Final = 4


@dataclass(frozen=True)
class _ReferencePart:
    """The reference rows' own share of the pooled distances."""

    rows: NDArray[np.float64]
    norms: NDArray[np.float64]
    sq: NDArray[np.float64]
    sorted_pairs: NDArray[np.float64]  # positive upper-triangle entries of ``sq``, sorted


_CACHE: OrderedDict[bytes, _ReferencePart] = OrderedDict()


def _sq_distances(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    aa: NDArray[np.float64] | None = None,
    bb: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    aa = np.einsum("ij,ij->i", a, a) if aa is None else aa
    bb = np.einsum("ij,ij->i", b, b) if bb is None else bb
    out: NDArray[np.float64] = np.maximum(aa[:, None] + bb[None, :] - 2.0 * (a @ b.T), 0.0)
    return out


def _upper(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    values = matrix[np.triu_indices(matrix.shape[0], k=1)]
    return values[values > 0]


def _reference_part(rows: NDArray[np.float64]) -> _ReferencePart:
    key = hashlib.blake2b(rows.tobytes(), digest_size=20)
    key.update(repr(rows.shape).encode())
    digest = key.digest()
    part = _CACHE.get(digest)
    if part is None:
        norms = np.einsum("ij,ij->i", rows, rows)
        sq = _sq_distances(rows, rows, norms, norms)
        part = _ReferencePart(rows.copy(), norms, sq, np.sort(_upper(sq)))
        _CACHE[digest] = part
        while len(_CACHE) > CACHED_REFERENCES:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(digest)
    return part


def _kernel_block(
    sq: NDArray[np.float64], bandwidth: float, *, within: bool
) -> NDArray[np.float64]:
    """Gaussian kernel of squared distances (zero on the diagonal of a within block)."""
    values: NDArray[np.float64] = np.exp(np.divide(sq, -bandwidth))
    if within:
        np.fill_diagonal(values, 0.0)
    return values


def _pooled_median(kept: NDArray[np.float64], new: NDArray[np.float64]) -> float:
    """``np.median`` of ``kept`` (sorted) and ``new`` together, without sorting them all."""
    total = kept.size + new.size
    if total == 0:
        return 1.0
    lo_rank, hi_rank = (total - 1) // 2, total // 2
    if kept.size:
        # The pooled median lies near the kept values' own: merge only a band around it.
        for width in (0.005, 0.02, 0.1, 0.3):
            low = kept[int((0.5 - width) * (kept.size - 1))]
            high = kept[int(np.ceil((0.5 + width) * (kept.size - 1)))]
            start = int(np.searchsorted(kept, low, side="left"))
            stop = int(np.searchsorted(kept, high, side="right"))
            in_band = (new >= low) & (new <= high)
            below = int(start) + int(np.count_nonzero(new < low))
            band = stop - start + int(np.count_nonzero(in_band))
            if below <= lo_rank and hi_rank < below + band:
                merged = np.sort(np.concatenate([kept[start:stop], new[in_band]]))
                return float(np.mean(merged[[lo_rank - below, hi_rank - below]]))
    return float(np.median(np.concatenate([kept, new])))


def mmd_drift(
    reference: ArrayLike,
    window: ArrayLike,
    *,
    n_permutations: int = 200,
    max_reference: int = 1000,
    stop_after: int | None = 10,
    random_state: int | np.random.Generator | None = 0,
    name: str = "features",
) -> DriftTest:
    """Maximum mean discrepancy permutation test on input features (Gretton et al., 2012).

    Gaussian kernel with the median-heuristic bandwidth of the pooled sample; the p-value is
    ``(1 + #{permuted MMD² >= observed}) / (1 + n_permutations)``, exact for any sample
    size. At most ``max_reference`` reference rows (a random subset) are used, and the
    reference's pairwise distances are computed once and reused by later calls with the
    same reference rows.

    Permutations stop early once ``stop_after`` permuted statistics have reached the
    observed one: the p-value is then ``stop_after / permutations drawn``, Besag and
    Clifford's (1991) sequential Monte Carlo p-value, which is as valid as the full one.
    Only windows that look like the reference stop early, so every p-value below
    ``(stop_after + 1) / (n_permutations + 1)`` — every one that can be significant at a
    level below that — is exactly the full test's, at a fraction of its cost.

    Parameters
    ----------
    reference, window : array-like of shape (n, d) and (m, d)
    n_permutations : int, default=200
    max_reference : int, default=1000
    stop_after : int or None, default=10
        Exceedances after which the permutations stop; None draws all ``n_permutations``.
    random_state : int, Generator or None, default=0
    name : str, default="features"

    Returns
    -------
    DriftTest

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import mmd_drift
    >>> rng = np.random.default_rng(0)
    >>> mmd_drift(rng.normal(size=(300, 5)), rng.normal(1.0, size=(100, 5))).p_value < 0.01
    True
    """
    ref = check_scores(reference, "reference", ndim=2)
    win = check_scores(window, "window", ndim=2).astype(np.float64)
    for rows, label in ((ref, "reference"), (win, "window")):
        if rows.shape[0] < 2:
            raise InputError(
                f"`{label}` has {rows.shape[0]} row(s); the MMD statistic needs at least two "
                "on each side. Test windows that hold more decisions."
            )
    if ref.shape[1] != win.shape[1]:
        raise InputError(
            f"`reference` has {ref.shape[1]} feature columns but `window` has {win.shape[1]}; "
            "both must come from the same feature function."
        )
    for value, label, low in (
        (n_permutations, "n_permutations", 1),
        (max_reference, "max_reference", 2),
        (1 if stop_after is None else stop_after, "stop_after", 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InputError(f"`{label}` must be an int >= {low}; got {describe(value)}.")
    rng = np.random.default_rng(random_state)
    if ref.shape[0] > max_reference:
        ref = ref[rng.choice(ref.shape[0], size=int(max_reference), replace=False)]
    part = _reference_part(np.ascontiguousarray(ref, dtype=np.float64))
    n, m = part.rows.shape[0], win.shape[0]
    total = n + m
    win_norms = np.einsum("ij,ij->i", win, win)
    cross = _sq_distances(part.rows, win, part.norms, win_norms)
    own = _sq_distances(win, win, win_norms, win_norms)
    new_pairs = np.concatenate([cross[cross > 0], _upper(own)])
    bandwidth = _pooled_median(part.sorted_pairs, new_pairs)
    # The observed statistic from the kernel's float64 blocks, exactly; the permuted ones
    # from one float32 matrix product for all permutations (for group indicators a and
    # b = 1 - a the within/between sums are a·Ka, b·Ka and b·Kb). Every kernel entry is
    # positive, so the product's rounding stays near float32's own (~1e-7 of each sum): far
    # below the spread of the permuted statistics, whose order against the observed one is
    # all that counts.
    within_ref = _kernel_block(part.sq, bandwidth, within=True)
    within_win = _kernel_block(own, bandwidth, within=True)
    between = _kernel_block(cross, bandwidth, within=False)
    kernel = np.empty((total, total), dtype=np.float32)
    kernel[:n, :n], kernel[n:, n:] = within_ref, within_win
    kernel[:n, n:], kernel[n:, :n] = between, between.T
    s_aa0, s_bb0, s_ab0 = float(within_ref.sum()), float(within_win.sum()), float(between.sum())
    total_sum = s_aa0 + s_bb0 + 2.0 * s_ab0
    observed = s_aa0 / (n * (n - 1)) + s_bb0 / (m * (m - 1)) - 2.0 * s_ab0 / (n * m)
    drawn, exceed = 0, 0
    limit = int(n_permutations) if stop_after is None else int(stop_after)
    while drawn < n_permutations and exceed < limit:
        batch = min(PERMUTATION_BATCH, int(n_permutations) - drawn)
        first = np.zeros((total, batch), dtype=np.float32)
        for column in range(batch):
            first[rng.permutation(total)[:n], column] = 1.0
        k_first = (kernel @ first).astype(np.float64)
        s_aa = np.einsum("ij,ij->j", first, k_first)
        s_ab = k_first.sum(axis=0) - s_aa
        s_bb = total_sum - s_aa - 2.0 * s_ab
        mmd = s_aa / (n * (n - 1)) + s_bb / (m * (m - 1)) - 2.0 * s_ab / (n * m)
        hits = np.cumsum(mmd >= observed) + exceed
        if hits[-1] >= limit:  # the limit-th exceedance: stop at that permutation
            drawn += int(np.argmax(hits >= limit)) + 1
            exceed = limit
            break
        drawn, exceed = drawn + batch, int(hits[-1])
    if exceed >= limit and limit < n_permutations:
        p_value = exceed / drawn  # Besag & Clifford's sequential p-value
    else:
        p_value = (1 + exceed) / (1 + int(n_permutations))
    return DriftTest(
        name,
        "mmd-permutation",
        float(observed),
        float(p_value),
        int(n),
        int(m),
        {"bandwidth": bandwidth, "n_permutations": drawn, "stopped_early": drawn < n_permutations},
    )
