"""Label names for the reviewer page: read from a file (``failwise serve --labels FILE``).

A labels file is either a JSON list of strings (``["card_lost", "refund", ...]``) or plain
text with one name per line, in class order: the first name is class 0. Trailing blank
lines are ignored; a blank line between names, a repeated name or a name over 200
characters is an error that names the line, because the picker finds labels by name and
a shifted list would label every item wrongly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["MAX_LABEL_LENGTH", "check_label_count", "read_labels"]

#: The longest label name the settings accept.
MAX_LABEL_LENGTH = 200


def _from_json(text: str, path: Path) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--labels {path} is not valid JSON ({exc}); write a JSON list of names, or one "
            "name per line."
        ) from None
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        raise InputError(
            f'--labels {path}: expected a JSON list of strings, e.g. ["refund", "card_lost"]; '
            f"got a {type(data).__name__}"
            + (" with items that are not strings." if isinstance(data, list) else ".")
        )
    return [name.strip() for name in data]


def read_labels(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The label names in ``path``, class 0 first.

    Parameters
    ----------
    path : path
        A ``.json`` file holding a list of strings, or a text file with one name per line
        (a file whose content starts with ``[`` is read as JSON too).

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        When the file cannot be read, holds no names, or has a blank, repeated or
        too-long name (the message gives its line or position).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
    >>> _ = file.write_text("refund\\ncard_lost\\n\\n")
    >>> read_labels(file)
    ('refund', 'card_lost')
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InputError(
            f"`path` must be the path of a labels file (one name per line, or a JSON list); "
            f"got {describe(path)}."
        )
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(
            f"--labels {file}: cannot read it ({exc.strerror or exc}). Pass a text file with "
            "one label name per line, or a JSON list."
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"--labels {file} is not UTF-8 text; save it as UTF-8.") from None
    as_json = file.suffix.lower() == ".json" or text.lstrip().startswith("[")
    if as_json:
        names = _from_json(text, file)
        where = "item"
    else:
        names = [line.strip() for line in text.splitlines()]
        while names and not names[-1]:
            names.pop()
        where = "line"
    if not names:
        raise InputError(f"--labels {file} holds no label names; write one name per line.")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            raise InputError(
                f"--labels {file}: {where} {number} is blank; every class needs a name, in "
                "class order (class 0 first). Name it, or remove the gap."
            )
        if len(name) > MAX_LABEL_LENGTH:
            raise InputError(
                f"--labels {file}: {where} {number} is {len(name)} characters long; names "
                f"are at most {MAX_LABEL_LENGTH}."
            )
        folded = name.casefold()
        if folded in seen:
            raise InputError(
                f"--labels {file}: {where} {number} repeats {name!r} ({where} "
                f"{seen[folded]}); the picker finds labels by name, so names must differ."
            )
        seen[folded] = number
    return tuple(names)


def check_label_count(labels: Sequence[str] | None, n_classes: int | None, source: str) -> None:
    """Refuse label names that do not match the policy's number of classes.

    Raises
    ------
    InputError
        Naming both counts and where the names came from.
    """
    if labels is None or n_classes is None or len(labels) == n_classes:
        return
    raise InputError(
        f"{source} names {len(labels)} labels, but the policy has {n_classes} classes; give "
        f"exactly one name per class, in class order (class 0 first)."
    )
