"""Dial-out and REFER in one process: the focus INVITEs a participant endpoint.

The participant side answers with our own offer/answer code, so the keys of
both sides can be checked; what it receives on its media socket is recorded.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pylibsrtp
import pytest

from focus.dialout import DialOutConfig, DialOutError, FocusDialOut
from focus.endpoint import SipEndpoint
from focus.sdp.offer_answer import build_answer, plan_answer
from focus.sdp.session import SdpSession
from focus.service import FocusConfig, FocusService
from focus.sip.message import SipHeaders, SipRequest, make_response
from focus.store import ConferenceStore
from mrf.rtp.packet import RtpPacket
from mrf.rtp.plane import MediaPlane

HOST = "127.0.0.1"
PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80


class Media(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)


@dataclass
class Participant:
    """A UA that answers INVITEs as told: ``mode`` is answer/busy/ring/decline."""

    mode: str = "answer"
    asserted: str | None = None  # P-Asserted-Identity put on the 200
    media_port: int = 0
    requests: list[SipRequest] = field(default_factory=list)
    keys: dict[str, bytes] = field(default_factory=dict)
    invites: dict[str, str] = field(default_factory=dict)

    def handle_request(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        request = event.request
        self.requests.append(request)
        if request.method != "INVITE":
            status = 202 if request.method == "REFER" else 200
            endpoint.respond(event.key, make_response(request, status))
            return
        tag = secrets.token_hex(4)
        if self.mode == "busy":
            endpoint.respond(event.key, make_response(request, 486, "Busy Here", to_tag=tag))
        elif self.mode == "decline":
            endpoint.respond(event.key, make_response(request, 603, "Decline", to_tag=tag))
        elif self.mode == "ring":
            self.invites[request.call_id] = event.key
            endpoint.respond(event.key, make_response(request, 180, "Ringing", to_tag=tag))
        else:
            endpoint.respond(event.key, self._answer(endpoint, request, tag))

    def _answer(self, endpoint: SipEndpoint, request: SipRequest, tag: str):  # type: ignore[no-untyped-def]
        offer = SdpSession.parse(request.body)
        plan = plan_answer(offer)
        crypto = plan.streams[0].crypto
        assert crypto is not None
        self.keys = {"ours": bytes(crypto.local_key_salt), "focus": bytes(crypto.remote_key_salt)}
        answer = build_answer(offer, plan, local_host=HOST, ports={0: self.media_port},
                              session_id=1, session_version=1)  # fmt: skip
        local = endpoint.local_address("udp")
        headers = [("Contact", f"<sip:bob@{local.host}:{local.port}>")]
        if self.asserted:
            headers.append(("P-Asserted-Identity", f"<{self.asserted}>"))
        return make_response(request, 200, "OK", to_tag=tag, headers=headers,
                             body=str(answer).encode(), content_type="application/sdp")  # fmt: skip

    def handle_ack(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        self.requests.append(event.request)

    def handle_cancel(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        self.requests.append(event.request)
        # RFC 3261 §9.2: the 487 answers the INVITE (its CSeq method), not the CANCEL
        invite = next((r for r in self.requests if r.method == "INVITE"
                       and r.call_id == event.request.call_id), event.request)  # fmt: skip
        endpoint.respond(event.invite_key, make_response(invite, 487))

    def handle_timeout(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


@dataclass
class Rig:
    focus: FocusService
    dialout: FocusDialOut
    server: SipEndpoint
    ua: SipEndpoint
    participant: Participant
    media: MediaPlane
    rtp: Media
    bob: str


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    trusted: bool = False,
    ring_timeout: float = 5.0,
    mode: str = "answer",
    asserted: str | None = None,
    sdes_requires_tls: bool = False,
) -> AsyncIterator[Rig]:
    store = ConferenceStore(f"sqlite:///{tmp_path / 'mrf.db'}")
    store.create_all()
    media = MediaPlane(HOST, (43300, 43399))
    loop = asyncio.get_running_loop()
    rtp_transport, rtp = await loop.create_datagram_endpoint(Media, local_addr=(HOST, 0))
    participant = Participant(mode, asserted, rtp_transport.get_extra_info("sockname")[1])
    ua = SipEndpoint(participant)
    ua_address = await ua.listen_udp(HOST, 0)
    bob = f"sip:bob@{HOST}:{ua_address.port}"
    store.create_conference("retro", [("sip:bob@127.0.0.1", "participant"),
                                      ("sip:carol@127.0.0.1", "chair"),
                                      ("sip:dave@127.0.0.1", "participant")])  # fmt: skip
    proxies = frozenset({HOST}) if trusted else frozenset()
    config = FocusConfig(domain=HOST, trusted_proxies=proxies, sdes_requires_tls=sdes_requires_tls)
    focus = FocusService(store, media, config)
    server = SipEndpoint(focus)
    focus.attach(server)
    await server.listen_udp(HOST, 0)
    dialout = FocusDialOut(focus, DialOutConfig(ring_timeout=ring_timeout, cancel_timeout=2.0))
    try:
        async with asyncio.timeout(30):
            yield Rig(focus, dialout, server, ua, participant, media, rtp, bob)
    finally:
        await dialout.close()
        await focus.shutdown(server)
        await server.close()
        await ua.close()
        rtp_transport.close()
        media.close()
        store.close()


def run(factory: Callable[[], object]) -> None:
    asyncio.run(factory())  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_dial_out_connects_with_per_participant_keys(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            call = await r.dialout.dial("retro", r.bob)
            assert call.state == "connected" and call.joined_by == "dial-out"
            await until(lambda: r.participant.methods() == ["INVITE", "ACK"])
            entry = r.focus.roster("retro")[0]
            assert (entry["uri"], entry["joined_by"]) == ("sip:bob@127.0.0.1", "dial-out")
            # the focus sends with the key of the crypto line bob chose (tag 1)
            await until(lambda: len(r.rtp.received) >= 2)
            rx = pylibsrtp.Session(pylibsrtp.Policy(key=r.participant.keys["focus"],
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=PROFILE))  # fmt: skip
            assert RtpPacket.parse(rx.unprotect(r.rtp.received[0])).payload_type == 0
            # bob's BYE ends it like a dial-in call
            await r.focus.hang_up(call.call_id, "test over")
            await until(lambda: r.participant.methods()[-1] == "BYE")
            assert r.focus.calls == []

    run(main)


@pytest.mark.parametrize(
    ("key_modes", "sdes"),
    [
        (("sdes", "mikey-ticket", "dtls", "fingerprint"), True),  # the default: SDES offer
        (("mikey-ticket", "fingerprint"), False),  # no SDES: the offer must be MIKEY-TICKET
    ],
)
def test_the_dial_out_offer_follows_the_key_modes(
    tmp_path: Path, key_modes: tuple[str, ...], sdes: bool
) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.focus.directory.store.update_policy("retro", key_modes=key_modes)  # type: ignore[attr-defined]
            r.focus.directory.invalidate()
            call = await r.dialout.dial("retro", r.bob)
            if sdes:
                assert call.state == "connected", call.reason
            else:  # this rig has no KMS: refused before anything is sent
                assert (call.state, call.reason) == (
                    "failed",
                    "488 no KMS configured for MIKEY-TICKET",
                )
                assert r.participant.methods() == []

    run(main)


@pytest.mark.parametrize(
    ("mode", "reason"), [("busy", "486 Busy Here"), ("decline", "603 Decline")]
)
def test_refusals_are_shown_in_the_roster(tmp_path: Path, mode: str, reason: str) -> None:
    async def main() -> None:
        async with rig(tmp_path, mode=mode) as r:
            call = await r.dialout.dial("retro", r.bob)
            assert (call.state, call.reason) == ("failed", reason)
            (entry,) = r.focus.roster("retro")
            assert (entry["state"], entry["reason"]) == ("failed", reason)
            assert len(r.media) == 0

    run(main)


def test_ring_timeout_cancels(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, mode="ring", ring_timeout=0.5) as r:
            call = r.dialout.start("retro", r.bob)
            await until(lambda: call.state == "ringing")
            await until(lambda: call.state == "failed")
            assert call.reason == "408 ring timeout"
            assert "CANCEL" in r.participant.methods() and len(r.media) == 0

    run(main)


def test_a_ringing_dial_out_is_cancelled_and_then_dismissed(tmp_path: Path) -> None:
    """The web's Cancel: CANCEL, 487, failed in the roster; Dismiss drops the entry."""

    async def main() -> None:
        async with rig(tmp_path, mode="ring", ring_timeout=20) as r:
            call = r.dialout.start("retro", r.bob)
            await until(lambda: call.state == "ringing")
            assert r.dialout.cancel(call.call_id)
            await until(lambda: call.state == "failed")
            assert r.participant.methods() == ["INVITE", "CANCEL"]
            assert call.reason is not None and call.reason.startswith("487")
            assert not r.dialout.cancel(call.call_id), "nothing left to cancel"
            assert [e["state"] for e in r.focus.roster("retro")] == ["failed"]
            assert r.dialout.dismiss(call.call_id) and r.focus.roster("retro") == []
            assert not r.dialout.dismiss(call.call_id)
            assert len(r.media) == 0

    run(main)


