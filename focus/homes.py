"""Conference homes: which node of a cluster runs a live conference (docs/scaling.md).

A conference is *homed* on one node while it is live: one row of
``conference_homes`` (conference name, node name, the node's SIP contact, lease
expiry).  The first join claims it; the home renews the lease while it has
calls; a node that stops renewing (killed, cut off from the database) loses
its homes when the lease runs out, and the next join on any node claims the
conference again.  One conference is therefore one mixer, one MSRP switch, one
floor server and one notifier, on its home.

The claim is one statement that the database serialises: an ``INSERT`` of a
row that is not there yet, else an ``UPDATE ... WHERE node = me OR expires_at
< now`` of the row that is.  On PostgreSQL (READ COMMITTED) a second claimer's
``UPDATE`` waits for the first's row lock and then re-checks its ``WHERE``
against the row the first wrote, so only one of them gets ``rowcount == 1``;
SQLite serialises writers on the database lock.  Two racing ``INSERT``\\ s
collide on the primary key and the loser falls through to the ``UPDATE``.

:class:`ConferenceHomes` is the query side (no clock: ``now`` is passed in, a
Unix time); :class:`focus.homing.FocusHoming` is the asyncio service on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine, Text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, select, update


class ConferenceHome(SQLModel, table=True):
    """The live home of one conference (no row: not live anywhere)."""

    __tablename__ = "conference_homes"

    conference: str = Field(max_length=64, primary_key=True)
    node: str = Field(max_length=64, index=True)
    contact: str = Field(sa_type=Text)  # the node's SIP URI, e.g. sip:127.0.0.11:5060
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class HomeInfo:
    """A snapshot of one home."""

    conference: str
    node: str
    contact: str
    expires_at: float  # Unix time

    def live(self, now: float) -> bool:
        return self.expires_at > now


def _time(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def _unix(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class ConferenceHomes:
    """Claims, renewals and look-ups of ``conference_homes`` for one node."""

    def __init__(self, engine: Engine, node: str, contact: str, lease: float) -> None:
        self.engine = engine
        self.node = node
        self.contact = contact
        self.lease = lease

    def claim(self, conference: str, now: float) -> HomeInfo:
        """Make this node the home unless another node's lease is live; the home either way."""
        expires = _time(now + self.lease)
        with Session(self.engine) as session:
            session.add(ConferenceHome(
                conference=conference, node=self.node, contact=self.contact, expires_at=expires,
            ))  # fmt: skip
            try:
                session.commit()
                return HomeInfo(conference, self.node, self.contact, now + self.lease)
            except IntegrityError:
                session.rollback()
        with Session(self.engine) as session:
            taken = session.execute(
                update(ConferenceHome)
                .where(col(ConferenceHome.conference) == conference)
                .where(
                    (col(ConferenceHome.node) == self.node)
                    | (col(ConferenceHome.expires_at) < _time(now))
                )
                .values(node=self.node, contact=self.contact, expires_at=expires)
            )
            session.commit()
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return HomeInfo(conference, self.node, self.contact, now + self.lease)
        home = self.get(conference)
        if home is None:  # released between our two statements: try once more
            return self.claim(conference, now)
        return home

    def get(self, conference: str) -> HomeInfo | None:
        """The stored home of ``conference`` (possibly expired), or ``None``."""
        with Session(self.engine) as session:
            row = session.get(ConferenceHome, conference)
            if row is None:
                return None
            return HomeInfo(row.conference, row.node, row.contact, _unix(row.expires_at))

    def live_home(self, conference: str, now: float) -> HomeInfo | None:
        home = self.get(conference)
        return home if home is not None and home.live(now) else None

    def renew(self, conferences: set[str], now: float) -> set[str]:
        """Extend the leases of those of ``conferences`` this node still holds; those."""
        if not conferences:
            return set()
        with Session(self.engine) as session:
            session.execute(
                update(ConferenceHome)
                .where(col(ConferenceHome.node) == self.node)
                .where(col(ConferenceHome.conference).in_(sorted(conferences)))
                .values(expires_at=_time(now + self.lease))
            )
            session.commit()
            held = session.exec(
                select(ConferenceHome.conference)
                .where(col(ConferenceHome.node) == self.node)
                .where(col(ConferenceHome.conference).in_(sorted(conferences)))
            ).all()
        return set(held)

    def release(self, conferences: set[str] | None = None) -> int:
        """Give up ``conferences`` (all of this node's homes when ``None``); rows removed."""
        statement = delete(ConferenceHome).where(col(ConferenceHome.node) == self.node)
        if conferences is not None:
            if not conferences:
                return 0
            statement = statement.where(col(ConferenceHome.conference).in_(sorted(conferences)))
        with Session(self.engine) as session:
            result = session.execute(statement)
            session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]
