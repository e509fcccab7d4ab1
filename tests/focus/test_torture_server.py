"""RFC 4475 torture messages sent to the running focus over UDP and TCP.

Every invalid message is answered with the refusal the RFC expects (or dropped
when it cannot be answered), every valid one gets an answer, and afterwards the
focus still serves a normal OPTIONS: nothing crashed, nothing was lost.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from focus.endpoint import SipEndpoint
from focus.service import FocusConfig, FocusService
from focus.sip.transaction import SipAddress
from focus.store import ConferenceStore
from mrf.rtp.plane import MediaPlane

HOST = "127.0.0.1"
VECTORS = Path(__file__).parents[1] / "vectors" / "sip"
# RFC 4475 messages that a UAS must refuse, and with what (status as a regex:
# several are only "reject" in the RFC, e.g. 3.1.2.4 scalar02 "400" or "413").
REFUSED = {
    "badinv01": "400", "clerr": "400", "ncl": "400", "scalar02": "400|413",
    "quotbal": "400", "ltgtruri": "400", "lwsruri": "400", "lwsstart": "400",
    "trws": "400", "escruri": "400", "regbadct": "400", "badaspec": "400",
    "baddn": "400", "badvers": "505", "mismatch01": "400", "mismatch02": "501|405|400",
    "badbranch": "400", "insuf": "400", "unkscm": "416", "novelsc": "416",
    "unksm2": "400|416", "bext01": "420", "invut": "415", "multi01": "400",
    "mcl01": "400", "intmeth": "501|405", "esc02": "501|405",
}  # fmt: skip
RESPONSES = {
    "bigcode",
    "noreason",
    "unreason",
    "bcast",
    "scalarlg",
    "inv2543",
}  # not requests, or no reply


def vector_names() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("*.txt"))


@asynccontextmanager
async def focus(tmp_path: Path) -> AsyncIterator[tuple[SipEndpoint, SipAddress, SipAddress]]:
    store = ConferenceStore(f"sqlite:///{tmp_path / 'mrf.db'}")
    store.create_all()
    media = MediaPlane(HOST, (43100, 43199))
    service = FocusService(store, media, FocusConfig(domain=HOST))
    endpoint = SipEndpoint(service)
    udp = await endpoint.listen_udp(HOST, 0)
    tcp = await endpoint.listen_tcp(HOST, 0)
    try:
        yield endpoint, udp, tcp
    finally:
        await service.shutdown(endpoint)
        await endpoint.close()
        media.close()
        store.close()


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.datagrams.put_nowait(data)


LWS = rb"(?:[ \t]*\r\n)?[ \t]*"  # linear white space, folding included (RFC 3261 §25.1)
TOP_VIA = re.compile(
    rb"^((?:Via|v)"
    + LWS
    + rb":"
    + LWS
    + rb"SIP"
    + LWS
    + rb"/"
    + LWS
    + rb"2\.0"
    + LWS
    + rb"/"
    + LWS
    + rb")([A-Za-z]+"
    + LWS
    + rb"[^;, \t\r\n]+)",
    re.IGNORECASE | re.MULTILINE,
)


def aim_top_via(data: bytes, port: int) -> bytes:
    """Point the top Via's transport and sent-by at our UDP socket (RFC 3261
    §18.2.2 routes responses there); everything else is left as it is."""
    return TOP_VIA.sub(lambda m: m.group(1) + f"UDP {HOST}:{port}".encode(), data, count=1)


async def udp_exchange(data: bytes, dest: SipAddress, wait: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    transport, collector = await loop.create_datagram_endpoint(Collector, local_addr=(HOST, 0))
    try:
        data = aim_top_via(data, transport.get_extra_info("sockname")[1])
        transport.sendto(data, (dest.host, dest.port))
        try:
            async with asyncio.timeout(wait):
                return await collector.datagrams.get()
        except TimeoutError:
            return None
    finally:
        transport.close()


async def tcp_exchange(data: bytes, dest: SipAddress, wait: float) -> bytes | None:
    reader, writer = await asyncio.open_connection(dest.host, dest.port)
    try:
        writer.write(data)
        await writer.drain()
        try:
            async with asyncio.timeout(wait):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError):
            return None
        return head
    finally:
        writer.close()


def status_of(reply: bytes | None) -> str | None:
    if reply is None:
        return None
    match = re.match(rb"SIP/2\.0 (\d{3}) ", reply)
    return match.group(1).decode() if match else None


OPTIONS = (
    b"OPTIONS sip:retro@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-after\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:retro@127.0.0.1>\r\n"
    b"Call-ID: after-the-torture\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_torture_vectors_against_the_running_focus(tmp_path: Path, transport: str) -> None:
    async def main() -> None:
        async with focus(tmp_path) as (endpoint, udp, tcp):
            exchange = udp_exchange if transport == "udp" else tcp_exchange
            dest = udp if transport == "udp" else tcp
            outcomes: dict[str, str | None] = {}
            for name in vector_names():
                data = (VECTORS / f"{name}.txt").read_bytes()
                wait = 0.3 if name in RESPONSES else 1.0
                outcomes[name] = status_of(await exchange(data, dest, wait))
            wrong = {
                name: (outcomes[name], expected)
                for name, expected in REFUSED.items()
                if name in outcomes
                and outcomes[name] is not None  # dropping what cannot be answered is allowed
                and not re.fullmatch(expected, outcomes[name] or "")
            }
            assert wrong == {}
            # refusals were really sent for the ones a UAS can answer over this transport
            answered = [n for n in REFUSED if outcomes.get(n) is not None]
            assert len(answered) >= len(REFUSED) - 6, outcomes
            # valid requests are answered (by the focus's ordinary rules)
            valid = [n for n in outcomes if n not in REFUSED and n not in RESPONSES]
            silent = [n for n in valid if outcomes[n] is None]
            assert silent == [], outcomes
            # and the focus still serves
            assert status_of(await udp_exchange(OPTIONS, udp, 2.0)) == "200"
            assert endpoint.stats["handler_errors"] == 0

    asyncio.run(main())
