"""The on-disk artefact format: a JSON manifest, a NumPy archive and a content hash.

An artefact is a directory holding two files:

``manifest.json``
    ``format`` ("failwise-artifact"), ``format_version`` (1), ``kind`` ("policy" or
    "calibrator"), ``class`` (the class name), ``state_format``, ``params`` (constructor
    arguments), ``fitted`` (fitted attributes: scalars inline, arrays as ``{"$array": name}``
    references), ``arrays`` (dtype, shape and sha256 of every array), ``created_at`` (UTC,
    ISO 8601), ``failwise_version`` and ``content_hash``.
``arrays.npz``
    The arrays, uncompressed, read back with ``allow_pickle=False``: no code is ever run
    while loading.

JSON cannot hold every value a fitted object has, so a few are tagged: ``{"$float":
"inf"}`` (also ``"-inf"``, ``"nan"``) and ``{"$tuple": [...]}``. Floats are written with
``repr`` and read back bit for bit.

The content hash is the sha256 of the canonical JSON (sorted keys, no spaces) of
``{"kind", "class", "state_format", "params", "fitted"}`` followed, in name order, by every
array's name, dtype, shape and little-endian bytes. It leaves out when and with which
failwise version the artefact was written, so the same fitted object always hashes the same
(:func:`artifact_hash` computes it without writing anything). It detects corruption and
accidental edits; it is not a signature.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import FailwiseError, InputError

__all__ = [
    "ARRAYS_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "Artifact",
    "ArtifactError",
    "content_hash",
    "read_artifact",
    "write_artifact",
]

FORMAT_NAME: Final = "failwise-artifact"
#: Version of the layout described above; readers refuse versions they do not know.
FORMAT_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
ARRAYS_FILE: Final = "arrays.npz"

_HASH_PREFIX: Final = b"failwise-artifact/1\n"
_ARRAY_KINDS: Final = "biuf"  # bool, signed and unsigned integers, floats: no objects
_NON_FINITE: Final = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class ArtifactError(FailwiseError):
    """An artefact on disk is missing, corrupted, modified after saving or of an unknown format."""


@dataclass(frozen=True)
class Artifact:
    """What an artefact directory holds, as read from (or written to) its manifest.

    Attributes
    ----------
    path : pathlib.Path
        The artefact directory.
    kind : {"policy", "calibrator"}
    class_name : str
        Class of the saved object, e.g. ``"Policy"`` or ``"TemperatureScaling"``.
    version : str
        The content hash (64 hexadecimal digits): what a :class:`~failwise.Decision`
        records as ``policy_version``.
    format_version : int
    failwise_version : str
        failwise version that wrote the artefact.
    created_at : str
        When it was written (UTC, ISO 8601).
    """

    path: Path
    kind: str
    class_name: str
    version: str
    format_version: int
    failwise_version: str
    created_at: str

    @property
    def short_version(self) -> str:
        """The first 12 digits of :attr:`version`, for tables and logs."""
        return self.version[:12]


# --------------------------------------------------------------------------- encoding


def _encode(value: Any, arrays: dict[str, NDArray[Any]], where: str) -> Any:
    """Turn a state tree into JSON values, moving arrays into ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isfinite(number):
            return number
        return {"$float": "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise InputError(
                f"cannot save `{where}`: an array of dtype {value.dtype}; artefacts hold only "
                "bool, integer and float arrays."
            )
        name = where
        arrays[name] = value
        return {"$array": name}
    if isinstance(value, Mapping):
        encoded: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(
                    f"cannot save `{where}`: key {key!r} is a {type(key).__name__}; artefacts "
                    "hold mappings with str keys only."
                )
            encoded[key] = _encode(item, arrays, f"{where}.{key}")
        return encoded
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, arrays, f"{where}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}.{i}") for i, v in enumerate(value)]
    raise InputError(
        f"cannot save `{where}`: a {type(value).__name__} ({value!r:.80}) is not one of the "
        "values an artefact holds (None, bool, int, float, str, list, tuple, str-keyed dict, "
        "NumPy array). Pass plain values, e.g. an int seed instead of a numpy Generator."
    )


def _decode(value: Any, arrays: Mapping[str, NDArray[Any]], file: Path) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays, file) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, payload),) = value.items()
        if tag == "$array":
            if payload not in arrays:
                raise ArtifactError(
                    f"{file}: the manifest refers to array {payload!r}, which {ARRAYS_FILE} "
                    "does not hold. The artefact is incomplete; save the object again."
                )
            return arrays[payload]
        if tag == "$float":
            if payload not in _NON_FINITE:
                raise ArtifactError(
                    f"{file}: unknown float tag {payload!r}; expected one of {sorted(_NON_FINITE)}."
                )
            return _NON_FINITE[payload]
        if tag == "$tuple":
            if not isinstance(payload, list):
                raise ArtifactError(f"{file}: a $tuple tag must hold a list; got {payload!r:.60}.")
            return tuple(_decode(v, arrays, file) for v in payload)
    return {key: _decode(item, arrays, file) for key, item in value.items()}


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _little_endian(array: NDArray[Any]) -> NDArray[Any]:
    contiguous = np.ascontiguousarray(array)
    if contiguous.dtype.byteorder == ">" or (
        contiguous.dtype.byteorder == "=" and not np.little_endian
    ):
        contiguous = contiguous.astype(contiguous.dtype.newbyteorder("<"))
    return contiguous


