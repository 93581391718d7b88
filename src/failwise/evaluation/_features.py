"""Input features for `failwise evaluate`: a file beside the predictions, or columns in it.

The monitor compares served inputs with the validation inputs the policy was fitted on
(:class:`failwise.monitor.Reference`), which needs their features: embeddings, projected
TF-IDF rows, any fixed-width numeric vector the service can compute again for a served
input. A predictions file carries them in one of two ways:

* a separate file with one row per predictions row, in the same order: ``.npy`` (a 2-D
  numeric array) or ``.parquet`` (every column numeric);
* columns named ``feature_<anything>`` in the predictions file itself, in header order.

Rows marked ``split=train`` in the predictions file are the training inputs: their
features become the reference's neighbour rows, which make the unseen-input test more
sensitive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import InputError

__all__ = ["FEATURE_PREFIX", "read_features"]

#: Predictions-file columns with this prefix are the inputs' features.
FEATURE_PREFIX: Final = "feature_"


def _from_parquet(path: Path) -> NDArray[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            "Reading a Parquet features file needs the `parquet` extra: "
            "pip install 'failwise[parquet]'; or save the features with numpy.save as .npy."
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InputError(f"Could not read {str(path)!r} as Parquet: {exc}") from None
    import pyarrow.types as pt

    text = [f.name for f in table.schema if not (pt.is_integer(f.type) or pt.is_floating(f.type))]
    if text:
        raise InputError(
            f"Features file {path.name}: columns {text[:5]} are not numeric; every column must "
            "hold numbers (one feature per column). Drop the other columns."
        )
    if table.num_columns == 0:
        raise InputError(f"Features file {path.name} has no columns; expected one per feature.")
    return np.column_stack(
        [table.column(i).to_numpy(zero_copy_only=False) for i in range(table.num_columns)]
    )


def _load(path: Path) -> NDArray[Any]:
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputError(
            f"Features file {str(path)!r} {what}; pass a .npy or .parquet file with one row "
            "per predictions row."
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.asarray(np.load(path, allow_pickle=False))
        except (ValueError, OSError) as exc:
            raise InputError(
                f"Could not read {path.name} as a numpy array ({exc}); save the features with "
                "numpy.save(path, array) as a 2-D numeric array."
            ) from None
    if suffix in (".parquet", ".pq"):
        return _from_parquet(path)
    raise InputError(
        f"Unsupported features file type {suffix!r} for {path.name}; use .npy (numpy.save) "
        f"or .parquet, or put the features in {FEATURE_PREFIX}<i> columns of the predictions "
        "file."
    )


def check_features(values: Any, n_rows: int, where: str) -> NDArray[np.float64]:
    """Features as a finite float64 array of ``n_rows`` rows; ``where`` names their origin."""
    array = np.asarray(values)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise InputError(
            f"{where}: features must be numeric; got dtype {array.dtype}. Pass one number per "
            "feature (embeddings, projected TF-IDF rows)."
        )
    if array.ndim != 2 or array.shape[1] == 0:
        raise InputError(
            f"{where}: features must be a 2-D array (one row per input, one column per "
            f"feature); got shape {array.shape}. Reshape a single feature with "
            "reshape(-1, 1)."
        )
    if array.shape[0] != n_rows:
        raise InputError(
            f"{where}: {array.shape[0]} rows of features for {n_rows} predictions rows; give "
            "one row per predictions row, in the same order."
        )
    floats = array.astype(np.float64)
    bad = np.argwhere(~np.isfinite(floats))
    if bad.size:
        row, column = (int(v) for v in bad[0])
        raise InputError(
            f"{where}: row {row + 1}, feature {column + 1} is {float(floats[row, column])} "
            f"({bad.shape[0]} values are not finite); features must be finite numbers."
        )
    return floats


def read_features(path: str | Path, n_rows: int) -> NDArray[np.float64]:
    """Read and validate a features file of ``n_rows`` rows (see the module notes).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "features.npy", np.ones((3, 4), dtype=np.float32))
    >>> read_features(folder / "features.npy", 3).shape
    (3, 4)
    """
    file = Path(path).expanduser()
    return check_features(_load(file), n_rows, f"features file {file.name}")
