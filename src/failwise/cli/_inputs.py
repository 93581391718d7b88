"""Checks of command-line input, run before any work so a bad flag costs nothing.

Every failure calls :func:`failwise.cli._console.fail`: one line on stderr naming the flag,
what it received and what to pass instead, exit code 2, nothing written.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from failwise.cli._console import fail
from failwise.exceptions import InputError
from failwise.outcomes import OutcomeModel
from failwise.policy import OutcomeCosts

__all__ = [
    "check_fraction",
    "check_output_dir",
    "check_output_file",
    "check_seed",
    "distinct_outputs",
    "parse_costs",
    "parse_target_risk",
    "read_outcome_model",
]

_NONE_WORDS = ("none", "off", "no")


def _number(value: float) -> str:
    """A number as the user typed it (``1.5``, not ``np.float64(1.5)``)."""
    return f"{float(value):g}"


def check_fraction(value: float | None, flag: str, example: str, *, closed: bool = False) -> None:
    """``value`` must lie in (0, 1), or in [0, 1] when ``closed``."""
    if value is None:
        return
    low_ok = value >= 0 if closed else value > 0
    high_ok = value <= 1
    if closed is False:
        high_ok = value < 1
    if not math.isfinite(value) or not (low_ok and high_ok):
        span = "between 0 and 1 (both allowed)" if closed else "strictly between 0 and 1"
        fail(f"{flag} must lie {span}; got {_number(value)}. Pass e.g. {flag} {example}.")


def parse_target_risk(text: str) -> float | None:
    """``--target-risk``: a number in (0, 1), or ``none`` to drop the risk target."""
    if text.strip().lower() in _NONE_WORDS:
        return None
    try:
        value = float(text)
    except ValueError:
        fail(
            f"--target-risk must be a number in (0, 1) or 'none'; got {text!r}. "
            "Pass e.g. --target-risk 0.02."
        )
    check_fraction(value, "--target-risk", "0.02")
    return value


def check_seed(seed: int) -> None:
    """``--seed`` must be a non-negative integer (NumPy's generators need one)."""
    if seed < 0:
        fail(f"--seed must be ≥ 0; got {seed}. Pass e.g. --seed 0.")


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_file(path: Path | None, flag: str, example: str) -> None:
    """An output file must be creatable: not a folder, under folders (not files), writable."""
    if path is None or str(path) == "-":
        return
    target = path.expanduser()
    if target.is_dir():
        fail(
            f"{flag} {str(path)!r} is a folder; pass a file name such as {str(target / example)!r}."
        )
    if target.exists() and not os.access(target, os.W_OK):
        fail(f"{flag} {str(path)!r} is not writable; pass another path or fix its permissions.")
    parent = _first_existing(target.parent)
    if not parent.is_dir():
        fail(
            f"{flag} {str(path)!r} cannot be written: {str(parent)!r} is a file, not a folder. "
            "Pass a path under a folder."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(f"{flag} {str(path)!r} cannot be written: folder {str(parent)!r} is not writable.")


def check_output_dir(path: Path | None, flag: str, *, new: bool = True) -> None:
    """An output folder must be under folders (not files) and writable; with ``new``, new
    or empty too (else its files may be replaced)."""
    if path is None:
        return
    target = path.expanduser()
    wanted = "a new or empty folder" if new else "a folder"
    if target.exists() and not target.is_dir():
        fail(f"{flag} {str(path)!r} is a file; pass {wanted}.")
    if new and target.is_dir() and any(target.iterdir()):
        fail(
            f"{flag} {str(path)!r} already holds files; pass a new or empty folder "
            "(saved artefacts are never overwritten)."
        )
    parent = _first_existing(target)
    if not parent.is_dir():
        fail(f"{flag} {str(path)!r} cannot be created: {str(parent)!r} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(f"{flag} {str(path)!r} cannot be created: {str(parent)!r} is not writable.")


def distinct_outputs(**outputs: Path | None) -> None:
    """Two output flags must not name the same file."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None or str(path) == "-":
            continue
        resolved = path.expanduser().resolve()
        if resolved in seen:
            fail(f"{seen[resolved]} and {flag} both name {str(path)!r}; give each its own file.")
        seen[resolved] = flag


def _read_mapping(path: Path, flag: str) -> dict[str, Any]:
    """A JSON or YAML file holding one mapping of names to values."""
    if not path.is_file():
        where = "is a folder" if path.is_dir() else "does not exist"
        fail(f"{flag} {str(path)!r} {where}; pass a .json or .yaml file.")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail(f"{flag} {str(path)!r} is not UTF-8 text; save it as UTF-8 JSON or YAML.")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            fail(
                f"{flag} {str(path)!r}: reading YAML needs the `yaml` extra: "
                "pip install 'failwise[yaml]' (or write the file as JSON)."
            )
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            fail(f"{flag} {str(path)!r} is not valid YAML: {exc}")
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            fail(f"{flag} {str(path)!r} is not valid JSON: {exc}")
    else:
        fail(f"{flag} {str(path)!r}: unsupported file type {suffix!r}; use .json, .yaml or .yml.")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(
            f"{flag} {str(path)!r} must hold a mapping of names to numbers; "
            f"got a {type(data).__name__}."
        )
    return {str(k): v for k, v in data.items()}


def _check_numbers(values: dict[str, Any], known: list[str], flag: str, what: str) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        fail(f"{flag}: unknown {what} {', '.join(unknown)}; known: {', '.join(known)}.")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{flag}: {name} must be a number; got {value!r}.")


def read_outcome_model(path: Path | None) -> OutcomeModel | None:
    """``--outcome-model FILE``: the assumptions to change, every one validated by name."""
    if path is None:
        return None
    values = _read_mapping(path, "--outcome-model")
    known = [f.name for f in fields(OutcomeModel)]
    _check_numbers(values, known, f"--outcome-model {path.name}", "assumption(s)")
    try:
        return OutcomeModel(**{k: float(v) for k, v in values.items()})
    except InputError as exc:
        fail(f"--outcome-model {path.name}: {str(exc).replace('OutcomeModel.', '')}")


def parse_costs(text: str | None) -> OutcomeCosts | None:
    """``--costs``: ``name=value`` pairs separated by commas, or a JSON/YAML file of them."""
    if text is None:
        return None
    known = [f.name for f in fields(OutcomeCosts)]
    candidate = Path(text).expanduser()
    values: dict[str, Any]
    if "=" not in text and (candidate.suffix.lower() in (".json", ".yaml", ".yml")):
        values = _read_mapping(candidate, "--costs")
    else:
        values = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, raw = part.partition("=")
            if not sep:
                fail(
                    f"--costs expects name=value pairs separated by commas (or a .json/.yaml "
                    f"file); got {part!r}. Example: --costs wrong_answer=10,escalate=3."
                )
            try:
                values[name.strip()] = float(raw)
            except ValueError:
                fail(f"--costs: {name.strip()} must be a number; got {raw.strip()!r}.")
        if not values:
            fail("--costs is empty; pass e.g. --costs wrong_answer=10,escalate=3.")
    _check_numbers(values, known, "--costs", "cost(s)")
    try:
        return OutcomeCosts(**{k: float(v) for k, v in values.items()})
    except InputError as exc:
        fail(f"--costs: {str(exc).replace('OutcomeCosts.', '')}")
