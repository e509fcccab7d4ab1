"""Typed codecs for the SDP attributes the focus uses.

Each codec is a small dataclass with ``parse(value)`` (the text after
``a=<name>:``) and ``str()``; malformed values raise ``SdpRemoteError(400)``.
The accessor functions at the end read them from a parsed section and apply
the media-level-overrides-session-level rule where the RFC defines one.

- ``a=rtpmap`` / ``a=fmtp`` (RFC 8866 §6.6, §6.15), ``a=ptime`` (§6.4),
  direction attributes (§6.7, RFC 3264 §5.1)
- ``a=crypto`` (RFC 4568 §9.1, §9.2): ``SdpCrypto`` and ``SdesKeyParam`` live in
  ``focus.sdp.sdes`` next to the suites table and are re-exported here
- ``a=fingerprint`` (RFC 8122 §5): MD2/MD5 parse but are never usable
- ``a=setup`` / ``a=connection`` (RFC 4145 §4, §5)
- ``a=key-mgmt`` (RFC 4567 §3): protocol id and the opaque decoded message
- ``a=rtcp`` (RFC 3605 §2.1), ``a=rtcp-mux`` (RFC 5761 §5.1.1)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from focus.sdp.sdes import SdesKeyParam, SdpCrypto, decode_base64
from focus.sdp.session import (
    SdpConnection,
    SdpMedia,
    SdpRemoteError,
    SdpSession,
    parse_number,
)

__all__ = [
    "FINGERPRINT_HASHES",
    "SdesKeyParam",
    "SdpCrypto",
    "SdpDirection",
    "SdpFingerprint",
    "SdpFmtp",
    "SdpKeyMgmt",
    "SdpRtcp",
    "SdpRtpmap",
    "SdpSetup",
    "SdpTcpConnection",
    "cryptos",
    "direction",
    "fingerprints",
    "fingerprints_match",
    "fmtps",
    "key_mgmts",
    "ptime",
    "rtcp",
    "rtcp_mux",
    "rtpmaps",
    "setup",
    "tcp_connection",
]

SdpSection = SdpSession | SdpMedia

_ENCODING_RE = re.compile(r"[A-Za-z0-9_.\-+]+")
_PTIME_RE = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


def _bad(reason: str) -> SdpRemoteError:
    return SdpRemoteError(400, reason)


@dataclass(frozen=True, slots=True)
class SdpRtpmap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str) -> SdpRtpmap:
        pt_text, _, spec = value.partition(" ")
        payload_type = parse_number(pt_text, "rtpmap payload type", max_digits=3)
        parts = spec.strip(" ").split("/")
        if payload_type > 127 or len(parts) not in (2, 3) or not _ENCODING_RE.fullmatch(parts[0]):
            raise _bad(f"invalid rtpmap: {value[:80]!r}")
        rate = parse_number(parts[1], "rtpmap clock rate", max_digits=9)
        channels = (
            parse_number(parts[2], "rtpmap channels", max_digits=3) if len(parts) == 3 else None
        )
        return cls(payload_type, parts[0], rate, channels)

    def matches(self, encoding: str, clock_rate: int, channels: int = 1) -> bool:
        """Encoding names compare case-insensitively (RFC 4855 §3)."""
        return (
            self.encoding.lower() == encoding.lower()
            and self.clock_rate == clock_rate
            and (self.channels or 1) == channels
        )

    def __str__(self) -> str:
        base = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        return base if self.channels is None else f"{base}/{self.channels}"


@dataclass(frozen=True, slots=True)
class SdpFmtp:
    """``a=fmtp:<format> <format specific parameters>`` (RFC 8866 §6.15)."""

    format: str
    params: str

    @classmethod
    def parse(cls, value: str) -> SdpFmtp:
        fmt, _, params = value.partition(" ")
        if not fmt:
            raise _bad("fmtp without a format")
        return cls(fmt, params)

    def __str__(self) -> str:
        return f"{self.format} {self.params}"


class SdpDirection(StrEnum):
    """Direction attributes (RFC 8866 §6.7; RFC 3264 §5.1); default sendrecv."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


