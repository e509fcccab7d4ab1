"""Hostile-input runs against a live ``mrf serve`` (issue 10, "Hostile input").

Every run sends mutated messages (:mod:`tests.reliability.mutate`) to the
server and tallies what came back: ``HostileTally.answers`` counts responses by
status (SIP codes, MSRP codes, BFCP primitive names, HTTP codes), ``closed``
the connections the server closed, ``silent`` the messages that drew no
answer within the probe time.  The runs:

* :func:`fuzz_sip_udp` / :func:`fuzz_sip_tcp`: mutated INVITE, OPTIONS, BYE,
  SUBSCRIBE, MESSAGE, REGISTER and CANCEL requests (RFC 3261).  Over TCP each
  mutation is followed by a valid OPTIONS probe on the same connection, so
  framing damage is visible (the probe is swallowed or the connection closed).
  ``mutator=SipEncodingMutator`` puts bytes that are not UTF-8 into every URI
  and header instead (issue 13: the whole server path, not just the parsers).
* :func:`fuzz_msrp` / :func:`fuzz_bfcp`: a real dial-in (INVITE with our
  certificate's ``a=fingerprint``, RFC 8122) gives a TLS connection the focus
  accepts; mutations go on it, each followed by a probe (MSRP SEND with
  ``Failure-Report: yes`` / BFCP Hello); a closed connection is re-opened and,
  if the session is gone, dialled again.
* :func:`fuzz_mikey`: mutated REQUEST_INIT POSTed to the KMS (HTTP,
  ``application/mikey``) and mutated TRANSFER_INIT in ``a=key-mgmt`` of
  INVITEs sent over SIP/TLS (RFC 4567, RFC 6043).

Only loopback; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.mutate import BinaryMutator, SipEncodingMutator, SipMutator, TextMutator

PROBE_TIMEOUT = 0.5
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3}) ", re.M)
_MSRP_RESPONSE = re.compile(rb"^MSRP (\S+) (\d{3})", re.M)
_HTTP = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_EXPLAINED = (b"403", b"404", b"488")  # refusals that must carry a Warning (RFC 3261 §20.43)
_WARNING = re.compile(rb"^Warning: *3\d\d \S+ \"[^\"\r\n]*\"\r?$", re.M | re.I)
type SipMutatorFactory = Callable[[int], SipMutator | SipEncodingMutator]


@dataclass
class HostileTally:
    """What one run sent and what came back."""

    name: str
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    closed: int = 0
    silent: int = 0
    silent_operations: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    unexplained: int = 0  # 403/404/488 answers without a Warning header

    def line(self) -> str:
        answers = ", ".join(f"{k}:{v}" for k, v in sorted(self.answers.items()))
        return (
            f"{self.name}: sent={self.sent} answered={sum(self.answers.values())} "
            f"closed={self.closed} silent={self.silent} sessions={self.sessions} "
            f"unexplained={self.unexplained} [{answers}]"
        )


@dataclass(frozen=True)
class Target:
    """Where the server under test listens and who may dial in."""

    host: str
    sip_port: int
    sip_tls_port: int
    conference: str  # sip:name@domain
    identity: str  # an authorized participant
    workdir: Path


# -- SIP base messages --------------------------------------------------------


def _headers(method: str, uri: str, via: str, identity: str, call_id: str, cseq: int) -> str:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{via};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{identity}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <{identity.replace('sip:', 'sip:c-')}>\r\n"
    )


def sdes_sdp(host: str, port: int) -> bytes:
    key = base64.b64encode(secrets.token_bytes(30)).decode()
    return (
        f"v=0\r\no=fuzz 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/SAVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n"
    ).encode()


def sip_request(
    method: str, uri: str, via: str, identity: str, *, body: bytes = b"", extra: str = ""
) -> bytes:
    """One well-formed request (the mutators' starting point)."""
    head = _headers(method, uri, via, identity, f"{secrets.token_hex(8)}@fuzz", 1) + extra
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def sip_bases(target: Target, via: str) -> list[bytes]:
    """Requests of every method the focus handles, to real and unknown conferences."""
    room = f"sip:{target.conference.split(':', 1)[1].split('@')[0]}@{target.host}:{target.sip_port}"
    missing = f"sip:nosuch@{target.host}:{target.sip_port}"
    stranger = "sip:mallory@127.0.0.1"
    sdp = sdes_sdp(target.host, 9)
    return [
        sip_request("INVITE", room, via, stranger, body=sdp),
        sip_request("INVITE", missing, via, target.identity, body=sdp),
        sip_request("INVITE", room, via, target.identity, body=sdp),
        sip_request("OPTIONS", room, via, stranger),
        sip_request("BYE", room, via, target.identity),
        sip_request("CANCEL", room, via, target.identity),
        sip_request("REGISTER", f"sip:{target.host}", via, stranger, extra="Expires: 60\r\n"),
        sip_request("MESSAGE", room, via, stranger, extra="Content-Type: text/plain\r\n"),
        sip_request(
            "SUBSCRIBE",
            room,
            via,
            target.identity,
            extra="Event: conference\r\nExpires: 600\r\n"
            "Accept: application/conference-info+xml\r\n",
        ),  # fmt: skip
    ]


def _tally_sip(tally: HostileTally, data: bytes, skip_branch: bytes | None = None) -> None:
    for response in re.split(rb"(?=^SIP/2\.0 )", data, flags=re.M):
        match = _STATUS.match(response)
        if match and (skip_branch is None or skip_branch not in response):
            tally.answers[match[1].decode()] += 1
            head = response.partition(b"\r\n\r\n")[0]
            tally.unexplained += match[1] in _EXPLAINED and _WARNING.search(head) is None


# -- SIP over UDP -------------------------------------------------------------


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)


