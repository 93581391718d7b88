"""Public datasets with out-of-scope inputs, as :class:`ClassificationDataset` objects.

`load_clinc150` downloads (once, checksum-verified, cached) or reads a local copy of
CLINC150; `load_digits_with_unseen` builds a no-download demo from scikit-learn's digits
with two digit classes that appear only at test time.
"""

from __future__ import annotations

from failwise.datasets._base import (
    ChecksumError,
    ClassificationDataset,
    DatasetSplit,
    DownloadError,
    fetch_file,
    get_cache_dir,
)
from failwise.datasets._clinc150 import CLINC150_COMMIT, CLINC150_FILES, load_clinc150
from failwise.datasets._digits import load_digits_with_unseen

__all__ = [
    "CLINC150_COMMIT",
    "CLINC150_FILES",
    "ChecksumError",
    "ClassificationDataset",
    "DatasetSplit",
    "DownloadError",
    "fetch_file",
    "get_cache_dir",
    "load_clinc150",
    "load_digits_with_unseen",
]
