"""FloorControl over real TLS sockets on loopback, with ``mrf ue``'s UeFloor as participants.

Covers the adapter's RFC 8855 §9 rule (a message with another user's IDs on a
bound connection gets Error 5 and changes nothing) and both connection
directions of RFC 4145 / RFC 8122 §6.2: the participant connects (a=setup:active
offer) or the focus connects to a participant that offered a=setup:passive,
each checking the other's certificate against the SDP fingerprint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from focus.sdp.attributes import SdpFingerprint
from focus.sdp.bfcp import SdpBfcpPlan, bfcp_answer_media
from focus.sdp.offer_answer import SdpStreamPlan
from focus.sdp.session import SdpConnection, SdpMedia, SdpOrigin, SdpSession, SdpTiming
from mrf.bfcp.attribute import BfcpAttribute
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.codes import BfcpRequestStatus as S
from mrf.floor import FloorControl, start_floor_control
from mrf.tls import certificate_der, ensure_certificate
from mrf.ue.bfcp import UeFloor

HOST = "127.0.0.1"
_calls = itertools.count(1)


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (robust under load)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


def _fingerprint(cert: Path) -> SdpFingerprint:
    return SdpFingerprint.from_certificate(certificate_der(cert.read_bytes()))


class Party:
    """A UeFloor participant and the JSON events it emitted."""

    def __init__(self, directory: Path, setup: str = "active") -> None:
        self.cert, self.key = ensure_certificate(directory)
        self.events: list[dict[str, Any]] = []
        self.ue = UeFloor(HOST, self.cert, self.key, self.events.append, setup=setup)

    def floor(self, **match: object) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("event") == "floor" and all(e.get(k) == v for k, v in match.items())
        ]


def run(scenario: Callable[[FloorControl, Path], Awaitable[None]], tmp_path: Path) -> None:
    """Run ``scenario`` against a listening FloorControl (2 floors), bounded in time."""

    async def main() -> None:
        cert, key = ensure_certificate(tmp_path / "focus")
        control = await start_floor_control(HOST, 0, cert, key, floors=2)
        try:
            await asyncio.wait_for(scenario(control, tmp_path), 60)
        finally:
            await control.close_all()

    asyncio.run(main())


async def _join(
    control: FloorControl,
    party: Party,
    offer: SdpMedia,
    *,
    fingerprint: SdpFingerprint | None = None,
    focus_fingerprint: SdpFingerprint | None = None,
    role: str = "participant",
) -> Callable[[], Awaitable[None]]:
    """What the focus does for an accepted BFCP line; returns the participant's start."""
    passive = any(a.name == "setup" and a.value == "passive" for a in offer.attributes)
    bfcp = SdpBfcpPlan(
        secure=True, remote_fingerprints=(fingerprint or party.ue.fingerprint,),
        we_connect=passive, connect_host=HOST, connect_port=offer.port, label="main",
        stream_index=0,
    )  # fmt: skip
    plan = SdpStreamPlan(1, "application", True, None, offer.proto, bfcp=bfcp)
    call = SimpleNamespace(
        call_id=f"call-{next(_calls)}", conference=SimpleNamespace(name="room"),
        participant=f"sip:p{id(party)}@{HOST}", role=role,
    )  # fmt: skip
    local = control.open(call, plan)
    if focus_fingerprint is not None:  # an answer naming another certificate than the focus's
        local = dataclasses.replace(local, fingerprint=focus_fingerprint)
    media = bfcp_answer_media(offer, bfcp, local)
    answer = SdpSession(
        origin=SdpOrigin("mrf", 1, 1, HOST, "IP4"), name="-",
        connection=SdpConnection(HOST, "IP4"), timings=[SdpTiming()], media=[media],
    )  # fmt: skip

    async def start() -> None:
        await party.ue.start(answer, media)

    return start


def test_a_forged_user_id_gets_error_5_and_changes_nothing(tmp_path: Path) -> None:
    run(_a_forged_user_id_gets_error_5_and_changes_nothing, tmp_path)


