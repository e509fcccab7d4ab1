"""The asyncio SIP endpoint over 127.0.0.1: UDP, TCP and TLS, malformed input, timeouts."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from focus.endpoint import SipEndpoint, SipRequestTimeout
from focus.sip.dialog import AckTimedOut, dialog_from_uac, dialog_from_uas
from focus.sip.message import SipRequest, SipResponse, make_response, parse_message
from focus.sip.transaction import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    SipAddress,
    SipTimerConfig,
    TransactionTimedOut,
)
from focus.transport import SipDatagramProtocol, recover_request
from focus.transport import SipEndpoint as ReExported

LOOPBACK = "127.0.0.1"


class Handler:
    """Answers OPTIONS 200, INVITE 200 (with a dialog), and fails on ``BOOM``.

    With ``ring`` an INVITE only gets 180 and waits for a CANCEL (answered 487).
    """

    def __init__(self, ring: bool = False) -> None:
        self.ring = ring
        self.pending: dict[str, SipRequest] = {}
        self.cancels: list[CancelReceived] = []
        self.acks: list[AckReceived] = []
        self.timeouts: list[TransactionTimedOut | AckTimedOut] = []
        self.acked = asyncio.Event()

    async def handle_request(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        if request.method == "BOOM":
            raise RuntimeError("handler bug")
        if request.method == "INVITE" and self.ring:
            self.pending[event.key] = request
            endpoint.respond(event.key, make_response(request, 180, to_tag="focus"))
            return
        if request.method == "INVITE":
            contact = f"<sip:focus@{LOOPBACK}:{endpoint.local_address('udp').port}>"
            response = make_response(request, 200, to_tag="focus", headers=[("Contact", contact)])
            dialog = dialog_from_uas(request, response, config=endpoint.layer.config)
            endpoint.respond(event.key, response, dialog=dialog)
            return
        endpoint.respond(event.key, make_response(request, 200, to_tag="focus"))

    def handle_ack(self, endpoint: SipEndpoint, event: AckReceived) -> None:
        self.acks.append(event)
        self.acked.set()

    def handle_cancel(self, endpoint: SipEndpoint, event: CancelReceived) -> None:
        self.cancels.append(event)
        invite = self.pending.pop(event.invite_key)
        endpoint.respond(event.invite_key, make_response(invite, 487, to_tag="focus"))

    def handle_timeout(
        self, endpoint: SipEndpoint, event: TransactionTimedOut | AckTimedOut
    ) -> None:
        self.timeouts.append(event)


def run(test: Callable[[], Awaitable[None]], limit: float = 10.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await test()

    asyncio.run(bounded())


def new_request(method: str, dest: SipAddress) -> SipRequest:
    headers = [
        ("Max-Forwards", "70"),
        ("From", f"<sip:ue@{LOOPBACK}>;tag={uuid.uuid4().hex[:8]}"),
        ("To", f"<sip:focus@{LOOPBACK}>"),
        ("Call-ID", uuid.uuid4().hex),
        ("CSeq", f"1 {method}"),
        ("Contact", f"<sip:ue@{LOOPBACK}>"),
    ]
    return SipRequest(method, f"sip:focus@{dest.host}:{dest.port}", headers)


async def pair(
    transport: str,
    tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    *,
    handler: Handler | None = None,
    timer_config: SipTimerConfig | None = None,
) -> tuple[SipEndpoint, SipEndpoint, SipAddress, Handler]:
    handler = handler or Handler()
    server = SipEndpoint(handler, timer_config=timer_config)
    client = SipEndpoint(Handler(), client_ssl_context=tls[1] if tls else None)
    await server.listen_udp(LOOPBACK, 0)
    await client.listen_udp(LOOPBACK, 0)
    if transport == "tcp":
        dest = await server.listen_tcp(LOOPBACK, 0)
    elif transport == "tls":
        assert tls is not None
        dest = await server.listen_tls(LOOPBACK, 0, tls[0])
    else:
        dest = server.local_address("udp")
    return server, client, dest, handler


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_options_answered_200(transport: str, tmp_path: Path) -> None:
    tls = tls_contexts(tmp_path) if transport == "tls" else None

    async def scenario() -> None:
        server, client, dest, _ = await pair(transport, tls)
        try:
            response = await client.request(new_request("OPTIONS", dest), dest)
            assert response.status == 200 and response.to_addr.tag == "focus"
            again = await client.request(new_request("OPTIONS", dest), dest)
            assert again.status == 200
            assert server.stats["received"] == 2 and client.stats["sent"] == 2
            if transport != "udp":
                assert len(client._connections) == 1  # the connection was reused
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_invite_2xx_is_acked_and_retransmission_stops() -> None:
    async def scenario() -> None:
        server, client, dest, handler = await pair("udp")
        try:
            invite = new_request("INVITE", dest)
            response = await client.request(invite, dest)
            assert response.status == 200
            dialog = dialog_from_uac(invite, response)
            client.send_ack(dialog.create_ack(response), dest)
            await handler.acked.wait()
            assert handler.acks[0].request.cseq == (1, "ACK")
            assert len(server.awaiting_ack) == 0
            assert not handler.timeouts
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_malformed_datagram_gets_400_and_endpoint_keeps_serving() -> None:
    async def scenario() -> None:
        server, client, dest, _ = await pair("udp")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        try:
            bad = (
                f"OPTIONS sip:focus@{LOOPBACK} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bKbad\r\n"
                "this line has no colon\r\n"
                "Call-ID: bad@x\r\nCSeq: 1 OPTIONS\r\n\r\n"
            )
            await loop.sock_sendto(sock, bad.encode(), (dest.host, dest.port))
            data, _ = await loop.sock_recvfrom(sock, 65535)
            answer = parse_message(data)
            assert isinstance(answer, SipResponse) and answer.status == 400
            assert answer.call_id == "bad@x"
            await loop.sock_sendto(sock, b"\x00garbage\xff", (dest.host, dest.port))
            response = await client.request(new_request("OPTIONS", dest), dest)
            assert response.status == 200
            assert server.stats["answered_malformed"] == 1
            assert server.stats["dropped_malformed"] == 1
        finally:
            sock.close()
            await client.close()
            await server.close()

    run(scenario)


def test_tcp_message_fed_in_tiny_chunks() -> None:
    async def scenario() -> None:
        server, client, dest, _ = await pair("tcp")
        reader, writer = await asyncio.open_connection(dest.host, dest.port)
        try:
            request = new_request("OPTIONS", dest)
            local_port = writer.get_extra_info("sockname")[1]
            request.headers.prepend(
                "Via", f"SIP/2.0/TCP {LOOPBACK}:{local_port};branch=z9hG4bKtiny"
            )
            data = b"\r\n" + bytes(request)  # a keep-alive CRLF first
            for start in range(0, len(data), 3):
                writer.write(data[start : start + 3])
                await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            answer = parse_message(head)
            assert isinstance(answer, SipResponse) and answer.status == 200
            assert answer.vias[0].branch == "z9hG4bKtiny"
        finally:
            writer.close()
            await writer.wait_closed()
            await client.close()
            await server.close()

    run(scenario)


def test_tcp_framing_error_answers_400_and_closes() -> None:
    async def scenario() -> None:
        server, client, dest, _ = await pair("tcp")
        reader, writer = await asyncio.open_connection(dest.host, dest.port)
        try:
            request = new_request("OPTIONS", dest)
            request.headers.prepend("Via", f"SIP/2.0/TCP {LOOPBACK}:5060;branch=z9hG4bKnolen")
            raw = bytes(request).replace(b"Content-Length: 0\r\n", b"")
            writer.write(raw)
            data = await reader.read()  # until the server closes
            answer = parse_message(data)
            assert isinstance(answer, SipResponse) and answer.status == 400
        finally:
            writer.close()
            await writer.wait_closed()
            await client.close()
            await server.close()

    run(scenario)


def test_handler_exception_is_answered_500() -> None:
    async def scenario() -> None:
        server, client, dest, _ = await pair("udp")
        try:
            response = await client.request(new_request("BOOM", dest), dest)
            assert response.status == 500
            assert server.stats["handler_errors"] == 1
            assert (await client.request(new_request("OPTIONS", dest), dest)).status == 200
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_request_times_out_with_timer_f() -> None:
    async def scenario() -> None:
        client = SipEndpoint(Handler(), timer_config=SipTimerConfig(t1=0.005, t2=0.04))
        await client.listen_udp(LOOPBACK, 0)
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind((LOOPBACK, 0))
        dest = SipAddress("udp", LOOPBACK, silent.getsockname()[1])
        try:
            with pytest.raises(SipRequestTimeout):
                await client.request(new_request("OPTIONS", dest), dest)
            assert client.stats["sent"] > 3  # timer E retransmitted
        finally:
            silent.close()
            await client.close()

    run(scenario)


def test_tcp_connect_failure_is_reported() -> None:
    async def scenario() -> None:
        client = SipEndpoint(Handler())
        await client.listen_udp(LOOPBACK, 0)
        probe = socket.socket()
        probe.bind((LOOPBACK, 0))
        dest = SipAddress("tcp", LOOPBACK, probe.getsockname()[1])
        probe.close()  # nobody listens there now
        try:
            with pytest.raises(ConnectionError):
                await client.request(new_request("OPTIONS", dest), dest)
        finally:
            await client.close()

    run(scenario)


def test_make_via_and_reexport() -> None:
    async def scenario() -> None:
        endpoint = ReExported(Handler())
        address = await endpoint.listen_udp(LOOPBACK, 0)
        try:
            via = endpoint.make_via("udp")
            assert via.startswith(f"SIP/2.0/UDP {LOOPBACK}:{address.port};branch=z9hG4bK")
            assert via.endswith(";rport")
            assert via != endpoint.make_via("udp")
        finally:
            await endpoint.close()

    run(scenario)


def test_recover_request() -> None:
    data = b"INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nbroken\r\n\r\n"
    recovered = recover_request(data)
    assert recovered is not None and recovered.vias[0].host == "h"
    assert recover_request(b"INVITE sip:a@b SIP/2.0\r\nbroken\r\n\r\n") is None
    assert recover_request(b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n") is None
    assert recover_request(b"\xff\xfe") is None


def test_cancel_gets_487_for_the_invite() -> None:
    async def scenario() -> None:
        server, client, dest, handler = await pair("udp", handler=Handler(ring=True))
        ringing = asyncio.Event()
        try:
            invite = new_request("INVITE", dest)
            call = asyncio.ensure_future(
                client.request(invite, dest, on_provisional=lambda _: ringing.set())
            )
            await ringing.wait()
            client.cancel(invite)
            response = await call
            assert response.status == 487
            assert len(handler.cancels) == 1
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_missing_ack_is_reported_to_the_handler() -> None:
    async def scenario() -> None:
        config = SipTimerConfig(t1=0.005, t2=0.04)
        server, client, dest, handler = await pair("udp", timer_config=config)
        try:
            response = await client.request(new_request("INVITE", dest), dest)
            assert response.status == 200  # and we never ACK
            while not handler.timeouts:
                await asyncio.sleep(0.02)
            (timeout,) = handler.timeouts
            assert isinstance(timeout, AckTimedOut) and timeout.dialog.call_id == response.call_id
            assert server.stats["sent"] > 3  # the 2xx was retransmitted
        finally:
            await client.close()
            await server.close()

    run(scenario)


@given(st.binary(max_size=300))
def test_recover_request_never_raises(data: bytes) -> None:
    recovered = recover_request(b"OPTIONS sip:a@b SIP/2.0\r\n" + data)
    assert recovered is None or recovered.vias
    assert recover_request(data) is None or data.lstrip(b"\r\n")[:1].isalpha()


class Recorder:
    """A transport owner that only records datagrams."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, SipAddress]] = []

    def datagram_received(self, data: bytes, source: SipAddress) -> None:
        self.datagrams.append((data, source))


