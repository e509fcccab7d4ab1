"""The mixer on the loop, wired to focus events: isolation, N-1, hold, mute, leave, metrics."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from focus.events import FocusEvent, ParticipantJoined, ParticipantLeft, ParticipantUpdated
from focus.sdp.attributes import SdpDirection, SdpRtpmap
from focus.sdp.offer_answer import SdpAnswerPlan, SdpStreamPlan
from mrf.floor import start_floor_control
from mrf.rtp.codec import G711Codec
from mrf.rtp.conference import RtpMixerPool
from mrf.rtp.dtmf import RtpTelephoneEvent
from mrf.rtp.metrics import OpaqueNames, prometheus_text
from mrf.rtp.packet import RtpPacket
from mrf.rtp.plane import MediaPlane
from mrf.rtp.speakers import RtpSpeakerConfig
from mrf.rtp.srtp import SrtpContext, SrtpDirection
from mrf.tls import ensure_certificate
from tests.mrf.test_floor import Party, _join, until

SUITE = "AES_CM_128_HMAC_SHA1_80"


class Peer(asyncio.DatagramProtocol):
    """A participant's UA: sends a tone with its key, keeps what it decrypts."""

    def __init__(self) -> None:
        self.to_focus, self.from_focus = secrets.token_bytes(30), secrets.token_bytes(30)
        self.tx = SrtpContext(SUITE, self.to_focus, SrtpDirection.OUTBOUND)
        self.rx = SrtpContext(SUITE, self.from_focus, SrtpDirection.INBOUND)
        self.received: list[np.ndarray] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.seq = 0
        self.codec = G711Codec("PCMU")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        packet = RtpPacket.parse(self.rx.unprotect(data))
        self.received.append(self.codec.decode(packet.payload))

    def send_tone(self, frequency: float, port: int) -> None:
        t = (self.seq * 160 + np.arange(160)) / 8000
        payload = self.codec.encode((0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32))
        packet = RtpPacket(0, self.seq, self.seq * 160, 1234, payload)
        self.seq += 1
        assert self.transport is not None
        self.transport.sendto(self.tx.protect(bytes(packet)), ("127.0.0.1", port))


@dataclass
class Call:
    call_id: str
    plan: SdpAnswerPlan
    streams: dict[int, Any] = field(default_factory=dict)
    muted: bool = False


