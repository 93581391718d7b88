"""The monitor's reference: built from a fitted policy, saved beside it, loaded back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from failwise import artifacts
from failwise.exceptions import InputError
from failwise.monitor import Reference, load_reference, random_projection
from tests.monitor.conftest import System


def test_a_reference_from_a_policy_keeps_what_the_monitor_compares(system: System) -> None:
    reference = system.reference
    assert reference.n == system.y.size
    assert set(reference.action.tolist()) <= {"answer", "clarify", "escalate", "abstain"}  # type: ignore[union-attr]
    np.testing.assert_array_equal(reference.correct, system.proba.argmax(axis=1) == system.y)
    assert reference.features is not None
    assert reference.features.dtype == np.float16
    assert all(reference.capabilities()[k] for k in ("input_drift", "unseen_inputs"))


def test_the_reference_survives_an_artefact_bit_for_bit(system: System, tmp_path: Path) -> None:
    saved = artifacts.save(system.reference, tmp_path / "model" / "reference")
    assert saved.kind == "reference"
    loaded = load_reference(tmp_path / "model" / "policy")  # found beside the policy
    assert loaded.version == system.reference.version
    np.testing.assert_array_equal(loaded.features, system.reference.features)
    np.testing.assert_array_equal(loaded.action, system.reference.action)
    assert load_reference(tmp_path / "model").version == loaded.version


def test_a_save_policy_folder_gives_its_only_reference_or_names_its_models(
    system: System, tmp_path: Path
) -> None:
    artifacts.save(system.reference, tmp_path / "saved" / "svm" / "reference")
    assert load_reference(tmp_path / "saved").version == system.reference.version
    artifacts.save(system.reference, tmp_path / "saved" / "logistic" / "reference")
    with pytest.raises(InputError, match=r"references of 2 models \(logistic, svm\)"):
        load_reference(tmp_path / "saved")


def test_a_reference_without_features_says_what_it_cannot_do(system: System) -> None:
    reference = Reference(confidence=system.reference.confidence, predicted=system.y)
    assert not reference.capabilities()["blind_spots"]
    assert any("no input features" in line for line in reference.limitations())
    assert reference.version != system.reference.version


def test_loading_a_reference_from_a_folder_without_one_names_where_it_looked(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match=r"No monitor reference at .* looked in .*--save-policy"):
        load_reference(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": [0.9], "predicted": [1]}, "at least two inputs"),
        ({"confidence": [0.9, 0.8], "predicted": [1]}, "one value per reference input"),
        ({"confidence": [0.9, 0.8], "predicted": [1, 0], "action": ["x", "answer"]}, "actions"),
        ({"confidence": [0.9, 0.8], "predicted": [1, 0], "features": np.ones(2)}, "shape"),
        (
            {"confidence": [0.9, 0.8], "predicted": [1, 0], "feature_metric": "manhattan"},
            "feature_metric",
        ),
    ],
)
def test_bad_reference_input_is_refused_with_what_was_expected(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        Reference(**kwargs)  # type: ignore[arg-type]


def test_the_random_projection_is_the_same_everywhere_and_keeps_distances() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 384))
    first, second = random_projection(x, 128), random_projection(x.copy(), 128)
    np.testing.assert_array_equal(first, second)
    original = np.linalg.norm(x[0] - x[1:], axis=1)
    projected = np.linalg.norm(first[0] - first[1:], axis=1)
    assert np.all(np.abs(projected / original - 1) < 0.35)
    np.testing.assert_array_equal(random_projection(x[:, :64], 128), x[:, :64].astype(np.float32))
    with pytest.raises(InputError, match="dims"):
        random_projection(x, 0)


def test_neighbour_features_are_kept_saved_and_checked(system: System, tmp_path: Path) -> None:
    plain = system.reference
    assert plain.neighbour_features is None
    assert "neighbour_features" not in plain.to_state()[1]  # older references keep their hash
    training = np.random.default_rng(0).normal(size=(50, 16))
    reference = Reference(
        confidence=plain.confidence,
        predicted=plain.predicted,
        features=plain.features,
        neighbour_features=training,
    )
    assert reference.neighbour_features is not None
    assert reference.neighbour_features.dtype == np.float16
    assert (
        reference.version
        != Reference(
            confidence=plain.confidence, predicted=plain.predicted, features=plain.features
        ).version
    )
    artifacts.save(reference, tmp_path / "reference")
    loaded = load_reference(tmp_path)
    np.testing.assert_array_equal(loaded.neighbour_features, reference.neighbour_features)
    assert loaded.version == reference.version
    with pytest.raises(InputError, match="`neighbour_features` needs `features`"):
        Reference(confidence=[0.9, 0.8], predicted=[0, 1], neighbour_features=training)
    with pytest.raises(InputError, match=r"shape \(n_neighbour, 16\)"):
        Reference(
            confidence=plain.confidence,
            predicted=plain.predicted,
            features=plain.features,
            neighbour_features=np.ones((3, 4)),
        )


def test_sparse_rows_are_projected_like_their_dense_form() -> None:
    from scipy import sparse

    rows = sparse.random(20, 3000, density=0.01, random_state=1, format="csr")
    projected = random_projection(rows, 64)
    assert projected.shape == (20, 64)
    np.testing.assert_allclose(projected, random_projection(rows.toarray(), 64), atol=1e-5)
    narrow = sparse.random(3, 10, density=0.5, random_state=2, format="csr")
    dense = narrow.toarray().astype(np.float32)
    np.testing.assert_array_equal(random_projection(narrow, 64), dense)
    bad = rows.copy()
    bad.data[0] = np.nan
    with pytest.raises(InputError, match="finite values"):
        random_projection(bad)


def test_the_feature_source_is_saved_and_needs_features(system: System, tmp_path: Path) -> None:
    plain = system.reference
    assert "feature_source" not in plain.to_state()[0]  # older references keep their hash
    described = Reference(
        confidence=plain.confidence,
        predicted=plain.predicted,
        features=plain.features,
        feature_source="16 synthetic features",
    )
    assert described.version != plain.version
    artifacts.save(described, tmp_path / "reference")
    loaded = load_reference(tmp_path)
    assert loaded.feature_source == "16 synthetic features"
    assert loaded.version == described.version
    with pytest.raises(InputError, match=r"needs features=; got .*'x' without features"):
        Reference(confidence=[0.9, 0.8], predicted=[0, 1], feature_source="x")
    with pytest.raises(InputError, match="must be a str"):
        Reference(
            confidence=plain.confidence,
            predicted=plain.predicted,
            features=plain.features,
            feature_source=3,  # type: ignore[arg-type]
        )