async def _a_forged_user_id_gets_error_5_and_changes_nothing(
    control: FloorControl, tmp_path: Path
) -> None:
    alice, bob = Party(tmp_path / "alice"), Party(tmp_path / "bob")
    for party in (alice, bob):
        start = await _join(control, party, await party.ue.listen())
        await start()
        await asyncio.wait_for(party.ue.ready.wait(), 10)
    alice.ue.request()
    await until(lambda: alice.floor(status="granted"))
    conference = next(iter(control.server.conferences.values()))
    assert [r.status for r in conference.requests.values()] == [S.GRANTED]
    granted = alice.floor(status="granted")[-1]
    # bob's connection carries a FloorRelease in alice's name for alice's request
    assert bob.ue.answer is not None and alice.ue.answer is not None and bob.ue.channel
    forged = (BfcpAttribute(T.FLOOR_REQUEST_ID, granted["request_id"]),)
    bob.ue.bfcp.send_request(
        P.FLOOR_RELEASE, bob.ue.answer.conference_id, alice.ue.answer.user_id, forged
    )
    bob.ue.channel.write(bob.ue.bfcp.data_to_send())
    await until(lambda: bob.floor(status="error"))
    assert bob.floor(status="error")[-1]["code"] == 5
    # nothing changed: alice still holds the floor, nobody heard of a release
    alice.ue.query_floor()
    await until(lambda: len(alice.floor(status="floor-status")) >= 3)
    latest = alice.floor(status="floor-status")[-1]["requests"]
    assert [(r["request_id"], r["status"]) for r in latest] == [(granted["request_id"], "granted")]
    assert [r.status for r in conference.requests.values()] == [S.GRANTED]
    assert not alice.floor(status="released") and not bob.floor(status="released")
    for party in (alice, bob):
        await party.ue.close()


def test_the_focus_connects_to_a_passive_participant(tmp_path: Path) -> None:
    run(_the_focus_connects_to_a_passive_participant, tmp_path)


async def _the_focus_connects_to_a_passive_participant(
    control: FloorControl, tmp_path: Path
) -> None:
    alice = Party(tmp_path / "alice", setup="passive")
    offer = await alice.ue.listen()
    assert offer.port != 9 and offer.get_attribute("setup").value == "passive"  # type: ignore[union-attr]
    start = await _join(control, alice, offer)
    await start()
    await asyncio.wait_for(alice.ue.ready.wait(), 10)
    connected = alice.floor(status="connected")[-1]
    assert connected["focus_connected"] is True and connected["floors"] == [1, 2]
    alice.ue.request(2)
    await until(lambda: alice.floor(status="granted"))
    assert alice.floor(status="granted")[-1]["floors"] == [2]
    session = next(iter(control.sessions.values()))
    assert session.link is not None and session.link.channel is not None
    assert not session.link.channel.server_side  # the focus was the TLS client
    await alice.ue.close()


def test_the_focus_refuses_a_passive_participant_with_another_certificate(tmp_path: Path) -> None:
    run(_the_focus_refuses_a_passive_participant_with_another_certificate, tmp_path)


async def _the_focus_refuses_a_passive_participant_with_another_certificate(
    control: FloorControl, tmp_path: Path
) -> None:
    alice = Party(tmp_path / "alice", setup="passive")
    other = _fingerprint(ensure_certificate(tmp_path / "other")[0])
    start = await _join(control, alice, await alice.ue.listen(), fingerprint=other)
    await start()
    streams = control.streams
    await until(lambda: streams is not None and not streams.busy)  # the connect attempt ended
    await asyncio.sleep(0)
    session = next(iter(control.sessions.values()))
    assert session.link is None and not alice.ue.ready.is_set()
    assert not alice.floor(status="hello-ack")
    await alice.ue.close()


def test_a_participant_refuses_a_focus_with_another_certificate(tmp_path: Path) -> None:
    run(_a_participant_refuses_a_focus_with_another_certificate, tmp_path)


async def _a_participant_refuses_a_focus_with_another_certificate(
    control: FloorControl, tmp_path: Path
) -> None:
    alice = Party(tmp_path / "alice")
    other = _fingerprint(ensure_certificate(tmp_path / "other")[0])
    start = await _join(control, alice, await alice.ue.listen(), focus_fingerprint=other)
    await start()
    await asyncio.wait_for(alice.ue.closed.wait(), 10)
    assert not alice.ue.ready.is_set() and not alice.floor(status="hello-ack")
    assert "SDP fingerprint" in str(alice.floor(status="closed")[-1]["reason"])
    await alice.ue.close()
