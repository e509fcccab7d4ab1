"""SIP over WebSocket (RFC 7118): one WebSocket connection as a SIP flow.

The web server (``web.sip_socket``) accepts the upgrade on ``/sip`` with the
subprotocol ``sip`` only after it has decided who the connection is for (the
web session's SIP identity, :class:`SipWebSocketBinding`), then hands every
WebSocket message to :meth:`focus.endpoint.SipEndpoint.websocket_received`.
From there a message takes the same path as one read from UDP, TCP or TLS:
the transaction layer, the focus, the notifier.  What the endpoint sends to
the flow's address is queued on :attr:`SipWebSocketFlow.outbox`, which the
web server's sender task writes out, one SIP message per WebSocket message
(RFC 7118 §5.2: text frames when the message is UTF-8, else binary).

The flow's :class:`~focus.sip.transaction.SipAddress` is ``ws``/``wss`` plus
the client's TCP address: every connection is its own flow, so responses and
in-dialog requests (BYE, NOTIFY) go back over it and nowhere else (the
client's Contact and Via carry ``.invalid`` hosts, RFC 7118 §5.4, that no one
can reach).  An in-dialog request that arrives over another connection is not
from the dialog's flow and gets 403 (``SipDialog.accepts_from``).

Caps: at most ``max_pending_size`` bytes wait in the outbox (a client that
does not read is disconnected, not buffered for); the endpoint holds at most
``max_connections`` WebSocket flows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from focus.sip.transaction import SipAddress

logger = logging.getLogger(__name__)

WEBSOCKET_TRANSPORTS = frozenset({"ws", "wss"})
MAX_PENDING_SIZE = 262144  # bytes queued for one WebSocket client


@dataclass(frozen=True, slots=True)
class SipWebSocketBinding:
    """Who a WebSocket flow belongs to, decided by the web server at the upgrade.

    ``identity`` is the AOR the focus admits (never what From or
    P-Asserted-Identity say); ``conference`` limits the flow to one conference
    (an invite link's); ``invite_id`` names the invite it came from, so that
    revoking the invite can disconnect it; ``account_id`` the signed-in account.
    """

    identity: str
    conference: str | None = None
    invite_id: int | None = None
    account_id: int | None = None


class SipWebSocketFlow:
    """One accepted SIP WebSocket connection; ``remote`` is its flow address."""

    def __init__(
        self,
        remote: SipAddress,
        binding: SipWebSocketBinding,
        *,
        max_pending_size: int = MAX_PENDING_SIZE,
    ) -> None:
        self.remote = remote
        self.binding = binding
        self.max_pending_size = max_pending_size
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.pending_size = 0
        self.closed = False

    @property
    def transport_name(self) -> str:
        return self.remote.transport

    def write(self, data: bytes) -> bool:
        """Queue one SIP message; False (and the flow closes) when over the cap."""
        if self.closed:
            return False
        if self.pending_size + len(data) > self.max_pending_size:
            logger.warning("closing WebSocket flow %s: the client does not read", self.remote)
            self.close()
            return False
        self.pending_size += len(data)
        self.outbox.put_nowait(data)
        return True

    def sent(self, data: bytes) -> None:
        """The web server wrote ``data`` out (frees its share of the cap)."""
        self.pending_size = max(0, self.pending_size - len(data))

    def close(self) -> None:
        """Stop the flow: the sender task closes the WebSocket when it reads ``None``."""
        if self.closed:
            return
        self.closed = True
        self.outbox.put_nowait(None)
