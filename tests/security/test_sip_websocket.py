"""SIP over WebSocket on ``/sip`` admits the web session's identity only (README "Browser").

Against the running server's web port, with the ``websockets`` client doing
what a browser page does.  The upgrade is refused (HTTP 403) without a session
or invite, from another origin, without the ``sip`` subprotocol, and for a
signed-in account that has no SIP identity.  Over an accepted connection the
focus admits the session's identity whatever From says: mallory's session
with alice's From gets 403 with a Warning naming the web session; alice's
session with mallory's From joins as alice (the roster says so).  An invite
link binds a session without an account to its identity; revoking it ends the
call (BYE over the WebSocket), closes the connection and refuses the next
upgrade; an expired invite refuses the upgrade too.  Each test ends with a
legitimate join over WebSocket that still succeeds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from tests.interop.harness import wait_for
from tests.security.rig import ALICE, CAROL, MALLORY, PASSWORD, SecurityServer
from tests.security.sip_probe import SipExchange, sdes_offer
from tests.security.sip_websocket import SipWebSocketProbe, UpgradeRefused, open_sip_socket
from tests.security.table import RefusalLog
from tests.security.web_probe import WebClient

SESSION_WARNING = "the identity of the web session is not on the authorized list"


def _signed_in(server: SecurityServer, name: str) -> WebClient:
    browser = WebClient(server.web)
    browser.sign_in(name, PASSWORD)
    return browser


def _roster(server: SecurityServer) -> list[dict[str, object]]:
    api = WebClient(server.web, token=server.ana_token)
    found = api.request("GET", f"/api/conferences/{server.room_id}/roster")
    assert found.status == 200, found.text
    return list(found.json()["participants"])


def _in_roster(server: SecurityServer, call_id: str) -> dict[str, object]:
    return next((p for p in _roster(server) if p.get("call_id") == call_id), {})


def _join(server: SecurityServer, probe: SipWebSocketProbe, from_uri: str) -> SipExchange:
    return probe.request(
        "INVITE", server.room_uri, from_uri=from_uri, body=sdes_offer(server.host, 40000)
    )


def _refused_upgrade(server: SecurityServer, **kwargs: object) -> int:
    with pytest.raises(UpgradeRefused) as refused:
        open_sip_socket(server.web, **kwargs).close()  # type: ignore[arg-type]
    return refused.value.status


def _still_admits_alice(server: SecurityServer) -> None:
    """A legitimate browser join still works: alice's session, her call in the roster."""
    alice = _signed_in(server, "alice")
    with open_sip_socket(server.web, cookies=alice.cookies) as probe:
        joined = _join(server, probe, ALICE)
        assert joined.response.status == 200, joined.answered
        entry = wait_for(lambda: _in_roster(server, joined.request.call_id), 5.0)
        assert entry and entry["uri"] == ALICE, _roster(server)
        assert probe.bye(joined).response.status == 200
    assert wait_for(lambda: not _in_roster(server, joined.request.call_id), 5.0)


@pytest.fixture
def server(security_server: SecurityServer) -> Iterator[SecurityServer]:
    yield security_server
    _still_admits_alice(security_server)


@pytest.mark.parametrize(
    ("variant", "tried"),
    [
        ("no-session", "upgrade on /sip without a session cookie or invite"),
        ("cross-origin", "alice's session cookie, Origin http://evil.example"),
        ("no-origin", "alice's session cookie, no Origin header"),
        ("no-subprotocol", "alice's session cookie, no 'sip' subprotocol"),
        ("no-sip-identity", "ben's session (an account without a SIP identity)"),
        ("stale-cookie", "a made-up session cookie"),
    ],
    ids=["no-session", "cross-origin", "no-origin", "no-subprotocol", "no-sip-identity",
         "stale-cookie"],
)  # fmt: skip
def test_the_upgrade_is_refused(
    server: SecurityServer, refusal: RefusalLog, variant: str, tried: str
) -> None:
    before = server.log_count("refused SIP WebSocket upgrade")
    alice = _signed_in(server, "alice").cookies
    kwargs: dict[str, object] = {
        "no-session": {},
        "cross-origin": {"cookies": alice, "origin": "http://evil.example"},
        "no-origin": {"cookies": alice, "origin": None},
        "no-subprotocol": {"cookies": alice, "subprotocols": ()},
        "no-sip-identity": {"cookies": _signed_in(server, "ben").cookies},
        "stale-cookie": {"cookies": {"mrf_session": "x" * 43}},
    }[variant]  # type: ignore[assignment]
    status = _refused_upgrade(server, **kwargs)
    refusal.record("SIP WebSocket upgrade", tried, f"HTTP {status}")
    assert status == 403
    assert wait_for(lambda: server.log_count("refused SIP WebSocket upgrade") > before, 2.0)


def test_an_identity_off_the_list_is_refused_whatever_from_says(
    server: SecurityServer, refusal: RefusalLog
) -> None:
    mallory = _signed_in(server, "mallory")
    with open_sip_socket(server.web, cookies=mallory.cookies) as probe:
        for from_uri in (MALLORY, ALICE):  # her own, then a forged one on the list
            refused = _join(server, probe, from_uri)
            refusal.record(
                "SIP WebSocket identity", f"mallory's session, INVITE with From {from_uri}",
                refused.answered,
            )  # fmt: skip
            assert refused.response.status == 403, refused.answered
            refused.assert_warning(domain=server.server.domain, says=SESSION_WARNING)
            assert not refused.response.body, "no SDP answer to a refused caller"
    live = [p for p in _roster(server) if p.get("state") != "left"]  # not the ended-call history
    assert not [p for p in live if p.get("uri") in (ALICE, MALLORY)]


