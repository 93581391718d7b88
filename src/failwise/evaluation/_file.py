"""`failwise evaluate`: the demo's analysis on a user's own predictions file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from failwise._params import Count, check_param
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
    features: str | Path | None = None,
    feature_metric: str = "cosine",
    feature_source: str | None = None,
    feature_dims: int | None = None,
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

    With the inputs' features (a ``features`` file of one row per data row, or
    ``feature_<i>`` columns), the validation rows' features are saved in the reference the
    monitor compares traffic with, and the features of rows marked ``split=train`` as its
    neighbour rows (:class:`~failwise.evaluation.ModelScores`). ``feature_metric``
    ("cosine" or "euclidean") is how they are compared; ``feature_source`` says in words how
    a guard computes the same features. ``feature_dims`` saves them through the fixed
    :func:`failwise.monitor.random_projection` to that many columns (for wide features; the
    guard's feature function must then project the same way).
    """
    if feature_metric not in ("cosine", "euclidean"):
        raise InputError(
            f"`feature_metric` must be 'cosine' or 'euclidean'; got {feature_metric!r}."
        )
    sets = read_predictions(
        path, label_column=label_column, out_of_scope_label=out_of_scope_label, features=features
    )
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
        train_rows = np.flatnonzero(reference.split == "train")
        note = (
            f"{val_rows.size} rows marked val fit the calibrator and ladder; "
            f"{test_rows.size} test rows are evaluated"
        )
        if train_rows.size:
            note += (
                f"; the features of {train_rows.size} train rows are the monitor's neighbour rows"
                if reference.features is not None
                else f"; {train_rows.size} train rows are not used (they have no features)"
            )
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(y.shape[0])
        half = np.zeros(y.shape[0], dtype=bool)
        for label in np.unique(y):
            rows = order[y[order] == label]
            half[rows[: rows.size // 2]] = True
        val_rows, test_rows = np.flatnonzero(half), np.flatnonzero(~half)
        train_rows = np.zeros(0, dtype=np.intp)
        note = (
            f"no split column: a seeded stratified half ({val_rows.size} rows) fits the "
            f"calibrator and ladder, the other {test_rows.size} rows are evaluated"
        )
    if val_rows.size < 20 or test_rows.size < 1:
        raise InputError(
            f"Need at least 20 data rows to fit on and 1 to evaluate; got {val_rows.size} and "
            f"{test_rows.size}. Add rows or fix the split column."
        )
    source = f"the features given with {Path(path).name}" + (
        f" ({Path(features).name})" if features is not None else ""
    )
    if feature_dims is not None:
        check_param("feature_dims", feature_dims, [Count(1)], where="evaluate_file")
        sets = [
            s if s.features is None else replace(s, features=_project(s.features, feature_dims))
            for s in sets
        ]
        source += f", through failwise.monitor.random_projection(dims={feature_dims})"

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
            val_features=None if s.features is None else s.features[val_rows],
            train_features=None
            if s.features is None or not train_rows.size
            else s.features[train_rows],
            feature_metric=feature_metric,
            feature_source=None if s.features is None else (feature_source or source),
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


def _project(features: NDArray[np.float64], dims: int) -> NDArray[np.float64]:
    from failwise.monitor import random_projection

    return np.asarray(random_projection(features, dims=dims), dtype=np.float64)
