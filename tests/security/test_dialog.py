"""In-dialog requests act only over the dialog's own flow (interfaces.md "Refusals").

The dialog ID -- Call-ID, From tag, To tag -- is no secret: every proxy on the
path sees it, and RFC 4575 §5.7.3 lets a focus publish it in ``<call-info>``.
Here dora (the room's chair, the victim) and carol (authorized too, the
attacker) are both in ``room`` over SIP/UDP, each with an SRTP phone
(:mod:`tests.security.srtp_phone`); carol's sends a 1 kHz tone.  carol's
subscription must not show her dora's dialog identifiers, and when carol
uses them anyway (as an on-path observer could) from her own socket -- BYE,
re-INVITE with new keys and her own media address, REFER as if she were the
chair, a refresh of dora's subscription -- the focus answers 403 with a
Warning and changes nothing: dora stays connected, the focus still accepts
her packets under her key, she still decrypts the focus's packets under the
answer's key and still hears carol's tone, and her own next request (CSeq 2,
below the 1000 carol used) still works.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from focus.sip.message import SipRequest
from tests.interop.harness import wait_for
from tests.security.rig import BOB, CAROL, DORA, PROXY, SecurityServer
from tests.security.sip_probe import MediaWatch, SipExchange, SipProbe, sdes_offer
from tests.security.srtp_phone import SrtpPhone, tone_margin_db
from tests.security.table import RefusalLog
from tests.security.web_probe import WebClient

TONE = 1000.0  # Hz, what carol's phone sends
HEARS = 20.0  # dB the tone must stand above the rest of what dora hears
SUBSCRIBE = (("Event", "conference"), ("Accept", "application/conference-info+xml"),
             ("Expires", "600"))  # fmt: skip
ATTACK_CSEQ = 1000  # absorbed, it would make dora's CSeq 2 "out of order" (500)


@dataclass
class Room:
    server: SecurityServer
    victim: SipProbe
    call: SipExchange  # dora's INVITE and its 200
    phone: SrtpPhone  # dora's media
    attacker: SipProbe  # carol's SIP socket (she is in the room too)

    def entry(self) -> dict[str, object]:
        """dora's roster entry (REST, as ana), or {} when she is not in the room."""
        api = WebClient(self.server.web, token=self.server.ana_token)
        roster = api.request("GET", f"/api/conferences/{self.server.room_id}/roster").json()
        found = [p for p in roster["participants"] if p.get("call_id") == self.call.request.call_id]
        return found[0] if found else {}

    def packets_in(self) -> int:
        media = self.entry().get("media") or [{}]
        return int(media[0].get("packets_in", 0))  # type: ignore[index, union-attr]

    def unchanged(self) -> str:
        """dora's call as before: connected, her key still accepted, the answer's key
        still decrypts, carol's tone heard.  Returns what was seen, for the table."""
        before, failures = self.packets_in(), self.phone.auth_failures
        self.phone.reset()
        margin = tone_margin_db(self.phone.wait_heard(1.5), TONE)
        state = self.entry().get("state")
        accepted = wait_for(lambda: self.packets_in() > before + 10, 5.0, 0.1)
        failed = self.phone.auth_failures - failures
        seen = (f"dora {state}, focus accepts her key ({'yes' if accepted else 'NO'}), "
                f"she hears the tone at {margin:.0f} dB, {failed} auth failures")  # fmt: skip
        assert state == "connected", seen
        assert accepted and failed == 0 and margin > HEARS, seen
        return seen

    def hang_up(self, cseq: int = 2) -> str:
        bye = self.victim.in_dialog(self.call, "BYE", cseq=cseq)
        assert bye.response.status == 200, bye.status_line
        return f"dora's BYE (CSeq {cseq}): {bye.status_line}"


@pytest.fixture
def room(security_server: SecurityServer) -> Iterator[Room]:
    server = security_server
    phone, tone = SrtpPhone(), SrtpPhone(frequency=TONE)
    victim, attacker = SipProbe(server.sip), SipProbe(server.sip)
    try:
        call = victim.request("INVITE", server.room_uri, from_uri=DORA,
                              body=sdes_offer("127.0.0.1", phone.port, phone.key_salt))  # fmt: skip
        assert call.response.status == 200, call.status_line
        phone.start(call.response.body)
        offer = sdes_offer("127.0.0.1", tone.port, tone.key_salt)
        carol = attacker.request("INVITE", server.room_uri, from_uri=CAROL, body=offer)
        assert carol.response.status == 200, carol.status_line
        tone.start(carol.response.body)
        found = Room(server, victim, call, phone, attacker)
        yield found
        if found.entry():  # the test did not end dora's call (a failure): do it now
            victim.in_dialog(call, "BYE", cseq=99)
        attacker.in_dialog(carol, "BYE")
    finally:
        for closing in (phone, tone, victim, attacker):
            closing.close()


def _refused(exchange: SipExchange) -> str:
    warning = exchange.response.headers.get("Warning") or ""
    assert exchange.response.status == 403, exchange.status_line
    assert re.fullmatch(r'399 \S+ "[^"]+"', warning), warning
    return f"{exchange.status_line} ({warning.split(' ', 2)[2]})"


