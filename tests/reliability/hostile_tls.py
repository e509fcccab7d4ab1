"""Hostile MSRP, BFCP and MIKEY input over TLS (issue 10) — see :mod:`tests.reliability.hostile`.

MSRP (RFC 4975) and BFCP (RFC 8855) mutations travel on TLS connections the
focus accepted for a real dial-in (fingerprint-valid certificate, RFC 8122).
MIKEY mutations are REQUEST_INITs POSTed to the KMS and TRANSFER_INITs in the
``a=key-mgmt`` attribute (RFC 4567 §3) of INVITEs sent over SIP/TLS.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import struct
import time
from pathlib import Path

from focus.mikey.initiator import MikeyTicketRequest
from mrf.bfcp.attribute import BfcpAttribute
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.message import BfcpMessage
from mrf.ue.mikey import UeMikey
from tests.reliability.hostile import (
    PROBE_TIMEOUT,
    HostileTally,
    Target,
    _client_context,
    _probe_stream,
    _tally_sip,
    sdes_sdp,
)
from tests.reliability.mutate import BinaryMutator, TextMutator
from tests.reliability.session import DialIn, DialInError, Identity, dial_in, hang_up

_MSRP_RESPONSE = re.compile(rb"MSRP (\S+) (\d{3})")
_HTTP = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_SIP_FINAL = rb"SIP/2\.0 [2-6]\d\d "


class _Sessions:
    """Dial-ins as needed: a closed line is re-opened, a dead session re-dialled."""

    def __init__(self, target: Target, identity: Identity, tally: HostileTally) -> None:
        self.target = target
        self.identity = identity
        self.tally = tally
        self.call: DialIn | None = None
        self.failures = 0

    async def fresh(self) -> DialIn:
        if self.call is not None:
            await hang_up(self.target.host, self.target.sip_port, self.target.identity, self.call)
        user = self.target.conference.split(":", 1)[1].split("@")[0]
        try:
            self.call = await dial_in(
                self.target.host, self.target.sip_port, user, self.target.identity, self.identity
            )
        except (DialInError, TimeoutError) as exc:
            self.failures += 1
            raise AssertionError(f"dial-in for the TLS fuzzers failed: {exc}") from exc
        self.tally.sessions += 1
        return self.call

    async def close(self) -> None:
        if self.call is not None:
            await hang_up(self.target.host, self.target.sip_port, self.target.identity, self.call)


async def _open_tls(
    sessions: _Sessions, addr: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS line to the session's MSRP or BFCP address; a new dial-in when refused."""
    for attempt in range(2):
        call = (
            sessions.call if sessions.call is not None and attempt == 0 else await sessions.fresh()
        )
        host, port = (
            (call.msrp_host, call.msrp_port) if addr == "msrp" else (call.bfcp_host, call.bfcp_port)
        )
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=sessions.identity.tls_context()), 5
            )
        except (OSError, TimeoutError):
            continue
        if addr == "bfcp":  # the line binds on its first message (RFC 8855 §9)
            writer.write(_bfcp(call, P.HELLO, secrets.randbelow(0xFFFF) + 1))
        else:
            writer.write(_msrp_send(call, secrets.token_hex(6), b"hello"))
        try:
            await asyncio.wait_for(reader.read(65536), 2)
        except (OSError, TimeoutError):
            writer.transport.abort()
            continue
        return reader, writer
    raise AssertionError("the focus refused two fresh TLS lines in a row")


# -- MSRP ------------------------------------------------------------------------


def _msrp_send(call: DialIn, tid: str, body: bytes, *, cont: bytes = b"$") -> bytes:
    return (
        (
            f"MSRP {tid} SEND\r\nTo-Path: {call.focus_path}\r\nFrom-Path: {call.our_path}\r\n"
            f"Message-ID: {secrets.token_hex(6)}\r\nByte-Range: 1-{len(body)}/{len(body)}\r\n"
            f"Failure-Report: yes\r\nContent-Type: text/plain\r\n\r\n"
        ).encode()
        + body
        + f"\r\n-------{tid}".encode()
        + cont
        + b"\r\n"
    )


def _msrp_bases(call: DialIn) -> list[bytes]:
    cpim = (
        b"From: <sip:x@127.0.0.1>\r\nTo: <sip:y@127.0.0.1>\r\n\r\n"
        b"Content-Type: text/plain\r\n\r\nhi"
    )
    tid = secrets.token_hex(5)
    return [
        _msrp_send(call, tid, b"hello, room"),
        _msrp_send(call, tid, b"first part of a chunked message", cont=b"+"),
        _msrp_send(call, tid, b"x" * 2000, cont=b"#"),
        _msrp_send(call, tid, cpim).replace(b"text/plain\r\n\r\nFrom", b"message/cpim\r\n\r\nFrom"),
        (
            f"MSRP {tid} NICKNAME\r\nTo-Path: {call.focus_path}\r\nFrom-Path: {call.our_path}\r\n"
            f'Use-Nickname: "Fuzzy"\r\n-------{tid}$\r\n'
        ).encode(),
        (
            f"MSRP {tid} REPORT\r\nTo-Path: {call.focus_path}\r\nFrom-Path: {call.our_path}\r\n"
            f"Message-ID: abc\r\nByte-Range: 1-5/5\r\nStatus: 000 200 OK\r\n-------{tid}$\r\n"
        ).encode(),
    ]


