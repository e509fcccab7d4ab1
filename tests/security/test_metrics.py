"""``GET /metrics`` names no one without the scrape token (interfaces.md "Refusals").

alice is in ``room`` (SIP/UDP, SDES, SRTP flowing), so the media plane has a
stream and a mixer to report.  An anonymous scrape must carry neither the
conference name nor alice's URI (nor her Call-ID) in any label, yet report
the same series under opaque labels; a scrape with ana's API token (a valid
token, but not the scrape token) gets 401; the scrape token
(``web.metrics_token_file``) gets the names -- the control that the series
were there to leak.
"""

from __future__ import annotations

import re

from tests.interop.harness import wait_for
from tests.security.rig import ALICE, ROOM, SecurityServer
from tests.security.sip_probe import SipProbe, sdes_offer
from tests.security.srtp_phone import SrtpPhone
from tests.security.table import RefusalLog
from tests.security.web_probe import WebClient, WebResponse

STREAM_SERIES = "mrf_rtp_packets_received_total{"


def _scrape(server: SecurityServer, token: str | None) -> WebResponse:
    return WebClient(server.web, token=token).request("GET", "/metrics")


def _labels(text: str, keys: str = "conference|participant") -> set[str]:
    return set(re.findall(rf'(?:{keys})="([^"]*)"', text))


def test_metrics_name_no_one_without_the_scrape_token(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    server = security_server
    phone = SrtpPhone()
    try:
        with SipProbe(server.sip) as alice:
            offer = sdes_offer("127.0.0.1", phone.port, phone.key_salt)
            call = alice.request("INVITE", server.room_uri, from_uri=ALICE, body=offer)
            assert call.response.status == 200, call.status_line
            phone.start(call.response.body)
            assert wait_for(lambda: STREAM_SERIES in _scrape(server, None).text, 10.0, 0.1)
            anonymous = _scrape(server, None)
            foreign = _scrape(server, server.ana_token)  # an API token is not the scrape token
            scraper = _scrape(server, server.metrics_token)
            alice.in_dialog(call, "BYE")
    finally:
        phone.close()
    values = _labels(anonymous.text, r"\w+")  # every label value of the anonymous scrape
    names = (ROOM, ALICE, call.request.call_id)
    leaked = [name for name in names if any(name in value for value in values)]
    leaked += [call.request.call_id] if call.request.call_id in anonymous.text else []
    opaque = sorted(_labels(anonymous.text))
    named = f'conference="{ROOM}"' in scraper.text and f'participant="{ALICE}"' in scraper.text
    refusal.record("/metrics without the scrape token",
                   "GET /metrics (no token; ana's API token) while alice is in room",
                   f"{anonymous.status}, {len(opaque)} opaque labels, names leaked: "
                   f"{leaked or 'none'}; API token: {foreign.status}; then the scrape "
                   f"token: {scraper.status}, names room and alice: {named}")  # fmt: skip
    assert anonymous.status == 200 and STREAM_SERIES in anonymous.text
    assert leaked == [] and opaque and all(re.fullmatch(r"[cp]-[0-9a-f]{16}", v) for v in opaque)
    challenge = foreign.headers.get("WWW-Authenticate", "")
    assert foreign.status == 401 and challenge.startswith("Bearer")
    assert STREAM_SERIES not in foreign.text
    assert scraper.status == 200 and named
