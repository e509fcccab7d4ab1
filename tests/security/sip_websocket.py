"""A small blocking SIP user agent over WebSocket (RFC 7118) for the security tests.

:func:`open_sip_socket` performs the upgrade on ``/sip`` the way a browser
page does (``Origin``, the session cookie, subprotocol ``sip``) with the
``websockets`` client; a refused upgrade raises :class:`UpgradeRefused` with
the HTTP status.  :class:`SipWebSocketProbe` sends one SIP message per
WebSocket message with ``.invalid`` Via and Contact hosts (RFC 7118 §5.4),
ACKs final responses to INVITEs, answers the focus's requests (BYE, NOTIFY)
with 200 and keeps them in ``received``.  Messages are read with the focus's
own parser.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from focus.sip.message import SipRemoteError, SipRequest, SipResponse, make_response, parse_message
from tests.security.sip_probe import SipExchange


class UpgradeRefused(Exception):
    """The server answered the upgrade with ``status`` instead of 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"upgrade refused: {status}")
        self.status = status


def open_sip_socket(
    web: str,
    *,
    cookies: dict[str, str] | None = None,
    origin: str | None = "same",
    subprotocols: tuple[str, ...] = ("sip",),
    path: str = "/sip",
) -> SipWebSocketProbe:
    """Upgrade ``<web>/sip`` (``web`` is ``http://host:port``); ``origin="same"`` sends
    the server's own origin, ``None`` none."""
    headers: dict[str, str] = {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    sent_origin = web if origin == "same" else origin
    try:
        connection = connect(
            web.replace("http://", "ws://", 1) + path,
            additional_headers=headers,
            origin=sent_origin,  # type: ignore[arg-type]
            subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
            open_timeout=10,
        )
    except InvalidStatus as exc:
        raise UpgradeRefused(exc.response.status_code) from None
    connection.__enter__()  # the probe's own __exit__ closes it (websockets 17 style)
    return SipWebSocketProbe(connection)


@dataclass
class SipWebSocketProbe:
    """One SIP WebSocket connection; ``host`` is its ``.invalid`` Via/Contact host."""

    connection: ClientConnection
    host: str = field(default_factory=lambda: f"{secrets.token_hex(6)}.invalid")
    received: list[SipRequest] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> SipWebSocketProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def contact(self) -> str:
        return f"<sip:probe@{self.host};transport=ws>"

    def request(
        self,
        method: str,
        uri: str,
        *,
        from_uri: str,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        timeout: float = 15.0,
    ) -> SipExchange:
        """An out-of-dialog request; its final response (INVITEs are ACKed)."""
        lines = [
            f"{method} {uri} SIP/2.0", self._via(), "Max-Forwards: 70",
            f"From: <{from_uri}>;tag={secrets.token_hex(4)}", f"To: <{uri}>",
            f"Call-ID: {secrets.token_hex(10)}", f"CSeq: 1 {method}",
            f"Contact: {self.contact}", *(f"{name}: {value}" for name, value in headers),
        ]  # fmt: skip
        if body:
            lines.append("Content-Type: application/sdp")
        return self._transact(_build(lines, body), timeout)

    def bye(self, exchange: SipExchange) -> SipExchange:
        """BYE in the dialog of an answered INVITE (to the focus's Contact)."""
        sent, answer = exchange.request, exchange.response
        target = answer.headers.get("Contact", "").split("<", 1)[-1].split(">", 1)[0]
        lines = [
            f"BYE {target or sent.uri} SIP/2.0", self._via(), "Max-Forwards: 70",
            f"From: {sent.headers.get('From')}", f"To: {answer.headers.get('To')}",
            f"Call-ID: {sent.call_id}", f"CSeq: {sent.cseq[0] + 1} BYE",
        ]  # fmt: skip
        return self._transact(_build(lines, b""), 10.0)

    def wait_request(self, method: str, timeout: float = 10.0) -> SipRequest | None:
        """The first ``method`` request the focus sent us (answered 200), or None."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.received if r.method == method]
            if found or time.monotonic() >= deadline or self.closed:
                return found[0] if found else None
            self._receive(deadline)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True once the server closed the connection."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._receive(deadline)
        return self.closed

    def _via(self) -> str:
        return f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{secrets.token_hex(8)}"

    def _transact(self, request: SipRequest, timeout: float) -> SipExchange:
        branch = request.vias[0].params.get("branch")
        self.connection.send(bytes(request).decode("utf-8"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed:
            message = self._receive(deadline)
            if not isinstance(message, SipResponse) or message.status < 200:
                continue
            if message.vias[0].params.get("branch") != branch:
                continue
            if request.method == "INVITE":
                self._ack(request, message)
            return SipExchange(request, message)
        raise AssertionError(f"no final response to {request.method} within {timeout} s")

    def _ack(self, invite: SipRequest, response: SipResponse) -> None:
        ok = response.status < 300
        branch = secrets.token_hex(8) if ok else invite.vias[0].params.get("branch", "")[7:]
        lines = [
            f"ACK {invite.uri} SIP/2.0", f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{branch}",
            "Max-Forwards: 70", f"From: {invite.headers.get('From')}",
            f"To: {response.headers.get('To')}", f"Call-ID: {invite.call_id}",
            f"CSeq: {invite.cseq[0]} ACK",
        ]  # fmt: skip
        self.connection.send(bytes(_build(lines, b"")).decode("utf-8"))

    def _receive(self, deadline: float) -> SipRequest | SipResponse | None:
        """One message (requests answered 200 and kept), or None at ``deadline``."""
        try:
            data = self.connection.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            return None
        except ConnectionClosed:
            self.closed = True
            return None
        raw = data.encode("utf-8") if isinstance(data, str) else data
        try:
            message = parse_message(raw)
        except SipRemoteError:
            return None
        if isinstance(message, SipRequest):
            self.received.append(message)
            if message.method != "ACK":
                try:
                    self.connection.send(
                        bytes(make_response(message, 200, to_tag="probe")).decode()
                    )
                except ConnectionClosed:  # the server may close right after its BYE
                    self.closed = True
        return message


def _build(lines: list[str], body: bytes) -> SipRequest:
    head = "\r\n".join([*lines, f"Content-Length: {len(body)}"]) + "\r\n\r\n"
    message = parse_message(head.encode() + body)
    assert isinstance(message, SipRequest)
    return message
