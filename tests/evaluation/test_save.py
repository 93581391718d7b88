"""A saved policy's reference, end to end: `demo --save-policy`, a guard, `gaps`, `monitor`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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

runner = CliRunner(env={"COLUMNS": "80"})


def _serve_digits(folder: Path, url: str, n_unseen: int) -> dict[str, bool]:
    """Serve the demo's test digits (with ``n_unseen`` unseen ones) through a guard of the
    saved SVM policy that records the pixels as features; task id → whether unseen."""
    data = load_digits_with_unseen(seed=0, val_size=0.4, test_size=0.3)  # the demo's split
    model = make_pipeline(StandardScaler(), SVC(random_state=0)).fit(data.train.X, data.train.y)
    rng = np.random.default_rng(1)
    seen, unseen = np.flatnonzero(data.test.y >= 0), np.flatnonzero(data.test.y < 0)
    rows = rng.permutation(np.concatenate([seen, rng.choice(unseen, n_unseen, replace=False)]))
    with store.open(url) as events:
        guard = Guard(
            model,
            artifacts.load(folder / "calibrator"),
            artifacts.load(folder / "policy"),
            ood=KNNDistance(n_neighbors=5, metric="euclidean").fit(data.train.X),
            store=events,
            features=np.asarray,
            batch_features=True,
        )
        decisions = guard.decide_batch(list(data.test.X[rows]))
        guard.close()
    return {
        str(d.task_id): bool(data.test.y[row] < 0) for d, row in zip(decisions, rows, strict=True)
    }


@pytest.mark.slow
def test_a_saved_demo_policy_finds_the_unseen_digits_a_guard_served(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    result = runner.invoke(
        app, ["demo", "-q", "--save-policy", str(saved), "--report", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    folder = saved / "svm-rbf-kernel"
    reference = load_reference(folder)
    assert reference.features is not None
    assert reference.features.shape[1] == 64
    assert reference.neighbour_features is not None
    assert reference.neighbour_features.shape[0] > 0
    assert reference.feature_metric == "euclidean"
    assert "pixel" in str(reference.feature_source)

    url = f"sqlite:///{tmp_path / 'events.db'}"
    unseen = _serve_digits(folder, url, n_unseen=100)
    window = ["--store", url, "--policy", str(folder), "--window", str(len(unseen))]
    result = runner.invoke(app, ["gaps", *window, "--json", str(tmp_path / "gaps.json")])
    assert result.exit_code == 0, result.output
    spots = json.loads((tmp_path / "gaps.json").read_text())["blind_spots"]
    assert spots, result.output
    members = [unseen[e["task_id"]] for spot in spots for e in spot["examples"]]
    assert np.mean(members) >= 0.75  # the blind spots are the digits nobody evaluated
    result = runner.invoke(app, ["monitor", *window, "--json", str(tmp_path / "monitor.json")])
    assert result.exit_code == 0, result.output
    body = json.loads((tmp_path / "monitor.json").read_text())
    kinds = {f["kind"] for f in body["findings"]}
    assert {"unseen_inputs", "blind_spot"} <= kinds
    assert body["capabilities"]["unseen_inputs"]

    # A policy saved before references held features: the monitor runs, gaps says why not.
    old = tmp_path / "old"
    shutil.copytree(folder, old)
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
