"""MSRP and BFCP over TLS accept only the certificate of the SDP fingerprint (RFC 8122 §5).

carol dials in over SIP with her certificate's ``a=fingerprint`` and
``a=setup:active`` (:mod:`tests.reliability.session`); a client holding
another certificate then connects to the focus's MSRP or BFCP listener and
sends a well-formed SEND or Hello bound to carol's session.  The focus must
close that connection without answering a single MSRP or BFCP byte
(``mrf.tls_engine``, ``fingerprints_match``: checked in the handshake, before the
protocol sees data) and relay nothing; carol's own certificate then gets the
200 / HelloAck on the same listener, and (MSRP) alice, in the room with
``mrf ue``'s client, receives carol's message but never the rogue's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import ssl
from pathlib import Path
from typing import Any

import pytest

from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.ue.client import UeClient, UeOptions
from tests.reliability.hostile_tls import _bfcp
from tests.reliability.session import DialIn, Identity, dial_in, hang_up
from tests.security.rig import ALICE, CAROL, ROOM, SecurityServer
from tests.security.table import RefusalLog

LEAK = "rogue text that must never be relayed"
REFUSAL_LOG = "peer certificate does not match the SDP fingerprint"


async def _exchange(
    host: str, port: int, context: ssl.SSLContext, payload: bytes, complete: re.Pattern[bytes]
) -> tuple[bytes, str]:
    """Connect, send ``payload``, read until ``complete`` matches or the line ends."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), 10
        )
    except (OSError, ssl.SSLError) as exc:
        return b"", f"handshake failed: {exc!r}"
    received, ending = b"", "open after 10 s"
    try:
        writer.write(payload)
        async with asyncio.timeout(10):
            while not complete.search(received):
                chunk = await reader.read(65536)
                if not chunk:
                    ending = "TCP closed by the focus after the handshake"
                    break
                received += chunk
            else:
                ending = "answered"
    except TimeoutError:
        pass
    except (OSError, ssl.SSLError) as exc:
        ending = f"connection ended: {type(exc).__name__}"
    finally:
        writer.close()
    return received, ending


def _msrp(call: DialIn, text: str) -> tuple[bytes, re.Pattern[bytes]]:
    """A SEND of ``text`` in message/cpim (RFC 4975 §7.1, RFC 3862) on carol's session."""
    tid = secrets.token_hex(6)
    body = (f"From: <{CAROL}>\r\nTo: <sip:{ROOM}@127.0.0.1>\r\n\r\n"
            f"Content-Type: text/plain;charset=utf-8\r\n\r\n{text}").encode()  # fmt: skip
    head = (
        f"MSRP {tid} SEND\r\nTo-Path: {call.focus_path}\r\nFrom-Path: {call.our_path}\r\n"
        f"Message-ID: {secrets.token_hex(6)}\r\nByte-Range: 1-{len(body)}/{len(body)}\r\n"
        f"Content-Type: message/cpim\r\n\r\n"
    )
    send = head.encode() + body + f"\r\n-------{tid}$\r\n".encode()
    return send, re.compile(rb"MSRP " + tid.encode() + rb" \d{3}")


def _hello(call: DialIn) -> tuple[bytes, re.Pattern[bytes]]:
    return _bfcp(call, P.HELLO, 77), re.compile(rb"\A[\x20-\x3f][\x00-\xff]{11}", re.S)


async def _wrong_then_right(server: SecurityServer, tmp: Path, kind: str) -> dict[str, Any]:
    carol, rogue = Identity(tmp / "carol"), Identity(tmp / "rogue")
    events: list[dict[str, Any]] = []
    alice = UeClient(UeOptions(server.room_uri, ALICE, msrp=True), events.append)
    call: DialIn | None = None
    try:
        if kind == "MSRP":  # a participant in the room, to see what is relayed
            assert await alice.join(), events
        call = await dial_in(server.host, server.sip[1], ROOM, CAROL, carol)
        if kind == "MSRP":
            where = (call.msrp_host, call.msrp_port)
            rogue_msg, good_msg = _msrp(call, LEAK), _msrp(call, "hello from carol")
        else:
            where = (call.bfcp_host, call.bfcp_port)
            rogue_msg, good_msg = _hello(call), _hello(call)
        refusals = server.log_count(REFUSAL_LOG)
        wrong = await _exchange(*where, rogue.tls_context(), *rogue_msg)
        with contextlib.suppress(TimeoutError):  # the alert may reach us before the log line
            async with asyncio.timeout(5):
                while server.log_count(REFUSAL_LOG) == refusals:
                    await asyncio.sleep(0.05)
        logged = server.log_count(REFUSAL_LOG) - refusals
        right = await _exchange(*where, carol.tls_context(), *good_msg)
        if kind == "MSRP":  # the relayed message (asserted by the test), bounded wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while not [e for e in events if e["event"] == "chat"]:
                        await asyncio.sleep(0.05)
        return {"wrong": wrong, "right": right, "events": events, "logged": logged}
    finally:
        if call is not None:
            await hang_up(server.host, server.sip[1], CAROL, call)
        if alice.dialog is not None:
            await alice.leave()
        await alice.close()


@pytest.mark.parametrize("kind", ["MSRP", "BFCP"])
def test_wrong_certificate_fingerprint_is_refused_before_any_byte(
    security_server: SecurityServer, refusal: RefusalLog, tmp_path: Path, kind: str
) -> None:
    found = asyncio.run(asyncio.wait_for(_wrong_then_right(security_server, tmp_path, kind), 60))
    (wrong_bytes, wrong_end), (right_bytes, right_end) = found["wrong"], found["right"]
    chats = [(e["from"], e["text"]) for e in found["events"] if e["event"] == "chat"]
    if kind == "MSRP":
        status = re.match(rb"MSRP \w+ (\d{3} [^\r]*)", right_bytes)
        control = (status[1].decode() if status else right_end) + f", {len(chats)} relayed"
    else:
        control = P(right_bytes[1]).name if len(right_bytes) > 1 else right_end
    first = "SEND" if kind == "MSRP" else "Hello"
    refusal.record(
        f"wrong certificate fingerprint ({kind})",
        f"TLS with a certificate other than the SDP a=fingerprint's, then a valid {first}",
        f"{wrong_end}, {len(wrong_bytes)} {kind} bytes back; carol's certificate: {control}",
    )
    refused = ("handshake failed", "TCP closed", "connection ended")
    assert wrong_bytes == b"" and wrong_end.startswith(refused), wrong_end
    assert found["logged"] == 1, "the focus did not log the fingerprint mismatch"
    # the listener keeps working: the right certificate on the same listener is answered
    assert right_end == "answered", (right_end, right_bytes[:200])
    if kind == "MSRP":
        assert re.match(rb"MSRP \w+ 200 OK", right_bytes), right_bytes[:200]
        assert chats == [(CAROL, "hello from carol")], chats
        assert LEAK not in str(found["events"])
    else:
        assert right_bytes[1] == P.HELLO_ACK, right_bytes[:12].hex()
