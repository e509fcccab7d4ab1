"""Dial-out with chat and floor control: the offer follows the conference policy.

The focus serves chat (``mrf.chat.ChatRelay``) and floor control
(``mrf.floor.FloorControl``) over TLS, so its dial-out offer carries SDES audio,
``TCP/TLS/MSRP`` and ``TCP/TLS/BFCP`` (RFC 8856 §10.1: the focus is the floor
control server).  Each participant is a SIP endpoint answering with our own
participant code (:class:`mrf.ue.chat.UeChat`, :class:`mrf.ue.bfcp.UeFloor`):
``a=setup:active`` and its certificate's fingerprint; then a chat message goes
from one dialled-out participant to the other and a floor request is granted
over the dialled-out BFCP session.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from focus.call import CallState
from focus.dialout import DialOutConfig, FocusDialOut
from focus.endpoint import SipEndpoint
from focus.sdp.attributes import SdpSetup, setup
from focus.sdp.offer_answer import build_answer, plan_answer
from focus.sdp.session import SdpAttribute, SdpMedia, SdpSession
from focus.service import FocusConfig, FocusService
from focus.sip.message import make_response
from focus.store import ConferenceStore
from mrf.chat import ChatRelay, start_chat_relay
from mrf.floor import FloorControl, start_floor_control
from mrf.rtp.plane import MediaPlane
from mrf.tls import ensure_certificate
from mrf.ue.bfcp import UeFloor
from mrf.ue.chat import UeChat

HOST = "127.0.0.1"
BOB, DAVE = "sip:bob@127.0.0.1", "sip:dave@127.0.0.1"


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@dataclass
class Answerer:
    """A participant that answers the focus's INVITE with audio, chat and floor control."""

    identity: str
    chat: UeChat
    floor: UeFloor
    media_port: int
    answer_chat: bool = True  # False: reject the chat line (port 0)
    offers: list[SdpSession] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def handle_request(self, endpoint: SipEndpoint, event: Any) -> None:
        request = event.request
        if request.method != "INVITE":
            endpoint.respond(event.key, make_response(request, 200))
            return
        offer = SdpSession.parse(request.body)
        self.offers.append(offer)
        asyncio.ensure_future(self._answer(endpoint, event, offer))

    async def _answer(self, endpoint: SipEndpoint, event: Any, offer: SdpSession) -> None:
        plan = plan_answer(offer)  # audio only: the other lines come back with port 0
        answer = build_answer(offer, plan, local_host=HOST, ports={0: self.media_port},
                              session_id=1, session_version=1)  # fmt: skip
        if self.answer_chat:
            chat = await self.chat.listen()  # our path and fingerprint; we connect:
            chat.attributes = [a for a in chat.attributes if a.name != "setup"]
            chat.attributes.append(SdpAttribute("setup", "active"))
            answer.media[1] = chat
        answer.media[2] = self.floor.offer_media()  # c-only, a=setup:active, port 9
        local = endpoint.local_address("udp")
        headers = [("Contact", f"<{self.identity.replace(HOST, f'{HOST}:{local.port}')}>")]
        response = make_response(event.request, 200, "OK", to_tag=secrets.token_hex(4),
                                 headers=headers, body=str(answer).encode(),
                                 content_type="application/sdp")  # fmt: skip
        endpoint.respond(event.key, response)
        self.answered.set()

    async def start(self, room: str) -> None:
        """Act on the focus's offer, as on an answer: connect chat and BFCP, check TLS."""
        offer = self.offers[-1]
        if self.answer_chat:
            await self.chat.start(offer, offer.media[1], room)
            await asyncio.wait_for(self.chat.ready.wait(), 10)
        await self.floor.start(offer, offer.media[2])
        await asyncio.wait_for(self.floor.ready.wait(), 10)

    def handle_ack(self, endpoint: SipEndpoint, event: Any) -> None:
        pass

    def handle_cancel(self, endpoint: SipEndpoint, event: Any) -> None:
        pass

    def handle_timeout(self, endpoint: SipEndpoint, event: Any) -> None:
        pass

    def chats(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "chat"]

    def floors(self, status: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "floor" and e["status"] == status]


