"""focus/migrations: Alembic owns the schema; the migrated schema matches the tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from focus.conference import DEFAULT_KEY_MODES, KEY_MODES
from focus.store import ConferenceStore, _alembic_config, make_engine, migrate
from focus.tables import Account, ApiToken, AuthorizedParticipant, Conference

TABLES = {"accounts", "api_tokens", "conferences", "authorized_participants"}


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
            assert (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                == "0004"
            )
        assert migrate(store.engine) == "0004", "upgrading again is a no-op"
    declared = {
        table.__tablename__: set(table.model_fields)  # type: ignore[attr-defined]
        for table in (Account, ApiToken, Conference, AuthorizedParticipant)
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
        assert migrate(engine) == "0004"  # through 0003 (and 0004: nothing to do with keys)
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
        assert migrate(engine) == "0004"
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
