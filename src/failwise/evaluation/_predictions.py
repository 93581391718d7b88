"""Reading a user's predictions file (CSV or Parquet) for `failwise evaluate`.

Expected layout, one row per input:

* score columns named ``proba_<class>`` (probabilities) or ``logit_<class>`` (raw scores);
* a label column (``label`` by default) holding class names that match the score columns,
  or the out-of-scope marker (``oos`` by default) for inputs that belong to no class;
* optional: ``split`` (``val``/``test``: which rows fit the calibrator and policy and which
  are evaluated; ``train``: training inputs, of which only the features are used, as the
  monitor's neighbour rows), ``feature_<i>`` columns (the inputs' features, or a separate
  features file: see :mod:`failwise.evaluation._features`), ``ood_score`` (higher = more
  likely out of scope), ``fallback`` (the fallback's label per row, empty when it had no
  opinion), ``model`` (several models in one file, compared side by side).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise.evaluation._features import FEATURE_PREFIX, check_features, read_features
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
    #: The inputs' features, one row per input (from a features file or feature_ columns).
    features: NDArray[np.float64] | None = None


_PARQUET_MAGIC = b"PAR1"
_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _where(i: int, csv_lines: bool) -> str:
    """Position of the ``i``-th data row (0-based) for messages."""
    if csv_lines:
        return f"data row {i + 1} (line {i + 2} of the file)"
    return f"data row {i + 1}"


def _read_parquet(path: Path) -> tuple[list[str], dict[str, list[Any]]]:
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
    return list(table.column_names), {c: table.column(c).to_pylist() for c in table.column_names}


def _sniff_delimiter(header_line: str, suffix: str) -> str:
    """The delimiter of a text table: tab for .tsv, else the most frequent in the header."""
    if suffix == ".tsv":
        return "\t"
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def _read_table(path: Path) -> tuple[list[str], dict[str, list[Any]], str | None]:
    """Header, columns and (for text files) the delimiter of a predictions file."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputError(f"Predictions file {str(path)!r} {what}; pass a CSV or Parquet file.")
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        magic = handle.read(4)
    if suffix in (".parquet", ".pq"):
        names, table = _read_parquet(path)
        return names, table, None
    if suffix not in (".csv", ".tsv", ".txt"):
        raise InputError(
            f"Unsupported predictions file type {suffix!r} for {str(path)!r}; use .csv or .parquet."
        )
    if magic == _PARQUET_MAGIC:
        raise InputError(
            f"{path.name} is a Parquet file (it starts with PAR1), not {suffix[1:].upper()} "
            f"text; rename it to {path.stem}.parquet."
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: drop Excel's byte-order mark
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as "
            "UTF-8 CSV (in Excel: CSV UTF-8)."
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{str(path)!r} is empty; expected a header row.")
    delimiter = _sniff_delimiter(lines[0], suffix)
    reader = csv.reader(lines, delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    columns: dict[str, list[Any]] = {name: [] for name in header}
    name = _DELIMITER_NAMES[delimiter]
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path.name}, line {line_no} (data row {line_no - 1}): {len(row)} fields but "
                f"the header has {len(header)} ({name}-separated). Check for unquoted "
                f"{name}s or a missing value in that row."
            )
        for column, value in zip(header, row, strict=True):
            columns[column].append(value)
    return header, columns, delimiter


def _floats(values: list[Any], column: str, path: Path, csv_lines: bool) -> NDArray[np.float64]:
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            hint = (
                " Write decimals with a point (0.9, not 0,9)."
                if isinstance(value, str) and "," in value
                else ""
            )
            raise InputError(
                f"{path.name}: column {column!r}, {_where(i, csv_lines)}: {value!r} is not a "
                f"number.{hint}"
            ) from None
        if not math.isfinite(number):
            raise InputError(
                f"{path.name}: column {column!r}, {_where(i, csv_lines)}: {value!r} is not "
                "finite; drop or fix that row."
            )
        out[i] = number
    return out


