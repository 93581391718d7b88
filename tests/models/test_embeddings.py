"""SentenceEmbedder: offline MiniLM, disk cache, clear errors; the MiniLM CLINC150 target."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from failwise.datasets import load_clinc150
from failwise.exceptions import InputError, NotFittedError
from failwise.models import SentenceEmbedder, embedding_linear_model
from failwise.policy._ood import fit_ood_threshold


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'failwise\[embeddings\]'.*torch==2\.13\.0"):
        SentenceEmbedder().encode(["hello"])


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("one string", "got a single str"),
        ([], "`texts` is empty"),
        (["fine", 3], "item 1 is int"),
    ],
)
def test_bad_texts_are_rejected_before_loading_anything(texts: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        SentenceEmbedder().encode(texts)  # type: ignore[arg-type]


def test_bad_parameters_are_named() -> None:
    with pytest.raises(InputError, match="SentenceEmbedder: `batch_size` must be an int"):
        SentenceEmbedder(batch_size=0).encode(["x"])
    with pytest.raises(InputError, match="has no parameter `batchsize`"):
        SentenceEmbedder().set_params(batchsize=3)


def test_transform_before_fit_spells_out_the_order() -> None:
    with pytest.raises(NotFittedError, match="call fit before transform"):
        SentenceEmbedder().transform(["x"])


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    pytest.importorskip("sentence_transformers", reason="needs the `embeddings` extra")
    return SentenceEmbedder()


@pytest.mark.embeddings
def test_encode_returns_unit_norm_float32_rows_with_meaningful_similarity(
    embedder: SentenceEmbedder,
) -> None:
    vectors = embedder.encode(["book a table for two", "reserve a table", "what is 2 + 2"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]


@pytest.mark.embeddings
def test_fit_records_the_local_model_and_pickling_drops_the_weights(
    embedder: SentenceEmbedder,
) -> None:
    fitted = SentenceEmbedder().fit()
    assert fitted.embedding_dim_ == 384
    assert Path(fitted.model_path_).is_dir()
    clone = pickle.loads(pickle.dumps(fitted))
    assert "_model" not in clone.__dict__
    assert clone.transform(["hello"]) == pytest.approx(fitted.transform(["hello"]), abs=1e-6)


@pytest.mark.embeddings
def test_cache_returns_the_same_array_and_is_keyed_by_the_texts(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="needs the `embeddings` extra")
    cached = SentenceEmbedder(cache=True, cache_dir=tmp_path)
    first = cached.encode(["turn on the lights", "set an alarm"])
    files = list((tmp_path / "embeddings").glob("*.npy"))
    assert len(files) == 1
    assert np.array_equal(cached.encode(["turn on the lights", "set an alarm"]), first)
    cached.encode(["set an alarm"])
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 2


@pytest.mark.embeddings
def test_embedder_is_the_first_step_of_a_text_pipeline(embedder: SentenceEmbedder) -> None:
    texts = ["book a table", "reserve a table", "will it rain", "is it sunny"]
    model = embedding_linear_model(embedder=SentenceEmbedder()).fit(texts, [0, 0, 1, 1])
    assert model.predict(["get me a reservation", "any snow today"]).tolist() == [0, 1]


@pytest.mark.embeddings
@pytest.mark.slow
def test_minilm_reaches_the_clinc150_target(embedder: SentenceEmbedder, clinc150_dir: Path) -> None:
    """≥ 93.4% in-scope accuracy and ≥ 72.3% OOS recall, threshold fitted on validation.

    Logistic regression on MiniLM embeddings, with the 100 `oos_train` queries as an extra
    class (they only shape the probabilities; answers are the best in-scope intent);
    score = 1 - max in-scope probability; accuracy floor 93.4% at 95% confidence.
    """
    data = load_clinc150(clinc150_dir, include_oos_train=True)
    n_classes = data.n_classes
    y_train = np.where(data.train.y < 0, n_classes, data.train.y)
    model = embedding_linear_model().fit(embedder.encode([str(x) for x in data.train.X]), y_train)
    val_p = model.predict_proba(embedder.encode([str(x) for x in data.val.X]))[:, :n_classes]
    test_p = model.predict_proba(embedder.encode([str(x) for x in data.test.X]))[:, :n_classes]
    fitted = fit_ood_threshold(
        1 - val_p.max(axis=1),
        data.val.y < 0,
        correct=val_p.argmax(axis=1) == data.val.y,
        min_in_scope_accuracy=0.934,
    )
    flagged = fitted.flag(1 - test_p.max(axis=1))
    inside = data.test.y >= 0
    accuracy = np.mean((test_p.argmax(axis=1) == data.test.y)[inside] & ~flagged[inside])
    recall = np.mean(flagged[~inside])
    assert accuracy >= 0.934
    assert recall >= 0.723