def test_udp_reads_every_queued_datagram_per_event_up_to_the_batch_cap() -> None:
    """One loop iteration drains the queue (asyncio alone reads one datagram per iteration)."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        owner = Recorder()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: SipDatagramProtocol(owner, max_batch=50),  # type: ignore[arg-type]
            local_addr=(LOOPBACK, 0),
        )
        port = transport.get_extra_info("sockname")[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind((LOOPBACK, 0))
            for n in range(80):  # queued at the server socket before the loop runs again
                client.sendto(b"OPTIONS %d" % n, (LOOPBACK, port))
            await asyncio.sleep(0)  # this task runs before the read callback of this
            await asyncio.sleep(0)  # iteration: two yields see exactly one readiness event
            assert len(owner.datagrams) == 50  # the whole batch, not one datagram
            for _ in range(50):
                if len(owner.datagrams) == 80:
                    break
                await asyncio.sleep(0.01)
            sent_from = SipAddress("udp", LOOPBACK, client.getsockname()[1])
        assert [d for d, _ in owner.datagrams] == [b"OPTIONS %d" % n for n in range(80)]
        assert {s for _, s in owner.datagrams} == {sent_from}
        drain = protocol._drain
        assert drain is not None and drain.fileno() >= 0
        transport.close()
        await asyncio.sleep(0)
        assert protocol._drain is None and drain.fileno() == -1  # the duplicate is closed too

    run(body)


@pytest.mark.parametrize(("alias_host", "reused"), [(LOOPBACK, True), ("192.0.2.7", False)])
def test_via_alias_is_honoured_only_for_the_connections_own_host(
    alias_host: str, reused: bool
) -> None:
    """RFC 5923 §10: an alias may not divert what we send to another host to this peer."""

    async def scenario() -> None:
        server, client, dest, _ = await pair("tcp")
        reader, writer = await asyncio.open_connection(dest.host, dest.port)
        try:
            request = new_request("OPTIONS", dest)
            request.headers.prepend(
                "Via", f"SIP/2.0/TCP {alias_host}:5999;branch=z9hG4bKalias;alias"
            )
            writer.write(bytes(request))
            await writer.drain()
            answer = parse_message(await reader.readuntil(b"\r\n\r\n"))
            assert isinstance(answer, SipResponse) and answer.status == 200
            # a request of ours to that alias: over this very connection, or not at all here
            target = SipAddress("tcp", alias_host, 5999)
            sent = asyncio.ensure_future(server.request(new_request("OPTIONS", target), target))
            if reused:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                arrived = parse_message(head)
                assert isinstance(arrived, SipRequest) and arrived.method == "OPTIONS"
                writer.write(bytes(make_response(arrived, 200)))
                await writer.drain()
                assert (await asyncio.wait_for(sent, 5)).status == 200
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.5)
                sent.cancel()
        finally:
            writer.close()
            await writer.wait_closed()
            await client.close()
            await server.close()

    run(scenario)
