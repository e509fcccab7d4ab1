"""ICE (RFC 8445) for a participant stream, through aioice, on the stream's own sockets.

The focus answers as a full agent in the controlled role (the offerer
controls and nominates, RFC 8445 §6.1.1; against an ICE-lite offerer we
control).  aioice runs the connectivity checks, the triggered checks, the
nomination bookkeeping and consent freshness (RFC 7675); what differs from a
stock ``aioice.Connection``:

* the host candidates are the stream's RTP socket (component 1) and RTCP
  socket (component 2) on ``media.host``, exactly those ``focus.sdp.ice``
  wrote into the answer (no extra sockets, the port range still holds);
* STUN reaches aioice through the stream's demultiplexer (RFC 7983 §7), so
  RTP, RTCP and DTLS never pass through aioice's queues;
* once a pair is nominated for every component the stream sends RTP and
  RTCP straight to the nominated remote addresses (`RtpStream.set_ice_remote`);
  before that it has no remote and sends nothing.

aioice keeps the nominated pairs in ``Connection._nominated``; this module
reads them there (aioice is pinned in ``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aioice import Candidate, Connection
from aioice.ice import StunProtocol

from focus.sdp.ice import SdpIcePlan, host_candidate

logger = logging.getLogger(__name__)

ICE_TIMEOUT = 20.0  # seconds for the checks to nominate a pair per component


class _RtpStunProtocol(StunProtocol):
    """aioice's STUN endpoint bound to a socket the stream owns (closing is the stream's)."""

    async def close(self) -> None:
        return None


class _RtpIceConnection(Connection):
    """An aioice connection whose host candidates are an `RtpStream`'s sockets."""

    def __init__(self, stream: Any, plan: SdpIcePlan, components: int) -> None:
        super().__init__(
            ice_controlling=plan.remote_lite,
            components=components,
            local_username=plan.local_ufrag,
            local_password=plan.local_pwd,
        )
        self.stream = stream
        self.stun_protocols: dict[int, _RtpStunProtocol] = {}

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        """Host candidate of ``component`` on the stream's socket (RFC 8445 §5.1.1.1)."""
        del addresses, timeout  # no other interfaces, no STUN/TURN servers
        port = self.stream.rtp_port + (component - 1)
        protocol = _RtpStunProtocol(self)
        protocol.connection_made(self.stream.transport(rtcp_port=component == 2))
        sdp = str(host_candidate(component, self.stream.host, port))
        protocol.local_candidate = Candidate.from_sdp(sdp)
        self._protocols.append(protocol)
        self.stun_protocols[component] = protocol
        return [protocol.local_candidate]

    def data_received(self, data: bytes, component: int) -> None:
        """Non-STUN data never reaches aioice (the stream demultiplexes); drop strays."""


class RtpIceAgent:
    """Runs ICE for one stream; ``on_connected`` fires once media may flow."""

    def __init__(
        self,
        stream: Any,
        plan: SdpIcePlan,
        *,
        rtcp_mux: bool = False,
        on_connected: Callable[[], None] | None = None,
        timeout: float = ICE_TIMEOUT,
    ) -> None:
        self.stream = stream
        self.plan = plan
        self.components = 1 if rtcp_mux else min(plan.components, 2)
        self.connection = _RtpIceConnection(stream, plan, self.components)
        self.on_connected = on_connected
        self.timeout = timeout
        self.state = "new"
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        stream.stun_handler = self.stun_received
        stream.add_closer(self.close)

    def same_session(self, plan: SdpIcePlan | None) -> bool:
        """A re-offer without an ICE restart: same credentials on both sides."""
        if plan is None:
            return False
        ours, theirs = self.plan, plan
        return (ours.remote_ufrag, ours.remote_pwd, ours.local_ufrag, ours.local_pwd) == (
            theirs.remote_ufrag, theirs.remote_pwd, theirs.local_ufrag, theirs.local_pwd,
        )  # fmt: skip

    def start(self) -> None:
        self.state = "checking"
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stun_received(self, data: bytes, addr: tuple[str, int], component: int) -> None:
        protocol = self.connection.stun_protocols.get(component)
        if protocol is not None and self.state != "closed":
            protocol.datagram_received(data, addr)

    async def _run(self) -> None:
        connection = self.connection
        await connection.gather_candidates()
        connection.remote_username = self.plan.remote_ufrag
        connection.remote_password = self.plan.remote_pwd
        for candidate in self.plan.remote_candidates:
            if candidate.component <= self.components and candidate.type != "prflx":
                await connection.add_remote_candidate(Candidate.from_sdp(str(candidate)))
        await connection.add_remote_candidate(None)  # no trickling: the offer had them all
        # (peer-reflexive ones, e.g. in an updated offer, are learnt from the checks, §7.3.1.3)
        try:
            await asyncio.wait_for(connection.connect(), self.timeout)
        except (ConnectionError, TimeoutError) as exc:
            self.state = "failed"
            logger.warning("[%s] ICE failed: %s", self.stream.label, exc or "timeout")
            return
        nominated = connection._nominated  # aioice: component -> nominated CandidatePair
        rtp = nominated[1].remote_addr
        rtcp = nominated[2].remote_addr if 2 in nominated else rtp
        self.stream.set_ice_remote(rtp, rtcp)
        self.state = "connected"
        logger.info(
            "[%s] ICE connected: RTP to %s:%d, RTCP to %s:%d", self.stream.label, *rtp, *rtcp
        )
        if self.on_connected is not None:
            self.on_connected()

    def close(self) -> None:
        """Stop checks and consent freshness; the stream closes the sockets itself."""
        if self.state == "closed":
            return
        self.state = "closed"
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.stream.stun_handler = None
        self._closing = asyncio.get_running_loop().create_task(self.connection.close())


__all__ = ["ICE_TIMEOUT", "RtpIceAgent"]
