"""`digits_system`: a small, real guarded system on scikit-learn's digits, for tests.

A logistic regression gives logits, temperature scaling calibrates them, a
k-nearest-neighbour distance on the pixels scores out-of-scope inputs, a nearest-centroid
rule is the deterministic fallback, and a :class:`~failwise.Policy` fitted on a validation
split uses all of them. Some digits can be held out of training (out of scope, label -1),
and the production inputs can drift (additive pixel noise) to test a closed loop. Nothing
is downloaded: the data ship with scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["DEFAULT_POLICY", "CentroidRule", "DigitsSystem", "digits_system"]

#: Policy arguments of :func:`digits_system` by default: every rung of the ladder fires.
DEFAULT_POLICY: Mapping[str, Any] = {
    "target_risk": 0.05,
    "fallback_min_accuracy": 0.6,
    "max_escalation_rate": 0.15,
}


class CentroidRule:
    """Deterministic fallback: the nearest class centroid, when it is clearly nearest.

    Parameters
    ----------
    centroids : ndarray of shape (n_classes, n_features)
    margin : float, default=1.25
        The rule answers only when the second-nearest centroid is ``margin`` times farther
        than the nearest; otherwise it has no opinion (None).
    """

    def __init__(self, centroids: NDArray[np.float64], margin: float = 1.25) -> None:
        self.centroids = np.asarray(centroids, dtype=np.float64)
        self.margin = margin

    def __call__(self, x: Any) -> int | None:
        distances = np.linalg.norm(self.centroids - np.asarray(x, dtype=float), axis=1)
        first, second = np.sort(distances)[:2]
        return int(distances.argmin()) if second > self.margin * first else None

    def __repr__(self) -> str:
        return f"CentroidRule(n_classes={self.centroids.shape[0]}, margin={self.margin:g})"


@dataclass
class DigitsSystem:
    """A fitted model, calibrator, out-of-scope scorer, fallback and policy on digits.

    Inputs are rows of 64 pixel intensities in [0, 1]; labels are ``0 … n_classes - 1``
    (the kept digits in increasing order, see ``digits``) and ``-1`` for held-out digits.

    Attributes
    ----------
    X_val, y_val : ndarray
        Validation split the calibrator (its in-scope rows) and the policy were fitted on.
    X_test, y_test : ndarray
        Production traffic: what a guard sees (with the drift, if any).
    X_fresh, y_fresh : ndarray
        More production traffic, drawn like ``X_test`` and never used: fresh data to check a
        refitted policy on. Empty unless ``fresh_size`` was given.
    model : sklearn.linear_model.LogisticRegression
    calibrator : TemperatureScaling
    knn : KNNDistance
        Out-of-scope score (distance to the training images).
    rule : CentroidRule
        Deterministic fallback.
    policy : Policy
        Fitted on the validation split with ``knn`` scores and ``rule`` labels (when asked).
    digits : tuple of int
        The original digit of each class index.
    noise : float
        Standard deviation of the pixel noise added to production inputs.
    """

    X_val: NDArray[np.float64]
    y_val: NDArray[np.intp]
    X_test: NDArray[np.float64]
    y_test: NDArray[np.intp]
    X_fresh: NDArray[np.float64]
    y_fresh: NDArray[np.intp]
    model: Any
    calibrator: Any
    knn: Any
    rule: CentroidRule
    policy: Any
    digits: tuple[int, ...]
    noise: float = 0.0
    uses_ood: bool = field(default=True, repr=False)
    uses_fallback: bool = field(default=True, repr=False)

    @property
    def n_classes(self) -> int:
        """Number of in-scope classes."""
        return len(self.digits)

    def logits(self, X: ArrayLike) -> NDArray[np.float64]:
        """The model's raw scores, shape (n_samples, n_classes)."""
        return np.asarray(self.model.decision_function(np.asarray(X)), dtype=np.float64)

    def proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probabilities, shape (n_samples, n_classes)."""
        return np.asarray(self.calibrator.predict_proba(self.logits(X)), dtype=np.float64)

    def ood(self, X: ArrayLike) -> NDArray[np.float64]:
        """Out-of-scope scores (higher = farther from the training images)."""
        return np.asarray(self.knn.score(np.asarray(X)), dtype=np.float64)

    def fallback_labels(self, X: ArrayLike) -> NDArray[np.intp]:
        """The rule's label per input, ``-2`` where it has no opinion."""
        from failwise.policy import apply_fallback

        return apply_fallback(self.rule, list(np.asarray(X))).labels

    def decide(self, X: ArrayLike) -> Any:
        """``policy.decide`` on ``X`` offline, with the scores the policy was fitted with."""
        return self.policy.decide(
            self.proba(X),
            self.ood(X) if self.uses_ood else None,
            self.fallback_labels(X) if self.uses_fallback else None,
        )

    def guard(self, policy: Any = None, **kwargs: Any) -> Any:
        """A :class:`~failwise.runtime.Guard` over this system (``policy`` defaults to ours).

        Keyword arguments (``store=``, ``audit_rate=``, ``random_state=``, ...) go to
        ``Guard``.
        """
        from failwise.runtime import Guard

        return Guard(
            self.model.decision_function,
            self.calibrator,
            self.policy if policy is None else policy,
            ood=self.knn if self.uses_ood else None,
            fallback=self.rule if self.uses_fallback else None,
            **kwargs,
        )


