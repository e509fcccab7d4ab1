"""A small blocking SIP user agent over UDP for the security tests (RFC 3261).

:class:`SipProbe` binds one UDP socket on a chosen loopback address (so a
test can speak as the trusted proxy ``127.0.0.2`` or as anyone else), sends
requests with retransmissions (timer A), ACKs every final response to an
INVITE (§17.1.1.3 for non-2xx, §13.2.2.4 for 2xx), answers requests the focus
sends it (NOTIFY, BYE, OPTIONS) with 200 and keeps them in ``received``.
Messages are built as text and read with the focus's own parser; what the
tests judge is the status line and headers of the answer.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import time
from dataclasses import dataclass, field

from focus.sip.message import SipRemoteError, SipRequest, SipResponse, make_response, parse_message
from focus.sip.refusal import parse_warning, warning_of

T1 = 0.5


def sdes_offer(host: str, rtp_port: int, key_salt: bytes | None = None) -> bytes:
    """An SDP offer with one SRTP audio line and a fresh RFC 4568 key (or ``key_salt``)."""
    key = base64.b64encode(key_salt or secrets.token_bytes(30)).decode()
    return (
        f"v=0\r\no=probe 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n"
    ).encode()


def mikey_offer(host: str, rtp_port: int, key_mgmt: str) -> bytes:
    """An SDP offer keyed only by ``a=key-mgmt:mikey`` (RFC 4567 §3, session level)."""
    return (
        f"v=0\r\no=probe 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"a=key-mgmt:{key_mgmt}\r\n"
        f"m=audio {rtp_port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


@dataclass
class SipExchange:
    """One request we sent and its final response."""

    request: SipRequest
    response: SipResponse

    @property
    def status_line(self) -> str:
        return f"{self.response.status} {self.response.reason}"

    @property
    def warning(self) -> str:
        """The answer's Warning text (RFC 3261 §20.43), '' without one."""
        return warning_of(self.response) or ""

    @property
    def answered(self) -> str:
        """Status line and Warning, as the refusal table shows them."""
        return f'{self.status_line} Warning "{self.warning}"' if self.warning else self.status_line

    def assert_warning(self, *, domain: str, says: str, code: int | None = None) -> None:
        """Exactly one well-formed Warning: code 3xx (``code``), our domain, text with ``says``."""
        values = self.response.headers.get_all("Warning")
        assert len(values) == 1, f"{self.status_line}: Warning headers {values}"
        parsed = parse_warning(values[0])
        assert parsed is not None, f"malformed Warning: {values[0]!r}"
        found, agent, text = parsed
        assert 300 <= found <= 399 and found == (code or found) and agent == domain, values[0]
        assert says in text, f"Warning {text!r} does not say {says!r}"


