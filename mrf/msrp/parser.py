"""Incremental MSRP stream parser (RFC 4975 §9 framing), sans-I/O.

``MsrpStreamParser.feed(data) -> list[MsrpRequest | MsrpResponse]``.  Bytes may
arrive in any split, one at a time too.  A request body is located by scanning
for ``CRLF "-------" transaction-id flag CRLF``; when a body grows beyond
``piece_size`` the parser hands it over in pieces (``complete=False`` with the
piece's ``body_offset``) so that a large chunk is never held whole.

Both sinks below act during :meth:`feed`, so they are offered a message only
while :meth:`feed` has returned nothing before it in this call: what they take
is never handled ahead of a message that came first.

**Plain 200s.**  A sender sees one ``200 OK`` per chunk it sent, each the
same but for its transaction id.  With ``ok_sink`` set, consecutive plain
200s (start line, To-Path, From-Path, end-line, each URI at most 1 KiB) at
the start of the buffer are offered to it as raw ``(transaction id, To-Path,
From-Path)`` bytes, without building a :class:`MsrpResponse`; the sink takes
one (returns True) only when it recognizes every byte of it, otherwise the
response goes through the normal path below.

**Whole SENDs.**  With ``send_sink`` set, a SEND framed whole by the fast
path below, with a body and the ``$`` flag, is first offered to it as raw
``(transaction id, header block, body)``; the sink takes it (returns True)
only when it can handle it exactly as the normal path would.

**Fast path.**  When a whole, well-formed message is already in the buffer
(the usual case: a TLS read carries many small messages), it is framed by one
regular expression and one body search instead of line by line.  The fast
path accepts a strict subset of what the line-by-line path accepts and
produces the same message; anything else (incomplete, unusual or malformed)
falls back to the line-by-line path, which alone raises errors.

Caps: start line 1 KiB, header block ``max_header_size``, ``max_headers``
headers.  Anything malformed raises :class:`MsrpRemoteError` (with the
transaction id when it is known, so that the caller can answer 400 before
closing the connection); the parser is then unusable.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mrf.msrp.errors import MsrpRemoteError
from mrf.msrp.message import MAX_NON_SEND_BODY, MsrpRequest, MsrpResponse, parse_paths

__all__ = ["MsrpStreamParser"]

_START = re.compile(
    rb"^MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]+)|([0-9]{3})(?: (.*))?)$"
)
_HEADER = re.compile(rb"^([A-Za-z0-9\-_.!%*+`'~]+): ?(.*)$")
_FAST_START = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]+)|([0-9]{3})(?: ([^\r\n]*))?)"
)
_FAST_RESPONSE = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) ([0-9]{3})(?: ([^\r\n]*))?\r\n"
    rb"To-Path: ?([^\r\n]*)\r\nFrom-Path: ?([^\r\n]*)\r\n-------\1\$\r\n"
)
_PLAIN_OK = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) 200 OK\r\n"
    rb"To-Path: ([^\r\n]{1,1024})\r\nFrom-Path: ([^\r\n]{1,1024})\r\n-------\1\$\r\n"
)
_FAST_HEADERS = re.compile(rb"(?:[A-Za-z0-9_.!%*+`'~][A-Za-z0-9\-_.!%*+`'~]*:[^\r\n]*\r\n)*")
MAX_START_LINE = 1024


class MsrpStreamParser:
    """Frames MSRP messages out of a TCP/TLS byte stream."""

    def __init__(
        self,
        *,
        piece_size: int = 65536,
        max_header_size: int = 16384,
        max_headers: int = 64,
        fast: bool = True,
    ) -> None:
        self.piece_size = piece_size
        self.fast = fast
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self._buffer = bytearray()
        self._tid: str | None = None
        self._start: tuple[str | None, int | None, str | None] = (None, None, None)
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._in_body = False
        self._marker = b""
        self._scanned = 0
        self._offset = 0
        self._broken = False
        self.ok_sink: Callable[[bytes, bytes, bytes], bool] | None = None
        self.send_sink: Callable[[bytes, bytes, bytes], bool] | None = None

    def feed(self, data: bytes) -> list[MsrpRequest | MsrpResponse]:
        """Parse ``data``; returns every message (or body piece) completed by it."""
        if self._broken:
            raise MsrpRemoteError(400, "stream already failed")
        self._buffer += data
        out: list[MsrpRequest | MsrpResponse] = []
        try:
            while self._step(out):
                pass
        except MsrpRemoteError as exc:
            self._broken = True
            if exc.transaction_id is None and self._tid is not None:
                exc.transaction_id = self._tid
            raise
        return out

    def _step(self, out: list[MsrpRequest | MsrpResponse]) -> bool:
        if self._in_body:
            return self._body(out)
        if self._tid is None and self.fast:
            if self.ok_sink is not None and not out:  # sinks never overtake a message
                self._plain_oks()  # then the rest, in this same step: nothing is offered twice
                if not self._buffer:
                    return False
            framed = self._fast(out)
            if framed is not None:
                if framed:
                    return True
            elif len(self._buffer) < self.piece_size:
                return False  # the rest of a message the fast path will take whole

        line = self._line()
        if line is None:
            return False
        if self._tid is None:
            self._start_line(line)
        elif line == b"":
            if self._start[0] is None or self._content_type() is None:
                raise MsrpRemoteError(400, "blank line without Content-Type")
            self._in_body, self._scanned, self._offset = True, 0, 0
        elif line.startswith(b"-------"):
            out.append(self._finish_headers_only(line))
        else:
            self._header(line)
        return True

    def _plain_oks(self) -> None:
        """Hand consecutive plain 200s at the buffer's start to ``ok_sink``."""
        sink, buffer, match = self.ok_sink, self._buffer, _PLAIN_OK.match
        assert sink is not None
        end = 0
        while (found := match(buffer, end)) is not None and sink(found[1], found[2], found[3]):
            end = found.end()
        if end:
            del buffer[:end]

    def _fast(self, out: list[MsrpRequest | MsrpResponse]) -> bool | None:
        """Frame one whole message at the start of the buffer, or leave it all alone.

        None: the buffer holds the beginning of a message that looks usual so far;
        rather than starting it line by line, :meth:`_step` waits for the rest
        (up to ``piece_size`` bytes: a larger one is streamed line by line).
        """
        buffer = self._buffer
        response = _FAST_RESPONSE.match(buffer)
        if response is not None and self._fast_response(response, out):
            return True
        line_end = buffer.find(b"\r\n", 0, MAX_START_LINE + 2)
        if line_end < 0:
            return None if len(buffer) < MAX_START_LINE + 2 else False
        start = _FAST_START.fullmatch(buffer, 0, line_end)
        if start is None:
            return False
        tid = start[1]
        first = line_end + 2  # the header block starts here
        limit = first + self.max_header_size
        # the first blank line bounds the search for an end-line among the headers, so
        # that a body is scanned once (by _find_end); "-------" holds no CR, so an
        # end-line before the blank line always ends before it
        blank = buffer.find(b"\r\n\r\n", line_end, limit)
        end_line = buffer.find(
            b"\r\n-------" + tid, line_end, blank + 2 if blank >= 0 else limit + 9 + len(tid)
        )
        if end_line >= 0 and (blank < 0 or end_line < blank):  # no body
            head_end = end_line + 2
            flag_at = head_end + 7 + len(tid)
            if len(buffer) < flag_at + 3:
                return None
            flag = bytes(buffer[flag_at : flag_at + 1])
            if flag not in b"$+#" or buffer[flag_at + 1 : flag_at + 3] != b"\r\n":
                return False
            end = flag_at + 3
        elif blank >= 0:
            head_end, flag = blank + 2, b""
            end = 0
        else:  # the header block is not complete yet
            return None
        if (end if end else head_end + 2) - first > self.max_header_size:
            return False  # as counted line by line: headers and the end-line or blank line
        found = None
        if not flag and start[2] == b"SEND" and self.send_sink is not None and not out:
            found = self._find_end(tid, head_end + 2)
            if found is None:
                return None
            body_end, flag_text, end = found
            if flag_text == "$" and self.send_sink(
                tid, bytes(buffer[first:head_end]), bytes(buffer[head_end + 2 : body_end])
            ):
                del buffer[:end]
                return True
        if _FAST_HEADERS.fullmatch(buffer, first, head_end) is None:
            return False
        try:
            text = buffer[first:head_end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        lines = text.split("\r\n")
        if len(lines) - 1 > self.max_headers:
            return False
        headers = []
        has_type = False
        for line in lines[:-1]:
            name, _, value = line.partition(":")
            if not has_type and name.lower() == "content-type":
                has_type = True
            headers.append((name, value.strip()))
        method = start[2].decode("ascii") if start[2] is not None else None
        if not flag:  # a blank line: a body follows
            if method is None or not has_type:
                return False
            found = found or self._find_end(tid, head_end + 2)
            if found is None:
                return None
            body_end, flag_text, end = found
            body = bytes(buffer[head_end + 2 : body_end])
        else:
            if has_type:
                return False
            body, flag_text = b"", chr(flag[0])
        status = int(start[3]) if start[3] is not None else None
        if status is not None and status < 100:
            return False
        comment = start[4].decode("utf-8", "replace") if start[4] is not None else None
        self._tid = tid.decode("ascii")
        self._start = (method, status, comment)
        self._headers = headers
        del buffer[:end]
        out.append(self._emit(body, flag_text, complete=True))
        return True

    def _fast_response(self, match: re.Match[bytes], out: list[MsrpRequest | MsrpResponse]) -> bool:
        """The usual response: start line, To-Path, From-Path, end-line (RFC 4975 §7.2)."""
        end = match.end()
        if end - match.end(3 if match[3] is not None else 2) - 2 > self.max_header_size:
            return False
        try:
            to_path, from_path = match[4].decode("utf-8"), match[5].decode("utf-8")
        except UnicodeDecodeError:
            return False
        status = int(match[2])
        if status < 100:
            return False
        comment = match[3].decode("utf-8", "replace") if match[3] is not None else None
        self._tid = match[1].decode("ascii")
        to, frm = parse_paths(
            [("To-Path", to_path.strip()), ("From-Path", from_path.strip())], self._tid
        )[:2]
        del self._buffer[:end]
        out.append(MsrpResponse(self._tid, status, comment, to, frm, []))
        self._reset()
        return True

    def _find_end(self, tid: bytes, start: int) -> tuple[int, str, int] | None:
        """The body's end: (end of body, flag, end of the end-line), as :meth:`_body` finds it."""
        buffer = self._buffer
        marker = b"\r\n-------" + tid
        found = buffer.find(marker, start)
        while found >= 0:
            flag_at = found + len(marker)
            tail = buffer[flag_at : flag_at + 3]
            if len(tail) < 3:
                return None
            if tail[0] in b"$+#" and tail[1:] == b"\r\n":
                return found, chr(tail[0]), flag_at + 3
            found = buffer.find(marker, found + 1)
        return None

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        limit = MAX_START_LINE if self._tid is None else self.max_header_size
        if end < 0:
            if len(self._buffer) > limit:
                raise MsrpRemoteError(400, "line too long")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        if self._tid is not None:
            self._header_bytes += end + 2
            if self._header_bytes > self.max_header_size:
                raise MsrpRemoteError(400, "header block too large")
        return line

    def _start_line(self, line: bytes) -> None:
        match = _START.match(line)
        if match is None:
            raise MsrpRemoteError(400, f"malformed start line {line[:60]!r}")
        self._tid = match[1].decode("ascii")
        method = match[2].decode("ascii") if match[2] else None
        status = int(match[3]) if match[3] else None
        comment = match[4].decode("utf-8", "replace") if match[4] is not None else None
        if status is not None and status < 100:
            raise MsrpRemoteError(400, "bad status code")
        self._start = (method, status, comment)
        self._marker = b"\r\n-------" + match[1]

    def _header(self, line: bytes) -> None:
        match = _HEADER.match(line)
        if match is None:
            raise MsrpRemoteError(400, f"malformed header line {line[:60]!r}")
        if len(self._headers) >= self.max_headers:
            raise MsrpRemoteError(400, "too many headers")
        try:
            value = match[2].decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise MsrpRemoteError(400, "header value is not UTF-8") from exc
        self._headers.append((match[1].decode("ascii"), value))

    def _content_type(self) -> str | None:
        return next((v for n, v in self._headers if n.lower() == "content-type"), None)

    def _end_flag(self, line: bytes) -> str:
        assert self._tid is not None
        expected = b"-------" + self._tid.encode("ascii")
        if len(line) != len(expected) + 1 or not line.startswith(expected):
            raise MsrpRemoteError(400, "end-line does not match the transaction id")
        flag = chr(line[-1])
        if flag not in "$+#":
            raise MsrpRemoteError(400, "bad continuation flag")
        return flag

    def _finish_headers_only(self, line: bytes) -> MsrpRequest | MsrpResponse:
        flag = self._end_flag(line)
        if self._content_type() is not None:
            raise MsrpRemoteError(400, "Content-Type without a body")
        return self._emit(b"", flag, complete=True)

    def _body(self, out: list[MsrpRequest | MsrpResponse]) -> bool:
        marker = self._marker
        found = self._buffer.find(marker, self._scanned)
        while found >= 0:
            tail = bytes(self._buffer[found + len(marker) : found + len(marker) + 3])
            if len(tail) < 3:
                break  # wait for the flag and CRLF
            if tail[0:1] in (b"$", b"+", b"#") and tail[1:] == b"\r\n":
                body = bytes(self._buffer[:found])
                del self._buffer[: found + len(marker) + 3]
                out.append(self._emit(body, chr(tail[0]), complete=True))
                return True
            found = self._buffer.find(marker, found + 1)
        keep = len(marker) + 3
        self._scanned = max(0, len(self._buffer) - keep) if found < 0 else found
        if self._start[0] != "SEND" and len(self._buffer) > MAX_NON_SEND_BODY + keep:
            raise MsrpRemoteError(413, "body of a non-SEND request too large (§7.1)")
        if self._scanned >= self.piece_size:
            piece = bytes(self._buffer[: self._scanned])
            del self._buffer[: self._scanned]
            out.append(self._emit(piece, "+", complete=False))
            self._scanned = 0
            return True
        return False

    def _emit(self, body: bytes, flag: str, *, complete: bool) -> MsrpRequest | MsrpResponse:
        assert self._tid is not None
        method, status, comment = self._start
        to_path, from_path, headers = parse_paths(self._headers, self._tid)
        message: MsrpRequest | MsrpResponse
        if method is not None:
            message = MsrpRequest(
                self._tid, method, to_path, from_path, list(headers), body, flag,
                body_offset=self._offset, complete=complete,
            )  # fmt: skip
        else:
            if flag != "$":
                raise MsrpRemoteError(400, "a response must end with $")
            message = MsrpResponse(self._tid, status or 0, comment, to_path, from_path, headers)
        self._offset += len(body)
        if complete:
            self._reset()
        return message

    def _reset(self) -> None:
        self._tid = None
        self._start = (None, None, None)
        self._headers = []
        self._header_bytes = 0
        self._in_body = False
        self._offset = 0
        self._scanned = 0


def parse_one(data: bytes) -> MsrpRequest | MsrpResponse:
    """Parse exactly one complete message (tests, vectors)."""
    parser = MsrpStreamParser(piece_size=len(data) + 1)
    messages = parser.feed(data)
    if len(messages) != 1 or parser._buffer or parser._tid is not None:
        raise MsrpRemoteError(400, "not exactly one MSRP message")
    return messages[0]
