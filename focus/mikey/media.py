"""Crypto sessions ↔ SDP media lines, SRTP policies ↔ suites (RFC 3830 §6.10.1, RFC 6043 §6.1.1).

Sans-I/O helpers shared by the focus (responder and initiator) and ``mrf ue``.

**Which crypto session keys which m-line** is not written down anywhere for
MIKEY-TICKET in SDP (RFC 4567 only says a media-level ``a=key-mgmt`` overrides
the session-level one).  Project rule, applied to one TRANSFER_INIT and the
m-lines it covers (its own m-line, or every m-line without a media-level
``a=key-mgmt`` when it is session-level), in m-line order:

* every RTP/SAVP(F) audio line takes SRTP crypto sessions in CS ID order:
  two per line (the first keys Initiator→Responder, the second
  Responder→Initiator) or one per line (both directions, RFC 3711 §9.1 allows
  one master key for two SSRCs);
* every ``TCP/TLS/MSRP`` and ``TCP/TLS/BFCP`` line takes the next crypto
  session whose Prot type is TLS (decision (a)); its TEK is the TLS-PSK
  (TS 23.333 §6.2.19);
* other crypto sessions (PSK S/MIME, Application Specific) key no m-line.

**SRTP suite from an SP payload** (:func:`srtp_suite`): AES-CM (1) with a
16-byte key, HMAC-SHA-1 and a 10- or 4-byte tag is ``AES_CM_128_HMAC_SHA1_80``
/ ``_32`` (14-byte salt); AES-GCM (6, RFC 7714) with 16 or 32 bytes and a
12-byte salt is ``AEAD_AES_128_GCM`` / ``AEAD_AES_256_GCM``.  Absent parameters
take the RFC 3830 §6.10.1 defaults (AES-CM, 16, HMAC-SHA-1, tag 10, salt 14);
encryption or authentication switched off, a key derivation rate, FEC or an
SRTP prefix are refused (``INVALID_SPPAR``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode, MikeyProtType, MikeyProtTypes, MikeySrtpParam
from focus.mikey.message import MikeyGenericIdEntry
from focus.mikey.payload import MikeySecurityPolicy

__all__ = [
    "MikeyStreamKeys",
    "assign_crypto_sessions",
    "responder_sessions",
    "srtp_policy",
    "srtp_suite",
]

P = MikeySrtpParam
_AES_CM, _AES_GCM, _HMAC_SHA1 = 1, 6, 1
_SUITES: dict[tuple[int, int, int, int], str] = {
    (_AES_CM, 16, _HMAC_SHA1, 10): "AES_CM_128_HMAC_SHA1_80",
    (_AES_CM, 16, _HMAC_SHA1, 4): "AES_CM_128_HMAC_SHA1_32",
    (_AES_GCM, 16, 0, 16): "AEAD_AES_128_GCM",
    (_AES_GCM, 32, 0, 16): "AEAD_AES_256_GCM",
}
_SALT = {_AES_CM: 14, _AES_GCM: 12}
_REFUSED_OFF = (P.SRTP_ENCRYPTION, P.SRTCP_ENCRYPTION, P.SRTP_AUTHENTICATION)
_REFUSED_ON = (P.KEY_DERIVATION_RATE, P.SRTP_PREFIX_LENGTH)
TLS_PROTOS = frozenset({"TCP/TLS/MSRP", "TCP/TLS/BFCP"})
SRTP_PROTOS = frozenset({"RTP/SAVP", "RTP/SAVPF"})


def _number(policy: MikeySecurityPolicy, kind: int, default: int) -> int:
    value = policy.param(kind)
    return int.from_bytes(value) if value else default


def srtp_suite(policy: MikeySecurityPolicy) -> str:
    """The SDES-style suite name of an SRTP SP payload; ``MikeyRemoteError(INVALID_SPPAR)``."""
    if policy.prot_type != MikeyProtType.SRTP:
        raise MikeyRemoteError("not an SRTP policy", MikeyErrorCode.INVALID_SP)
    for kind in _REFUSED_OFF:
        if policy.param(kind) == b"\x00":
            raise MikeyRemoteError(
                f"SRTP policy switches {kind.name} off", MikeyErrorCode.INVALID_SPPAR
            )
    for kind in _REFUSED_ON:
        if _number(policy, kind, 0):
            raise MikeyRemoteError(
                f"SRTP policy {kind.name} not supported", MikeyErrorCode.INVALID_SPPAR
            )
    if policy.param(P.FEC_ORDER) not in (None, b"\x00"):
        raise MikeyRemoteError("SRTP FEC order not supported", MikeyErrorCode.INVALID_SPPAR)
    encr = _number(policy, P.ENCR_ALG, _AES_CM)
    key = _number(policy, P.SESSION_ENCR_KEY_LENGTH, 16)
    auth = _number(policy, P.AUTH_ALG, _HMAC_SHA1 if encr == _AES_CM else 0)
    tag_kind = P.AEAD_AUTH_TAG_LENGTH if encr == _AES_GCM else P.AUTH_TAG_LENGTH
    tag = _number(policy, tag_kind, 16 if encr == _AES_GCM else 10)
    salt = _number(policy, P.SESSION_SALT_KEY_LENGTH, 14)
    suite = _SUITES.get((encr, key, auth, tag))
    if suite is None or salt != _SALT[encr]:
        raise MikeyRemoteError("SRTP policy names no supported suite", MikeyErrorCode.INVALID_SPPAR)
    return suite


def srtp_policy(policy_no: int, suite: str) -> MikeySecurityPolicy:
    """The SP payload that :func:`srtp_suite` maps back to ``suite`` (every parameter explicit)."""
    for (encr, key, auth, tag), name in _SUITES.items():
        if name == suite:
            tag_kind = P.AEAD_AUTH_TAG_LENGTH if encr == _AES_GCM else P.AUTH_TAG_LENGTH
            params = [(P.ENCR_ALG, encr), (P.SESSION_ENCR_KEY_LENGTH, key), (P.AUTH_ALG, auth)]
            if encr == _AES_CM:
                params.append((P.SESSION_AUTH_KEY_LENGTH, 20))
            params += [(P.SESSION_SALT_KEY_LENGTH, _SALT[encr]), (tag_kind, tag)]
            encoded = tuple((int(kind), bytes([value])) for kind, value in params)
            return MikeySecurityPolicy(policy_no, MikeyProtType.SRTP, encoded)
    raise ValueError(f"no MIKEY SRTP policy for suite {suite!r}")


@dataclass(frozen=True, slots=True)
class MikeyStreamKeys:
    """Crypto sessions of one m-line: SRTP ``(sender→receiver...)`` CS IDs or one TLS CS ID."""

    index: int
    srtp: tuple[int, ...] = ()  # (I→R, R→I) or (both,)
    tls: int | None = None


def assign_crypto_sessions(
    entries: Sequence[MikeyGenericIdEntry],
    lines: Sequence[tuple[int, str]],
    prot_types: MikeyProtTypes,
) -> list[MikeyStreamKeys]:
    """The project rule of the module docstring; ``lines`` are ``(m-line index, proto)``."""
    srtp = [e.cs_id for e in entries if e.prot_type == MikeyProtType.SRTP]
    tls = [e.cs_id for e in entries if e.prot_type == prot_types.tls]
    audio = [index for index, proto in lines if proto in SRTP_PROTOS]
    streams = [index for index, proto in lines if proto in TLS_PROTOS]
    if srtp and len(srtp) not in (len(audio), 2 * len(audio)):
        raise MikeyRemoteError(
            f"{len(srtp)} SRTP crypto sessions for {len(audio)} audio line(s)",
            MikeyErrorCode.INVALID_SP,
        )
    if len(tls) > len(streams):
        raise MikeyRemoteError(
            "more TLS crypto sessions than TLS m-lines", MikeyErrorCode.INVALID_SP
        )
    per = 2 if srtp and len(srtp) == 2 * len(audio) else 1
    result = [MikeyStreamKeys(i, tuple(srtp[n * per : n * per + per])) for n, i in enumerate(audio)]
    result = result if srtp else []
    result += [MikeyStreamKeys(index, tls=cs) for index, cs in zip(streams, tls, strict=False)]
    return result


def responder_sessions(
    entries: Sequence[MikeyGenericIdEntry],
    offered: Sequence[MikeySecurityPolicy],
    prot_types: MikeyProtTypes,
    own_ssrc: dict[int, int],
    *,
    default_suite: str = "AES_CM_128_HMAC_SHA1_80",
) -> tuple[list[MikeyGenericIdEntry], list[MikeySecurityPolicy]]:
    """TRANSFER_RESP's GENERIC-ID map (#P = 1, Session Data, SPI; RFC 6043 §4.2.2) and our SPs.

    A crypto session that names policies keeps the first acceptable one (an SP
    of the TRANSFER_INIT may be referenced, RFC 6043 §6.1.1); one without gets
    an SP of ours.  ``own_ssrc`` gives the SSRC we send with, per CS ID; other
    SRTP sessions echo the Initiator's Session Data (four zero bytes if absent).
    """
    by_no = {p.policy_no: p for p in offered}
    ours: dict[int, MikeySecurityPolicy] = {}
    next_no = max(by_no, default=-1) + 1
    result: list[MikeyGenericIdEntry] = []
    for entry in entries:
        chosen = _acceptable(entry, by_no)
        if chosen is None:
            if entry.policy_nos:
                raise MikeyRemoteError("no acceptable security policy", MikeyErrorCode.INVALID_SP)
            if entry.prot_type not in ours:
                policy = (
                    srtp_policy(next_no, default_suite)
                    if entry.prot_type == MikeyProtType.SRTP
                    else MikeySecurityPolicy(next_no, entry.prot_type)
                )
                ours[entry.prot_type], next_no = policy, next_no + 1
            chosen = ours[entry.prot_type].policy_no
        data = entry.session_data
        if entry.prot_type == MikeyProtType.SRTP:
            ssrc = own_ssrc.get(entry.cs_id)
            data = ssrc.to_bytes(4) if ssrc is not None else (data or bytes(4))
        result.append(
            MikeyGenericIdEntry(
                entry.cs_id, entry.prot_type, (chosen,), data,
                entry.spi or secrets.token_bytes(4), entry.s_flag and len(data) == 10,
            )
        )  # fmt: skip
    return result, list(ours.values())


def _acceptable(entry: MikeyGenericIdEntry, by_no: dict[int, MikeySecurityPolicy]) -> int | None:
    for number in entry.policy_nos:
        policy = by_no.get(number)
        if policy is None or policy.prot_type != entry.prot_type:
            raise MikeyRemoteError(f"policy {number} missing or of another Prot type",
                                   MikeyErrorCode.INVALID_SP)  # fmt: skip
        if entry.prot_type != MikeyProtType.SRTP:
            return number
        try:
            srtp_suite(policy)
        except MikeyRemoteError:
            continue
        return number
    return None
