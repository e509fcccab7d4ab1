"""focus/migrations: Alembic owns the schema; the migrated schema matches the tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from focus.accounts import token_digest
from focus.conference import DEFAULT_KEY_MODES, KEY_MODES
from focus.store import ConferenceStore, _alembic_config, make_engine, migrate
from focus.tables import Account, ApiToken, AuthorizedParticipant, Conference, Invite

TABLES = {"accounts", "api_tokens", "conferences", "authorized_participants", "invites"}
HEAD = "0007"  # the newest revision (0007_cluster: conference homes, shared KMS state)


def _columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {t: {c["name"] for c in inspector.get_columns(t)} for t in TABLES}
    finally:
        engine.dispose()


def test_upgrade_to_head_creates_the_declared_schema(database_url: str) -> None:
    with ConferenceStore(database_url) as store:
        store.create_all()
        with store.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == HEAD
        assert migrate(store.engine) == HEAD, "upgrading again is a no-op"
    declared = {
        table.__tablename__: set(table.model_fields)  # type: ignore[attr-defined]
        for table in (Account, ApiToken, Conference, AuthorizedParticipant, Invite)
    }
    assert _columns(database_url) == declared


def test_a_database_from_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    """The foundation made its tables with create_all: no alembic_version, no api_tokens."""
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    tables = [
        SQLModel.metadata.tables[n] for n in ("accounts", "conferences", "authorized_participants")
    ]
    SQLModel.metadata.create_all(engine, tables=tables)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE accounts DROP COLUMN sip_uri"))  # added by 0005
        connection.execute(text("ALTER TABLE conferences DROP COLUMN locked"))  # added by 0004
        connection.execute(text("ALTER TABLE accounts DROP COLUMN disabled"))  # added by 0004
        connection.execute(
            text(
                "INSERT INTO conferences (name, created_at, updated_at, allow_anonymous, "
                "require_media_security, key_modes, notify_protection) VALUES "
                "('old', '2025-01-01', '2025-01-01', 0, 1, '[\"sdes\"]', 'optional')"
            )
        )
    engine.dispose()
    with ConferenceStore(url) as store:
        store.create_all()
        old = store.get_conference("old")
        assert old is not None and old.policy.key_modes == ("sdes",)
        store.create_account("alice", "password-1")
        assert store.create_token("alice").startswith("mrf_")


def _insert(connection: object, name: str, key_modes: str | None) -> None:
    columns = "name, created_at, updated_at, allow_anonymous, require_media_security, "
    values = f"'{name}', '2025-01-01', '2025-01-01', false, true, "
    if key_modes is not None:
        columns, values = columns + "key_modes, ", values + f"'{key_modes}', "
    connection.execute(  # type: ignore[attr-defined]
        text(f"INSERT INTO conferences ({columns}notify_protection) VALUES ({values}'optional')")
    )


def test_0003_new_conferences_get_every_key_mode_old_ones_keep_theirs(database_url: str) -> None:
    """A database made by revision 0002, with the old default stored, upgraded to 0003."""
    assert DEFAULT_KEY_MODES == KEY_MODES
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0002")
        with engine.begin() as connection:
            _insert(connection, "old", '["sdes", "fingerprint"]')  # the 0002 default
            _insert(connection, "narrow", '["dtls"]')
            connection.execute(text(
                "INSERT INTO authorized_participants (conference_id, uri, role, use_mikey) "
                "SELECT id, 'sip:alice@example.com', 'chair', false FROM conferences"
            ))  # fmt: skip
        assert migrate(engine) == HEAD
        with engine.begin() as connection:
            _insert(connection, "raw", None)  # written without key_modes: the server default
    finally:
        engine.dispose()
    with ConferenceStore(database_url) as store:
        old, narrow, raw = (store.get_conference(n) for n in ("old", "narrow", "raw"))
        assert old is not None and narrow is not None and raw is not None
        assert old.policy.key_modes == ("sdes", "fingerprint"), "a stored list is kept"
        assert narrow.policy.key_modes == ("dtls",)
        assert raw.policy.key_modes == KEY_MODES
        # SQLite rebuilt the table for the new default: nothing cascaded away
        assert old.authorized() == {"sip:alice@example.com": "chair"}
        assert narrow.authorized() == {"sip:alice@example.com": "chair"}
        assert store.create_conference("fresh").policy.key_modes == KEY_MODES
        assert store.delete_conference("old")  # and deleting still cascades
        with store.engine.connect() as connection:
            left = connection.execute(text("SELECT COUNT(*) FROM authorized_participants"))
            assert left.scalar() == 1


def test_0004_conferences_can_be_locked_and_stored_ones_stay_open(database_url: str) -> None:
    """A database at revision 0003 with a conference and an account, upgraded: the
    conference is not locked, the account not disabled."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0003")
        with engine.begin() as connection:
            _insert(connection, "before", '["sdes"]')
            connection.execute(text(
                "INSERT INTO accounts (name, password_hash, is_admin, created_at) "
                "VALUES ('ana', 'x', false, '2025-01-01')"
            ))  # fmt: skip
        assert migrate(engine) == HEAD
    finally:
        engine.dispose()
    with ConferenceStore(database_url) as store:
        before = store.get_conference("before")
        assert before is not None and before.policy.locked is False
        locked = store.update_policy("before", locked=True)
        assert locked.policy.locked is True
        assert store.get_conference("before").policy.locked is True  # type: ignore[union-attr]
        ana = store.get_account("ana")
        assert ana is not None and ana.disabled is False
        assert store.set_disabled("ana", True).disabled is True
        store.set_participants("before", ["sip:bob@example.com"])
        store.create_token("ana")
        with store.engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0003")
        with store.engine.connect() as connection:
            kept = [
                connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
                for table in ("conferences", "authorized_participants", "api_tokens")
            ]
        assert kept == [1, 1, 1], "downgrading 0004 cascades to no child row"


