"""The dataset container and the download / checksum / cache helper.

Every loader returns a :class:`ClassificationDataset`: three splits with the same
conventions as the rest of failwise (integer class ids ``0..K-1``, ``-1`` =
:data:`failwise.OUT_OF_SCOPE`). Public files are fetched once with
:func:`fetch_file`, which checks a SHA-256 checksum before anything is read and
never leaves a partial file in the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import FailwiseError, InputError

__all__ = [
    "ChecksumError",
    "ClassificationDataset",
    "DatasetSplit",
    "DownloadError",
    "fetch_file",
    "get_cache_dir",
    "sha256_of",
]

_CHUNK = 1 << 20


class DownloadError(FailwiseError, OSError):
    """A dataset file could not be downloaded (offline, blocked, or not found upstream)."""


class ChecksumError(FailwiseError, OSError):
    """A dataset file does not have the expected SHA-256 checksum."""


@dataclass(frozen=True, eq=False)
class DatasetSplit:
    """One split of a dataset: inputs and integer labels.

    Attributes
    ----------
    X : list of str or ndarray of shape (n_samples, n_features)
        Texts for text datasets, a 2-D float array otherwise.
    y : ndarray of shape (n_samples,) and dtype intp
        Class ids ``0..n_classes-1``; ``-1`` (:data:`failwise.OUT_OF_SCOPE`) marks an
        out-of-scope input.
    """

    X: list[str] | NDArray[np.float64]
    y: NDArray[np.intp]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def is_out_of_scope(self) -> NDArray[np.bool_]:
        """Boolean mask of the out-of-scope rows (label ``-1``), shape (n_samples,)."""
        return np.asarray(self.y < 0)


@dataclass(frozen=True, eq=False)
class ClassificationDataset:
    """A classification dataset with train, validation and test splits.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"clinc150-full"``.
    train, val, test : DatasetSplit
        The splits. Validation is for fitting calibrators and thresholds; test is
        only for reporting.
    classes : tuple of str
        Label names; ``classes[i]`` is the name of class id ``i``.
    description : str
        One paragraph saying what the data is and how it was split.
    source : str
        Where the data comes from (paper, URL, licence).
    metadata : dict
        Loader-specific facts, e.g. the held-out digits or the file checksum.
    """

    name: str
    train: DatasetSplit
    val: DatasetSplit
    test: DatasetSplit
    classes: tuple[str, ...]
    description: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Number of in-scope classes (out-of-scope is not a class)."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"ClassificationDataset(name={self.name!r}, n_classes={self.n_classes}, "
            f"train={len(self.train)}, val={len(self.val)}, test={len(self.test)})"
        )


def make_split(X: Sequence[str] | NDArray[Any], y: Sequence[int] | NDArray[Any]) -> DatasetSplit:
    """Build a :class:`DatasetSplit`, copying texts into a list and labels into intp."""
    labels = np.asarray(y, dtype=np.intp)
    labels.setflags(write=False)
    if isinstance(X, np.ndarray):
        array = np.array(X, dtype=np.float64)
        array.setflags(write=False)
        return DatasetSplit(array, labels)
    return DatasetSplit([str(text) for text in X], labels)


def get_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder where downloaded files are kept.

    Parameters
    ----------
    cache_dir : path, optional
        Used as given. Otherwise ``$FAILWISE_CACHE_DIR``, otherwise ``~/.cache/failwise``.

    Returns
    -------
    Path
        The folder (not created here).

    Examples
    --------
    >>> get_cache_dir("data/failwise-cache").as_posix()
    'data/failwise-cache'
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("FAILWISE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/failwise").expanduser()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str, *, what: str, fix: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the expected digest."""
    actual = sha256_of(path)
    if actual != sha256:
        raise ChecksumError(
            f"Checksum mismatch for {what} at {path}: expected sha256 {sha256}, got {actual}. "
            f"The file is corrupt, truncated or a different version. {fix}"
        )


