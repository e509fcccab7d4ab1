"""BFCP over TLS: floor request→grant round trips per second and p99, against a bare TLS echo.

Real sockets on loopback, one process, one event loop: the focus's
:class:`mrf.floor.FloorControl` (TLS listener of :mod:`mrf.secure_channel`,
fingerprint-checked, the sans-I/O floor server behind it) and N clients, each
a participant of its own conference (so a grant is never delayed by another
holder) with its own certificate.  Each client loops: FloorRequest, wait for
the Granted notification that follows the Pending answer (the timed round
trip), FloorRelease, wait for its
answer.  The same N clients then run a bare TLS echo of a FloorRequest-sized
message through the same channel class, measured in the same run (house
style §6).  Not part of the suite::

    .venv/bin/python bench/bfcp.py [--clients 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from focus.sdp.attributes import SdpFingerprint, fingerprints_match
from focus.sdp.bfcp import SdpBfcpPlan
from focus.sdp.offer_answer import SdpStreamPlan
from mrf.bfcp.attribute import BfcpAttribute, BfcpGroup, BfcpStatus
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.codes import BfcpRequestStatus as S
from mrf.bfcp.connection import BfcpConnection, BfcpRole
from mrf.bfcp.events import BfcpNotificationReceived, BfcpResponseReceived
from mrf.bfcp.message import BfcpMessage
from mrf.floor import FloorControl, start_floor_control
from mrf.secure_channel import SecureChannel
from mrf.tls import certificate_der, ensure_certificate
from mrf.tls_engine import CertificateTlsEngine, make_context

HOST = "127.0.0.1"
FLOOR_REQUEST = (BfcpAttribute(T.FLOOR_ID, 1),)


class Client:
    """One TLS connection; ``round_trip`` sends and awaits the next answer."""

    def __init__(self, cert: Path, key: Path, *, bfcp: bool) -> None:
        self.context = make_context(cert, key)
        self.bfcp = BfcpConnection(BfcpRole.CLIENT) if bfcp else None
        self.channel: SecureChannel | None = None
        self.opened = asyncio.Event()
        self._answers: asyncio.Queue[BfcpMessage | bytes] = asyncio.Queue()
        self.notifications: asyncio.Queue[BfcpMessage] = asyncio.Queue()
        self._echo = bytearray()

    async def connect(self, port: int, expected: SdpFingerprint) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(
            lambda: SecureChannel(
                CertificateTlsEngine(
                    self.context, lambda der: fingerprints_match(der, [expected]), server_side=False
                ),
                self,
            ),
            HOST,
            port,
        )
        await asyncio.wait_for(self.opened.wait(), 10)

    def channel_open(self, channel: SecureChannel) -> None:
        self.channel = channel
        self.opened.set()

    def channel_data(self, channel: SecureChannel, data: bytes) -> None:
        if self.bfcp is None:
            self._answers.put_nowait(data)
            return
        self.bfcp.receive_data(data, 0.0)
        while (event := self.bfcp.next_event()) is not None:
            if isinstance(event, BfcpResponseReceived):
                self._answers.put_nowait(event.message)
            elif isinstance(event, BfcpNotificationReceived):
                self.notifications.put_nowait(event.message)

    def channel_closed(self, channel: SecureChannel, reason: str | None) -> None:
        self.channel = None

    async def request(self, primitive: int, ids: tuple[int, int], attrs: tuple) -> BfcpMessage:
        assert self.bfcp is not None and self.channel is not None
        self.bfcp.send_request(primitive, *ids, attrs)
        self.channel.write(self.bfcp.data_to_send())
        answer = await self._answers.get()
        assert isinstance(answer, BfcpMessage)
        return answer

    async def echo(self, data: bytes) -> None:
        assert self.channel is not None
        self.channel.write(data)
        received = 0
        while received < len(data):
            chunk = await self._answers.get()
            assert isinstance(chunk, bytes)
            received += len(chunk)


class Echo:
    """The bare TLS echo server's app."""

    def channel_open(self, channel: SecureChannel) -> None:
        return None

    def channel_data(self, channel: SecureChannel, data: bytes) -> None:
        channel.write(data)

    def channel_closed(self, channel: SecureChannel, reason: str | None) -> None:
        return None


def _status(answer: BfcpMessage) -> tuple[int, int]:
    """(floor request ID, REQUEST-STATUS) of a FloorRequestStatus answer."""
    fri = answer.values(T.FLOOR_REQUEST_INFORMATION)[0]
    assert isinstance(fri, BfcpGroup)
    overall = fri.first(T.OVERALL_REQUEST_STATUS)
    assert overall is not None and isinstance(overall.value, BfcpGroup)
    status = overall.value.first(T.REQUEST_STATUS)
    assert status is not None and isinstance(status.value, BfcpStatus)
    return fri.id, status.value.status


