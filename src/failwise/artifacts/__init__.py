"""Versioned artefacts: fitted policies and calibrators saved without pickle.

:func:`save` writes a fitted :class:`~failwise.Policy` or calibrator as a directory with a
JSON manifest (``manifest.json``) and NumPy arrays (``arrays.npz``, read back with
``allow_pickle=False``); :func:`load` reads it back and verifies it; the content hash
(:attr:`Artifact.version`, :func:`artifact_hash`) names the fitted state, is the same
before saving and after loading, and is what every :class:`~failwise.Decision` records
as ``policy_version``. See :mod:`failwise.artifacts._format` for the layout.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from failwise import Policy
>>> from failwise.artifacts import artifact_hash, load, save
>>> rng = np.random.default_rng(0)
>>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
>>> y = np.array([rng.choice(3, p=p) for p in proba])
>>> policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
>>> folder = tempfile.mkdtemp()
>>> artifact = save(policy, f"{folder}/policy-v1")
>>> artifact.kind, artifact.version == artifact_hash(policy)
('policy', True)
>>> again = load(f"{folder}/policy-v1")
>>> artifact_hash(again) == artifact.version
True
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from failwise.artifacts._calibrator_state import calibrator_from_state, calibrator_to_state
from failwise.artifacts._format import (
    ARRAYS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Artifact,
    ArtifactError,
    content_hash,
    read_artifact,
    write_artifact,
)
from failwise.artifacts._policy_state import policy_from_state, policy_to_state
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError
from failwise.policy import Policy

if TYPE_CHECKING:
    from failwise.monitor import Reference

__all__ = [
    "ARRAYS_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "Artifact",
    "ArtifactError",
    "artifact_hash",
    "calibrator_from_state",
    "calibrator_to_state",
    "info",
    "load",
    "policy_from_state",
    "policy_to_state",
    "save",
]


def _state_of(obj: Any) -> tuple[str, str, int, Any, Any]:
    """(kind, class name, state format, params, fitted) of a saveable object."""
    if isinstance(obj, Policy):
        state = policy_to_state(obj)
        return "policy", "Policy", int(state["format"]), state["params"], state["fitted"]
    if isinstance(obj, BaseCalibrator):
        state = calibrator_to_state(obj)
        return (
            "calibrator",
            str(state["calibrator"]),
            int(state["format"]),
            state["params"],
            state["fitted"],
        )
    from failwise.monitor import REFERENCE_STATE_FORMAT, Reference

    if isinstance(obj, Reference):
        params, fitted = obj.to_state()
        return "reference", "Reference", REFERENCE_STATE_FORMAT, params, fitted
    raise InputError(
        f"cannot save a {type(obj).__name__}: artefacts hold a fitted failwise Policy, a "
        "fitted calibrator (TemperatureScaling, IsotonicCalibration, ...) or a monitor "
        "Reference."
    )


def save(
    obj: Policy | BaseCalibrator | Reference,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Artifact:
    """Save a fitted policy or calibrator as an artefact directory.

    Parameters
    ----------
    obj : Policy, BaseCalibrator or failwise.monitor.Reference
        The fitted object (or the monitor's reference data).
    path : str or path-like
        Directory to create; it must not exist or be empty, unless ``overwrite``.
    overwrite : bool, default=False
        Replace an existing artefact at ``path`` (atomically: readers see the old or the
        new one, never a mix).

    Returns
    -------
    Artifact
        Where it was written and its content hash (``version``).

    Raises
    ------
    InputError
        When ``obj`` cannot be saved (not fitted, an unsupported type or attribute) or the
        path is taken.
    """
    kind, class_name, state_format, params, fitted = _state_of(obj)
    return write_artifact(path, kind, class_name, state_format, params, fitted, overwrite=overwrite)


def load(path: str | os.PathLike[str]) -> Any:
    """Load the policy or calibrator saved at ``path``, after verifying its content hash.

    Parameters
    ----------
    path : str or path-like
        An artefact directory written by :func:`save`.

    Returns
    -------
    Policy or BaseCalibrator
        An equivalent fitted object: it decides (or calibrates) exactly as the saved one.

    Raises
    ------
    ArtifactError
        When the directory is missing, incomplete, corrupted or was modified after saving;
        the message names the file and what is wrong.
    """
    loaded = read_artifact(path)
    kind = loaded.artifact.kind
    manifest = f"{loaded.artifact.path / MANIFEST_FILE}"
    try:
        if kind == "policy":
            return policy_from_state(
                {
                    "class": loaded.artifact.class_name,
                    "format": loaded.state_format,
                    "params": loaded.params,
                    "fitted": loaded.fitted,
                }
            )
        if kind == "calibrator":
            return calibrator_from_state(
                {
                    "calibrator": loaded.artifact.class_name,
                    "format": loaded.state_format,
                    "params": loaded.params,
                    "fitted": loaded.fitted,
                }
            )
        if kind == "reference":
            from failwise.monitor import Reference

            return Reference.from_state(dict(loaded.params), dict(loaded.fitted))
    except (InputError, TypeError, KeyError) as exc:
        raise ArtifactError(f"{manifest}: the saved state cannot be rebuilt: {exc}") from None
    raise ArtifactError(
        f"{manifest}: unknown artefact kind {kind!r}; this failwise reads 'policy', "
        "'calibrator' and 'reference'."
    )


def info(path: str | os.PathLike[str]) -> Artifact:
    """Read and verify the artefact at ``path``; return its description without building it."""
    return read_artifact(path).artifact


def artifact_hash(obj: Policy | BaseCalibrator) -> str:
    """The content hash :func:`save` would record for ``obj`` (64 hexadecimal digits).

    Equal fitted states hash equally, whenever and wherever they were saved; any change to a
    parameter, a threshold or an array changes the hash.
    """
    kind, class_name, state_format, params, fitted = _state_of(obj)
    return content_hash(kind, class_name, state_format, params, fitted)