def fetch_file(
    url: str,
    sha256: str,
    *,
    filename: str,
    subdir: str,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Return a verified local copy of ``url``, downloading it into the cache once.

    The file is streamed into a temporary file in the cache folder, its SHA-256 is
    checked, and only then is it renamed into place (atomic on POSIX and Windows),
    so an interrupted or corrupt download never leaves a file that later calls trust.
    A cached copy is verified again on every call.

    Parameters
    ----------
    url : str
        Any URL that :func:`urllib.request.urlopen` reads: ``https://``, ``http://``,
        ``file://``.
    sha256 : str
        Expected hex digest of the whole file.
    filename : str
        Name of the file in the cache.
    subdir : str
        Folder inside the cache, e.g. ``"clinc150/<commit>"``.
    cache_dir : path, optional
        See :func:`get_cache_dir`.
    download : bool, default=True
        If False and the file is not cached, raise instead of going online.
    timeout : float, default=60.0
        Seconds to wait for the server.

    Returns
    -------
    Path
        Path of the verified file in the cache.

    Raises
    ------
    DownloadError
        The file is not cached and cannot be downloaded (or ``download=False``).
    ChecksumError
        The downloaded or cached bytes do not match ``sha256``.
    """
    folder = get_cache_dir(cache_dir) / subdir
    target = folder / filename
    if target.is_file():
        verify_file(
            target,
            sha256,
            what=f"the cached {filename}",
            fix=f"Delete {target} and call again to download a fresh copy.",
        )
        return target
    if not download:
        raise DownloadError(
            f"{filename} is not in the cache ({target}) and download=False. Pass download=True "
            "to fetch it, or pass data_dir=PATH to a local copy."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"Cannot create the cache folder {folder} ({exc}). Pass cache_dir=PATH to a writable "
            "folder or set FAILWISE_CACHE_DIR."
        ) from exc
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed below, renamed or removed
        dir=folder, prefix=f".{filename}.", suffix=".part", delete=False
    )
    partial = Path(handle.name)
    digest = hashlib.sha256()
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    handle.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"could not download {filename} from {url} ({reason}); pass data_dir=PATH to a "
                "local copy of the file, or retry when the network is reachable."
            ) from exc
        handle.close()
        actual = digest.hexdigest()
        if actual != sha256:
            raise ChecksumError(
                f"Checksum mismatch for {filename} downloaded from {url}: expected sha256 "
                f"{sha256}, got {actual}. Nothing was written to the cache. The server sent "
                "different bytes (a proxy error page, a truncated transfer or a changed file); "
                "retry, or pass data_dir=PATH to a verified local copy."
            )
        os.replace(partial, target)
    finally:
        handle.close()
        partial.unlink(missing_ok=True)
    return target


def resolve_local_file(
    data_dir: str | os.PathLike[str],
    filename: str,
    sha256: str,
    *,
    subfolder: str,
) -> Path:
    """Find ``filename`` in ``data_dir`` (or ``data_dir/subfolder``) and verify it."""
    root = Path(data_dir).expanduser()
    candidates = [root / filename, root / subfolder / filename]
    for path in candidates:
        if path.is_file():
            verify_file(
                path,
                sha256,
                what=filename,
                fix="Replace it with an unmodified copy of the published file.",
            )
            return path
    if not root.is_dir():
        raise FileNotFoundError(
            f"data_dir {root} does not exist. Pass the folder that holds {filename}, or leave "
            "data_dir=None to download and cache the file."
        )
    raise FileNotFoundError(
        f"Expected file {filename} in data_dir {root} (or in {root / subfolder}); it is not "
        f"there. Pass the folder that holds {filename}, or leave data_dir=None to download it."
    )


def check_fraction(value: Any, name: str, fix: str) -> float:
    """Validate a split fraction in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise InputError(f"`{name}` must be a fraction in (0, 1); got {value!r}. {fix}")
    return float(value)