async def fuzz_sip_udp(
    target: Target, count: int, seed: int = 1, mutator: SipMutatorFactory = SipMutator
) -> HostileTally:
    """``count`` mutated requests over UDP, paced so the kernel buffers never drop."""
    tally = HostileTally("sip-udp" if mutator is SipMutator else "sip-udp-bytes")
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Collector, local_addr=(target.host, 0), remote_addr=(target.host, target.sip_port)
    )
    port = transport.get_extra_info("sockname")[1]
    bases = sip_bases(target, f"UDP {target.host}:{port}")
    mutations = mutator(seed)
    try:
        for index in range(count):
            operation, data = mutations.mutate(bases[index % len(bases)])
            tally.operations[operation] += 1
            transport.sendto(data[:65507])
            tally.sent += 1
            if index % 20 == 19:
                await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
    finally:
        transport.close()
    for data in proto.received:
        _tally_sip(tally, data)
    return tally


# -- SIP over TCP -------------------------------------------------------------


async def _read_until(reader: asyncio.StreamReader, marker: bytes, timeout: float) -> bytes:
    """Bytes until the regex ``marker`` matches; raises EOFError / TimeoutError."""
    data = b""
    pattern = re.compile(marker, re.DOTALL)
    async with asyncio.timeout(timeout):
        while pattern.search(data) is None:
            chunk = await reader.read(65536)
            if not chunk:
                raise EOFError(data)
            data += chunk
    return data


async def _probe_stream(
    tally: HostileTally,
    open_stream: Callable[[], object],
    bases: list[bytes],
    mutator: TextMutator | BinaryMutator | SipEncodingMutator,
    count: int,
    make_probe: Callable[[], tuple[bytes, bytes]],
    parse: Callable[[HostileTally, bytes, bytes], None],
    timeout: float = PROBE_TIMEOUT,
) -> None:
    """Mutation, probe, read; reconnect via ``open_stream`` when the server closed."""
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    index = 0
    while index < count:
        if stream is None:
            stream = await open_stream()  # type: ignore[misc]
        reader, writer = stream
        operation, data = mutator.mutate(bases[index % len(bases)])
        tally.operations[operation] += 1
        probe, marker = make_probe()
        index += 1
        tally.sent += 1
        try:
            writer.write(data + probe)
            await writer.drain()
            parse(tally, await _read_until(reader, marker, timeout), marker)
            continue
        except EOFError as exc:
            parse(tally, exc.args[0] if exc.args else b"", marker)
            tally.closed += 1
        except TimeoutError:
            tally.silent += 1
            tally.silent_operations[operation] += 1
        except (ConnectionError, ssl.SSLError):
            tally.closed += 1
        writer.transport.abort()  # at once: no TLS shutdown left pending on a broken stream
        stream = None
    if stream is not None:
        stream[1].transport.abort()  # nothing pending may outlive the event loop
        await asyncio.sleep(0)


async def fuzz_sip_tcp(
    target: Target,
    count: int,
    seed: int = 2,
    workers: int = 16,
    tls: bool = False,
    mutator: SipMutatorFactory = SipMutator,
) -> HostileTally:
    """``count`` mutated requests over TCP (or TLS), each followed by an OPTIONS probe."""
    name = "sip-tls" if tls else "sip-tcp"
    tally = HostileTally(name if mutator is SipMutator else f"{name}-bytes")
    port = target.sip_tls_port if tls else target.sip_port
    context = _client_context() if tls else None
    via = f"{'TLS' if tls else 'TCP'} {target.host}:9"
    bases = sip_bases(target, via)

    async def open_stream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(target.host, port, ssl=context)

    def probe() -> tuple[bytes, bytes]:
        data = sip_request("OPTIONS", f"sip:{target.host}:{port}", via, "sip:probe@127.0.0.1")
        branch = re.search(rb"branch=(\S+);", data)
        assert branch is not None
        return data, re.escape(branch[1])

    def parse(tally: HostileTally, data: bytes, marker: bytes) -> None:
        _tally_sip(tally, data, skip_branch=marker)

    share = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    timeout = PROBE_TIMEOUT * 4 if tls else PROBE_TIMEOUT  # TLS under load answers slower
    await asyncio.gather(*(
        _probe_stream(tally, open_stream, bases, mutator(seed * 1000 + i), n, probe, parse,
                      timeout)
        for i, n in enumerate(share)
    ))  # fmt: skip
    return tally


def _client_context(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the focus's certificate is self-signed
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
    return context
