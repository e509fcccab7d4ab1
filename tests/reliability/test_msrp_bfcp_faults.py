"""Vanishing peers, oversized messages and per-source caps on the MSRP and BFCP listeners.

In process, against the real :class:`mrf.chat.ChatRelay` and
:class:`mrf.floor.FloorControl` on loopback TLS (fingerprint-checked, RFC
8122).  The peers are raw TLS sockets writing hand-built frames, so nothing of
the code under test is on the other end:

* a sender that vanishes in the middle of a 3-chunk message: the partial
  message is dropped (its storage released), nothing reaches the others, and
  the relay goes on relaying (RFC 4975 §7.3);
* a recipient that vanishes while the relay sends it a message: the sender gets
  a failure REPORT at once (RFC 4975 §7.1.2), not after 30 s or never;
* a chunk announcing more than ``a=max-size`` is answered 413 (RFC 4975
  §7.3.1) and none of its body is stored;
* a BFCP message longer than the cap is answered Error and the connection is
  closed (RFC 8855 §13.8: the stream cannot be re-synchronized);
* one address gets at most ``source_cap.limit`` connections to each listener.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from focus.sdp.bfcp import SdpBfcpPlan
from focus.sdp.msrp import SdpMsrpLocal, SdpMsrpPolicy, msrp_offer_media, plan_msrp
from focus.sdp.offer_answer import SdpStreamPlan
from focus.sdp.session import SdpAttribute, SdpConnection, SdpOrigin, SdpSession, SdpTiming
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.chat import ChatRelay
from mrf.floor import FloorControl, start_floor_control
from mrf.tls import ensure_certificate
from tests.reliability.session import Identity

HOST = "127.0.0.1"
ROOM = "sip:room@127.0.0.1"
_STATUS = re.compile(rb"MSRP (\S+) (\d{3})")

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class RawChatPeer:
    """One admitted chat participant speaking MSRP by hand over TLS."""

    def __init__(self, relay: ChatRelay, directory: Path, name: str) -> None:
        self.identity = Identity(directory / name)
        self.uri = f"sip:{name}@{HOST}"
        session_id = secrets.token_urlsafe(12)
        media = msrp_offer_media(SdpMsrpLocal(HOST, 9, session_id, self.identity.fingerprint))
        media.attributes = [a for a in media.attributes if a.name != "setup"]
        media.attributes.append(SdpAttribute("setup", "active"))
        offer = SdpSession(
            origin=SdpOrigin("t", 1, 1, HOST, "IP4"), name="-",
            connection=SdpConnection(HOST, "IP4"), timings=[SdpTiming()], media=[media],
        )  # fmt: skip
        offer = SdpSession.parse(str(offer))
        plan = plan_msrp(offer, offer.media[0], relay.policy)
        stream = SdpStreamPlan(0, "message", True, None, media.proto, msrp=plan)
        call = SimpleNamespace(call_id=f"call-{name}", conference=SimpleNamespace(name="room"),
                               conference_uri=ROOM, participant=self.uri)  # fmt: skip
        local = relay.open(call, stream)
        self.session = relay.sessions[local.session_id]
        self.focus_path = str(self.session.local)
        self.own_path = str(self.session.remote_path[-1])
        self.relay = relay
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.received = b""

    async def connect(self) -> None:
        """TLS to the relay, then a bodiless SEND that binds the session (answered 200)."""
        context = self.identity.tls_context()
        self.reader, self.writer = await asyncio.open_connection(
            HOST, self.relay.port, ssl=context, server_hostname=HOST
        )
        self.write(self.send_head("bind", "bindmsg1", None, None) + b"-------bind$\r\n")
        assert await self.wait_for(rb"MSRP bind 200")

    def send_head(self, tid: str, message_id: str, byte_range: str | None, ctype: str | None,
                  ) -> bytes:  # fmt: skip
        lines = [f"MSRP {tid} SEND", f"To-Path: {self.focus_path}", f"From-Path: {self.own_path}",
                 f"Message-ID: {message_id}"]  # fmt: skip
        if byte_range is not None:
            lines.append(f"Byte-Range: {byte_range}")
        if ctype is not None:
            lines += [f"Content-Type: {ctype}", "", ""]
        return ("\r\n".join(lines) + ("" if ctype is not None else "\r\n")).encode()

    def cpim(self, text: bytes) -> bytes:
        return (f"From: <{self.uri}>\r\nTo: <{ROOM}>\r\n\r\n"
                "Content-Type: text/plain\r\n\r\n").encode() + text  # fmt: skip

    def write(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def wait_for(self, pattern: bytes, timeout: float = 5.0) -> bool:
        """Read until ``pattern`` (a regex) is in what this peer received."""
        assert self.reader is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not re.search(pattern, self.received):
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                return False
            if not data:
                return bool(re.search(pattern, self.received))
            self.received += data
        return True

    def vanish(self) -> None:
        """Close the TCP connection abruptly: no TLS close_notify, no MSRP goodbye."""
        assert self.writer is not None
        self.writer.transport.abort()


@asynccontextmanager
async def chat_relay(tmp: Path, max_size: int | None = None) -> AsyncIterator[ChatRelay]:
    cert, key = ensure_certificate(tmp / "focus")
    fingerprint = Identity(tmp / "focus").fingerprint
    policy = SdpMsrpPolicy() if max_size is None else SdpMsrpPolicy(max_size=max_size)
    relay = ChatRelay(HOST, cert, key, fingerprint, policy=policy)
    await relay.listen(0)
    try:
        yield relay
    finally:
        await relay.close_all()


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def run(scenario: Callable[[Path], Awaitable[None]], tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(scenario(tmp_path), 30))


def _chunk(peer: RawChatPeer, tid: str, message_id: str, start: int, body: bytes, total: int,
           flag: bytes) -> bytes:  # fmt: skip
    end = start + len(body) - 1
    head = peer.send_head(tid, message_id, f"{start}-{end}/{total}", "message/cpim")
    return head + body + b"\r\n-------" + tid.encode() + flag + b"\r\n"


def test_a_sender_vanishing_mid_message_leaves_nothing_behind(tmp_path: Path) -> None:
    async def scenario(tmp: Path) -> None:
        async with chat_relay(tmp) as relay:
            eve, bob, carol = (RawChatPeer(relay, tmp, n) for n in ("eve", "bob", "carol"))
            for peer in (eve, bob, carol):
                await peer.connect()
            link = eve.session.link
            assert link is not None
            body = eve.cpim(b"x" * 29_000)  # three chunks of about 10 kB
            first, second = body[:10_000], body[10_000:20_000]
            eve.write(_chunk(eve, "chunk1", "bigmsg1", 1, first, len(body), b"+"))
            assert await eve.wait_for(rb"MSRP chunk1 200"), eve.received
            assert link.msrp._incoming  # noqa: SLF001 (the partial message is held)
            head = eve.send_head("chunk2", "bigmsg1", f"10001-20000/{len(body)}", "message/cpim")
            eve.write(head + second[:4000])  # the second chunk, cut short
            await asyncio.sleep(0.1)
            eve.vanish()
            # the relay notices at once: session unbound, partial message dropped
            assert await until(lambda: eve.session.link is None, 3.0)
            assert not link.msrp._incoming  # noqa: SLF001
            # nothing of the partial message reached the others; the relay still relays
            hello = bob.cpim(b"still here")
            bob.write(_chunk(bob, "hello1", "hellomsg", 1, hello, len(hello), b"$"))
            assert await carol.wait_for(rb"still here")
            assert b"xxxx" not in carol.received and b"xxxx" not in bob.received

    run(scenario, tmp_path)


def test_a_recipient_vanishing_mid_delivery_reports_failure_to_the_sender(
    tmp_path: Path,
) -> None:
    async def scenario(tmp: Path) -> None:
        async with chat_relay(tmp) as relay:
            alice, bob = RawChatPeer(relay, tmp, "alice"), RawChatPeer(relay, tmp, "bob")
            await alice.connect()
            await bob.connect()
            body = alice.cpim(b"y" * 45_000)  # relayed to bob in 3 chunks of 16 KiB
            alice.write(_chunk(alice, "send1", "m-alice", 1, body, len(body), b"$"))
            assert await alice.wait_for(rb"MSRP send1 200")
            assert await bob.wait_for(rb"MSRP \S+ SEND")  # delivery to bob has begun
            loop = asyncio.get_running_loop()
            start = loop.time()
            bob.vanish()  # without answering a single chunk
            report = rb"MSRP \S+ REPORT\r\n(?:[^\r]*\r\n)*?Status: 000 408"
            assert await alice.wait_for(report, 5.0), alice.received[-600:]
            assert loop.time() - start < 3.0  # not the 30 s transaction timeout
            assert b"Message-ID: m-alice" in alice.received.split(b"REPORT", 1)[1]

    run(scenario, tmp_path)


def test_an_oversized_msrp_message_is_413_without_being_stored(tmp_path: Path) -> None:
    async def scenario(tmp: Path) -> None:
        async with chat_relay(tmp, max_size=64 * 1024) as relay:
            alice, bob = RawChatPeer(relay, tmp, "alice"), RawChatPeer(relay, tmp, "bob")
            await alice.connect()
            await bob.connect()
            link = alice.session.link
            assert link is not None
            total = 50_000_000  # far beyond a=max-size; only 1 MB of it is ever sent
            alice.write(alice.send_head("huge1", "hugemsg", f"1-*/{total}", "message/cpim"))
            alice.write(alice.cpim(b""))
            for _ in range(16):
                alice.write(b"z" * 65536)
                await alice.writer.drain()  # type: ignore[union-attr]
                await asyncio.sleep(0.01)
                assert not link.msrp._incoming  # noqa: SLF001 (no byte of it stored)
            alice.write(b"\r\n-------huge1$\r\n")
            assert await alice.wait_for(rb"MSRP huge1 413")
            # the connection stays usable for messages within the limit
            small = alice.cpim(b"small")
            alice.write(_chunk(alice, "okay1", "finemsg", 1, small, len(small), b"$"))
            assert await bob.wait_for(rb"small")
            assert b"zzzz" not in bob.received

    run(scenario, tmp_path)


async def _bfcp_peer(control: FloorControl, tmp: Path, name: str) -> tuple[Identity, int, int]:
    identity = Identity(tmp / name)
    bfcp = SdpBfcpPlan(
        secure=True, remote_fingerprints=(identity.fingerprint,), we_connect=False,
        connect_host=HOST, connect_port=9, label="main", stream_index=0,
    )  # fmt: skip
    plan = SdpStreamPlan(1, "application", True, None, "TCP/TLS/BFCP", bfcp=bfcp)
    call = SimpleNamespace(call_id=f"call-{name}", conference=SimpleNamespace(name="room"),
                           participant=f"sip:{name}@{HOST}", role="participant")  # fmt: skip
    local = control.open(call, plan)
    return identity, local.conference_id, local.user_id


def test_an_oversized_bfcp_message_is_refused_and_the_connection_closed(
    tmp_path: Path,
) -> None:
    async def scenario(tmp: Path) -> None:
        cert, key = ensure_certificate(tmp / "focus")
        control = await start_floor_control(HOST, 0, cert, key, floors=1)
        try:
            identity, conference_id, user_id = await _bfcp_peer(control, tmp, "alice")
            reader, writer = await asyncio.open_connection(
                HOST, control.port, ssl=identity.tls_context(), server_hostname=HOST
            )
            # RFC 8855 §5.1 common header: version 1, FloorRequest, 0xFFFF 4-octet words
            header = struct.pack("!BBHIHH", 1 << 5, int(P.FLOOR_REQUEST), 0xFFFF,
                                 conference_id, 7, user_id)  # fmt: skip
            writer.write(header + b"\0" * 4096)
            async with asyncio.timeout(5):
                data = await reader.read()  # to EOF: the focus closes the connection
            assert len(data) >= 12 and data[1] == int(P.ERROR), data[:16]
            assert struct.unpack("!H", data[8:10])[0] == 7  # the same Transaction ID
            writer.close()
        finally:
            await control.close_all()

    run(scenario, tmp_path)


async def _held(port: int, local: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port, local_addr=(local, 0))


async def _refused(reader: asyncio.StreamReader) -> bool:
    """True when the listener dropped the connection without a byte (EOF or reset)."""
    try:
        async with asyncio.timeout(0.5):
            return await reader.read(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False  # still open: the TLS listener waits for our ClientHello


@pytest.mark.parametrize("listener", ["msrp", "bfcp"])
def test_per_source_connection_cap(tmp_path: Path, listener: str) -> None:
    async def scenario(tmp: Path) -> None:
        cert, key = ensure_certificate(tmp / "focus")
        if listener == "msrp":
            server: ChatRelay | FloorControl = ChatRelay(
                HOST, cert, key, Identity(tmp / "focus").fingerprint
            )
            await server.listen(0)
        else:
            server = await start_floor_control(HOST, 0, cert, key, floors=1)
        assert server.source_cap.limit == 64
        server.source_cap.limit = 3
        streams = []
        try:
            for _ in range(5):
                streams.append(await _held(server.port, "127.0.0.1"))
            refused = [await _refused(reader) for reader, _ in streams]
            assert refused == [False, False, False, True, True]
            other = await _held(server.port, "127.0.0.2")  # another source still gets in
            streams.append(other)
            assert not await _refused(other[0])
            streams[0][1].close()  # a slot is released when a connection ends
            assert await until(lambda: server.source_cap.counts.get("127.0.0.1") == 2)
            again = await _held(server.port, "127.0.0.1")
            streams.append(again)
            assert not await _refused(again[0])
        finally:
            for _, writer in streams:
                writer.close()
            await server.close_all()

    run(scenario, tmp_path)


def test_the_cap_is_per_source_and_released() -> None:
    from mrf.connection_cap import SourceCap

    cap = SourceCap(limit=2)
    assert cap.acquire("10.0.0.1") and cap.acquire("10.0.0.1")
    assert not cap.acquire("10.0.0.1") and cap.acquire("10.0.0.2")
    cap.release("10.0.0.1")
    assert cap.acquire("10.0.0.1") and cap.counts == {"10.0.0.1": 2, "10.0.0.2": 1}
    with pytest.raises(ValueError):
        SourceCap(limit=0)