def test_notify_names_no_dialog_identifiers(room: Room, refusal: RefusalLog) -> None:
    """RFC 4575 §5.7.3: ``<call-info><sip>`` is optional; the focus leaves it out."""
    server, call = room.server, room.call
    subscription = room.attacker.request("SUBSCRIBE", server.room_uri, from_uri=CAROL,
                                         headers=SUBSCRIBE)  # fmt: skip
    notify = room.attacker.wait_request("NOTIFY")
    assert notify is not None and 200 <= subscription.response.status < 300
    body = notify.body.decode()
    secrets_seen = [
        name for name, value in (
            ("Call-ID", call.request.call_id), ("From tag", call.request.from_addr.tag),
            ("To tag", call.response.to_addr.tag), ("<call-info>", "call-info"),
        ) if value and value in body
    ]  # fmt: skip
    refusal.record("dialog IDs kept out of NOTIFYs",
                   "carol subscribes to the room and reads dora's endpoint",
                   f"NOTIFY lists dora: {DORA in body}; shows {secrets_seen or 'none'} of "
                   "dora's Call-ID, tags, call-info")  # fmt: skip
    room.attacker.in_dialog(subscription, "SUBSCRIBE")  # Expires: 0
    assert DORA in body and secrets_seen == []
    room.unchanged()
    room.hang_up()


def test_bye_from_another_flow_is_refused(room: Room, refusal: RefusalLog) -> None:
    bye = room.attacker.in_dialog(room.call, "BYE", cseq=ATTACK_CSEQ)
    answered = _refused(bye)
    seen = room.unchanged()
    refusal.record("hijack: BYE from another flow",
                   "carol sends BYE in dora's dialog (her Call-ID and tags) from carol's socket",
                   f"{answered}; {seen}; then {room.hang_up()}")  # fmt: skip


def test_reinvite_from_another_flow_is_refused(room: Room, refusal: RefusalLog) -> None:
    """New keys and carol's address: accepted, dora's media would go to carol, re-keyed."""
    watch = MediaWatch()
    try:
        offer = sdes_offer("127.0.0.1", watch.port)  # a fresh key, carol's port
        reinvite = room.attacker.in_dialog(room.call, "INVITE", cseq=ATTACK_CSEQ, body=offer)
        answered = _refused(reinvite)
        seen = room.unchanged()
        diverted = watch.count()
    finally:
        watch.close()
    refusal.record("hijack: re-INVITE from another flow",
                   "carol re-INVITEs dora's dialog with a new SDES key and her own RTP port",
                   f"{answered}, no SDP; {diverted} RTP to carol's port; {seen}; "
                   f"then {room.hang_up()}")  # fmt: skip
    assert reinvite.response.body == b"" and diverted == 0


def test_refer_as_the_chair_from_another_flow_is_refused(room: Room, refusal: RefusalLog) -> None:
    """Was authorized by Call-ID alone: carol could make the focus dial out as dora."""
    with SipProbe(room.server.sip, PROXY) as bob:
        refer_to = (("Refer-To", f"<{BOB}:{bob.port}>"),)
        refer = room.attacker.in_dialog(room.call, "REFER", cseq=ATTACK_CSEQ, headers=refer_to)
        answered = _refused(refer)
        seen = room.unchanged()
        # the control: dora's own REFER (CSeq 2) is accepted and bob's phone rings,
        # so a dial-out started by carol's REFER would have reached bob by now
        control = room.victim.in_dialog(room.call, "REFER", cseq=2, headers=refer_to)
        invite = bob.wait_request("INVITE")
        rang = [r for r in bob.received if r.method == "INVITE"]
        if invite is not None:
            bob.decline(invite)
        done = room.hang_up(cseq=3)
    refusal.record("hijack: REFER as the chair",
                   "carol REFERs (Refer-To bob) in dora's dialog; dora chairs the room",
                   f"{answered}; {seen}; then dora's REFER: {control.status_line}, "
                   f"{len(rang)} INVITE to bob; {done}")  # fmt: skip
    assert control.response.status == 202, control.status_line
    assert invite is not None and len(rang) == 1


def test_subscription_refresh_from_another_flow_is_refused(room: Room, refusal: RefusalLog) -> None:
    """Expires: 0 in dora's subscription dialog would end her roster updates."""
    server = room.server
    subscription = room.victim.request("SUBSCRIBE", server.room_uri, from_uri=DORA,
                                       headers=SUBSCRIBE)  # fmt: skip
    assert 200 <= subscription.response.status < 300, subscription.status_line
    assert room.victim.wait_request("NOTIFY") is not None
    hijack = room.attacker.in_dialog(subscription, "SUBSCRIBE", cseq=ATTACK_CSEQ)
    answered = _refused(hijack)
    ended = _terminated(room.victim.received)
    own = room.victim.in_dialog(subscription, "SUBSCRIBE", cseq=2)  # dora's own Expires: 0
    final = wait_for(lambda: _terminated(room.victim.received) or _poll(room.victim), 5.0, 0.05)
    refusal.record("hijack: SUBSCRIBE refresh",
                   "carol refreshes dora's subscription (Expires: 0) from carol's socket",
                   f"{answered}; dora's subscription ended: {bool(ended)}; then dora's own "
                   f"Expires: 0: {own.status_line} + terminated NOTIFY: {bool(final)}")  # fmt: skip
    assert not ended
    assert 200 <= own.response.status < 300 and final
    room.unchanged()
    room.hang_up()


def _terminated(received: list[SipRequest]) -> list[SipRequest]:
    return [r for r in received if r.method == "NOTIFY"
            and (r.headers.get("Subscription-State") or "").startswith("terminated")]  # fmt: skip


def _poll(probe: SipProbe) -> bool:
    probe.wait_request("none", timeout=0.05)  # reads (and answers) what arrived
    return False