def _array_digest(array: NDArray[Any]) -> str:
    return hashlib.sha256(_little_endian(array).tobytes()).hexdigest()


def _hash_encoded(content: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> str:
    digest = hashlib.sha256(_HASH_PREFIX)
    digest.update(_canonical_json(content))
    for name in sorted(arrays):
        array = _little_endian(arrays[name])
        header = f"\n{name}\0{array.dtype.str}\0{list(array.shape)}\0{array.nbytes}\n"
        digest.update(header.encode("utf-8"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def _content(
    kind: str, class_name: str, state_format: int, params: Any, fitted: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "class": class_name,
        "state_format": state_format,
        "params": params,
        "fitted": fitted,
    }


def _encode_state(
    kind: str, class_name: str, state_format: int, params: Any, fitted: Any
) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    arrays: dict[str, NDArray[Any]] = {}
    encoded_params = _encode(params, arrays, "params")
    encoded_fitted = _encode(fitted, arrays, "fitted")
    return _content(kind, class_name, state_format, encoded_params, encoded_fitted), arrays


def content_hash(kind: str, class_name: str, state_format: int, params: Any, fitted: Any) -> str:
    """The content hash of a state, exactly as :func:`write_artifact` would record it."""
    content, arrays = _encode_state(kind, class_name, state_format, params, fitted)
    return _hash_encoded(content, arrays)


# --------------------------------------------------------------------------- writing


def _failwise_version() -> str:
    from failwise import __version__

    return __version__


def write_artifact(
    path: str | os.PathLike[str],
    kind: str,
    class_name: str,
    state_format: int,
    params: Any,
    fitted: Any,
    *,
    overwrite: bool = False,
) -> Artifact:
    """Write a state as an artefact directory at ``path``; return what was written.

    The directory is written beside ``path`` under a temporary name and renamed into place,
    so a reader never sees half an artefact.
    """
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise InputError(
                f"cannot save to {target}: it is a file. An artefact is a directory; pass a "
                "new directory path."
            )
        if any(target.iterdir()) and not overwrite:
            raise InputError(
                f"cannot save to {target}: the directory exists and is not empty. Pass "
                "`overwrite=True` to replace it, or choose a new path (e.g. one per version)."
            )
    content, arrays = _encode_state(kind, class_name, state_format, params, fitted)
    version = _hash_encoded(content, arrays)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **content,
        "arrays": {
            name: {
                "dtype": _little_endian(array).dtype.str,
                "shape": list(array.shape),
                "sha256": _array_digest(array),
            }
            for name, array in sorted(arrays.items())
        },
        "created_at": created_at,
        "failwise_version": _failwise_version(),
        "content_hash": version,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        _write_synced(staging / MANIFEST_FILE, (text + "\n").encode("utf-8"))
        with open(staging / ARRAYS_FILE, "wb") as handle:
            savez: Any = np.savez  # NumPy's stub types **arrays as bool
            savez(handle, allow_pickle=False, **{n: _little_endian(a) for n, a in arrays.items()})
            handle.flush()
            os.fsync(handle.fileno())
        _replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Artifact(
        path=target,
        kind=kind,
        class_name=class_name,
        version=version,
        format_version=FORMAT_VERSION,
        failwise_version=manifest["failwise_version"],
        created_at=created_at,
    )


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _replace_directory(staging: Path, target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        retired.rmdir()
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        if target.exists():
            target.rmdir()
        os.replace(staging, target)


# --------------------------------------------------------------------------- reading


def _read_manifest(directory: Path) -> dict[str, Any]:
    manifest_path = directory / MANIFEST_FILE
    if not directory.exists():
        raise ArtifactError(
            f"no artefact at {directory}: the path does not exist. Pass the directory that "
            "`failwise.artifacts.save` wrote."
        )
    if not directory.is_dir():
        raise ArtifactError(
            f"{directory} is a file, not an artefact directory. Pass the directory that "
            f"`failwise.artifacts.save` wrote (it holds {MANIFEST_FILE} and {ARRAYS_FILE})."
        )
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(
            f"{manifest_path} is missing: {directory} is not a failwise artefact (or was only "
            "partly copied)."
        ) from None
    except UnicodeDecodeError as exc:
        raise ArtifactError(
            f"{manifest_path} is not UTF-8 text ({exc}); it is corrupted."
        ) from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{manifest_path} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}. The file is corrupted; save the object again."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ArtifactError(
            f"{manifest_path} is not a failwise artefact manifest (its `format` is not "
            f"{FORMAT_NAME!r})."
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path} has format_version {version!r}; this failwise reads version "
            f"{FORMAT_VERSION}. Load it with the failwise version that wrote it "
            f"({manifest.get('failwise_version', 'unknown')}) and save it again."
        )
    required = (
        "kind",
        "class",
        "state_format",
        "params",
        "fitted",
        "arrays",
        "content_hash",
        "created_at",
        "failwise_version",
    )
    missing = [key for key in required if key not in manifest]
    if missing:
        raise ArtifactError(
            f"{manifest_path} lacks the field(s) {missing}; the file was modified or cut short."
        )
    if not isinstance(manifest["arrays"], dict):
        raise ArtifactError(f"{manifest_path}: `arrays` must be a JSON object.")
    return manifest


def _read_arrays(directory: Path, declared: Mapping[str, Any]) -> dict[str, NDArray[Any]]:
    arrays_path = directory / ARRAYS_FILE
    if not arrays_path.is_file():
        raise ArtifactError(
            f"{arrays_path} is missing; the artefact is incomplete. Copy the whole directory."
        )
    arrays: dict[str, NDArray[Any]] = {}
    try:
        # Opened here so that the file is closed even when NumPy fails to read it.
        with open(arrays_path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            names = set(archive.files)
            for name in declared:
                if name not in names:
                    raise ArtifactError(
                        f"{arrays_path} lacks array {name!r} that {MANIFEST_FILE} declares; the "
                        "artefact is incomplete or was modified."
                    )
                arrays[name] = archive[name]
            extra = sorted(names - set(declared))
    except ArtifactError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ArtifactError(
            f"{arrays_path} cannot be read as a NumPy archive without pickle: "
            f"{type(exc).__name__}: {exc}. The file is corrupted; save the object again."
        ) from None
    if extra:
        raise ArtifactError(
            f"{arrays_path} holds array(s) {extra} that {MANIFEST_FILE} does not declare; the "
            "artefact was modified after it was saved."
        )
    for name, meta in declared.items():
        array = arrays[name]
        expected = meta if isinstance(meta, dict) else {}
        if array.dtype.kind not in _ARRAY_KINDS:
            raise ArtifactError(
                f"{arrays_path}: array {name!r} has unsupported dtype {array.dtype}."
            )
        if (
            expected.get("dtype") != array.dtype.str
            or expected.get("shape") != list(array.shape)
            or expected.get("sha256") != _array_digest(array)
        ):
            raise ArtifactError(
                f"{arrays_path}: array {name!r} does not match {MANIFEST_FILE} (declared dtype "
                f"{expected.get('dtype')}, shape {expected.get('shape')}; found "
                f"{array.dtype.str}, {list(array.shape)}, or different bytes). The file was "
                "modified or corrupted after saving; save the object again."
            )
    return arrays


@dataclass(frozen=True)
class _LoadedState:
    artifact: Artifact
    state_format: int
    params: Any
    fitted: Any


def read_artifact(path: str | os.PathLike[str]) -> _LoadedState:
    """Read and verify an artefact directory; return its decoded state."""
    directory = Path(path)
    manifest = _read_manifest(directory)
    manifest_path = directory / MANIFEST_FILE
    arrays = _read_arrays(directory, manifest["arrays"])
    content = _content(
        manifest["kind"],
        manifest["class"],
        manifest["state_format"],
        manifest["params"],
        manifest["fitted"],
    )
    try:
        recomputed = _hash_encoded(content, arrays)
    except ValueError as exc:  # a non-finite float written as a bare number
        raise ArtifactError(f"{manifest_path}: {exc}; the file was modified.") from None
    if recomputed != manifest["content_hash"]:
        raise ArtifactError(
            f"{manifest_path}: the content hashes to {recomputed[:12]}… but the manifest "
            f"records {str(manifest['content_hash'])[:12]}…: the artefact was modified after "
            "it was saved (or is corrupted). Save the object again from a trusted copy."
        )
    artifact = Artifact(
        path=directory,
        kind=str(manifest["kind"]),
        class_name=str(manifest["class"]),
        version=recomputed,
        format_version=FORMAT_VERSION,
        failwise_version=str(manifest["failwise_version"]),
        created_at=str(manifest["created_at"]),
    )
    return _LoadedState(
        artifact=artifact,
        state_format=int(manifest["state_format"]),
        params=_decode(manifest["params"], arrays, manifest_path),
        fitted=_decode(manifest["fitted"], arrays, manifest_path),
    )