@lru_cache(maxsize=8)
def _fitted(held_out: tuple[int, ...], n_train: int, random_state: int) -> tuple[Any, ...]:
    """The split and the fitted model, calibrator, scorer and rule (cached: they are slow)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from failwise import KNNDistance

    X, digit = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(digit))
    X, digit = X[order], digit[order]
    kept = tuple(d for d in range(10) if d not in held_out)
    remap = np.full(10, -1, dtype=np.intp)
    remap[list(kept)] = np.arange(len(kept))
    labels = remap[digit]
    in_scope = labels >= 0
    train = np.flatnonzero(in_scope)[:n_train]
    rest = np.setdiff1d(np.arange(len(labels)), train)
    model = LogisticRegression(C=0.05, max_iter=2000).fit(X[train], labels[train])
    k = len(kept)
    centroids = np.stack([X[train][labels[train] == c].mean(axis=0) for c in range(k)])
    knn = KNNDistance(n_neighbors=5, metric="euclidean").fit(X[train])
    return X, labels, rest, model, knn, centroids, kept


def _check_int(value: Any, name: str, low: int, high: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= int(value) <= high:
        raise InputError(
            f"`{name}` must be an int in [{low}, {high}]; got {describe(value)}. {hint}"
        )
    return int(value)


def _check_fraction(value: Any, name: str, *, open_low: bool) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(float(value))
    if not ok or not (0.0 < float(value) < 1.0 if open_low else 0.0 <= float(value) < 1.0):
        bound = "(0, 1)" if open_low else "[0, 1)"
        raise InputError(f"`{name}` must be a fraction in {bound}; got {describe(value)}.")
    return float(value)


def _check_held_out(held_out: Any) -> tuple[int, ...]:
    hint = "Pass digits 0–9 to keep out of training, e.g. held_out=(8, 9), or () for none."
    if isinstance(held_out, (str, bytes)) or not isinstance(held_out, Sequence):
        raise InputError(
            f"`held_out` must be a sequence of digits; got {describe(held_out)}. {hint}"
        )
    digits = []
    for d in held_out:
        if isinstance(d, bool) or not isinstance(d, Integral) or not 0 <= int(d) <= 9:
            raise InputError(f"`held_out` holds {describe(d)}, which is not a digit 0–9. {hint}")
        digits.append(int(d))
    if len(set(digits)) != len(digits):
        raise InputError(f"`held_out` repeats a digit; got {describe(held_out)}. {hint}")
    if len(digits) > 7:
        raise InputError(
            f"`held_out` leaves {10 - len(digits)} digit(s); at least three must remain. {hint}"
        )
    return tuple(sorted(digits))


def digits_system(
    *,
    held_out: Sequence[int] = (8, 9),
    noise: float = 0.0,
    fresh_size: float = 0.0,
    policy_params: Mapping[str, Any] | None = None,
    ood: bool = True,
    fallback: bool = True,
    n_train: int = 600,
    random_state: int = 0,
) -> DigitsSystem:
    """A ready-made guarded system on scikit-learn's digits, for tests of ladders and loops.

    The 1,797 images are shuffled with ``random_state``; the first ``n_train`` in-scope
    images train a logistic regression (``C=0.05``), a k-NN distance (5 neighbours) and a
    nearest-centroid rule; the remaining images, held-out digits included, are split in
    half: validation (calibrator and policy) and production. ``fresh_size`` of production is
    set aside as fresh data. With ``noise`` > 0 every production (and fresh) image gets
    independent Gaussian pixel noise of that standard deviation (clipped to [0, 1]): a drift
    the model never saw, which makes it over-confident.

    Parameters
    ----------
    held_out : sequence of int, default=(8, 9)
        Digits kept out of training: out-of-scope inputs (label -1) in validation and
        production. ``()`` for none.
    noise : float ≥ 0, default=0.0
        Standard deviation of the pixel noise of production inputs (pixels lie in [0, 1]).
        With the defaults, 0.2 lowers in-scope accuracy from 97 % to 95 % and 0.4 to 87 %,
        and at 0.4 the k-NN screen already flags nearly every input as out of scope.
    fresh_size : float in [0, 1), default=0.0
        Fraction of production set aside as ``X_fresh`` / ``y_fresh``.
    policy_params : mapping, optional
        Arguments of :class:`~failwise.Policy`; default :data:`DEFAULT_POLICY` (a 5 % risk
        target, a fallback trusted at 60 % accuracy, at most 15 % escalations).
    ood, fallback : bool, default=True
        Fit the policy with the k-NN scores / the rule's labels (and let ``guard()`` use
        them).
    n_train : int, default=600
        Training images.
    random_state : int, default=0
        Seed of the shuffle and of the noise.

    Returns
    -------
    DigitsSystem

    Examples
    --------
    >>> from failwise.testing import digits_system
    >>> system = digits_system()
    >>> system.n_classes, system.X_test.shape
    (8, (599, 64))
    >>> sorted({d.action.value for d in system.decide(system.X_test)})
    ['abstain', 'answer', 'clarify', 'escalate', 'fallback']
    >>> drifted = digits_system(noise=0.3, fresh_size=0.5)
    >>> drifted.X_fresh.shape[0] > 0
    True
    """
    from failwise import Policy

    held = _check_held_out(held_out)
    ok = isinstance(noise, Real) and not isinstance(noise, bool) and np.isfinite(float(noise))
    if not ok or float(noise) < 0:
        raise InputError(
            f"`noise` must be a finite standard deviation ≥ 0 (pixels lie in [0, 1]); got "
            f"{describe(noise)}. Pass e.g. noise=0.3, or 0 for no drift."
        )
    fresh = _check_fraction(fresh_size, "fresh_size", open_low=False)
    n = _check_int(n_train, "n_train", 50, 1000, "Pass e.g. n_train=600.")
    seed = _check_int(random_state, "random_state", 0, 2**32 - 1, "Pass e.g. random_state=0.")
    for name, flag in (("ood", ood), ("fallback", fallback)):
        if not isinstance(flag, bool):
            raise InputError(f"`{name}` must be True or False; got {describe(flag)}.")
    if policy_params is None:
        params: dict[str, Any] = dict(DEFAULT_POLICY)
    elif isinstance(policy_params, Mapping) and all(isinstance(k, str) for k in policy_params):
        params = dict(policy_params)
    else:
        raise InputError(
            f"`policy_params` must be a mapping of Policy arguments, e.g. "
            f"{{'target_risk': 0.02}}; got {describe(policy_params)}."
        )

    X, labels, rest, model, knn, centroids, kept = _fitted(held, n, seed)
    val, production = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    n_fresh = round(fresh * production.size)
    test, fresh_rows = (
        production[: production.size - n_fresh],
        production[production.size - n_fresh :],
    )
    X_prod = X[production]
    if noise:
        noise_rng = np.random.default_rng([seed, 1])
        X_prod = np.clip(X_prod + noise_rng.normal(0.0, float(noise), X_prod.shape), 0.0, 1.0)
    X_test, X_fresh = X_prod[: test.size], X_prod[test.size :]

    from failwise import TemperatureScaling

    val_in = val[labels[val] >= 0]
    calibrator = TemperatureScaling().fit(model.decision_function(X[val_in]), labels[val_in])
    system = DigitsSystem(
        X_val=X[val].copy(),
        y_val=labels[val].copy(),
        X_test=X_test,
        y_test=labels[test].copy(),
        X_fresh=X_fresh,
        y_fresh=labels[fresh_rows].copy(),
        model=model,
        calibrator=calibrator,
        knn=knn,
        rule=CentroidRule(centroids),
        policy=None,
        digits=kept,
        noise=float(noise),
        uses_ood=ood,
        uses_fallback=fallback,
    )
    system.policy = Policy(**params).fit(
        system.proba(system.X_val),
        system.y_val,
        ood_score=system.ood(system.X_val) if ood else None,
        fallback=system.fallback_labels(system.X_val) if fallback else None,
    )
    return system