def test_0005_0006_accounts_gain_a_sip_identity_and_invites_come_and_go(
    database_url: str,
) -> None:
    """A 0003 database (an account with a token) upgraded to the head and back to 0003."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0003")
            connection.execute(text(
                "INSERT INTO accounts (name, password_hash, is_admin, created_at) "
                "VALUES ('ana', 'x', false, '2025-01-01')"
            ))  # fmt: skip
            connection.execute(text(
                "INSERT INTO api_tokens (account_id, digest, created_at) "
                f"SELECT id, '{token_digest('mrf_t')}', '2025-01-01' FROM accounts"
            ))  # fmt: skip
        assert migrate(engine) == HEAD
    finally:
        engine.dispose()
    with ConferenceStore(database_url) as store:
        account = store.get_account("ana")
        assert account is not None and account.sip_uri is None
        assert store.account_for_token("mrf_t") == account, "the token survived"
        changed = store.set_sip_uri("ana", "sips:Ana@Example.COM:5061")
        assert changed.sip_uri == "sip:Ana@example.com"
        room = store.create_conference("room", ["sip:Ana@example.com"])
        invite, secret = store.create_invite(room.id, "sip:Ana@example.com", 60)
        opened = store.open_invite(secret)
        assert opened is not None and opened.id == invite.id and opened.opened_at is not None
        with store.engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0003")
        tables = inspect(store.engine).get_table_names()
        columns = {c["name"] for c in inspect(store.engine).get_columns("accounts")}
        assert "invites" not in tables and "sip_uri" not in columns
        with store.engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM accounts")).scalars().all()
            tokens = connection.execute(text("SELECT COUNT(*) FROM api_tokens")).scalar()
        assert names == ["ana"] and tokens == 1, "downgrading kept accounts and tokens"


def test_0007_adds_the_cluster_tables_as_declared(database_url: str) -> None:
    from focus.homes import ConferenceHome
    from focus.kms.store import KmsTicketSecret, KmsUser, MikeyReplay

    with ConferenceStore(database_url) as store:
        store.create_all()
    tables = (ConferenceHome, KmsUser, KmsTicketSecret, MikeyReplay)
    engine = create_engine(database_url)
    try:
        inspector = inspect(engine)
        found = {
            t.__tablename__: {c["name"] for c in inspector.get_columns(t.__tablename__)}
            for t in tables
        }
    finally:
        engine.dispose()
    assert found == {t.__tablename__: set(t.model_fields) for t in tables}