async def _floor_loop(client: Client, ids: tuple[int, int], until: float) -> list[float]:
    latencies = []
    while time.perf_counter() < until:
        start = time.perf_counter()
        answer = await client.request(P.FLOOR_REQUEST, ids, FLOOR_REQUEST)
        request_id, status = _status(answer)  # Pending (RFC 8855 §13.1.2), then notified
        while status != S.GRANTED:
            notified, status = _status(await client.notifications.get())
            if notified == request_id and status not in (S.PENDING, S.ACCEPTED, S.GRANTED):
                raise RuntimeError(f"floor request ended {S(status).name}")
        latencies.append(time.perf_counter() - start)
        release = (BfcpAttribute(T.FLOOR_REQUEST_ID, request_id),)
        await client.request(P.FLOOR_RELEASE, ids, release)
    return latencies


async def _echo_loop(client: Client, until: float) -> list[float]:
    data = bytes(BfcpMessage(P.FLOOR_REQUEST, 1, 1, 1, FLOOR_REQUEST))
    latencies = []
    while time.perf_counter() < until:
        start = time.perf_counter()
        await client.echo(data)
        latencies.append(time.perf_counter() - start)
        await client.echo(data)  # the release's round trip, untimed as above
    return latencies


def _report(name: str, latencies: list[float], seconds: float) -> float:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = len(ordered) / seconds
    print(f"{name}: {rate:,.0f} round trips/s, p50 {ordered[len(ordered) // 2] * 1000:.2f} ms, "
          f"p99 {p99:.2f} ms ({len(ordered)} samples)")  # fmt: skip
    return rate


async def _setup_floor(control: FloorControl, certs: list[tuple[Path, Path]]) -> list[Client]:
    clients = []
    for number, (cert, key) in enumerate(certs):
        der = certificate_der(cert.read_bytes())
        plan = SdpStreamPlan(
            1, "application", True, None, "TCP/TLS/BFCP",
            bfcp=SdpBfcpPlan(True, (SdpFingerprint.from_certificate(der),), False, HOST, 9,
                             "main", 0),
        )  # fmt: skip
        call = SimpleNamespace(
            call_id=f"bench-{number}", conference=SimpleNamespace(name=f"room{number}"),
            participant=f"sip:u{number}@bench.example", role="participant",
        )  # fmt: skip
        local = control.open(call, plan)
        client = Client(cert, key, bfcp=True)
        await client.connect(control.port, control.fingerprint)
        await client.request(P.HELLO, (local.conference_id, local.user_id), ())  # binds
        client.ids = (local.conference_id, local.user_id)  # type: ignore[attr-defined]
        clients.append(client)
    return clients


async def main(count: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-bfcp-") as tmp:
        root = Path(tmp)
        focus_cert, focus_key = ensure_certificate(root / "focus")
        certs = [ensure_certificate(root / f"c{i}") for i in range(count)]
        control = await start_floor_control(HOST, 0, focus_cert, focus_key)
        try:
            clients = await _setup_floor(control, certs)
            until = time.perf_counter() + seconds
            results = await asyncio.gather(
                *(_floor_loop(c, c.ids, until) for c in clients)  # type: ignore[attr-defined]
            )
            floor_rate = _report(
                f"BFCP FloorRequest->Granted over TLS, {count} clients",
                [x for r in results for x in r], seconds,
            )  # fmt: skip
            for client in clients:
                if client.channel is not None:
                    client.channel.close()
        finally:
            await control.close_all()
        echo_context = make_context(focus_cert, focus_key)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SecureChannel(
                CertificateTlsEngine(echo_context, lambda der: True, server_side=True), Echo()
            ),
            HOST, 0,
        )  # fmt: skip
        port = int(server.sockets[0].getsockname()[1])
        fingerprint = SdpFingerprint.from_certificate(certificate_der(focus_cert.read_bytes()))
        echoes = [Client(cert, key, bfcp=False) for cert, key in certs]
        for client in echoes:
            await client.connect(port, fingerprint)
        until = time.perf_counter() + seconds
        results = await asyncio.gather(*(_echo_loop(c, until) for c in echoes))
        echo_rate = _report(
            f"bare TLS echo of the same size, {count} clients",
            [x for r in results for x in r], seconds,
        )  # fmt: skip
        for client in echoes:
            if client.channel is not None:
                client.channel.close()
        server.close()
        await server.wait_closed()
        print(f"ratio BFCP/echo: {floor_rate / echo_rate:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.seconds))
