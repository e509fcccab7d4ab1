"""SDP Security Descriptions (RFC 4568): suites, ``a=crypto`` and its key parameters.

``SDES_SUITES`` maps each suite name to its master key and master salt
lengths; the ``inline:`` key-salt of an ``a=crypto`` line is exactly
``key_length + salt_length`` bytes, base64 encoded (RFC 4568 §6.1). For the
AES-CM suites the salt is 112 bits (RFC 3711 §8.2, RFC 6188 §7); for the AEAD
suites it is 96 bits (RFC 7714 §12). ``generate_key_salt`` draws a fresh
master key and salt from the operating system's CSPRNG.

``SdpCrypto.parse(value)`` decodes ``<tag> <suite> <key-params> [<session-params>]``
(RFC 4568 §9.1); each ``SdesKeyParam`` has the decoded key-salt (length checked
for known suites), the lifetime (``2^n`` expanded) and the MKI value:length.
Malformed values raise ``SdpRemoteError(400)``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

from focus.sdp.session import SdpLocalError, SdpRemoteError, parse_number

__all__ = [
    "SDES_SUITES",
    "SdesKeyParam",
    "SdesSuite",
    "SdpCrypto",
    "decode_base64",
    "generate_key_salt",
    "suite_info",
]

_WSP_RE = re.compile(r"[ \t]+")
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_MAX_SESSION_PARAMS = 16
_MAX_KEY_PARAMS = 16
_MAX_LIFETIME_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class SdesSuite:
    """Key material sizes of one SRTP crypto-suite, in bytes."""

    name: str
    key_length: int
    salt_length: int
    auth_tag_length: int
    rfc: str

    @property
    def key_salt_length(self) -> int:
        return self.key_length + self.salt_length


# IANA "SDP Security Descriptions" crypto-suite registry (values per the RFCs cited).
SDES_SUITES: dict[str, SdesSuite] = {
    s.name: s
    for s in (
        SdesSuite("AES_CM_128_HMAC_SHA1_80", 16, 14, 10, "RFC 4568 §6.2.1"),
        SdesSuite("AES_CM_128_HMAC_SHA1_32", 16, 14, 4, "RFC 4568 §6.2.2"),
        SdesSuite("F8_128_HMAC_SHA1_80", 16, 14, 10, "RFC 4568 §6.2.3"),
        SdesSuite("AES_192_CM_HMAC_SHA1_80", 24, 14, 10, "RFC 6188 §3"),
        SdesSuite("AES_192_CM_HMAC_SHA1_32", 24, 14, 4, "RFC 6188 §3"),
        SdesSuite("AES_256_CM_HMAC_SHA1_80", 32, 14, 10, "RFC 6188 §3"),
        SdesSuite("AES_256_CM_HMAC_SHA1_32", 32, 14, 4, "RFC 6188 §3"),
        SdesSuite("AEAD_AES_128_GCM", 16, 12, 16, "RFC 7714 §14.2"),
        SdesSuite("AEAD_AES_256_GCM", 32, 12, 16, "RFC 7714 §14.2"),
    )
}


def suite_info(suite: str) -> SdesSuite | None:
    """Sizes of ``suite`` or None when we do not know it (names are case-sensitive)."""
    return SDES_SUITES.get(suite)


def generate_key_salt(suite: str) -> bytes:
    """Fresh random master key || master salt for ``suite`` (RFC 4568 §6.1).

    Raises ``SdpLocalError`` for an unknown suite.
    """
    info = SDES_SUITES.get(suite)
    if info is None:
        raise SdpLocalError(f"unknown SRTP crypto-suite {suite!r}")
    return secrets.token_bytes(info.key_salt_length)


def _bad(reason: str) -> SdpRemoteError:
    return SdpRemoteError(400, reason)


def decode_base64(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4); missing ``=`` padding is tolerated."""
    if not _B64_RE.fullmatch(text):
        raise _bad(f"invalid base64 in {what}")
    stripped = text.rstrip("=")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except binascii.Error as exc:
        raise _bad(f"invalid base64 in {what}") from exc