def test_shutdown_cancels_a_ringing_dial_out(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, mode="ring", ring_timeout=20) as r:
            call = r.dialout.start("retro", r.bob)
            await until(lambda: call.state == "ringing")
            await r.dialout.close()  # what mrf serve does first when it stops
            assert r.participant.methods() == ["INVITE", "CANCEL"]
            assert call.state == "failed" and "shutdown" in (call.reason or "")

    run(main)


@pytest.mark.parametrize("asserted", [None, "sip:mallory@127.0.0.1", "sip:dave@127.0.0.1"])
def test_retargeted_answer_is_dropped_without_media(tmp_path: Path, asserted: str | None) -> None:
    async def main() -> None:
        async with rig(tmp_path, trusted=True, asserted=asserted) as r:
            call = await r.dialout.dial("retro", r.bob)
            assert call.state == "failed" and call.reason and call.reason.startswith("403")
            await until(lambda: r.participant.methods() == ["INVITE", "ACK", "BYE"])
            await asyncio.sleep(0.2)
            assert r.rtp.received == []  # not one RTP packet, keyed or not
            assert r.focus.calls == [] and len(r.media) == 0

    run(main)


def test_trusted_answer_with_the_invited_identity_joins(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, trusted=True, asserted="sip:bob@127.0.0.1") as r:
            assert (await r.dialout.dial("retro", r.bob)).state == "connected"

    run(main)


