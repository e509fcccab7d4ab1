"""focus/migrations: Alembic owns the schema; the migrated schema matches the tables."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from focus.store import ConferenceStore, migrate
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
                == "0002"
            )
        assert migrate(store.engine) == "0002", "upgrading again is a no-op"
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
