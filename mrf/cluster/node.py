"""What ``mrf serve`` adds when it is one node of a cluster (``node.homes = true``).

* conference homes (:mod:`focus.homing`): a dial-in claims the home or gets a
  302 to it; the leases of live conferences are renewed;
* the focus's MIKEY TRANSFER_INIT replay cache in the shared database, so a
  replayed INVITE is refused by every node, not only by the one that saw it;
* on PostgreSQL the bus (:mod:`mrf.cluster.bus`): the web and API of any node
  forward roster reads, dial-out and mute to the conference's home.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from focus.homes import ConferenceHomes
from focus.homing import FocusHoming
from focus.kms.store import MikeyDatabaseReplayCache
from mrf.cluster.bus import ClusterBus

if TYPE_CHECKING:
    from focus.service import FocusService
    from mrf.server import Server

logger = logging.getLogger(__name__)


def _live(focus: FocusService) -> set[str]:
    """Conferences with calls here: answered, or dial-outs still ringing."""
    names = {call.conference.name for call in focus.calls}
    if focus.dialout is not None:
        names |= {call.conference.name for call in focus.dialout.pending.values()}
    return names


async def start_cluster_node(server: Server) -> None:
    """Wire homes, the shared replay cache and (on PostgreSQL) the bus.

    Raises ``OSError`` when the database cannot be reached.
    """
    settings = server.settings
    if not settings.node.homes:
        return
    focus = server.focus
    homes = ConferenceHomes(
        server.store.engine, settings.node.name, settings.node_contact, settings.node.lease
    )
    homing = FocusHoming(homes, lambda: _live(focus))
    try:
        homing.start()
    except SQLAlchemyError as exc:
        raise OSError(f"conference homes: {type(exc).__name__}") from exc
    focus.homing = server.homing = homing
    if focus.mikey is not None:
        focus.mikey.cache = MikeyDatabaseReplayCache(
            server.store.engine, focus.mikey.profile.window, scope=b"focus"
        )
    url = server.store.engine.url
    if url.get_backend_name() == "postgresql":  # LISTEN/NOTIFY: PostgreSQL only
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        bus = ClusterBus(conninfo, settings.node.name, focus)
        try:
            await bus.start()
        except psycopg.Error as exc:
            raise OSError(f"cluster bus: {type(exc).__name__}") from exc
        server.bus = bus
    else:
        logger.warning("node %s: no bus between nodes on %s", settings.node.name,
                       url.get_backend_name())  # fmt: skip
    logger.info(
        "node %s: conference homes on (lease %.0f s, contact %s)",
        settings.node.name, settings.node.lease, settings.node_contact,
    )  # fmt: skip
