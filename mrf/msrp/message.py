"""MSRP requests and responses (RFC 4975 §7, §9): data model and serialisation.

A request is one *chunk* on the wire::

    MSRP <transaction-id> SEND
    To-Path: ...            (first header)
    From-Path: ...          (second header)
    Message-ID: ... / Byte-Range: ... / Success-Report / Failure-Report / Status
    Content-Type: ...       (last header, only with a body)

    <body>
    -------<transaction-id><flag>      flag: "$" complete, "+" more, "#" aborted

``bytes(request)`` and ``bytes(response)`` serialise; :mod:`mrf.msrp.parser`
parses streams.  Transaction ids and Message-IDs are 128 random bits in
base32-ish ``ident`` syntax (§7.1: at least 64 bits of randomness).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import IntEnum

from mrf.msrp.errors import MsrpLocalError, MsrpRemoteError
from mrf.msrp.uri import MsrpUri, parse_path

__all__ = [
    "MAX_NON_SEND_BODY",
    "MsrpByteRange",
    "MsrpIdentPool",
    "MsrpRequest",
    "MsrpResponse",
    "MsrpStatus",
    "is_ident",
    "new_ident",
]

MAX_NON_SEND_BODY = 10240  # §7.1: bodies of requests other than SEND
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$")
_BYTE_RANGE = re.compile(r"^([0-9]{1,18})-([0-9]{1,18}|\*)/([0-9]{1,18}|\*)$")
_FLAGS = frozenset("$+#")


class MsrpStatus(IntEnum):
    """MSRP status codes (RFC 4975 §10, RFC 7701 §10; IANA "MSRP Status Codes")."""

    OK = 200
    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404  # RFC 7701: recipient of a private message unknown
    TIMEOUT = 408
    STOP_SENDING = 413
    UNSUPPORTED_MEDIA = 415
    OUT_OF_BOUNDS = 423
    NICKNAME_MALFORMED = 424  # RFC 7701 §7.1
    NICKNAME_IN_USE = 425  # RFC 7701 §7.1
    NO_PRIVATE_MESSAGES = 428  # RFC 7701 §6.2
    NO_SESSION = 481
    UNKNOWN_METHOD = 501
    WRONG_CONNECTION = 506

    @property
    def comment(self) -> str:
        return _COMMENTS[self]


_COMMENTS = {
    MsrpStatus.OK: "OK",
    MsrpStatus.BAD_REQUEST: "Bad Request",
    MsrpStatus.FORBIDDEN: "Forbidden",
    MsrpStatus.NOT_FOUND: "Not Found",
    MsrpStatus.TIMEOUT: "Request Timeout",
    MsrpStatus.STOP_SENDING: "Stop Sending Message",
    MsrpStatus.UNSUPPORTED_MEDIA: "Unsupported Media Type",
    MsrpStatus.OUT_OF_BOUNDS: "Parameter Out Of Bounds",
    MsrpStatus.NICKNAME_MALFORMED: "Nickname Malformed",
    MsrpStatus.NICKNAME_IN_USE: "Nickname Not Available",
    MsrpStatus.NO_PRIVATE_MESSAGES: "Private Messages Not Supported",
    MsrpStatus.NO_SESSION: "Session Does Not Exist",
    MsrpStatus.UNKNOWN_METHOD: "Unknown Method",
    MsrpStatus.WRONG_CONNECTION: "Wrong Connection",
}


_IDENT_BATCH = 256  # identifiers drawn from the OS CSPRNG per getrandom() call


def new_ident() -> str:
    """A fresh transaction id / Message-ID: 128 random bits (§7.1, §9 ``ident``)."""
    return os.urandom(16).hex()


class MsrpIdentPool:
    """Fresh identifiers for one connection, 256 per ``os.urandom`` call.

    The relay mints one per delivered copy, and one system call each was a
    measurable share of its time.  Each :class:`~mrf.msrp.connection.MsrpConnection`
    owns its pool, so no state is shared between connections; a connection
    (like the TLS stream under it) belongs to one process, and one made in a
    forked child starts with a pool of its own.
    """

    __slots__ = ("_pool",)

    def __init__(self) -> None:
        self._pool: list[str] = []

    def new(self) -> str:
        pool = self._pool
        if not pool:
            text = os.urandom(16 * _IDENT_BATCH).hex()
            pool[:] = [text[i : i + 32] for i in range(0, len(text), 32)]
        return pool.pop()


def is_ident(text: str) -> bool:
    return _IDENT.match(text) is not None


@dataclass(frozen=True, slots=True)
class MsrpByteRange:
    """``Byte-Range: start-end/total`` (§7.1.1); 1-based, ``None`` for ``*``."""

    start: int
    end: int | None
    total: int | None

    @classmethod
    def parse(cls, text: str) -> MsrpByteRange:
        match = _BYTE_RANGE.match(text.strip())
        if match is None:
            raise MsrpRemoteError(400, f"malformed Byte-Range {text[:40]!r}")
        start = int(match[1])
        end = None if match[2] == "*" else int(match[2])
        total = None if match[3] == "*" else int(match[3])
        if start < 1 or (end is not None and end < start - 1):
            raise MsrpRemoteError(400, f"impossible Byte-Range {text[:40]!r}")
        if total is not None and end is not None and end > total:
            raise MsrpRemoteError(423, f"Byte-Range beyond total {text[:40]!r}")
        return cls(start, end, total)

    def __str__(self) -> str:
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"


@dataclass(slots=True)
class MsrpRequest:
    """One request chunk.  ``headers`` excludes To-Path/From-Path (kept as paths).

    ``body_offset`` / ``complete`` are set by the stream parser when it hands a
    large body over in pieces: this piece starts ``body_offset`` bytes into the
    chunk's body, and only the piece with ``complete=True`` carries the real
    end-line ``flag``.
    """

    transaction_id: str
    method: str
    to_path: tuple[MsrpUri, ...]
    from_path: tuple[MsrpUri, ...]
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    flag: str = "$"
    body_offset: int = 0
    complete: bool = True

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for n, v in self.headers if n.lower() == lowered), None)

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")

    @property
    def content_type(self) -> str | None:
        return self.header("Content-Type")

    @property
    def byte_range(self) -> MsrpByteRange:
        """The Byte-Range, or the whole-body default ``1-len/len`` (§7.1.1)."""
        value = self.header("Byte-Range")
        if value is None:
            size = len(self.body) if self.complete else None
            return MsrpByteRange(1, size, size if self.flag == "$" else None)
        return MsrpByteRange.parse(value)

    @property
    def success_report(self) -> bool:
        return (self.header("Success-Report") or "no").lower() == "yes"

    @property
    def failure_report(self) -> str:
        """``yes`` (default), ``no`` or ``partial`` (§7.1.1)."""
        value = (self.header("Failure-Report") or "yes").lower()
        return value if value in ("yes", "no", "partial") else "yes"

    def __bytes__(self) -> bytes:
        _check_ident(self.transaction_id)
        if self.flag not in _FLAGS or not self.method.isalpha() or not self.method.isupper():
            raise MsrpLocalError("bad flag or method")
        lines = [f"MSRP {self.transaction_id} {self.method}", *_path_lines(self)]
        has_body = bool(self.body) or self.content_type is not None
        for name, value in self.headers:
            if name.lower() != "content-type":
                lines.append(f"{name}: {value}")
        if has_body:
            lines.append(f"Content-Type: {self.content_type or 'application/octet-stream'}")
        head = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        end = f"-------{self.transaction_id}{self.flag}\r\n".encode("ascii")
        if not has_body:
            return head + end
        if end[:-3] in self.body:
            raise MsrpLocalError("the end-line occurs in the body: use another transaction id")
        return b"".join((head, b"\r\n", self.body, b"\r\n", end))


@dataclass(slots=True)
class MsrpResponse:
    """A response (§7.2): same transaction id, end-line always ``$``."""

    transaction_id: str
    status: int
    comment: str | None
    to_path: tuple[MsrpUri, ...]
    from_path: tuple[MsrpUri, ...]
    headers: list[tuple[str, str]] = field(default_factory=list)

    def __bytes__(self) -> bytes:
        _check_ident(self.transaction_id)
        if not 100 <= self.status <= 999:
            raise MsrpLocalError(f"bad status {self.status}")
        start = f"MSRP {self.transaction_id} {self.status:03d}"
        if self.comment:
            start += f" {self.comment}"
        lines = [start, *_path_lines(self), *(f"{n}: {v}" for n, v in self.headers)]
        lines.append(f"-------{self.transaction_id}$")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _check_ident(text: str) -> None:
    if not is_ident(text):
        raise MsrpLocalError(f"bad transaction id {text!r}")


def _path_lines(message: MsrpRequest | MsrpResponse) -> list[str]:
    if not message.to_path or not message.from_path:
        raise MsrpLocalError("To-Path and From-Path are required")
    return [
        "To-Path: " + " ".join(map(str, message.to_path)),
        "From-Path: " + " ".join(map(str, message.from_path)),
    ]


def parse_paths(
    headers: list[tuple[str, str]], transaction_id: str
) -> tuple[tuple[MsrpUri, ...], tuple[MsrpUri, ...], list[tuple[str, str]]]:
    """Split off To-Path and From-Path, which must come first, in that order (§9)."""
    if len(headers) < 2 or [n.lower() for n, _ in headers[:2]] != ["to-path", "from-path"]:
        raise MsrpRemoteError(
            400, "To-Path and From-Path must come first", transaction_id=transaction_id
        )
    try:
        return parse_path(headers[0][1]), parse_path(headers[1][1]), headers[2:]
    except MsrpRemoteError as exc:
        raise MsrpRemoteError(400, exc.reason, transaction_id=transaction_id) from exc
