"""Text model builders: the TF-IDF default and the embedding classifier."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from failwise.datasets import load_clinc150
from failwise.exceptions import InputError
from failwise.models import embedding_linear_model, tfidf_linear_model
from failwise.policy._ood import KNNDistance, fit_ood_threshold, max_logit_score

TEXTS = [
    "book a table for two",
    "reserve a table tonight",
    "can i get a reservation",
    "what's the weather like",
    "will it rain tomorrow",
    "is it sunny outside",
    "play some jazz",
    "put on my workout playlist",
    "play the next song",
]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_tfidf_model_exposes_margins_and_sparse_features() -> None:
    model = tfidf_linear_model().fit(TEXTS, LABELS)
    margins = model.decision_function(["will it snow", "reserve a table"])
    assert margins.shape == (2, 3)
    assert margins.argmax(axis=1).tolist() == [1, 0]
    features = model[:-1].transform(TEXTS)
    assert sp.issparse(features)
    assert features.shape[0] == len(TEXTS)
    # The features plug straight into the k-NN out-of-scope score.
    knn = KNNDistance(n_neighbors=2).fit(features)
    near, far = knn.score(model[:-1].transform(["book a table", "quantum chromodynamics"]))
    assert near < far


def test_tfidf_model_pickles_with_identical_outputs() -> None:
    model = tfidf_linear_model().fit(TEXTS, LABELS)
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.decision_function(TEXTS), model.decision_function(TEXTS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"C": -1.0}, r"tfidf_linear_model: `C` must be a number > 0; got -1.0"),
        ({"word_ngram_range": (2, 1)}, r"`word_ngram_range` must be a tuple \(min_n, max_n\)"),
        ({"sublinear_tf": "yes"}, "`sublinear_tf` must be a bool"),
    ],
)
def test_tfidf_model_rejects_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        tfidf_linear_model(**kwargs)  # type: ignore[arg-type]


def test_embedding_model_is_a_logistic_regression_or_a_pipeline_with_an_embedder() -> None:
    model = embedding_linear_model()
    assert isinstance(model, LogisticRegression)
    assert model.C == 10.0
    with pytest.raises(InputError, match="embedding_linear_model: `max_iter` must be an int"):
        embedding_linear_model(max_iter=0)

    class Lengths:
        def fit(self, X: list[str], y: object = None) -> Lengths:
            return self

        def transform(self, X: list[str]) -> np.ndarray:
            return np.array([[len(t), t.count(" ")] for t in X], dtype=float)

    pipeline = embedding_linear_model(embedder=Lengths())
    assert isinstance(pipeline, Pipeline)
    assert pipeline.fit(TEXTS, LABELS).predict_proba(TEXTS).shape == (9, 3)


@pytest.mark.slow
def test_tfidf_default_reaches_the_clinc150_target(clinc150_dir: Path) -> None:
    """≥ 91% in-scope accuracy and ≥ 50% OOS recall on test, threshold fitted on validation."""
    data = load_clinc150(clinc150_dir)
    model = tfidf_linear_model().fit(data.train.X, data.train.y)
    val_z, test_z = model.decision_function(data.val.X), model.decision_function(data.test.X)
    fitted = fit_ood_threshold(
        max_logit_score(val_z),
        data.val.y < 0,
        correct=val_z.argmax(axis=1) == data.val.y,
        min_in_scope_accuracy=0.91,
    )
    flagged = fitted.flag(max_logit_score(test_z))
    inside = data.test.y >= 0
    accuracy = np.mean((test_z.argmax(axis=1) == data.test.y)[inside] & ~flagged[inside])
    recall = np.mean(flagged[~inside])
    assert accuracy >= 0.91
    assert recall >= 0.50
