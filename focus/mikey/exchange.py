"""Shared pieces of the MIKEY-TICKET exchanges (RFC 6043 §4, §5): profile, MACs, errors.

* :class:`MikeyProfile` - the algorithms we send (PRF-HMAC-SHA-256,
  AES-CM-128, HMAC-SHA-256-256), the timestamp window and RAND length.
* :func:`sign` / :func:`verify` - the V payload MAC of RFC 6043 §5.5 Table 5.2:
  the message without the MAC, then the extra input (identities or the
  request message).
* :func:`check_fresh` - timestamp window and replay cache (RFC 3830 §5.4).
* :func:`error_message` / :func:`raise_if_error` - Error messages (RFC 6043 §5.4).
* :func:`crypto_session_keys` - TEK and salt per crypto session (RFC 6043 §5.1.3).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from focus.mikey import kdf
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import (
    MAC_LENGTHS,
    MikeyDataType,
    MikeyEncrAlg,
    MikeyErrorCode,
    MikeyIdRole,
    MikeyMacAlg,
    MikeyMapType,
    MikeyPrfFunc,
    MikeyProtType,
    MikeyProtTypes,
    MikeySrtpParam,
    MikeyTsType,
)
from focus.mikey.message import MikeyHeader, MikeyMessage
from focus.mikey.payload import (
    MikeyErr,
    MikeyPayload,
    MikeySecurityPolicy,
    MikeyTimestamp,
    MikeyVerification,
)
from focus.mikey.payload import (
    MikeyIdRole as MikeyIdRolePayload,
)
from focus.mikey.timestamp import MikeyReplayCache, check_window, ntp_from_unix

MIKEY_CONTENT_TYPE = "application/mikey"  # IANA (RFC 3830), decision (c)


@dataclass(frozen=True, slots=True)
class MikeyProfile:
    """Algorithms and limits of our MIKEY-TICKET messages."""

    prf: int = MikeyPrfFunc.HMAC_SHA_256
    encr_alg: int = MikeyEncrAlg.AES_CM_128
    mac_alg: int = MikeyMacAlg.HMAC_SHA_256_256
    window: float = 300.0  # seconds a timestamp may differ from our clock
    rand_length: int = 16  # RFC 3830 §6.11: at least 128 bits
    tls_tek_length: int = 16  # TEK length for Prot type TLS: UNCONFIRMED, our choice
    smime_tek_length: int = 16  # AES-WRAP-128 KEK (decision (b))
    prot_types: MikeyProtTypes = field(default_factory=MikeyProtTypes)


DEFAULT_PROFILE = MikeyProfile()


def new_rand(profile: MikeyProfile) -> bytes:
    return secrets.token_bytes(profile.rand_length)


def new_csb_id() -> int:
    return secrets.randbits(32)


def timestamp(now: float) -> MikeyTimestamp:
    return MikeyTimestamp(MikeyTsType.NTP_UTC, ntp_from_unix(now))


def placeholder_v(profile: MikeyProfile) -> MikeyVerification:
    return MikeyVerification(profile.mac_alg, bytes(MAC_LENGTHS[MikeyMacAlg(profile.mac_alg)]))


def sign(
    message: MikeyMessage,
    auth_key: bytes,
    extra: bytes = b"",
    *,
    exclude_initiator_data: bool = False,
) -> MikeyMessage:
    """Fill in the final V payload's MAC over ``message-without-MAC || extra``."""
    data = message.signed_part(exclude_initiator_data=exclude_initiator_data) + extra
    return message.with_mac(kdf.mac(message.verification().mac_alg, auth_key, data))


def verify(
    message: MikeyMessage,
    auth_key: bytes,
    extra: bytes = b"",
    *,
    exclude_initiator_data: bool = False,
) -> None:
    """Check the final V payload's MAC (constant time); ``MikeyRemoteError(INVALID_MAC)``."""
    v = message.verification()
    data = message.signed_part(exclude_initiator_data=exclude_initiator_data) + extra
    kdf.verify_mac(v.mac_alg, auth_key, data, v.mac)


def identity(message: MikeyMessage, role: int) -> bytes:
    """ID Data of the IDR payload with ``role`` (empty when absent, RFC 6043 §5.5)."""
    payload = message.find(MikeyIdRolePayload, role)
    return payload.data if payload else b""


def require_identity(message: MikeyMessage, role: int) -> bytes:
    data = identity(message, role)
    if not data:
        raise MikeyRemoteError(f"missing IDR payload with role {role}", MikeyErrorCode.INVALID_ID)
    return data


def require_timestamp(message: MikeyMessage) -> MikeyTimestamp:
    ts = message.find(MikeyTimestamp)
    if ts is None:
        raise MikeyRemoteError("missing T payload", MikeyErrorCode.INVALID_TS)
    return ts


