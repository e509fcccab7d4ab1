"""One MSRP connection (RFC 4975 §7), sans-I/O, in the aioquic style.

::

    conn = MsrpConnection(config, resolver)
    conn.receive_data(data, now)           # bytes from the TLS stream
    while (event := conn.next_event()) is not None: ...
    transport.write(conn.data_to_send())
    timer = conn.get_timer(); conn.handle_timer(now)

Receiving (§7.3): the To-Path target must name a session bound to this
connection; the first request for a session asks ``resolver(local,
from_path)`` which answers 200 (bind), 481 (no such session), 506 (bound to
another connection) or 403.  SEND chunks are reassembled by Message-ID and
Byte-Range into storages from ``storage_factory``; each chunk is answered
(200 or 400/413/415/423/481/501; none when Failure-Report is ``no``, only
errors when ``partial``); a whole message is an :class:`MsrpMessageReceived`
and gets a success REPORT when it asked for one (§7.1.2).  Sending chunks
messages of any size (``chunk_size``) and watches each transaction for 30 s
when Failure-Report is ``yes`` (§7.1.1), reporting 408 otherwise.

Hot paths (a chat relay answers and sends one frame per message and
recipient): a message that arrives whole in one chunk is kept as the bytes
the parser produced (no storage, no copy); the headers of a SEND are read in
one pass; responses and SEND frames are rendered from per-session path lines
that are formatted once; each sent chunk may carry an opaque ``context``
that comes back in :class:`MsrpDeliveryFailed`.
"""

from __future__ import annotations

import fnmatch
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mrf.msrp.errors import MsrpLocalError, MsrpRemoteError
from mrf.msrp.events import (
    MsrpConnectionFailed,
    MsrpDeliveryFailed,
    MsrpEvent,
    MsrpMessageAborted,
    MsrpMessageDelivered,
    MsrpMessageReceived,
    MsrpNicknameRequested,
    MsrpReportReceived,
    MsrpSessionBound,
)
from mrf.msrp.message import (
    MsrpByteRange,
    MsrpIdentPool,
    MsrpRequest,
    MsrpResponse,
    MsrpStatus,
    is_ident,
)
from mrf.msrp.parser import MsrpStreamParser
from mrf.msrp.reassembly import MsrpMemoryStorage, MsrpReassembly, MsrpStorage
from mrf.msrp.uri import MsrpUri

__all__ = ["MsrpConfig", "MsrpConnection", "MsrpSessionResolver"]

type MsrpSessionResolver = Callable[[MsrpUri, tuple[MsrpUri, ...]], int]
type Path = tuple[MsrpUri, ...]


@dataclass(frozen=True, slots=True)
class MsrpConfig:
    """Caps and behaviour of a connection (units: bytes, seconds)."""

    max_message_size: int = 16 * 1024 * 1024  # our a=max-size
    chunk_size: int = 16384
    piece_size: int = 65536
    accept_types: tuple[str, ...] = ("*",)
    transaction_timeout: float = 30.0  # §7.1.1
    max_incomplete: int = 32
    max_outstanding: int = 100000
    delivered_events: bool = True  # MsrpMessageDelivered for every 200 to a last chunk


@dataclass(slots=True)
class _Outgoing:
    local: MsrpUri
    message_id: str
    last: bool
    deadline: float | None
    context: object = None
    echo: tuple[bytes, bytes] | None = None  # To-Path, From-Path of its plain 200


_CANONICAL_SEND = re.compile(  # the header block of a usual whole SEND, byte for byte
    rb"To-Path: (\S{1,1024})\r\nFrom-Path: (\S{1,1024})\r\n"
    rb"Message-ID: ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31})\r\n"
    rb"Byte-Range: 1-([1-9][0-9]{0,9})/([1-9][0-9]{0,9})\r\n"
    rb"Content-Type: ([\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?)\r\n"
)
_COMMENTS = {int(status): f" {status.comment}".encode() for status in MsrpStatus}
_MAX_TYPE_CACHE = 64


def _send_fields(request: MsrpRequest) -> tuple[str | None, str | None, str | None, str, str]:
    """Message-ID, Byte-Range, Content-Type, Success-Report, Failure-Report in one pass.

    The first occurrence of each wins, as in :meth:`MsrpRequest.header`.
    """
    message_id = byte_range = content_type = success = failure = None
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "message-id":
            message_id = value if message_id is None else message_id
        elif lowered == "byte-range":
            byte_range = value if byte_range is None else byte_range
        elif lowered == "content-type":
            content_type = value if content_type is None else content_type
        elif lowered == "success-report":
            success = value if success is None else success
        elif lowered == "failure-report":
            failure = value if failure is None else failure
    report = (failure or "yes").lower()
    if report not in ("yes", "no", "partial"):
        report = "yes"
    return message_id, byte_range, content_type, (success or "no").lower(), report


