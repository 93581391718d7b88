"""Database URLs: which backend, where, and how to print them without a password.

``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` follow SQLAlchemy's
convention (three slashes, then the path; an absolute path brings the fourth).
``postgresql://user:password@host:port/database`` is handed to libpq unchanged, so every
libpq parameter works in the query string (``?sslmode=require``,
``?options=-csearch_path%3Dmyschema``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["StoreURL", "parse_url", "redact"]

#: Options a ``sqlite:///`` URL may carry, with their accepted values.
SQLITE_OPTIONS: dict[str, tuple[str, ...]] = {"synchronous": ("full", "normal")}

_PASSWORD_IN_QUERY = re.compile(r"(?i)(password=)[^&]*")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL.

    Attributes
    ----------
    backend : {"sqlite", "postgresql"}
    url : str
        The URL as given (it may hold a password: never print it).
    redacted : str
        The URL with its password replaced by ``***``, for messages and logs.
    path : Path or None
        The database file (SQLite).
    options : dict
        Backend options read from the query string (SQLite).
    """

    backend: str
    url: str = field(repr=False)
    redacted: str
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``.

    Examples
    --------
    >>> redact("postgresql://app:s3cret@db.internal:5432/events")
    'postgresql://app:***@db.internal:5432/events'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}"
    query = _PASSWORD_IN_QUERY.sub(r"\1***", parts.query)
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{rebuilt}?{query}" if query else rebuilt


def parse_url(url: Any) -> StoreURL:
    """Parse ``url`` and check that it names a supported backend."""
    if not isinstance(url, str) or not url.strip():
        raise InputError(
            f"`url` must be a database URL such as 'sqlite:///events.db' or "
            f"'postgresql://user:password@host:5432/db'; got {describe(url)}."
        )
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return _parse_sqlite(url)
    if scheme in ("postgresql", "postgres"):
        return StoreURL(backend="postgresql", url=url, redacted=redact(url))
    shown = redact(url) if "://" in url else url
    raise InputError(
        f"Unsupported store URL {shown!r}: expected 'sqlite:///path/to/file.db' (relative "
        "path; four slashes for an absolute one) or 'postgresql://user:password@host:port/db'."
    )


def _parse_sqlite(url: str) -> StoreURL:
    if not url.lower().startswith("sqlite:///"):
        raise InputError(
            f"SQLite URLs have three slashes before the path: 'sqlite:///events.db' (relative) "
            f"or 'sqlite:////var/lib/app/events.db' (absolute); got {url!r}."
        )
    rest = url[len("sqlite:///") :]
    raw_path, _, query = rest.partition("?")
    if not raw_path or raw_path in (":memory:", "/:memory:"):
        raise InputError(
            f"A SQLite store needs a file path; got {url!r}. In-memory databases cannot be "
            "shared by the store's writer and reader connections: use a temporary file, e.g. "
            "f'sqlite:///{tempfile.mkdtemp()}/events.db'."
        )
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        allowed = SQLITE_OPTIONS.get(key)
        if allowed is None:
            accepted = ", ".join(f"{k}={'|'.join(v)}" for k, v in SQLITE_OPTIONS.items())
            raise InputError(f"Unknown option {key!r} in SQLite URL {url!r}; accepted: {accepted}.")
        if value.lower() not in allowed:
            raise InputError(
                f"SQLite option {key}={value!r} is not one of {list(allowed)} (in {url!r})."
            )
        options[key] = value.lower()
    return StoreURL(backend="sqlite", url=url, redacted=url, path=Path(raw_path), options=options)
