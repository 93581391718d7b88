"""CLINC150: 150 intents plus out-of-scope queries (Larson et al., 2019)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from failwise.datasets._base import (
    ClassificationDataset,
    fetch_file,
    make_split,
    resolve_local_file,
)
from failwise.exceptions import InputError

__all__ = ["CLINC150_COMMIT", "CLINC150_FILES", "load_clinc150"]

#: Commit of github.com/clinc/oos-eval that the checksums below were taken from.
CLINC150_COMMIT = "828f8093932c8fe6ca7936c3d2e52903b1c523de"

_URL = f"https://raw.githubusercontent.com/clinc/oos-eval/{CLINC150_COMMIT}/data"

#: variant -> (file name, full SHA-256 of the published file).
CLINC150_FILES: dict[str, tuple[str, str]] = {
    "full": (
        "data_full.json",
        "36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
    ),
    "small": (
        "data_small.json",
        "050e17476e6b4fa88f8518edaf09921c8f5e3a86dc8b63615361102a20b2ac01",
    ),
    "imbalanced": (
        "data_imbalanced.json",
        "4886730b20c51eece26aa392ecae2717bfe9908680419e96255351c6148eb4cc",
    ),
    "oos_plus": (
        "data_oos_plus.json",
        "bfcca9ae515623541dc1983c94c4ed7cae9d26b42ae47d74b972e51bb6f7a21f",
    ),
}

_SOURCE = (
    "Larson et al., 'An Evaluation Dataset for Intent Classification and Out-of-Scope "
    "Prediction', EMNLP-IJCNLP 2019 (ACL Anthology D19-1131); data from "
    f"github.com/clinc/oos-eval at commit {CLINC150_COMMIT}; licence CC BY 3.0."
)
_OOS = "oos"
_KEYS = ("train", "val", "test", "oos_train", "oos_val", "oos_test")


def load_clinc150(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    variant: str = "full",
    include_oos_train: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirror: str | None = None,
) -> ClassificationDataset:
    """Load CLINC150 (the OOS-eval dataset of Larson et al., 2019).

    150 intents over 10 domains, with crowd-sourced out-of-scope queries. Class ids are
    the intent names in sorted (alphabetical) order, so ``classes[0] == "accept_reservations"``
    and ids are stable across variants and releases. Out-of-scope queries have label ``-1``
    (:data:`failwise.OUT_OF_SCOPE`).

    Splits (sizes for ``variant="full"``):

    - ``train``: the in-scope training queries (15,000; 100 per intent). With
      ``include_oos_train=True`` the 100 ``oos_train`` queries are appended, labelled ``-1``.
    - ``val``: the in-scope validation queries followed by ``oos_val`` (3,000 + 100).
    - ``test``: the in-scope test queries followed by ``oos_test`` (4,500 + 1,000).

    Parameters
    ----------
    data_dir : path, optional
        Folder holding a local copy of the published file (e.g. ``data_full.json``), or
        its parent holding ``clinc150/``. Its checksum is verified. When None, the file
        is downloaded once from the pinned commit and cached.
    variant : {"full", "small", "imbalanced", "oos_plus"}, default="full"
        Data condition of the paper's Table 2: full (100 training queries per intent),
        small (50), imbalanced (25–100) or oos_plus (250 out-of-scope training queries).
        Validation and test splits are identical across variants.
    include_oos_train : bool, default=False
        Append the out-of-scope training queries to ``train`` with label ``-1`` (for the
        paper's oos-train method, map ``-1`` to an extra class before fitting).
    cache_dir : path, optional
        Cache folder for downloads; default ``$FAILWISE_CACHE_DIR``, else ``~/.cache/failwise``.
    download : bool, default=True
        Allow going online when the file is neither local nor cached.
    mirror : str, optional
        Base URL of a mirror of the repository's ``data/`` folder (``https://``,
        ``http://`` or ``file://``); the file name is appended. The checksum is the same.

    Returns
    -------
    ClassificationDataset
        ``metadata`` holds ``variant``, ``file``, ``sha256``, ``commit``, ``split_sizes``
        (rows per key of the file), ``include_oos_train`` and ``n_oos_train``.

    Raises
    ------
    FileNotFoundError
        ``data_dir`` is given but does not hold the file.
    ChecksumError
        The local, cached or downloaded file is not the published one.
    DownloadError
        The file is not local or cached and could not be downloaded.

    Examples
    --------
    >>> data = load_clinc150("../shared/data/clinc150")  # doctest: +SKIP
    >>> data.n_classes, len(data.train), len(data.val), len(data.test)  # doctest: +SKIP
    (150, 15000, 3100, 5500)
    """
    if variant not in CLINC150_FILES:
        raise InputError(
            f"load_clinc150: unknown variant {variant!r}; expected one of "
            f"{', '.join(repr(v) for v in CLINC150_FILES)} (the paper's data conditions)."
        )
    filename, sha256 = CLINC150_FILES[variant]
    if data_dir is not None:
        path = resolve_local_file(data_dir, filename, sha256, subfolder="clinc150")
    else:
        base = (mirror if mirror is not None else _URL).rstrip("/")
        path = fetch_file(
            f"{base}/{filename}",
            sha256,
            filename=filename,
            subdir=f"clinc150/{CLINC150_COMMIT[:12]}",
            cache_dir=cache_dir,
            download=download,
        )
    return _parse(path, variant, sha256, include_oos_train=include_oos_train)


def _parse(
    path: Path, variant: str, sha256: str, *, include_oos_train: bool
) -> ClassificationDataset:
    with open(path, encoding="utf-8") as handle:
        raw: dict[str, list[list[str]]] = json.load(handle)
    missing = [key for key in _KEYS if key not in raw]
    if missing:
        raise InputError(
            f"{path} lacks the key(s) {missing}; expected the six keys {list(_KEYS)} of the "
            "OOS-eval data_*.json files."
        )
    classes = tuple(sorted({label for _, label in raw["train"]}))
    index = {name: i for i, name in enumerate(classes)}

    def pairs(*keys: str) -> tuple[list[str], list[int]]:
        texts: list[str] = []
        labels: list[int] = []
        for key in keys:
            for text, label in raw[key]:
                texts.append(text)
                labels.append(-1 if label == _OOS else index[label])
        return texts, labels

    train_keys: Sequence[str] = ("train", "oos_train") if include_oos_train else ("train",)
    train = make_split(*pairs(*train_keys))
    val = make_split(*pairs("val", "oos_val"))
    test = make_split(*pairs("test", "oos_test"))
    counts = {key: len(raw[key]) for key in _KEYS}
    description = (
        f"CLINC150 ({variant}): short English queries to a task-oriented assistant, "
        f"{len(classes)} intents over 10 domains plus out-of-scope queries (label -1). "
        f"train: {counts['train']:,} in-scope"
        + (f" + {counts['oos_train']:,} out-of-scope" if include_oos_train else "")
        + f"; val: {counts['val']:,} + {counts['oos_val']:,} out-of-scope; "
        f"test: {counts['test']:,} + {counts['oos_test']:,} out-of-scope. In-scope splits "
        "are separated by crowd worker, out-of-scope splits by task prompt."
    )
    metadata = {
        "variant": variant,
        "file": path.name,
        "sha256": sha256,
        "commit": CLINC150_COMMIT,
        "split_sizes": counts,
        "include_oos_train": include_oos_train,
        "n_oos_train": int(np.sum(train.y < 0)),
    }
    return ClassificationDataset(
        name=f"clinc150-{variant}",
        train=train,
        val=val,
        test=test,
        classes=classes,
        description=description,
        source=_SOURCE,
        metadata=metadata,
    )
