"""The MIKEY-TICKET Initiator (RFC 6043 §4.2.1, §4.2.2): Ticket Request and Ticket Transfer.

::

    request = MikeyTicketRequest.build(identity, kms_key, responders=[b"sip:bob@x"], now=t)
    http POST bytes(request.message) -> reply
    granted = request.process_response(reply, now=t)          # MikeyGrantedTicket
    transfer = MikeyTransferInitiator.build(granted, b"sip:bob@x", sessions, policies, now=t)
    SDP a=key-mgmt:mikey base64(bytes(transfer.message)) ... answer ->
    keys = transfer.process_response(transfer_resp_bytes, now=t)   # {cs_id: (prot, TEK, salt)}

REQUEST_INIT_PSK = ``HDR, T, RANDRi, IDRi, [IDRkms], TP, V`` (V flag 1,
§4.2.1.1); REQUEST_RESP = ``HDR, T, IDRkms, TICKET, KEMAC, V`` with
``KEMAC = E(encr_key, MPKi || [MPKr] || TGK)``.  TRANSFER_INIT = ``HDR, T,
RANDRi, IDRi, IDRr, {SP}, TICKET, V`` keyed by MPKi.  With key forking (I
flag) the Responder's MAC key is MPKr' and the TGK is TGK' (§5.1.1), computed
from the IDRr and RANDRkms that TRANSFER_RESP echoes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from focus.mikey import kdf
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import (
    MikeyDataType,
    MikeyErrorCode,
    MikeyIdType,
    MikeyKeyType,
    MikeyMapType,
    MikeyRandRole,
    MikeyTicketFlag,
    MikeyTicketType,
)
from focus.mikey.exchange import (
    DEFAULT_PROFILE,
    ROLE_I,
    ROLE_KMS,
    ROLE_R,
    MikeyProfile,
    check_fresh,
    crypto_session_keys,
    expect_type,
    identity,
    message_keys,
    new_csb_id,
    new_rand,
    placeholder_v,
    raise_if_error,
    require_identity,
    require_timestamp,
    sign,
    timestamp,
    verify,
)
from focus.mikey.keydata import pull_key_data_list
from focus.mikey.message import MikeyGenericIdEntry, MikeyHeader, MikeyMessage
from focus.mikey.payload import (
    MikeyIdRole,
    MikeyKemac,
    MikeyPayload,
    MikeySecurityPolicy,
    MikeyTimestampRole,
)
from focus.mikey.payload import (
    MikeyRandRole as MikeyRandRolePayload,
)
from focus.mikey.timestamp import timestamp_64
from focus.mikey.tp import MikeyTicket, MikeyTicketPolicy

REQUEST_FLAGS = MikeyTicketFlag.N | MikeyTicketFlag.O


def idr(role: int, data: bytes) -> MikeyIdRole:
    return MikeyIdRole(role, MikeyIdType.URI, data)


@dataclass(frozen=True, slots=True)
class MikeyGrantedTicket:
    """A ticket from REQUEST_RESP with the keys the KMS gave the Initiator."""

    ticket: MikeyTicket
    identity: bytes
    mpk_i: bytes
    mpk_r: bytes | None
    tgk: bytes

    @property
    def forking(self) -> bool:
        return self.ticket.has(MikeyTicketFlag.I)


@dataclass(slots=True)
class MikeyTicketRequest:
    """REQUEST_INIT_PSK sent to the KMS and what is needed to check its answer."""

    message: MikeyMessage
    identity: bytes
    kms_key: bytes
    profile: MikeyProfile

    @classmethod
    def build(
        cls,
        identity_i: bytes,
        kms_key: bytes,
        *,
        responders: list[bytes],
        now: float,
        validity: tuple[int, int] | None = None,
        kms_identity: bytes | None = None,
        profile: MikeyProfile = DEFAULT_PROFILE,
        csb_id: int | None = None,
        rand: bytes | None = None,
    ) -> MikeyTicketRequest:
        """``responders``: wanted IDRr (``b"?@?"`` = anyone); ``validity``: NTP TRs, TRe."""
        tp_payloads: list[MikeyPayload] = []
        if validity is not None:
            tp_payloads += [
                MikeyTimestampRole(2, 0, validity[0]),
                MikeyTimestampRole(3, 0, validity[1]),
            ]
        tp_payloads += [idr(ROLE_R, r) for r in responders]
        policy = MikeyTicketPolicy(
            MikeyTicketType.MIKEY_BASE, 1, 1, profile.prf, REQUEST_FLAGS, tuple(tp_payloads)
        )
        payloads: list[MikeyPayload] = [
            timestamp(now),
            MikeyRandRolePayload(MikeyRandRole.RANDRI, rand or new_rand(profile)),
            idr(ROLE_I, identity_i),
        ]
        if kms_identity:
            payloads.append(idr(ROLE_KMS, kms_identity))
        payloads += [policy, placeholder_v(profile)]
        header = MikeyHeader(
            MikeyDataType.REQUEST_INIT_PSK, new_csb_id() if csb_id is None else csb_id,
            profile.prf, True, MikeyMapType.EMPTY,
        )  # fmt: skip
        message = MikeyMessage(header, tuple(payloads))
        keys = message_keys(
            profile, profile.prf, kms_key, header.csb_id, response=False,
            rand_i=_rand(message, MikeyRandRole.RANDRI), rand_r=None,
        )  # fmt: skip
        signed = sign(message, keys.auth_key, identity_i + (kms_identity or b""))
        return cls(signed, identity_i, kms_key, profile)

    def process_response(self, data: bytes, *, now: float) -> MikeyGrantedTicket:
        """Check REQUEST_RESP (MAC, timestamp, CSB ID) and decrypt the KEMAC."""
        reply = MikeyMessage.parse(data)
        raise_if_error(reply)
        expect_type(reply, MikeyDataType.REQUEST_RESP)
        if reply.header.csb_id != self.message.header.csb_id:
            raise MikeyRemoteError("REQUEST_RESP for another CSB ID", MikeyErrorCode.UNSPECIFIED)
        rand_i = _rand(self.message, MikeyRandRole.RANDRI)
        keys = message_keys(
            self.profile, reply.header.prf, self.kms_key, reply.header.csb_id,
            response=True, rand_i=rand_i, rand_r=None,
        )  # fmt: skip
        verify(reply, keys.auth_key, bytes(self.message))
        ts = check_fresh(reply, now, self.profile.window, None)
        ticket, kemac = reply.find(MikeyTicket), reply.find(MikeyKemac)
        if ticket is None or kemac is None:
            raise MikeyRemoteError(
                "REQUEST_RESP without TICKET or KEMAC", MikeyErrorCode.INVALID_TICKET
            )
        plain = kdf.kemac_crypt(
            kemac.encr_alg, keys, reply.header.csb_id, timestamp_64(ts.ts_type, ts.value),
            kemac.encr_data, encrypt=False,
        )  # fmt: skip
        return _granted(ticket, self.identity, pull_key_data_list(plain))


def _granted(ticket: MikeyTicket, identity_i: bytes, keys: tuple) -> MikeyGrantedTicket:  # type: ignore[type-arg]
    mpks = [k.key for k in keys if k.key_type == MikeyKeyType.MPK]
    tgks = [k.key for k in keys if k.key_type == MikeyKeyType.TGK]
    forking = ticket.has(MikeyTicketFlag.I)
    if len(mpks) != (2 if forking else 1) or len(tgks) != 1:
        raise MikeyRemoteError("unexpected keys in REQUEST_RESP", MikeyErrorCode.INVALID_TICKET)
    return MikeyGrantedTicket(ticket, identity_i, mpks[0], mpks[1] if forking else None, tgks[0])


def _rand(message: MikeyMessage, role: int) -> bytes | None:
    payload = message.find(MikeyRandRolePayload, role)
    return payload.data if payload else None


@dataclass(slots=True)
class MikeyTransferInitiator:
    """TRANSFER_INIT we sent and the state to verify TRANSFER_RESP."""

    message: MikeyMessage
    granted: MikeyGrantedTicket
    profile: MikeyProfile
    policies: list[MikeySecurityPolicy] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        granted: MikeyGrantedTicket,
        identity_r: bytes,
        sessions: list[MikeyGenericIdEntry],
        policies: list[MikeySecurityPolicy],
        *,
        now: float,
        profile: MikeyProfile = DEFAULT_PROFILE,
        csb_id: int | None = None,
        rand: bytes | None = None,
    ) -> MikeyTransferInitiator:
        """TRANSFER_INIT for the crypto sessions ``sessions`` (GENERIC-ID map)."""
        header = MikeyHeader(
            MikeyDataType.TRANSFER_INIT, new_csb_id() if csb_id is None else csb_id, profile.prf,
            granted.ticket.has(MikeyTicketFlag.F), MikeyMapType.GENERIC_ID, tuple(sessions),
        )  # fmt: skip
        rand_i = rand or new_rand(profile)
        payloads: list[MikeyPayload] = [
            timestamp(now),
            MikeyRandRolePayload(MikeyRandRole.RANDRI, rand_i),
            idr(ROLE_I, granted.identity),
            idr(ROLE_R, identity_r),
            *policies,
            granted.ticket,
            placeholder_v(profile),
        ]
        message = MikeyMessage(header, tuple(payloads))
        keys = message_keys(
            profile, profile.prf, granted.mpk_i, header.csb_id, response=False,
            rand_i=rand_i, rand_r=None,
        )  # fmt: skip
        signed = sign(
            message, keys.auth_key, granted.identity + identity_r, exclude_initiator_data=True
        )
        return cls(signed, granted, profile, list(policies))

    def process_response(self, data: bytes, *, now: float) -> dict[int, tuple[int, bytes, bytes]]:
        """Verify TRANSFER_RESP; ``{cs_id: (prot type, TEK, salt)}`` per crypto session."""
        reply = MikeyMessage.parse(data)
        raise_if_error(reply)
        expect_type(reply, MikeyDataType.TRANSFER_RESP)
        if reply.header.csb_id != self.message.header.csb_id:
            raise MikeyRemoteError("TRANSFER_RESP for another CSB ID", MikeyErrorCode.UNSPECIFIED)
        granted, ticket = self.granted, self.granted.ticket
        mac_key, tgk = granted.mpk_i, granted.tgk
        if granted.forking:
            id_r, rand_kms = require_identity(reply, ROLE_R), _rand(reply, MikeyRandRole.RANDRKMS)
            if rand_kms is None or granted.mpk_r is None:
                raise MikeyRemoteError(
                    "forked ticket but no RANDRkms", MikeyErrorCode.INVALID_TICKET
                )
            mac_key = kdf.fork_key(ticket.prf, granted.mpk_r, kdf.MPKR_FORK_CONST, id_r, rand_kms)
            tgk = kdf.fork_key(ticket.prf, granted.tgk, kdf.TGK_FORK_CONST, id_r, rand_kms)
        rand_i = _rand(self.message, MikeyRandRole.RANDRI)
        rand_r = _rand(reply, MikeyRandRole.RANDRR)
        keys = message_keys(
            self.profile, reply.header.prf, mac_key, reply.header.csb_id, response=True,
            rand_i=rand_i, rand_r=rand_r,
        )  # fmt: skip
        verify(reply, keys.auth_key, bytes(self.message))
        check_fresh(reply, now, self.profile.window, None)
        require_timestamp(reply)
        policies = self.policies + reply.find_all(MikeySecurityPolicy)
        return crypto_session_keys(
            reply, tgk, self.profile, policies=policies,
            rand_i=rand_i if ticket.has(MikeyTicketFlag.H) else None,
            rand_r=rand_r if ticket.has(MikeyTicketFlag.G) else None,
        )  # fmt: skip


__all__ = ["MikeyGrantedTicket", "MikeyTicketRequest", "MikeyTransferInitiator", "identity", "idr"]
