"""What ``mrf serve`` adds when it is one node of a cluster (``node.homes = true``).

* conference homes (:mod:`focus.homing`): a dial-in claims the home or gets a
  302 to it; the leases of live conferences are renewed;
* the focus's MIKEY TRANSFER_INIT replay cache in the shared database, so a
  replayed INVITE is refused by every node, not only by the one that saw it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from focus.homes import ConferenceHomes
from focus.homing import FocusHoming
from focus.kms.store import MikeyDatabaseReplayCache

if TYPE_CHECKING:
    from mrf.server import Server

logger = logging.getLogger(__name__)


def start_cluster_node(server: Server) -> None:
    """Wire homes and the shared replay cache; raises ``OSError`` without a database."""
    settings = server.settings
    if not settings.node.homes:
        return
    focus = server.focus
    homes = ConferenceHomes(
        server.store.engine, settings.node.name, settings.node_contact, settings.node.lease
    )
    homing = FocusHoming(homes, lambda: {call.conference.name for call in focus.calls})
    try:
        homing.start()
    except SQLAlchemyError as exc:
        raise OSError(f"conference homes: {type(exc).__name__}") from exc
    focus.homing = server.homing = homing
    if focus.mikey is not None:
        focus.mikey.cache = MikeyDatabaseReplayCache(
            server.store.engine, focus.mikey.profile.window, scope=b"focus"
        )
    logger.info(
        "node %s: conference homes on (lease %.0f s, contact %s)",
        settings.node.name, settings.node.lease, settings.node_contact,
    )  # fmt: skip
