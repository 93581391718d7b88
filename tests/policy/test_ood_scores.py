"""Pseudo-open folds: whole classes held out to stand in for out-of-scope inputs (the
scores of this module are tested with the threshold rule in test_ood.py)."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.policy import PseudoOpenFold, pseudo_open_folds


def _labels(rng: np.random.Generator, n_classes: int = 12) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(n_classes), rng.integers(5, 30, n_classes)))


def test_each_fold_holds_out_other_classes_and_never_fits_on_them(
    rng: np.random.Generator,
) -> None:
    y = _labels(rng)
    folds = pseudo_open_folds(y, n_folds=4, unknown_share=0.25, random_state=1)
    assert len(folds) == 4
    held = [set(fold.unknown_classes.tolist()) for fold in folds]
    assert all(len(h) == 3 for h in held)
    assert set().union(*held) == set(range(12))  # disjoint: 4 folds × 3 classes = 12
    for fold in folds:
        assert set(fold.known_classes) | set(fold.unknown_classes) == set(range(12))
        assert np.isin(y[fold.fit_rows], fold.known_classes).all()
        assert not np.intersect1d(fold.fit_rows, fold.evaluate_rows).size
        # Every class, known or not, gives held-out rows and keeps some for fitting.
        assert set(y[fold.evaluate_rows]) == set(range(12))
        for c in fold.known_classes:
            assert (y[fold.fit_rows] == c).sum() >= 1


def test_evaluation_rows_are_a_share_of_every_class(rng: np.random.Generator) -> None:
    y = _labels(rng)
    fold = pseudo_open_folds(y, evaluate_share=0.2, random_state=0)[0]
    for c in range(12):
        n = int((y == c).sum())
        assert int((y[fold.evaluate_rows] == c).sum()) == max(1, round(0.2 * n))
    # The evaluation rows are the same in every fold, so folds differ only in the unknowns.
    folds = pseudo_open_folds(y, random_state=0)
    assert all(np.array_equal(f.evaluate_rows, folds[0].evaluate_rows) for f in folds)


def test_encode_numbers_known_classes_and_marks_the_rest_out_of_scope() -> None:
    y = np.array(["b", "a", "c", "d", "a", "b", "c", "d"] * 3)
    fold = pseudo_open_folds(y, n_folds=1, unknown_share=0.5, random_state=3)[0]
    assert isinstance(fold, PseudoOpenFold)
    codes = fold.encode(y)
    known = np.isin(y, fold.known_classes)
    assert (codes[~known] == -1).all()
    assert codes[known].tolist() == np.searchsorted(fold.known_classes, y[known]).tolist()
    assert fold.encode(["zzz"]).tolist() == [-1]


def test_folds_repeat_with_the_seed_and_wrap_when_classes_run_out(
    rng: np.random.Generator,
) -> None:
    y = _labels(rng, n_classes=4)
    first = pseudo_open_folds(y, n_folds=6, unknown_share=0.5, random_state=7)
    again = pseudo_open_folds(y, n_folds=6, unknown_share=0.5, random_state=7)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.unknown_classes, b.unknown_classes)
        assert np.array_equal(a.fit_rows, b.fit_rows)
    assert all(f.unknown_classes.size == 2 and f.known_classes.size == 2 for f in first)
    # With 4 classes and 2 held out per fold, the third fold repeats the first one's.
    assert np.array_equal(first[2].unknown_classes, first[0].unknown_classes)


def test_a_share_too_large_still_keeps_one_class_known() -> None:
    fold = pseudo_open_folds([0, 0, 1, 1, 2, 2], unknown_share=0.99, random_state=0)[0]
    assert fold.unknown_classes.size == 2
    assert fold.known_classes.size == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_folds": 0}, "n_folds"),
        ({"unknown_share": 1.0}, "unknown_share"),
        ({"evaluate_share": 0.0}, "evaluate_share"),
        ({"evaluate_share": float("nan")}, "evaluate_share"),
    ],
)
def test_fold_arguments_are_checked(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        pseudo_open_folds([0, 1, 0, 1], **kwargs)  # type: ignore[arg-type]


def test_folds_need_one_dimensional_labels_of_two_classes() -> None:
    with pytest.raises(InputError, match="at least 2"):
        pseudo_open_folds([3, 3, 3])
    with pytest.raises(InputError, match="1-D"):
        pseudo_open_folds([[0, 1], [1, 0]])
    with pytest.raises(InputError, match="non-empty"):
        pseudo_open_folds([])
