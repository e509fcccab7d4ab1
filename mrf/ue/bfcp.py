"""The participant's and the chair's side of floor control: BFCP over TLS (RFC 8855, RFC 8856).

:class:`UeFloor` offers ``m=application 9 TCP/TLS/BFCP *`` with
``a=setup:active``, ``a=floorctrl:c-only``, ``a=bfcpver:1`` and our
fingerprint.  After the answer it connects to the focus, checks the focus's
certificate against the answer's ``a=fingerprint`` (RFC 8122, shared code in
:mod:`mrf.tls_engine`).  With ``setup="passive"`` (``mrf ue --setup
passive``) it offers the port it listens on with ``a=setup:passive`` instead,
the focus connects as TLS client and the same check applies once the answer
is known (the focus may connect before its 200 OK arrives).  Then it sends
Hello (:attr:`ready` once the HelloAck arrives) and subscribes to its floors
with FloorQuery (RFC 8855 §13.5), using the ``a=confid`` / ``a=userid`` the
focus assigned.  With ``psk`` set (``mrf ue --mikey --bfcp``: the TEK of the
BFCP line's MIKEY-TICKET crypto session of Prot type TLS, TS 33.328 Annex H)
the line carries no fingerprint and the connection is TLS-PSK
(:class:`mrf.tls_engine.PskTlsEngine`): the key authenticates both
sides, no certificate is checked.  Commands: :meth:`request`, :meth:`release`,
:meth:`chair` (accept, deny, revoke), :meth:`query_user`.

Every BFCP answer or notification becomes one ``floor`` event with a
``status``: a REQUEST-STATUS name in lower case (``pending``, ``accepted``,
``granted``, ``denied``, ``cancelled``, ``released``, ``revoked``) with
``request_id``, ``floors``, ``user``, ``queue_position`` and ``notification``;
``floor-status`` (a FloorStatus: ``floor_id`` and its ``requests``);
``hello-ack``, ``chair-ack``, ``user-status``, ``error`` (``code``, ``info``),
``connected`` and ``closed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from focus.sdp.attributes import SdpFingerprint, SdpSetup, fingerprints_match
from focus.sdp.bfcp import SdpBfcpAnswer, bfcp_offer_media, parse_bfcp_answer
from focus.sdp.session import SdpMedia, SdpRemoteError, SdpSession
from mrf.bfcp.attribute import BfcpAttribute, BfcpErrorValue, BfcpGroup, BfcpStatus
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.codes import BfcpRequestStatus
from mrf.bfcp.connection import BfcpConnection, BfcpRole
from mrf.bfcp.errors import BfcpLocalError
from mrf.bfcp.events import (
    BfcpConnectionFailed,
    BfcpEvent,
    BfcpMessageRefused,
    BfcpNotificationReceived,
    BfcpResponseReceived,
    BfcpTransactionTimedOut,
)
from mrf.bfcp.message import BfcpMessage
from mrf.secure_channel import SecureChannel
from mrf.stream import ByteStream, StreamDriver
from mrf.tls import certificate_der
from mrf.tls_engine import CertificateTlsEngine, PskTlsEngine, make_context
from mrf.tls_psk import psk_client_context, psk_server_context

__all__ = ["UeFloor"]

type Emit = Callable[[dict[str, Any]], None]
CHAIR_DECISIONS = {
    "accept": BfcpRequestStatus.ACCEPTED,
    "grant": BfcpRequestStatus.GRANTED,
    "deny": BfcpRequestStatus.DENIED,
    "revoke": BfcpRequestStatus.REVOKED,
}


class UeFloor:
    """One BFCP client session of ``mrf ue`` (also usable from tests and the bench)."""

    def __init__(
        self,
        host: str,
        cert: Path,
        key: Path,
        emit: Emit,
        *,
        keylog_filename: Path | None = None,
        advertised_cert: Path | None = None,
        setup: str = "active",
    ) -> None:
        if setup not in ("active", "passive"):
            raise ValueError(f"a=setup:{setup} is not offered (active or passive)")
        self.host = host
        self.setup = setup
        self.emit = emit
        self.context = make_context(cert, key, keylog_filename=keylog_filename)
        der = certificate_der((advertised_cert or cert).read_bytes())
        self.fingerprint = SdpFingerprint.from_certificate(der)
        self.bfcp = BfcpConnection(BfcpRole.CLIENT)
        self.driver: StreamDriver[BfcpEvent] = StreamDriver(self.bfcp, self)
        self.answer: SdpBfcpAnswer | None = None
        self.psk: bytes | None = None  # TLS-PSK from MIKEY-TICKET (set before start)
        self._keylog = keylog_filename
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.mine: dict[int, str] = {}  # our floor request IDs -> last status
        self._server: asyncio.Server | None = None
        self._greeted = False

    @property
    def channel(self) -> ByteStream | None:
        return self.driver.channel

    def offer_media(self) -> SdpMedia:
        """The offer's BFCP line: we connect (a=setup:active, port 9, RFC 4145 §4)."""
        return bfcp_offer_media(9, self.fingerprint)

    async def listen(self) -> SdpMedia:
        """The offer's BFCP line; with ``setup="passive"`` we listen and the focus connects.

        RFC 4145 §4: the passive side's m-line carries the port it listens on;
        the focus (TLS client, RFC 8122 §6.2) connects to it and we check its
        certificate against the answer's ``a=fingerprint`` (RFC 8122 §5).
        """
        if self.setup == "active":
            return self.offer_media()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, self.host, 0)
        port = int(self._server.sockets[0].getsockname()[1])
        return bfcp_offer_media(port, self.fingerprint, setup_role=SdpSetup.PASSIVE)

    def _accept(self) -> SecureChannel:
        if self.psk is not None:  # a handshake before the answer gave us the PSK fails
            context = psk_server_context(lambda _: self.psk, keylog_filename=self._keylog)
            return SecureChannel(PskTlsEngine(context, server_side=True), self.driver)
        engine = CertificateTlsEngine(self.context, self._verify, server_side=True)
        return SecureChannel(engine, self.driver)

    def _connect(self) -> SecureChannel:
        if self.psk is not None:
            context = psk_client_context(self.psk, keylog_filename=self._keylog)
            return SecureChannel(PskTlsEngine(context, server_side=False), self.driver)
        engine = CertificateTlsEngine(self.context, self._verify, server_side=False)
        return SecureChannel(engine, self.driver)

    async def start(self, answer: SdpSession, media: SdpMedia) -> None:
        """Act on the answer: connect to the focus, or check the one that connected to us."""
        self.answer = parse_bfcp_answer(answer, media)
        if self.setup == "passive":
            if self.answer.we_connect:
                raise SdpRemoteError(488, "we offered a=setup:passive; the answer must be active")
            if self.channel is not None:  # the focus was faster than its 200 OK
                self._greet(self.channel)
            return
        loop = asyncio.get_running_loop()
        await loop.create_connection(self._connect, self.answer.host, self.answer.port)

    def _verify(self, der: bytes) -> bool:
        if self.answer is None and self.setup == "passive":
            return True  # the answer is still on its way: checked in _greet
        prints = self.answer.fingerprints if self.answer else ()
        return fingerprints_match(der, prints)

    # -- StreamApp ---------------------------------------------------------

    def stream_open(self, driver: StreamDriver[BfcpEvent]) -> None:
        # the driver refuses a second connection: one per session (RFC 8856 §6)
        if self.answer is not None and driver.channel is not None:
            self._greet(driver.channel)

    def _greet(self, channel: ByteStream) -> None:
        """The channel is up and the answer known: check the focus, then Hello + FloorQuery."""
        assert self.answer is not None
        if self._greeted:
            return
        der = channel.peer_certificate or b""
        psk = self.psk is not None
        if not psk and not fingerprints_match(der, self.answer.fingerprints):
            self.emit({"event": "error", "detail": "focus certificate != a=fingerprint"})
            channel.close()
            return
        self._greeted = True
        self.emit(
            {
                "event": "floor", "status": "connected",
                "conference_id": self.answer.conference_id, "user_id": self.answer.user_id,
                "floors": [f for f, _ in self.answer.floors], "tls": channel.version,
                "focus_connected": channel.server_side, "psk": psk, "cipher": channel.cipher,
            }
        )  # fmt: skip
        self._send(P.HELLO)
        floors = tuple(BfcpAttribute(T.FLOOR_ID, f) for f, _ in self.answer.floors)
        self._send(P.FLOOR_QUERY, floors)

    def stream_events(self, driver: StreamDriver[BfcpEvent]) -> None:
        self._events()

    def stream_closed(self, driver: StreamDriver[BfcpEvent], reason: str | None) -> None:
        self.closed.set()
        self.emit({"event": "floor", "status": "closed", "reason": reason})

    # -- commands -----------------------------------------------------------------

    def request(self, floor_id: int | None = None, *, beneficiary: int | None = None) -> None:
        """FloorRequest for ``floor_id`` (default: the first floor of the answer)."""
        floors = [f for f, _ in self.answer.floors] if self.answer else []
        attributes = [BfcpAttribute(T.FLOOR_ID, floor_id or (floors[0] if floors else 1))]
        if beneficiary is not None:
            attributes.append(BfcpAttribute(T.BENEFICIARY_ID, beneficiary))
        self._send(P.FLOOR_REQUEST, tuple(attributes))

    def release(self, request_id: int | None = None) -> None:
        """FloorRelease of ``request_id`` (default: our latest ongoing request)."""
        ongoing = [r for r, s in self.mine.items() if s in ("pending", "accepted", "granted")]
        target = request_id or (ongoing[-1] if ongoing else None)
        if target is None:
            self.emit({"event": "error", "detail": "no floor request to release"})
            return
        self._send(P.FLOOR_RELEASE, (BfcpAttribute(T.FLOOR_REQUEST_ID, target),))

    def chair(self, decision: str, request_id: int, text: str = "") -> None:
        """ChairAction: ``accept``, ``grant``, ``deny`` or ``revoke`` a floor request."""
        status = BfcpAttribute(T.REQUEST_STATUS, BfcpStatus(CHAIR_DECISIONS[decision]))
        inner: list[BfcpAttribute] = [status]
        if text:
            inner.append(BfcpAttribute(T.STATUS_INFO, text))
        floors = [f for f, _ in self.answer.floors] if self.answer else [1]
        group = (
            BfcpAttribute(T.OVERALL_REQUEST_STATUS, BfcpGroup(request_id, tuple(inner))),
            *(BfcpAttribute(T.FLOOR_REQUEST_STATUS, BfcpGroup(f, (status,))) for f in floors),
        )
        fri = BfcpAttribute(T.FLOOR_REQUEST_INFORMATION, BfcpGroup(request_id, group))
        self._send(P.CHAIR_ACTION, (fri,))

    def query_user(self, user_id: int | None = None) -> None:
        attributes = (BfcpAttribute(T.BENEFICIARY_ID, user_id),) if user_id else ()
        self._send(P.USER_QUERY, attributes)

    def query_floor(self) -> None:
        floors = [f for f, _ in self.answer.floors] if self.answer else []
        self._send(P.FLOOR_QUERY, tuple(BfcpAttribute(T.FLOOR_ID, f) for f in floors))

    def _send(self, primitive: int, attributes: tuple[BfcpAttribute, ...] = ()) -> None:
        if self.channel is None or self.answer is None:
            self.emit({"event": "error", "detail": "no floor control connection"})
            return
        now = asyncio.get_running_loop().time()
        try:
            self.bfcp.send_request(
                primitive, self.answer.conference_id, self.answer.user_id, attributes, now
            )
        except BfcpLocalError as exc:
            self.emit({"event": "error", "detail": f"BFCP: {exc}"})
            return
        self._flush()

    def _flush(self) -> None:
        self.driver.flush()

    # -- events -------------------------------------------------------------------

    def _events(self) -> None:
        for event in self.driver.events():
            if isinstance(event, BfcpResponseReceived):
                self._message(event.message, notification=False)
            elif isinstance(event, BfcpNotificationReceived):
                self._message(event.message, notification=True)
            elif isinstance(event, BfcpTransactionTimedOut):
                name = P(event.request.primitive).name
                self.emit({"event": "floor", "status": "timeout", "request": name})
            elif isinstance(event, BfcpMessageRefused):
                self.emit({"event": "floor", "status": "malformed", "detail": event.reason})
            elif isinstance(event, BfcpConnectionFailed):
                self.driver.close()
        self._flush()

    def _message(self, message: BfcpMessage, *, notification: bool) -> None:
        base: dict[str, Any] = {"event": "floor", "notification": notification}
        primitive = message.primitive
        if primitive == P.FLOOR_REQUEST_STATUS:
            for fri in message.values(T.FLOOR_REQUEST_INFORMATION):
                assert isinstance(fri, BfcpGroup)
                self.emit(base | self._request_info(fri))
        elif primitive == P.FLOOR_STATUS:
            floor = message.ints(T.FLOOR_ID)
            requests = [self._request_info(g) for g in message.values(T.FLOOR_REQUEST_INFORMATION)]
            self.emit(base | {"status": "floor-status", "floor_id": floor[0] if floor else None,
                              "requests": requests})  # fmt: skip
        elif primitive == P.ERROR:
            error = message.values(T.ERROR_CODE)
            code = error[0].code if error and isinstance(error[0], BfcpErrorValue) else None
            info = message.text(T.ERROR_INFO)
            self.emit(base | {"status": "error", "code": code, "info": info})
        elif primitive == P.HELLO_ACK:
            self.ready.set()  # the focus speaks BFCP to us: joined
            supported = [a.value for a in message.all(T.SUPPORTED_PRIMITIVES)]
            primitives = list(supported[0]) if supported and isinstance(supported[0], tuple) else []
            self.emit(base | {"status": "hello-ack", "version": message.version,
                              "primitives": primitives})  # fmt: skip
        elif primitive == P.CHAIR_ACTION_ACK:
            self.emit(base | {"status": "chair-ack"})
        elif primitive == P.USER_STATUS:
            requests = [self._request_info(g) for g in message.values(T.FLOOR_REQUEST_INFORMATION)]
            self.emit(base | {"status": "user-status", "requests": requests})

    def _request_info(self, fri: object) -> dict[str, Any]:
        """A FLOOR-REQUEST-INFORMATION as JSON; remembers our own requests' status."""
        assert isinstance(fri, BfcpGroup)
        overall = fri.first(T.OVERALL_REQUEST_STATUS)
        holder = overall.value if overall else None
        status = holder.first(T.REQUEST_STATUS) if isinstance(holder, BfcpGroup) else None
        value = status.value if status and isinstance(status.value, BfcpStatus) else None
        name = (
            BfcpRequestStatus(value.status).name.lower()
            if value and 0 < value.status < 8
            else "unknown"
        )
        who = fri.first(T.BENEFICIARY_INFORMATION)
        user = who.value if who and isinstance(who.value, BfcpGroup) else None
        uri = user.first(T.USER_URI) if user else None
        floors = [
            a.value.id for a in fri.all(T.FLOOR_REQUEST_STATUS) if isinstance(a.value, BfcpGroup)
        ]
        if user is not None and self.answer is not None and user.id == self.answer.user_id:
            self.mine[fri.id] = name
        return {
            "status": name, "request_id": fri.id, "floors": floors,
            "user": uri.value if uri else None, "user_id": user.id if user else None,
            "queue_position": value.queue_position if value else 0,
        }  # fmt: skip

    async def close(self) -> None:
        self.driver.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
