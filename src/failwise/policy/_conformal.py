"""Split-conformal prediction sets: the labels offered when the ladder asks to clarify.

`ConformalPredictionSets` turns class probabilities into sets of labels that contain the
true label with probability at least ``coverage`` (marginally, for exchangeable data).
"""

from __future__ import annotations

import functools
import math
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._base import Estimator
from failwise._params import Constraint, Interval, Options
from failwise._validation import (
    check_consistent_length,
    check_fitted,
    check_labels,
    check_probabilities,
)
from failwise.exceptions import InputError, UncertifiedWarning

__all__ = ["ConformalPredictionSets", "aps_members", "aps_small_sets", "lac_bar", "lac_members"]

# (n + 1)·coverage is rounded up; this absorbs floating-point noise such as 0.9·1000 = 900.0000001.
_RANK_TOLERANCE = 1e-9


def _is_random_state(value: Any) -> bool:
    if value is None or isinstance(value, np.random.Generator):
        return True
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 0


@functools.lru_cache(maxsize=1024)
def lac_bar(quantile: float) -> float:
    """Smallest probability ``p`` with ``1 - p <= quantile``: the LAC membership bar.

    A label is in a LAC prediction set exactly when its probability reaches this bar, so
    comparing probabilities with it gives, bit for bit, the test ``1 - p <= quantile``
    without materialising ``1 - proba`` (``1 - p`` is monotone in floating point).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import lac_bar
    >>> bar = lac_bar(0.3)
    >>> 1 - bar <= 0.3, 1 - float(np.nextafter(bar, 0)) <= 0.3
    (True, False)
    """
    q = float(quantile)
    bar = float(np.clip(1.0 - q, 0.0, 1.0))
    while bar > 0.0 and 1.0 - float(np.nextafter(bar, -1.0)) <= q:
        bar = float(np.nextafter(bar, -1.0))
    while bar <= 1.0 and not 1.0 - bar <= q:
        bar = float(np.nextafter(bar, 2.0))
    return bar


def lac_members(proba: NDArray[Any], bar: float) -> NDArray[np.bool_]:
    """LAC prediction-set membership: ``proba >= bar`` with ``bar = lac_bar(quantile_)``.

    The one implementation of LAC membership: :meth:`ConformalPredictionSets.predict_set`,
    the clarify rung's batch path and its one-row path all call it. Works on one row
    (shape (n_classes,)) or a batch (shape (n_samples, n_classes)).
    """
    inside: NDArray[np.bool_] = proba >= bar
    return inside


def aps_members(
    above: NDArray[np.float64],
    proba: NDArray[np.float64],
    quantile: float,
    uniforms: NDArray[np.float64] | None = None,
) -> NDArray[np.bool_]:
    """APS prediction-set membership from the mass of the labels more likely than each label.

    The one implementation of APS membership: :meth:`ConformalPredictionSets.predict_set`
    and the clarify rung's top-M fast path (:func:`aps_small_sets`) both call it. Label j
    of a row is in the deterministic set when ``above_j + p_j <= quantile`` or
    ``above_j < quantile`` (the label whose mass crosses the quantile is included, so the
    set is never empty); in the randomised set when ``above_j + U·p_j <= quantile``.

    Parameters
    ----------
    above : ndarray of shape (n_samples, n_labels)
        Total probability of the labels strictly more likely than each label.
    proba : ndarray of shape (n_samples, n_labels)
        The labels' probabilities (same columns as ``above``).
    quantile : float
        The fitted ``quantile_``.
    uniforms : ndarray of shape (n_samples,), optional
        One uniform number per row for randomised APS; None for deterministic APS.

    Returns
    -------
    ndarray of bool, same shape as ``proba``

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import aps_members
    >>> proba = np.array([[0.5, 0.3, 0.2]])
    >>> aps_members(np.array([[0.0, 0.5, 0.8]]), proba, 0.6).tolist()
    [[True, True, False]]
    """
    if uniforms is not None:
        randomised: NDArray[np.bool_] = above + uniforms[:, None] * proba <= quantile
        return randomised
    inside: NDArray[np.bool_] = (above + proba <= quantile) | (above < quantile)
    return inside


