"""API keys and shared secrets in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from failwise import store
from failwise.exceptions import InputError


def test_a_key_is_stored_hashed_and_verified_by_its_token(events: store.Store) -> None:
    created = events.keys.create("reviewer", "alice", at=100.0)
    assert created.token.startswith(f"fw_{created.key.id}_")
    assert created.key.prefix == created.token[: len(created.key.prefix)]
    stored = events._read("SELECT prefix, secret_hash FROM api_keys", ())
    assert created.token not in {str(v) for row in stored for v in row}
    found = events.keys.verify(created.token)
    assert found == created.key
    assert found is not None
    assert (found.role, found.name, found.created_at, found.active) == (
        "reviewer",
        "alice",
        100.0,
        True,
    )


@pytest.mark.parametrize(
    "token",
    ["", "fw_", "fw_nothex000000_" + "a" * 43, "Bearer x", "fw_0123456789ab_" + "a" * 43, None],
)
def test_a_malformed_or_unknown_token_is_not_a_key(events: store.Store, token: object) -> None:
    events.keys.create("viewer", "v")
    assert events.keys.verify(token) is None  # type: ignore[arg-type]


def test_a_wrong_secret_for_a_real_key_id_is_refused(events: store.Store) -> None:
    created = events.keys.create("admin", "root")
    forged = created.token[:-1] + ("A" if created.token[-1] != "A" else "B")
    assert events.keys.verify(forged) is None


def test_revoking_keeps_the_row_and_stops_the_key(events: store.Store) -> None:
    first = events.keys.create("service", "api")
    second = events.keys.create("viewer", "dash")
    revoked = events.keys.revoke(first.key.id, at=200.0)
    assert revoked.revoked_at == 200.0
    assert not revoked.active
    assert events.keys.revoke(first.key.id, at=300.0).revoked_at == 200.0
    assert events.keys.verify(first.token) is None
    assert [k.id for k in events.keys.list()] == [first.key.id, second.key.id]
    assert [k.id for k in events.keys.list(include_revoked=False)] == [second.key.id]
    assert events.keys.get(first.key.id).revoked_at == 200.0


def test_unknown_and_malformed_key_ids_are_named(events: store.Store) -> None:
    with pytest.raises(store.UnknownKeyError, match="No API key '0123456789ab'"):
        events.keys.revoke("0123456789ab")
    with pytest.raises(store.UnknownKeyError):
        events.keys.get("0123456789ab")
    with pytest.raises(InputError, match="12 hexadecimal digits"):
        events.keys.revoke("fw_whole_token")


def test_roles_and_names_are_checked(events: store.Store) -> None:
    with pytest.raises(InputError, match=r"`role` must be one of \['admin'"):
        events.keys.create("superuser", "x")
    with pytest.raises(InputError, match="`name` must be a non-empty string"):
        events.keys.create("admin", " ")


def test_a_shared_secret_is_created_once(events: store.Store, store_url: str) -> None:
    first = events.keys.secret("session")
    with store.open(store_url) as other:
        assert other.keys.secret("session") == first
    assert events.keys.secret("other") != first
    assert len(first) >= 40
