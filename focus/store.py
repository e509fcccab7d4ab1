"""Persistent conference data: SQLModel tables and :class:`ConferenceStore`.

Tables (:mod:`focus.tables`): ``accounts`` (web/API users), ``api_tokens``,
``conferences`` (name, owner, policy) and ``authorized_participants`` (the
per-conference authorized list with roles, TS 33.328 G.3.1).  Queries return the
frozen snapshots of :mod:`focus.conference` and :mod:`focus.accounts` and never
leak sessions or rows.

The schema is owned by the Alembic migrations in ``focus/migrations``:
:func:`migrate` (``ConferenceStore.create_all``) upgrades any database to the
newest revision; a database made before migrations existed (tables, no
``alembic_version``) is stamped with the foundation revision first.

Works on SQLite (a file, or in memory) and on PostgreSQL.  The only
dialect-specific SQL is the SQLite connection set-up: ``journal_mode=WAL`` for a
file, and ``foreign_keys=ON`` so that deleting a conference cascades to its
authorized participants as it does on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, event, func, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, col, create_engine, delete, select

from focus.accounts import AccountExists, AccountInfo, AccountNotFound, AccountQueries
from focus.conference import (
    AuthorizedEntry,
    ConferenceExists,
    ConferenceInfo,
    ConferenceNotFound,
    ConferencePolicy,
    InvalidInput,
    StoreError,
    coerce_participants,
    is_conference_name,
    normalize_aor,
    validate_conference_name,
)
from focus.invites import InviteQueries
from focus.tables import Account, ApiToken, AuthorizedParticipant, Conference, aware, utcnow

__all__ = [
    "Account",
    "AccountExists",
    "AccountInfo",
    "AccountNotFound",
    "ApiToken",
    "AuthorizedEntry",
    "AuthorizedParticipant",
    "Conference",
    "ConferenceExists",
    "ConferenceInfo",
    "ConferenceNotFound",
    "ConferencePolicy",
    "ConferenceStore",
    "InvalidInput",
    "StoreError",
    "normalize_aor",
]

logger = logging.getLogger(__name__)
# Alembic narrates every run at INFO; migrate() logs the one line that matters.
logging.getLogger("alembic").setLevel(logging.WARNING)


def _policy_columns(policy: ConferencePolicy) -> dict[str, Any]:
    return {
        "allow_anonymous": policy.allow_anonymous,
        "require_media_security": policy.require_media_security,
        "key_modes": json.dumps(list(policy.key_modes)),
        "notify_protection": policy.notify_protection,
        "chair_uri": policy.chair_uri,
        "locked": policy.locked,
    }


def _policy_of(row: Conference) -> ConferencePolicy:
    return ConferencePolicy(
        allow_anonymous=row.allow_anonymous,
        require_media_security=row.require_media_security,
        key_modes=tuple(json.loads(row.key_modes)),
        notify_protection=row.notify_protection,
        chair_uri=row.chair_uri,
        locked=row.locked,
    )


def _snapshot(row: Conference, entries: Iterable[AuthorizedParticipant]) -> ConferenceInfo:
    assert row.id is not None
    return ConferenceInfo(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        policy=_policy_of(row),
        participants=tuple(AuthorizedEntry(e.uri, e.role, e.use_mikey) for e in entries),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite files get their directory created."""
    try:
        url = make_url(database_url)
    except SQLAlchemyError as exc:
        raise StoreError(f"invalid database URL {database_url!r}: {exc}") from exc
    if url.get_backend_name() != "sqlite":
        if url.drivername == "postgresql":  # SQLAlchemy's default would be psycopg2
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_pre_ping=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if url.database in (None, "", ":memory:"):
        kwargs["poolclass"] = StaticPool  # one shared in-memory database
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FOUNDATION_REVISION = "0001"


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """``PRAGMA foreign_keys`` outside any transaction (inside one it does nothing).

    SQLite cannot ALTER a column: Alembic's batch mode copies the table and
    drops the old one, and with foreign keys on that DROP would cascade (every
    authorized participant of every conference deleted).  So migrations run
    with them off, and ``PRAGMA foreign_key_check`` must find nothing before
    the upgrade commits.
    """
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


def migrate(engine: Engine) -> str | None:
    """Upgrade the database to the newest schema revision; that revision."""
    from alembic import command  # imported here: after the logger level below is set
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # see _sqlite_foreign_keys
            _sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                config = _alembic_config(connection)
                tables = set(inspect(connection).get_table_names())
                if "alembic_version" not in tables and "conferences" in tables:
                    logger.info(
                        "database predates migrations: stamping revision %s", FOUNDATION_REVISION
                    )
                    command.stamp(config, FOUNDATION_REVISION)
                before = MigrationContext.configure(connection).get_current_revision()
                command.upgrade(config, "head")
                after = MigrationContext.configure(connection).get_current_revision()
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StoreError("the schema upgrade would break references: rolled back")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)
    if after != before:
        logger.info("database schema upgraded from %s to %s", before or "empty", after)
    return after


