"""API keys of the HTTP service, and the secrets its workers share.

A key reads ``fw_<key_id>_<secret>``: ``key_id`` (12 hexadecimal digits) finds its row,
the secret (43 URL-safe characters, 256 random bits) proves it. Only the SHA-256 hash of
``key_id:secret`` is stored, with a short display prefix (``fw_<key_id>_`` and the first
four characters of the secret); the full key is shown once, when it is created. A fast
hash is enough here because the secret is random, not a password a person chose.

Each key has one role (:data:`ROLES`) and a name (the reviewer or client it belongs to).
Revoking a key keeps its row (with ``revoked_at``), so events that name it stay
explainable.

Examples
--------
>>> import tempfile
>>> from failwise import store
>>> folder = tempfile.mkdtemp()
>>> with store.open(f"sqlite:///{folder}/events.db") as events:
...     created = events.keys.create("reviewer", "alice")
...     found = events.keys.verify(created.token)
...     _ = events.keys.revoke(created.key.id)
...     gone = events.keys.verify(created.token)
>>> created.token.startswith("fw_"), found.name, found.role, gone
(True, 'alice', 'reviewer', None)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Op, Row, Tx
from failwise.store._checks import check_at, check_text
from failwise.store._errors import StoreError

__all__ = ["ROLES", "ApiKey", "ApiKeys", "NewApiKey", "UnknownKeyError"]

#: The roles a key can have. ``admin`` may do everything; ``reviewer`` works the review
#: queue and reads tasks; ``viewer`` reads metrics, the queue and tasks; ``service``
#: posts decisions and feedback.
ROLES: tuple[str, ...] = ("admin", "reviewer", "viewer", "service")

_KEY_ID = re.compile(r"[0-9a-f]{12}")
_TOKEN = re.compile(r"fw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_COLUMNS = "key_id, prefix, role, name, created_at, revoked_at"
_MAX_NAME = 200


class UnknownKeyError(StoreError, InputError):
    """A key id that names no API key; nothing was written."""


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored (without its secret).

    Attributes
    ----------
    id : str
        12 hexadecimal digits; the ``<key_id>`` of ``fw_<key_id>_<secret>``.
    prefix : str
        What may be shown of the key, e.g. ``fw_1a2b3c4d5e6f_Xy9Q``.
    role : {"admin", "reviewer", "viewer", "service"}
    name : str
        Who or what holds it.
    created_at : float
        Unix seconds.
    revoked_at : float or None
        Unix seconds of the revocation; None while the key is valid.
    """

    id: str
    prefix: str
    role: str
    name: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        """Whether the key is still valid (not revoked)."""
        return self.revoked_at is None


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: its stored description and the full key, shown only once."""

    key: ApiKey
    token: str


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=str(row[0]),
        prefix=str(row[1]),
        role=str(row[2]),
        name=str(row[3]),
        created_at=float(row[4]),
        revoked_at=None if row[5] is None else float(row[5]),
    )


def _hash(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def check_role(role: Any) -> str:
    """One of :data:`ROLES`."""
    if role not in ROLES:
        raise InputError(
            f"`role` must be one of {list(ROLES)}; got {describe(role)}. admin: everything; "
            "reviewer: the review queue; viewer: read-only; service: decisions and feedback."
        )
    return str(role)


def _check_key_id(key_id: Any) -> str:
    if not isinstance(key_id, str) or _KEY_ID.fullmatch(key_id) is None:
        raise InputError(
            f"`key_id` must be the 12 hexadecimal digits of a key's id (as `failwise keys "
            f"list` shows them); got {describe(key_id)}."
        )
    return key_id


class ApiKeys:
    """The API keys of a :class:`~failwise.store.Store` (``store.keys``).

    Like the queue, it reaches the database only through the two callables its store
    hands it: ``write`` (durable, through the group-commit writer) and ``read``.
    """

    def __init__(
        self,
        *,
        write: Callable[[Op], Any],
        read: Callable[[str, Sequence[Any]], list[Row]],
        backend: str,
    ) -> None:
        self._write = write
        self._read = read
        self._backend_name = backend

    def __repr__(self) -> str:
        return f"<failwise ApiKeys of a {self._backend_name} store>"

    def create(self, role: str, name: str, *, at: float | None = None) -> NewApiKey:
        """Create a key for ``name`` with ``role``; return it with its full token.

        Parameters
        ----------
        role : {"admin", "reviewer", "viewer", "service"}
        name : str
            Who or what holds it (a reviewer's name is what the queue records).
        at : float, optional
            Unix seconds; now by default.

        Returns
        -------
        NewApiKey
            ``token`` is the only copy of the full key: hand it over now.
        """
        checked_role = check_role(role)
        checked_name = check_text(name, "name", max_length=_MAX_NAME)
        now = check_at(at)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, f"fw_{key_id}_{secret[:4]}", checked_role, checked_name, now, None)

        def op(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO api_keys (key_id, prefix, secret_hash, role, name, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key.id, key.prefix, _hash(key_id, secret), key.role, key.name, now),
            )

        self._write(op)
        return NewApiKey(key, f"fw_{key_id}_{secret}")

    def revoke(self, key_id: str, *, at: float | None = None) -> ApiKey:
        """Revoke key ``key_id`` (its row stays, with ``revoked_at``); return it.

        Revoking a revoked key changes nothing.

        Raises
        ------
        UnknownKeyError
            When there is no such key.
        """
        checked = _check_key_id(key_id)
        now = check_at(at)

        def op(tx: Tx) -> ApiKey:
            tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (now, checked),
            )
            rows = tx.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (checked,))
            if not rows:
                raise self._unknown(checked)
            return _key(rows[0])

        result: ApiKey = self._write(op)
        return result

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first (without the revoked ones when ``include_revoked=False``)."""
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._read(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, key_id", ())
        return [_key(row) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        """The key ``key_id``, revoked or not.

        Raises
        ------
        UnknownKeyError
            When there is no such key.
        """
        checked = _check_key_id(key_id)
        rows = self._read(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (checked,))
        if not rows:
            raise self._unknown(checked)
        return _key(rows[0])

    def verify(self, token: str) -> ApiKey | None:
        """The valid key whose full token is ``token``; None for anything else.

        Malformed, unknown, revoked and wrong tokens all give None (never an error), so
        a caller cannot tell them apart.
        """
        if not isinstance(token, str):
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        rows = self._read(
            f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE key_id = ?", (key_id,)
        )
        if not rows or not hmac.compare_digest(str(rows[0][6]), _hash(key_id, secret)):
            return None
        key = _key(rows[0])
        return key if key.active else None

    def secret(self, name: str) -> str:
        """The shared random secret called ``name``, created on first use.

        Every process that asks for the same name gets the same value (the first writer
        wins), e.g. the key that signs the service's session cookies.
        """
        checked = check_text(name, "name", max_length=_MAX_NAME)
        candidate = secrets.token_urlsafe(32)

        def op(tx: Tx) -> str:
            tx.execute(
                "INSERT INTO service_secrets (name, value, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (checked, candidate, check_at(None)),
            )
            rows = tx.execute("SELECT value FROM service_secrets WHERE name = ?", (checked,))
            return str(rows[0][0])

        result: str = self._write(op)
        return result

    def _unknown(self, key_id: str) -> UnknownKeyError:
        return UnknownKeyError(
            f"No API key {key_id!r} in the {self._backend_name} store; nothing was written. "
            "List the keys with `failwise keys list`."
        )
