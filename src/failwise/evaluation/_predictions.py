"""Reading a user's predictions file (CSV or Parquet) for `failwise evaluate`.

Expected layout, one row per input:

* score columns named ``proba_<class>`` (probabilities) or ``logit_<class>`` (raw scores);
* a label column (``label`` by default) holding class names that match the score columns,
  or the out-of-scope marker (``oos`` by default) for inputs that belong to no class;
* optional: ``split`` (``val``/``test``: which rows fit the calibrator and policy and which
  are evaluated), ``ood_score`` (higher = more likely out of scope), ``fallback`` (the
  fallback's label per row, empty when it had no opinion), ``model`` (several models in one
  file, compared side by side).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise.exceptions import InputError

__all__ = ["PredictionSet", "read_predictions"]

_PREFIXES = {"proba_": "probabilities", "logit_": "logits"}


@dataclass(frozen=True)
class PredictionSet:
    """Validated predictions of one model."""

    model: str
    kind: str  # "probabilities" or "logits"
    classes: list[str]
    scores: NDArray[np.float64]
    y: NDArray[np.intp]
    split: NDArray[np.str_] | None
    ood_score: NDArray[np.float64] | None
    fallback: NDArray[np.intp] | None


def _read_table(path: Path) -> tuple[list[str], dict[str, list[Any]]]:
    if not path.is_file():
        raise InputError(
            f"Predictions file {str(path)!r} does not exist; pass a CSV or Parquet file."
        )
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(
                "Reading Parquet needs the `parquet` extra: pip install 'failwise[parquet]'."
            ) from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise InputError(f"Could not read {str(path)!r} as Parquet: {exc}") from None
        return list(table.column_names), {
            c: table.column(c).to_pylist() for c in table.column_names
        }
    if suffix not in (".csv", ".tsv", ".txt"):
        raise InputError(
            f"Unsupported predictions file type {suffix!r} for {str(path)!r}; use .csv or .parquet."
        )
    delimiter = "\t" if suffix == ".tsv" else ","
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{str(path)!r} is empty; expected a header row.") from None
        columns: dict[str, list[Any]] = {name: [] for name in header}
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path.name}, line {line_no}: {len(row)} fields but the header has "
                    f"{len(header)}. Check for unquoted commas in that row."
                )
            for name, value in zip(header, row, strict=True):
                columns[name].append(value)
    return header, columns


def _floats(values: list[Any], column: str, path: Path, offset: int) -> NDArray[np.float64]:
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(
                f"{path.name}: column {column!r}, row {i + offset}: {value!r} is not a number."
            ) from None
        if not math.isfinite(number):
            raise InputError(
                f"{path.name}: column {column!r}, row {i + offset}: {value!r} is not finite; "
                "drop or fix that row."
            )
        out[i] = number
    return out


def read_predictions(
    path: str | Path,
    *,
    label_column: str = "label",
    out_of_scope_label: str = "oos",
) -> list[PredictionSet]:
    """Read and validate a predictions file; one :class:`PredictionSet` per model.

    Errors name the file, the column and the row that is wrong (rows are numbered as in a
    spreadsheet: the header is row 1).
    """
    file = Path(path)
    header, columns = _read_table(file)
    offset = 2  # first data row in spreadsheet numbering
    n = len(next(iter(columns.values()), []))
    if n == 0:
        raise InputError(f"{file.name} has a header but no rows of predictions.")
    kinds = {kind for prefix, kind in _PREFIXES.items() for c in header if c.startswith(prefix)}
    if not kinds:
        raise InputError(
            f"{file.name}: no score columns found. Expected columns named proba_<class> "
            f"(probabilities) or logit_<class> (raw scores); got {header[:10]}."
        )
    if len(kinds) > 1:
        raise InputError(
            f"{file.name}: mixes proba_ and logit_ columns; use one kind of score per file."
        )
    kind = kinds.pop()
    prefix = next(p for p, k in _PREFIXES.items() if k == kind)
    score_columns = [c for c in header if c.startswith(prefix)]
    classes = [c[len(prefix) :] for c in score_columns]
    if len(classes) < 2:
        raise InputError(
            f"{file.name}: found one {prefix}<class> column; need at least two classes."
        )
    if label_column not in columns:
        raise InputError(
            f"{file.name}: no label column {label_column!r}; columns are {header[:12]}. "
            "Pass --label-column NAME."
        )
    index = {name: i for i, name in enumerate(classes)}
    y = np.empty(n, dtype=np.intp)
    for i, value in enumerate(columns[label_column]):
        label = "" if value is None else str(value)
        if label == out_of_scope_label:
            y[i] = -1
        elif label in index:
            y[i] = index[label]
        else:
            raise InputError(
                f"{file.name}: column {label_column!r}, row {i + offset}: label {label!r} is not "
                f"one of the classes of the score columns ({classes[:8]}...) nor the "
                f"out-of-scope marker {out_of_scope_label!r}."
            )
    scores = np.column_stack([_floats(columns[c], c, file, offset) for c in score_columns])
    if kind == "probabilities":
        if (scores < 0).any() or (scores > 1).any():
            row, col = np.argwhere((scores < 0) | (scores > 1))[0]
            raise InputError(
                f"{file.name}: column {score_columns[col]!r}, row {row + offset}: "
                f"{scores[row, col]!r} is not a probability in [0, 1]. Name raw scores "
                "logit_<class>."
            )
        sums = scores.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > 1e-3)
        if bad.size:
            raise InputError(
                f"{file.name}: row {bad[0] + offset}: the proba_ columns sum to "
                f"{sums[bad[0]]:.6g}, not 1. Normalise each row, or name raw scores logit_<class>."
            )
        scores = scores / sums[:, None]
    split = None
    if "split" in columns:
        split = np.array([str(v) for v in columns["split"]])
        unknown = sorted(set(split) - {"val", "test"})
        if unknown:
            raise InputError(
                f"{file.name}: column 'split' holds {unknown[:3]}; expected 'val' or 'test'."
            )
    ood = (
        _floats(columns["ood_score"], "ood_score", file, offset) if "ood_score" in columns else None
    )
    fallback = None
    if "fallback" in columns:
        fallback = np.full(n, -2, dtype=np.intp)
        for i, value in enumerate(columns["fallback"]):
            label = "" if value is None else str(value)
            if label == "":
                continue
            if label == out_of_scope_label:
                fallback[i] = -1
            elif label in index:
                fallback[i] = index[label]
            else:
                raise InputError(
                    f"{file.name}: column 'fallback', row {i + offset}: {label!r} is not a class."
                )
    models = [str(m) for m in columns["model"]] if "model" in columns else [file.stem] * n
    out = []
    for name in dict.fromkeys(models):
        rows = np.array([m == name for m in models])
        out.append(
            PredictionSet(
                model=name,
                kind=kind,
                classes=classes,
                scores=scores[rows],
                y=y[rows],
                split=None if split is None else split[rows],
                ood_score=None if ood is None else ood[rows],
                fallback=None if fallback is None else fallback[rows],
            )
        )
    return out
