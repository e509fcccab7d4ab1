"""SIP messages, sans-I/O (RFC 3261 §7, §8.2, §18.3, §20.42, §25; RFC 3581).

``parse_message(data)`` reads one datagram; ``SipStreamParser`` frames a
TCP/TLS byte stream by Content-Length.  Both raise :class:`SipRemoteError`
(whose ``status`` is the answer to send) on bad input and never anything else.
Header fields are parsed lazily (``vias``, ``from_addr``, ... on access,
cached until the headers change).  ``bytes(msg)`` re-emits unmodified header
fields verbatim and always writes one correct Content-Length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from focus.sip.headers import (
    SipError,
    SipHeaders,
    SipLocalError,
    SipRemoteError,
    is_token,
    normalize_name,
    unfold,
)
from focus.sip.uri import SipNameAddr, SipUri
from focus.sip.via import SipVia

__all__ = [
    "REASON_PHRASES",
    "SipError",
    "SipHeaders",
    "SipLocalError",
    "SipMessage",
    "SipRemoteError",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "SipVia",
    "make_response",
    "parse_message",
    "validate_request",
]

MAX_MESSAGE_SIZE = 65535
MAX_HEADER_COUNT = 256
MAX_LINE_SIZE = 8192

# RFC 3261 §21 (and extensions used by the focus).
REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip

_VERSION_RE = re.compile(r"SIP/([0-9]{1,3})\.([0-9]{1,3})", re.IGNORECASE)
_STATUS_RE = re.compile(r"[1-6][0-9][0-9]")
# Request-URI: scheme ":" then printable ASCII without SP, '"', '<', '>' (RFC 3261 §25.1).
_RURI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[!#-;=?-~]+")
_CSEQ_RE = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)")
_LENGTH_RE = re.compile(r"[0-9]{1,10}")
_CRLF_CRLF = b"\r\n\r\n"


class SipMessage:
    """Common part of requests and responses: headers, body and parsed accessors."""

    __slots__ = ("_raw_start", "body", "headers")

    def __init__(self, headers: SipHeaders | Iterable[tuple[str, str]] | None, body: bytes) -> None:
        if headers is None:
            headers = SipHeaders()
        elif not isinstance(headers, SipHeaders):
            headers = SipHeaders(headers)
        self.headers: SipHeaders = headers
        self.body = bytes(body)
        self._raw_start: str | None = None

    def _start_line(self) -> str:
        raise NotImplementedError

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipRemoteError(400, f"Missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        """The Call-ID (RFC 3261 §20.8): ``word ["@" word]``, visible ASCII only."""
        value = self._required("Call-ID").strip(" \t")
        if not value or not value.isascii() or not value.isprintable() or " " in value:
            raise SipRemoteError(400, "Invalid Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        """``(sequence number, method)`` from CSeq (RFC 3261 §20.16), number < 2**32."""
        return self.headers.cached("cseq", self._parse_cseq)

    def _parse_cseq(self) -> tuple[int, str]:
        match = _CSEQ_RE.fullmatch(self._required("CSeq").strip(" \t"))
        if match is None or int(match.group(1)) > 0xFFFFFFFF:
            raise SipRemoteError(400, "Invalid CSeq")
        return int(match.group(1)), match.group(2)

    @property
    def vias(self) -> list[SipVia]:
        """Every Via value, topmost first (empty list if there is none)."""
        return list(self.headers.cached("vias", self._parse_vias))

    def _parse_vias(self) -> tuple[SipVia, ...]:
        return tuple(SipVia.parse(value) for value in self.headers.get_all("Via"))

    @property
    def from_addr(self) -> SipNameAddr:
        """The From header field (RFC 3261 §20.20)."""
        return self.headers.cached("from", lambda: _name_addr(self._required("From"), "From"))

    @property
    def to_addr(self) -> SipNameAddr:
        """The To header field (RFC 3261 §20.39)."""
        return self.headers.cached("to", lambda: _name_addr(self._required("To"), "To"))

    @property
    def content_type(self) -> str | None:
        """The lower-case media type of the body without parameters, or ``None``."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip(" \t").lower()

    def __bytes__(self) -> bytes:
        lines = [self._raw_start or self._start_line()]
        lines += self.headers.serialize_lines(len(self.body))
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


def _name_addr(value: str, header: str) -> SipNameAddr:
    try:
        return SipNameAddr.parse(value)
    except SipRemoteError as exc:
        raise SipRemoteError(400, f"Invalid {header} header: {exc.reason}") from exc


