"""choose_by_folds: the best mean, or a default kept unless another is clearly better."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.policy import choose_by_folds


def test_the_best_mean_wins_under_the_best_rule_and_ties_keep_the_default() -> None:
    scores = {"old": [0.8, 0.8], "tie": [0.79, 0.81], "new": [0.82, 0.81]}
    assert choose_by_folds(scores, default="old", rule="best") == "new"
    assert choose_by_folds(
        {"tie": [0.79, 0.81], "old": [0.8, 0.8]}, default="old", rule="best"
    ) == ("old")


def test_a_gain_inside_the_folds_spread_keeps_the_default() -> None:
    # "new" wins on average by 0.005 but loses one fold: its advantage's standard error
    # (0.02 / sqrt 3 ≈ 0.012) exceeds the mean gain.
    scores = {"old": [0.80, 0.80, 0.80], "new": [0.82, 0.78, 0.815]}
    assert choose_by_folds(scores, default="old") == "old"
    assert choose_by_folds(scores, default="old", rule="best") == "new"


def test_a_consistent_gain_is_taken_and_the_best_clear_candidate_wins() -> None:
    scores = {
        "old": [0.80, 0.81, 0.79, 0.80],
        "steady": [0.82, 0.83, 0.81, 0.82],  # +0.02 on every fold: standard error 0
        "noisy": [0.90, 0.80, 0.75, 0.85],  # higher mean, but not clearly above "old"
    }
    assert choose_by_folds(scores, default="old") == "steady"
    assert choose_by_folds(scores, default="old", rule="best") == "noisy"
    clear = {"old": [0.8] * 4, "a": [0.85] * 4, "b": [0.9] * 4}
    assert choose_by_folds(clear, default="old") == "b"


def test_the_rule_matches_the_standard_error_computed_by_hand() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        old = rng.uniform(0.7, 0.9, 5)
        new = old + rng.normal(0.005, 0.01, 5)
        gain = new - old
        clear = gain.mean() > gain.std(ddof=1) / np.sqrt(5)
        expected = "new" if clear else "old"
        assert choose_by_folds({"old": list(old), "new": list(new)}, default="old") == expected


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(InputError, match="rule"):
        choose_by_folds({"a": [1.0, 1.0]}, default="a", rule="median")
    with pytest.raises(InputError, match="'b', which is not a candidate"):
        choose_by_folds({"a": [1.0, 1.0]}, default="b")
    with pytest.raises(InputError, match="same folds"):
        choose_by_folds({"a": [1.0, 1.0], "b": [1.0]}, default="a")
    with pytest.raises(InputError, match="at least 2"):
        choose_by_folds({"a": [1.0], "b": [0.5]}, default="a")
    with pytest.raises(InputError, match="finite"):
        choose_by_folds({"a": [1.0, float("nan")]}, default="a")
    assert choose_by_folds({"a": [1.0], "b": [0.5]}, default="a", rule="best") == "a"
