"""The secure-stream layer: the listener service (mrf.stream_service) under MSRP and BFCP,
and the one stream driver (mrf.stream)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from focus.sdp.attributes import SdpFingerprint
from focus.sdp.secret import SecretBytes
from mrf.chat import start_chat_relay
from mrf.floor import start_floor_control
from mrf.stream import ByteStream, StreamDriver
from mrf.tls import ensure_certificate

PSK = b"\x11" * 16
PRINT = SdpFingerprint("sha-256", bytes(32))


def _call(call_id: str) -> SimpleNamespace:
    return SimpleNamespace(
        call_id=call_id, conference=SimpleNamespace(name="room"),
        conference_uri="sip:room@127.0.0.1", participant=f"sip:{call_id}@127.0.0.1", role="",
    )  # fmt: skip


def _msrp_plan() -> SimpleNamespace:
    msrp = SimpleNamespace(
        secure=True, we_connect=False, remote_path=("msrps://127.0.0.1:9/abc;tcp",),
        remote_fingerprints=(PRINT,), websocket=False,
    )  # fmt: skip
    return SimpleNamespace(msrp=msrp, psk=SecretBytes(PSK))


def _bfcp_plan() -> SimpleNamespace:
    bfcp = SimpleNamespace(
        secure=True, we_connect=False, remote_fingerprints=(PRINT,), label="1",
    )  # fmt: skip
    return SimpleNamespace(bfcp=bfcp, psk=SecretBytes(PSK))


async def _psk_session(protocol: str, cert: Path, key: Path, call_id: str) -> tuple[Any, int]:
    """A listening ChatRelay or FloorControl with one TLS-PSK session answered; its port."""
    service: Any
    if protocol == "msrp":
        service = await start_chat_relay("127.0.0.1", 0, cert, key)
        return service, service.open(_call(call_id), _msrp_plan()).port
    service = await start_floor_control("127.0.0.1", 0, cert, key)
    return service, service.open(_call(call_id), _bfcp_plan()).port


def _refuses(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("protocol", ["msrp", "bfcp"])
def test_psk_listener_of_a_session_dropped_at_once_is_closed(tmp_path: Path, protocol: str) -> None:
    """A TLS-PSK session left in the same tick as it was answered leaves no listener
    behind (its listener was bound for the answer but not served yet)."""
    cert, key = ensure_certificate(tmp_path)

    async def scenario() -> tuple[bool, bool]:
        service, port = await _psk_session(protocol, cert, key, "a")
        served = not _refuses(port)  # bound and listening for the answer's peer
        service.close(_call("a"))
        for _ in range(20):
            await asyncio.sleep(0.01)
        refused = _refuses(port)
        await service.close_all()
        return served, refused

    served, refused = asyncio.run(scenario())
    assert served and refused


@pytest.mark.parametrize("protocol", ["msrp", "bfcp"])
def test_psk_listener_of_a_session_dropped_later_is_closed(tmp_path: Path, protocol: str) -> None:
    cert, key = ensure_certificate(tmp_path)

    async def scenario() -> bool:
        service, port = await _psk_session(protocol, cert, key, "b")
        await asyncio.sleep(0.05)  # served
        service.close(_call("b"))
        await asyncio.sleep(0.05)
        refused = _refuses(port)
        await service.close_all()
        return refused

    assert asyncio.run(scenario())


class FakeCore:
    """A stream core that echoes upper-cased bytes and wants one timer."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.events: list[str] = []
        self.deadline: float | None = None
        self.fired: list[float] = []

    def receive_data(self, data: bytes, now: float) -> None:
        self.out += data.upper()
        self.events.append(data.decode())
        self.deadline = now + 0.02

    def data_to_send(self) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data

    def next_event(self) -> str | None:
        return self.events.pop(0) if self.events else None

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> None:
        self.fired.append(now)
        self.deadline = None
        self.events.append("timer")


class FakeChannel:
    server_side = True
    peer_certificate = None
    cipher = None
    version = None
    peer_address = None

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


class Handler:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.opened = 0
        self.closed: list[str | None] = []

    def stream_open(self, driver: StreamDriver[str]) -> None:
        self.opened += 1

    def stream_events(self, driver: StreamDriver[str]) -> None:
        self.seen.extend(driver.events())
        driver.flush()

    def stream_closed(self, driver: StreamDriver[str], reason: str | None) -> None:
        self.closed.append(reason)


def test_driver_feeds_drains_flushes_and_fires_one_timer() -> None:
    async def scenario() -> tuple[FakeCore, FakeChannel, Handler, StreamDriver[str]]:
        core, channel, handler = FakeCore(), FakeChannel(), Handler()
        driver: StreamDriver[str] = StreamDriver(core, handler)
        stream: ByteStream = channel
        driver.channel_open(stream)
        driver.channel_data(stream, b"hello")
        driver.channel_data(stream, b"again")  # moves the deadline: still one timer
        await asyncio.sleep(0.1)
        return core, channel, handler, driver

    core, channel, handler, driver = asyncio.run(scenario())
    assert handler.opened == 1
    assert bytes(channel.written) == b"HELLOAGAIN"
    assert handler.seen == ["hello", "again", "timer"]
    assert len(core.fired) == 1


def test_driver_cancels_its_timer_when_the_stream_closes() -> None:
    async def scenario() -> tuple[FakeCore, Handler]:
        core, channel, handler = FakeCore(), FakeChannel(), Handler()
        driver: StreamDriver[str] = StreamDriver(core, handler)
        driver.channel_open(channel)
        driver.channel_data(channel, b"x")
        driver.channel_closed(channel, "gone")
        await asyncio.sleep(0.05)
        return core, handler

    core, handler = asyncio.run(scenario())
    assert core.fired == [] and handler.closed == ["gone"]


def test_driver_runs_one_stream_and_refuses_a_second() -> None:
    async def scenario() -> tuple[FakeChannel, FakeChannel, Handler, StreamDriver[str]]:
        first, second, handler = FakeChannel(), FakeChannel(), Handler()
        driver: StreamDriver[str] = StreamDriver(FakeCore(), handler)
        driver.channel_open(first)
        driver.channel_open(second)  # e.g. a second TCP connection to the same listener
        driver.channel_data(second, b"intruder")
        driver.channel_closed(second, None)
        return first, second, handler, driver

    first, second, handler, driver = asyncio.run(scenario())
    assert second.closed and not first.closed
    assert handler.opened == 1 and handler.seen == [] and handler.closed == []
    assert driver.channel is first


def test_driver_reports_a_stream_that_failed_before_it_opened() -> None:
    """A handshake that fails (wrong fingerprint, wrong PSK) still reaches the handler."""
    handler = Handler()
    driver: StreamDriver[str] = StreamDriver(FakeCore(), handler)
    driver.channel_closed(FakeChannel(), "peer certificate does not match")
    assert handler.opened == 0 and handler.closed == ["peer certificate does not match"]
