"""SDP session descriptions (RFC 8866), sans-I/O.

``SdpSession.parse(data)`` accepts ``str`` or ``bytes`` with CRLF or bare LF line
ends and returns a typed tree; ``str(session)`` serialises it with CRLF in the
RFC 8866 §5 order, so a description that was already in that order round-trips
byte for byte. Attributes (``a=``) are kept as ``SdpAttribute(name, value)`` in
their original order, unknown ones included; typed codecs for the attributes the
focus needs live in :mod:`focus.sdp.attributes`.

Error tree::

    SdpError
    ├── SdpLocalError    our own misuse (bad arguments when building SDP)
    └── SdpRemoteError   the peer's fault; ``status`` is the SIP status to answer
                         with: 400 for a malformed body, 488 for an unacceptable one

Leniency (RFC 8866 §5 says parsers should be tolerant): ``v=0`` must come first
and ``o=`` must be present, but a missing ``s=`` or ``t=`` is tolerated, ``s=``
may be empty (RFC 3264 §10 examples), and the order of lines inside a section
is not enforced. Strict where ambiguity matters: unknown line types, repeated
single-valued lines, ``r=`` without ``t=``, session-only lines inside a media
section, and malformed ``o=``/``c=``/``m=`` values are rejected with 400.

Caps: ``max_sdp_size`` (64 KiB), ``max_media`` (32) and
``max_attributes`` per section (256).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_MEDIA",
    "MAX_SDP_SIZE",
    "SdpAttribute",
    "SdpConnection",
    "SdpError",
    "SdpLocalError",
    "SdpMedia",
    "SdpOrigin",
    "SdpRemoteError",
    "SdpSession",
    "SdpTiming",
]

MAX_SDP_SIZE = 65536
MAX_MEDIA = 32
MAX_ATTRIBUTES = 256
_MAX_LINES = 4096
_MAX_DIGITS = 20

# RFC 8866 §9: token = 1*(token-char); used for attribute names, protos, usernames.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_ADDR_RE = re.compile(r"[0-9A-Za-z.:\-_%]+")
_PROTO_RE = re.compile(r"[0-9A-Za-z_\-.]+(/[0-9A-Za-z_\-.]+)*")
_FORMAT_RE = re.compile(r"[\x21-\x7e]+")
_USERNAME_RE = re.compile(r"[^\s\x00-\x1f\x7f]+")  # non-ws-string, UTF-8 allowed (§9)


class SdpError(Exception):
    """Base of all SDP errors."""


class SdpLocalError(SdpError):
    """We misused the API (e.g. built an answer with a missing port)."""


class SdpRemoteError(SdpError):
    """The peer sent a malformed or unacceptable description.

    ``status`` is the SIP response to send: 400 (malformed, RFC 3261 §21.4.1)
    or 488 (Not Acceptable Here, RFC 3261 §21.4.26 / RFC 3264 §6); ``warn_code``
    the Warning code that fits ``reason`` (RFC 3261 §20.43: 304 media type not
    available, 305 incompatible media format, 399 anything else).
    """

    def __init__(self, status: int, reason: str, warn_code: int = 399) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.warn_code = warn_code


def _bad(reason: str) -> SdpRemoteError:
    return SdpRemoteError(400, reason)


def parse_number(text: str, what: str, *, max_digits: int = _MAX_DIGITS) -> int:
    """Parse ``1*DIGIT`` with a digit cap; raise ``SdpRemoteError(400)`` otherwise."""
    if not _DIGITS_RE.fullmatch(text) or len(text) > max_digits:
        raise _bad(f"invalid {what}: {text[:40]!r}")
    return int(text)


@dataclass(slots=True)
class SdpAttribute:
    """One ``a=`` line (RFC 8866 §5.13): ``a=name`` (value None) or ``a=name:value``."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> SdpAttribute:
        name, sep, value = text.partition(":")
        if not _TOKEN_RE.fullmatch(name):
            raise _bad(f"invalid attribute name: {name[:40]!r}")
        return cls(name, value if sep else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


def _check_nettype(nettype: str, addrtype: str) -> None:
    if nettype != "IN" or addrtype not in ("IP4", "IP6"):
        raise _bad(f"unsupported network/address type: {nettype} {addrtype}")


@dataclass(slots=True)
class SdpOrigin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (RFC 8866 §5.2)."""

    username: str
    session_id: int
    session_version: int
    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @classmethod
    def parse(cls, text: str) -> SdpOrigin:
        parts = text.split(" ")
        if len(parts) != 6:
            raise _bad(f"o= needs 6 fields: {text[:80]!r}")
        user, sid, version, nettype, addrtype, address = parts
        if not _USERNAME_RE.fullmatch(user) or not _ADDR_RE.fullmatch(address):
            raise _bad(f"invalid o= line: {text[:80]!r}")
        _check_nettype(nettype, addrtype)
        return cls(
            user,
            parse_number(sid, "o= session id"),
            parse_number(version, "o= session version"),
            address,
            addrtype,
            nettype,
        )

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class SdpConnection:
    """``c=<nettype> <addrtype> <address>[/<ttl>][/<count>]`` (RFC 8866 §5.7).

    ``ttl`` only exists for IP4 multicast; IP6 uses ``address/count``.
    """

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"
    ttl: int | None = None
    count: int | None = None

    @classmethod
    def parse(cls, text: str) -> SdpConnection:
        parts = text.split(" ")
        if len(parts) != 3:
            raise _bad(f"c= needs 3 fields: {text[:80]!r}")
        nettype, addrtype, spec = parts
        _check_nettype(nettype, addrtype)
        address, *suffix = spec.split("/")
        if not _ADDR_RE.fullmatch(address) or len(suffix) > 2:
            raise _bad(f"invalid c= address: {spec[:80]!r}")
        numbers = [parse_number(s, "c= ttl/count", max_digits=5) for s in suffix]
        if addrtype == "IP6":
            if len(numbers) > 1:
                raise _bad("IP6 c= takes at most a count")
            return cls(address, addrtype, nettype, None, numbers[0] if numbers else None)
        ttl = numbers[0] if numbers else None
        count = numbers[1] if len(numbers) == 2 else None
        return cls(address, addrtype, nettype, ttl, count)

    @property
    def is_hold(self) -> bool:
        """RFC 3264 §8.4: ``c=IN IP4 0.0.0.0`` is the legacy (RFC 2543) hold."""
        return self.address in ("0.0.0.0", "::")

    def __str__(self) -> str:
        spec = self.address
        if self.ttl is not None:
            spec += f"/{self.ttl}"
        if self.count is not None:
            spec += f"/{self.count}"
        return f"{self.nettype} {self.addrtype} {spec}"


@dataclass(slots=True)
class SdpTiming:
    """A ``t=<start> <stop>`` line with its ``r=`` repeat lines (RFC 8866 §5.9, §5.10)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> SdpTiming:
        parts = text.split(" ")
        if len(parts) != 2:
            raise _bad(f"t= needs 2 fields: {text[:80]!r}")
        return cls(parse_number(parts[0], "t= start"), parse_number(parts[1], "t= stop"))

    def lines(self) -> list[str]:
        return [f"t={self.start} {self.stop}", *(f"r={r}" for r in self.repeats)]


@dataclass(slots=True)
class SdpMedia:
    """One media description: ``m=<media> <port>[/<n>] <proto> <fmt> ...`` (RFC 8866 §5.14)."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    title: str | None = None
    connections: list[SdpConnection] = field(default_factory=list)
    bandwidths: list[str] = field(default_factory=list)
    key: str | None = None
    attributes: list[SdpAttribute] = field(default_factory=list)

    @classmethod
    def parse_mline(cls, text: str) -> SdpMedia:
        parts = text.split(" ")
        if len(parts) < 4:
            raise _bad(f"m= needs media, port, proto and a format: {text[:80]!r}")
        kind, port_spec, proto, *formats = parts
        port_text, slash, count_text = port_spec.partition("/")
        port = parse_number(port_text, "m= port", max_digits=5)
        count = parse_number(count_text, "m= port count", max_digits=5) if slash else None
        if port > 65535:
            raise _bad(f"m= port out of range: {port}")
        if not _TOKEN_RE.fullmatch(kind) or not _PROTO_RE.fullmatch(proto):
            raise _bad(f"invalid m= line: {text[:80]!r}")
        if not all(_FORMAT_RE.fullmatch(f) for f in formats):
            raise _bad(f"invalid m= format list: {text[:80]!r}")
        return cls(kind, port, proto, formats, count)

    @property
    def mline(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        return " ".join([self.kind, port, self.proto, *self.formats])

    def get_attribute(self, name: str) -> SdpAttribute | None:
        """First attribute called ``name`` (case-sensitive, RFC 8866 §5.13)."""
        return next((a for a in self.attributes if a.name == name), None)

    def get_attributes(self, name: str) -> list[SdpAttribute]:
        return [a for a in self.attributes if a.name == name]

    def lines(self) -> list[str]:
        out = [f"m={self.mline}"]
        if self.title is not None:
            out.append(f"i={self.title}")
        out += [f"c={c}" for c in self.connections]
        out += [f"b={b}" for b in self.bandwidths]
        if self.key is not None:
            out.append(f"k={self.key}")
        out += [f"a={a}" for a in self.attributes]
        return out


@dataclass(slots=True)
class SdpSession:
    """A whole session description (RFC 8866 §5)."""

    origin: SdpOrigin
    name: str = "-"
    version: int = 0
    info: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: SdpConnection | None = None
    bandwidths: list[str] = field(default_factory=list)
    timings: list[SdpTiming] = field(default_factory=list)
    zone: str | None = None
    key: str | None = None
    attributes: list[SdpAttribute] = field(default_factory=list)
    media: list[SdpMedia] = field(default_factory=list)

    @classmethod
    def parse(cls, data: str | bytes) -> SdpSession:
        """Parse a description; raise ``SdpRemoteError(400)`` on malformed input."""
        return _SdpParser(_split_lines(data)).run()

    def get_attribute(self, name: str) -> SdpAttribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def get_attributes(self, name: str) -> list[SdpAttribute]:
        return [a for a in self.attributes if a.name == name]

    def connection_for(self, media: SdpMedia) -> SdpConnection | None:
        """Media-level ``c=`` overrides the session-level one (RFC 8866 §5.7)."""
        return media.connections[0] if media.connections else self.connection

    def lines(self) -> list[str]:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        out += [f"i={self.info}"] if self.info is not None else []
        out += [f"u={self.uri}"] if self.uri is not None else []
        out += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        out += [f"c={self.connection}"] if self.connection is not None else []
        out += [f"b={b}" for b in self.bandwidths]
        for timing in self.timings:
            out += timing.lines()
        out += [f"z={self.zone}"] if self.zone is not None else []
        out += [f"k={self.key}"] if self.key is not None else []
        out += [f"a={a}" for a in self.attributes]
        for media in self.media:
            out += media.lines()
        return out

    def __str__(self) -> str:
        return "".join(line + "\r\n" for line in self.lines())

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


def _split_lines(data: str | bytes) -> list[tuple[str, str]]:
    """Split into ``(type, value)`` pairs; CRLF or LF; trailing blank lines are ignored."""
    if len(data) > MAX_SDP_SIZE:
        raise _bad(f"SDP larger than {MAX_SDP_SIZE} bytes")
    try:
        encoded = data if isinstance(data, bytes) else data.encode("utf-8")
        text = encoded.decode("utf-8")
    except UnicodeError as exc:
        raise _bad("SDP is not valid UTF-8 (RFC 8866 §5)") from exc
    if len(encoded) > MAX_SDP_SIZE:
        raise _bad(f"SDP larger than {MAX_SDP_SIZE} bytes")
    raw = text.split("\n")
    while raw and raw[-1] in ("", "\r"):  # trailing blank lines (sipp, some UAs)
        raw.pop()
    if len(raw) > _MAX_LINES:
        raise _bad("too many SDP lines")
    pairs = []
    for line in raw:
        line = line.removesuffix("\r")
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise _bad(f"malformed SDP line: {line[:40]!r}")
        if any(c in line for c in "\r\x00"):
            raise _bad("CR or NUL inside an SDP line")
        pairs.append((line[0], line[2:]))
    return pairs


_SESSION_ONCE = frozenset({"o", "s", "i", "u", "c", "z", "k"})


class _SdpParser:
    """One pass over the lines; RFC 8866 §5 order enforced leniently (see module doc)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.seen: set[str] = set()
        self.origin: SdpOrigin | None = None
        self.session = SdpSession(SdpOrigin("-", 0, 0, "0.0.0.0"))
        self.media: SdpMedia | None = None

    def run(self) -> SdpSession:
        if not self.pairs or self.pairs[0] != ("v", "0"):
            raise _bad("SDP must start with v=0")
        for kind, value in self.pairs[1:]:
            if kind == "m":
                self._start_media(value)
            elif self.media is None:
                self._session_line(kind, value)
            else:
                self._media_line(self.media, kind, value)
        if self.origin is None:
            raise _bad("SDP without o= line")
        self.session.origin = self.origin
        return self.session

    def _start_media(self, value: str) -> None:
        if len(self.session.media) >= MAX_MEDIA:
            raise _bad(f"more than {MAX_MEDIA} media descriptions")
        self.media = SdpMedia.parse_mline(value)
        self.session.media.append(self.media)

    def _session_line(self, kind: str, value: str) -> None:
        session = self.session
        if kind in _SESSION_ONCE:
            if kind in self.seen:
                raise _bad(f"repeated session-level {kind}= line")
            self.seen.add(kind)
        match kind:
            case "v":
                raise _bad("repeated v= line")
            case "o":
                self.origin = SdpOrigin.parse(value)
            case "s":
                session.name = value
            case "i":
                session.info = value
            case "u":
                session.uri = value
            case "e":
                session.emails.append(value)
            case "p":
                session.phones.append(value)
            case "c":
                session.connection = SdpConnection.parse(value)
            case "b":
                session.bandwidths.append(value)
            case "t":
                session.timings.append(SdpTiming.parse(value))
            case "r":
                if not session.timings:
                    raise _bad("r= without a preceding t=")
                session.timings[-1].repeats.append(value)
            case "z":
                session.zone = value
            case "k":
                session.key = value
            case "a":
                _add_attribute(session.attributes, value)
            case _:
                raise _bad(f"unknown SDP line type {kind}=")

    def _media_line(self, media: SdpMedia, kind: str, value: str) -> None:
        match kind:
            case "i" if media.title is None:
                media.title = value
            case "c":
                if len(media.connections) >= MAX_MEDIA:
                    raise _bad("too many c= lines in a media description")
                media.connections.append(SdpConnection.parse(value))
            case "b":
                media.bandwidths.append(value)
            case "k" if media.key is None:
                media.key = value
            case "a":
                _add_attribute(media.attributes, value)
            case _:
                raise _bad(f"{kind}= line not allowed (or repeated) in a media description")


def _add_attribute(attributes: list[SdpAttribute], value: str) -> None:
    if len(attributes) >= MAX_ATTRIBUTES:
        raise _bad(f"more than {MAX_ATTRIBUTES} attributes in one section")
    attributes.append(SdpAttribute.parse(value))
