"""Handwritten digits with classes that nobody evaluated."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np

from failwise.datasets._base import ClassificationDataset, check_fraction, make_split
from failwise.exceptions import InputError

__all__ = ["load_digits_with_unseen"]

_SOURCE = (
    "UCI ML hand-written digits (Alpaydin & Kaynak, 1998), 8×8 images, as shipped with "
    "scikit-learn (`sklearn.datasets.load_digits`); no download."
)


def load_digits_with_unseen(
    held_out: Sequence[int] = (1, 2),
    *,
    seed: int = 0,
    val_size: float = 0.2,
    test_size: float = 0.2,
) -> ClassificationDataset:
    """Load scikit-learn's digits with some digit classes held out as out-of-scope.

    The held-out digits never appear in training or validation: they exist only in the
    test split, labelled ``-1`` (:data:`failwise.OUT_OF_SCOPE`) — the category nobody
    evaluated. The remaining classes are re-indexed ``0..K-1`` in increasing digit order;
    ``classes[i]`` is the original digit as a string and ``metadata["digits"][i]`` as an int.

    The default holds out **1 and 2**. A logistic regression trained on the other eight
    digits answers a fifth to a third of the unseen 1s and 2s with more than 90%
    confidence (mostly as 8 and 3, which share their strokes), so a max-probability score
    separates them poorly (AUROC about 0.8), while a k-NN distance in pixel space
    separates them almost perfectly (about 0.98). The demo therefore shows both the
    silent failure and the fix.

    Parameters
    ----------
    held_out : sequence of int, default=(1, 2)
        Digits (0–9) kept out of training and validation; at least two digits must remain.
    seed : int, default=0
        Seed of the stratified train / validation / test split.
    val_size, test_size : float, default=0.2
        Fractions of the in-scope images that go to validation and test.

    Returns
    -------
    ClassificationDataset
        ``X`` is a float array of shape (n_samples, 64) with pixel intensities 0–16.

    Examples
    --------
    >>> data = load_digits_with_unseen(seed=0)
    >>> data.classes
    ('0', '3', '4', '5', '6', '7', '8', '9')
    >>> int((data.test.y == -1).sum()), int((data.train.y == -1).sum())
    (359, 0)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    held = _check_held_out(held_out)
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise InputError(f"`seed` must be a non-negative int; got {seed!r}.")
    val_frac = check_fraction(val_size, "val_size", "Pass e.g. val_size=0.2.")
    test_frac = check_fraction(test_size, "test_size", "Pass e.g. test_size=0.2.")
    if val_frac + test_frac >= 1.0:
        raise InputError(
            f"`val_size` + `test_size` must be below 1 to leave training data; got "
            f"{val_frac} + {test_frac}. Lower one of them."
        )

    X, digit = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    kept = tuple(d for d in range(10) if d not in held)
    unseen = np.isin(digit, held)
    remap = np.full(10, -1, dtype=np.intp)
    remap[list(kept)] = np.arange(len(kept))
    y = remap[digit]

    rows = np.flatnonzero(~unseen)
    rest, test_rows = train_test_split(
        rows, test_size=test_frac, stratify=y[rows], random_state=int(seed)
    )
    train_rows, val_rows = train_test_split(
        rest,
        test_size=val_frac / (1.0 - test_frac),
        stratify=y[rest],
        random_state=int(seed),
    )
    test_rows = np.concatenate([np.sort(test_rows), np.flatnonzero(unseen)])
    train_rows, val_rows = np.sort(train_rows), np.sort(val_rows)

    names = ", ".join(str(d) for d in held)
    description = (
        f"Handwritten digits (8×8 pixels, 64 features). Digits {names} are held out of "
        f"training and validation and appear only in test as out-of-scope (label -1). "
        f"{len(kept)} in-scope classes; train {train_rows.size}, validation {val_rows.size}, "
        f"test {test_rows.size} ({int(unseen.sum())} of them unseen digits). Stratified "
        f"split, seed {int(seed)}."
    )
    return ClassificationDataset(
        name="digits-with-unseen",
        train=make_split(X[train_rows], y[train_rows]),
        val=make_split(X[val_rows], y[val_rows]),
        test=make_split(X[test_rows], y[test_rows]),
        classes=tuple(str(d) for d in kept),
        description=description,
        source=_SOURCE,
        metadata={"held_out": held, "digits": kept, "seed": int(seed)},
    )


def _check_held_out(held_out: Sequence[int]) -> tuple[int, ...]:
    fix = "Pass distinct digits between 0 and 9, e.g. held_out=(1, 2)."
    if isinstance(held_out, str | bytes) or not isinstance(held_out, Sequence):
        raise InputError(f"`held_out` must be a sequence of digits; got {held_out!r}. {fix}")
    values = tuple(held_out)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value <= 9:
            raise InputError(f"`held_out` must hold digits 0–9; got {value!r}. {fix}")
    if len(set(values)) != len(values):
        raise InputError(f"`held_out` lists a digit twice: {values}. {fix}")
    if not 1 <= len(values) <= 8:
        raise InputError(
            f"`held_out` must hold between 1 and 8 digits so that at least two classes remain; "
            f"got {len(values)}. {fix}"
        )
    return tuple(sorted(int(v) for v in values))
