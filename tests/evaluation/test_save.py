"""A saved policy's reference, end to end: `demo --save-policy`, decisions recorded with
their features (by a guard, and by `failwise serve`), then `gaps` and `monitor`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from typer.testing import CliRunner

from failwise import artifacts, store
from failwise.cli import app
from failwise.datasets import load_digits_with_unseen
from failwise.monitor import Reference, load_reference
from failwise.policy import KNNDistance
from failwise.runtime import Guard
from tests.service.conftest import serve

runner = CliRunner(env={"COLUMNS": "80"})


def _demo_data() -> Any:
    return load_digits_with_unseen(seed=0, val_size=0.4, test_size=0.3)  # the demo's split


def _svm(data: Any) -> Any:
    """The demo's SVM, trained again on the same rows."""
    return make_pipeline(StandardScaler(), SVC(random_state=0)).fit(data.train.X, data.train.y)


class DigitsModel:
    """The demo's SVM for `failwise serve --model`, trained on first use."""

    def __init__(self) -> None:
        self.model: Any = None

    def decision_function(self, xs: list[Any]) -> Any:
        if self.model is None:
            self.model = _svm(_demo_data())
        return self.model.decision_function(np.asarray(xs, dtype=np.float64))


DIGITS_MODEL = DigitsModel()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SVM's folder of `failwise demo --save-policy`."""
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(
        app, ["demo", "-q", "--save-policy", str(out / "saved"), "--report", str(out / "r.html")]
    )
    assert result.exit_code == 0, result.output
    return out / "saved" / "svm-rbf-kernel"


def _traffic(n_unseen: int) -> tuple[Any, np.ndarray, np.ndarray, Any]:
    """The demo's test digits with ``n_unseen`` unseen ones, shuffled: (data, pixels,
    whether unseen, the out-of-scope scorer)."""
    data = _demo_data()
    rng = np.random.default_rng(1)
    seen, unseen = np.flatnonzero(data.test.y >= 0), np.flatnonzero(data.test.y < 0)
    rows = rng.permutation(np.concatenate([seen, rng.choice(unseen, n_unseen, replace=False)]))
    ood = KNNDistance(n_neighbors=5, metric="euclidean").fit(data.train.X)
    return data, data.test.X[rows], data.test.y[rows] < 0, ood


def _finds_the_unseen_digits(url: str, folder: Path, unseen: dict[str, bool], out: Path) -> None:
    window = ["--store", url, "--policy", str(folder), "--window", str(len(unseen))]
    result = runner.invoke(app, ["gaps", *window, "--json", str(out / "gaps.json")])
    assert result.exit_code == 0, result.output
    spots = json.loads((out / "gaps.json").read_text())["blind_spots"]
    assert spots, result.output
    # The blind spots are the digits nobody evaluated: the largest wholly, and most of the
    # inputs in them (each spot's share judged by its representative inputs).
    shares = [np.mean([unseen[e["task_id"]] for e in spot["examples"]]) for spot in spots]
    sizes = [spot["statistics"]["size"] for spot in spots]
    assert shares[int(np.argmax(sizes))] == 1.0
    assert np.average(shares, weights=sizes) >= 0.75
    result = runner.invoke(app, ["monitor", *window, "--json", str(out / "monitor.json")])
    assert result.exit_code == 0, result.output
    body = json.loads((out / "monitor.json").read_text())
    assert {"unseen_inputs", "blind_spot"} <= {f["kind"] for f in body["findings"]}
    assert body["capabilities"]["unseen_inputs"]


@pytest.mark.slow
def _serve_traffic(saved: Path, tmp_path: Path, *, with_ood: bool) -> tuple[str, dict[str, bool]]:
    """Digits traffic with 100 unseen inputs through a Guard of the saved policy into a
    SQLite store recording features; the store's URL and which task ids were unseen."""
    data, pixels, is_unseen, ood = _traffic(n_unseen=100)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with store.open(url) as events:
        guard = Guard(
            _svm(data),
            artifacts.load(saved / "calibrator"),
            artifacts.load(saved / "policy"),
            ood=ood if with_ood else None,
            store=events,
            features=np.asarray,
            batch_features=True,
        )
        decisions = guard.decide_batch(list(pixels))
        guard.close()
    return url, {str(d.task_id): bool(u) for d, u in zip(decisions, is_unseen, strict=True)}


