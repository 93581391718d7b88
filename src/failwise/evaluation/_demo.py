"""The demo: two models of different accuracy, calibrated, laddered and compared on real data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from failwise.evaluation._pipeline import EvaluationResult, ModelScores, evaluate_scores
from failwise.exceptions import InputError
from failwise.outcomes import OutcomeModel
from failwise.policy import Policy

__all__ = ["LARSON_PUBLISHED", "run_demo"]

#: Larson et al. (2019), Table 2, "Full" condition: (row, in-scope accuracy %, OOS recall %).
LARSON_PUBLISHED: list[tuple[str, float, float]] = [
    ("SVM, oos-train", 91.0, 14.5),
    ("SVM, oos-threshold", 88.2, 18.0),
    ("MLP, oos-train", 93.5, 47.4),
    ("MLP, oos-threshold", 93.4, 49.1),
    ("BERT, oos-train", 96.9, 40.3),
    ("BERT, oos-threshold", 96.2, 52.3),
]


def _noop(_: str) -> None:
    return None


def run_demo(
    dataset: str = "digits",
    *,
    data_dir: str | Path | None = None,
    policy: Policy | None = None,
    outcome_model: OutcomeModel | None = None,
    seed: int = 0,
    embeddings: bool | None = None,
    n_bootstrap: int = 200,
    log: Callable[[str], None] = _noop,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[EvaluationResult, str, str]:
    """Run the demo end to end; return the evaluation, a title and a dataset description.

    Parameters
    ----------
    dataset : {"digits", "clinc150"}
    data_dir : path, optional
        Local copy of the dataset (CLINC150); otherwise downloaded once and cached.
    policy : Policy, optional
        Ladder template (default: 2% target risk at 95% confidence).
    outcome_model : OutcomeModel, optional
        Assumptions behind the projected product metrics (default ``OutcomeModel()``).
    seed : int
    embeddings : bool or None
        CLINC150 only: add the sentence-embedding model; None = when the extra is installed.
    n_bootstrap : int
    log : callable
        Receives progress messages.
    progress : callable, optional
        Receives ``(done, total, step)`` during the evaluation (see :func:`evaluate_scores`).
    """
    if dataset == "digits":
        models, y_val, y_test, title, text = _digits_models(seed, log)
        published: list[tuple[str, float, float]] = []
    elif dataset == "clinc150":
        models, y_val, y_test, title, text = _clinc_models(
            data_dir, seed, embeddings, log, progress
        )
        published = LARSON_PUBLISHED
    else:
        raise InputError(f"Unknown demo dataset {dataset!r}; expected 'digits' or 'clinc150'.")
    log("calibrating, fitting the ladders and projecting product metrics")
    result = evaluate_scores(
        models,
        y_val,
        y_test,
        policy=policy,
        outcome_model=outcome_model,
        n_bootstrap=n_bootstrap,
        random_state=seed,
        progress=progress,
    )
    return replace(result, published=published), title, text


#: Columns of the TF-IDF model's features in its monitor reference: its TF-IDF rows (about
#: 50,000 columns on CLINC150) through a fixed random projection.
TFIDF_PROJECTION_DIMS = 128

#: Share of the digits test traffic that comes from the digits nobody trained or evaluated on.
DIGITS_UNSEEN_SHARE = 0.15


def _digits_models(
    seed: int, log: Callable[[str], None]
) -> tuple[list[ModelScores], Any, Any, str, str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from failwise.datasets import load_digits_with_unseen
    from failwise.policy import KNNDistance

    data = load_digits_with_unseen(seed=seed, val_size=0.4, test_size=0.3)
    # Production traffic: the unseen digits are a minority of requests, not half of them.
    rng = np.random.default_rng(seed)
    seen = np.flatnonzero(data.test.y >= 0)
    unseen = np.flatnonzero(data.test.y < 0)
    n_unseen = min(unseen.size, round(seen.size * DIGITS_UNSEEN_SHARE / (1 - DIGITS_UNSEEN_SHARE)))
    rows = np.sort(np.concatenate([seen, rng.choice(unseen, n_unseen, replace=False)]))
    X_test, y_test = data.test.X[rows], data.test.y[rows]
    log(
        f"digits: {len(data.train.y)} train, {len(data.val.y)} validation, {rows.size} test "
        f"images ({n_unseen} of them digits nobody trained or evaluated on)"
    )
    # Out-of-scope score: distance to the 5th nearest training image in pixel space.
    ood = KNNDistance(n_neighbors=5, metric="euclidean").fit(data.train.X)
    val_ood = ood.score(data.val.X)
    test_ood = ood.score(X_test)
    contenders = {
        "SVM (RBF kernel)": make_pipeline(
            StandardScaler(), SVC(decision_function_shape="ovr", random_state=seed)
        ),
        "logistic regression": make_pipeline(
            StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)
        ),
    }
    models = []
    for name, estimator in contenders.items():
        log(f"training {name}")
        estimator.fit(data.train.X, data.train.y)
        models.append(
            ModelScores(
                name=name,
                val=_scores(estimator, data.val.X),
                test=_scores(estimator, X_test),
                kind="logits",
                val_ood=val_ood,
                test_ood=test_ood,
                description=f"{name} on standardised 8×8 pixel intensities (scikit-learn)",
                val_features=np.asarray(data.val.X, dtype=np.float64),
                train_features=np.asarray(data.train.X, dtype=np.float64),
                feature_metric="euclidean",
                feature_source="the 64 pixel intensities of the 8×8 image (the input itself)",
            )
        )
    text = (
        f"{data.description} Test traffic: {seen.size} images of the {len(data.classes)} "
        f"trained digits plus {n_unseen} images of the held-out digits "
        f"({DIGITS_UNSEEN_SHARE:.0%} of requests)."
    )
    return models, data.val.y, y_test, "failwise demo: handwritten digits", text


def _log_proba(estimator: Any, X: Any) -> Any:
    proba = np.clip(estimator.predict_proba(X), 1e-12, 1.0)
    return np.log(proba)


def _clinc_models(
    data_dir: str | Path | None,
    seed: int,
    embeddings: bool | None,
    log: Callable[[str], None],
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[ModelScores], Any, Any, str, str]:
    from failwise.datasets import load_clinc150
    from failwise.models import tfidf_linear_model
    from failwise.monitor import random_projection
    from failwise.policy import max_logit_score

    data = load_clinc150(data_dir, include_oos_train=True)
    in_scope_train = data.train.y >= 0
    train_X = [x for x, keep in zip(data.train.X, in_scope_train, strict=True) if keep]
    train_y = data.train.y[in_scope_train]
    log(
        f"CLINC150: {len(train_y)} train, {len(data.val.y)} validation, "
        f"{len(data.test.y)} test queries, {len(data.classes)} intents"
    )
    models = []
    log("training the TF-IDF + linear model")
    model = tfidf_linear_model().fit(train_X, train_y)
    val_z = model.decision_function(data.val.X)
    test_z = model.decision_function(data.test.X)

    def tfidf_features(texts: Any) -> Any:
        return random_projection(model[:-1].transform(texts), dims=TFIDF_PROJECTION_DIMS)

    models.append(
        ModelScores(
            name="TF-IDF + linear",
            val=val_z,
            test=test_z,
            kind="logits",
            val_ood=max_logit_score(val_z),
            test_ood=max_logit_score(test_z),
            description="word and character n-gram TF-IDF with a linear SVM (no torch); "
            "out-of-scope score: the negated largest margin",
            val_features=tfidf_features(data.val.X),
            train_features=tfidf_features(train_X),
            feature_source="the model's TF-IDF rows (model[:-1].transform) through "
            f"failwise.monitor.random_projection(dims={TFIDF_PROJECTION_DIMS})",
        )
    )
    if embeddings is None:
        embeddings = _embeddings_available()
    if embeddings:
        from failwise.models import SentenceEmbedder, embedding_linear_model
        from failwise.policy import CombinedOODScore, KNNDistance

        encoder = SentenceEmbedder()
        texts = [list(data.train.X), list(data.val.X), list(data.test.X)]
        total = sum(len(t) for t in texts)
        log(f"encoding {total:,} queries with all-MiniLM-L6-v2 (the longest step)")
        train_e, val_e, test_e = _encode_in_chunks(encoder, texts, progress)
        # The oos_train queries become a 151st class that only shapes the probabilities: the
        # model answers with its best intent. The out-of-scope score averages the in-scope
        # ranks of two signals: one minus the largest intent probability (mass on the extra
        # class raises it) and the distance to the 5th nearest training query.
        k = len(data.classes)
        labels = np.where(data.train.y >= 0, data.train.y, k)
        clf = embedding_linear_model().fit(train_e, labels)
        knn = KNNDistance(n_neighbors=5).fit(train_e[in_scope_train])

        def signals(X: Any) -> tuple[Any, Any]:
            proba = clf.predict_proba(X)
            logits = np.asarray(clf.decision_function(X))[:, :k]
            return logits, 1.0 - proba[:, :k].max(axis=1)

        _, train_msp = signals(train_e[in_scope_train])
        combined = CombinedOODScore().fit(np.column_stack([train_msp, knn.score_training()]))
        val_logits, val_msp = signals(val_e)
        test_logits, test_msp = signals(test_e)
        val_ood = combined.score(np.column_stack([val_msp, knn.score(val_e)]))
        test_ood = combined.score(np.column_stack([test_msp, knn.score(test_e)]))
        models.append(
            ModelScores(
                name="MiniLM embeddings + linear",
                val=val_logits,
                test=test_logits,
                kind="logits",
                val_ood=val_ood,
                test_ood=test_ood,
                description="all-MiniLM-L6-v2 sentence embeddings with logistic regression, "
                "oos_train as an extra class; out-of-scope score: mean in-scope rank of "
                "1 − largest intent probability and 5-NN distance",
                val_features=val_e,
                train_features=train_e[in_scope_train],
                feature_source="all-MiniLM-L6-v2 sentence embeddings "
                "(failwise.models.SentenceEmbedder().encode)",
            )
        )
    return models, data.val.y, data.test.y, "failwise demo: CLINC150 intents", data.description


#: Queries encoded between two progress reports.
_ENCODE_CHUNK = 2_000


def _encode_in_chunks(
    encoder: Any,
    parts: list[list[str]],
    progress: Callable[[int, int, str], None] | None,
) -> list[Any]:
    """Encode each list of texts, reporting progress every few thousand queries."""
    total = sum(len(p) for p in parts)
    done = 0
    out = []
    for texts in parts:
        chunks = []
        for start in range(0, len(texts), _ENCODE_CHUNK):
            if progress is not None:
                progress(done, total, "encoding queries")
            chunk = texts[start : start + _ENCODE_CHUNK]
            chunks.append(encoder.encode(chunk))
            done += len(chunk)
        out.append(np.concatenate(chunks) if chunks else encoder.encode(texts))
    if progress is not None:
        progress(total, total, "encoding queries")
    return out


def _scores(model: Any, X: Any) -> Any:
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(X), dtype=np.float64)
    return _log_proba(model, X)


def _embeddings_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentence_transformers") is not None
