"""The focus's side of conference homes: claim on join, renew while live, redirect otherwise.

:class:`FocusHoming` sits on :class:`focus.service.FocusService` as
``focus.homing``.  For each dial-in the focus asks :meth:`FocusHoming.redirect`:

* no live home, or this node is the home: the node claims (or renews) the
  home and the call is answered here (``None``);
* another node holds a live lease: a ``302 Moved Temporarily`` whose Contact
  is the conference URI on the home's SIP address, so that the proxy in front
  (Kamailio's ``failure_route``, ``docs/scaling.md``) sends the INVITE there.

A background task renews, every third of the lease, the homes of the
conferences that have calls (or were claimed less than a lease ago, for the
call being answered), and releases the others.  On start and on a clean stop
the node gives up every row with its name, so a restarted node never keeps a
home for calls it no longer has.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.exc import SQLAlchemyError

from focus.homes import ConferenceHomes, HomeInfo
from focus.sip.refusal import SipRefusal
from focus.sip.uri import SipUri

logger = logging.getLogger(__name__)


class FocusHoming:
    """Claims and renews this node's conference homes; redirects calls of others' homes."""

    def __init__(
        self,
        homes: ConferenceHomes,
        live_conferences: Callable[[], set[str]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.homes = homes
        self._live = live_conferences
        self._clock = clock
        self._claimed: dict[str, float] = {}  # conference -> when this node last claimed it
        self._held_until: dict[str, float] = {}  # conference -> our lease's expiry, as written
        self._task: asyncio.Task[None] | None = None

    @property
    def node(self) -> str:
        return self.homes.node

    def start(self) -> None:
        """Forget stale homes of this node (a restart holds no calls), then keep leases."""
        released = self.homes.release()
        if released:
            logger.info("node %s: released %d home(s) left from before", self.node, released)
        self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            self.homes.release()
        except SQLAlchemyError as exc:
            logger.warning("node %s: homes not released (%s)", self.node, type(exc).__name__)

    def claim(self, conference: str) -> HomeInfo:
        """Claim (or renew) the home of ``conference`` unless another node holds it; the home.

        Raises ``SQLAlchemyError`` when the database cannot say.
        """
        now = self._clock()
        held_until = self._held_until.get(conference, 0.0)
        if held_until - now > self.homes.lease / 2:  # our lease is young: nobody can take it
            self._claimed[conference] = now
            return HomeInfo(conference, self.node, self.homes.contact, held_until)
        home = self.homes.claim(conference, now)
        if home.node == self.node:
            if conference not in self._claimed:
                logger.info("node %s: now the home of %s", self.node, conference)
            self._claimed[conference] = now
            self._held_until[conference] = home.expires_at
        return home

    def redirect(self, conference: str) -> SipRefusal | None:
        """``None``: answer here (this node is now the home); else the 302 to the home."""
        try:
            home = self.claim(conference)
        except SQLAlchemyError as exc:  # no database, no way to know the home: try later
            logger.warning("[%s] home unknown (%s): 503", conference, type(exc).__name__)
            return SipRefusal(503, headers=(("Retry-After", "2"),))
        if home.node == self.node:
            return None
        logger.info("[%s] homed on %s: redirecting to %s", conference, home.node, home.contact)
        return SipRefusal(
            302, reason="Moved Temporarily",
            headers=(("Contact", f"<{_target(conference, home)}>"),),
        )  # fmt: skip

    def home_of(self, conference: str) -> str | None:
        """The node name of the live home of ``conference``, or ``None``."""
        home = self.homes.live_home(conference, self._clock())
        return home.node if home is not None else None

    def renew(self) -> None:
        """One renewal round (what the background task runs)."""
        now = self._clock()
        live = self._live()
        recent = {c for c, at in self._claimed.items() if now - at < self.homes.lease}
        wanted = live | recent
        held = self.homes.renew(wanted, now)
        for lost in sorted(wanted - held):
            logger.warning("node %s: lost the home of %s (lease taken)", self.node, lost)
        idle = set(self._claimed) - wanted
        if idle:
            self.homes.release(idle)
        self._claimed = {c: at for c, at in self._claimed.items() if c in held}
        for conference in held - set(self._claimed):
            self._claimed[conference] = now
        self._held_until = {c: now + self.homes.lease for c in held}

    async def _renew_forever(self) -> None:
        interval = self.homes.lease / 3
        while True:
            await asyncio.sleep(interval)
            try:
                self.renew()
            except SQLAlchemyError as exc:  # the database is away: the leases run out
                logger.warning("node %s: lease renewal failed (%s)", self.node, type(exc).__name__)


def _target(conference: str, home: HomeInfo) -> str:
    """The conference URI on the home's SIP address (``sip:retro@127.0.0.11:5060``)."""
    return str(replace(SipUri.parse(home.contact), user=conference))
