"""Invite links: one authorized identity may join one conference from a browser.

A chair creates an invite for a URI that is on the conference's authorized
list; the token (256 random bits, ``inv_`` + 43 URL-safe characters) is
returned once and only its SHA-256 digest is stored (like the bearer tokens in
:mod:`focus.accounts`: a random token cannot be brute-forced, so a fast hash
lets each lookup take microseconds).  An invite is *usable* while it is
neither revoked nor expired; opening it (``/join/<token>``) records when.

:class:`InviteQueries` is mixed into :class:`focus.store.ConferenceStore` and
hands out frozen :class:`InviteInfo` snapshots (never the digest).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from focus.conference import InvalidInput, StoreError, normalize_aor
from focus.tables import AuthorizedParticipant, Conference, Invite, aware, utcnow

INVITE_PREFIX = "inv_"
MAX_INVITE_LIFETIME = 30 * 24 * 3600  # seconds
DEFAULT_INVITE_LIFETIME = 24 * 3600


class InviteNotFound(StoreError, LookupError):
    """No such invite for that conference."""


@dataclass(frozen=True, slots=True)
class InviteInfo:
    """Snapshot of one invite (never its token or digest)."""

    id: int
    conference_id: int
    uri: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    opened_at: datetime | None

    def state(self, now: datetime) -> str:
        """``revoked``, ``expired``, ``opened`` or ``unused``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "opened" if self.opened_at is not None else "unused"

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def to_json(self, now: datetime) -> dict[str, object]:
        return {
            "id": self.id, "uri": self.uri, "state": self.state(now),
            "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "opened_at": None if self.opened_at is None else self.opened_at.isoformat(),
        }  # fmt: skip


def invite_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def validate_lifetime(value: object) -> int:
    """Seconds an invite stays valid: an integer from 60 to 30 days."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("expires_in must be an integer number of seconds")
    if not 60 <= value <= MAX_INVITE_LIFETIME:
        raise InvalidInput(f"expires_in must be between 60 and {MAX_INVITE_LIFETIME} seconds")
    return value


def _info(row: Invite) -> InviteInfo:
    assert row.id is not None
    return InviteInfo(
        row.id, row.conference_id, row.uri, aware(row.created_at), aware(row.expires_at),
        None if row.revoked_at is None else aware(row.revoked_at),
        None if row.opened_at is None else aware(row.opened_at),
    )  # fmt: skip


class InviteQueries:
    """Invite queries (mixed into :class:`focus.store.ConferenceStore`)."""

    engine: Engine

    def create_invite(
        self, conference_id: int, uri: str, expires_in: int = DEFAULT_INVITE_LIFETIME
    ) -> tuple[InviteInfo, str]:
        """A new invite and its token (shown once); the URI must be authorized."""
        aor = normalize_aor(uri)
        lifetime = validate_lifetime(expires_in)
        with Session(self.engine) as session:
            conference = session.get(Conference, conference_id)
            if conference is None:
                raise InviteNotFound("no such conference")
            listed = session.exec(
                select(AuthorizedParticipant).where(
                    AuthorizedParticipant.conference_id == conference_id,
                    AuthorizedParticipant.uri == aor,
                )
            ).first()
            if listed is None:
                raise InvalidInput(f"{aor} is not on the conference's authorized list")
            token = INVITE_PREFIX + secrets.token_urlsafe(32)
            row = Invite(
                conference_id=conference_id, uri=aor, digest=invite_digest(token),
                expires_at=utcnow() + timedelta(seconds=lifetime),
            )  # fmt: skip
            session.add(row)
            session.commit()
            session.refresh(row)
            return _info(row), token

    def list_invites(self, conference_id: int) -> list[InviteInfo]:
        with Session(self.engine) as session:
            query = select(Invite).where(Invite.conference_id == conference_id)
            return [_info(r) for r in session.exec(query.order_by(col(Invite.id)))]

    def get_invite(self, invite_id: int) -> InviteInfo | None:
        with Session(self.engine) as session:
            row = session.get(Invite, invite_id)
            return None if row is None else _info(row)

    def open_invite(self, token: str) -> InviteInfo | None:
        """The usable invite of ``token`` (its first opening is recorded), else ``None``."""
        if not token.startswith(INVITE_PREFIX) or len(token) > 128:
            return None
        with Session(self.engine) as session:
            row = session.exec(select(Invite).where(Invite.digest == invite_digest(token))).first()
            if row is None or not _info(row).usable(utcnow()):
                return None
            if row.opened_at is None:
                row.opened_at = utcnow()
                session.add(row)
                session.commit()
                session.refresh(row)
            return _info(row)

    def revoke_invite(self, conference_id: int, invite_id: int) -> InviteInfo:
        """Revoke an invite of that conference (revoking twice keeps the first time)."""
        with Session(self.engine) as session:
            row = session.get(Invite, invite_id)
            if row is None or row.conference_id != conference_id:
                raise InviteNotFound("no such invite")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                session.add(row)
                session.commit()
                session.refresh(row)
            return _info(row)
