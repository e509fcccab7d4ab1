"""NULL and EXPORT cipher offers fail the handshake on every TLS listener (TS 33.328 §5.3).

The SIP TLS listener (stdlib ``ssl``) and the MSRP and BFCP listeners
(``mrf.tls_engine``; both use ``mrf.tls.TLS12_CIPHERS``: ECDHE with AEAD only) get a
TLS 1.2 ClientHello that offers nothing but NULL suites
(``openssl s_client -cipher NULL:@SECLEVEL=0``:
without ``@SECLEVEL=0`` OpenSSL 3 drops the NULL suites itself and never
reaches the server) or nothing but EXPORT suites (hand-made: OpenSSL 3 has
none).  Each must be answered with a fatal ``handshake_failure`` alert
(RFC 5246 §7.4.1.3, no shared suite) and nothing else; then an ordinary TLS
1.2 handshake on the same listener negotiates an ECDHE AEAD suite.

The SIP listener is asyncio's TLS transport (``loop.create_server(ssl=...)``),
which on Python 3.13.0 closes the connection without flushing the alert
OpenSSL queued (CPython gh-98078, fixed upstream by python/cpython#153620):
there the refusal is the connection closed before a single byte of ours (no
ServerHello, no certificate), and the alert is accepted whenever it comes.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from tests.interop.harness import require_peer
from tests.reliability.session import Identity, dial_in, hang_up
from tests.security.rig import CAROL, ROOM, SecurityServer
from tests.security.table import RefusalLog
from tests.security.tls_probe import (
    EXPORT_SUITES,
    alerts_of,
    offer_suites,
    s_client,
    server_finished,
)

pytestmark = pytest.mark.interop

NULL_CIPHERS = "NULL:@SECLEVEL=0"


def _port(server: SecurityServer, listener: str) -> int:
    return server.server.tls_port if listener == "SIP" else server.listener_port(listener)


def _null_suites() -> list[str]:
    """What ``-cipher NULL:@SECLEVEL=0`` offers on TLS 1.2 (checked: not empty)."""
    argv = [require_peer("openssl"), "ciphers", "-s", "-tls1_2", NULL_CIPHERS]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    suites = [s for s in result.stdout.strip().split(":") if s]
    assert suites and all("NULL" in s for s in suites), result.stdout + result.stderr
    return suites


def _still_negotiates(server: SecurityServer, port: int, listener: str, tmp: Path) -> str:
    """The control: a TLS 1.2 handshake with default suites gets ECDHE + AEAD.

    MSRP and BFCP complete a handshake only with the certificate of a participant
    whose SDP fingerprint is waiting for its connection (RFC 8122): carol dials in
    with hers first, and hangs up after.
    """
    args = ["-tls1_2"]
    call = None
    if listener != "SIP":
        identity = Identity(tmp / "carol")
        call = asyncio.run(dial_in(server.host, server.sip[1], ROOM, CAROL, identity))
        args += ["-cert", str(identity.cert), "-key", str(identity.key)]
    try:
        output = s_client(server.host, port, *args)
    finally:
        if call is not None:
            asyncio.run(hang_up(server.host, server.sip[1], CAROL, call))
    found = re.search(r"Cipher is (\S+)", output)
    assert server_finished(output) and alerts_of(output) == [], output
    assert found and found[1].startswith("ECDHE-") and re.search("GCM|CHACHA20", found[1]), output
    return found[1]


@pytest.mark.parametrize("listener", ["SIP", "MSRP", "BFCP"])
def test_null_cipher_offer_fails_the_handshake(
    security_server: SecurityServer, refusal: RefusalLog, tmp_path: Path, listener: str
) -> None:
    port = _port(security_server, listener)
    suites = _null_suites()
    output = s_client(security_server.host, port, "-tls1_2", "-cipher", NULL_CIPHERS)
    alerts = alerts_of(output)
    read = re.search(r"SSL handshake has read (\d+) bytes", output)
    answered = ", ".join(f"TLS alert {level} {name}" for level, name in alerts) or (
        f"closed after {read[1] if read else '?'} bytes, no ServerHello"
    )
    control = _still_negotiates(security_server, port, listener, tmp_path)
    refusal.record(f"NULL cipher offer ({listener} TLS)",
                   f"openssl s_client -tls1_2 -cipher {NULL_CIPHERS} ({len(suites)} NULL suites)",
                   f"{answered}; then TLS 1.2 {control}")  # fmt: skip
    assert "New, (NONE), Cipher is (NONE)" in output, output
    if alerts or listener != "SIP":
        assert alerts == [("fatal", "handshake_failure")], output
        assert read and read[1] == "7", output  # the alert record, nothing before it
    else:  # CPython gh-98078: the alert is lost, nothing at all was sent
        assert read and read[1] == "0", output


@pytest.mark.parametrize("listener", ["SIP", "MSRP", "BFCP"])
def test_export_cipher_offer_fails_the_handshake(
    security_server: SecurityServer, refusal: RefusalLog, tmp_path: Path, listener: str
) -> None:
    port = _port(security_server, listener)
    record = offer_suites(security_server.host, port, EXPORT_SUITES)
    control = _still_negotiates(security_server, port, listener, tmp_path)
    refusal.record(f"EXPORT cipher offer ({listener} TLS)",
                   f"TLS 1.2 ClientHello with only the {len(EXPORT_SUITES)} EXPORT suites",
                   f"{record.describe()}; then TLS 1.2 {control}")  # fmt: skip
    if record.content_type is not None or listener != "SIP":
        assert (record.content_type, record.payload) == (21, b"\x02\x28"), record
    else:  # CPython gh-98078: the alert is lost, nothing at all was sent
        assert record.payload == b"", record