async def fuzz_msrp(
    target: Target, count: int, workdir: Path, seed: int = 3, workers: int = 8
) -> HostileTally:
    """``count`` mutated MSRP requests on fingerprint-valid TLS lines, each probed."""
    tally = HostileTally("msrp-tls")
    identity = Identity(workdir / "fuzz-msrp")

    async def worker(index: int, share: int) -> None:
        sessions = _Sessions(target, identity, tally)
        bases = _msrp_bases(await sessions.fresh())

        def probe() -> tuple[bytes, bytes]:
            assert sessions.call is not None
            tid = secrets.token_hex(6)
            return _msrp_send(sessions.call, tid, b"probe"), rb"MSRP " + tid.encode() + rb" \d{3}"

        def parse(tally: HostileTally, data: bytes, marker: bytes) -> None:
            probe_tid = marker.split(b" ")[1]
            for match in _MSRP_RESPONSE.finditer(data):
                if match[1] != probe_tid:
                    tally.answers[match[2].decode()] += 1

        mutator = TextMutator(seed * 100 + index)
        try:
            await _probe_stream(
                tally, lambda: _open_tls(sessions, "msrp"), bases, mutator, share, probe, parse
            )
        finally:
            await sessions.close()

    await asyncio.gather(*(worker(i, n) for i, n in enumerate(_shares(count, workers))))
    return tally


