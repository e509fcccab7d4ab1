"""The participant's side of the conference chat: MSRP over TLS (RFC 4975, RFC 7701).

:class:`UeChat` owns the client's certificate, a TLS listener (for
``a=setup:actpass``) and one :class:`~mrf.msrp.connection.MsrpConnection`.
After the answer it connects to the focus (``a=setup:passive`` in the answer,
at the c=/m= address under CEMA, RFC 6714) or waits for the focus to connect
(``active``), checks the focus's certificate against the answer's
``a=fingerprint`` (RFC 8122; :mod:`mrf.tls_engine`) and binds the session
with a bodiless SEND (§7.1).  Messages go out as ``message/cpim`` (RFC 7701
§6.1) in chunks; received CPIM messages become ``chat`` events.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from focus.sdp.attributes import (
    SdpFingerprint,
    SdpSetup,
    fingerprints,
    fingerprints_match,
    setup,
)
from focus.sdp.msrp import SdpMsrpLocal, msrp_offer_media
from focus.sdp.session import SdpMedia, SdpSession
from focus.sip.message import SipError
from focus.sip.uri import SipUri
from mrf.msrp.connection import MsrpConfig, MsrpConnection
from mrf.msrp.cpim import CPIM_TYPE, CpimMessage
from mrf.msrp.errors import MsrpError
from mrf.msrp.events import (
    MsrpConnectionFailed,
    MsrpDeliveryFailed,
    MsrpEvent,
    MsrpMessageDelivered,
    MsrpMessageReceived,
    MsrpReportReceived,
)
from mrf.msrp.uri import MsrpUri, parse_path
from mrf.secure_channel import SecureChannel
from mrf.stream import ByteStream, StreamDriver
from mrf.tls import certificate_der
from mrf.tls_engine import CertificateTlsEngine, PskTlsEngine, make_context
from mrf.tls_psk import psk_client_context, psk_server_context

type Emit = Callable[[dict[str, Any]], None]


class UeChat:
    """One chat session of ``mrf ue`` (also usable from tests and the bench)."""

    def __init__(
        self,
        host: str,
        identity: str,
        cert: Path,
        key: Path,
        emit: Emit,
        *,
        keylog_filename: Path | None = None,
        advertised_cert: Path | None = None,
        chunk_size: int = 16384,
    ) -> None:
        self.host = host
        self.identity = identity
        self.emit = emit
        self.context = make_context(cert, key, keylog_filename=keylog_filename)
        der = certificate_der((advertised_cert or cert).read_bytes())
        self.fingerprint = SdpFingerprint.from_certificate(der)
        self.session_id = secrets.token_urlsafe(18)
        self.msrp = MsrpConnection(MsrpConfig(chunk_size=chunk_size))
        self.driver: StreamDriver[MsrpEvent] = StreamDriver(self.msrp, self)
        self.port = 0
        self.local: MsrpUri | None = None
        self.room: str = ""
        self.psk: bytes | None = None  # TLS-PSK from MIKEY-TICKET (mrf.ue.mikey): no certificates
        self.keylog_filename = keylog_filename
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._expected: tuple[SdpFingerprint, ...] = ()

    @property
    def channel(self) -> ByteStream | None:
        return self.driver.channel

    async def listen(self) -> SdpMedia:
        """Open our listener and return the offer's m=message line."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        local = SdpMsrpLocal(self.host, self.port, self.session_id, self.fingerprint)
        self.local = MsrpUri.parse(local.path)
        return msrp_offer_media(local, setup_role=SdpSetup.ACTPASS)

    def _accept(self) -> SecureChannel:
        if self.psk is not None:
            context = psk_server_context(self.psk, keylog_filename=self.keylog_filename)
            return SecureChannel(PskTlsEngine(context, server_side=True), self.driver)
        engine = CertificateTlsEngine(self.context, self._verify, server_side=True)
        return SecureChannel(engine, self.driver)

    def _connect(self) -> SecureChannel:
        if self.psk is not None:
            context = psk_client_context(self.psk, keylog_filename=self.keylog_filename)
            return SecureChannel(PskTlsEngine(context, server_side=False), self.driver)
        engine = CertificateTlsEngine(self.context, self._verify, server_side=False)
        return SecureChannel(engine, self.driver)

    def _verify(self, der: bytes) -> bool:
        ok = fingerprints_match(der, self._expected)
        if not ok:
            self.emit({"event": "error", "detail": "focus certificate != a=fingerprint"})
        return ok

    async def start(self, answer: SdpSession, media: SdpMedia, room: str) -> None:
        """Act on the answer's m=message line: connect (or wait) and bind."""
        assert self.local is not None
        self.room = room
        self._expected = tuple(fingerprints(media, answer))
        path_attr = media.get_attribute("path")
        remote = parse_path(path_attr.value or "") if path_attr else ()
        if not remote:
            raise MsrpError("answer without a=path")
        self.msrp.bind(self.local, remote)
        if setup(media, answer) is SdpSetup.ACTIVE:
            return  # the focus connects to us
        connection = answer.connection_for(media)
        cema = media.get_attribute("msrp-cema") is not None and connection is not None
        host = connection.address if cema and connection else remote[0].host
        port = media.port if cema else (remote[0].port or media.port)
        loop = asyncio.get_running_loop()
        await loop.create_connection(self._connect, host, port)

    # -- StreamHandler --------------------------------------------------------------

    def stream_open(self, driver: StreamDriver[MsrpEvent]) -> None:
        channel = driver.channel
        if channel is not None and not channel.server_side and self.local is not None:
            self.msrp.send_bind(self.local, asyncio.get_running_loop().time())
            self.flush()
        self.ready.set()

    def stream_events(self, driver: StreamDriver[MsrpEvent]) -> None:
        self._events()
        self.flush()

    def stream_closed(self, driver: StreamDriver[MsrpEvent], reason: str | None) -> None:
        if reason:
            self.emit({"event": "error", "detail": f"MSRP connection closed: {reason}"})
        self.closed.set()

    # -- API ------------------------------------------------------------------

    def say(self, text: str, *, to: str | None = None) -> str:
        """Send ``text`` as message/cpim (private when ``to`` is a participant's URI)."""
        assert self.local is not None
        headers = [("From", f"<{self.identity}>"), ("To", f"<{to or self.room}>")]
        content = [("Content-Type", "text/plain;charset=utf-8")]
        body = bytes(CpimMessage(headers, content, text.encode("utf-8")))
        now = asyncio.get_running_loop().time()
        message_id = self.msrp.send_message(self.local, CPIM_TYPE, body, now)
        self.flush()
        return message_id

    def nickname(self, nickname: str) -> None:
        assert self.local is not None
        self.msrp.send_nickname(self.local, nickname, asyncio.get_running_loop().time())
        self.flush()

    def flush(self) -> None:
        self.driver.flush()

    def _events(self) -> None:
        for event in self.driver.events():
            if isinstance(event, MsrpMessageReceived):
                self._chat(event)
            elif isinstance(event, MsrpDeliveryFailed):
                self.emit({"event": "error", "status": event.status, "detail": event.reason,
                           "message_id": event.message_id})  # fmt: skip
            elif isinstance(event, MsrpReportReceived) and event.status != 200:
                self.emit({"event": "error", "status": event.status, "detail": "REPORT",
                           "message_id": event.message_id})  # fmt: skip
            elif isinstance(event, MsrpMessageDelivered):
                self.emit({"event": "sent", "message_id": event.message_id})
            elif isinstance(event, MsrpConnectionFailed):
                self.driver.close()

    def _chat(self, event: MsrpMessageReceived) -> None:
        try:
            data = event.reassembly.read(0, event.size)
        finally:
            event.reassembly.close()
        try:
            message = CpimMessage.parse(data) if event.content_type.startswith(CPIM_TYPE) else None
        except MsrpError:
            message = None
        sender = message.sender if message else None
        content = message.content if message else data
        to = message.header("To") if message else None
        self.emit({
            "event": "chat",
            "from": _uri(sender) if sender else None,
            "nickname": _display(sender) if sender else None,
            "private": bool(to) and _aor(to or "") != _aor(self.room),
            "text": content.decode("utf-8", "replace"),
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        })  # fmt: skip

    async def close(self) -> None:
        self.closed.clear()  # our own close is not a lost connection
        self.driver.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _uri(value: str) -> str:
    start, end = value.find("<"), value.rfind(">")
    return value[start + 1 : end].strip() if 0 <= start < end else value.strip()


def _aor(value: str) -> str:
    try:
        return SipUri.parse(_uri(value)).aor
    except SipError:
        return _uri(value)


def _display(value: str) -> str | None:
    start = value.find("<")
    name = value[:start].strip().strip('"') if start > 0 else ""
    return name or None