class Focus:
    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.listeners: list[Callable[[FocusEvent], None]] = []
        self.dtmf: list[tuple[str, str, int]] = []
        self.talking: dict[str, frozenset[int]] = {}

    def note_talking(self, call_id: str, streams: frozenset[int]) -> bool:
        self.talking[call_id] = streams
        return call_id in self.calls

    def note_dtmf(self, call_id: str, event: str, duration_ms: int) -> bool:
        self.dtmf.append((call_id, event, duration_ms))
        return call_id in self.calls

    def find_call(self, call_id: str) -> Call | None:
        return self.calls.get(call_id)

    def subscribe(self, listener: Callable[[FocusEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def emit(self, event: FocusEvent) -> None:
        for listener in self.listeners:
            listener(event)


def plan(direction: SdpDirection = SdpDirection.SENDRECV) -> SdpAnswerPlan:
    stream = SdpStreamPlan(
        0, "audio", True, None, "RTP/SAVP", payload_types=[0, 101],
        rtpmaps=[SdpRtpmap(0, "PCMU", 8000), SdpRtpmap(101, "telephone-event", 8000)],
        telephone_event_pt=101, direction_answer=direction,
        on_hold=direction is not SdpDirection.SENDRECV,
    )  # fmt: skip
    return SdpAnswerPlan((stream,))


def level(audio: np.ndarray, frequency: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / 8000)
    return float(20 * np.log10(spectrum[np.abs(freqs - frequency) < 15].max() + 1e-9))


async def keyed_peer(plane: MediaPlane, name: str) -> tuple[Peer, Any]:
    """A participant's UA on a loopback port and its focus stream, keyed both ways."""
    peer = Peer()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: peer, local_addr=("127.0.0.1", 0)
    )
    peer.transport = transport
    stream = await plane.allocate(name)
    stream.set_keys(SUITE, peer.to_focus, peer.from_focus)
    stream.set_remote("127.0.0.1", transport.get_extra_info("sockname")[1])
    return peer, stream


async def talk(peers: dict[str, tuple[Peer, int, float]], seconds: float) -> None:
    for _ in range(int(seconds / 0.02)):
        for peer, port, frequency in peers.values():
            peer.send_tone(frequency, port)
        await asyncio.sleep(0.02)


@pytest.mark.timeout(30)
def test_joined_participants_hear_each_other_only_while_admitted() -> None:
    async def scenario() -> None:
        plane = MediaPlane("127.0.0.1", (47000, 47099))
        focus = Focus()
        pool = RtpMixerPool(focus)
        peers: dict[str, tuple[Peer, int, float]] = {}
        try:
            for name, frequency in (("a", 500.0), ("b", 900.0)):
                peer, stream = await keyed_peer(plane, name)
                focus.calls[name] = Call(name, plan(), {0: stream})
                peers[name] = (peer, stream.rtp_port, frequency)
            await talk(peers, 0.2)
            assert all(not p.received for p, _, _ in peers.values()), "media before admission"
            for name in peers:
                focus.emit(
                    ParticipantJoined("conf", name, f"sip:{name}@x", "participant", "dial-in")
                )
            await talk(peers, 1.0)
            a, b = peers["a"][0], peers["b"][0]
            heard_a, heard_b = np.concatenate(a.received[10:]), np.concatenate(b.received[10:])
            assert level(heard_a, 900) > level(heard_a, 500) + 30
            assert level(heard_b, 500) > level(heard_b, 900) + 30
            assert focus.talking == {"a": {0}, "b": {0}}  # both are active speakers
            entry = prometheus_text(type("F", (), {"calls": []})(), pool)
            assert 'mrf_mixer_participants{conference="conf"} 2' in entry

            focus.calls["a"].muted = True  # mute: b hears a no more, a still hears b
            focus.emit(ParticipantUpdated("conf", "a", "sip:a@x", "connected", True))
            b.received.clear()
            live = focus.calls["a"].streams[0].packets_out
            await talk(peers, 0.6)
            assert level(np.concatenate(b.received[10:]), 500) < 0
            assert focus.talking == {"a": set(), "b": {0}}  # muted: not talking at once
            assert focus.calls["a"].streams[0].packets_out > live  # the counter below counts

            focus.calls["a"].plan = plan(SdpDirection.RECVONLY)  # a put us on hold
            # what the focus sends, counted where it sends it (packets already on the
            # wire before the event may still reach the peer: not the question here)
            sent_to_a = focus.calls["a"].streams[0]
            focus.emit(ParticipantUpdated("conf", "a", "sip:a@x", "on-hold", True))
            count = sent_to_a.packets_out
            await talk(peers, 0.3)
            assert sent_to_a.packets_out == count, "media sent to a participant on hold"

            sent_to_b = focus.calls["b"].streams[0]
            focus.emit(ParticipantLeft("conf", "b", "sip:b@x", "bye"))
            count = sent_to_b.packets_out
            await talk(peers, 0.3)
            assert sent_to_b.packets_out == count, "media after leaving"
            assert list(pool.conferences) == ["conf"]
            focus.emit(ParticipantLeft("conf", "a", "sip:a@x", "bye"))
            assert pool.conferences == {}
        finally:
            pool.close()
            for peer, _, _ in peers.values():
                if peer.transport is not None:
                    peer.transport.close()
            await plane.wait_closed()

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_telephone_events_reach_the_focus_once_each() -> None:
    """RFC 4733 §2.5.1.4: a series of packets (same timestamp, growing duration, three
    end packets) is one event; it is reported to the focus with its duration."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        plane = MediaPlane("127.0.0.1", (47100, 47199))
        focus = Focus()
        pool = RtpMixerPool(focus)
        peer = Peer()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: peer, local_addr=("127.0.0.1", 0)
            )
            peer.transport = transport
            stream = await plane.allocate("d")
            stream.set_keys(SUITE, peer.to_focus, peer.from_focus)
            stream.set_remote("127.0.0.1", transport.get_extra_info("sockname")[1])
            focus.calls["d"] = Call("d", plan(), {0: stream})
            focus.emit(ParticipantJoined("conf", "d", "sip:d@x", "participant", "dial-in"))
            seq = 0
            for digit, timestamp in ((5, 8000), (11, 16000)):  # "5", then "#"
                series = [(160, False), (320, False), (640, False)] + [(1280, True)] * 3
                for duration, end in series:
                    payload = bytes(RtpTelephoneEvent(digit, end, 10, duration))
                    packet = RtpPacket(101, seq, timestamp, 1234, payload, marker=seq == 0)
                    transport.sendto(peer.tx.protect(bytes(packet)), ("127.0.0.1", stream.rtp_port))
                    seq += 1
                    await asyncio.sleep(0.005)
            async with asyncio.timeout(5):
                while len(focus.dtmf) < 2:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert focus.dtmf == [("d", "5", 160), ("d", "#", 160)]
            assert [e["event"] for e in pool.conferences["conf"].events] == ["5", "#"]
            focus.emit(ParticipantLeft("conf", "d", "sip:d@x", "bye"))
        finally:
            pool.close()
            if peer.transport is not None:
                peer.transport.close()
            await plane.wait_closed()

    asyncio.run(scenario())


def test_metrics_render_prometheus_text() -> None:
    stream = type(
        "S",
        (),
        {
            "packets_in": 5,
            "packets_out": 4,
            "packets_lost": 1,
            "jitter_ms": 2.5,
            "auth_failures": 0,
            "replays": 0,
        },
    )()
    call = type(
        "C",
        (),
        {
            "conference": type("I", (), {"name": "retro"})(),
            "participant": 'sip:"a"@x',
            "streams": {0: stream},
        },
    )()
    text = prometheus_text(type("F", (), {"calls": [call]})())
    assert "# TYPE mrf_rtp_packets_lost gauge" in text
    assert (
        'mrf_rtp_jitter_seconds{conference="retro",participant="sip:\\"a\\"@x",stream="0"} 0.0025'
        in text
    )
    assert text.count("# HELP") == 6


def test_opaque_metric_names_hide_the_conference_and_the_participant() -> None:
    """Keyed hashes: stable under one key, unlike under another, one per call."""

    def call(call_id: str) -> object:
        stream = type("S", (), {"packets_in": 1, "packets_out": 1, "packets_lost": 0,
                                "jitter_ms": 0.0, "auth_failures": 0, "replays": 0})()  # fmt: skip
        return type("C", (), {"conference": type("I", (), {"name": "retro"})(),
                              "participant": "sip:alice@x", "call_id": call_id,
                              "streams": {0: stream}})()  # fmt: skip

    focus = type("F", (), {"calls": [call("c1"), call("c2")]})()
    names = OpaqueNames(b"k" * 32)
    text = prometheus_text(focus, None, names)
    assert "retro" not in text and "alice" not in text and "c1" not in text
    labels = re.findall(r'conference="([^"]+)",participant="([^"]+)"', text)
    assert {c for c, _ in labels} == {names.conference("retro")}
    assert len({p for _, p in labels}) == 2  # two calls of one person: two labels
    assert all(re.fullmatch(r"[cp]-[0-9a-f]{16}", v) for pair in labels for v in pair)
    assert prometheus_text(focus, None, names) == text
    assert OpaqueNames(b"j" * 32).conference("retro") != names.conference("retro")


@pytest.mark.timeout(60)
def test_a_bfcp_floor_holder_is_mixed_beyond_max_speakers(tmp_path: Path) -> None:
    """One speaker slot, taken; c is heard only while it holds the floor (BFCP over TLS)."""

    async def scenario() -> None:
        cert, key = ensure_certificate(tmp_path / "focus")
        control = await start_floor_control("127.0.0.1", 0, cert, key)
        plane = MediaPlane("127.0.0.1", (47200, 47299))
        focus = Focus()
        pool = RtpMixerPool(focus, speakers=RtpSpeakerConfig(max_speakers=1))
        pool.watch_floor(control)
        peers: dict[str, tuple[Peer, int, float]] = {}
        parties: dict[str, Party] = {}
        try:
            for name, frequency in (("a", 500.0), ("b", 0.0), ("c", 900.0)):
                party = parties[name] = Party(tmp_path / name)
                start = await _join(control, party, await party.ue.listen())
                await start()
                await asyncio.wait_for(party.ue.ready.wait(), 10)
                session = list(control.sessions.values())[-1]  # the one _join opened
                peer, stream = await keyed_peer(plane, name)
                call_id = session.call_id
                focus.calls[call_id] = Call(call_id, plan(), {0: stream})
                focus.emit(
                    ParticipantJoined("room", call_id, f"sip:{name}@x", "participant", "dial-in")
                )
                peers[name] = (peer, stream.rtp_port, frequency)
            calls = {name: call_id for name, call_id in zip(peers, focus.calls, strict=True)}
            b, c = peers["b"][0], peers["c"][0]
            talkers = {n: peers[n] for n in "ac"}
            await talk({"a": peers["a"]}, 0.4)  # a takes the only slot
            b.received.clear()
            await talk(talkers, 0.8)  # c as loud as a: no switch, c is not heard
            heard = np.concatenate(b.received[10:])
            assert level(heard, 500) > level(heard, 900) + 30
            assert focus.talking.get(calls["c"], frozenset()) == frozenset()

            parties["c"].ue.request()
            await until(lambda: parties["c"].floor(status="granted"))
            mixer = pool.conferences["room"].mixer
            assert mixer.floor_holders == {f"{calls['c']}/0"}
            b.received.clear()
            await talk(talkers, 0.8)
            heard = np.concatenate(b.received[10:])
            assert level(heard, 900) > level(heard, 1300) + 30  # c heard with a
            assert level(heard, 500) > level(heard, 1300) + 30
            assert focus.talking[calls["c"]] == {0}
            own = np.concatenate(c.received[-20:])
            assert level(own, 500) > level(own, 900) + 20  # the holder does not hear itself

            parties["c"].ue.release()
            await until(lambda: not mixer.floor_holders)
            await until(lambda: not focus.talking.get(calls["c"]))
        finally:
            pool.close()
            for party in parties.values():
                await party.ue.close()
            await control.close_all()
            for peer, _, _ in peers.values():
                if peer.transport is not None:
                    peer.transport.close()
            await plane.wait_closed()

    asyncio.run(scenario())