class SipRequest(SipMessage):
    """A SIP request (RFC 3261 §7.1); ``uri`` is the Request-URI text."""

    __slots__ = ("_parsed_start", "method", "uri")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: SipHeaders | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not is_token(method) or _RURI_RE.fullmatch(uri) is None:
            raise SipLocalError(f"invalid request line {method!r} {uri!r}")
        super().__init__(headers, body)
        self.method = method
        self.uri = uri
        self._parsed_start: tuple[str, str] | None = None

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __bytes__(self) -> bytes:
        if self._parsed_start != (self.method, self.uri):
            self._raw_start = None
        return super().__bytes__()

    @property
    def request_uri(self) -> SipUri:
        """The parsed Request-URI (:class:`SipRemoteError` 416/400 if unusable)."""
        uri = self.uri
        return self.headers.cached(f"ruri {uri}", lambda: SipUri.parse(uri))

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (RFC 3261 §20.22) or ``None`` when absent."""
        value = self.headers.get("Max-Forwards")
        if value is None:
            return None
        value = value.strip(" \t")
        if not value.isdigit() or not value.isascii() or len(value) > 10:
            raise SipRemoteError(400, "Invalid Max-Forwards")
        return int(value)

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri}>"


class SipResponse(SipMessage):
    """A SIP response (RFC 3261 §7.2)."""

    __slots__ = ("_parsed_start", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: SipHeaders | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not 100 <= status <= 699:
            raise SipLocalError(f"invalid status code {status}")
        reason = REASON_PHRASES.get(status, "") if reason is None else reason
        if "\r" in reason or "\n" in reason:
            raise SipLocalError("CR/LF in reason phrase")
        super().__init__(headers, body)
        self.status = status
        self.reason = reason
        self._parsed_start: tuple[int, str] | None = None

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __bytes__(self) -> bytes:
        if self._parsed_start != (self.status, self.reason):
            self._raw_start = None
        return super().__bytes__()

    def __repr__(self) -> str:
        return f"<SipResponse {self.status} {self.reason}>"


def _parse_head(text: str, max_header_count: int, max_line_size: int) -> tuple[str, SipHeaders]:
    """Split the start line from the header fields (RFC 3261 §7.3.1 folding)."""
    if text.count("\n") != text.count("\r\n") or text.count("\r") != text.count("\r\n"):
        raise SipRemoteError(400, "Bare CR or LF in header")
    lines = text.split("\r\n")
    start = lines[0]
    if len(start) > max_line_size:
        raise SipRemoteError(400, "Start line too long")
    headers = SipHeaders()
    fields: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipRemoteError(400, "Continuation line before first header")
            fields[-1] += "\r\n" + line
        else:
            fields.append(line)
    if len(fields) > max_header_count:
        raise SipRemoteError(400, "Too many header fields")
    for raw in fields:
        if len(raw) > max_line_size:
            raise SipRemoteError(400, "Header field too long")
        name, colon, value = raw.partition(":")
        if not colon:
            raise SipRemoteError(400, "Header line without colon")
        key, display = normalize_name(name.rstrip(" \t"))
        headers._append_parsed(key, display, unfold(value).strip(" \t"), raw)
    return start, headers


def _build(start: str, headers: SipHeaders) -> SipRequest | SipResponse:
    """Build the message from a start line (RFC 3261 §7.1, §7.2)."""
    if start[:4].upper() == "SIP/":
        version, _, rest = start.partition(" ")
        code, _, reason = rest.partition(" ")
        if _VERSION_RE.fullmatch(version) is None or version[4:] != "2.0":
            raise SipRemoteError(400, "Unsupported SIP version in response")
        if _STATUS_RE.fullmatch(code) is None:
            raise SipRemoteError(400, "Invalid status code")
        response = SipResponse(int(code), reason, headers)
        response._raw_start = start
        response._parsed_start = (response.status, response.reason)
        return response
    parts = start.split(" ")
    if len(parts) != 3 or not is_token(parts[0]) or _RURI_RE.fullmatch(parts[1]) is None:
        raise SipRemoteError(400, "Malformed Request-Line")
    method, uri, version = parts
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise SipRemoteError(400, "Malformed SIP-Version")
    request = SipRequest(method, uri, headers)
    request._raw_start = start
    request._parsed_start = (method, uri)
    if (int(match.group(1)), int(match.group(2))) != (2, 0):
        raise SipRemoteError(505, "Version Not Supported", message=request)
    return request


def _content_length(headers: SipHeaders, message: SipMessage) -> int | None:
    """The single, numeric Content-Length (RFC 3261 §20.14, RFC 4475 §3.1.2.3, §3.3.9)."""
    values = headers.get_all("Content-Length")
    if not values:
        return None
    if len(values) > 1:
        raise SipRemoteError(400, "Multiple Content-Length values", message=message)
    value = values[0].strip(" \t")
    if _LENGTH_RE.fullmatch(value) is None:
        raise SipRemoteError(400, "Invalid Content-Length", message=message)
    return int(value)


def _decode_head(head: bytes, max_header_count: int, max_line_size: int) -> SipMessage:
    text = head.decode("utf-8", "surrogateescape")
    start, headers = _parse_head(text, max_header_count, max_line_size)
    return _build(start, headers)


def parse_message(
    data: bytes,
    *,
    max_message_size: int = MAX_MESSAGE_SIZE,
    max_header_count: int = MAX_HEADER_COUNT,
    max_line_size: int = MAX_LINE_SIZE,
) -> SipRequest | SipResponse:
    """Parse one datagram (RFC 3261 §7, §18.3).

    Octets past Content-Length are discarded; a body shorter than
    Content-Length, a bad or repeated Content-Length, or any syntax error
    raises :class:`SipRemoteError` (400; 505 for another SIP version; 513
    when over ``max_message_size``).  Without Content-Length the body runs to
    the end of the datagram.
    """
    if len(data) > max_message_size:
        raise SipRemoteError(513, "Message Too Large")
    data = data.lstrip(b"\r\n")
    end = data.find(_CRLF_CRLF)
    if end < 0:
        raise SipRemoteError(400, "Incomplete message header")
    message = _decode_head(data[:end], max_header_count, max_line_size)
    rest = data[end + 4 :]
    length = _content_length(message.headers, message)
    if length is None:
        message.body = rest
    elif length > len(rest):
        raise SipRemoteError(400, "Body shorter than Content-Length", message=message)
    else:
        message.body = rest[:length]
    return message  # type: ignore[return-value]


class SipStreamParser:
    """Frames SIP messages on a TCP/TLS stream by Content-Length (RFC 3261 §18.3).

    CRLF keep-alives between messages are skipped (RFC 5626 §3.5.1).  A
    framing error raises :class:`SipRemoteError`; the connection must then
    be closed and this parser refuses further input.
    """

    def __init__(
        self,
        max_message_size: int = MAX_MESSAGE_SIZE,
        *,
        max_header_count: int = MAX_HEADER_COUNT,
        max_line_size: int = MAX_LINE_SIZE,
    ) -> None:
        self.max_message_size = max_message_size
        self._max_header_count = max_header_count
        self._max_line_size = max_line_size
        self._buffer = bytearray()
        self.failed_data = b""
        self._scanned = 0
        self._pending: tuple[SipMessage, int, int] | None = None
        self._failed = False

    def feed(self, data: bytes) -> list[SipRequest | SipResponse]:
        """Add bytes from the stream; return every message now complete."""
        if self._failed:
            raise SipLocalError("stream parser used after a framing error")
        self._buffer += data
        messages: list[SipRequest | SipResponse] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)  # type: ignore[arg-type]
        except SipRemoteError:
            self._failed = True
            # keep the start of the offending head so the adapter can still answer it
            self.failed_data = bytes(self._buffer[: self._max_line_size * 2])
            self._buffer.clear()
            raise
        return messages

    def _next(self) -> SipMessage | None:
        if self._pending is None:
            if not self._read_head():
                return None
        assert self._pending is not None
        message, head_size, total = self._pending
        if len(self._buffer) < total:
            return None
        message.body = bytes(self._buffer[head_size:total])
        del self._buffer[:total]
        self._pending = None
        self._scanned = 0
        return message

    def _read_head(self) -> bool:
        buffer = self._buffer
        skip = 0
        while skip < len(buffer) and buffer[skip] in (0x0D, 0x0A):
            skip += 1
        if skip:
            del buffer[:skip]
            self._scanned = 0
        end = buffer.find(_CRLF_CRLF, max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self.max_message_size:
                raise SipRemoteError(513, "Message Too Large")
            return False
        if end + 4 > self.max_message_size:
            raise SipRemoteError(513, "Message Too Large")
        message = _decode_head(bytes(buffer[:end]), self._max_header_count, self._max_line_size)
        length = _content_length(message.headers, message)
        if length is None:
            raise SipRemoteError(400, "Content-Length required on streams", message=message)
        total = end + 4 + length
        if total > self.max_message_size:
            raise SipRemoteError(513, "Message Too Large", message=message)
        self._pending = (message, end + 4, total)
        return True


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """Build a response to ``request`` (RFC 3261 §8.2.6).

    Via, From, Call-ID and CSeq are copied verbatim, and To too, with
    ``;tag=to_tag`` appended when the request's To has no tag.  A 100 also
    copies Timestamp (§8.2.6.1).
    """
    response = SipResponse(status, reason)
    out = response.headers
    for name in ("Via", "From"):
        out.copy_fields(request.headers, name)
    to_value = request.headers.get("To")
    if to_value is not None:
        if to_tag is not None and request.to_addr.tag is None:
            out.add("To", f"{to_value};tag={to_tag}")
        else:
            out.copy_fields(request.headers, "To")
    for name in ("Call-ID", "CSeq"):
        out.copy_fields(request.headers, name)
    if status == 100:
        out.copy_fields(request.headers, "Timestamp")
    for name, value in headers:
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    response.body = bytes(body)
    return response


# validate_request lives in focus/sip/validate.py (it needs the classes above)
from focus.sip.validate import validate_request  # noqa: E402
