"""The MIKEY Base Ticket (RFC 6043 Appendix A): Ticket Data only the KMS can open.

Ticket Data = ``THDR, T, RAND, KEMAC, [IDRpsk], V``.  THDR is
``Next Payload (8) | THDR Data length (16) | THDR Data``; it has no payload
type code, so it is implicitly first (like HDR).  Our THDR Data is the 4-byte
identifier of the KMS ticket secret that sealed the ticket (implementation
specific, App. A).

* TPK (App. A.2.1): encr/salt/auth keys = PRF(KMS secret, const || 0xFF ||
  0xFFFFFFFF || 0x05 || len(RAND) || RAND), PRF from the TP.
* KEMAC: ``E(encr_key, MPK || {TEK|TGK|GTGK})``, NULL MAC; the AES-CM IV uses
  CSB ID 0xFFFFFFFF and the ticket's T.
* V: auth key from TPK; the MAC covers the TICKET payload except its Next
  Payload octet, Initiator Data length, Initiator Data and the MAC itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from focus.mikey import kdf
from focus.mikey.buffer import MikeyBuffer, MikeyRemoteError, push_uint8, push_vector16
from focus.mikey.constants import (
    MAC_LENGTHS,
    MikeyEncrAlg,
    MikeyErrorCode,
    MikeyIdRole,
    MikeyKeyType,
    MikeyMacAlg,
    MikeyTicketType,
    MikeyTsType,
)
from focus.mikey.keydata import MikeyKeyData, pull_key_data_list, push_key_data_list
from focus.mikey.payload import (
    MikeyIdRole as MikeyIdRolePayload,
)
from focus.mikey.payload import (
    MikeyKemac,
    MikeyRand,
    MikeyTimestamp,
    MikeyVerification,
    first_type,
    pull_payloads,
    push_payloads,
)
from focus.mikey.tp import MikeyTicket, MikeyTicketPolicy

ENCR_ALG = MikeyEncrAlg.AES_CM_128
MAC_ALG = MikeyMacAlg.HMAC_SHA_256_256


@dataclass(frozen=True, slots=True)
class MikeyBaseTicketContent:
    """What the sealed Ticket Data holds."""

    key_id: int
    timestamp: int  # NTP-UTC
    rand: bytes
    mpk: bytes
    keys: tuple[MikeyKeyData, ...]
    psk_identity: bytes | None = None


def _tpk(prf: int, secret: bytes, rand: bytes) -> kdf.MikeyMessageKeys:
    return kdf.ticket_protection_keys(prf, secret, rand, ENCR_ALG, MAC_ALG)


def _encode_ticket_data(key_id: int, payloads: tuple) -> bytes:  # type: ignore[type-arg]
    out = bytearray()
    push_uint8(out, first_type(payloads))
    push_vector16(out, key_id.to_bytes(4))
    push_payloads(out, payloads)
    return bytes(out)


def seal_ticket(
    policy: MikeyTicketPolicy, content: MikeyBaseTicketContent, secret: bytes
) -> MikeyTicket:
    """The TICKET payload carrying ``policy`` (the granted TP) and sealed ``content``."""
    if policy.ticket_type != MikeyTicketType.MIKEY_BASE:
        raise MikeyRemoteError(
            "only the MIKEY Base Ticket is supported", MikeyErrorCode.INVALID_TICKET
        )
    tpk = _tpk(policy.prf, secret, content.rand)
    plain = push_key_data_list((MikeyKeyData(MikeyKeyType.MPK, content.mpk), *content.keys))
    encrypted = kdf.kemac_crypt(ENCR_ALG, tpk, kdf.ALL_CS, content.timestamp, plain, encrypt=True)
    payloads: list = [  # type: ignore[type-arg]
        MikeyTimestamp(MikeyTsType.NTP_UTC, content.timestamp),
        MikeyRand(content.rand),
        MikeyKemac(ENCR_ALG, encrypted),
    ]
    if content.psk_identity is not None:
        payloads.append(MikeyIdRolePayload(MikeyIdRole.IDRPSK, 2, content.psk_identity))
    placeholder = MikeyVerification(MAC_ALG, bytes(MAC_LENGTHS[MAC_ALG]))
    data = _encode_ticket_data(content.key_id, (*payloads, placeholder))
    ticket = MikeyTicket(
        policy.ticket_type, policy.subtype, policy.version, policy.prf, policy.flags,
        policy.payloads, data,
    )  # fmt: skip
    mac = kdf.mac(MAC_ALG, tpk.auth_key, _mac_input(ticket))
    return ticket.with_ticket_data(data[: len(data) - len(mac)] + mac)


def _mac_input(ticket: MikeyTicket) -> bytes:
    out = bytearray()
    ticket.push_without_initiator_data(out)
    return bytes(out[: len(out) - MAC_LENGTHS[MAC_ALG]])


def open_ticket(ticket: MikeyTicket, secrets: Mapping[int, bytes]) -> MikeyBaseTicketContent:
    """Verify and decrypt a Base Ticket sealed with one of ``secrets`` (by key id)."""
    if ticket.ticket_type != MikeyTicketType.MIKEY_BASE or ticket.subtype != 1:
        raise MikeyRemoteError("not a MIKEY Base Ticket", MikeyErrorCode.INVALID_TICKET)
    buf = MikeyBuffer(ticket.ticket_data)
    following = buf.pull_uint8()
    thdr = buf.pull_vector16()
    payloads = pull_payloads(buf, following)
    if len(thdr) != 4 or not buf.eof() or len(payloads) < 4:
        raise MikeyRemoteError("malformed Base Ticket data", MikeyErrorCode.INVALID_TICKET)
    key_id = int.from_bytes(thdr)
    secret = secrets.get(key_id)
    timestamp, rand, kemac, verification = payloads[0], payloads[1], payloads[2], payloads[-1]
    if not (
        isinstance(timestamp, MikeyTimestamp)
        and isinstance(rand, MikeyRand)
        and isinstance(kemac, MikeyKemac)
        and isinstance(verification, MikeyVerification)
        and verification.mac_alg == MAC_ALG
        and secret is not None
    ):
        raise MikeyRemoteError("Base Ticket not issued by this KMS", MikeyErrorCode.INVALID_TICKET)
    tpk = _tpk(ticket.prf, secret, rand.data)
    kdf.verify_mac(MAC_ALG, tpk.auth_key, _mac_input(ticket), verification.mac)
    plain = kdf.kemac_crypt(
        kemac.encr_alg, tpk, kdf.ALL_CS, timestamp.value, kemac.encr_data, encrypt=False
    )
    keys = pull_key_data_list(plain)
    if not keys or keys[0].key_type != MikeyKeyType.MPK:
        raise MikeyRemoteError("Base Ticket without MPK", MikeyErrorCode.INVALID_TICKET)
    psk = next((p for p in payloads if isinstance(p, MikeyIdRolePayload)), None)
    return MikeyBaseTicketContent(
        key_id, timestamp.value, rand.data, keys[0].key, keys[1:], psk.data if psk else None
    )
