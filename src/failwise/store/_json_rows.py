"""A batch's JSON payloads encoded in bulk: :func:`dump_json_rows`.

The text is what :func:`~failwise.store._checks.dump_json` writes, one row at a time, for
the same values (floats may be spelt differently, ``1e-05`` as ``0.00001``), and a batch
that :func:`dump_json` would refuse is refused with its message. Rows of plain JSON types
go to ``orjson`` (the service extra) in one call:

- orjson writes NaN and the infinities as ``null`` where the store must refuse them, so the
  rows' floats are gathered as they are walked and checked at once with NumPy;
- the store keeps non-ASCII text escaped as the standard encoder writes it (the queue's
  text filter matches that spelling), so each non-ASCII string is handed to orjson as the
  standard library's escaped text (an ``orjson.Fragment``); what is still not ASCII after
  that (a DEL, a non-ASCII key) is escaped in the encoded text;
- the rows are encoded as one list, with a random separator between them that no row can
  hold, then split: one call instead of one per row.

Rows holding anything else (NumPy values, enums, sets, non-str keys) go through
:func:`dump_json`, and so do the rows of a batch orjson refuses (integers beyond 64 bits,
nesting deeper than it takes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

import numpy as np

from failwise.store._checks import dump_json

__all__ = ["dump_json_rows"]

#: Scalar types a row may hold as they are (floats are gathered for the finiteness check).
_SCALARS = frozenset({int, bool, type(None)})

#: Floats this close to 0 (and not 0) orjson spells otherwise than ``repr`` (``0.00001``,
#: ``1.5e-7`` for ``1e-05``, ``1.5e-07``); every other finite float it spells the same.
_TINY = 1e-4

#: A member that keeps a row from the fast encoder.
_NOT_PLAIN: Any = object()

#: What the standard encoder escapes and orjson writes as it is: DEL and non-ASCII.
_NON_ASCII = re.compile("[\x7f-\U0010ffff]")


class _Encoder(NamedTuple):
    dumps: Callable[[Any], bytes]
    fragment: Callable[[str], Any]


class _Fragments:
    """The ``orjson.Fragment`` of a tiny float (called) or of a non-ASCII string
    (:meth:`text`): the standard encoder's text. A batch's floats repeat (its timings are
    shared), so each float's fragment is made once."""

    __slots__ = ("_floats", "_make")

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make
        self._floats: dict[float, Any] = {}

    def __call__(self, value: float) -> Any:
        made = self._floats.get(value)
        if made is None:
            made = self._floats[value] = self._make(repr(value))
        return made

    def text(self, value: str) -> Any:
        return self._make(encode_basestring_ascii(value))


@cache
def _fast_encoder() -> _Encoder | None:
    """orjson when the service extra installed it, else None (the stdlib encodes)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - the service extra is installed in tests
        return None
    return _Encoder(orjson.dumps, orjson.Fragment)


def _prepared(value: Any, floats: list[float], fragment: _Fragments) -> Any:
    """``value`` as orjson should encode it to write the standard encoder's text, or
    :data:`_NOT_PLAIN` when it holds anything but dicts with str keys, lists, tuples, str,
    int, float, bool and None.

    Every float under it is appended to ``floats``. A non-ASCII string becomes its escaped
    text and a float orjson spells otherwise (:data:`_TINY`) its ``repr``, each as an
    ``orjson.Fragment``; the containers holding one are copied, never changed.
    """
    kind = type(value)
    if kind is float:
        floats.append(value)
        return fragment(value) if -_TINY < value < _TINY and value else value
    if kind is str:
        return value if value.isascii() else fragment.text(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return _NOT_PLAIN
        pairs: Any = value.items()
    elif kind is list or kind is tuple:
        pairs = enumerate(value)
    else:
        return _NOT_PLAIN
    out: Any = None
    for key, member in pairs:
        kind = type(member)
        if kind is float:
            floats.append(member)
            if not -_TINY < member < _TINY or not member:
                continue
            new = fragment(member)
        elif kind in _SCALARS or (kind is str and member.isascii()):
            continue
        else:
            new = _prepared(member, floats, fragment)
            if new is _NOT_PLAIN:
                return _NOT_PLAIN
            if new is member:
                continue
        if out is None:
            out = dict(value) if type(value) is dict else list(value)
        out[key] = new
    return value if out is None else out


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def _ascii(text: str) -> str:
    """orjson's text with DEL and every non-ASCII character escaped as the standard encoder
    (``ensure_ascii``) writes them: ``\\u2265``, a surrogate pair beyond the BMP."""
    if text.isascii() and "\x7f" not in text:
        return text
    return _NON_ASCII.sub(_escape, text)


def _encode_each(
    encoder: _Encoder, rows: Sequence[tuple[Mapping[str, Any], Any]], name: str
) -> list[str]:
    texts = []
    for original, prepared in rows:
        try:
            texts.append(_ascii(encoder.dumps(prepared).decode()))
        except (TypeError, ValueError):
            # orjson refuses integers beyond 64 bits and deep nesting; the stdlib decides.
            texts.append(dump_json(original, name))
    return texts


def _encode_all(
    encoder: _Encoder, rows: Sequence[tuple[Mapping[str, Any], Any]], name: str
) -> list[str]:
    """The text of every row, from one orjson call when it takes them all."""
    separator = uuid.uuid4().hex
    parts: list[Any] = [separator] * (2 * len(rows) - 1)
    parts[::2] = [prepared for _, prepared in rows]
    try:
        data = encoder.dumps(parts)
    except (TypeError, ValueError):
        return _encode_each(encoder, rows, name)
    texts = data[1:-1].decode().split(f',"{separator}",')
    if len(texts) != len(rows):  # pragma: no cover - a row holding the random separator
        return _encode_each(encoder, rows, name)
    if not data.isascii() or b"\x7f" in data:
        texts = [_ascii(text) for text in texts]
    return texts


def dump_json_rows(values: Sequence[Mapping[str, Any]], name: str = "payload") -> list[str]:
    """:func:`~failwise.store._checks.dump_json` of each value, in bulk (see the module's
    notes); the same JSON, and the same error for a batch holding a value JSON cannot carry.
    """
    encoder = _fast_encoder()
    if encoder is None:
        return [dump_json(value, name) for value in values]
    floats: list[float] = []
    fragments = _Fragments(encoder.fragment)
    texts: list[str] = [""] * len(values)
    fast: list[int] = []
    rows: list[tuple[Mapping[str, Any], Any]] = []
    for position, value in enumerate(values):
        try:
            prepared = _prepared(value, floats, fragments)
        except RecursionError:
            prepared = _NOT_PLAIN
        if prepared is _NOT_PLAIN:
            texts[position] = dump_json(value, name)
        else:
            fast.append(position)
            rows.append((value, prepared))
    if floats and not np.isfinite(np.asarray(floats, dtype=np.float64)).all():
        for value in values:
            dump_json(value, name)
    if rows:
        for position, text in zip(fast, _encode_all(encoder, rows, name), strict=True):
            texts[position] = text
    return texts
