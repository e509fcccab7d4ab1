"""The MIKEY-TICKET Responder (RFC 6043 §4.2.2, §4.2.3): Ticket Transfer and Ticket Resolve.

::

    responder = MikeyTransferResponder.receive(transfer_init, identity_r=b"sip:conf@x",
                                               kms_key=key, now=t, cache=replay_cache)
    http POST bytes(responder.resolve) -> reply
    resolved = responder.process_resolve_response(reply, now=t)   # MAC of TRANSFER_INIT checked
    if resolved.initiator not in authorized: refuse (no key derived yet)
    answer, keys = responder.build_response(resolved, sessions, policies, now=t)

RESOLVE_INIT_PSK = ``HDR, T, RANDRr, IDRr, [IDRkms], TICKET, V``;
RESOLVE_RESP = ``HDR, T, [IDRkms], KEMAC, [IDRr], [RANDRkms], V`` with
``KEMAC = E(encr_key, MPKi || [MPKr'] || TGK(')``.  TRANSFER_RESP = ``HDR, T,
RANDRr, IDRr, [RANDRkms], {SP}, V`` keyed by MPKr' (forking) or MPKi, the MAC
over ``TRANSFER_RESP || TRANSFER_INIT`` (§5.5).  The Initiator's identity is
the IDRi of the ticket's TP (vouched for by the KMS when it resolves the
ticket) and must equal the IDRi of the TRANSFER_INIT.
"""

from __future__ import annotations

from dataclasses import dataclass

from focus.mikey import kdf
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import (
    MikeyDataType,
    MikeyErrorCode,
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
    new_rand,
    placeholder_v,
    raise_if_error,
    require_identity,
    sign,
    timestamp,
    verify,
)
from focus.mikey.initiator import idr
from focus.mikey.keydata import pull_key_data_list
from focus.mikey.message import MikeyGenericIdEntry, MikeyHeader, MikeyMessage
from focus.mikey.payload import MikeyIdRole, MikeyKemac, MikeyPayload, MikeySecurityPolicy
from focus.mikey.payload import MikeyRandRole as MikeyRandRolePayload
from focus.mikey.timestamp import MikeyReplayCache, timestamp_64
from focus.mikey.tp import MikeyTicket


@dataclass(frozen=True, slots=True)
class MikeyResolvedTransfer:
    """A verified TRANSFER_INIT and the keys the KMS released for it."""

    initiator: bytes  # the Initiator's KMS identity (ticket TP IDRi)
    mpk_i: bytes
    mac_key: bytes  # MPKr' with forking, else MPKi
    tgk: bytes  # TGK' with forking
    idr_echo: bytes | None
    rand_kms: bytes | None


def _rand(message: MikeyMessage, role: int) -> bytes | None:
    payload = message.find(MikeyRandRolePayload, role)
    return payload.data if payload else None


