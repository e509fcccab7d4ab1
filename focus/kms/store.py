"""KMS state in a database, for several nodes sharing one KMS (``kms.database_url``).

One ``mrf serve`` keeps its KMS keys in ``<data_dir>/kms/keys.json``
(:mod:`focus.kms.keys`).  Nodes of a cluster (docs/scaling.md) each run the
embedded KMS; with ``kms.database_url`` set they all read the same tables:

* ``kms_users``: enrolled identities and their pre-shared keys (hex);
* ``kms_ticket_secrets``: the secrets that seal tickets (the highest id is
  the current one; the first node to start makes it), so a ticket issued by
  one node's KMS opens on any other;
* ``mikey_replay``: :class:`MikeyDatabaseReplayCache`, digests of accepted
  MIKEY messages with their expiry, so a message accepted by one node is a
  replay for every node.  The focus's TRANSFER_INIT cache uses it too.

The tables hold keys in clear, as the keys file does: whoever may read this
database is inside the KMS's trust domain.  Point ``kms.database_url`` at a
database of its own (another database of the same PostgreSQL server) to keep
that domain apart from the conference data.  Keys are never logged.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Mapping

from sqlalchemy import Engine, Float, Text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, func, select, update

from focus.kms.keys import SECRET_LENGTH, USER_KEY_LENGTH
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode
from focus.mikey.timestamp import MikeyReplayCache


class KmsUser(SQLModel, table=True):
    """An enrolled KMS user (``identity`` as the MIKEY ID data, UTF-8)."""

    __tablename__ = "kms_users"

    identity: str = Field(max_length=255, primary_key=True)
    key: str = Field(max_length=128)  # hex


class KmsTicketSecret(SQLModel, table=True):
    """A ticket-sealing secret; the highest ``id`` seals new tickets."""

    __tablename__ = "kms_ticket_secrets"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    secret: str = Field(max_length=128)  # hex


class MikeyReplay(SQLModel, table=True):
    """The digest of an accepted MIKEY message, refused again until ``expires_at``."""

    __tablename__ = "mikey_replay"

    digest: str = Field(max_length=64, primary_key=True, sa_type=Text)
    expires_at: float = Field(sa_type=Float, index=True)


class _SecretsView(Mapping[int, bytes]):
    """``{id: secret}`` read from the table on each look-up (a secret added elsewhere counts)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _all(self) -> dict[int, bytes]:
        with Session(self._engine) as session:
            rows = session.exec(select(KmsTicketSecret)).all()
            return {row.id: bytes.fromhex(row.secret) for row in rows}

    def __getitem__(self, key: int) -> bytes:
        with Session(self._engine) as session:
            row = session.get(KmsTicketSecret, key)
            if row is None:
                raise KeyError(key)
            return bytes.fromhex(row.secret)

    def __iter__(self) -> Iterator[int]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class KmsDatabaseKeys:
    """The :class:`focus.kms.keys.KmsKeys` interface over the shared tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ticket_secrets: Mapping[int, bytes] = _SecretsView(engine)
        self.current_secret = self._current_or_first()
        self.path = engine.url.render_as_string(hide_password=True)  # for the start-up log

    def _current_or_first(self) -> int:
        with Session(self.engine) as session:
            current = session.exec(select(func.max(KmsTicketSecret.id))).one()
            if current is not None:
                return int(current)
            session.add(KmsTicketSecret(id=1, secret=secrets.token_hex(SECRET_LENGTH)))
            try:
                session.commit()
            except IntegrityError:  # another node made it at the same moment: use theirs
                session.rollback()
            return 1

    def enroll(self, identity: str) -> bytes:
        """A fresh key for ``identity`` (replacing any previous one)."""
        key = secrets.token_bytes(USER_KEY_LENGTH)
        with Session(self.engine) as session:
            row = session.get(KmsUser, identity)
            if row is None:
                session.add(KmsUser(identity=identity, key=key.hex()))
            else:
                row.key = key.hex()
            session.commit()
        return key

    def enroll_once(self, identity: str) -> bytes:
        """The key of ``identity``, enrolling it if no node has yet (races keep one key)."""
        existing = self.user_key(identity.encode())
        if existing is not None:
            return existing
        key = secrets.token_bytes(USER_KEY_LENGTH)
        with Session(self.engine) as session:
            session.add(KmsUser(identity=identity, key=key.hex()))
            try:
                session.commit()
                return key
            except IntegrityError:
                session.rollback()
        stored = self.user_key(identity.encode())
        assert stored is not None
        return stored

    def user_key(self, identity: bytes) -> bytes | None:
        try:
            name = identity.decode("utf-8")
        except UnicodeDecodeError:
            return None
        with Session(self.engine) as session:
            row = session.get(KmsUser, name)
            return bytes.fromhex(row.key) if row is not None else None


class MikeyDatabaseReplayCache(MikeyReplayCache):
    """:class:`focus.mikey.timestamp.MikeyReplayCache` shared through a table.

    ``check_and_add`` inserts the message's digest; the primary key refuses a
    second insert from any node.  An expired digest is taken over by an
    ``UPDATE ... WHERE expires_at <= now``; expired rows are swept now and then.
    ``scope`` keeps the digests of different users of one table apart.
    """

    SWEEP_EVERY = 256  # inserts between two deletes of expired rows

    def __init__(self, engine: Engine, window: float = 300.0, *, scope: bytes = b"kms") -> None:
        super().__init__(window)
        self.engine = engine
        self.scope = scope
        self._inserts = 0

    def check_and_add(self, now: float, *parts: bytes) -> None:
        """Record a message; raise ``MikeyRemoteError(INVALID_TS)`` if any node saw it."""
        digest = hashlib.sha256(
            b"".join(len(p).to_bytes(4) + p for p in (self.scope, *parts))
        ).hexdigest()
        expires = now + 2 * self.window
        with Session(self.engine) as session:
            session.add(MikeyReplay(digest=digest, expires_at=expires))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                if not self._take_expired(session, digest, now, expires):
                    raise MikeyRemoteError(
                        "replayed MIKEY message", MikeyErrorCode.INVALID_TS
                    ) from None
        self._inserts += 1
        if self._inserts % self.SWEEP_EVERY == 0:
            self.sweep(now)

    @staticmethod
    def _take_expired(session: Session, digest: str, now: float, expires: float) -> bool:
        result = session.execute(
            update(MikeyReplay)
            .where(col(MikeyReplay.digest) == digest)
            .where(col(MikeyReplay.expires_at) <= now)
            .values(expires_at=expires)
        )
        session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def sweep(self, now: float) -> int:
        """Delete expired digests; how many."""
        with Session(self.engine) as session:
            result = session.execute(delete(MikeyReplay).where(col(MikeyReplay.expires_at) <= now))
            session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(MikeyReplay)).one())
