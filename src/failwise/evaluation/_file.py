"""`failwise evaluate`: the demo's analysis on a user's own predictions file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from failwise.evaluation._pipeline import EvaluationResult, ModelScores, evaluate_scores
from failwise.evaluation._predictions import read_predictions
from failwise.exceptions import InputError
from failwise.outcomes import OutcomeModel
from failwise.policy import Policy

__all__ = ["evaluate_file"]


def evaluate_file(
    path: str | Path,
    *,
    label_column: str = "label",
    out_of_scope_label: str = "oos",
    policy: Policy | None = None,
    outcome_model: OutcomeModel | None = None,
    seed: int = 0,
    n_bootstrap: int = 200,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[EvaluationResult, str]:
    """Evaluate the models in a predictions file; return the result and a note on the split.

    Rows marked ``split=val`` fit the calibrator and the ladder; ``split=test`` rows are
    evaluated. Without a ``split`` column, a seeded stratified half of the rows is used for
    fitting and the other half for evaluation. ``outcome_model`` and ``progress`` are passed
    to :func:`evaluate_scores`.
    """
    sets = read_predictions(path, label_column=label_column, out_of_scope_label=out_of_scope_label)
    reference = sets[0]
    for other in sets[1:]:
        if other.y.shape != reference.y.shape or not np.array_equal(other.y, reference.y):
            raise InputError(
                f"Models {reference.model!r} and {other.model!r} have different labels or row "
                "counts; every model in one file must score the same inputs in the same order."
            )
    y = reference.y
    if reference.split is not None:
        val_rows = np.flatnonzero(reference.split == "val")
        test_rows = np.flatnonzero(reference.split == "test")
        note = (
            f"{val_rows.size} rows marked val fit the calibrator and ladder; "
            f"{test_rows.size} test rows are evaluated"
        )
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(y.shape[0])
        half = np.zeros(y.shape[0], dtype=bool)
        for label in np.unique(y):
            rows = order[y[order] == label]
            half[rows[: rows.size // 2]] = True
        val_rows, test_rows = np.flatnonzero(half), np.flatnonzero(~half)
        note = (
            f"no split column: a seeded stratified half ({val_rows.size} rows) fits the "
            f"calibrator and ladder, the other {test_rows.size} rows are evaluated"
        )
    if val_rows.size < 20 or test_rows.size < 1:
        raise InputError(
            f"Need at least 20 data rows to fit on and 1 to evaluate; got {val_rows.size} and "
            f"{test_rows.size}. Add rows or fix the split column."
        )
    models = [
        ModelScores(
            name=s.model,
            val=s.scores[val_rows],
            test=s.scores[test_rows],
            kind="probabilities" if s.kind == "probabilities" else "logits",
            val_ood=None if s.ood_score is None else s.ood_score[val_rows],
            test_ood=None if s.ood_score is None else s.ood_score[test_rows],
            val_fallback=None if s.fallback is None else s.fallback[val_rows],
            test_fallback=None if s.fallback is None else s.fallback[test_rows],
            description=f"{s.kind} for {len(s.classes)} classes from {Path(path).name}",
        )
        for s in sets
    ]
    result = evaluate_scores(
        models,
        y[val_rows],
        y[test_rows],
        policy=policy,
        outcome_model=outcome_model,
        n_bootstrap=n_bootstrap,
        random_state=seed,
        progress=progress,
    )
    return result, note