@dataclass(slots=True)
class MikeyTransferResponder:
    """One received TRANSFER_INIT, its RESOLVE_INIT and the state to answer it."""

    transfer: MikeyMessage
    transfer_bytes: bytes
    ticket: MikeyTicket
    resolve: MikeyMessage
    identity_r: bytes
    kms_key: bytes
    kms_identity: bytes
    profile: MikeyProfile

    @classmethod
    def receive(
        cls,
        data: bytes,
        *,
        identity_r: bytes,
        kms_key: bytes,
        now: float,
        cache: MikeyReplayCache | None,
        kms_identity: bytes = b"",
        profile: MikeyProfile = DEFAULT_PROFILE,
    ) -> MikeyTransferResponder:
        """Check TRANSFER_INIT (type, timestamp, replay, ticket policy) and build RESOLVE_INIT."""
        transfer = MikeyMessage.parse(data)
        expect_type(transfer, MikeyDataType.TRANSFER_INIT)
        if transfer.header.map_type != MikeyMapType.GENERIC_ID:
            raise MikeyRemoteError(
                "TRANSFER_INIT needs the GENERIC-ID map", MikeyErrorCode.INVALID_SP
            )
        ticket = transfer.find(MikeyTicket)
        if ticket is None or ticket.ticket_type != MikeyTicketType.MIKEY_BASE:
            raise MikeyRemoteError(
                "no supported TICKET in TRANSFER_INIT", MikeyErrorCode.INVALID_TICKET
            )
        if not ticket.has(MikeyTicketFlag.D) or ticket.has(MikeyTicketFlag.L):
            raise MikeyRemoteError("ticket policy not acceptable", MikeyErrorCode.INVALID_TPPAR)
        rand_i = _rand(transfer, MikeyRandRole.RANDRI)
        if rand_i is None:
            raise MikeyRemoteError("TRANSFER_INIT without RANDRi", MikeyErrorCode.UNSPECIFIED)
        check_fresh(transfer, now, profile.window, cache, identity(transfer, ROLE_I), rand_i)
        rand_r = new_rand(profile)
        header = MikeyHeader(
            MikeyDataType.RESOLVE_INIT_PSK, transfer.header.csb_id, profile.prf, True,
            MikeyMapType.EMPTY,
        )  # fmt: skip
        payloads: list[MikeyPayload] = [
            timestamp(now),
            MikeyRandRolePayload(MikeyRandRole.RANDRR, rand_r),
            idr(ROLE_R, identity_r),
        ]
        if kms_identity:
            payloads.append(idr(ROLE_KMS, kms_identity))
        payloads += [ticket, placeholder_v(profile)]
        resolve = MikeyMessage(header, tuple(payloads))
        keys = message_keys(
            profile, profile.prf, kms_key, header.csb_id, response=False,
            rand_i=None, rand_r=rand_r,
        )  # fmt: skip
        resolve = sign(resolve, keys.auth_key, identity_r + kms_identity)
        return cls(
            transfer, bytes(data), ticket, resolve, identity_r, kms_key, kms_identity, profile
        )

    @property
    def claimed_initiator(self) -> bytes:
        """IDRi of the TRANSFER_INIT (not yet verified)."""
        return identity(self.transfer, ROLE_I)

    def process_resolve_response(self, data: bytes, *, now: float) -> MikeyResolvedTransfer:
        """Check RESOLVE_RESP, decrypt the keys and verify the TRANSFER_INIT MAC with MPKi."""
        reply = MikeyMessage.parse(data)
        raise_if_error(reply)
        expect_type(reply, MikeyDataType.RESOLVE_RESP)
        if reply.header.csb_id != self.resolve.header.csb_id:
            raise MikeyRemoteError("RESOLVE_RESP for another CSB ID", MikeyErrorCode.UNSPECIFIED)
        rand_r = _rand(self.resolve, MikeyRandRole.RANDRR)
        keys = message_keys(
            self.profile, reply.header.prf, self.kms_key, reply.header.csb_id, response=True,
            rand_i=None, rand_r=rand_r,
        )  # fmt: skip
        verify(reply, keys.auth_key, bytes(self.resolve))
        ts = check_fresh(reply, now, self.profile.window, None)
        kemac = reply.find(MikeyKemac)
        if kemac is None:
            raise MikeyRemoteError("RESOLVE_RESP without KEMAC", MikeyErrorCode.UNSPECIFIED)
        plain = kdf.kemac_crypt(
            kemac.encr_alg, keys, reply.header.csb_id, timestamp_64(ts.ts_type, ts.value),
            kemac.encr_data, encrypt=False,
        )  # fmt: skip
        resolved = self._resolved(reply, pull_key_data_list(plain))
        self._verify_transfer(resolved.mpk_i)
        return resolved

    def _resolved(self, reply: MikeyMessage, keys: tuple) -> MikeyResolvedTransfer:  # type: ignore[type-arg]
        forking = self.ticket.has(MikeyTicketFlag.I)
        mpks = [k.key for k in keys if k.key_type == MikeyKeyType.MPK]
        tgks = [k.key for k in keys if k.key_type == MikeyKeyType.TGK]
        if len(mpks) != (2 if forking else 1) or len(tgks) != 1:
            raise MikeyRemoteError("unexpected keys in RESOLVE_RESP", MikeyErrorCode.INVALID_TICKET)
        ticket_i = self.ticket.find(MikeyIdRole, ROLE_I)
        if ticket_i is None or ticket_i.data != self.claimed_initiator:
            raise MikeyRemoteError("IDRi differs from the ticket's", MikeyErrorCode.INVALID_ID)
        echo = reply.find(MikeyIdRole, ROLE_R)
        return MikeyResolvedTransfer(
            ticket_i.data, mpks[0], mpks[1] if forking else mpks[0], tgks[0],
            echo.data if echo else None, _rand(reply, MikeyRandRole.RANDRKMS),
        )  # fmt: skip

    def _verify_transfer(self, mpk_i: bytes) -> None:
        header = self.transfer.header
        keys = message_keys(
            self.profile, header.prf, mpk_i, header.csb_id, response=False,
            rand_i=_rand(self.transfer, MikeyRandRole.RANDRI), rand_r=None,
        )  # fmt: skip
        extra = identity(self.transfer, ROLE_I) + identity(self.transfer, ROLE_R)
        verify(self.transfer, keys.auth_key, extra, exclude_initiator_data=True)

    def build_response(
        self,
        resolved: MikeyResolvedTransfer,
        sessions: list[MikeyGenericIdEntry],
        policies: list[MikeySecurityPolicy],
        *,
        now: float,
    ) -> tuple[MikeyMessage, dict[int, tuple[int, bytes, bytes]]]:
        """TRANSFER_RESP (each session with #P = 1, Session Data and SPI) and the TEKs."""
        header = MikeyHeader(
            MikeyDataType.TRANSFER_RESP, self.transfer.header.csb_id, self.transfer.header.prf,
            False, MikeyMapType.GENERIC_ID, tuple(sessions),
        )  # fmt: skip
        rand_r = _rand(self.resolve, MikeyRandRole.RANDRR)
        assert rand_r is not None
        payloads: list[MikeyPayload] = [
            timestamp(now),
            MikeyRandRolePayload(MikeyRandRole.RANDRR, rand_r),
        ]
        payloads.append(idr(ROLE_R, resolved.idr_echo or self.identity_r))
        if resolved.rand_kms is not None:
            payloads.append(MikeyRandRolePayload(MikeyRandRole.RANDRKMS, resolved.rand_kms))
        payloads += [*policies, placeholder_v(self.profile)]
        message = MikeyMessage(header, tuple(payloads))
        rand_i = _rand(self.transfer, MikeyRandRole.RANDRI)
        keys = message_keys(
            self.profile, header.prf, resolved.mac_key, header.csb_id, response=True,
            rand_i=rand_i, rand_r=rand_r,
        )  # fmt: skip
        message = sign(message, keys.auth_key, self.transfer_bytes)
        all_policies = self.transfer.find_all(MikeySecurityPolicy) + list(policies)
        teks = crypto_session_keys(
            message, resolved.tgk, self.profile, policies=all_policies,
            rand_i=rand_i if self.ticket.has(MikeyTicketFlag.H) else None,
            rand_r=rand_r if self.ticket.has(MikeyTicketFlag.G) else None,
        )  # fmt: skip
        return message, teks


__all__ = ["MikeyResolvedTransfer", "MikeyTransferResponder", "require_identity"]
