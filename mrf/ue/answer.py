"""``mrf ue answer``: a UAS that auto-answers the focus's dial-out (TS 33.328 G.1/G.3.1).

``mrf ue answer --as SIP-URI --listen HOST:PORT [--audio] [--mikey --kms URL
--kms-key HEX] [--duration S]`` listens on UDP and TCP, answers the first
INVITE with an ``RTP/SAVP`` PCMU line keyed one of two ways:

* **SDES** (RFC 4568 §5.1.2): the first offered ``a=crypto`` whose suite we
  support is echoed with its tag and *our* fresh key;
* **MIKEY-TICKET** (the offer's ``a=key-mgmt:mikey``, RFC 6043 §4.2.2-4.2.3,
  with ``--mikey``): we are the Responder: the TRANSFER_INIT's ticket is
  resolved at the KMS with our KMS key (RESOLVE_INIT), the KMS-vouched
  Initiator identity is reported, and the answer carries the TRANSFER_RESP
  (session-level ``a=key-mgmt``).  Crypto session 1 keys what the focus sends,
  crypto session 2 what we send (:mod:`focus.mikey.media` rule).

Events (JSON lines): ``incoming`` (``from``, ``key_mode``, ``initiator`` for
MIKEY), ``joined``, ``media`` (:class:`mrf.ue.audio.UeAudio`), ``refused``
(what we answered when the offer is unusable), ``left``.  The process exits 0
after the call ended (BYE either way, or ``--duration``).  Keys are never
printed.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from focus.endpoint import SipEndpoint
from focus.kms.client import KmsUnavailable, kms_exchange
from focus.mikey.buffer import MikeyError
from focus.mikey.constants import MikeyProtType
from focus.mikey.exchange import MikeyProfile
from focus.mikey.media import assign_crypto_sessions, responder_sessions, srtp_suite
from focus.mikey.message import MikeyGenericIdEntry
from focus.mikey.payload import MikeySecurityPolicy
from focus.mikey.responder import MikeyTransferResponder
from focus.sdp.attributes import SdpKeyMgmt
from focus.sdp.sdes import SDES_SUITES, SdpCrypto, generate_key_salt
from focus.sdp.session import (
    SdpAttribute,
    SdpConnection,
    SdpError,
    SdpMedia,
    SdpOrigin,
    SdpSession,
    SdpTiming,
)
from focus.sip.dialog import SipDialog, dialog_from_uas, uri_address
from focus.sip.message import SipError, SipRequest, make_response
from focus.sip.refusal import SipRefusal
from focus.sip.transaction import AckReceived, CancelReceived, RequestReceived
from focus.sip.uri import SipUri
from mrf.ue.audio import UeAudio
from mrf.ue.chat import Emit

__all__ = ["UeAnswerOptions", "UeAnswerer"]


@dataclass(frozen=True, slots=True)
class UeAnswerOptions:
    """What ``mrf ue answer`` was asked to do."""

    identity: str
    listen: tuple[str, int]
    mikey: bool = False
    kms_url: str | None = None
    kms_key: str | None = None  # hex, from `mrf kms enroll`
    kms_identity: str | None = None  # our KMS identity (default: the --as URI)
    audio_packets: int = 25


class _Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


class UeAnswerer:
    """The UAS (also the SIP handler of its endpoint)."""

    def __init__(self, options: UeAnswerOptions, emit: Emit) -> None:
        self.options = options
        self.emit = emit
        self.endpoint: SipEndpoint | None = None
        self.audio: UeAudio | None = None
        self.dialog: SipDialog | None = None
        self.remote: tuple[str, int] | None = None
        self.ended = asyncio.Event()
        self._busy = False
        self._audio_task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        self.endpoint = SipEndpoint(self)
        host, port = self.options.listen
        await self.endpoint.listen_udp(host, port)
        await self.endpoint.listen_tcp(host, port)
        self.emit({"event": "listening", "address": f"{host}:{port}", "transports": ["udp", "tcp"]})

    # -- SipHandler ---------------------------------------------------------------

    async def handle_request(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        if request.method == "INVITE" and not request.to_addr.tag:
            if self._busy:
                endpoint.respond(event.key, make_response(request, 486, "Busy Here"))
                return
            self._busy = True
            await self._answer(endpoint, event)
        elif request.method == "BYE" and self._ours(request):
            endpoint.respond(event.key, make_response(request, 200, "OK"))
            await self._ended("bye")
        elif request.method == "OPTIONS":
            endpoint.respond(event.key, make_response(request, 200, "OK"))
        else:
            status = 481 if request.to_addr.tag else 405
            endpoint.respond(event.key, make_response(request, status, None))

    def handle_ack(self, endpoint: SipEndpoint, event: AckReceived) -> None:
        if self.dialog is None or self.remote is None or self.audio is None:
            return
        if self._audio_task is None:
            self.emit({"event": "joined", "conference": str(self.dialog.remote_uri.uri)})
            self._audio_task = asyncio.ensure_future(
                self.audio.run(*self.remote, self.options.audio_packets)
            )

    def handle_cancel(self, endpoint: SipEndpoint, event: CancelReceived) -> None:
        return None

    def handle_timeout(self, endpoint: SipEndpoint, event: Any) -> None:
        return None

    def _ours(self, request: SipRequest) -> bool:
        return self.dialog is not None and request.call_id == self.dialog.call_id

    # -- the answer -----------------------------------------------------------------

    async def _answer(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        try:
            offer = SdpSession.parse(request.body)
            media = next((m for m in offer.media if m.kind == "audio" and m.port), None)
            connection = offer.connection_for(media) if media is not None else None
            if media is None or connection is None or media.proto != "RTP/SAVP":
                raise _Refused(488, "Not Acceptable Here", "no RTP/SAVP audio line")
            if "0" not in media.formats:
                raise _Refused(488, "Not Acceptable Here", "PCMU not offered")
            self.audio = UeAudio(self.options.listen[0], self.emit)
            port = await self.audio.bind()
            attributes, session = await self._keys(offer, media, request)
        except SdpError as exc:
            self._refuse(endpoint, event, _Refused(400, "Bad Request", str(exc)))
            return
        except _Refused as exc:
            self._refuse(endpoint, event, exc)
            return
        self.remote = (connection.address, media.port)
        answer = self._sdp(offer, port, attributes, session)
        local = endpoint.local_address(event.source.transport)
        user = SipUri.parse(self.options.identity).user or "ue"
        params = "" if event.source.transport == "udp" else f";transport={event.source.transport}"
        response = make_response(
            request, 200, "OK", to_tag=secrets.token_hex(8),
            headers=[("Contact", f"<sip:{user}@{local.host}:{local.port}{params}>")],
            body=bytes(answer), content_type="application/sdp",
        )  # fmt: skip
        self.dialog = dialog_from_uas(request, response, transport=event.source.transport)
        endpoint.respond(event.key, response, dialog=self.dialog)

    def _refuse(self, endpoint: SipEndpoint, event: RequestReceived, exc: _Refused) -> None:
        self.emit({"event": "refused", "status": exc.status, "detail": exc.detail})
        agent = SipUri.parse(self.options.identity).host
        refusal = SipRefusal(exc.status, exc.detail, exc.reason)
        endpoint.respond(event.key, refusal.response(event.request, agent=agent))
        self.ended.set()

    async def _keys(
        self, offer: SdpSession, media: SdpMedia, request: SipRequest
    ) -> tuple[list[SdpAttribute], list[SdpAttribute]]:
        """(media attributes, session attributes) keying the answer; :class:`_Refused`."""
        assert self.audio is not None
        caller = str(request.from_addr.uri)
        key_mgmt = [a for a in [*offer.attributes, *media.attributes] if a.name == "key-mgmt"]
        if key_mgmt:
            if not self.options.mikey:
                raise _Refused(488, "Not Acceptable Here", "MIKEY-TICKET offered, no --mikey")
            value = await self._mikey(SdpKeyMgmt.parse(key_mgmt[0].value or "").data, caller)
            return [], [SdpAttribute("key-mgmt", value)]
        for line in media.get_attributes("crypto"):
            crypto = SdpCrypto.parse(line.value or "")
            if crypto.suite in SDES_SUITES and len(crypto.keys) == 1:
                ours = generate_key_salt(crypto.suite)
                self.audio.set_keys(crypto.suite, ours, crypto.keys[0].key_salt, "sdes")
                self.emit({"event": "incoming", "from": caller, "key_mode": "sdes"})
                inline = base64.b64encode(ours).decode()
                return [SdpAttribute("crypto", f"{crypto.tag} {crypto.suite} inline:{inline}")], []
        raise _Refused(488, "Not Acceptable Here", "no usable a=crypto or a=key-mgmt")

    async def _mikey(self, data: bytes, caller: str) -> str:
        """Responder: RESOLVE at the KMS, TRANSFER_RESP; the audio keyed from its TEKs."""
        assert self.audio is not None
        options = self.options
        if not options.kms_url or not options.kms_key:
            raise _Refused(500, "Server Internal Error", "--mikey needs --kms and --kms-key")
        identity = str(SipUri.parse(options.kms_identity or options.identity).aor).encode()
        profile, now = MikeyProfile(), time.time()
        try:
            responder = MikeyTransferResponder.receive(
                data, identity_r=identity, kms_key=bytes.fromhex(options.kms_key), now=now,
                cache=None, profile=profile,
            )  # fmt: skip
            reply = await kms_exchange(options.kms_url, bytes(responder.resolve))
            resolved = responder.process_resolve_response(reply, now=now)
            entries = [
                e for e in responder.transfer.header.cs_map if isinstance(e, MikeyGenericIdEntry)
            ]
            streams = assign_crypto_sessions(entries, [(0, "RTP/SAVP")], profile.prot_types)
            if not streams or not streams[0].srtp:
                raise _Refused(488, "Not Acceptable Here", "no SRTP crypto session")
            rx_cs, tx_cs = streams[0].srtp[0], streams[0].srtp[-1]
            offered = responder.transfer.find_all(MikeySecurityPolicy)
            sessions, policies = responder_sessions(
                entries, offered, profile.prot_types, {tx_cs: self.audio.ssrc}
            )
            message, teks = responder.build_response(resolved, sessions, policies, now=now)
            by_no = {p.policy_no: p for p in [*offered, *policies]}
            chosen = next(s for s in sessions if s.cs_id == tx_cs)
            suite = srtp_suite(by_no[chosen.policy_nos[0]])
        except KmsUnavailable as exc:
            raise _Refused(503, "Service Unavailable", f"KMS unreachable: {exc}") from exc
        except (MikeyError, ValueError) as exc:
            raise _Refused(488, "Not Acceptable Here", f"MIKEY-TICKET refused: {exc}") from exc
        if any(s.prot_type != MikeyProtType.SRTP for s in sessions):
            raise _Refused(488, "Not Acceptable Here", "only SRTP crypto sessions are answered")
        tx, rx = teks[tx_cs], teks[rx_cs]
        self.audio.set_keys(suite, tx[1] + tx[2], rx[1] + rx[2], "mikey-ticket")
        initiator = resolved.initiator.decode("utf-8", "replace")
        self.emit({"event": "incoming", "from": caller, "key_mode": "mikey-ticket",
                   "initiator": initiator})  # fmt: skip
        return str(SdpKeyMgmt("mikey", bytes(message)))

    def _sdp(
        self,
        offer: SdpSession,
        port: int,
        attributes: list[SdpAttribute],
        session: list[SdpAttribute],
    ) -> SdpSession:
        host = self.options.listen[0]
        addrtype = "IP6" if ":" in host else "IP4"
        lines = [
            SdpMedia(
                m.kind,
                port if m.kind == "audio" and m.port else 0,
                m.proto,
                ["0"] if m.kind == "audio" else list(m.formats),
                attributes=[
                    SdpAttribute("rtpmap", "0 PCMU/8000"),
                    SdpAttribute("sendrecv"),
                    *attributes,
                ]
                if m.kind == "audio"
                else [],
            )  # fmt: skip
            for m in offer.media
        ]
        return SdpSession(
            origin=SdpOrigin("mrf-ue", secrets.randbelow(2**31), 1, host, addrtype),
            name="-", connection=SdpConnection(host, addrtype), timings=[SdpTiming()],
            attributes=session, media=lines,
        )  # fmt: skip

    # -- the end --------------------------------------------------------------------

    async def _ended(self, reason: str) -> None:
        if self.ended.is_set():
            return
        if self._audio_task is not None:
            try:
                async with asyncio.timeout(3):
                    await self._audio_task  # the media event comes out first
            except (TimeoutError, asyncio.CancelledError):
                pass
        self.emit({"event": "left", "reason": reason})
        self.ended.set()

    async def hang_up(self) -> None:
        """``--duration`` elapsed: BYE (bounded wait)."""
        if self.dialog is not None and self.endpoint is not None and not self.ended.is_set():
            bye = self.dialog.create_request("BYE")
            try:
                async with asyncio.timeout(5):
                    await self.endpoint.request(bye, uri_address(self.dialog.next_hop()))
            except (TimeoutError, SipError, OSError):
                pass
        await self._ended("duration")

    async def close(self) -> None:
        if self._audio_task is not None:
            self._audio_task.cancel()
        if self.audio is not None:
            self.audio.close()
        if self.endpoint is not None:
            await self.endpoint.close()


async def run_answer(options: UeAnswerOptions, emit: Emit, duration: float | None) -> int:
    """Listen, answer one call, return 0 once it ended (1 when we refused it)."""
    answerer = UeAnswerer(options, emit)
    try:
        await answerer.listen()
        try:
            async with asyncio.timeout(duration):
                await answerer.ended.wait()
        except TimeoutError:
            await answerer.hang_up()
        return 0 if answerer.dialog is not None else 1
    finally:
        await answerer.close()
