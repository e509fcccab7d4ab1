"""Resource exhaustion (issue 10): handshake timeouts, per-source caps, oversized messages.

In process, against a :class:`focus.endpoint.SipEndpoint` on loopback (fast,
no subprocess): a TLS client that never finishes its handshake is cut off after
``TLS_HANDSHAKE_TIMEOUT``; one source address gets at most ``max_per_source``
TCP connections while another still gets in; a request announcing a body over
the size cap is answered 513 (RFC 3261 §21.5.14) from its headers, before the
body is sent (so it is never buffered whole).  MSRP and BFCP handshakes time
out in :mod:`mrf.secure_channel` (``HANDSHAKE_TIMEOUT``, tested in
tests/mrf/test_secure_channel.py::test_handshake_timeout).
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest

from focus.endpoint import SipEndpoint
from focus.sip.message import make_response
from focus.transport import MAX_CONNECTIONS_PER_SOURCE, SipAddress, SipConnectionTable
from mrf.tls import ensure_certificate, server_ssl_context


class _Answer200:
    """A TU that answers every request 200 (enough to see who gets through)."""

    def handle_request(self, endpoint: SipEndpoint, event: Any) -> None:
        endpoint.respond(event.key, make_response(event.request, 200))

    def handle_ack(self, endpoint: SipEndpoint, event: Any) -> None:
        return None

    def handle_cancel(self, endpoint: SipEndpoint, event: Any) -> None:
        return None

    def handle_timeout(self, endpoint: SipEndpoint, event: Any) -> None:
        return None


def _options(port: int, transport: str = "TCP", body_length: int = 0) -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n"
        f"Call-ID: {secrets.token_hex(6)}\r\nCSeq: 1 OPTIONS\r\n"
        f"Content-Length: {body_length}\r\n\r\n"
    ).encode()


async def _status(reader: asyncio.StreamReader, timeout: float = 2.0) -> str:
    """The first status line's code, or 'closed'."""
    async with asyncio.timeout(timeout):
        line = await reader.readline()
    return line.split()[1].decode() if line.startswith(b"SIP/2.0 ") else "closed"


def test_per_source_cap_keeps_room_for_other_sources() -> None:
    async def scenario() -> tuple[list[str], str]:
        endpoint = SipEndpoint(_Answer200())
        endpoint._connections.max_per_source = 3  # noqa: SLF001 (the default is 128)
        address = await endpoint.listen_tcp("127.0.0.1", 0)
        streams = []
        results = []
        try:
            for _ in range(5):
                reader, writer = await asyncio.open_connection("127.0.0.1", address.port)
                streams.append(writer)
                writer.write(_options(address.port))
                results.append(await _status(reader))
            other = await asyncio.open_connection(
                "127.0.0.1", address.port, local_addr=("127.0.0.2", 0)
            )
            streams.append(other[1])
            other[1].write(_options(address.port))
            return results, await _status(other[0])
        finally:
            for writer in streams:
                writer.close()
            await endpoint.close()

    results, other = asyncio.run(scenario())
    assert results == ["200", "200", "200", "closed", "closed"]
    assert other == "200"


def test_per_source_count_is_released_on_close() -> None:
    table = SipConnectionTable(max_per_source=1)
    assert table.max_per_source == 1 and MAX_CONNECTIONS_PER_SOURCE >= 16

    class _Conn:
        def __init__(self, host: str) -> None:
            self.remote = SipAddress("tcp", host, 5060)
            self.addresses: set[SipAddress] = set()
            self.closed = False

    first, second = _Conn("10.0.0.1"), _Conn("10.0.0.1")
    assert table.accept(first) and not table.accept(second)  # type: ignore[arg-type]
    table.remove(first)  # type: ignore[arg-type]
    table.remove(first)  # twice: still counted once
    assert table.accept(second)  # type: ignore[arg-type]
    assert not table.accept(_Conn("10.0.0.1"))  # type: ignore[arg-type]


def test_sip_tls_handshake_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("focus.transport.TLS_HANDSHAKE_TIMEOUT", 0.3)
    cert, key = ensure_certificate(tmp_path)

    async def scenario() -> float:
        endpoint = SipEndpoint(_Answer200())
        address = await endpoint.listen_tls("127.0.0.1", 0, server_ssl_context(cert, key))
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", address.port)
        writer.write(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        start = loop.time()
        try:
            async with asyncio.timeout(5):
                while await reader.read(4096):
                    pass
            return loop.time() - start
        finally:
            writer.close()
            await endpoint.close()

    assert asyncio.run(scenario()) < 3.0


def test_oversized_request_is_refused_from_its_headers() -> None:
    async def scenario() -> tuple[str, bytes]:
        endpoint = SipEndpoint(_Answer200(), max_message_size=4096)
        address = await endpoint.listen_tcp("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", address.port)
        try:
            writer.write(_options(address.port, body_length=50_000_000))  # the body never comes
            status = await _status(reader)
            async with asyncio.timeout(2):
                rest = await reader.read()  # then the server closes the connection
            return status, rest
        finally:
            writer.close()
            await endpoint.close()

    status, _ = asyncio.run(scenario())
    assert status == "513"