@dataclass
class Rig:
    focus: FocusService
    dialout: FocusDialOut
    chat: ChatRelay
    floor: FloorControl
    parties: dict[str, tuple[Answerer, str]]  # identity -> (answerer, dialable URI)


@asynccontextmanager
async def rig(tmp_path: Path, *, answer_chat: bool = True) -> AsyncIterator[Rig]:
    store = ConferenceStore(f"sqlite:///{tmp_path / 'mrf.db'}")
    store.create_all()
    store.create_conference("retro", [(BOB, "participant"), (DAVE, "participant")])
    media = MediaPlane(HOST, (43400, 43499))
    focus = FocusService(store, media, FocusConfig(domain=HOST))
    cert, key = ensure_certificate(tmp_path / "focus")
    chat = await start_chat_relay(HOST, 0, cert, key)
    focus.chat = chat
    floor = await start_floor_control(HOST, 0, cert, key)
    floor.attach(focus)
    server = SipEndpoint(focus)
    focus.attach(server)
    await server.listen_udp(HOST, 0)
    dialout = FocusDialOut(focus, DialOutConfig(ring_timeout=5.0))
    endpoints: list[SipEndpoint] = []
    parties: dict[str, tuple[Answerer, str]] = {}
    loop = asyncio.get_running_loop()
    sockets = []
    for identity in (BOB, DAVE):
        name = identity[4:].split("@")[0]
        pcert, pkey = ensure_certificate(tmp_path / name)
        events: list[dict[str, Any]] = []
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                           local_addr=(HOST, 0))  # fmt: skip
        sockets.append(transport)
        answerer = Answerer(
            identity, UeChat(HOST, identity, pcert, pkey, events.append),
            UeFloor(HOST, pcert, pkey, events.append), transport.get_extra_info("sockname")[1],
            answer_chat=answer_chat, events=events,
        )  # fmt: skip
        endpoint = SipEndpoint(answerer)
        address = await endpoint.listen_udp(HOST, 0)
        endpoints.append(endpoint)
        parties[identity] = (answerer, f"{identity}:{address.port}")
    try:
        async with asyncio.timeout(40):
            yield Rig(focus, dialout, chat, floor, parties)
    finally:
        for answerer, _ in parties.values():
            await answerer.chat.close()
            await answerer.floor.close()
        await dialout.close()
        await focus.shutdown(server)
        await chat.close_all()
        await floor.close_all()
        await server.close()
        for endpoint in endpoints:
            await endpoint.close()
        for transport in sockets:
            transport.close()
        media.close()
        store.close()


def _line(offer: SdpSession, kind: str) -> SdpMedia:
    (media,) = [m for m in offer.media if m.kind == kind]
    return media


