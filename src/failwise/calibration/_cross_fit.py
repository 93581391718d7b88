"""Cross-fitted calibration: calibrated probabilities for every labelled row.

Splitting validation data into a calibration part and a policy part spends rows twice as
scarce as they need to be: temperature scaling has one parameter and moves little from one
subset to the next, while the risk certificate needs every labelled row it can get.
:func:`cross_fit_calibrate` fits the calibrator on K − 1 folds and predicts the held-out
fold, for each fold, so every row gets a probability from a calibrator that did not see
it; the calibrator returned for new inputs is refitted on all rows.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise.calibration._base import BaseCalibrator
from failwise.exceptions import InputError

__all__ = ["cross_fit_calibrate"]

C = TypeVar("C", bound=BaseCalibrator)


def cross_fit_calibrate(
    calibrator: C,
    scores: ArrayLike,
    y: ArrayLike,
    *,
    n_folds: int = 5,
    random_state: int | None = 0,
) -> tuple[NDArray[np.float64], C]:
    """Out-of-fold calibrated probabilities for every row, and a calibrator refitted on all.

    Rows are split into ``n_folds`` folds, stratified by label; for each fold a fresh copy
    of ``calibrator`` (same parameters) is fitted on the other folds and predicts it.

    Parameters
    ----------
    calibrator : BaseCalibrator
        An unfitted calibrator, used as a template (it is not modified).
    scores : array-like of shape (n_samples, n_classes) or (n_samples,)
        What ``calibrator.fit`` takes: logits, probabilities or binary scores.
    y : array-like of shape (n_samples,)
        True labels (in scope: ``0..n_classes − 1``).
    n_folds : int >= 2, default=5
    random_state : int or None, default=0
        Seed of the fold assignment.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        Row i's probabilities from the calibrator fitted without row i's fold.
    refitted : BaseCalibrator
        A copy of ``calibrator`` fitted on every row, for new inputs.

    Notes
    -----
    What this does to a risk certificate fitted on ``proba``: every row's score comes from
    a calibrator that never saw that row, but it did see the other folds' labels, so the
    rows' scores are not independent of each other's labels, and the deployed calibrator
    (``refitted``) is not any of the fold calibrators. For a one-parameter calibrator such
    as :class:`TemperatureScaling` the fold temperatures differ from the refitted one by
    O(1/√n) and the effect on the certificate is small, but it is no longer exact; the
    certificate stays exact when the policy is fitted on rows the calibrator never saw
    (the split that ``failwise.evaluation.evaluate_scores`` uses by default).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.calibration import TemperatureScaling, cross_fit_calibrate
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(600, 3)) * 3.0
    >>> y = np.array([rng.choice(3, p=np.exp(z) / np.exp(z).sum()) for z in logits / 3.0])
    >>> proba, refitted = cross_fit_calibrate(TemperatureScaling(), logits, y)
    >>> proba.shape, bool(2.5 < refitted.temperature_ < 3.5)
    ((600, 3), True)
    """
    if not isinstance(calibrator, BaseCalibrator):
        raise InputError(
            f"`calibrator` must be a failwise calibrator (e.g. TemperatureScaling()); got "
            f"{type(calibrator).__name__}."
        )
    if isinstance(n_folds, bool) or not isinstance(n_folds, Integral) or n_folds < 2:
        raise InputError(f"`n_folds` must be an integer ≥ 2; got {n_folds!r}.")
    X = np.asarray(scores)
    labels = np.asarray(y)
    if labels.ndim != 1 or X.shape[:1] != labels.shape:
        raise InputError(
            f"`scores` and `y` must have one row per sample; got scores of shape {X.shape} "
            f"and y of shape {labels.shape}."
        )
    if labels.size < 2 * n_folds:
        raise InputError(
            f"cross-fitting with n_folds={n_folds} needs at least {2 * n_folds} rows; got "
            f"{labels.size}. Lower `n_folds` or fit the calibrator on a split."
        )
    rng = np.random.default_rng(random_state)
    fold = np.empty(labels.size, dtype=np.intp)
    start = int(rng.integers(n_folds))
    for label in np.unique(labels):  # stratified: each label dealt round-robin, shuffled
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        fold[rows] = (start + np.arange(rows.size)) % n_folds
        start = (start + rows.size) % n_folds
    params: dict[str, Any] = calibrator.get_params(deep=False)
    parts = []
    for k in range(n_folds):
        held = fold == k
        part = type(calibrator)(**params).fit(X[~held], labels[~held])
        parts.append((held, np.asarray(part.predict_proba(X[held]), dtype=np.float64)))
    proba = np.empty((labels.size, parts[0][1].shape[1]), dtype=np.float64)
    for held, predicted in parts:
        proba[held] = predicted
    refitted = type(calibrator)(**params).fit(X, labels)
    return proba, refitted
