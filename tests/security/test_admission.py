"""Who may join and who may watch (TS 33.328 G.3.1, G.3.3; interfaces.md "Refusals").

Each refusal is sent over SIP/UDP to the running focus and must get the exact
status (403), a Warning (RFC 3261 §20.43) saying which rule refused it, no
SDP (so no key of ours) and no media; afterwards an authorized caller still
gets 200 with an SDES answer and SRTP.  Identity comes
from P-Asserted-Identity only when the request arrives from the trusted proxy
``127.0.0.2`` (RFC 3325 §9.1), otherwise from From; ``Privacy: id`` or an
anonymous URI is anonymous (RFC 3323).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.security.rig import ALICE, ANONYMOUS, MALLORY, PROXY, SecurityServer
from tests.security.sip_probe import MediaWatch, SipProbe, admitted_call, sdes_offer
from tests.security.table import RefusalLog

CONFERENCE_INFO = "application/conference-info+xml"


def _refused_invite(
    server: SecurityServer,
    refusal: RefusalLog,
    name: str,
    tried: str,
    identity: str,
    *,
    says: str,
    local_ip: str = "127.0.0.1",
    headers: tuple[tuple[str, str], ...] = (),
    control: Callable[[], str] | None = None,
) -> None:
    """An INVITE that must get 403 without a body, and no RTP; then the control call.

    The control (default: alice dials in) is also the synchronisation point of
    the media check: had the refused call been given media, its RTP would have
    started by the time the control's did.
    """
    watch = MediaWatch(local_ip)
    try:
        with SipProbe(server.sip, local_ip) as probe:
            offer = sdes_offer(local_ip, watch.port)
            call = probe.request(
                "INVITE", server.room_uri, from_uri=identity, headers=headers, body=offer
            )
        if control is None:
            done = f"alice: {admitted_call(server.sip, server.room_uri, ALICE)}"
        else:
            done = control()
        packets = watch.count()
    finally:
        watch.close()
    body = f"{len(call.response.body)}-byte body" if call.response.body else "no SDP"
    refusal.record(name, tried, f"{call.answered}, {body}, {packets} RTP; then {done}")
    assert call.response.status == 403, call.status_line
    call.assert_warning(domain=server.server.domain, says=says)
    assert call.response.body == b"" and packets == 0


@pytest.mark.parametrize(
    ("tried", "identity", "headers"),
    [
        ("INVITE From <anonymous@anonymous.invalid>", ANONYMOUS, ()),
        ("INVITE From alice (listed) + Privacy: id", ALICE, (("Privacy", "id"),)),
    ],
    ids=["anonymous-uri", "privacy-id"],
)
def test_anonymous_caller_is_403(
    security_server: SecurityServer,
    refusal: RefusalLog,
    tried: str,
    identity: str,
    headers: tuple[tuple[str, str], ...],
) -> None:
    _refused_invite(security_server, refusal, "anonymous caller (policy forbids)", tried,
                    identity, headers=headers,
                    says="anonymous callers are not admitted")  # fmt: skip


@pytest.mark.parametrize(
    ("tried", "identity", "local_ip", "headers"),
    [
        ("INVITE From mallory (not listed), direct", MALLORY, "127.0.0.1", ()),
        (
            "INVITE via the trusted proxy, PAI mallory, From alice",
            ALICE,
            PROXY,
            (("P-Asserted-Identity", f"<{MALLORY}>"),),
        ),
    ],  # fmt: skip
    ids=["from", "asserted"],
)
def test_unauthorized_identity_is_403(
    security_server: SecurityServer,
    refusal: RefusalLog,
    tried: str,
    identity: str,
    local_ip: str,
    headers: tuple[tuple[str, str], ...],
) -> None:
    source = "P-Asserted-Identity" if headers else "From"
    _refused_invite(security_server, refusal, "identity not on the list", tried, identity,
                    local_ip=local_ip, headers=headers,
                    says=f"the identity in {source} is not on the authorized list")  # fmt: skip


def test_asserted_identity_from_an_untrusted_source_is_ignored(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    """The same PAI is believed from 127.0.0.2 (control) and ignored from 127.0.0.1."""
    pai = (("P-Asserted-Identity", f"<{ALICE}>"),)
    server = security_server

    def from_the_proxy() -> str:  # the very same request from the trusted proxy
        found = admitted_call(server.sip, server.room_uri, MALLORY, local_ip=PROXY, headers=pai)
        return f"from {PROXY}: {found}"

    _refused_invite(server, refusal, "PAI from an untrusted source ignored",
                    "INVITE from 127.0.0.1: PAI alice (listed), From mallory (not)", MALLORY,
                    headers=pai, control=from_the_proxy,
                    says="the identity in From is not on the authorized list")  # fmt: skip


def test_non_participant_subscribe_is_403(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    """RFC 6665 SUBSCRIBE to the conference package: 403 and no NOTIFY for a stranger."""
    server = security_server
    headers = (("Event", "conference"), ("Accept", CONFERENCE_INFO), ("Expires", "600"))
    with SipProbe(server.sip) as stranger, SipProbe(server.sip) as alice:
        refused = stranger.request("SUBSCRIBE", server.room_uri, from_uri=MALLORY, headers=headers)
        # the control: alice's subscription gets 200 and a full conference-info NOTIFY
        accepted = alice.request("SUBSCRIBE", server.room_uri, from_uri=ALICE, headers=headers)
        notify = alice.wait_request("NOTIFY")
        full = notify is not None and b'state="full"' in notify.body
        ended = alice.in_dialog(accepted, "SUBSCRIBE")  # Expires: 0
        # by now the stranger would have had its NOTIFY too
        stranger.wait_request("NOTIFY", timeout=0.2)
        leaked = len(stranger.received)
    refusal.record("non-participant SUBSCRIBE", "SUBSCRIBE Event: conference from mallory",
                   f"{refused.answered}, {leaked} NOTIFY; then alice: "
                   f"{accepted.status_line} + {'full' if full else 'no'} NOTIFY")  # fmt: skip
    assert refused.response.status == 403, refused.status_line
    refused.assert_warning(domain=server.server.domain,
                           says="the identity in From is not on the authorized list")  # fmt: skip
    assert leaked == 0, [bytes(r)[:200] for r in stranger.received]
    assert 200 <= accepted.response.status < 300, accepted.status_line
    assert notify is not None and full and b"<conference-info" in notify.body
    assert 200 <= ended.response.status < 300, ended.status_line
