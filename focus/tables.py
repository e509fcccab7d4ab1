"""The SQLModel tables of the conference store (schema owned by the Alembic migrations).

``accounts`` (web/API users), ``api_tokens`` (bearer tokens, stored as SHA-256
digests only), ``conferences`` (name, owner, policy) and
``authorized_participants`` (the per-conference authorized list with roles,
TS 33.328 G.3.1) and ``invites`` (invite links, kept as SHA-256 digests only).
:mod:`focus.store`, :mod:`focus.accounts` and :mod:`focus.invites` query them and
hand out frozen snapshots; nothing else sees a row.  Every change to a table
here needs a new revision in ``focus/migrations/versions``; a test compares the
migrated schema with these declarations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import DateTime, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from focus.conference import DEFAULT_KEY_MODES

# The stored form of the default key modes (migration 0003 made it the column's
# server default too, so a row written without key_modes gets every mode).
DEFAULT_KEY_MODES_JSON = json.dumps(list(DEFAULT_KEY_MODES))


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (every stored time is UTC)."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Account(SQLModel, table=True):
    """A web/API account: a conference creator, or an administrator."""

    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(sa_type=Text)
    is_admin: bool = False
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    sip_uri: str | None = Field(default=None, sa_type=Text)  # who the browser joins as


class ApiToken(SQLModel, table=True):
    """A REST API bearer token; only the SHA-256 digest of the token is kept."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", ondelete="CASCADE", index=True)
    digest: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Conference(SQLModel, table=True):
    """A conference and its policy (``key_modes`` is a JSON list in a text column)."""

    __tablename__ = "conferences"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    owner_id: int | None = Field(default=None, foreign_key="accounts.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    allow_anonymous: bool = False
    require_media_security: bool = True
    key_modes: str = Field(
        default=DEFAULT_KEY_MODES_JSON, sa_type=Text,
        sa_column_kwargs={"server_default": DEFAULT_KEY_MODES_JSON},
    )  # fmt: skip
    notify_protection: str = Field(default="optional", max_length=16)
    chair_uri: str | None = Field(default=None, sa_type=Text)
    locked: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class AuthorizedParticipant(SQLModel, table=True):
    """One entry of a conference's authorized list (``uri`` is a normalised AOR)."""

    __tablename__ = "authorized_participants"
    __table_args__ = (UniqueConstraint("conference_id", "uri", name="uq_participant_uri"),)

    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = Field(foreign_key="conferences.id", ondelete="CASCADE", index=True)
    uri: str = Field(sa_type=Text)
    role: str = Field(default="participant", max_length=16)
    use_mikey: bool = False


class Invite(SQLModel, table=True):
    """An invite link for one identity to one conference; only the token's SHA-256 is kept."""

    __tablename__ = "invites"

    id: int | None = Field(default=None, primary_key=True)
    conference_id: int = Field(foreign_key="conferences.id", ondelete="CASCADE", index=True)
    uri: str = Field(sa_type=Text)
    digest: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    opened_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