def _mass_before(ranked: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mass of the labels ranked before each one (``ranked`` in decreasing order).

    Shared by :func:`_mass_above` and :func:`aps_small_sets`, so that both add the same
    probabilities in the same order and agree bit for bit.
    """
    before = np.empty_like(ranked)
    before[:, 0] = 0.0
    np.cumsum(ranked[:, :-1], axis=1, out=before[:, 1:])
    return before


def aps_small_sets(
    proba: NDArray[np.float64], quantile: float, max_set_size: int
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Deterministic APS sets of at most ``max_set_size`` labels from the top labels only.

    Only the M + 1 most likely labels of a row matter (M = ``max_set_size`` <
    n_classes): its set has at most M labels exactly when the (M + 1)-th label is outside
    it, so no full sort is needed. Membership is :func:`aps_members`, on the same sums as
    :meth:`ConformalPredictionSets.predict_set`.

    Returns
    -------
    small : ndarray of shape (n_samples,) and dtype bool
        Rows whose set has 1..M labels (and no tie among their top M + 1 probabilities).
    masks : ndarray of shape (n_small, n_classes) and dtype bool
        The sets of those rows.
    exact : ndarray of shape (n_samples,) and dtype bool
        Rows with tied top probabilities, whose sets must come from ``predict_set``.
    """
    k = proba.shape[1]
    m = max_set_size
    top = np.argpartition(proba, k - m - 1, axis=1)[:, k - m - 1 :]
    values = np.take_along_axis(proba, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    labels = np.take_along_axis(top, order, axis=1)
    exact = (values[:, 1:] == values[:, :-1]).any(axis=1)
    inside = aps_members(_mass_before(values), values, quantile)
    small = ~inside[:, m] & ~exact
    masks = np.zeros((int(small.sum()), k), dtype=bool)
    np.put_along_axis(masks, labels[small, :m], inside[small, :m], axis=1)
    return small, masks, exact


def _mass_above(proba: NDArray[np.float64]) -> NDArray[np.float64]:
    """For every (row, label): total probability of the labels strictly more likely.

    Tied labels do not count each other, so the result does not depend on column order.
    """
    n_rows, n_classes = proba.shape
    # Any sort order will do: ties end up adjacent and share their group's mass.
    order = np.argsort(proba, axis=1)[:, ::-1]
    ranked = np.take_along_axis(proba, order, axis=1)
    before = _mass_before(ranked)
    tied = ranked[:, 1:] == ranked[:, :-1]
    if tied.any():
        # Every member of a tie group takes the mass before the group's first member.
        starts = np.zeros((n_rows, n_classes), dtype=np.intp)
        starts[:, 1:] = np.where(tied, 0, np.arange(1, n_classes))
        np.maximum.accumulate(starts, axis=1, out=starts)
        before = np.take_along_axis(before, starts, axis=1)
    above = np.empty_like(before)
    np.put_along_axis(above, order, before, axis=1)
    return above


class ConformalPredictionSets(Estimator):
    """Prediction sets with a marginal coverage guarantee (split conformal).

    Calibrated on n held-out labelled rows, each set contains the true label with
    probability at least ``coverage`` over the draw of the calibration and test points,
    for exchangeable data. When the scores have no ties (LAC on continuous probabilities,
    randomised APS) the coverage is also at most ``coverage`` + 1/(n + 1).

    Two conformity scores are available:

    ``"lac"`` (least ambiguous set-valued classifier; Sadinle, Lei & Wasserman, 2019)
        score 1 − p_y. The set holds every label with p_y ≥ 1 − ``quantile_``: the
        smallest sets on average, may be empty when no label is likely enough.
    ``"aps"`` (adaptive prediction sets; Romano, Sesia & Candès, 2020)
        score = probability of the labels more likely than y, plus p_y in full (or
        ``U``·p_y with ``U`` uniform when ``randomized=True``). The set takes labels in
        decreasing probability until their mass reaches ``quantile_``, the one that
        crosses it included: sets that adapt to how spread each row is. The deterministic
        version is never empty (it always holds the most likely labels) but can
        over-cover a lot: on CIFAR-10 VGG probabilities at coverage 0.9 it covers 0.999
        with 4 labels per set, where the randomised version covers 0.90 with 1.0 label
        (which may be none).

    Parameters
    ----------
    method : {"aps", "lac"}, default="aps"
    coverage : float in (0, 1), default=0.9
        Target probability that the set contains the true label.
    randomized : bool, default=False
        Randomised APS (``method="aps"`` only): draws one uniform number per row, in
        ``fit`` and in every ``predict_set`` call.
    random_state : int, numpy.random.Generator or None, default=None
        Source of the uniform numbers when ``randomized=True``. With an int, every
        ``predict_set`` call draws the same numbers for the same row positions (a row's set
        then depends on its position in the batch); a Generator draws fresh numbers on
        each call.

    Attributes
    ----------
    quantile_ : float
        The conformal score threshold: the ⌈(n + 1)·coverage⌉-th smallest calibration
        score (``inf`` when n is too small for the requested coverage; every set then
        holds every label).
    n_classes_ : int
        Number of classes (columns of ``proba``) seen in ``fit``.
    n_samples_ : int
        Calibration samples seen in ``fit``.

    References
    ----------
    Sadinle, M., Lei, J. & Wasserman, L. (2019). Least ambiguous set-valued classifiers
    with bounded error levels. *JASA* 114(525).
    Romano, Y., Sesia, M. & Candès, E. J. (2020). Classification with valid and adaptive
    coverage. *NeurIPS* 33.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import ConformalPredictionSets
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.ones(4) * 0.5, size=2000)
    >>> y = np.array([rng.choice(4, p=row) for row in proba])
    >>> sets = ConformalPredictionSets(method="lac", coverage=0.9).fit(proba[:1000], y[:1000])
    >>> masks = sets.predict_set(proba[1000:])
    >>> round(float(masks[np.arange(1000), y[1000:]].mean()), 1)
    0.9
    >>> sets.set_size(np.array([[0.97, 0.01, 0.01, 0.01], [0.4, 0.3, 0.2, 0.1]])).tolist()
    [1, 3]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "method": [Options(("lac", "aps"))],
        "coverage": [Interval(Real, 0, 1, closed="neither")],
        "randomized": [bool],
        "random_state": [
            Constraint(_is_random_state, "None, an int >= 0 or a numpy.random.Generator")
        ],
    }

    def __init__(
        self,
        *,
        method: str = "aps",
        coverage: float = 0.9,
        randomized: bool = False,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.method = method
        self.coverage = coverage
        self.randomized = randomized
        self.random_state = random_state

    def fit(self, proba: ArrayLike, y: ArrayLike) -> ConformalPredictionSets:
        """Compute the conformal quantile on a labelled calibration split.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities (rows in [0, 1], summing to 1). Use data not seen when
            training or calibrating the model.
        y : array-like of shape (n_samples,)
            True labels in ``range(n_classes)``.

        Returns
        -------
        self : ConformalPredictionSets

        Warns
        -----
        UncertifiedWarning
            When fewer than ⌈coverage / (1 − coverage)⌉ samples are given: the quantile is
            then infinite and every set holds every label.
        """
        self._validate_params()
        if self.randomized and self.method != "aps":
            raise InputError(
                f"ConformalPredictionSets: `randomized=True` applies to method='aps' only; got "
                f"method={self.method!r}. Use method='aps', or randomized=False."
            )
        P = np.asarray(check_probabilities(proba, "proba"), dtype=np.float64)
        n_classes = P.shape[1]
        labels = check_labels(y, "y", n_classes=n_classes)
        n_samples = check_consistent_length(proba=P, y=labels)

        scores = self._all_scores(P, self._uniforms(n_samples, stream=0), self._mass(P))
        true_scores = scores[np.arange(n_samples), labels]
        rank = math.ceil((n_samples + 1) * float(self.coverage) - _RANK_TOLERANCE)
        self.n_classes_ = n_classes
        self.n_samples_ = n_samples
        if rank > n_samples:
            needed = math.ceil(float(self.coverage) / (1.0 - float(self.coverage)) - 1e-9)
            self.quantile_ = float(np.inf)
            warnings.warn(
                f"ConformalPredictionSets: {n_samples} calibration samples cannot certify "
                f"coverage={self.coverage:g}; at least {needed} are needed, so every "
                "prediction set will hold every label. Pass more labelled samples or lower "
                "`coverage`.",
                UncertifiedWarning,
                stacklevel=2,
            )
        else:
            self.quantile_ = float(np.partition(true_scores, rank - 1)[rank - 1])
        return self

    def _uniforms(self, n_rows: int, *, stream: int) -> NDArray[np.float64] | None:
        """One uniform number per row for randomised APS (None otherwise).

        An int seed gives ``fit`` (stream 0) and ``predict_set`` (stream 1) independent
        streams, so test rows never reuse the numbers drawn for calibration rows.
        """
        if not self.randomized:
            return None
        if isinstance(self.random_state, np.random.Generator):
            rng = self.random_state
        elif self.random_state is None:
            rng = np.random.default_rng()
        else:
            seed = np.random.SeedSequence(int(self.random_state)).spawn(2)[stream]
            rng = np.random.default_rng(seed)
        return rng.uniform(size=n_rows)

    def _mass(self, P: NDArray[np.float64]) -> NDArray[np.float64] | None:
        return _mass_above(P) if self.method == "aps" else None

    def _all_scores(
        self,
        P: NDArray[np.float64],
        uniforms: NDArray[np.float64] | None,
        above: NDArray[np.float64] | None,
    ) -> NDArray[np.float64]:
        """Conformity score of every (row, label); larger means less conforming."""
        if above is None:
            return 1.0 - P
        if uniforms is None:
            return above + P
        scores: NDArray[np.float64] = above + uniforms[:, None] * P
        return scores

    def predict_set(self, proba: ArrayLike) -> NDArray[np.bool_]:
        """Prediction set of every row, as a boolean mask over the classes.

        To compute sets for some rows only, pass those rows: ``predict_set(proba[rows])``.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Class probabilities of the same model, columns in the same class order.

        Returns
        -------
        ndarray of shape (n_samples, n_classes) and dtype bool
            ``mask[i, k]`` is True when label k is in the set of row i.
        """
        check_fitted(self, "quantile_", "predict_set")
        P = np.asarray(
            check_probabilities(proba, "proba", n_classes=self.n_classes_), dtype=np.float64
        )
        if self.method == "lac":
            return lac_members(P, lac_bar(self.quantile_))
        return aps_members(_mass_above(P), P, self.quantile_, self._uniforms(len(P), stream=1))

    def set_size(self, proba: ArrayLike) -> NDArray[np.intp]:
        """Number of labels in each row's prediction set.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)

        Returns
        -------
        ndarray of shape (n_samples,) and dtype intp
        """
        check_fitted(self, "quantile_", "set_size")
        sizes: NDArray[np.intp] = self.predict_set(proba).sum(axis=1, dtype=np.intp)
        return sizes