class MsrpConnection:
    """Framing, sessions, reassembly, responses and reports on one connection."""

    def __init__(
        self,
        config: MsrpConfig | None = None,
        resolver: MsrpSessionResolver | None = None,
        storage_factory: Callable[[], MsrpStorage] = MsrpMemoryStorage,
    ) -> None:
        self.config = config or MsrpConfig()
        self._resolver = resolver or (lambda local, path: 481)
        self._storage_factory = storage_factory
        self._parser = MsrpStreamParser(piece_size=self.config.piece_size)
        self._parser.ok_sink = self._plain_ok
        self._parser.send_sink = self._whole_send
        self._events: deque[MsrpEvent] = deque()
        self._out: list[bytes] = []
        self.sessions: dict[MsrpUri, Path] = {}
        self._incoming: dict[tuple[MsrpUri, str], MsrpReassembly] = {}
        self._chunk_error: dict[str, tuple[int, str]] = {}
        self._outgoing: dict[str, _Outgoing] = {}
        self._failed: set[str] = set()
        self._accepted_types: dict[str | None, bool] = {}
        self._sending: dict[MsrpUri, tuple[Path, bytes, tuple[bytes, bytes]]] = {}  # _send_state
        self._answer_paths: dict[MsrpUri, bytes] = {}  # ... of our responses
        self._bound_paths: dict[bytes, tuple[MsrpUri, bytes]] = {}  # To-Path -> (session, From)
        self._idents = MsrpIdentPool()
        self._clean_body: object = None  # the last body known to hold no "-------" at all
        self.failed = False

    # -- I/O side -------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        if self.failed:
            return
        try:
            messages = self._parser.feed(data)
        except MsrpRemoteError as exc:
            self._fatal(exc)
            return
        for message in messages:
            if isinstance(message, MsrpResponse):
                self._on_response(message)
            else:
                self._on_request(message)

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def next_event(self) -> MsrpEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest transaction deadline.

        Deadlines are ``now + transaction_timeout`` with a non-decreasing
        ``now``, and ``_outgoing`` keeps insertion order, so the first watched
        transaction is the earliest: O(1) instead of a scan per flush.
        """
        return next((o.deadline for o in self._outgoing.values() if o.deadline is not None), None)

    def connection_lost(self) -> None:
        """The transport is gone: drop every partial message, fail every pending send.

        RFC 4975 §7.1.1: a transaction without its response has failed; with the
        connection closed none can come, so each one fails now (408, as if its
        timer had fired) instead of 30 s later or never.  Partial incoming
        messages are incomplete for good (§7.3) and their storage is released.
        """
        self.failed = True
        for key in list(self._incoming):
            self._drop(*key)
        self._chunk_error.clear()
        pending = list(self._outgoing.values())
        self._outgoing.clear()
        for out in pending:
            self._deliver_failed(out, 408, "connection lost before the response (§7.1.1)")

    def handle_timer(self, now: float) -> None:
        for tid, out in list(self._outgoing.items()):
            if out.deadline is not None and out.deadline <= now:
                del self._outgoing[tid]
                self._deliver_failed(out, 408, "no response within 30 s (§7.1.1)")

    # -- sending --------------------------------------------------------------

    def bind(self, local: MsrpUri, remote_path: Path) -> None:
        """Associate a session with this connection (the active side, §7.1)."""
        self.sessions[local] = remote_path
        self._sending.pop(local, None)
        self._answer_paths.pop(local, None)
        self._bound_paths[str(local).encode()] = (local, " ".join(map(str, remote_path)).encode())

    def send_message(
        self,
        local: MsrpUri,
        content_type: str,
        body: bytes,
        now: float,
        *,
        message_id: str | None = None,
        success_report: bool = False,
        failure_report: str = "yes",
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> str:
        """Queue ``body`` as one message in chunks of ``chunk_size``; its Message-ID."""
        message_id = message_id or self._idents.new()
        size = len(body)
        step = self.config.chunk_size
        for offset in range(0, max(size, 1), step):
            data = body[offset : offset + step]
            self.send_chunk(
                local, message_id, content_type, offset + 1, data, size, now,
                last=offset + step >= size, success_report=success_report,
                failure_report=failure_report, extra_headers=extra_headers,
            )  # fmt: skip
        return message_id

    def send_chunk(
        self,
        local: MsrpUri,
        message_id: str,
        content_type: str,
        start: int,
        data: bytes,
        total: int | None,
        now: float,
        *,
        last: bool,
        success_report: bool = False,
        failure_report: str = "yes",
        extra_headers: Iterable[tuple[str, str]] = (),
        context: object = None,
    ) -> str:
        """Queue one SEND chunk (1-based ``start``); returns its transaction id.

        ``context`` comes back in the :class:`MsrpDeliveryFailed` of this message.
        """
        remote, paths, echo = self._send_state(local)
        if len(self._outgoing) >= self.config.max_outstanding:
            raise MsrpLocalError("too many outstanding transactions")
        tid = self._fresh_tid(data)
        byte_range = f"{start}-{start + len(data) - 1}/{'*' if total is None else total}"
        fields = f"Message-ID: {message_id}\r\nByte-Range: {byte_range}\r\n"
        if success_report:
            fields += "Success-Report: yes\r\n"
        if failure_report != "yes":
            fields += f"Failure-Report: {failure_report}\r\n"
        for name, value in extra_headers:  # as MsrpRequest writes them: Content-Type last
            if name.lower() != "content-type":
                fields += f"{name}: {value}\r\n"
            else:
                content_type = value
        fields += f"Content-Type: {content_type}\r\n"
        self._out += _send_frame(tid.encode(), paths, fields.encode(), data, last)
        if failure_report != "no":
            deadline = now + self.config.transaction_timeout if failure_report == "yes" else None
            self._outgoing[tid] = _Outgoing(local, message_id, last, deadline, context, echo)
        return tid

    def send_single(
        self, local: MsrpUri, content_type: str, body: bytes, now: float, *, context: object = None
    ) -> str:
        """Queue a whole non-empty message of at most ``chunk_size`` bytes as one SEND.

        The same frame as :meth:`send_chunk` with ``start=1``, ``last=True`` and
        the default reports, rendered in one step: this is the chat relay's
        per-recipient copy.  Its transaction id, fresh and random, is also its
        Message-ID (a one-chunk message needs no other, §7.1); returns it.
        """
        _, paths, echo = self._send_state(local)
        size = len(body)
        if not 0 < size <= self.config.chunk_size:
            raise MsrpLocalError(f"send_single takes 1..{self.config.chunk_size} bytes")
        if len(self._outgoing) >= self.config.max_outstanding:
            raise MsrpLocalError("too many outstanding transactions")
        tid = self._fresh_tid(body)
        raw_tid = tid.encode()
        fields = b"Message-ID: %s\r\nByte-Range: 1-%d/%d\r\nContent-Type: %s\r\n" % (
            raw_tid, size, size, content_type.encode(),
        )  # fmt: skip
        self._out += _send_frame(raw_tid, paths, fields, body, True)
        deadline = now + self.config.transaction_timeout
        self._outgoing[tid] = _Outgoing(local, tid, True, deadline, context, echo)
        return tid

    def _send_state(self, local: MsrpUri) -> tuple[Path, bytes, tuple[bytes, bytes]]:
        """A bound session's peer path, the To-Path/From-Path lines of our SENDs, and the
        To-Path/From-Path of the plain 200 the next hop answers them with (§7.2):
        formatted once per binding."""
        state = self._sending.get(local)
        if state is None:
            remote = self._remote(local)
            echo = (str(local).encode(), str(remote[0]).encode())
            state = self._sending[local] = (remote, _path_lines(remote, (local,)), echo)
        return state

    def send_bind(self, local: MsrpUri, now: float) -> None:
        """The bodiless SEND the active endpoint sends right after connecting (§7.1)."""
        _, paths, _ = self._send_state(local)
        tid = self._idents.new()
        fields = b"Message-ID: %s\r\nByte-Range: 1-0/0\r\n" % self._idents.new().encode()
        self._out += _send_frame(tid.encode(), paths, fields, None, True)
        self._outgoing[tid] = _Outgoing(local, "", False, now + self.config.transaction_timeout)

    def send_nickname(self, local: MsrpUri, nickname: str, now: float) -> str:
        """RFC 7701 §7.1 NICKNAME request; the answer arrives as delivery events."""
        remote = self._remote(local)
        tid = self._idents.new()
        value = '"' + nickname.replace("\\", "\\\\").replace('"', '\\"') + '"'
        request = MsrpRequest(tid, "NICKNAME", remote, (local,), [("Use-Nickname", value)])
        self._out.append(bytes(request))
        self._outgoing[tid] = _Outgoing(local, tid, True, now + self.config.transaction_timeout)
        return tid

    def send_report(
        self, local: MsrpUri, message_id: str, status: int, byte_range: MsrpByteRange
    ) -> None:
        """A REPORT (§7.1.2): Status ``000 <code>``, never answered."""
        remote = self._remote(local)
        comment = MsrpStatus(status).comment if status in MsrpStatus else "Error"
        headers = [
            ("Message-ID", message_id),
            ("Byte-Range", str(byte_range)),
            ("Status", f"000 {status} {comment}"),
        ]
        request = MsrpRequest(self._idents.new(), "REPORT", remote, (local,), headers)
        self._out.append(bytes(request))

    def respond(self, request_tid: str, local: MsrpUri, status: int) -> None:
        """Answer a request left to the application (NICKNAME)."""
        self._respond(request_tid, local, self._remote(local), status)

    def _remote(self, local: MsrpUri) -> Path:
        remote = self.sessions.get(local)
        if remote is None:
            raise MsrpLocalError(f"session {local} is not bound to this connection")
        return remote

    def _fresh_tid(self, body: bytes | memoryview) -> str:
        """A transaction id whose end-line does not occur in ``body`` (§7.1)."""
        if self._clean_body is body or b"-------" not in body:
            if isinstance(body, bytes):  # the relay sends one body to every recipient
                self._clean_body = body
            return self._idents.new()
        while True:
            tid = self._idents.new()
            if b"-------" + tid.encode() not in body:
                return tid

    # -- receiving ------------------------------------------------------------

    def _on_request(self, request: MsrpRequest) -> None:
        local = request.to_path[-1]
        status = self._session_status(local, request)
        if status != 200:
            self._answer_chunk(request, local, status, "session")
            return
        try:
            if request.method == "SEND":
                self._on_send(local, request)
            elif request.method == "REPORT":
                self._on_report(local, request)
            elif request.method == "NICKNAME":
                self._on_nickname(local, request)
            else:
                self._answer_chunk(request, local, 501, "unknown method")
        except MsrpRemoteError as exc:
            self._answer_chunk(request, local, exc.status, exc.reason)

    def _session_status(self, local: MsrpUri, request: MsrpRequest) -> int:
        if len(request.to_path) != 1:
            return 400
        if local in self.sessions:
            return 200
        status = self._resolver(local, request.from_path)
        if status == 200:
            self.bind(local, request.from_path)  # §7.2: To-Path of our answers
            self._events.append(MsrpSessionBound(local, self.sessions[local]))
        return status

    def _on_send(self, local: MsrpUri, request: MsrpRequest) -> None:
        message_id, range_text, content_type, success, report = _send_fields(request)
        tid = request.transaction_id
        if tid in self._chunk_error:
            if request.complete:
                self._answer_chunk(request, local, *self._chunk_error.pop(tid), report=report)
            return
        if message_id is None:
            raise MsrpRemoteError(400, "SEND without Message-ID")
        byte_range = request.byte_range if range_text is None else MsrpByteRange.parse(range_text)
        try:
            reassembly = self._store(local, request, message_id, byte_range, content_type)
        except MsrpRemoteError as exc:
            self._drop(local, message_id)
            if not request.complete:
                self._chunk_error[tid] = (exc.status, exc.reason)
                return
            raise
        if request.complete:
            self._answer_chunk(request, local, 200, "OK", report=report)
            if reassembly is not None:
                self._finish(local, request, message_id, reassembly, success == "yes", report)

    def _store(
        self,
        local: MsrpUri,
        request: MsrpRequest,
        message_id: str,
        byte_range: MsrpByteRange,
        content_type: str | None,
    ) -> MsrpReassembly | None:
        key = (local, message_id)
        reassembly = self._incoming.get(key)
        if reassembly is None:
            if not request.body and request.complete and content_type is None:
                return None  # a bodiless SEND only binds the connection
            self._check_type(content_type)
            if len(self._incoming) >= self.config.max_incomplete:
                raise MsrpRemoteError(413, "too many messages in progress")
            if request.complete and request.flag == "$" and byte_range.start == 1:
                if request.body_offset == 0:  # the whole message in one chunk: keep its bytes
                    return MsrpReassembly.whole(
                        message_id, request.body, self.config.max_message_size,
                        content_type=content_type, declared_total=byte_range.total,
                    )  # fmt: skip
            reassembly = MsrpReassembly(
                message_id, self._storage_factory(), self.config.max_message_size,
                content_type=content_type,
            )  # fmt: skip
            self._incoming[key] = reassembly
        start = byte_range.start + request.body_offset
        last = request.complete and request.flag == "$"
        reassembly.add(start, request.body, last=last, declared_total=byte_range.total)
        return reassembly

    def _check_type(self, content_type: str | None) -> None:
        accepted = self._accepted_types.get(content_type)
        if accepted is None:
            media = (content_type or "").split(";")[0].strip().lower()
            patterns = self.config.accept_types
            accepted = bool(media) and any(fnmatch.fnmatchcase(media, p) for p in patterns)
            if len(self._accepted_types) < _MAX_TYPE_CACHE:
                self._accepted_types[content_type] = accepted
        if not accepted:
            media = (content_type or "").split(";")[0].strip().lower()
            raise MsrpRemoteError(415, f"media type {media[:60]!r} not accepted")

    def _finish(
        self,
        local: MsrpUri,
        request: MsrpRequest,
        message_id: str,
        reassembly: MsrpReassembly,
        success_report: bool,
        failure_report: str,
    ) -> None:
        if request.flag == "#":
            self._drop(local, message_id)
            self._events.append(MsrpMessageAborted(local, message_id))
            return
        if not reassembly.complete:
            return
        self._incoming.pop((local, message_id), None)
        size = reassembly.total or 0
        if success_report:
            self.send_report(local, message_id, 200, MsrpByteRange(1, size, size))
        self._events.append(
            MsrpMessageReceived(
                local, self.sessions[local], message_id,
                reassembly.content_type or "application/octet-stream", size, reassembly,
                failure_report,
            )
        )  # fmt: skip

    def _drop(self, local: MsrpUri, message_id: str) -> None:
        reassembly = self._incoming.pop((local, message_id), None)
        if reassembly is not None:
            reassembly.close()

    def _on_report(self, local: MsrpUri, request: MsrpRequest) -> None:
        status_text = request.header("Status") or ""
        parts = status_text.split()
        if len(parts) < 2 or parts[0] != "000" or not parts[1].isdigit() or not request.message_id:
            return  # REPORTs are never answered (§7.1.2); a malformed one is dropped
        byte_range = request.header("Byte-Range")
        self._events.append(
            MsrpReportReceived(local, request.message_id, int(parts[1]), byte_range)
        )

    def _on_nickname(self, local: MsrpUri, request: MsrpRequest) -> None:
        value = request.header("Use-Nickname")
        if value is None or len(value) < 3 or value[0] != '"' or value[-1] != '"':
            raise MsrpRemoteError(424, "malformed Use-Nickname")
        nickname = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if not 0 < len(nickname.encode()) <= 1023 or any(ord(c) < 32 for c in nickname):
            raise MsrpRemoteError(424, "malformed nickname")
        self._events.append(
            MsrpNicknameRequested(local, self.sessions[local], request.transaction_id, nickname)
        )

    def _answer_chunk(
        self,
        request: MsrpRequest,
        local: MsrpUri,
        status: int,
        reason: str,
        *,
        report: str | None = None,
    ) -> None:
        if not request.complete or request.method == "REPORT":
            return
        if report is None:
            report = request.failure_report if request.method == "SEND" else "yes"
        if report == "no" or (report == "partial" and status == 200):
            return
        remote = self.sessions.get(local) or request.from_path
        self._respond(request.transaction_id, local, remote, status)

    def _respond(self, tid: str, local: MsrpUri, remote: Path, status: int) -> None:
        # §7.2: To-Path is the previous hop (first URI of the request's From-Path)
        paths = self._answer_paths.get(local)
        if paths is None or self.sessions.get(local) is not remote:
            paths = _path_lines((remote[0],), (local,))
            if self.sessions.get(local) is remote:
                self._answer_paths[local] = paths
        if not is_ident(tid) or not 100 <= status <= 999:
            raise MsrpLocalError(f"bad transaction id {tid!r} or status {status}")
        # the same bytes as bytes(MsrpResponse(...)), without building one
        self._out.append(
            b"MSRP %s %03d%s\r\n%s-------%s$\r\n"
            % (tid.encode(), status, _COMMENTS.get(status, b""), paths, tid.encode())
        )

    def _plain_ok(self, tid: bytes, to_path: bytes, from_path: bytes) -> bool:
        """The parser's ``ok_sink``: a plain 200 to one of our SENDs, recognized byte for byte.

        Anything else (unknown transaction, other paths) is left to the parser's
        normal path and :meth:`_on_response`, which treat it the same way.
        """
        key = tid.decode("ascii")
        out = self._outgoing.get(key)
        if out is None or out.echo is None or out.echo != (to_path, from_path):
            return False
        del self._outgoing[key]
        if out.last and self.config.delivered_events and out.message_id not in self._failed:
            self._events.append(MsrpMessageDelivered(out.local, out.message_id))
        return True

    def _whole_send(self, tid: bytes, head: bytes, body: bytes) -> bool:
        """The parser's ``send_sink``: a whole message in one SEND, in the usual form.

        Taken only when every byte is what the normal path would accept the same
        way: To-Path names a bound session and From-Path is its peer's path as
        bound, written as we write them; ``Byte-Range: 1-N/N`` with N the body's
        size, within ``a=max-size``; a content type already accepted on this
        connection; no report headers.  Then it is answered 200 and delivered as
        :meth:`_on_send` would; anything else is left to it (errors included).
        """
        match = _CANONICAL_SEND.fullmatch(head)
        if match is None:
            return False
        bound = self._bound_paths.get(match[1])
        size = len(body)
        if bound is None or bound[1] != match[2] or size > self.config.max_message_size:
            return False
        if int(match[4]) != size or int(match[5]) != size:
            return False
        local = bound[0]
        content_type, message_id = match[6].decode("ascii"), match[3].decode("ascii")
        if (
            self._accepted_types.get(content_type) is not True
            or len(self._incoming) >= self.config.max_incomplete
            or (local, message_id) in self._incoming
        ):
            return False
        request_tid = tid.decode("ascii")
        if request_tid in self._chunk_error:
            return False
        remote = self.sessions[local]
        self._respond(request_tid, local, remote, 200)
        reassembly = MsrpReassembly.whole(
            message_id, body, self.config.max_message_size,
            content_type=content_type, declared_total=size,
        )  # fmt: skip
        self._events.append(
            MsrpMessageReceived(local, remote, message_id, content_type, size, reassembly, "yes")
        )
        return True

    def _on_response(self, response: MsrpResponse) -> None:
        out = self._outgoing.pop(response.transaction_id, None)
        if out is None or not out.message_id:
            return
        if response.status != 200:
            self._deliver_failed(out, response.status, response.comment or "")
        elif out.last and self.config.delivered_events and out.message_id not in self._failed:
            self._events.append(MsrpMessageDelivered(out.local, out.message_id))

    def _deliver_failed(self, out: _Outgoing, status: int, reason: str) -> None:
        if out.message_id and out.message_id not in self._failed:
            self._failed.add(out.message_id)
            self._events.append(
                MsrpDeliveryFailed(out.local, out.message_id, status, reason, out.context)
            )

    def _fatal(self, exc: MsrpRemoteError) -> None:
        self.failed = True
        for key in list(self._incoming):
            self._drop(*key)
        self._events.append(MsrpConnectionFailed(exc.status, exc.reason))


def _send_frame(
    tid: bytes, paths: bytes, fields: bytes, body: bytes | None, last: bool
) -> tuple[bytes, ...]:
    """The one SEND writer (§7.1): start line, the path lines, ``fields`` (each
    ``Name: value`` CRLF, Content-Type last), the body after a blank line (none and no
    blank line when ``body`` is None) and the end-line; the bytes MsrpRequest writes."""
    flag = b"$" if last else b"+"
    if body is None:
        return (b"MSRP %s SEND\r\n%s%s-------%s%s\r\n" % (tid, paths, fields, tid, flag),)
    return (
        b"MSRP %s SEND\r\n%s%s\r\n" % (tid, paths, fields),
        body,
        b"\r\n-------%s%s\r\n" % (tid, flag),
    )


def _path_lines(to_path: Path, from_path: Path) -> bytes:
    """``To-Path`` and ``From-Path`` header lines, as :class:`MsrpRequest` writes them."""
    to_text = " ".join(map(str, to_path))
    from_text = " ".join(map(str, from_path))
    return f"To-Path: {to_text}\r\nFrom-Path: {from_text}\r\n".encode()