@dataclass
class SipProbe:
    """A UDP user agent at ``local_ip`` talking to the server at ``server``."""

    server: tuple[str, int]
    local_ip: str = "127.0.0.1"
    received: list[SipRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.local_ip, 0))
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------

    def request(
        self,
        method: str,
        uri: str,
        *,
        from_uri: str,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str = "application/sdp",
        timeout: float = 15.0,
    ) -> SipExchange:
        """Send an out-of-dialog request; its final response (INVITEs are ACKed)."""
        lines = [
            f"{method} {uri} SIP/2.0",
            self._via(),
            "Max-Forwards: 70",
            f"From: <{from_uri}>;tag={secrets.token_hex(4)}",
            f"To: <{uri}>",
            f"Call-ID: {secrets.token_hex(10)}@{self.local_ip}",
            f"CSeq: 1 {method}",
            f"Contact: <sip:probe@{self.local_ip}:{self.port}>",
            *(f"{name}: {value}" for name, value in headers),
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        return self._transact(self._build(lines, body), timeout)

    def request_bytes(
        self, head: list[bytes], body: bytes = b"", timeout: float = 15.0
    ) -> SipExchange:
        """Like :meth:`request` with the request line and headers given as raw bytes
        (e.g. bytes that are not UTF-8); Via and Content-Length are added."""
        data = b"\r\n".join([head[0], self._via().encode(), *head[1:],
                              b"Content-Length: %d" % len(body)]) + b"\r\n\r\n" + body  # fmt: skip
        message = parse_message(data)
        assert isinstance(message, SipRequest)
        return self._transact(message, timeout)

    def in_dialog(
        self,
        exchange: SipExchange,
        method: str,
        *,
        cseq: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        timeout: float = 10.0,
    ) -> SipExchange:
        """A request in the dialog an INVITE or SUBSCRIBE created (BYE, re-SUBSCRIBE...).

        ``exchange`` may be another probe's: the request then names that dialog
        (its Call-ID and tags) but leaves from this probe's socket.
        """
        sent, answer = exchange.request, exchange.response
        target = _uri(answer.headers.get("Contact", "")) or sent.uri
        number = sent.cseq[0] + 1 if cseq is None else cseq
        lines = [
            f"{method} {target} SIP/2.0",
            self._via(),
            "Max-Forwards: 70",
            f"From: {sent.headers.get('From')}",
            f"To: {answer.headers.get('To')}",
            f"Call-ID: {sent.call_id}",
            f"CSeq: {number} {method}",
            f"Contact: <sip:probe@{self.local_ip}:{self.port}>",
            *(f"{name}: {value}" for name, value in headers),
        ]
        if method == "SUBSCRIBE":
            lines += [f"Event: {sent.headers.get('Event')}", "Expires: 0",
                      f"Accept: {sent.headers.get('Accept')}"]  # fmt: skip
        if body:
            lines.append("Content-Type: application/sdp")
        return self._transact(self._build(lines, body), timeout)

    def wait_request(self, method: str, timeout: float = 10.0) -> SipRequest | None:
        """The first ``method`` request the focus sent us (answered 200), or None."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.received if r.method == method]
            if found or time.monotonic() >= deadline:
                return found[0] if found else None
            self._receive(deadline)

    def notify(
        self, subscribe: SipRequest, cseq: int, body: bytes, content_type: str
    ) -> SipExchange:
        """A NOTIFY in the dialog of ``subscribe`` (answered 200 by this probe, To tag
        ``probe``), as a notifier sends it (RFC 6665 §4.2.2), to ``self.server``."""
        lines = [
            f"NOTIFY {_uri(subscribe.headers.get('Contact', ''))} SIP/2.0",
            self._via(),
            "Max-Forwards: 70",
            f"From: {subscribe.headers.get('To')};tag=probe",
            f"To: {subscribe.headers.get('From')}",
            f"Call-ID: {subscribe.call_id}",
            f"CSeq: {cseq} NOTIFY",
            f"Contact: <sip:probe@{self.local_ip}:{self.port}>",
            "Event: conference",
            "Subscription-State: active;expires=600",
            f"Content-Type: {content_type}",
        ]
        return self._transact(self._build(lines, body), 10.0)

    # -- answering (the callee of a dial-out) -------------------------------------

    def answer_invite(
        self, invite: SipRequest, body: bytes, headers: tuple[tuple[str, str], ...] = ()
    ) -> SipResponse:
        """200 with ``body`` (retransmitted, RFC 3261 §13.3.1.4) until the ACK arrives."""
        contact = ("Contact", f"<sip:answerer@{self.local_ip}:{self.port}>")
        response = make_response(
            invite, 200, to_tag=secrets.token_hex(4), body=body,
            headers=[contact, *headers], content_type="application/sdp",
        )  # fmt: skip
        deadline, interval = time.monotonic() + 10.0, T1
        while time.monotonic() < deadline:
            self.sock.sendto(bytes(response), self.server)
            acked = self.wait_request("ACK", timeout=interval)
            if acked is not None and acked.call_id == invite.call_id:
                return response
            interval = min(interval * 2, 4.0)
        raise AssertionError("the focus never ACKed our 200")

    def decline(self, invite: SipRequest, status: int = 486, reason: str = "Busy Here") -> None:
        """A final refusal of ``invite`` (the focus ACKs it, RFC 3261 §17.1.1.3)."""
        response = make_response(invite, status, reason, to_tag=secrets.token_hex(4))
        self.sock.sendto(bytes(response), self.server)

    def hang_up(self, invite: SipRequest, response: SipResponse) -> SipExchange:
        """BYE from the callee's side of the dialog (§15.1.1)."""
        lines = [
            f"BYE {_uri(invite.headers.get('Contact', ''))} SIP/2.0",
            self._via(),
            "Max-Forwards: 70",
            f"From: {response.headers.get('To')}",
            f"To: {invite.headers.get('From')}",
            f"Call-ID: {invite.call_id}",
            "CSeq: 1 BYE",
        ]
        return self._transact(self._build(lines, b""), 10.0)

    # -- internals --------------------------------------------------------------

    def _via(self) -> str:
        branch = secrets.token_hex(8)
        return f"Via: SIP/2.0/UDP {self.local_ip}:{self.port};branch=z9hG4bK{branch};rport"

    @staticmethod
    def _build(lines: list[str], body: bytes) -> SipRequest:
        head = "\r\n".join([*lines, f"Content-Length: {len(body)}"]) + "\r\n\r\n"
        message = parse_message(head.encode() + body)
        assert isinstance(message, SipRequest)
        return message

    def _transact(self, request: SipRequest, timeout: float) -> SipExchange:
        branch = request.vias[0].params.get("branch")
        deadline = time.monotonic() + timeout
        interval, resend_at, provisional = T1, 0.0, False
        while time.monotonic() < deadline:
            if not provisional and time.monotonic() >= resend_at:
                self.sock.sendto(bytes(request), self.server)
                resend_at, interval = time.monotonic() + interval, min(interval * 2, 4.0)
            message = self._receive(min(deadline, resend_at))
            if (
                not isinstance(message, SipResponse)
                or message.vias[0].params.get("branch") != branch
            ):
                continue
            if message.status < 200:
                provisional = True
                continue
            if request.method == "INVITE":
                self._ack(request, message)
            return SipExchange(request, message)
        raise AssertionError(f"no final response to {request.method} within {timeout} s")

    def _ack(self, invite: SipRequest, response: SipResponse) -> None:
        ok = response.status < 300
        branch = secrets.token_hex(8) if ok else invite.vias[0].params.get("branch", "")[7:]
        target = (_uri(response.headers.get("Contact", "")) if ok else None) or invite.uri
        head = (
            f"ACK {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.local_ip}:{self.port};branch=z9hG4bK{branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: {invite.headers.get('From')}\r\n"
            f"To: {response.headers.get('To')}\r\nCall-ID: {invite.call_id}\r\n"
            f"CSeq: {invite.cseq[0]} ACK\r\nContent-Length: 0\r\n\r\n"
        )
        self.sock.sendto(head.encode("utf-8", "surrogateescape"), self.server)  # raw From bytes

    def _receive(self, deadline: float) -> SipRequest | SipResponse | None:
        """One message (requests are answered 200 and kept), or None at ``deadline``."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, addr = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        try:
            message = parse_message(data)
        except SipRemoteError:
            return None
        if isinstance(message, SipRequest):
            if message.method not in ("ACK", "INVITE"):  # an INVITE is the test's to answer
                self.sock.sendto(bytes(make_response(message, 200, to_tag="probe")), addr)
            if all(r.call_id != message.call_id or r.cseq != message.cseq
                   for r in self.received):  # fmt: skip
                self.received.append(message)
        return message


def sdes_answer(offer: bytes, host: str, rtp_port: int) -> bytes:
    """An SDP answer: SRTP audio on ``rtp_port`` with a fresh key for the offer's first
    suite (RFC 4568 §6.1); every other m-line refused with port 0 (RFC 3264 §6)."""
    text = offer.decode()
    tag, suite = re.findall(r"a=crypto:(\d+) (\S+) inline:", text)[0]
    key = base64.b64encode(secrets.token_bytes(30)).decode()
    lines = ["v=0", f"o=answerer 1 1 IN IP4 {host}", "s=-", f"c=IN IP4 {host}", "t=0 0"]
    for kind, proto, formats in re.findall(r"^m=(\w+) \d+ (\S+) (.*?)\r?$", text, re.M):
        if kind == "audio":
            lines += [f"m=audio {rtp_port} {proto} 0", "a=rtpmap:0 PCMU/8000",
                      f"a=crypto:{tag} {suite} inline:{key}", "a=sendrecv"]  # fmt: skip
        else:
            lines.append(f"m={kind} 0 {proto} {formats}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _uri(name_addr: str) -> str:
    return name_addr.split("<", 1)[1].split(">", 1)[0] if "<" in name_addr else ""


class MediaWatch:
    """A UDP socket standing for an offered RTP port: counts what reaches it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.packets = 0

    def count(self) -> int:
        """Datagrams received so far (drains the socket)."""
        while True:
            try:
                self.sock.recv(65535)
            except BlockingIOError:
                return self.packets
            self.packets += 1

    def wait(self, packets: int = 1, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.count() < packets:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self.sock.close()


def admitted_call(
    server: tuple[str, int],
    uri: str,
    identity: str,
    *,
    local_ip: str = "127.0.0.1",
    headers: tuple[tuple[str, str], ...] = (),
) -> str:
    """The control: an authorized INVITE gets 200 with an SDES answer and SRTP flows.

    Hangs up with BYE; returns what happened, for the table.
    """
    watch = MediaWatch(local_ip)
    try:
        with SipProbe(server, local_ip) as probe:
            call = probe.request("INVITE", uri, from_uri=identity, headers=headers,
                                 body=sdes_offer(local_ip, watch.port))  # fmt: skip
            assert call.response.status == 200, f"the control call got {call.status_line}"
            assert b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in call.response.body
            flowing = watch.wait(1, timeout=10.0)
            bye = probe.in_dialog(call, "BYE")
            assert flowing, "no SRTP reached the admitted caller within 10 s"
            assert bye.response.status == 200, bye.status_line
    finally:
        watch.close()
    return "200 OK + SRTP"
