"""``mrf ue``: the reference participant client, a thin composition of the cores.

:class:`UeClient` is a SIP UAC on :class:`focus.endpoint.SipEndpoint`: it
offers (``focus.sdp``) an SDES-keyed ``RTP/SAVP`` audio line (``--audio``)
and/or a ``TCP/TLS/MSRP`` line with its own certificate's fingerprint
(``--msrp``, :class:`mrf.ue.chat.UeChat`), sends the INVITE to the conference,
ACKs the answer and reports everything as JSON lines through ``emit``.  Later
features (BFCP, MIKEY-TICKET, the event package) plug in as more offer parts
beside ``UeChat``, started the same way from :meth:`UeClient._started`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focus.endpoint import SipEndpoint
from focus.kms.client import KmsUnavailable
from focus.mikey.buffer import MikeyError
from focus.sdp.attributes import SdpCrypto
from focus.sdp.sdes import generate_key_salt
from focus.sdp.session import (
    SdpAttribute,
    SdpConnection,
    SdpError,
    SdpMedia,
    SdpOrigin,
    SdpSession,
    SdpTiming,
)
from focus.sip.dialog import SipDialog, dialog_from_uac, incoming_dialog_id, uri_address
from focus.sip.headers import SipHeaders
from focus.sip.message import SipError, SipRequest, SipResponse, make_response
from focus.sip.refusal import warning_of
from focus.sip.transaction import AckReceived, CancelReceived, RequestReceived, SipAddress
from focus.sip.uri import SipUri
from mrf.tls import client_ssl_context, ensure_certificate, server_ssl_context
from mrf.ue.audio import UeAudio
from mrf.ue.bfcp import UeFloor
from mrf.ue.chat import Emit, UeChat
from mrf.ue.mikey import UeMikey
from mrf.ue.notify import UeSubscription, UeSubscriptionOptions
from notify.kek import NotifyKek

__all__ = ["UeClient", "UeOptions"]


@dataclass(frozen=True, slots=True)
class UeOptions:
    """What ``mrf ue join`` was asked to do."""

    conference: str
    identity: str
    proxy: tuple[str, int] | None = None
    transport: str = "udp"
    audio: bool = False
    msrp: bool = False
    bfcp: bool = False  # floor control over TLS (mrf.ue.bfcp)
    request_floor: bool = False  # FloorRequest right after joining
    bfcp_setup: str = "active"  # a=setup of the BFCP line: passive = the focus connects to us
    host: str = "127.0.0.1"
    data_dir: Path | None = None
    keylog_file: Path | None = None
    bad_fingerprint: bool = False
    nickname: str | None = None
    says: tuple[str, ...] = field(default=())
    mikey: bool = False  # key audio and MSRP with MIKEY-TICKET (mrf.ue.mikey)
    kms_url: str | None = None
    kms_key: str | None = None  # hex, from `mrf kms enroll`
    kms_identity: str | None = None  # our KMS identity (default: the --as URI)
    subscribe: UeSubscriptionOptions | None = None  # --subscribe (mrf.ue.notify)
    audio_packets: int = 25  # SRTP packets sent after joining (mrf.ue.audio)


class UeClient:
    """One participant: join, chat, leave (also the SIP handler of its endpoint)."""

    def __init__(self, options: UeOptions, emit: Emit) -> None:
        self.options = options
        self.emit = emit
        self.endpoint: SipEndpoint | None = None
        self.chat: UeChat | None = None
        self.floor: UeFloor | None = None
        self.subscription: UeSubscription | None = None  # the conference event package
        self.dialog: SipDialog | None = None
        self.left = asyncio.Event()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.audio: UeAudio | None = None
        self.mikey: UeMikey | None = None
        self._sdes_tx: bytes | None = None
        self._smime: NotifyKek | None = None  # PSK S/MIME KEK from the INVITE's MIKEY
        self._audio_task: asyncio.Task[None] | None = None

    async def join(self) -> bool:
        """Dial in; True when the conference answered 2xx (``joined`` emitted)."""
        cert, key = self._certificate()
        keylog = self.options.keylog_file
        self.endpoint = SipEndpoint(  # the focus's requests come back on our connection
            self, client_ssl_context=client_ssl_context(keylog_filename=keylog), via_alias=True
        )
        host = self.options.host
        await self.endpoint.listen_udp(host, 0)
        await self.endpoint.listen_tcp(host, 0)
        await self.endpoint.listen_tls(host, 0, server_ssl_context(cert, key))
        try:
            offer = await self._offer(cert, key)
        except (KmsUnavailable, MikeyError, ValueError) as exc:
            self.emit({"event": "error", "detail": f"MIKEY-TICKET ticket request failed: {exc}"})
            return False
        invite = self._invite(offer)
        try:
            response = await self.endpoint.request(invite, self._target())
        except (SipError, OSError) as exc:
            self.emit({"event": "error", "detail": f"INVITE failed: {exc}"})
            return False
        if not 200 <= response.status < 300:
            self.emit({"event": "refused", "status": response.status, "reason": response.reason,
                       "warning": warning_of(response)})  # fmt: skip
            return False
        self.dialog = dialog_from_uac(invite, response, transport=self.options.transport)
        ack = self.dialog.create_ack(response)
        self.endpoint.send_ack(ack, uri_address(self.dialog.next_hop()))
        return await self._started(response)

    def _certificate(self) -> tuple[Path, Path]:
        directory = self.options.data_dir
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mrf-ue-")
            directory = Path(self._tmp.name)
        return ensure_certificate(directory)

    async def _offer(self, cert: Path, key: Path) -> SdpSession:
        media: list[SdpMedia] = []
        if self.options.audio:
            media.append(await self._audio_media())
        if self.options.msrp:
            advertised = None
            if self.options.bad_fingerprint:  # a certificate we do not present (tests, checks)
                advertised = ensure_certificate(Path(tempfile.mkdtemp(prefix="mrf-ue-other-")))[0]
            self.chat = UeChat(
                self.options.host, self.options.identity, cert, key, self.emit,
                keylog_filename=self.options.keylog_file, advertised_cert=advertised,
            )  # fmt: skip
            chat_media = await self.chat.listen()
            if self.options.mikey:  # TLS-PSK: no certificate, no fingerprint
                kept = [a for a in chat_media.attributes if a.name != "fingerprint"]
                chat_media.attributes = kept
            media.append(chat_media)
        if self.options.bfcp:
            self.floor = UeFloor(
                self.options.host, cert, key, self.emit, keylog_filename=self.options.keylog_file,
                advertised_cert=self._advertised(), setup=self.options.bfcp_setup,
            )  # fmt: skip
            floor_media = await self.floor.listen()
            if self.options.mikey:  # TLS-PSK from MIKEY-TICKET: no fingerprint
                kept = [a for a in floor_media.attributes if a.name != "fingerprint"]
                floor_media.attributes = kept
            media.append(floor_media)
        host = self.options.host
        attributes = await self._key_mgmt()
        return SdpSession(
            origin=SdpOrigin("mrf-ue", secrets.randbelow(2**31), 1, host, "IP4"),
            name="-",
            connection=SdpConnection(host, "IP4"),
            timings=[SdpTiming()],
            attributes=attributes,
            media=media,
        )

    async def _key_mgmt(self) -> list[SdpAttribute]:
        """``a=key-mgmt:mikey`` with TRANSFER_INIT (session level) for ``--mikey``."""
        options = self.options
        if not options.mikey:
            return []
        if not options.kms_url or not options.kms_key:
            raise ValueError("--mikey needs --kms URL and --kms-key HEX")
        self.mikey = UeMikey.for_conference(
            options.kms_url, options.kms_key, options.kms_identity or options.identity,
            options.conference,
        )  # fmt: skip
        value = await self.mikey.offer_attribute(
            audio_ssrc=self.audio.ssrc if self.audio else None,
            msrp=self.chat is not None, bfcp=self.floor is not None,
            smime=options.subscribe is not None, now=time.time(),
        )  # fmt: skip
        return [SdpAttribute("key-mgmt", value)]

    def _advertised(self) -> Path | None:
        """With ``--bad-fingerprint``: a certificate we advertise but never present."""
        if not self.options.bad_fingerprint:
            return None
        return ensure_certificate(Path(tempfile.mkdtemp(prefix="mrf-ue-other-")))[0]

    async def _audio_media(self) -> SdpMedia:
        self.audio = UeAudio(self.options.host, self.emit)
        port = await self.audio.bind()
        attributes = [SdpAttribute("rtpmap", "0 PCMU/8000"), SdpAttribute("sendrecv")]
        if not self.options.mikey:  # SDES: our transmit key (RFC 4568)
            self._sdes_tx = generate_key_salt("AES_CM_128_HMAC_SHA1_80")
            inline = base64.b64encode(self._sdes_tx).decode()
            attributes.append(SdpAttribute("crypto", f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}"))
        return SdpMedia("audio", port, "RTP/SAVP", ["0"], attributes=attributes)

    def _start_audio(self, answer: SdpSession) -> None:
        """Key the audio from the answer (SDES) and send a few SRTP packets."""
        media = next((m for m in answer.media if m.kind == "audio" and m.port), None)
        connection = answer.connection_for(media) if media is not None else None
        if self.audio is None or media is None or connection is None:
            return
        if self._sdes_tx is not None:
            line = media.get_attribute("crypto")
            if line is None:
                return
            crypto = SdpCrypto.parse(line.value or "")
            self.audio.set_keys(crypto.suite, self._sdes_tx, crypto.keys[0].key_salt, "sdes")
        task = self.audio.run(connection.address, media.port, self.options.audio_packets)
        self._audio_task = asyncio.ensure_future(task)

    def _target(self) -> SipAddress:
        if self.options.proxy is not None:
            return SipAddress(self.options.transport, *self.options.proxy)
        uri = SipUri.parse(self.options.conference)
        default = 5061 if self.options.transport == "tls" else 5060
        return SipAddress(self.options.transport, uri.host, uri.port or default)

    def _invite(self, offer: SdpSession) -> SipRequest:
        assert self.endpoint is not None
        transport = self.options.transport
        local = self.endpoint.local_address(transport)
        params = "" if transport == "udp" else f";transport={transport}"
        user = SipUri.parse(self.options.identity).user or "ue"
        headers = SipHeaders()
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<{self.options.identity}>;tag={secrets.token_hex(8)}")
        headers.add("To", f"<{self.options.conference}>")
        headers.add("Call-ID", f"{secrets.token_hex(12)}@{local.host}")
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<sip:{user}@{local.host}:{local.port}{params}>")
        headers.add("Content-Type", "application/sdp")
        return SipRequest("INVITE", self.options.conference, headers, bytes(offer))

    async def _started(self, response: SipResponse) -> bool:
        try:
            answer = SdpSession.parse(response.body)
        except SdpError as exc:
            self.emit({"event": "error", "detail": f"bad SDP answer: {exc}"})
            return False
        kinds = [m.kind for m in answer.media if m.port]
        if self.mikey is not None and not self._mikey_keys(answer):
            await self.leave("mikey failed")
            return False
        chat_media = next((m for m in answer.media if m.kind == "message" and m.port), None)
        if self.chat is not None and chat_media is not None:
            try:
                await self.chat.start(answer, chat_media, self.options.conference)
                async with asyncio.timeout(10):
                    await self.chat.ready.wait()
            except (OSError, TimeoutError, SdpError, ValueError) as exc:
                self.emit({"event": "error", "detail": f"MSRP connection failed: {exc}"})
                await self.leave("msrp failed")
                return False
            if self.options.nickname:
                self.chat.nickname(self.options.nickname)
        if not await self._start_floor(answer):
            return False
        self.emit({"event": "joined", "conference": self.options.conference, "media": kinds})
        if self.options.subscribe is not None and self.endpoint is not None:  # refusal: still in
            subscribe = self.options.subscribe
            if self._smime is not None:  # the INVITE's PSK S/MIME session keys the NOTIFYs
                subscribe = dataclasses.replace(subscribe, mikey=False)
            self.subscription = UeSubscription(self.endpoint, subscribe, self.emit, kek=self._smime)
            await self.subscription.subscribe()
        self._start_audio(answer)
        return True

    def _mikey_keys(self, answer: SdpSession) -> bool:
        """TRANSFER_RESP of the answer → SRTP keys and the MSRP TLS-PSK (mrf.ue.mikey)."""
        assert self.mikey is not None
        try:
            keys = self.mikey.answer_keys(answer, now=time.time())
        except (MikeyError, ValueError) as exc:
            self.emit({"event": "error", "detail": f"TRANSFER_RESP refused: {exc}"})
            return False
        if self.audio is not None and keys.audio is not None:
            self.audio.set_keys(*keys.audio, "mikey-ticket")
        if self.chat is not None:
            self.chat.psk = keys.psk
        if self.floor is not None:
            self.floor.psk = keys.bfcp_psk
        if keys.smime is not None:
            self._smime = NotifyKek(*keys.smime)
        return True

    async def _start_floor(self, answer: SdpSession) -> bool:
        """Connect floor control (mrf.ue.bfcp) when the focus accepted the BFCP line."""
        media = next((m for m in answer.media if m.proto.endswith("/BFCP") and m.port), None)
        if self.floor is None or media is None:
            return True
        try:
            await self.floor.start(answer, media)
            async with asyncio.timeout(10):
                events = (self.floor.ready, self.floor.closed)
                ended = [asyncio.ensure_future(e.wait()) for e in events]
                await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
                for waiter in ended:
                    waiter.cancel()
            if not self.floor.ready.is_set():
                raise ValueError("TLS refused (fingerprint?)")
        except (OSError, TimeoutError, SdpError, ValueError) as exc:
            self.emit({"event": "error", "detail": f"BFCP connection failed: {exc!r}"})
            await self.leave("bfcp failed")
            return False
        return True

    def say(self, text: str, to: str | None = None) -> None:
        if self.chat is None or self.chat.channel is None:
            self.emit({"event": "error", "detail": "no chat session"})
            return
        self.chat.say(text, to=to)

    async def leave(self, reason: str = "leave") -> None:
        """BYE (bounded wait), close media, emit ``left``."""
        if self.left.is_set():
            return
        self.left.set()
        if self.subscription is not None:
            await self.subscription.unsubscribe()
        if self.dialog is not None and self.endpoint is not None:
            bye = self.dialog.create_request("BYE")
            try:
                async with asyncio.timeout(5):
                    await self.endpoint.request(bye, uri_address(self.dialog.next_hop()))
            except (TimeoutError, SipError, OSError):
                pass
        self.emit({"event": "left", "reason": reason})

    async def close(self) -> None:
        if self.subscription is not None:
            await self.subscription.close()
        if self.floor is not None:
            await self.floor.close()
        if self.chat is not None:
            await self.chat.close()
        if self._audio_task is not None:
            self._audio_task.cancel()
        if self.audio is not None:
            self.audio.close()
        if self.endpoint is not None:
            await self.endpoint.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- SipHandler -------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        ours = self.dialog is not None and incoming_dialog_id(request) == self.dialog.id
        if self.subscription is not None and self.subscription.owns(request):
            self.subscription.handle_notify(endpoint, event)
        elif request.method == "BYE" and ours:
            endpoint.respond(event.key, make_response(request, 200, "OK"))
            if not self.left.is_set():
                self.left.set()
                self.emit({"event": "left", "reason": "bye"})
        elif request.method == "OPTIONS":
            endpoint.respond(event.key, make_response(request, 200, "OK"))
        else:
            status = 481 if request.to_addr.tag else 405
            endpoint.respond(event.key, make_response(request, status, None))

    def handle_ack(self, endpoint: SipEndpoint, event: AckReceived) -> None:
        return None

    def handle_cancel(self, endpoint: SipEndpoint, event: CancelReceived) -> None:
        return None

    def handle_timeout(self, endpoint: SipEndpoint, event: Any) -> None:
        return None