@dataclass(frozen=True, slots=True)
class SdesKeyParam:
    """One ``key-param`` of ``a=crypto`` (RFC 4568 §9.2, SRTP ``inline`` form).

    ``key_salt`` is master key || master salt. ``lifetime`` is in packets
    (``2^n`` is expanded). The MKI is ``mki_value`` encoded in ``mki_length``
    bytes (RFC 4568 §6.1). Other key methods keep their key-info in ``info``.
    """

    key_salt: bytes = field(repr=False)
    lifetime: int | None = None
    mki_value: int | None = None
    mki_length: int | None = None
    method: str = "inline"
    info: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, suite: str) -> SdesKeyParam:
        method, sep, info = text.partition(":")
        if not sep or not _NAME_RE.fullmatch(method) or not info:
            raise _bad("invalid crypto key-param")
        if method != "inline":
            return cls(b"", method=method, info=info)
        key_text, *extra = info.split("|")
        if len(extra) > 2:
            raise _bad("too many '|' fields in crypto key-info")
        key_salt = decode_base64(key_text, "crypto inline key")
        known = SDES_SUITES.get(suite)
        if known is not None and len(key_salt) != known.key_salt_length:
            raise _bad(f"{suite} key-salt must be {known.key_salt_length} bytes")
        if not 0 < len(key_salt) <= 64:
            raise _bad("crypto key-salt length out of range")
        lifetime, mki = _split_lifetime_mki(extra)
        mki_value, mki_length = mki if mki is not None else (None, None)
        return cls(key_salt, lifetime, mki_value, mki_length)

    @property
    def mki(self) -> bytes | None:
        """The MKI as it appears in SRTP packets (big-endian, ``mki_length`` bytes)."""
        if self.mki_value is None or self.mki_length is None:
            return None
        return self.mki_value.to_bytes(self.mki_length, "big")

    def __str__(self) -> str:
        if self.method != "inline":
            return f"{self.method}:{self.info}"
        text = "inline:" + base64.b64encode(self.key_salt).decode("ascii")
        if self.lifetime is not None:
            exponent = self.lifetime.bit_length() - 1
            power = self.lifetime == 1 << exponent and exponent > 0
            text += f"|2^{exponent}" if power else f"|{self.lifetime}"
        if self.mki_value is not None:
            text += f"|{self.mki_value}:{self.mki_length}"
        return text


def _split_lifetime_mki(fields: list[str]) -> tuple[int | None, tuple[int, int] | None]:
    """``["|" lifetime] ["|" mki]``: an MKI contains ':', a lifetime does not."""
    lifetime: int | None = None
    mki: tuple[int, int] | None = None
    for index, text in enumerate(fields):
        if ":" in text:
            if index != len(fields) - 1:
                raise _bad("crypto MKI must be the last key-info field")
            mki = _parse_mki(text)
        elif index == 0:
            lifetime = _parse_lifetime(text)
        else:
            raise _bad("invalid crypto key-info")
    return lifetime, mki


def _parse_lifetime(text: str) -> int:
    if text.startswith("2^"):
        exponent = parse_number(text[2:], "crypto lifetime exponent", max_digits=2)
        if exponent > _MAX_LIFETIME_EXPONENT:
            raise _bad("crypto lifetime exponent too large")
        return 1 << exponent
    value = parse_number(text, "crypto lifetime")
    if value == 0:
        raise _bad("crypto lifetime must not be zero")
    return value


def _parse_mki(text: str) -> tuple[int, int]:
    value_text, _, length_text = text.partition(":")
    value = parse_number(value_text, "crypto MKI value", max_digits=40)
    length = parse_number(length_text, "crypto MKI length", max_digits=3)
    if not 1 <= length <= 128:
        raise _bad("crypto MKI length must be 1..128 (RFC 4568 §9.2)")
    if value >= 1 << (8 * length):
        raise _bad("crypto MKI value does not fit its length")
    return value, length


@dataclass(frozen=True, slots=True)
class SdpCrypto:
    """``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]`` (RFC 4568 §9.1)."""

    tag: int
    suite: str
    keys: tuple[SdesKeyParam, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> SdpCrypto:
        parts = _WSP_RE.split(value.strip(" \t"))
        if len(parts) < 3 or len(parts) > 3 + _MAX_SESSION_PARAMS:
            # never quote the value: it holds the key, and errors reach the log
            most = 3 + _MAX_SESSION_PARAMS
            raise _bad(f"invalid crypto attribute: {len(parts)} fields, 3..{most} allowed")
        tag_text, suite, key_text, *params = parts
        tag = parse_number(tag_text, "crypto tag", max_digits=9)
        if not _NAME_RE.fullmatch(suite):
            raise _bad(f"invalid crypto-suite: {suite[:40]!r}")
        key_texts = key_text.split(";")
        if len(key_texts) > _MAX_KEY_PARAMS:
            raise _bad("too many crypto key-params")
        keys = tuple(SdesKeyParam.parse(k, suite) for k in key_texts)
        if not all(p.isprintable() and p.isascii() for p in params):
            raise _bad("invalid crypto session parameter")
        return cls(tag, suite, keys, tuple(params))

    def __str__(self) -> str:
        keys = ";".join(str(k) for k in self.keys)
        return " ".join([str(self.tag), self.suite, keys, *self.session_params])
