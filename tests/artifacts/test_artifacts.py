"""Versioned artefacts: exact round trips, stable content hashes, tamper detection."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from failwise import NotFittedError, Policy, TemperatureScaling
from failwise.artifacts import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    ArtifactError,
    artifact_hash,
    info,
    load,
    policy_from_state,
    policy_to_state,
    save,
)
from failwise.calibration import (
    BetaCalibration,
    CorrectnessCalibration,
    HistogramBinning,
    IsotonicCalibration,
    PlattScaling,
    VectorScaling,
)
from failwise.exceptions import InputError
from failwise.policy import RiskThreshold

# --------------------------------------------------------------------------- helpers


def assert_same_value(a: Any, b: Any, where: str) -> None:
    """Deep equality of fitted state (arrays, floats with NaN and inf, nested objects)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float):
        assert isinstance(b, float), where
        assert a == b or (np.isnan(a) and np.isnan(b)), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_value(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_value(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        assert type(a) is type(b), where
        assert_same_value(
            {k: v for k, v in vars(a).items() if k != "_p_values"},
            {k: v for k, v in vars(b).items() if k != "_p_values"},
            where,
        )
    else:
        assert a == b, where


def decide_all(policy: Policy, data: Any, X: np.ndarray) -> Any:
    ood = data.ood(X) if np.isfinite(policy.ood_threshold_) else None
    fallback = data.fallback_labels(X) if policy.fallback_accuracy_ is not None else None
    return policy.decide(data.proba(X), ood_score=ood, fallback=fallback)


# --------------------------------------------------------------------------- policies


def test_loaded_policy_decides_exactly_as_the_saved_one(
    data: Any, policies: dict[str, Policy], policy_name: str, tmp_path: Path
) -> None:
    policy = policies[policy_name]
    artifact = save(policy, tmp_path / "policy")
    loaded = load(tmp_path / "policy")
    X = np.concatenate([data.X_val, data.X_test])
    want, got = decide_all(policy, data, X), decide_all(loaded, data, X)
    for column in (
        "action_codes",
        "label",
        "predicted",
        "confidence",
        "band_codes",
        "reason_codes",
    ):
        np.testing.assert_array_equal(getattr(got, column), getattr(want, column), err_msg=column)
    np.testing.assert_array_equal(got.set_rows, want.set_rows)
    np.testing.assert_array_equal(got.set_masks, want.set_masks)
    assert [got.reason(i) for i in range(len(got))] == [want.reason(i) for i in range(len(want))]
    assert artifact.kind == "policy"
    assert artifact.version == artifact_hash(policy) == artifact_hash(loaded)


def test_policies_with_ood_fallback_trust_and_capacity_floor_survive(
    data: Any, policies: dict[str, Policy], tmp_path: Path
) -> None:
    policy = policies["cost_aps_ood_fallback_capacity"]
    assert np.isfinite(policy.ood_threshold_)
    assert policy.fallback_trusted_.any()
    assert not policy.fallback_trusted_.all()
    assert np.isfinite(policy.abstain_below_)
    save(policy, tmp_path / "p")
    loaded = load(tmp_path / "p")
    decisions = decide_all(loaded, data, data.X_test)
    assert all(decisions.counts()[action] > 0 for action in decisions.counts())
    assert_same_value(policy, loaded, "policy")
    assert loaded.rungs_[2].sets is loaded.prediction_sets_


def test_every_fitted_attribute_is_restored(
    policies: dict[str, Policy], policy_name: str, tmp_path: Path
) -> None:
    policy = policies[policy_name]
    save(policy, tmp_path / "p")
    loaded = load(tmp_path / "p")
    assert sorted(vars(loaded)) == sorted(vars(policy))
    assert_same_value(policy, loaded, "policy")
    if policy.risk_control_ is not None:
        np.testing.assert_array_equal(
            loaded.risk_control_.p_values_, policy.risk_control_.p_values_
        )


def test_state_round_trip_without_files(policies: dict[str, Policy]) -> None:
    policy = policies["risk_ood_fallback_capacity"]
    state = policy_to_state(policy)
    assert state["class"] == "Policy"
    assert state["fitted"]["ood_screen_"]["record"] == "OODThreshold"
    assert [r["rung"] for r in state["fitted"]["rungs_"]] == [
        "OutOfScopeRung",
        "AnswerRung",
        "ClarifyRung",
        "FallbackRung",
        "EscalateRung",
    ]
    assert_same_value(policy, policy_from_state(state), "policy")


# --------------------------------------------------------------------------- calibrators


def fitted_calibrators(data: Any) -> list[Any]:
    in_scope = data.y_val >= 0
    logits, y = data.logits(data.X_val[in_scope]), data.y_val[in_scope]
    proba = data.proba(data.X_val[in_scope])
    binary = (y == 3).astype(int)
    correct = (proba.argmax(axis=1) == y).astype(int)
    return [
        data.calibrator,
        VectorScaling().fit(logits, y),
        IsotonicCalibration().fit(proba, y),
        HistogramBinning(n_bins=10).fit(proba, y),
        PlattScaling().fit(logits[:, 3], binary),
        BetaCalibration().fit(proba[:, 3], binary),
        CorrectnessCalibration().fit(proba.max(axis=1), correct),
    ]


def test_calibrators_round_trip_exactly(data: Any, tmp_path: Path) -> None:
    in_scope = data.y_val >= 0
    logits = data.logits(data.X_test)
    proba = data.proba(data.X_test)
    inputs = {
        "TemperatureScaling": logits,
        "VectorScaling": logits,
        "IsotonicCalibration": proba,
        "HistogramBinning": proba,
        "PlattScaling": logits[:, 3],
        "BetaCalibration": proba[:, 3],
        "CorrectnessCalibration": proba.max(axis=1),
    }
    assert in_scope.any()
    for calibrator in fitted_calibrators(data):
        name = type(calibrator).__name__
        artifact = save(calibrator, tmp_path / name)
        loaded = load(tmp_path / name)
        assert type(loaded) is type(calibrator)
        assert artifact.kind == "calibrator"
        assert artifact.class_name == name
        assert artifact.version == artifact_hash(loaded)
        np.testing.assert_array_equal(
            loaded.predict_proba(inputs[name]), calibrator.predict_proba(inputs[name]), err_msg=name
        )


# --------------------------------------------------------------------------- hashes


def test_hash_is_stable_and_names_the_content(policies: dict[str, Policy], tmp_path: Path) -> None:
    policy = policies["risk"]
    before = artifact_hash(policy)
    if policy.risk_control_ is not None:
        _ = policy.risk_control_.p_values_  # filling a cache changes nothing
    assert artifact_hash(policy) == before
    first = save(policy, tmp_path / "a")
    second = save(load(tmp_path / "a"), tmp_path / "b")
    assert first.version == second.version == before
    assert len(before) == 64
    assert int(before, 16) >= 0
    assert info(tmp_path / "b").version == before
    assert info(tmp_path / "b").short_version == before[:12]
    changed = policy_from_state(policy_to_state(policy))
    changed.answer_threshold_ = float(np.nextafter(policy.answer_threshold_, 2))
    assert artifact_hash(changed) != before
    other = policies["capacity"]
    assert artifact_hash(other) != before


def test_manifest_says_what_the_artefact_holds(policies: dict[str, Policy], tmp_path: Path) -> None:
    from failwise import __version__

    save(policies["risk_ood_fallback_capacity"], tmp_path / "p")
    manifest = json.loads((tmp_path / "p" / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["format"] == "failwise-artifact"
    assert manifest["format_version"] == 1
    assert manifest["kind"] == "policy"
    assert manifest["class"] == "Policy"
    assert manifest["failwise_version"] == __version__
    assert manifest["params"]["target_risk"] == 0.05
    assert manifest["fitted"]["answer_threshold_"] > 0.5
    assert manifest["fitted"]["fallback_trusted_"] == {"$array": "fitted.fallback_trusted_"}
    assert manifest["arrays"]["fitted.fallback_trusted_"]["dtype"] == "|b1"
    assert manifest["created_at"].endswith("+00:00")
    with np.load(tmp_path / "p" / ARRAYS_FILE, allow_pickle=False) as archive:
        assert set(archive.files) == set(manifest["arrays"])


# --------------------------------------------------------------------------- tampering


@pytest.fixture
def saved(policies: dict[str, Policy], tmp_path: Path) -> Path:
    path = tmp_path / "policy"
    save(policies["risk_ood_fallback_capacity"], path)
    return path


def edit_manifest(path: Path, change: Any) -> None:
    manifest_path = path / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    change(manifest)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


def test_edited_threshold_is_detected(saved: Path) -> None:
    edit_manifest(saved, lambda m: m["fitted"].__setitem__("answer_threshold_", 0.5))
    with pytest.raises(ArtifactError, match=r"manifest\.json: the content hashes to .* modified"):
        load(saved)


def test_edited_array_bytes_are_detected(saved: Path) -> None:
    arrays = dict(np.load(saved / ARRAYS_FILE, allow_pickle=False))
    arrays["fitted.fallback_trusted_"] = ~arrays["fitted.fallback_trusted_"]
    np.savez(saved / ARRAYS_FILE, **arrays)
    with pytest.raises(ArtifactError, match=r"arrays\.npz: array 'fitted\.fallback_trusted_' does"):
        load(saved)


def test_array_edited_together_with_its_declared_digest_is_still_detected(saved: Path) -> None:
    import hashlib

    arrays = dict(np.load(saved / ARRAYS_FILE, allow_pickle=False))
    flipped = ~arrays["fitted.fallback_trusted_"]
    arrays["fitted.fallback_trusted_"] = flipped
    np.savez(saved / ARRAYS_FILE, **arrays)
    digest = hashlib.sha256(flipped.tobytes()).hexdigest()
    edit_manifest(
        saved, lambda m: m["arrays"]["fitted.fallback_trusted_"].__setitem__("sha256", digest)
    )
    with pytest.raises(ArtifactError, match="the artefact was modified after it was saved"):
        load(saved)


def test_truncated_array_file_is_reported(saved: Path) -> None:
    data = (saved / ARRAYS_FILE).read_bytes()
    (saved / ARRAYS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"arrays\.npz cannot be read as a NumPy archive"):
        load(saved)


def test_pickled_objects_are_never_loaded(saved: Path) -> None:
    arrays = dict(np.load(saved / ARRAYS_FILE, allow_pickle=False))
    arrays["fitted.fallback_trusted_"] = np.array([{"evil": 1}], dtype=object)
    with open(saved / ARRAYS_FILE, "wb") as handle:
        np.savez(handle, allow_pickle=True, **arrays)
    with pytest.raises(ArtifactError, match="without pickle"):
        load(saved)


def test_missing_and_extra_arrays_are_reported(saved: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    arrays = dict(np.load(saved / ARRAYS_FILE, allow_pickle=False))
    arrays.pop("fitted.fallback_trusted_")
    np.savez(saved / ARRAYS_FILE, **arrays)
    with pytest.raises(ArtifactError, match=r"lacks array 'fitted.fallback_trusted_'"):
        load(saved)
    arrays = dict(np.load(copy / ARRAYS_FILE, allow_pickle=False))
    arrays["sneaky"] = np.zeros(3)
    np.savez(copy / ARRAYS_FILE, **arrays)
    with pytest.raises(ArtifactError, match=r"holds array\(s\) \['sneaky'\] that manifest.json"):
        load(copy)


def test_broken_manifests_are_reported(saved: Path) -> None:
    manifest = saved / MANIFEST_FILE
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text[:-40], encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"manifest\.json is not valid JSON: .* line \d+"):
        load(saved)
    manifest.write_text(text, encoding="utf-8")
    edit_manifest(saved, lambda m: m.__setitem__("format_version", 99))
    with pytest.raises(ArtifactError, match="has format_version 99; this failwise reads version 1"):
        load(saved)
    edit_manifest(saved, lambda m: (m.__setitem__("format_version", 1), m.pop("content_hash")))
    with pytest.raises(ArtifactError, match=r"lacks the field\(s\) \['content_hash'\]"):
        load(saved)
    manifest.write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(ArtifactError, match="is not a failwise artefact manifest"):
        load(saved)
    manifest.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ArtifactError, match="is not UTF-8 text"):
        load(saved)


def test_missing_paths_are_reported(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no artefact at .*nowhere: the path does not exist"):
        load(tmp_path / "nowhere")
    (saved / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        load(saved)
    file = tmp_path / "file.json"
    file.write_text("{}", encoding="utf-8")
    with pytest.raises(ArtifactError, match="is a file, not an artefact directory"):
        load(file)


def test_renamed_class_is_caught_by_the_content_hash(tmp_path: Path) -> None:
    calibrator_dir = tmp_path / "calibrator"
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3)) * 3
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    save(TemperatureScaling().fit(logits, y), calibrator_dir)

    def rename(manifest: dict[str, Any]) -> None:
        manifest["class"] = "os.system"

    edit_manifest(calibrator_dir, rename)
    with pytest.raises(ArtifactError, match="content hashes to"):
        load(calibrator_dir)  # the hash covers the class name as well


# --------------------------------------------------------------------------- saving


def test_saving_refuses_what_it_cannot_hold(policies: dict[str, Policy], tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="call fit before saving it"):
        save(Policy(), tmp_path / "unfitted")
    with pytest.raises(InputError, match="cannot save a RiskThreshold: artefacts hold a fitted"):
        save(RiskThreshold(), tmp_path / "risk")  # type: ignore[arg-type]
    with pytest.raises(NotFittedError, match="TemperatureScaling is not fitted yet"):
        save(TemperatureScaling(), tmp_path / "ts")
    odd = policy_from_state(policy_to_state(policies["risk"]))
    odd.note_ = object()  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=r"cannot save `fitted.note_`: a object"):
        save(odd, tmp_path / "odd")
    assert not (tmp_path / "odd").exists()


def test_existing_artefacts_are_replaced_only_when_asked(
    policies: dict[str, Policy], tmp_path: Path
) -> None:
    path = tmp_path / "policy"
    first = save(policies["risk"], path)
    with pytest.raises(InputError, match=r"the directory exists and is not empty.*overwrite=True"):
        save(policies["capacity"], path)
    assert info(path).version == first.version
    second = save(policies["capacity"], path, overwrite=True)
    assert info(path).version == second.version != first.version
    assert sorted(p.name for p in path.iterdir()) == [ARRAYS_FILE, MANIFEST_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]
    (tmp_path / "empty").mkdir()
    save(policies["risk"], tmp_path / "empty")
    (tmp_path / "plain").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="it is a file"):
        save(policies["risk"], tmp_path / "plain")


def test_corrupt_zip_member_is_reported(saved: Path) -> None:
    with zipfile.ZipFile(saved / ARRAYS_FILE, "a") as archive:
        archive.writestr("junk.txt", "not an array")
    with pytest.raises(ArtifactError, match=r"arrays\.npz"):
        load(saved)
