"""Floor control of the focus: BFCP over TLS with SDP fingerprints (RFC 8855 §9, RFC 8856).

:class:`FloorControl` implements :class:`focus.call.FloorService`.  When a call
with an accepted BFCP line is answered, :meth:`FloorControl.open` registers
the participant with the sans-I/O :class:`~mrf.bfcp.server.BfcpFloorServer`
(the conference gets a random Conference ID and its floors, floor 1 bound to
the audio line; the participant a User ID) and the focus writes ``a=confid``,
``a=userid``, ``a=floorid`` and our fingerprint into the answer.  One TLS
listener (``bfcp.port``) serves every participant:

1. the TLS handshake (:mod:`mrf.stream_service`, shared with MSRP) completes
   only when the client's certificate matches the SDP ``a=fingerprint`` of a
   participant still waiting for its connection; otherwise the connection is
   closed before a BFCP byte is read (no BFCP answer at all);
2. the first message binds the connection to its Conference ID and User ID:
   unknown IDs get Error 1 / 2, a certificate that is not that participant's
   gets Error 5, and every later message carrying other IDs gets Error 5
   and changes nothing (RFC 8855 §9: the User ID must be the one authorised
   for the TLS connection);
3. requests go to the floor server; its answers and notifications go to the
   connections bound to their (Conference ID, User ID).

A participant who leaves (``close``, or a ``ParticipantLeft`` event) loses its
floor requests and granted floors.  When the offer is ``a=setup:passive`` the
focus connects (TLS client) to the offer's address.

**TLS-PSK sessions** (MIKEY-TICKET, TS 33.328 Annex H; ``plan.psk`` set): the
PSK identity is empty (Annex H.2), so a shared listener could not tell whose
key to use.  Such a session gets its own listener on an ephemeral port (the
answer's m-line port, no fingerprint), served by
:class:`mrf.stream_service.SecureStreamService` with that session's TEK; the
connection is bound to that session before its first BFCP byte (a handshake
with another key fails) and its first message must carry the session's
Conference ID and User ID (Error 5 otherwise).  With ``a=setup:passive`` in
the offer the focus connects as TLS-PSK client.

Sockets, TLS and timers are the shared secure-stream layer's
(:mod:`mrf.stream_service`, :mod:`mrf.stream`): this module brings only the
BFCP core per connection and the floor control server that handles its events.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from focus.call import FocusCall
from focus.events import FocusEvent, ParticipantLeft
from focus.sdp.attributes import SdpFingerprint, fingerprints_match
from focus.sdp.bfcp import CONFERENCE_AUDIO_LABEL, SdpBfcpLocal, SdpBfcpPolicy
from focus.sdp.offer_answer import SdpStreamPlan
from focus.service import FocusService
from mrf.bfcp.codes import BfcpErrorCode as E
from mrf.bfcp.codes import BfcpRequestStatus
from mrf.bfcp.connection import BfcpConnection, BfcpRole, error_message
from mrf.bfcp.events import (
    BfcpConnectionFailed,
    BfcpEvent,
    BfcpMessageRefused,
    BfcpRequestReceived,
)
from mrf.bfcp.floor import MAX_FLOORS, BfcpFloorConfig
from mrf.bfcp.message import BfcpMessage
from mrf.bfcp.server import BfcpFloorServer, BfcpOutgoing
from mrf.connection_cap import SourceCap
from mrf.stream import ByteStream, StreamDriver
from mrf.stream_service import SecureStreamService
from mrf.tls import certificate_der

logger = logging.getLogger(__name__)

__all__ = ["FloorControl", "FloorSession", "start_floor_control"]

DEFAULT_FLOORS = (1,)  # one floor per conference, bound to the audio stream


@dataclass(slots=True)
class FloorSession:
    """One participant's BFCP user at the focus."""

    call_id: str
    conference_id: int
    user_id: int
    identity: str
    fingerprints: tuple[SdpFingerprint, ...]
    local: SdpBfcpLocal
    link: FloorLink | None = None
    psk: bool = False  # TLS-PSK: this session has its own listener

    def certificate_matches(self, der: bytes) -> bool:
        """RFC 8122 §5, the one rule of :func:`focus.sdp.attributes.fingerprints_match`."""
        return fingerprints_match(der, self.fingerprints)

    @property
    def key(self) -> tuple[int, int]:
        return self.conference_id, self.user_id


