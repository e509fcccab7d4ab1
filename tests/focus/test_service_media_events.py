"""Media-plane events reaching the focus: a failed DTLS handshake hangs the call up
(RFC 5763 §5: no keys, no call) and telephone-events show in the roster (RFC 4733)."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

from focus.events import ParticipantLeft, ParticipantUpdated
from focus.sdp.attributes import SdpFingerprint
from mrf.rtp.dtls import RtpDtlsCertificate, RtpDtlsSession

from .test_service import ack, call, invite, offer_sdp, rig, run, until

HOST = "127.0.0.1"


class DtlsPeer(asyncio.DatagramProtocol):
    """The participant's media socket: a DTLS server answering the focus's ClientHello."""

    def __init__(self, session: RtpDtlsSession) -> None:
        self.session = session
        self.transport: asyncio.DatagramTransport | None = None
        self.datagrams = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams += 1
        if 20 <= data[0] <= 63:  # DTLS (RFC 7983 §7)
            for reply in self.session.receive(data):
                assert self.transport is not None
                self.transport.sendto(reply, addr)


def dtls_offer(port: int, fingerprint: SdpFingerprint) -> bytes:
    extra = f"a=setup:actpass\r\na=fingerprint:{fingerprint}\r\n"
    return offer_sdp(port, b"", proto="UDP/TLS/RTP/SAVP", extra_media=extra)


def test_dtls_fingerprint_mismatch_hangs_up_with_bye(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.focus.attach(r.server)
            r.focus.directory.store.update_policy("retro", key_modes=("sdes", "dtls"))
            r.focus.directory.invalidate("retro")
            events: list[object] = []
            r.focus.subscribe(events.append)
            ours, announced = RtpDtlsCertificate.generate(), RtpDtlsCertificate.generate()
            session = RtpDtlsSession(ours, client=False, fingerprints=[ours.fingerprint()])
            loop = asyncio.get_running_loop()
            transport, peer = await loop.create_datagram_endpoint(
                lambda: DtlsPeer(session), local_addr=(HOST, 0)
            )
            try:
                port = transport.get_extra_info("sockname")[1]
                request = invite(r, "udp", "retro", dtls_offer(port, announced.fingerprint()))
                response = await call(r, request)
                assert response.status == 200, response.status
                assert re.search(r"a=setup:active", response.body.decode())
                ack(r, request, response, "udp")
                await until(lambda: any(q.method == "BYE" for q in r.handler.requests))
                (bye,) = r.handler.requests
                assert 'text="DTLS handshake failed"' in (bye.headers.get("Reason") or "")
                assert peer.datagrams >= 1  # the focus (DTLS client) sent its ClientHello
                assert r.focus.calls == [] and len(r.media) == 0
                left = [e for e in events if isinstance(e, ParticipantLeft)]
                assert [e.reason for e in left] == ["DTLS handshake failed"]
            finally:
                transport.close()

    run(main)


def test_matching_fingerprint_keeps_the_call(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.focus.attach(r.server)
            r.focus.directory.store.update_policy("retro", key_modes=("sdes", "dtls"))
            r.focus.directory.invalidate("retro")
            ours = RtpDtlsCertificate.generate()
            focus_fp = r.media.dtls_fingerprint
            session = RtpDtlsSession(ours, client=False, fingerprints=[focus_fp])
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: DtlsPeer(session), local_addr=(HOST, 0)
            )
            try:
                port = transport.get_extra_info("sockname")[1]
                request = invite(r, "udp", "retro", dtls_offer(port, ours.fingerprint()))
                response = await call(r, request)
                assert response.status == 200
                ack(r, request, response, "udp")
                await until(lambda: session.keys is not None)
                # keyed by the exporter once the focus has the peer's last flight too
                await until(lambda: r.focus.calls and r.focus.calls[0].streams[0].suite is not None)
                assert r.handler.requests == [] and len(r.focus.calls) == 1
            finally:
                transport.close()

    run(main)


async def joined_with_events(r: Any) -> tuple[list[object], dict[str, object]]:
    """One dial-in participant of "retro", and the focus events from before it joined."""
    events: list[object] = []
    r.focus.subscribe(events.append)
    request = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
    response = await call(r, request)
    ack(r, request, response, "udp")
    (entry,) = r.focus.roster("retro")
    return events, entry


def test_telephone_event_in_the_roster_and_an_update_event(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            events, entry = await joined_with_events(r)
            assert entry["last_dtmf"] is None
            call_id = str(entry["call_id"])
            assert r.focus.note_dtmf(call_id, "5", 160)
            (entry,) = r.focus.roster("retro")
            dtmf = entry["last_dtmf"]
            assert isinstance(dtmf, dict)
            assert (dtmf["event"], dtmf["duration_ms"]) == ("5", 160)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(dtmf["at"]))
            updated = [e for e in events if isinstance(e, ParticipantUpdated)]
            assert [e.call_id for e in updated] == [call_id]
            assert not r.focus.note_dtmf("no-such-call", "1", 100)

    run(main)


def test_talking_in_the_roster_and_one_update_event_per_change(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            events, entry = await joined_with_events(r)
            assert entry["talking"] is False
            call_id = str(entry["call_id"])
            assert r.focus.note_talking(call_id, frozenset({0}))
            assert r.focus.note_talking(call_id, frozenset({0}))  # unchanged: no event
            assert r.focus.roster("retro")[0]["talking"] is True
            assert r.focus.note_talking(call_id, frozenset())
            assert r.focus.roster("retro")[0]["talking"] is False
            updated = [e for e in events if isinstance(e, ParticipantUpdated)]
            assert [e.call_id for e in updated] == [call_id, call_id]
            assert not r.focus.note_talking("no-such-call", frozenset({0}))

    run(main)
