"""A dial-out answered by someone else is dropped before any media (TS 33.328 G.2).

ana's REST call ``POST /api/conferences/{id}/dial-out`` makes the focus
INVITE ``sip:bob@127.0.0.2:PORT``; 127.0.0.2 is the trusted proxy, so the
answer's P-Asserted-Identity (RFC 3325) must be bob.  An answer asserting
mallory (re-targeted) or nobody (unidentified) must get ACK + BYE at once,
never one RTP packet, and a ``failed`` roster entry with a 403 reason; the
same dial-out answered by bob then connects and gets SRTP.
"""

from __future__ import annotations

import pytest

from tests.interop.harness import wait_for
from tests.security.rig import BOB, MALLORY, PROXY, SecurityServer
from tests.security.sip_probe import MediaWatch, SipProbe, sdes_answer
from tests.security.table import RefusalLog
from tests.security.web_probe import WebClient


def _dial(server: SecurityServer, callee: SipProbe) -> None:
    api = WebClient(server.web, token=server.ana_token)
    started = api.request("POST", f"/api/conferences/{server.room_id}/dial-out",
                          json_body={"uri": f"{BOB}:{callee.port}"})  # fmt: skip
    assert started.status == 202, (started.status, started.text)


def _roster_entry(server: SecurityServer, call_id: str, state: str) -> dict[str, object]:
    """The call's roster entry once it reached ``state`` (else the last one seen)."""
    api = WebClient(server.web, token=server.ana_token)
    seen: dict[str, object] = {}

    def reached() -> bool:
        roster = api.request("GET", f"/api/conferences/{server.room_id}/roster").json()
        entries = [p for p in roster["participants"] if p.get("call_id") == call_id]
        seen.update(entries[-1] if entries else {})
        return seen.get("state") == state

    wait_for(reached, 10.0, 0.1)
    return seen


@pytest.mark.parametrize(
    ("tried", "asserted"),
    [("answer asserting mallory (re-targeted)", MALLORY), ("answer with no PAI", None)],
    ids=["retargeted", "unidentified"],
)
def test_retargeted_dial_out_answer_gets_bye_and_no_media(
    security_server: SecurityServer, refusal: RefusalLog, tried: str, asserted: str | None
) -> None:
    server = security_server
    watch, control = MediaWatch(PROXY), MediaWatch(PROXY)
    try:
        with SipProbe(server.sip, PROXY) as callee:
            _dial(server, callee)
            invite = callee.wait_request("INVITE")
            assert invite is not None, "the focus did not INVITE the dial-out target"
            assert b"a=crypto:" in invite.body and b"RTP/SAVP" in invite.body
            headers = () if asserted is None else (("P-Asserted-Identity", f"<{asserted}>"),)
            callee.answer_invite(invite, sdes_answer(invite.body, PROXY, watch.port), headers)
            bye = callee.wait_request("BYE")
            entry = _roster_entry(server, invite.call_id, "failed")
            # the control: the same dial-out answered by bob connects and gets SRTP
            callee.received.clear()
            _dial(server, callee)
            again = callee.wait_request("INVITE")
            assert again is not None
            answer = sdes_answer(again.body, PROXY, control.port)
            ok = callee.answer_invite(again, answer, (("P-Asserted-Identity", f"<{BOB}>"),))
            flowing = control.wait(1, timeout=10.0)
            connected = _roster_entry(server, again.call_id, "connected")
            hung_up = callee.hang_up(again, ok)
        packets = watch.count()
    finally:
        watch.close()
        control.close()
    reason = (bye.headers.get("Reason") or "").split("text=")[-1] if bye is not None else ""
    roster = f"{entry.get('state')} ({str(entry.get('reason'))[:3]})"
    dropped = f"ACK + BYE (Reason {reason})" if bye is not None else "ACK, no BYE"
    refusal.record(
        "re-targeted dial-out",
        f"REST dial-out to bob via the trusted proxy; {tried}",
        f"{dropped}, {packets} RTP, roster {roster}; bob's own answer: "
        f"{connected.get('state')}{' + SRTP' if flowing else ''}",
    )
    assert bye is not None and bye.call_id == invite.call_id, "no BYE to the wrong answerer"
    assert packets == 0, "RTP reached the refused answerer"
    assert entry["state"] == "failed" and str(entry["reason"]).startswith("403 "), entry
    assert flowing and connected["state"] == "connected", connected
    assert hung_up.response.status == 200, hung_up.status_line