class FloorLink:
    """One connection carrying BFCP: a BfcpConnection run by a :class:`StreamDriver`."""

    def __init__(self, control: FloorControl, psk_session: FloorSession | None = None) -> None:
        self.control = control
        self.bfcp = BfcpConnection(BfcpRole.SERVER)
        self.driver: StreamDriver[BfcpEvent] = StreamDriver(self.bfcp, self)
        self.session: FloorSession | None = None
        self.psk_session = psk_session  # a TLS-PSK link serves this session only

    @property
    def channel(self) -> ByteStream | None:
        return self.driver.channel

    # -- StreamHandler ---------------------------------------------------------------

    def stream_open(self, driver: StreamDriver[BfcpEvent]) -> None:
        channel = driver.channel
        assert channel is not None
        logger.info(
            "BFCP TLS from %s: %s %s", channel.peer_address, channel.version, channel.cipher
        )

    def stream_events(self, driver: StreamDriver[BfcpEvent]) -> None:
        self.control.pump(self)

    def stream_closed(self, driver: StreamDriver[BfcpEvent], reason: str | None) -> None:
        self.control.unbind(self)

    def flush(self) -> None:
        self.driver.flush()

    def close(self) -> None:
        self.driver.close()


@dataclass(slots=True)
class FloorControl:
    """The focus's BFCP listener and floor control server (:class:`focus.call.FloorService`)."""

    host: str
    cert: Path
    key: Path
    fingerprint: SdpFingerprint
    policy: SdpBfcpPolicy = field(default_factory=SdpBfcpPolicy)
    keylog_filename: Path | None = None
    floor_ids: tuple[int, ...] = DEFAULT_FLOORS
    server: BfcpFloorServer = field(default_factory=lambda: BfcpFloorServer(BfcpFloorConfig()))
    port: int = 0
    sessions: dict[tuple[int, int], FloorSession] = field(default_factory=dict)
    source_cap: SourceCap = field(default_factory=SourceCap)  # connections per address
    streams: SecureStreamService | None = None  # sockets and TLS: made by listen()
    _unsubscribe: Callable[[], None] | None = None
    _floor_listeners: list[Callable[[], None]] = field(default_factory=list)
    _offered: dict[str, SdpBfcpLocal] = field(default_factory=dict)  # dial-out, by call ID

    def on_floor_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after floor requests may have changed; returns an unsubscriber."""
        self._floor_listeners.append(listener)
        return lambda: self._floor_listeners.remove(listener)

    def floor_holders(self, conference: str) -> frozenset[str]:
        """Call-IDs of the beneficiaries of granted requests in ``conference`` (by name)."""
        state = self.server.find_conference(conference)
        if state is None:
            return frozenset()
        return frozenset(
            session.call_id
            for request in state.requests.values()
            if request.status is BfcpRequestStatus.GRANTED
            and (session := self.sessions.get((state.conference_id, request.beneficiary)))
        )

    def floors(self, conference: str) -> list[dict[str, object]]:
        """Per floor of ``conference`` (by name): who holds it, who waits (queue order).

        ``{"floor_id", "holder", "queue": [{"request_id", "uri", "status"}]}``; a
        holder or requester is its participant's identity (``None`` if it left)."""
        state = self.server.find_conference(conference)
        if state is None:
            return []

        def uri(user_id: int) -> str | None:
            session = self.sessions.get((state.conference_id, user_id))
            return session.identity if session is not None else None

        waiting = [r for r in state.requests.values() if r.status is BfcpRequestStatus.PENDING]
        waiting += state.queue()
        return [
            {
                "floor_id": floor_id,
                "holder": next((uri(r.beneficiary) for r in state.holders(floor_id)), None),
                "queue": [
                    {
                        "request_id": r.request_id,
                        "uri": uri(r.beneficiary),
                        "status": "pending" if r.status is BfcpRequestStatus.PENDING else "queued",
                    }
                    for r in waiting
                    if floor_id in r.floors
                ],  # fmt: skip
            }
            for floor_id in sorted(state.floors)
        ]

    def decide(self, conference: str, floor_id: int, request_id: int, grant: bool) -> bool:
        """Grant (head of the queue) or deny a waiting request, as its chair (the web
        control room); False when ``conference`` has no such waiting request."""
        state = self.server.find_conference(conference)
        if state is None:
            return False
        request = state.requests.get(request_id)
        if request is None or floor_id not in request.floors:
            return False
        if request.status not in (BfcpRequestStatus.PENDING, BfcpRequestStatus.ACCEPTED):
            return False
        decision = BfcpRequestStatus.GRANTED if grant else BfcpRequestStatus.DENIED
        self.deliver(self.server.decide(state.conference_id, request_id, decision,
                                        "decided by the chair (web)"))  # fmt: skip
        return True

    async def listen(self, port: int) -> int:
        """Start the TLS listener; returns the bound port."""
        self.streams = streams = SecureStreamService.with_certificate(
            "BFCP", self.host, self.cert, self.key, source_cap=self.source_cap,
            keylog_filename=self.keylog_filename,
        )  # fmt: skip
        self.port = await streams.listen(port, lambda: FloorLink(self).driver, self._any_waiting)
        return self.port

    def attach(self, focus: FocusService) -> None:
        """Serve ``focus``: its BFCP lines, and release on ``ParticipantLeft``."""
        focus.floor = self
        self._unsubscribe = focus.subscribe(self._on_focus_event)

    def _on_focus_event(self, event: FocusEvent) -> None:
        if isinstance(event, ParticipantLeft):
            self._drop_call(event.call_id)

    def _any_waiting(self, der: bytes) -> bool:
        """Before any BFCP byte: the certificate must belong to a participant of ours."""
        return any(s.certificate_matches(der) for s in self.sessions.values() if s.link is None)

    async def close_all(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for session in list(self.sessions.values()):
            self._drop(session)
        if self.streams is not None:
            await self.streams.close()

    # -- FloorService ---------------------------------------------------------------

    def offer(self, call: FocusCall, label: str) -> SdpBfcpLocal:
        """Our side of a dial-out's BFCP line before the answer: the server's offer
        carries confid, userid and floorid (RFC 8856 §10.1); :meth:`open` keeps them."""
        conference_id, user_id = self._add_user(call)
        floors = tuple((f, label) for f in self.floor_ids)
        local = SdpBfcpLocal(self.host, self.port, conference_id, user_id, floors, self.fingerprint)
        self._offered[call.call_id] = local
        return local

    def _add_user(self, call: FocusCall) -> tuple[int, int]:
        name = call.conference.name
        conference = self.server.find_conference(name)
        floors = dict.fromkeys(self.floor_ids, CONFERENCE_AUDIO_LABEL)
        conference_id = (
            conference.conference_id
            if conference is not None
            else self.server.add_conference(name, floors)
        )
        chair = call.role == "chair"
        return conference_id, self.server.add_user(conference_id, call.participant, chair=chair)

    def open(self, call: FocusCall, plan: SdpStreamPlan) -> SdpBfcpLocal:
        assert plan.bfcp is not None and self.streams is not None, "listen() first"
        existing = next((s for s in self.sessions.values() if s.call_id == call.call_id), None)
        if existing is not None:  # re-INVITE: same user, new fingerprints
            existing.fingerprints = plan.bfcp.remote_fingerprints
            return existing.local
        offered = self._offered.pop(call.call_id, None)
        if offered is not None:  # dial-out: the user of our offer
            conference_id, user_id, floors = offered.conference_id, offered.user_id, offered.floors
        else:
            conference_id, user_id = self._add_user(call)
            floors = tuple((f, plan.bfcp.label) for f in self.floor_ids)
        local = SdpBfcpLocal(
            self.host, self.port, conference_id, user_id, floors, self.fingerprint,
            secure=plan.bfcp.secure,
        )  # fmt: skip
        session = FloorSession(
            call.call_id, conference_id, user_id, call.participant,
            plan.bfcp.remote_fingerprints, local,
        )  # fmt: skip
        if plan.psk is not None and not plan.bfcp.we_connect:
            # this session's own TLS-PSK listener (the answer goes out before anyone connects)
            port = self.streams.listen_psk(
                session.key, plan.psk, lambda: FloorLink(self, session).driver
            )
            session.local = local = dataclasses.replace(local, port=port)
            session.psk = True
        self.sessions[session.key] = session
        logger.info("BFCP user %d in conference %d: %s", user_id, conference_id, call.participant)
        if plan.bfcp.we_connect:
            self.streams.spawn(self._connect(session, plan))
        return local

    def close(self, call: FocusCall) -> None:
        self._drop_call(call.call_id)

    def _drop_call(self, call_id: str) -> None:
        offered = self._offered.pop(call_id, None)
        if offered is not None:  # a dial-out that never connected
            self.deliver(self.server.remove_user(offered.conference_id, offered.user_id))
        for session in [s for s in self.sessions.values() if s.call_id == call_id]:
            self._drop(session)

    def _drop(self, session: FloorSession) -> None:
        """Release on leave: the server ends its requests and notifies the others."""
        self.sessions.pop(session.key, None)
        if session.psk and self.streams is not None:
            self.streams.close_psk(session.key)
        self.deliver(self.server.remove_user(*session.key))
        link, session.link = session.link, None
        if link is not None:
            link.session = None
            link.flush()
            link.close()

    async def _connect(self, session: FloorSession, plan: SdpStreamPlan) -> None:
        """a=setup:active on our side: TLS client to the participant (RFC 4145, decision (d))."""
        assert plan.bfcp is not None and self.streams is not None
        link = FloorLink(self, session if plan.psk is not None else None)
        where = plan.bfcp.connect_host, plan.bfcp.connect_port
        channel = await self.streams.connect(
            *where, link.driver, verifier=session.certificate_matches, psk=plan.psk
        )
        if channel is None:
            logger.info("BFCP connect to %s failed", session.identity)

    # -- messages ---------------------------------------------------------------------

    def pump(self, link: FloorLink) -> None:
        """Handle the events of ``link``'s connection, then flush every touched link."""
        touched = {link}
        for event in link.driver.events():
            if isinstance(event, BfcpRequestReceived):
                touched |= self._on_request(link, event.message)
            elif isinstance(event, BfcpMessageRefused):
                logger.info("BFCP message refused (Error %d): %s", event.code, event.reason)
            elif isinstance(event, BfcpConnectionFailed):
                logger.info("BFCP connection failed: %s", event.reason)
                link.flush()
                link.close()
        for each in touched:
            each.flush()

    def _on_request(self, link: FloorLink, message: BfcpMessage) -> set[FloorLink]:
        refusal = self._authorize(link, message)
        if refusal is not None:
            code, reason = refusal
            logger.info("BFCP Error %d to %s: %s", code, _peer(link), reason)
            link.bfcp.send(error_message(message, code, reason))
            return {link}
        return self.deliver(self.server.handle(message))

    def _authorize(self, link: FloorLink, message: BfcpMessage) -> tuple[int, str] | None:
        """RFC 8855 §9: bind on the first message, then insist on the same IDs."""
        key = (message.conference_id, message.user_id)
        if link.session is not None:
            if key != link.session.key:
                return E.UNAUTHORIZED_OPERATION, "IDs not bound to this TLS connection"
            return None
        session = self.sessions.get(key)
        if session is None:
            known = message.conference_id in self.server.conferences
            if not known:
                return E.CONFERENCE_DOES_NOT_EXIST, "unknown Conference ID"
            return E.USER_DOES_NOT_EXIST, "unknown User ID"
        if link.psk_session is not None:  # the TLS-PSK of this session authenticated it
            if link.psk_session is not session:
                return E.UNAUTHORIZED_OPERATION, "IDs of another user than this TLS-PSK's"
        else:
            der = link.channel.peer_certificate if link.channel else None
            if not der or not session.certificate_matches(der):
                return E.UNAUTHORIZED_OPERATION, "the certificate is not this user's"
        if session.link is not None and session.link is not link:
            return E.UNAUTHORIZED_OPERATION, "this user is already connected"
        session.link, link.session = link, session
        self.deliver(self.server.set_connected(*key, True))
        return None

    def unbind(self, link: FloorLink) -> None:
        session, link.session = link.session, None
        if session is not None and session.link is link:
            session.link = None
            self.deliver(self.server.set_connected(*session.key, False))

    def deliver(self, outgoing: list[BfcpOutgoing]) -> set[FloorLink]:
        """Queue each message on the connection bound to its IDs and flush them."""
        touched: set[FloorLink] = set()
        for item in outgoing:
            session = self.sessions.get((item.conference_id, item.user_id))
            if session is not None and session.link is not None:
                session.link.bfcp.send(item.message)
                touched.add(session.link)
        for link in touched:
            link.flush()
        if outgoing:
            for listener in list(self._floor_listeners):
                listener()  # the notifier re-reads the floors (conference event package)
        return touched


def _peer(link: FloorLink) -> object:
    return link.channel.peer_address if link.channel else None


async def start_floor_control(
    host: str,
    port: int,
    cert: Path,
    key: Path,
    *,
    keylog_filename: Path | None = None,
    floors: int = 1,
) -> FloorControl:
    """A listening :class:`FloorControl` with our certificate's SHA-256 fingerprint.

    ``floors`` (setting ``bfcp.floors``): floor IDs 1..floors in every conference.
    """
    if not 1 <= floors <= MAX_FLOORS:
        raise ValueError(f"floors per conference must be in 1..{MAX_FLOORS}, got {floors}")
    der = certificate_der(cert.read_bytes())
    control = FloorControl(
        host, cert, key, SdpFingerprint.from_certificate(der), keylog_filename=keylog_filename,
        floor_ids=tuple(range(1, floors + 1)),
    )  # fmt: skip
    bound = await control.listen(port)
    logger.info("BFCP over TLS listening on %s:%d", host, bound)
    return control