class SdpSetup(StrEnum):
    """``a=setup`` (RFC 4145 §4)."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"


class SdpTcpConnection(StrEnum):
    """``a=connection`` (RFC 4145 §5)."""

    NEW = "new"
    EXISTING = "existing"


# RFC 8122 §5 hash functions with their digest sizes; md2/md5 MUST NOT be used.
_HASH_SIZES = {
    "md2": 16,
    "md5": 16,
    "sha-1": 20,
    "sha-224": 28,
    "sha-256": 32,
    "sha-384": 48,
    "sha-512": 64,
}
# The hashes the one fingerprint rule (``fingerprints_match``) counts: SHA-256 or stronger.
FINGERPRINT_HASHES = frozenset({"sha-256", "sha-384", "sha-512"})
_HEX_PAIR_RE = re.compile(r"[0-9A-Fa-f]{2}")


@dataclass(frozen=True, slots=True)
class SdpFingerprint:
    """``a=fingerprint:<hash-func> <XX:XX:...>`` (RFC 8122 §5), over the DER certificate."""

    hash_func: str
    value: bytes

    @classmethod
    def parse(cls, value: str) -> SdpFingerprint:
        hash_text, _, hex_text = value.strip(" ").partition(" ")
        hash_func = hash_text.lower()
        pairs = hex_text.strip(" ").split(":")
        if not _ENCODING_RE.fullmatch(hash_func) or len(pairs) > 64:
            raise _bad("invalid fingerprint attribute")
        if not all(_HEX_PAIR_RE.fullmatch(p) for p in pairs):
            raise _bad("fingerprint must be colon-separated hex bytes (RFC 8122 §5)")
        digest = bytes.fromhex("".join(pairs))
        expected = _HASH_SIZES.get(hash_func)
        if expected is not None and len(digest) != expected:
            raise _bad(f"{hash_func} fingerprint must be {expected} bytes")
        return cls(hash_func, digest)

    @classmethod
    def from_certificate(cls, der: bytes, hash_func: str = "sha-256") -> SdpFingerprint:
        return cls(hash_func, hashlib.new(hash_func.replace("-", ""), der).digest())

    @property
    def usable(self) -> bool:
        """True for the hashes :func:`fingerprints_match` counts (SHA-256 or stronger);
        False for md2/md5 (RFC 8122 §5: MUST NOT be used), SHA-1, SHA-224 and unknown ones."""
        return self.hash_func in FINGERPRINT_HASHES

    def __str__(self) -> str:
        return f"{self.hash_func.upper()} " + ":".join(f"{b:02X}" for b in self.value)


def fingerprints_match(der: bytes, offered: Iterable[SdpFingerprint]) -> bool:
    """The one certificate-to-SDP rule of MSRP, BFCP and DTLS-SRTP (RFC 8122 §5).

    Of the peer's ``a=fingerprint`` lines only those of a hash we count are
    used (SHA-256, SHA-384, SHA-512: :attr:`SdpFingerprint.usable`); weaker or
    unknown ones are ignored.  With none left nothing matches.  Otherwise,
    **for every counted hash the peer offered**, the certificate's digest must
    equal one of the values given with that hash (several values of one hash:
    several certificates, RFC 8122 §5).  This is stricter than §5's minimum
    (only the most preferred hash's set): a peer that lists a wrong SHA-256
    next to a right SHA-512 is refused.  Every digest is compared in constant
    time (``hmac.compare_digest``) and every value is compared, match or not.
    """
    by_hash: dict[str, list[bytes]] = {}
    for fingerprint in offered:
        if fingerprint.usable:
            by_hash.setdefault(fingerprint.hash_func, []).append(fingerprint.value)
    if not by_hash:
        return False
    verdict = True
    for hash_func, values in by_hash.items():
        digest = hashlib.new(hash_func.replace("-", ""), der).digest()
        hits = [hmac.compare_digest(digest, value) for value in values]
        verdict &= any(hits)
    return verdict


@dataclass(frozen=True, slots=True)
class SdpKeyMgmt:
    """``a=key-mgmt:<prtcl-id> <base64 data>`` (RFC 4567 §3.1); data kept opaque."""

    protocol: str
    data: bytes = field(repr=False)

    @classmethod
    def parse(cls, value: str) -> SdpKeyMgmt:
        text = value[1:] if value.startswith(" ") else value
        protocol, sep, data = text.partition(" ")
        if not sep or not protocol.isalnum() or not protocol.isascii():
            raise _bad("invalid key-mgmt attribute")
        return cls(protocol, decode_base64(data, "key-mgmt data"))

    def __str__(self) -> str:
        return f"{self.protocol} {base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class SdpRtcp:
    """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""

    port: int
    connection: SdpConnection | None = None

    @classmethod
    def parse(cls, value: str) -> SdpRtcp:
        port_text, _, rest = value.partition(" ")
        port = parse_number(port_text, "rtcp port", max_digits=5)
        if port > 65535:
            raise _bad("rtcp port out of range")
        return cls(port, SdpConnection.parse(rest) if rest else None)

    def __str__(self) -> str:
        return str(self.port) if self.connection is None else f"{self.port} {self.connection}"


def _values(section: SdpSection, name: str) -> list[str]:
    return [a.value or "" for a in section.attributes if a.name == name]


def _single(section: SdpSection, name: str) -> str | None:
    values = _values(section, name)
    if len(values) > 1:
        raise _bad(f"repeated a={name}")
    return values[0] if values else None


def _overriding(media: SdpMedia, session: SdpSession | None, name: str) -> str | None:
    """The media-level value of a single-valued attribute, else the session-level one."""
    value = _single(media, name)
    if value is None and session is not None:
        value = _single(session, name)
    return value


def rtpmaps(media: SdpMedia) -> dict[int, SdpRtpmap]:
    """All ``a=rtpmap`` of a media section by payload type; duplicates are an error."""
    result: dict[int, SdpRtpmap] = {}
    for value in _values(media, "rtpmap"):
        rtpmap = SdpRtpmap.parse(value)
        if rtpmap.payload_type in result:
            raise _bad(f"duplicate rtpmap for payload type {rtpmap.payload_type}")
        result[rtpmap.payload_type] = rtpmap
    return result


def fmtps(media: SdpMedia) -> dict[str, SdpFmtp]:
    """``a=fmtp`` by format; the first one wins if a peer repeats a format."""
    result: dict[str, SdpFmtp] = {}
    for value in _values(media, "fmtp"):
        fmtp = SdpFmtp.parse(value)
        result.setdefault(fmtp.format, fmtp)
    return result


def direction(media: SdpMedia, session: SdpSession | None = None) -> SdpDirection:
    """Media-level direction, else session-level, else sendrecv (RFC 8866 §6.7)."""
    for section in (media, session):
        if section is None:
            continue
        found = [a.name for a in section.attributes if a.name in SdpDirection.__members__.values()]
        if len(found) > 1:
            raise _bad("more than one direction attribute in a section")
        if found:
            return SdpDirection(found[0])
    return SdpDirection.SENDRECV


def cryptos(media: SdpMedia) -> list[SdpCrypto]:
    """All ``a=crypto`` lines in offer (= preference) order; tags must be unique (RFC 4568 §5.1)."""
    result = [SdpCrypto.parse(v) for v in _values(media, "crypto")]
    if len({c.tag for c in result}) != len(result):
        raise _bad("duplicate crypto tag")
    return result


def fingerprints(media: SdpMedia, session: SdpSession | None = None) -> list[SdpFingerprint]:
    """Media-level fingerprints, else the session-level ones (RFC 8122 §5)."""
    values = _values(media, "fingerprint") or (_values(session, "fingerprint") if session else [])
    return [SdpFingerprint.parse(v) for v in values]


def setup(media: SdpMedia, session: SdpSession | None = None) -> SdpSetup | None:
    """``a=setup`` (media-level, else session-level); None when absent (RFC 4145 §4)."""
    value = _overriding(media, session, "setup")
    if value is None:
        return None
    try:
        return SdpSetup(value)
    except ValueError as exc:
        raise _bad(f"invalid a=setup value {value[:20]!r}") from exc


def tcp_connection(media: SdpMedia, session: SdpSession | None = None) -> SdpTcpConnection | None:
    """``a=connection`` (RFC 4145 §5); None when absent."""
    value = _overriding(media, session, "connection")
    if value is None:
        return None
    try:
        return SdpTcpConnection(value)
    except ValueError as exc:
        raise _bad(f"invalid a=connection value {value[:20]!r}") from exc


def key_mgmts(media: SdpMedia, session: SdpSession | None = None) -> list[SdpKeyMgmt]:
    """Media-level ``a=key-mgmt`` lines override session-level ones (RFC 4567 §3)."""
    values = _values(media, "key-mgmt") or (_values(session, "key-mgmt") if session else [])
    return [SdpKeyMgmt.parse(v) for v in values]


def ptime(media: SdpMedia) -> float | None:
    """``a=ptime`` in milliseconds (RFC 8866 §6.4)."""
    value = _single(media, "ptime")
    if value is None:
        return None
    if not _PTIME_RE.fullmatch(value) or float(value) == 0:
        raise _bad(f"invalid a=ptime {value[:20]!r}")
    return float(value)


def rtcp(media: SdpMedia) -> SdpRtcp | None:
    value = _single(media, "rtcp")
    return None if value is None else SdpRtcp.parse(value)


def rtcp_mux(media: SdpMedia) -> bool:
    return media.get_attribute("rtcp-mux") is not None
