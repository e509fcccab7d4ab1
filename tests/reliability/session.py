"""A minimal dial-in over SIP/UDP that opens MSRP and BFCP TLS lines (for the fuzzers).

The offer carries our certificate's SHA-256 ``a=fingerprint`` (RFC 8122 §5)
with ``a=setup:active`` on the MSRP (RFC 6135) and BFCP (RFC 8856 §7) lines,
so we connect to the focus's listeners and the focus accepts our TLS
connection only because the certificate matches; what we then send on it is
up to the fuzzer.  Raw sockets and hand-built messages: the point is to stay
independent of the code under test except the SDP helpers that build offers.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from focus.sdp.attributes import SdpFingerprint
from focus.sdp.bfcp import bfcp_offer_media
from focus.sdp.msrp import SdpMsrpLocal, msrp_offer_media
from focus.sdp.session import (
    SdpAttribute,
    SdpConnection,
    SdpMedia,
    SdpOrigin,
    SdpSession,
    SdpTiming,
)
from mrf.tls import certificate_der, ensure_certificate

_FINAL = re.compile(rb"^SIP/2\.0 ([2-6]\d\d) ", re.M)


@dataclass
class DialIn:
    """One admitted participant's lines: where to connect and the ids to use."""

    call_id: str
    from_tag: str
    to_tag: str
    contact: str
    msrp_host: str
    msrp_port: int
    focus_path: str
    our_path: str
    bfcp_host: str
    bfcp_port: int
    conference_id: int
    user_id: int


class DialInError(Exception):
    """The focus refused the INVITE or answered something unusable."""


class Identity:
    """Our certificate (fingerprint-valid for the SDP we send)."""

    def __init__(self, directory: Path) -> None:
        self.cert, self.key = ensure_certificate(directory)
        der = certificate_der(self.cert.read_bytes())
        self.fingerprint = SdpFingerprint.from_certificate(der)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the fuzzer does not judge the focus
        context.load_cert_chain(self.cert, self.key)
        return context


def offer(identity: Identity, host: str, session_id: str) -> bytes:
    """SDP with an m=message (TLS, setup active) and an m=application BFCP line."""
    msrp = msrp_offer_media(SdpMsrpLocal(host, 9, session_id, identity.fingerprint))
    msrp.attributes = [a for a in msrp.attributes if a.name != "setup"]
    msrp.attributes.append(SdpAttribute("setup", "active"))
    bfcp = bfcp_offer_media(9, identity.fingerprint)
    key = base64.b64encode(secrets.token_bytes(30)).decode()
    audio_attributes = [
        SdpAttribute("rtpmap", "0 PCMU/8000"), SdpAttribute("sendrecv"),
        SdpAttribute("crypto", f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
    ]  # fmt: skip
    audio = SdpMedia("audio", 9, "RTP/SAVP", ["0"], attributes=audio_attributes)
    return bytes(
        SdpSession(
            origin=SdpOrigin("fuzz", 1, 1, host, "IP4"), name="-",
            connection=SdpConnection(host, "IP4"), timings=[SdpTiming()], media=[audio, msrp, bfcp],
        )
    )  # fmt: skip


class _Uac(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)


def _header(message: bytes, name: str) -> str:
    match = re.search(rf"^{name}:[ \t]*(.*?)\r$".encode(), message, re.M | re.I)
    return match[1].decode() if match else ""


async def dial_in(
    host: str, port: int, conference_user: str, caller: str, identity: Identity
) -> DialIn:
    """INVITE → 200 → ACK; raises :class:`DialInError` on anything but 2xx."""
    loop = asyncio.get_running_loop()
    transport, uac = await loop.create_datagram_endpoint(
        _Uac, local_addr=(host, 0), remote_addr=(host, port)
    )
    try:
        return await asyncio.wait_for(
            _invite(transport, uac, host, port, conference_user, caller, identity), 10
        )
    finally:
        transport.close()


async def _invite(
    transport: asyncio.DatagramTransport,
    uac: _Uac,
    host: str,
    port: int,
    user: str,
    caller: str,
    identity: Identity,
) -> DialIn:
    local = transport.get_extra_info("sockname")[1]
    session_id = secrets.token_urlsafe(12)
    body = offer(identity, host, session_id)
    call_id, tag = f"{secrets.token_hex(8)}@fuzz", secrets.token_hex(4)
    uri = f"sip:{user}@{host}:{port}"
    head = (
        f"INVITE {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{caller}>;tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:fuzz@{host}:{local}>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    transport.sendto(head.encode() + body)
    while True:
        response = await uac.queue.get()
        final = _FINAL.match(response)
        if final is not None:
            break
    status = int(final[1])
    to_tag = _header(response, "To").partition("tag=")[2].split(";")[0]
    contact = _header(response, "Contact").strip("<>").split(">")[0] or uri
    ack = (
        f"ACK {contact if status < 300 else uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{caller}>;tag={tag}\r\n"
        f"To: <{uri}>;tag={to_tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    if status >= 300:
        raise DialInError(f"INVITE answered {status}")
    transport.sendto(ack.encode())
    answer = SdpSession.parse(response.partition(b"\r\n\r\n")[2])
    msrp = next(m for m in answer.media if m.kind == "message" and m.port)
    bfcp = next(m for m in answer.media if m.kind == "application" and m.port)
    path = (msrp.get_attribute("path") or SdpAttribute("path", "")).value or ""
    msrp_addr = re.match(r"msrps://\[?([^\]/]+?)\]?:(\d+)/", path)
    if msrp_addr is None:
        raise DialInError(f"answer without an msrps a=path: {path!r}")
    bfcp_conn = answer.connection_for(bfcp)
    confid = (bfcp.get_attribute("confid") or SdpAttribute("confid", "0")).value
    userid = (bfcp.get_attribute("userid") or SdpAttribute("userid", "0")).value
    return DialIn(
        call_id, tag, to_tag, contact, msrp_addr[1], int(msrp_addr[2]), path,
        f"msrps://{host}:9/{session_id};tcp", bfcp_conn.address if bfcp_conn else host,
        bfcp.port, int(confid or 0), int(userid or 0),
    )  # fmt: skip


async def hang_up(host: str, port: int, caller: str, call: DialIn) -> None:
    """BYE (no wait for the answer: the focus ends the call either way)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(host, 0), remote_addr=(host, port)
    )
    local = transport.get_extra_info("sockname")[1]
    bye = (
        f"BYE {call.contact} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{caller}>;tag={call.from_tag}\r\n"
        f"To: <sip:x@{host}>;tag={call.to_tag}\r\nCall-ID: {call.call_id}\r\n"
        f"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    transport.sendto(bye.encode())
    await asyncio.sleep(0.01)
    transport.close()
