"""Hostile input against a live ``mrf serve`` (issue 10): a reduced PROTOS-style run.

CI counts: 2,000 malformed SIP requests (1,000 UDP + 1,000 TCP), 2,000 requests
with bytes that are not UTF-8 in a URI user part, display name or header value
(1,000 UDP + 1,000 TCP, issue 13), 300 over SIP/TLS,
1,000 MSRP and 1,000 BFCP messages on fingerprint-valid TLS lines of real
dial-ins, 1,000 MIKEY messages (500 REQUEST_INIT to the KMS, 500 TRANSFER_INIT
in INVITEs over SIP/TLS).  ``bench/hostile.py`` runs the full 10,000-message
counts.  After each run the server must still be up (process alive, OPTIONS
answered), have logged no traceback, have answered the messages it could, and
every 403, 404 and 488 must have carried a Warning; at the end a normal sipp
call must connect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.interop.harness import Artifacts
from tests.reliability.conftest import FuzzServer, server_alive, sipp_call, tracebacks
from tests.reliability.hostile import HostileTally, fuzz_sip_tcp, fuzz_sip_udp
from tests.reliability.hostile_tls import fuzz_bfcp, fuzz_kms, fuzz_msrp, fuzz_transfer_init
from tests.reliability.mutate import SipEncodingMutator

pytestmark = [
    pytest.mark.interop,  # a real `mrf serve` subprocess and sipp
    # the fuzzer's own client sockets may still be closing when its event loop ends
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _run(fuzz: FuzzServer, job: Callable[[], Awaitable[HostileTally]]) -> HostileTally:
    tally = asyncio.run(asyncio.wait_for(job(), 90))
    print(tally.line())
    assert server_alive(fuzz.server), f"the server died during {tally.name}"
    assert not tracebacks(fuzz.server), tracebacks(fuzz.server)
    assert tally.unexplained == 0, tally.line()  # RFC 3261 §20.43: each refusal says why
    return tally


def test_sip_udp_and_tcp(fuzz_server: FuzzServer) -> None:
    target = fuzz_server.target
    udp = _run(fuzz_server, lambda: fuzz_sip_udp(target, 1000))
    tcp = _run(fuzz_server, lambda: fuzz_sip_tcp(target, 1000))
    for tally in (udp, tcp):
        assert tally.sent == 1000
        assert sum(tally.answers.values()) >= 500, tally.line()  # most requests are answerable
        assert tally.answers["400"] > 100, tally.line()  # malformed → 400 (RFC 3261 §21.4.1)
        assert "500" not in tally.answers, tally.line()  # no handler crashed
    assert tcp.answers["513"] > 0, tcp.line()  # oversized → 513 (RFC 3261 §21.5.14)


def test_sip_bytes_that_are_not_utf8(fuzz_server: FuzzServer) -> None:
    """Non-UTF-8 bytes (raw and %-escaped) in every URI and header, through the whole
    server: parser, lookup, identity, store.  400 or 404 (or 403: an unknown identity),
    never a 500."""
    target = fuzz_server.target
    udp = _run(fuzz_server, lambda: fuzz_sip_udp(target, 1000, 11, SipEncodingMutator))
    tcp = _run(fuzz_server, lambda: fuzz_sip_tcp(target, 1000, 12, mutator=SipEncodingMutator))
    for tally in (udp, tcp):
        assert tally.sent == 1000 and sum(tally.answers.values()) >= 500, tally.line()
        assert tally.answers["400"] > 100 and tally.answers["404"] > 0, tally.line()
        assert not [s for s in tally.answers if s.startswith("5")], tally.line()
    assert {"request-uri-user", "header-uri-user", "display-name", "header-value",
            "header-name"} <= set(udp.operations), udp.operations  # fmt: skip


def test_sip_tls(fuzz_server: FuzzServer) -> None:
    tally = _run(fuzz_server, lambda: fuzz_sip_tcp(fuzz_server.target, 300, seed=7, tls=True))
    # answered, or the connection closed after a refusal; the rest are mutations that
    # leave the stream waiting for bytes that never come (e.g. a Content-Length too large)
    assert sum(tally.answers.values()) + tally.closed >= 150, tally.line()
    assert "500" not in tally.answers, tally.line()


def test_msrp_over_tls(fuzz_server: FuzzServer, tmp_path: Path) -> None:
    tally = _run(fuzz_server, lambda: fuzz_msrp(fuzz_server.target, 1000, tmp_path))
    assert tally.sent == 1000 and tally.answers["400"] > 0, tally.line()
    assert "500" not in tally.answers, tally.line()


def test_bfcp_over_tls(fuzz_server: FuzzServer, tmp_path: Path) -> None:
    tally = _run(fuzz_server, lambda: fuzz_bfcp(fuzz_server.target, 1000, tmp_path))
    assert tally.sent == 1000 and tally.answers["ERROR"] > 100, tally.line()


def test_mikey(fuzz_server: FuzzServer) -> None:
    fuzz = fuzz_server
    kms = _run(fuzz, lambda: fuzz_kms(fuzz.target, 500, fuzz.kms_url, fuzz.kms_key))
    assert sum(kms.answers.values()) == 500 and kms.silent == 0, kms.line()
    invites = _run(fuzz, lambda: fuzz_transfer_init(fuzz.target, 500, fuzz.kms_url, fuzz.kms_key))
    assert invites.answers["488"] > 300, invites.line()
    assert not set(invites.answers) & {"200", "500"}, invites.line()  # nothing mutated is keyed


def test_normal_call_after_the_runs(fuzz_server: FuzzServer, tmp_path: Path) -> None:
    """sipp dials in with SDES after every hostile run above."""
    assert sipp_call(fuzz_server.server, Artifacts(tmp_path)) == 0