def check_fresh(
    message: MikeyMessage,
    now: float,
    window: float,
    cache: MikeyReplayCache | None,
    *parts: bytes,
) -> MikeyTimestamp:
    """T within ``window`` of ``now``; message not in ``cache`` (keyed by ``parts``)."""
    ts = require_timestamp(message)
    check_window(ts.ts_type, ts.value, now, window)
    if cache is not None:
        cache.check_and_add(
            now, bytes([message.data_type]), message.header.csb_id.to_bytes(4),
            ts.value.to_bytes(8), *parts,
        )  # fmt: skip
    return ts


def expect_type(message: MikeyMessage, *types: int) -> None:
    if message.data_type not in types:
        raise MikeyRemoteError(
            f"unexpected MIKEY data type {message.data_type}", MikeyErrorCode.INVALID_DT
        )


def error_message(
    request: MikeyHeader | None,
    code: int,
    now: float,
    *,
    auth_key: bytes | None = None,
    profile: MikeyProfile = DEFAULT_PROFILE,
) -> MikeyMessage:
    """Error message ``HDR, T, ERR, [V]`` (RFC 6043 §5.4): HDR fields from the request."""
    header = MikeyHeader(
        MikeyDataType.ERROR,
        request.csb_id if request else 0,
        request.prf if request else profile.prf,
        map_type=MikeyMapType.EMPTY,
    )
    payloads: tuple[MikeyPayload, ...] = (timestamp(now), MikeyErr(code))
    if auth_key is None:
        return MikeyMessage(header, payloads)
    message = MikeyMessage(header, (*payloads, placeholder_v(profile)))
    return sign(message, auth_key)


def raise_if_error(message: MikeyMessage) -> None:
    """Turn a received Error message into ``MikeyRemoteError`` with its ERR code."""
    if message.data_type == MikeyDataType.ERROR:
        err = message.find(MikeyErr)
        number = err.code if err else MikeyErrorCode.UNSPECIFIED
        known = number in MikeyErrorCode._value2member_map_
        raise MikeyRemoteError(
            f"peer answered MIKEY error {number}",
            MikeyErrorCode(number) if known else MikeyErrorCode.UNSPECIFIED,
        )


def message_keys(
    profile: MikeyProfile,
    prf: int,
    inkey: bytes,
    csb_id: int,
    *,
    response: bool,
    rand_i: bytes | None,
    rand_r: bytes | None,
) -> kdf.MikeyMessageKeys:
    return kdf.ticket_message_keys(
        prf, inkey, csb_id, response=response, rand_i=rand_i, rand_r=rand_r,
        encr_alg=profile.encr_alg, mac_alg=profile.mac_alg,
    )  # fmt: skip


def tek_lengths(
    profile: MikeyProfile, prot_type: int, policy: MikeySecurityPolicy | None
) -> tuple[int, int]:
    """``(TEK length, salt length)`` for a crypto session (RFC 3830 §6.10.1 defaults)."""
    if prot_type == MikeyProtType.SRTP:
        key = policy.param(MikeySrtpParam.SESSION_ENCR_KEY_LENGTH) if policy else None
        salt = policy.param(MikeySrtpParam.SESSION_SALT_KEY_LENGTH) if policy else None
        return (key[0] if key else 16), (salt[0] if salt else 14)
    if prot_type == profile.prot_types.tls:
        return profile.tls_tek_length, 0
    if prot_type == profile.prot_types.psk_smime:
        return profile.smime_tek_length, 0
    return 16, 0


def crypto_session_keys(
    message: MikeyMessage,
    tgk: bytes,
    profile: MikeyProfile,
    *,
    rand_i: bytes | None,
    rand_r: bytes | None,
    policies: list[MikeySecurityPolicy],
) -> dict[int, tuple[int, bytes, bytes]]:
    """``{cs_id: (prot_type, TEK, salt)}`` for every GENERIC-ID crypto session of ``message``."""
    by_no = {p.policy_no: p for p in policies}
    result: dict[int, tuple[int, bytes, bytes]] = {}
    for entry in message.header.cs_map:
        cs_id = getattr(entry, "cs_id", None)
        if cs_id is None:
            raise MikeyRemoteError(
                "crypto sessions need the GENERIC-ID map", MikeyErrorCode.INVALID_SP
            )
        policy = by_no.get(entry.policy_nos[0]) if entry.policy_nos else None  # type: ignore[union-attr]
        length, salt_length = tek_lengths(profile, entry.prot_type, policy)  # type: ignore[union-attr]
        tek, salt = kdf.ticket_tek(
            message.header.prf, tgk, cs_id, rand_i=rand_i, rand_r=rand_r,
            length=length, salt_length=salt_length,
        )  # fmt: skip
        result[cs_id] = (entry.prot_type, tek, salt)  # type: ignore[union-attr]
    return result


ROLE_I, ROLE_R, ROLE_KMS = MikeyIdRole.IDRI, MikeyIdRole.IDRR, MikeyIdRole.IDRKMS
