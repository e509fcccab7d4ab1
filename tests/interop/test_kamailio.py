"""Identity through a trusted proxy: kamailio as P-CSCF in front of the server.

RFC 3325 §9.1: P-Asserted-Identity is believed only from a trusted element
(``sip.trusted_proxies``); from anyone else the From URI is the identity.
kamailio-pcscf.cfg keeps the PAI the caller sent, Record-Routes, and relays to
the server; it listens on 127.0.0.2 (the trusted address), direct callers use
127.0.0.1 / 127.0.0.3.  The last test adds a TLS hop (kamailio's OpenSSL
client in front of the server's TLS listener).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from .conftest import finish_server, start_server
from .harness import Artifacts, Conference, MrfServer
from .peers import SIPP_OFFER_CRYPTO, Kamailio, Sipp, SippRun, make_certs

pytestmark = pytest.mark.interop

PROXY_IP = "127.0.0.2"
ALICE = "sip:alice@example.com"  # authorized
MALLORY = "sip:mallory@example.com"  # not authorized
CAROL = "sip:carol@example.com"  # not authorized
_SDES = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + SIPP_OFFER_CRYPTO["1"][1] + "|2^20|1:4"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MrfServer]:
    """conf1 authorizes alice only; kamailio's address is the trusted proxy."""
    workdir = tmp_path_factory.mktemp("mrf-kamailio")
    started = start_server(workdir, [Conference("conf1", (ALICE,))], trusted_proxies=[PROXY_IP])
    yield started
    finish_server(started)


@pytest.fixture
def proxy(
    server: MrfServer, artifacts: Artifacts, kamailio_factory: Callable[..., Kamailio]
) -> Kamailio:
    """kamailio on 127.0.0.2 relaying to the server over UDP."""
    artifacts.logs["server stderr"] = server.log
    return kamailio_factory(as_uri=f"sip:127.0.0.1:{server.port}", listen_ip=PROXY_IP)


def _keys(server: MrfServer, from_uri: str, pai_uri: str) -> dict[str, str]:
    return {
        "ruri": server.request_uri("conf1"),
        "from_uri": from_uri,
        "pai_uri": pai_uri,
        "privacy": "none",
    }


def _assert_admitted(run: SippRun, server: MrfServer, proxy: Kamailio, before: int) -> None:
    detail = f"{run.explain()}\n--- kamailio ---\n{proxy.log_text()[-3000:]}"
    assert run.log_records("ANSWER "), f"no SDES answer through the proxy\n{detail}"
    trace = run.messages.read_text(errors="replace")
    ok = trace[trace.find("SIP/2.0 200 OK") :]
    assert "Record-Route:" in re.split(r"\r?\n\r?\n", ok)[0], (
        "the 200 lacks the proxy's Record-Route (RFC 3261 §12.1.1: the UAS copies it), "
        "so ACK/BYE cannot follow the proxy\n" + detail
    )
    assert run.returncode == 0, detail
    row = server.wait_media_summary(ALICE, count=before + 1)[-1]
    assert row["conference"] == server.conference_uri("conf1"), row


def test_trusted_proxy_pai_admits_unlisted_from(
    server: MrfServer, proxy: Kamailio, sipp: Sipp
) -> None:
    before = len(server.media_summaries(ALICE))
    run = sipp.run(
        "uac_invite_accept.xml",
        f"{proxy.host}:{proxy.port}",
        keys=_keys(server, MALLORY, ALICE),
        pause_ms=200,
    )
    _assert_admitted(run, server, proxy, before)
    assert f"PAI=<{ALICE}>" in proxy.log_text(), proxy.log_text()[-2000:]


def test_same_pai_from_untrusted_address_is_judged_by_from(server: MrfServer, sipp: Sipp) -> None:
    run = sipp.run(
        "uac_invite_refused.xml",
        f"{server.host}:{server.port}",
        keys={**_keys(server, MALLORY, ALICE), "proto": "RTP/SAVP", "media_attr": _SDES},
        local_ip="127.0.0.3",
    )
    assert run.returncode == 0 and run.finals() == ["403"], (
        f"an untrusted source's PAI must be ignored: got {run.finals()}\n{run.explain()}"
    )


def test_trusted_proxy_unlisted_pai_is_refused(
    server: MrfServer, proxy: Kamailio, sipp: Sipp
) -> None:
    run = sipp.run(
        "uac_invite_refused.xml",
        f"{proxy.host}:{proxy.port}",
        keys={**_keys(server, ALICE, CAROL), "proto": "RTP/SAVP", "media_attr": _SDES},
    )
    assert run.returncode == 0 and run.finals() == ["403"], (
        f"the asserted identity (carol) is not authorized: got {run.finals()}\n{run.explain()}\n"
        f"--- kamailio ---\n{proxy.log_text()[-3000:]}"
    )


def test_trusted_proxy_over_tls(
    server: MrfServer,
    artifacts: Artifacts,
    kamailio_factory: Callable[..., Kamailio],
    sipp: Sipp,
) -> None:
    artifacts.logs["server stderr"] = server.log
    conf = make_certs(artifacts)
    proxy = kamailio_factory(
        as_uri=f"sip:127.0.0.1:{server.tls_port};transport=tls",
        listen_ip=PROXY_IP,
        tls_cfg=conf / "kamailio/tls.cfg",
    )
    before = len(server.media_summaries(ALICE))
    run = sipp.run(
        "uac_invite_accept.xml",
        f"{proxy.host}:{proxy.port}",
        keys=_keys(server, MALLORY, ALICE),
        pause_ms=200,
    )
    _assert_admitted(run, server, proxy, before)