def test_offer_carries_sdes_audio_msrp_and_bfcp_as_floor_server(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            bob, uri = r.parties[BOB]
            call = await r.dialout.dial("retro", uri)
            assert call.state is CallState.CONNECTED, call.reason
            (offer,) = bob.offers
            assert [(m.kind, m.proto) for m in offer.media] == [
                ("audio", "RTP/SAVP"), ("message", "TCP/TLS/MSRP"),
                ("application", "TCP/TLS/BFCP"),
            ]  # fmt: skip
            audio, chat, floor = offer.media
            assert audio.get_attributes("crypto") and audio.get_attribute("label")
            for line in (chat, floor):
                assert setup(line, offer) is SdpSetup.ACTPASS
                (fingerprint,) = line.get_attributes("fingerprint")
                assert fingerprint.value == str(r.chat.fingerprint)
            assert (chat.get_attribute("path").value or "").startswith(f"msrps://{HOST}:")
            assert chat.port == r.chat.port and floor.port == r.floor.port
            values = {a.name: a.value for a in floor.attributes}
            assert values["floorctrl"] == "s-only" and values["bfcpver"] == "1"
            label = audio.get_attribute("label").value
            assert values["floorid"] == f"1 mstrm:{label}"
            assert values["confid"].isdigit() and values["userid"].isdigit()
            (entry,) = r.focus.roster("retro")
            kinds = {m["type"]: m["key_mode"] for m in entry["media"]}  # type: ignore[attr-defined]
            assert kinds == {"audio": "sdes", "msrp": "fingerprint", "bfcp": "fingerprint"}

    asyncio.run(main())


def test_chat_and_floor_grant_over_dialled_out_sessions(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            calls = {}
            for identity in (BOB, DAVE):
                answerer, uri = r.parties[identity]
                calls[identity] = await r.dialout.dial("retro", uri)
                assert calls[identity].state is CallState.CONNECTED, calls[identity].reason
                await answerer.start(calls[identity].conference_uri)
            bob, dave = r.parties[BOB][0], r.parties[DAVE][0]
            bob.chat.say("hello from a dialled-out bob")
            await until(dave.chats)
            (message,) = dave.chats()
            assert message["from"] == BOB and message["text"] == "hello from a dialled-out bob"
            assert not bob.chats()  # the switch never echoes to the sender
            bob.floor.request()
            await until(lambda: bob.floors("granted"))
            offer = bob.offers[-1]
            userid = _line(offer, "application").get_attribute("userid")
            assert bob.floor.answer is not None
            assert str(bob.floor.answer.user_id) == userid.value  # type: ignore[union-attr]
            # leaving releases: the other participant's request is granted next
            dave.floor.request()
            await until(lambda: dave.floors("pending") or dave.floors("granted"))
            await r.focus.hang_up(calls[BOB].call_id, "done")
            await until(lambda: dave.floors("granted"))
            assert r.floor.sessions and all(s.identity == DAVE for s in r.floor.sessions.values())

    asyncio.run(main())


def test_a_rejected_chat_line_is_not_opened_and_failures_release(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, answer_chat=False) as r:
            bob, uri = r.parties[BOB]
            call = await r.dialout.dial("retro", uri)
            assert call.state is CallState.CONNECTED, call.reason
            assert call.chat == {} and not r.chat.sessions and not r.chat._offered
            assert len(call.floor) == 1
            # a dial-out that fails after its offer releases what it reserved
            r.dialout.config = DialOutConfig(ring_timeout=0.5, cancel_timeout=0.5)
            dave, dave_uri = r.parties[DAVE]
            dave.handle_request = lambda endpoint, event: None  # type: ignore[method-assign]
            failed = await r.dialout.dial("retro", dave_uri)
            assert failed.state is CallState.FAILED
            assert not r.chat._offered and not r.floor._offered
            users = [u.uri for c in r.floor.server.conferences.values() for u in c.users.values()]
            assert users == [BOB]

    asyncio.run(main())


@pytest.mark.parametrize("served", ["none", "chat"])
def test_only_what_the_focus_serves_is_offered(tmp_path: Path, served: str) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.focus.floor = None
            if served == "none":
                r.focus.chat = None
            bob, uri = r.parties[BOB]
            bob.handle_request = _audio_only_answer(bob)  # type: ignore[method-assign]
            call = await r.dialout.dial("retro", uri)
            assert call.state is CallState.CONNECTED, call.reason
            kinds = [m.kind for m in bob.offers[-1].media]
            assert kinds == (["audio"] if served == "none" else ["audio", "message"])

    asyncio.run(main())


def _audio_only_answer(answerer: Answerer) -> Callable[[SipEndpoint, Any], None]:
    def handle(endpoint: SipEndpoint, event: Any) -> None:
        request = event.request
        if request.method != "INVITE":
            endpoint.respond(event.key, make_response(request, 200))
            return
        offer = SdpSession.parse(request.body)
        answerer.offers.append(offer)
        answer = build_answer(offer, plan_answer(offer), local_host=HOST,
                              ports={0: answerer.media_port}, session_id=1,
                              session_version=1)  # fmt: skip
        contact = f"<sip:bob@{HOST}:{endpoint.local_address('udp').port}>"
        endpoint.respond(event.key, make_response(request, 200, "OK", to_tag="t1",
                         headers=[("Contact", contact)], body=str(answer).encode(),
                         content_type="application/sdp"))  # fmt: skip

    return handle