def test_only_authorized_identities_are_dialled(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            with pytest.raises(DialOutError) as caught:
                await r.dialout.dial("retro", "sip:eve@127.0.0.1:5999")
            assert caught.value.status == 403
            with pytest.raises(DialOutError):
                await r.dialout.dial("nosuch", r.bob)
            assert r.participant.requests == []

    run(main)


@pytest.mark.parametrize("trusted", [False, True])
def test_sdes_dial_out_needs_protected_signalling(tmp_path: Path, trusted: bool) -> None:
    """``sdes_requires_tls``: no SDES offer over plain UDP unless to a trusted proxy."""

    async def main() -> None:
        asserted = "sip:bob@127.0.0.1" if trusted else None  # a proxy asserts who answered
        async with rig(tmp_path, trusted=trusted, asserted=asserted, sdes_requires_tls=True) as r:
            if trusted:
                call = await r.dialout.dial("retro", r.bob)
                assert call.state.value == "connected"
                return
            with pytest.raises(DialOutError) as caught:
                await r.dialout.dial("retro", r.bob)
            assert caught.value.status == 488 and "sdes_requires_tls" in caught.value.detail
            assert r.participant.requests == [] and r.dialout.pending == {}

    run(main)


def refer_request(r: Rig, sender: str, target: str) -> SipRequest:
    headers = SipHeaders()
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<{sender}>;tag={secrets.token_hex(4)}")
    headers.add("To", "<sip:retro@127.0.0.1>")
    headers.add("Call-ID", secrets.token_hex(8))
    headers.add("CSeq", "1 REFER")
    local = r.ua.local_address("udp")
    headers.add("Contact", f"<sip:carol@{local.host}:{local.port}>")
    headers.add("Refer-To", f"<{target}>")
    server = r.server.local_address("udp")
    return SipRequest("REFER", f"sip:retro@{server.host}:{server.port}", headers)


@pytest.mark.parametrize(("sender", "status"), [("sip:carol@127.0.0.1", 202),
                                                 ("sip:dave@127.0.0.1", 403)])  # fmt: skip
def test_chair_refer_brings_a_participant_in(tmp_path: Path, sender: str, status: int) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            request = refer_request(r, sender, r.bob)
            response = await r.ua.request(request, r.server.local_address("udp"))
            assert response.status == status
            if status != 202:
                return
            await until(lambda: r.participant.methods().count("NOTIFY") == 2)
            notifies = [q for q in r.participant.requests if q.method == "NOTIFY"]
            assert [n.body.split(b"\r\n")[0] for n in notifies] == [
                b"SIP/2.0 100 Trying", b"SIP/2.0 200 OK"]  # fmt: skip
            assert notifies[-1].headers.get("Subscription-State", "").startswith("terminated")
            assert re.match(r"message/sipfrag", notifies[0].headers.get("Content-Type", ""))
            assert "INVITE" in r.participant.methods()
            assert [e["uri"] for e in r.focus.roster("retro")] == ["sip:bob@127.0.0.1"]

    run(main)


def test_refer_to_a_participant_names_the_conference(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            call = await r.dialout.dial("retro", r.bob)
            assert await r.dialout.refer(call.call_id) == 202
            refer = r.participant.requests[-1]
            assert refer.method == "REFER"
            port = r.server.local_address("udp").port
            assert refer.headers.get("Refer-To") == f"<sip:retro@127.0.0.1:{port}>"

    run(main)
