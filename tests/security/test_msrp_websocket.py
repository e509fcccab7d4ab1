"""MSRP over WebSocket on ``/msrp`` (RFC 7977) relays as the web session's identity only.

Against the running server's web port, with the ``websockets`` client doing
what the join page does.  The upgrade is refused (HTTP 403) without a
session, from another origin and without the ``msrp`` subprotocol.  Over an
accepted connection, alice's browser call (SIP over ``/sip`` with a
``TCP/WS/MSRP`` line, loopback) is bound by her session and the offer's
``a=path``: a CPIM ``From`` naming carol gets a 403 REPORT and is not in the
room's chat; her own ``From`` is relayed.  Mallory's session cannot bind
alice's chat session (403 to her SEND).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.interop.harness import wait_for
from tests.security.rig import ALICE, CAROL, PASSWORD, SecurityServer
from tests.security.sip_probe import SipExchange, sdes_offer
from tests.security.sip_websocket import open_sip_socket
from tests.security.table import RefusalLog
from tests.security.web_probe import WebClient


def _cookies(server: SecurityServer, name: str) -> dict[str, str]:
    browser = WebClient(server.web)
    browser.sign_in(name, PASSWORD)
    return browser.cookies


def _open_msrp(
    server: SecurityServer,
    cookies: dict[str, str] | None,
    origin: str | None = "same",
    subprotocols: tuple[str, ...] = ("msrp",),
) -> ClientConnection:
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    return connect(
        server.web.replace("http://", "ws://", 1) + "/msrp",
        additional_headers=headers if cookies else {},
        origin=server.web if origin == "same" else origin,  # type: ignore[arg-type]
        subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
        open_timeout=10,
    )


@pytest.mark.parametrize(
    ("variant", "tried"),
    [
        ("no-session", "upgrade on /msrp without a session cookie or invite"),
        ("cross-origin", "alice's session cookie, Origin http://evil.example"),
        ("no-subprotocol", "alice's session cookie, no 'msrp' subprotocol"),
    ],
    ids=["no-session", "cross-origin", "no-subprotocol"],
)
def test_the_msrp_upgrade_is_refused(
    security_server: SecurityServer, refusal: RefusalLog, variant: str, tried: str
) -> None:
    server = security_server
    before = server.log_count("refused MSRP WebSocket upgrade")
    alice = _cookies(server, "alice")
    kwargs: dict[str, object] = {
        "no-session": {"cookies": None},
        "cross-origin": {"cookies": alice, "origin": "http://evil.example"},
        "no-subprotocol": {"cookies": alice, "subprotocols": ()},
    }[variant]  # type: ignore[assignment]
    with pytest.raises(InvalidStatus) as refused:
        _open_msrp(server, **kwargs).close()  # type: ignore[arg-type]
    status = refused.value.response.status_code
    refusal.record("MSRP WebSocket upgrade", tried, f"HTTP {status}")
    assert status == 403
    assert wait_for(lambda: server.log_count("refused MSRP WebSocket upgrade") > before, 2.0)
    with _open_msrp(server, alice) as accepted:  # the same session, done right: accepted
        assert accepted.subprotocol == "msrp"


def _chat_offer(host: str, path: str) -> bytes:
    audio = sdes_offer(host, 40000)
    return (
        audio
        + (
            f"m=message 9 TCP/WS/MSRP *\r\na=accept-types:message/cpim text/plain\r\n"
            f"a=path:{path}\r\na=setup:active\r\n"
        ).encode()
    )


def _send(path: str, to_path: str, sender: str, text: str) -> tuple[str, str]:
    tid = secrets.token_hex(6)
    body = (
        f"From: <{sender}>\r\nTo: <sip:room@127.0.0.1>\r\n\r\n"
        f"Content-Type: text/plain\r\n\r\n{text}"
    )
    size = len(body.encode())
    return tid, (
        f"MSRP {tid} SEND\r\nTo-Path: {to_path}\r\nFrom-Path: {path}\r\n"
        f"Message-ID: {tid}\r\nByte-Range: 1-{size}/{size}\r\n"
        f"Content-Type: message/cpim\r\n\r\n{body}\r\n-------{tid}$\r\n"
    )


def _until(socket: ClientConnection, pattern: str) -> str:
    """Frames received until one matches ``pattern`` (the last frame)."""
    while True:
        frame = socket.recv(timeout=5)
        text = frame if isinstance(frame, str) else frame.decode()
        if re.search(pattern, text):
            return text


def _history(server: SecurityServer) -> list[dict[str, object]]:
    api = WebClient(server.web, token=server.ana_token)
    found = api.request("GET", f"/api/conferences/{server.room_id}/chat")
    assert found.status == 200, found.text
    return list(found.json())


@pytest.fixture
def alice_chat(security_server: SecurityServer) -> Iterator[tuple[str, str, SipExchange]]:
    """Alice in the room from her browser session, with a WebSocket chat line."""
    server = security_server
    path = f"msrp://{secrets.token_hex(5)}.invalid:9/{secrets.token_hex(6)};ws"
    with open_sip_socket(server.web, cookies=_cookies(server, "alice")) as probe:
        joined = probe.request(
            "INVITE", server.room_uri, from_uri=ALICE, body=_chat_offer(server.host, path)
        )
        assert joined.response.status == 200, joined.answered
        answer = joined.response.body.decode()
        found = re.search(r"m=message [1-9][0-9]* TCP/WS/MSRP[^\n]*\n(?:a=[^\n]*\n)*", answer)
        assert found, answer
        ours = re.search(r"a=path:(\S+)", found[0])
        assert ours and ours[1].endswith(";ws"), answer
        yield path, ours[1], joined
        probe.bye(joined)


def test_a_forged_cpim_from_is_not_relayed(
    security_server: SecurityServer, refusal: RefusalLog, alice_chat: tuple[str, str, SipExchange]
) -> None:
    server = security_server
    path, to_path, _ = alice_chat
    with _open_msrp(server, _cookies(server, "alice")) as socket:
        forged = f"forged {secrets.token_hex(4)}"
        tid, send = _send(path, to_path, CAROL, forged)
        socket.send(send)
        assert re.search(r"^MSRP \S+ 200", _until(socket, rf"^MSRP {tid} \d{{3}}"))
        report = _until(socket, r"REPORT")
        assert "Status: 000 403" in report, report
        refusal.record("MSRP WebSocket CPIM From", f"alice's session, From {CAROL}",
                       "REPORT 403, not relayed")  # fmt: skip
        honest = f"honest {secrets.token_hex(4)}"
        tid, send = _send(path, to_path, ALICE, honest)
        socket.send(send)
        assert re.search(r"^MSRP \S+ 200", _until(socket, rf"^MSRP {tid} \d{{3}}"))
        assert wait_for(lambda: any(honest in str(m) for m in _history(server)), 5.0)
        assert not any(forged in str(m) for m in _history(server))
        assert all(ALICE in str(m) for m in _history(server) if honest in str(m))


def test_another_session_cannot_bind_alice_s_chat(
    security_server: SecurityServer, refusal: RefusalLog, alice_chat: tuple[str, str, SipExchange]
) -> None:
    server = security_server
    path, to_path, _ = alice_chat
    with _open_msrp(server, _cookies(server, "mallory")) as socket:
        tid, send = _send(path, to_path, ALICE, "as alice")
        socket.send(send)
        answer = _until(socket, rf"^MSRP {tid} \d{{3}}")
        refusal.record("MSRP WebSocket binding", "mallory's session, alice's a=path",
                       answer.split("\r\n", 1)[0])  # fmt: skip
        assert re.search(rf"^MSRP {tid} 403", answer), answer
