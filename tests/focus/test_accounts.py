"""focus.accounts via ConferenceStore: accounts, scrypt, tokens (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from focus.accounts import (
    AccountExists,
    AccountNotFound,
    hash_password,
    token_digest,
    verify_password,
)
from focus.conference import InvalidInput
from focus.store import ConferenceStore


@pytest.fixture
def store(database_url: str) -> Iterator[ConferenceStore]:
    with ConferenceStore(database_url) as opened:
        opened.create_all()
        yield opened


def test_password_hash_is_scrypt_salted_and_verifies() -> None:
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert verify_password("s3cret-pass", first) and verify_password("s3cret-pass", second)
    assert not verify_password("s3cret-pasS", first)
    for broken in ("", "scrypt$1$2", "md5$x$y$z$a$b", "scrypt$x$8$1$AAAA$AAAA"):
        assert not verify_password("s3cret-pass", broken)


def test_accounts_crud_and_authentication(store: ConferenceStore) -> None:
    alice = store.create_account("alice", "password-1")
    admin = store.create_account("root", "password-2", is_admin=True)
    assert (alice.name, alice.is_admin, admin.is_admin) == ("alice", False, True)
    with pytest.raises(AccountExists):
        store.create_account("alice", "password-3")
    with pytest.raises(InvalidInput):
        store.create_account("bad name", "password-3")
    with pytest.raises(InvalidInput):
        store.create_account("carol", "short")
    assert store.authenticate("alice", "password-1") == alice
    assert store.authenticate("alice", "password-2") is None
    assert store.authenticate("nobody", "password-1") is None
    assert [a.name for a in store.list_accounts()] == ["alice", "root"]
    assert store.count_accounts() == 2
    store.set_password("alice", "password-9")
    assert store.authenticate("alice", "password-9") == alice
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM accounts")).scalars().all()
    assert all(h.startswith("scrypt$") and "password" not in h for h in stored)


def test_tokens_are_stored_hashed_and_revocable(store: ConferenceStore) -> None:
    alice = store.create_account("alice", "password-1")
    token = store.create_token("alice")
    assert token.startswith("mrf_") and len(token) == 47
    assert store.account_for_token(token) == alice
    assert store.account_for_token(token + "x") is None
    assert store.account_for_token("not-a-token") is None
    with store.engine.connect() as connection:
        digests = connection.execute(text("SELECT digest FROM api_tokens")).scalars().all()
    assert digests == [token_digest(token)] and token not in digests
    with pytest.raises(AccountNotFound):
        store.create_token("nobody")
    assert store.revoke_tokens("alice") == 1
    assert store.account_for_token(token) is None


def test_first_admin_only_once(store: ConferenceStore) -> None:
    created = store.ensure_first_admin(None)
    assert created is not None
    account, password = created
    assert account.name == "admin" and account.is_admin and len(password) >= 16
    assert store.authenticate("admin", password) == account
    assert store.ensure_first_admin("another-password") is None


def test_conference_queries_on_both_databases(store: ConferenceStore) -> None:
    alice = store.create_account("alice", "password-1")
    created = store.create_conference("retro", [("sip:a@x", "chair"), "sip:b@x"], owner_id=alice.id)
    assert [c.owner_id for c in store.list_conferences(owner_id=alice.id)] == [alice.id]
    assert store.list_conferences(owner_id=alice.id + 1) == []
    assert store.get_conference_by_id(created.id) == created
    changed = store.update_policy("retro", allow_anonymous=True, key_modes=["dtls"])
    assert changed.policy.allow_anonymous and changed.policy.key_modes == ("dtls",)
    assert store.set_participants("retro", ["sip:c@x"]).authorized() == {"sip:c@x": "participant"}
    assert store.count_conferences() == 1
    assert store.delete_conference("retro")
    with store.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM authorized_participants")).scalar()
    assert left == 0


def test_a_disabled_account_cannot_sign_in_nor_use_its_tokens(store: ConferenceStore) -> None:
    store.create_account("ana", "a long password")
    token = store.create_token("ana")
    other = store.create_token("ana")
    store.set_disabled("ana", True)
    assert store.authenticate("ana", "a long password") is None
    assert store.account_for_token(token) is None
    store.set_disabled("ana", False)
    assert store.authenticate("ana", "a long password") is not None
    assert store.account_for_token(token) is not None, "kept while disabled"
    listed = store.list_tokens("ana")
    assert len(listed) == 2 and listed[0][0] < listed[1][0]
    store.create_account("ben", "another password")
    assert not store.revoke_token("ben", listed[0][0]), "not ben's token"
    assert store.revoke_token("ana", listed[0][0])
    assert store.account_for_token(token) is None and store.account_for_token(other) is not None
    assert not store.revoke_token("ana", listed[0][0])