def read_predictions(
    path: str | Path,
    *,
    label_column: str = "label",
    out_of_scope_label: str = "oos",
    features: str | Path | None = None,
) -> list[PredictionSet]:
    """Read and validate a predictions file; one :class:`PredictionSet` per model.

    CSV files may start with a UTF-8 byte-order mark (as Excel writes them) and may use
    commas, semicolons, tabs or pipes between fields (detected from the header). Errors name
    the file, the column and the data row that is wrong (data rows are numbered from 1, the
    header not counted; CSV errors also give the line of the file). ``features`` is a
    ``.npy`` or ``.parquet`` file of the inputs' features, one row per data row in the same
    order; ``feature_<i>`` columns in the file give them instead.
    """
    file = Path(path)
    header, columns, delimiter = _read_table(file)
    text = delimiter is not None
    n = len(next(iter(columns.values()), []))
    if n == 0:
        raise InputError(f"{file.name} has a header but no data rows of predictions.")
    kinds = {kind for prefix, kind in _PREFIXES.items() for c in header if c.startswith(prefix)}
    if not kinds:
        hint = ""
        if text and len(header) == 1:
            hint = (
                " The header has a single column: separate fields with commas, semicolons, "
                "tabs or pipes."
            )
        raise InputError(
            f"{file.name}: no score columns found. Expected columns named proba_<class> "
            f"(probabilities) or logit_<class> (raw scores); got {header[:10]}.{hint}"
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
            shown = ", ".join(repr(c) for c in classes[:8]) + (", ..." if len(classes) > 8 else "")
            raise InputError(
                f"{file.name}: column {label_column!r}, {_where(i, text)}: label {label!r} is "
                f"not one of the classes of the score columns ({shown}) nor the out-of-scope "
                f"marker {out_of_scope_label!r} (set it with --out-of-scope-label)."
            )
    scores = np.column_stack([_floats(columns[c], c, file, text) for c in score_columns])
    if kind == "probabilities":
        if (scores < 0).any() or (scores > 1).any():
            row, col = np.argwhere((scores < 0) | (scores > 1))[0]
            raise InputError(
                f"{file.name}: column {score_columns[col]!r}, {_where(int(row), text)}: "
                f"{float(scores[row, col]):g} is not a probability in [0, 1]. Name raw scores "
                "logit_<class>."
            )
        sums = scores.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > 1e-3)
        if bad.size:
            raise InputError(
                f"{file.name}: {_where(int(bad[0]), text)}: the proba_ columns sum to "
                f"{float(sums[bad[0]]):.6g}, not 1. Normalise each row, or name raw scores "
                "logit_<class>."
            )
        scores = scores / sums[:, None]
    split = None
    if "split" in columns:
        split = np.array(["" if v is None else str(v).strip() for v in columns["split"]])
        bad_split = np.flatnonzero(~np.isin(split, ["val", "test", "train"]))
        if bad_split.size:
            first = int(bad_split[0])
            value = repr(split[first]) if split[first] else "an empty value"
            others = f" ({bad_split.size} data rows are wrong)" if bad_split.size > 1 else ""
            raise InputError(
                f"{file.name}: column 'split', {_where(first, text)}: holds {value}; "
                f"expected 'val', 'test' or 'train'{others}."
            )
    ood = _floats(columns["ood_score"], "ood_score", file, text) if "ood_score" in columns else None
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
                    f"{file.name}: column 'fallback', {_where(i, text)}: {label!r} is not a "
                    f"class of the score columns nor {out_of_scope_label!r}; leave it empty "
                    "when the fallback had no opinion."
                )
    inputs = _features(file, header, columns, features, n, text)
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
                features=None if inputs is None else inputs[rows],
            )
        )
    return out


def _features(
    file: Path,
    header: list[str],
    columns: dict[str, list[Any]],
    features: str | Path | None,
    n: int,
    text: bool,
) -> NDArray[np.float64] | None:
    """The inputs' features: from the features file, or the file's feature_ columns."""
    named = [c for c in header if c.startswith(FEATURE_PREFIX)]
    if features is not None and named:
        raise InputError(
            f"{file.name} has {len(named)} {FEATURE_PREFIX}<i> columns and a features file was "
            "given too; give the features one way only."
        )
    if features is not None:
        return read_features(features, n)
    if not named:
        return None
    values = np.column_stack([_floats(columns[c], c, file, text) for c in named])
    return check_features(values, n, f"{file.name}: the {FEATURE_PREFIX} columns")
