"""Input features given with a predictions file: a .npy / .parquet file or feature_ columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from failwise.cli import app
from failwise.evaluation import evaluate_file, read_features, read_predictions
from failwise.exceptions import InputError
from failwise.policy import Policy

runner = CliRunner(env={"COLUMNS": "80"})
POLICY = Policy(target_risk=0.1)


def _predictions(path: Path, rng: np.random.Generator, n: int = 240, *, features: int = 0) -> None:
    """Three classes, logits with signal; rows split train / val / test in thirds."""
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 3.0 * np.eye(3)[y]
    header = ["label", "split", "logit_a", "logit_b", "logit_c"]
    header += [f"feature_{j}" for j in range(features)]
    lines = [",".join(header)]
    for i in range(n):
        split = ("train", "val", "test")[3 * i // n]
        values = [
            *(f"{v:.5f}" for v in logits[i]),
            *(f"{v:.5f}" for v in rng.normal(size=features)),
        ]
        lines.append(",".join(["abc"[y[i]], split, *values]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_features_file_gives_the_reference_and_the_training_rows_neighbours(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    _predictions(tmp_path / "p.csv", rng)
    np.save(tmp_path / "f.npy", rng.normal(size=(240, 6)).astype(np.float32))
    result, note = evaluate_file(
        tmp_path / "p.csv", features=tmp_path / "f.npy", n_bootstrap=20, policy=POLICY
    )
    reference = result.models[0].reference
    assert reference is not None
    assert reference.features is not None
    assert reference.features.shape == (80, 6)
    assert reference.features.dtype == np.float16
    assert reference.neighbour_features is not None
    assert reference.neighbour_features.shape == (80, 6)
    assert "features of 80 train rows" in note
    assert "f.npy" in str(reference.feature_source)


def test_feature_columns_are_read_in_header_order_and_projected_on_request(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    _predictions(tmp_path / "p.csv", rng, features=5)
    (model,) = read_predictions(tmp_path / "p.csv")
    assert model.features is not None
    assert model.features.shape == (240, 5)
    result, _ = evaluate_file(tmp_path / "p.csv", feature_dims=3, n_bootstrap=20, policy=POLICY)
    reference = result.models[0].reference
    assert reference is not None
    assert reference.features is not None
    assert reference.features.shape == (80, 3)
    assert "random_projection(dims=3)" in str(reference.feature_source)


def test_without_features_train_rows_are_named_as_unused(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    _predictions(tmp_path / "p.csv", rng)
    result, note = evaluate_file(tmp_path / "p.csv", n_bootstrap=20, policy=POLICY)
    assert "80 train rows are not used" in note
    reference = result.models[0].reference
    assert reference is not None
    assert reference.features is None


def test_a_parquet_features_file_is_read(tmp_path: Path, rng: np.random.Generator) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    values = rng.normal(size=(4, 2))
    pq.write_table(pa.table({"x": values[:, 0], "y": values[:, 1]}), tmp_path / "f.parquet")
    np.testing.assert_allclose(read_features(tmp_path / "f.parquet", 4), values)
    pq.write_table(pa.table({"x": values[:, 0], "name": list("abcd")}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"columns \['name'\] are not numeric"):
        read_features(tmp_path / "t.parquet", 4)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((3, 2)), "3 rows of features for 4 predictions rows"),
        (np.ones(4), r"2-D array .* got shape \(4,\)"),
        (np.array([["a"], ["b"], ["c"], ["d"]]), "must be numeric; got dtype <U1"),
        (np.array([[1.0], [np.nan], [1.0], [np.inf]]), r"row 2, feature 1 is nan \(2 values"),
    ],
)
def test_a_bad_features_file_is_named_with_what_was_expected(
    tmp_path: Path, array: np.ndarray, message: str
) -> None:
    np.save(tmp_path / "f.npy", array)
    with pytest.raises(InputError, match=message):
        read_features(tmp_path / "f.npy", 4)


def test_features_files_of_other_kinds_or_missing_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"use \.npy .* feature_<i> columns"):
        read_features(tmp_path / "f.csv", 1)
    with pytest.raises(InputError, match="does not exist"):
        read_features(tmp_path / "none.npy", 1)
    (tmp_path / "bad.npy").write_text("not numpy", encoding="utf-8")
    with pytest.raises(InputError, match=r"Could not read bad\.npy"):
        read_features(tmp_path / "bad.npy", 1)


def test_features_given_twice_or_compared_unknowingly_are_refused(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    _predictions(tmp_path / "p.csv", rng, features=2)
    np.save(tmp_path / "f.npy", np.ones((240, 2)))
    with pytest.raises(InputError, match="give the features one way only"):
        read_predictions(tmp_path / "p.csv", features=tmp_path / "f.npy")
    with pytest.raises(InputError, match="'cosine' or 'euclidean'; got 'manhattan'"):
        evaluate_file(tmp_path / "p.csv", feature_metric="manhattan")


def test_evaluate_takes_features_on_the_command_line(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    _predictions(tmp_path / "p.csv", rng)
    np.save(tmp_path / "f.npy", rng.normal(size=(240, 4)))
    base = ["evaluate", "-q", "--predictions", str(tmp_path / "p.csv"), "--target-risk", "0.1"]
    result = runner.invoke(
        app, [*base, "--features", str(tmp_path / "f.npy"), "--save-policy", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert "features of 80 inputs (4 columns, float16) and 80 neighbour rows" in shown
    result = runner.invoke(app, [*base, "--features", str(tmp_path / "missing.npy")])
    assert result.exit_code == 2
    assert "--features" in result.output
    assert "does not exist" in result.output
    result = runner.invoke(
        app, [*base, "--features", str(tmp_path / "f.npy"), "--feature-dims", "0"]
    )
    assert result.exit_code == 2
    assert "--feature-dims must be a whole number >= 1" in result.output
    np.save(tmp_path / "short.npy", np.ones((10, 4)))
    result = runner.invoke(app, [*base, "--features", str(tmp_path / "short.npy")])
    assert result.exit_code == 2
    assert "10 rows of features for 240 predictions rows" in " ".join(result.output.split())
