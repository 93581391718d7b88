"""Digits with unseen classes: held-out digits only in test, stratified seeded splits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from failwise import OUT_OF_SCOPE
from failwise.datasets import load_digits_with_unseen
from failwise.exceptions import InputError
from failwise.policy import KNNDistance


def _original_digit(rows: np.ndarray) -> np.ndarray:
    X, digit = load_digits(return_X_y=True)
    lookup: dict[bytes, int] = {}
    for image, label in zip(X, digit, strict=True):
        lookup.setdefault(image.astype(np.float64).tobytes(), int(label))
    return np.array([lookup[row.tobytes()] for row in rows])


def test_held_out_digits_appear_only_in_test_as_out_of_scope(seed: int) -> None:
    data = load_digits_with_unseen(seed=seed)
    assert data.metadata["held_out"] == (1, 2)
    assert (data.train.y >= 0).all()
    assert (data.val.y >= 0).all()
    unseen = data.test.y == OUT_OF_SCOPE
    assert int(unseen.sum()) == 359  # every 1 and 2 of the 1,797 images
    assert set(_original_digit(np.asarray(data.test.X)[unseen]).tolist()) == {1, 2}
    assert not {1, 2} & set(_original_digit(np.asarray(data.train.X)).tolist())


def test_remaining_classes_are_reindexed_and_the_mapping_is_kept(seed: int) -> None:
    data = load_digits_with_unseen(held_out=(3, 5), seed=seed)
    assert data.classes == ("0", "1", "2", "4", "6", "7", "8", "9")
    digits = np.asarray(data.metadata["digits"])
    assert np.array_equal(digits[data.train.y], _original_digit(np.asarray(data.train.X)))
    assert set(np.unique(data.val.y).tolist()) == set(range(8))


def test_splits_partition_the_images_and_are_stratified() -> None:
    data = load_digits_with_unseen(seed=0, val_size=0.2, test_size=0.2)
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    in_test = data.test.y[data.test.y >= 0]
    for labels, share in ((data.train.y, 0.6), (data.val.y, 0.2), (in_test, 0.2)):
        counts = np.bincount(labels, minlength=8)
        total = np.bincount(np.concatenate([data.train.y, data.val.y, in_test]), minlength=8)
        assert np.all(np.abs(counts - share * total) <= 1.5)


def test_same_seed_gives_the_same_split_and_another_seed_does_not() -> None:
    a, b = load_digits_with_unseen(seed=3), load_digits_with_unseen(seed=3)
    c = load_digits_with_unseen(seed=4)
    assert np.array_equal(a.train.X, b.train.X)
    assert not np.array_equal(a.train.X, c.train.X)


def test_arrays_are_read_only() -> None:
    data = load_digits_with_unseen()
    with pytest.raises(ValueError, match="read-only"):
        data.train.y[0] = 3


@pytest.mark.parametrize(
    ("held_out", "message"),
    [
        ((1, 1), "lists a digit twice"),
        ((10,), "must hold digits 0–9; got 10"),
        ("12", "must be a sequence of digits"),
        ((), "between 1 and 8 digits"),
        (tuple(range(9)), "between 1 and 8 digits"),
    ],
)
def test_invalid_held_out_digits_are_named(held_out: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_digits_with_unseen(held_out=held_out)  # type: ignore[arg-type]


def test_split_fractions_must_leave_training_data() -> None:
    with pytest.raises(InputError, match=r"`val_size` \+ `test_size` must be below 1"):
        load_digits_with_unseen(val_size=0.5, test_size=0.5)
    with pytest.raises(InputError, match=r"`test_size` must be a fraction in \(0, 1\)"):
        load_digits_with_unseen(test_size=0)


def test_default_held_out_digits_fool_max_probability_but_not_knn_distance() -> None:
    """The documented reason for holding out 1 and 2."""
    data = load_digits_with_unseen(seed=0)
    model = LogisticRegression(max_iter=5000).fit(np.asarray(data.train.X) / 16, data.train.y)
    proba = model.predict_proba(np.asarray(data.test.X) / 16)
    unseen = data.test.y == OUT_OF_SCOPE
    assert np.mean(proba[unseen].max(axis=1) > 0.9) > 0.1
    msp_auroc = roc_auc_score(unseen, 1 - proba.max(axis=1))
    knn_auroc = roc_auc_score(
        unseen, KNNDistance(n_neighbors=5, metric="euclidean").fit(data.train.X).score(data.test.X)
    )
    assert knn_auroc > 0.95 > msp_auroc