def test_a_forged_from_does_not_change_the_admitted_identity(
    server: SecurityServer, refusal: RefusalLog
) -> None:
    alice = _signed_in(server, "alice")
    with open_sip_socket(server.web, cookies=alice.cookies) as probe:
        joined = _join(server, probe, MALLORY)
        assert joined.response.status == 200, joined.answered
        entry = wait_for(lambda: _in_roster(server, joined.request.call_id), 5.0)
        refusal.record(
            "SIP WebSocket identity", "alice's session, INVITE with From mallory",
            f"{joined.status_line}, roster says {entry.get('uri')}",
        )  # fmt: skip
        assert entry["uri"] == ALICE, entry
        # the conference event package over the same connection, as the session's identity
        subscribed = probe.request(
            "SUBSCRIBE", server.room_uri, from_uri=MALLORY,
            headers=(("Event", "conference"), ("Accept", "application/conference-info+xml"),
                     ("Expires", "600")),
        )  # fmt: skip
        assert subscribed.response.status == 200, subscribed.answered
        notify = probe.wait_request("NOTIFY", 5.0)
        assert notify is not None and notify.call_id == subscribed.request.call_id
        assert probe.bye(joined).response.status == 200


def _invite(server: SecurityServer, uri: str) -> tuple[int, str]:
    api = WebClient(server.web, token=server.ana_token)
    made = api.request("POST", f"/api/conferences/{server.room_id}/invites",
                       json_body={"uri": uri, "expires_in": 600})  # fmt: skip
    assert made.status == 201, made.text
    body = made.json()
    assert set(body) == {"id", "url", "expires_at"}
    return int(body["id"]), str(body["url"]).split("/join/", 1)[1]


def test_a_revoked_invite_disconnects_and_is_refused(
    server: SecurityServer, refusal: RefusalLog
) -> None:
    invite_id, token = _invite(server, CAROL)
    guest = WebClient(server.web)
    page = guest.request("GET", f"/join/{token}")
    assert page.status == 200 and CAROL in page.text, page.status
    with open_sip_socket(server.web, cookies=guest.cookies) as probe:
        joined = _join(server, probe, MALLORY)
        assert joined.response.status == 200, joined.answered
        entry = wait_for(lambda: _in_roster(server, joined.request.call_id), 5.0)
        assert entry["uri"] == CAROL, entry
        api = WebClient(server.web, token=server.ana_token)
        revoked = api.request("DELETE", f"/api/conferences/{server.room_id}/invites/{invite_id}")
        assert revoked.status == 200, revoked.text
        assert revoked.json()["state"] == "revoked" and revoked.json()["disconnected"] == 1
        bye = probe.wait_request("BYE", 5.0)
        assert bye is not None and bye.call_id == joined.request.call_id
        assert probe.wait_closed(5.0), "the invite's connection stays open"
    assert wait_for(lambda: not _in_roster(server, joined.request.call_id), 5.0)
    status = _refused_upgrade(server, cookies=guest.cookies)
    again = WebClient(server.web).request("GET", f"/join/{token}")
    refusal.record(
        "revoked invite", "the session of a revoked invite upgrades /sip; the link is reopened",
        f"HTTP {status}; /join/… {again.status}",
    )  # fmt: skip
    assert status == 403 and again.status == 404
    listed = api.request("GET", f"/api/conferences/{server.room_id}/invites").json()
    assert [i["state"] for i in listed if i["id"] == invite_id] == ["revoked"]
    assert all("token" not in i and "digest" not in i for i in listed)


def test_an_expired_invite_is_refused(server: SecurityServer, refusal: RefusalLog) -> None:
    invite_id, token = _invite(server, CAROL)
    guest = WebClient(server.web)
    assert guest.request("GET", f"/join/{token}").status == 200
    database = sqlite3.connect(server.server.data_dir / "mrf.db")
    with database:
        database.execute(
            "UPDATE invites SET expires_at = '2020-01-01 00:00:00.000000' WHERE id = ?",
            (invite_id,),
        )
    database.close()
    status = _refused_upgrade(server, cookies=guest.cookies)
    again = WebClient(server.web).request("GET", f"/join/{token}")
    refusal.record(
        "expired invite", "the session of an expired invite upgrades /sip; the link is reopened",
        f"HTTP {status}; /join/… {again.status}",
    )  # fmt: skip
    assert status == 403 and again.status == 404


def test_hostile_frames_get_400_or_a_close_and_the_server_stays(
    server: SecurityServer, refusal: RefusalLog
) -> None:
    alice = _signed_in(server, "alice")
    with open_sip_socket(server.web, cookies=alice.cookies) as probe:
        probe.connection.send(b"\x00\xffnot SIP at all\r\n\r\n")  # binary garbage: dropped
        probe.connection.send(
            "OPTIONS sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS h.invalid;branch=z9hG4bKx\r\n"
            "CSeq: one OPTIONS\r\nCall-ID: x\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:room@b>\r\n\r\n"
        )
        answer = probe.connection.recv(timeout=5)
        first = answer.split("\r\n", 1)[0] if isinstance(answer, str) else repr(answer[:40])
        assert first.startswith("SIP/2.0 400"), first
    with open_sip_socket(server.web, cookies=alice.cookies) as probe:
        probe.connection.send("x" * 70_000)  # over the 64 KiB message cap
        assert probe.wait_closed(5.0), "an oversized message did not close the connection"
    refusal.record(
        "SIP WebSocket input", "a malformed request; a 70 kB message",
        f"{first}; connection closed (1009)",
    )  # fmt: skip
