"""The focus's MSRP switch (mrf.chat.ChatRelay) with real TLS on loopback.

Participants are :class:`mrf.ue.chat.UeChat` (the client of ``mrf ue``); the
offer/answer runs through :mod:`focus.sdp.msrp` exactly as in a call, but
without SIP.  The focus connecting out: an offer with ``a=setup:passive``
makes the participant the TLS server, and the focus (TLS client) must check
the participant's certificate against the offer's ``a=fingerprint``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from focus.sdp.attributes import SdpSetup
from focus.sdp.msrp import msrp_answer_media, plan_msrp
from focus.sdp.offer_answer import SdpStreamPlan
from focus.sdp.session import SdpAttribute, SdpConnection, SdpOrigin, SdpSession, SdpTiming
from mrf.chat import ChatRelay, start_chat_relay
from mrf.tls import ensure_certificate
from mrf.ue.chat import UeChat

ROOM = "sip:chat@127.0.0.1"


def _session(media: Any) -> SdpSession:
    return SdpSession(
        origin=SdpOrigin("t", 1, 1, "127.0.0.1", "IP4"), name="-",
        connection=SdpConnection("127.0.0.1", "IP4"), timings=[SdpTiming()], media=[media],
    )  # fmt: skip


class Participant:
    def __init__(self, tmp: Path, name: str, *, bad_fingerprint: bool = False) -> None:
        self.name = name
        self.identity = f"sip:{name}@127.0.0.1"
        self.events: list[dict[str, Any]] = []
        cert, key = ensure_certificate(tmp / name)
        advertised = ensure_certificate(tmp / f"{name}-other")[0] if bad_fingerprint else None
        self.chat = UeChat("127.0.0.1", self.identity, cert, key, self.events.append,
                           advertised_cert=advertised)  # fmt: skip

    def chats(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "chat"]

    async def join(self, relay: ChatRelay, setup_role: SdpSetup) -> None:
        media = await self.chat.listen()
        media.attributes = [a for a in media.attributes if a.name != "setup"]
        media.attributes.append(SdpAttribute("setup", str(setup_role)))
        offer = SdpSession.parse(str(_session(media)))
        plan = plan_msrp(offer, offer.media[0], relay.policy)
        assert plan.we_connect is (setup_role is SdpSetup.PASSIVE)
        stream = SdpStreamPlan(0, "message", True, None, media.proto, msrp=plan)
        call = SimpleNamespace(call_id=f"call-{self.name}", conference=SimpleNamespace(name="chat"),
                               conference_uri=ROOM, participant=self.identity)  # fmt: skip
        local = relay.open(call, stream)
        answer = _session(msrp_answer_media(offer.media[0], plan, local, relay.policy))
        answer = SdpSession.parse(str(answer))
        await self.chat.start(answer, answer.media[0], ROOM)


@asynccontextmanager
async def focus(tmp: Path) -> AsyncIterator[ChatRelay]:
    cert, key = ensure_certificate(tmp / "focus")
    relay = await start_chat_relay("127.0.0.1", 0, cert, key)
    try:
        yield relay
    finally:
        await relay.close_all()


async def until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_the_focus_connects_to_a_passive_participant(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with focus(tmp_path) as relay:
            alice, bob = Participant(tmp_path, "alice"), Participant(tmp_path, "bob")
            await alice.join(relay, SdpSetup.PASSIVE)  # alice listens, the focus dials
            await bob.join(relay, SdpSetup.ACTPASS)  # bob dials the focus
            assert await until(lambda: alice.chat.ready.is_set() and bob.chat.ready.is_set())
            assert alice.chat.channel is not None and alice.chat.channel.server_side
            assert bob.chat.channel is not None and not bob.chat.channel.server_side
            # the focus bound alice's session on its own outgoing connection
            assert await until(lambda: all(s.link for s in relay.sessions.values()))
            alice.chat.say("hello from the passive side ☃")
            bob.chat.say("and back")
            assert await until(lambda: alice.chats() and bob.chats())
            assert bob.chats()[0]["text"] == "hello from the passive side ☃"
            assert bob.chats()[0]["from"] == "sip:alice@127.0.0.1"
            assert alice.chats()[0]["text"] == "and back"
            for p in (alice, bob):
                await p.chat.close()

    asyncio.run(scenario())


def test_the_focus_refuses_a_passive_participant_with_the_wrong_certificate(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with focus(tmp_path) as relay:
            bob = Participant(tmp_path, "bob")
            eve = Participant(tmp_path, "eve", bad_fingerprint=True)
            await bob.join(relay, SdpSetup.ACTPASS)
            await eve.join(relay, SdpSetup.PASSIVE)
            assert await until(lambda: bob.chat.ready.is_set())
            # the focus (TLS client) checked eve's certificate against her offer: refused
            await asyncio.sleep(0.5)
            eve_session = next(s for s in relay.sessions.values() if "eve" in s.identity)
            assert eve_session.link is None
            # the focus refused her certificate in the handshake (bad_certificate alert):
            # her TLS server never opened a channel
            assert eve.chat.channel is None
            eve.chat.say("should never arrive")  # no channel: nothing is sent
            bob.chat.say("still alone")
            await asyncio.sleep(0.3)
            assert not bob.chats() and not eve.chats()
            for p in (bob, eve):
                await p.chat.close()

    asyncio.run(scenario())


def test_large_message_is_relayed_in_chunks(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with focus(tmp_path) as relay:
            people = [Participant(tmp_path, n) for n in ("alice", "bob", "carol")]
            for p in people:
                await p.join(relay, SdpSetup.ACTPASS)
            assert await until(lambda: all(p.chat.ready.is_set() for p in people))
            text = "ünïcødé ☃ " * 60000  # ~840 KB of UTF-8, dozens of chunks each way
            people[0].chat.say(text)
            assert await until(lambda: people[1].chats() and people[2].chats(), 20)
            for p in people[1:]:
                (event,) = p.chats()
                assert event["text"] == text and event["size"] == len(text.encode())
            assert not people[0].chats()
            for p in people:
                await p.chat.close()

    asyncio.run(scenario())