def _shares(count: int, workers: int) -> list[int]:
    return [count // workers + (1 if i < count % workers else 0) for i in range(workers)]


# -- BFCP ------------------------------------------------------------------------


def _bfcp(call: DialIn, primitive: int, tid: int, *attributes: BfcpAttribute) -> bytes:
    return bytes(BfcpMessage(primitive, call.conference_id, tid, call.user_id, attributes))


def _bfcp_bases(call: DialIn) -> list[bytes]:
    floor = BfcpAttribute(T.FLOOR_ID, 1)
    request = BfcpAttribute(T.FLOOR_REQUEST_ID, 1)
    return [
        _bfcp(call, P.HELLO, 7),
        _bfcp(call, P.FLOOR_REQUEST, 8, floor),
        _bfcp(call, P.FLOOR_RELEASE, 9, request),
        _bfcp(call, P.FLOOR_QUERY, 10, floor),
        _bfcp(call, P.USER_QUERY, 11),
        _bfcp(call, P.FLOOR_REQUEST_QUERY, 12, request),
        _bfcp(call, P.FLOOR_REQUEST, 13, floor, BfcpAttribute(T.BENEFICIARY_ID, 77)),
    ]


def _bfcp_names(data: bytes) -> list[tuple[str, int]]:
    """(primitive name, transaction id) of the messages in ``data`` (RFC 8855 §5.1)."""
    names, offset = [], 0
    while offset + 12 <= len(data):
        primitive, length = data[offset + 1], struct.unpack_from("!H", data, offset + 2)[0]
        tid = struct.unpack_from("!H", data, offset + 8)[0]
        try:
            names.append((P(primitive).name, tid))
        except ValueError:
            names.append((f"primitive-{primitive}", tid))
        offset += 12 + 4 * length
    return names


async def fuzz_bfcp(
    target: Target, count: int, workdir: Path, seed: int = 4, workers: int = 8
) -> HostileTally:
    """``count`` mutated BFCP messages on fingerprint-valid TLS lines, each probed with Hello."""
    tally = HostileTally("bfcp-tls")
    identity = Identity(workdir / "fuzz-bfcp")
    offsets = ((2, 2), (13, 1), (17, 1), (4, 4), (8, 2), (10, 2))
    probes: set[int] = set()

    def parse(tally: HostileTally, data: bytes, marker: bytes) -> None:
        for name, tid in _bfcp_names(data):
            if not (name == "HELLO_ACK" and tid in probes):
                tally.answers[name] += 1

    async def worker(index: int, share: int) -> None:
        sessions = _Sessions(target, identity, tally)
        bases = _bfcp_bases(await sessions.fresh())

        def probe() -> tuple[bytes, bytes]:
            assert sessions.call is not None
            tid = 0x8000 + secrets.randbelow(0x7FFF)
            probes.add(tid)
            data = _bfcp(sessions.call, P.HELLO, tid)
            return data, re.escape(bytes([P.HELLO_ACK])) + rb".." + re.escape(data[4:10])

        mutator = BinaryMutator(seed * 100 + index, length_offsets=offsets)
        try:
            await _probe_stream(
                tally,
                lambda: _open_tls(sessions, "bfcp"),
                bases,
                mutator,
                share,
                probe,
                parse,
                timeout=0.25,  # a desynchronised stream (no resync in BFCP framing) stays silent
            )
        finally:
            await sessions.close()

    await asyncio.gather(*(worker(i, n) for i, n in enumerate(_shares(count, workers))))
    return tally


# -- MIKEY -----------------------------------------------------------------------


async def _http_post(host: str, port: int, path: str, body: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/mikey\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        writer.transport.abort()


async def fuzz_kms(
    target: Target, count: int, kms_url: str, kms_key: str, seed: int = 5
) -> HostileTally:
    """``count`` mutated REQUEST_INITs (RFC 6043 §5.1) POSTed to the KMS."""
    tally = HostileTally("mikey-kms")
    host_port, _, path = kms_url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    aor = target.conference.split(";")[0]
    request = MikeyTicketRequest.build(
        target.identity.encode(), bytes.fromhex(kms_key), responders=[aor.encode()], now=time.time()
    )
    base = bytes(request.message)
    mutator = BinaryMutator(seed, length_offsets=((1, 1), (2, 1)))

    async def one(data: bytes) -> None:
        try:
            reply = await _http_post(host, int(port), "/" + path, data)
        except (OSError, TimeoutError):
            tally.silent += 1
            return
        match = _HTTP.match(reply)
        tally.answers[match[1].decode() if match else "no-status"] += 1

    for start in range(0, count, 16):
        batch = []
        for _ in range(min(16, count - start)):
            operation, data = mutator.mutate(base)
            tally.operations[operation] += 1
            batch.append(one(data))
        tally.sent += len(batch)
        await asyncio.gather(*batch)
    return tally


def _key_mgmt_invite(target: Target, key_mgmt: str) -> tuple[bytes, bytes]:
    host, port = target.host, target.sip_tls_port
    user = target.conference.split(":", 1)[1].split("@")[0]
    uri = f"sip:{user}@{host}:{port};transport=tls"
    branch = f"z9hG4bK{secrets.token_hex(8)}"
    body = sdes_sdp(host, 9).replace(b"RTP/SAVP", b"RTP/SAVP", 1)
    body = re.sub(rb"a=crypto:[^\r]*\r\n", b"", body)
    body = body.replace(b"t=0 0\r\n", f"t=0 0\r\na=key-mgmt:{key_mgmt}\r\n".encode(), 1)
    head = (
        f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/TLS {host}:9;branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{target.identity}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <{uri}>\r\nCall-ID: {secrets.token_hex(8)}@fuzz\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:fuzz@{host}:9;transport=tls>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body, branch.encode()


async def fuzz_transfer_init(
    target: Target, count: int, kms_url: str, kms_key: str, seed: int = 6, workers: int = 16
) -> HostileTally:
    """``count`` INVITEs over SIP/TLS whose ``a=key-mgmt`` holds a mutated TRANSFER_INIT."""
    tally = HostileTally("mikey-invite-tls")
    ue = UeMikey.for_conference(kms_url, kms_key, target.identity, target.conference)
    value = await ue.offer_attribute(audio_ssrc=0x1234, msrp=False, now=time.time())
    base = base64.b64decode(value.split()[1])

    async def worker(index: int, share: int) -> None:
        mutator = BinaryMutator(seed * 100 + index, length_offsets=((1, 1), (2, 1)))
        stream = None
        for _ in range(share):
            if stream is None:
                stream = await asyncio.open_connection(
                    target.host, target.sip_tls_port, ssl=_client_context()
                )
            reader, writer = stream
            operation, data = mutator.mutate(base)
            tally.operations[operation] += 1
            invite, branch = _key_mgmt_invite(target, "mikey " + base64.b64encode(data).decode())
            tally.sent += 1
            try:
                writer.write(invite)
                answer = b""
                async with asyncio.timeout(PROBE_TIMEOUT * 10):
                    while not re.search(
                        _SIP_FINAL + rb"[^\r]*\r\n(?:[^\r]+\r\n)*?Via:[^\r]*" + branch, answer
                    ):
                        chunk = await reader.read(65536)
                        if not chunk:
                            raise EOFError
                        answer += chunk
                finals = [m for m in re.finditer(_SIP_FINAL, answer)]
                _tally_sip(tally, answer[finals[-1].start() :] if finals else b"")
            except (EOFError, ConnectionError):
                tally.closed += 1
                writer.transport.abort()
                stream = None
            except TimeoutError:
                tally.silent += 1
                writer.transport.abort()
                stream = None
        if stream is not None:
            stream[1].transport.abort()  # nothing pending may outlive the event loop
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(i, n) for i, n in enumerate(_shares(count, workers))))
    return tally