class ConferenceStore(AccountQueries, InviteQueries):
    """Conference and account CRUD over one database; thread-safe, one session per call."""

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)

    def __enter__(self) -> ConferenceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def create_all(self) -> None:
        """Bring the schema up to date (Alembic ``upgrade head``), keeping every row."""
        migrate(self.engine)

    def count_conferences(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(Conference)).one())

    def create_conference(
        self,
        name: str,
        participants: Iterable[object] = (),
        *,
        allow_anonymous: bool | None = None,
        owner_id: int | None = None,
        policy: ConferencePolicy | None = None,
    ) -> ConferenceInfo:
        """Create ``name`` with its authorized list; :class:`ConferenceExists` if taken.

        ``policy`` defaults to :class:`ConferencePolicy`; ``allow_anonymous``, when
        given, overrides its field of that name.
        """
        validate_conference_name(name)
        entries = coerce_participants(participants)
        policy = policy or ConferencePolicy()
        if allow_anonymous is not None:
            policy = policy.updated(allow_anonymous=allow_anonymous)
        row = Conference(name=name, owner_id=owner_id, **_policy_columns(policy))
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:
                raise self._integrity(exc, name) from None
            assert row.id is not None
            session.add_all(self._rows(row.id, entries))
            session.commit()
            session.refresh(row)
            info = _snapshot(row, self._entries(session, row.id))
        logger.info("conference created: %s (%d authorized)", name, len(entries))
        return info

    def get_conference(self, name: str) -> ConferenceInfo | None:
        """The conference called ``name``, or ``None``.

        A string that cannot be a conference name (e.g. a SIP user part with
        bytes that were not UTF-8, or NUL, which PostgreSQL cannot hold) is not
        looked up at all: no query carries what the database cannot store.
        """
        with Session(self.engine) as session:
            row = self._named(session, name)
            return None if row is None else self._load(session, row)

    def get_conference_by_id(self, conference_id: int) -> ConferenceInfo | None:
        """The conference with that id (the REST API's key), or ``None``."""
        with Session(self.engine) as session:
            row = session.get(Conference, conference_id)
            return None if row is None else self._load(session, row)

    def list_conferences(self, owner_id: int | None = None) -> list[ConferenceInfo]:
        """Every conference (or only ``owner_id``'s), ordered by name."""
        with Session(self.engine) as session:
            query = select(Conference).order_by(col(Conference.name))
            if owner_id is not None:
                query = query.where(Conference.owner_id == owner_id)
            rows = list(session.exec(query))
            ids = [row.id for row in rows]
            everyone = session.exec(
                select(AuthorizedParticipant)
                .where(col(AuthorizedParticipant.conference_id).in_(ids))
                .order_by(col(AuthorizedParticipant.id))
            )
            by_conference: dict[int, list[AuthorizedParticipant]] = {}
            for entry in everyone:
                by_conference.setdefault(entry.conference_id, []).append(entry)
            return [_snapshot(row, by_conference.get(row.id or 0, [])) for row in rows]

    def delete_conference(self, name: str) -> bool:
        """Delete ``name`` and its authorized list; ``False`` when there was none."""
        with Session(self.engine) as session:
            row = self._named(session, name)
            if row is None:
                return False
            session.exec(
                delete(AuthorizedParticipant).where(
                    col(AuthorizedParticipant.conference_id) == row.id
                )
            )
            session.delete(row)
            session.commit()
        logger.info("conference deleted: %s", name)
        return True

    def set_participants(self, name: str, participants: Iterable[object]) -> ConferenceInfo:
        """Replace the authorized list of ``name``."""
        entries = coerce_participants(participants)
        with Session(self.engine) as session:
            row = self._require(session, name)
            assert row.id is not None
            session.exec(
                delete(AuthorizedParticipant).where(
                    col(AuthorizedParticipant.conference_id) == row.id
                )
            )
            session.add_all(self._rows(row.id, entries))
            row.updated_at = utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
            return self._load(session, row)

    def update_policy(self, name: str, **fields: object) -> ConferenceInfo:
        """Change policy fields of ``name`` (validated by :class:`ConferencePolicy`)."""
        with Session(self.engine) as session:
            row = self._require(session, name)
            policy = _policy_of(row).updated(**fields)
            for column, value in _policy_columns(policy).items():
                setattr(row, column, value)
            row.updated_at = utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
            return self._load(session, row)

    # --- helpers ---------------------------------------------------------------------

    @staticmethod
    def _rows(
        conference_id: int, entries: Iterable[AuthorizedEntry]
    ) -> list[AuthorizedParticipant]:
        return [
            AuthorizedParticipant(
                conference_id=conference_id, uri=e.uri, role=e.role, use_mikey=e.use_mikey
            )
            for e in entries
        ]

    @staticmethod
    def _entries(session: Session, conference_id: int) -> list[AuthorizedParticipant]:
        query = (
            select(AuthorizedParticipant)
            .where(AuthorizedParticipant.conference_id == conference_id)
            .order_by(col(AuthorizedParticipant.id))
        )
        return list(session.exec(query))

    def _load(self, session: Session, row: Conference) -> ConferenceInfo:
        assert row.id is not None
        return _snapshot(row, self._entries(session, row.id))

    @staticmethod
    def _require(session: Session, name: str) -> Conference:
        row = ConferenceStore._named(session, name)
        if row is None:
            raise ConferenceNotFound(f"no conference named {name!r}")
        return row

    @staticmethod
    def _named(session: Session, name: str) -> Conference | None:
        """The row called ``name``; a string that cannot be a name is not queried."""
        if not is_conference_name(name):
            return None
        return session.exec(select(Conference).where(Conference.name == name)).first()

    @staticmethod
    def _integrity(exc: IntegrityError, name: str) -> StoreError:
        text = str(exc.orig).lower()
        if "unique" in text or "duplicate" in text:
            return ConferenceExists(f"a conference named {name!r} exists already")
        if "foreign key" in text:
            return InvalidInput("owner_id does not name an existing account")
        return StoreError(f"cannot store conference {name!r}: {exc.orig}")