def test_a_saved_demo_policy_finds_the_unseen_digits_a_guard_served(
    saved: Path, tmp_path: Path
) -> None:
    reference = load_reference(saved)
    assert reference.features is not None
    assert reference.features.shape[1] == 64
    assert reference.neighbour_features is not None
    assert reference.neighbour_features.shape[0] > 0
    assert reference.feature_metric == "euclidean"
    assert "pixel" in str(reference.feature_source)

    url, unseen = _serve_traffic(saved, tmp_path, with_ood=True)
    _finds_the_unseen_digits(url, saved, unseen, tmp_path)

    # A policy saved before references held features: the monitor runs, gaps says why not.
    old = tmp_path / "old"
    shutil.copytree(saved, old)
    shutil.rmtree(old / "reference")
    bare = Reference(confidence=reference.confidence, predicted=reference.predicted)
    artifacts.save(bare, old / "reference")
    window = ["--store", url, "--policy", str(old), "--window", str(len(unseen))]
    result = runner.invoke(app, ["gaps", *window])
    assert result.exit_code == 2
    assert "has no input features" in result.output
    result = runner.invoke(app, ["monitor", *window])
    assert result.exit_code == 0, result.output
    assert "no input features" in result.stderr


@pytest.mark.slow
def test_failwise_serve_with_features_writes_a_store_gaps_can_read(
    saved: Path, tmp_path: Path
) -> None:
    _, pixels, is_unseen, ood = _traffic(n_unseen=100)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    model = f"{__name__}:DIGITS_MODEL"
    server = serve(url, saved, workers=1, args=["--model", model, "--features", "numpy:asarray"])
    try:
        items = [
            {"input": row.tolist(), "ood_score": float(score)}
            for row, score in zip(pixels, ood.score(pixels), strict=True)
        ]
        with server.client("service") as client:
            response = client.post("/v1/decisions:batch", json={"items": items})
        assert response.status_code == 200, response.text
    finally:
        server.stop()
    decisions = response.json()["decisions"]
    unseen = {d["task_id"]: bool(u) for d, u in zip(decisions, is_unseen, strict=True)}
    _finds_the_unseen_digits(url, saved, unseen, tmp_path)


def _predictions_with_features(folder: Path) -> tuple[Path, Path]:
    """The demo's SVM scores as a predictions CSV (train, val and test rows) and its
    inputs' pixels as a features file, one row per predictions row."""
    data = _demo_data()
    model = _svm(data)
    path, rows = folder / "predictions.csv", []
    with path.open("w", encoding="utf-8") as handle:
        classes = [str(c) for c in range(data.train.y.max() + 1)]
        handle.write(",".join(["label", "split", *(f"logit_{c}" for c in classes)]) + "\n")
        for split, part in (("train", data.train), ("val", data.val), ("test", data.test)):
            for label, logits in zip(part.y, model.decision_function(part.X), strict=True):
                name = "oos" if label < 0 else str(label)
                handle.write(",".join([name, split, *(f"{v:.6f}" for v in logits)]) + "\n")
            rows.append(part.X)
    features = folder / "features.npy"
    np.save(features, np.concatenate(rows).astype(np.float32))
    return path, features


@pytest.mark.slow
def test_evaluate_with_a_features_file_saves_a_reference_gaps_can_use(tmp_path: Path) -> None:
    predictions, features = _predictions_with_features(tmp_path)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "-q",
            "--predictions",
            str(predictions),
            "--features",
            str(features),
            "--feature-metric",
            "euclidean",
            "--feature-source",
            "the 64 pixel intensities",
            "--save-policy",
            str(tmp_path / "fitted"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "features of" in result.output
    saved = tmp_path / "fitted" / "predictions"
    reference = load_reference(saved)
    data = _demo_data()
    assert reference.features is not None
    assert reference.features.shape == (data.val.y.size, 64)
    assert reference.neighbour_features is not None
    assert 0 < reference.neighbour_features.shape[0] <= data.train.y.size
    assert (reference.feature_metric, reference.feature_source) == (
        "euclidean",
        "the 64 pixel intensities",
    )

    url, unseen = _serve_traffic(saved, tmp_path, with_ood=False)
    _finds_the_unseen_digits(url, saved, unseen, tmp_path)
