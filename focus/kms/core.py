"""The KMS core (sans-I/O): Ticket Request and Ticket Resolve (RFC 6043 §4.2.1, §4.2.3).

``KmsCore.handle(request_bytes, now) -> response_bytes`` answers REQUEST_INIT_PSK
with REQUEST_RESP and RESOLVE_INIT_PSK with RESOLVE_RESP, or with a MIKEY Error
message (RFC 6043 §5.4) - it never raises for peer input.

* Users are enrolled with a per-user pre-shared key (decision (c)); the KMS
  identifies them by the IDRi/IDRr ID Data and checks the V MAC with that key.
* Timestamps must lie within ``window`` seconds and each request is accepted
  once (replay cache, RFC 3830 §5.4).
* Tickets are MIKEY Base Tickets (App. A) with one TGK, valid from TRs to TRe
  (requested, else ``now`` .. ``now + validity``, never longer than
  ``max_validity``).  The granted TP names the Initiator (IDRi), the KMS
  (IDRkms), TRs, TRe and the allowed responders (IDRr); ``?@?`` allows any
  resolver (TS 33.328 §6.2.3.5).
* Keys are forked by the resolver's identity (I flag, RFC 6043 §5.1.1)
  whenever the recipients include ``?@?`` or ``fork_keys`` is set (default:
  TS 33.328 §6.2.3.5 "keys returned by the KMS are always forked").
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from focus.mikey import kdf
from focus.mikey.buffer import MikeyError, MikeyRemoteError
from focus.mikey.constants import (
    WILDCARD_IDENTITY,
    MikeyDataType,
    MikeyErrorCode,
    MikeyKeyType,
    MikeyKeyValidity,
    MikeyMacAlg,
    MikeyMapType,
    MikeyRandRole,
    MikeyTicketFlag,
    MikeyTicketType,
    MikeyTsRole,
    MikeyTsType,
)
from focus.mikey.exchange import (
    ROLE_I,
    ROLE_KMS,
    ROLE_R,
    MikeyProfile,
    check_fresh,
    error_message,
    identity,
    message_keys,
    placeholder_v,
    require_identity,
    sign,
    timestamp,
    verify,
)
from focus.mikey.initiator import idr
from focus.mikey.keydata import MikeyKeyData, MikeyKeyValidityData, push_key_data_list
from focus.mikey.message import MikeyHeader, MikeyMessage
from focus.mikey.payload import MikeyIdRole, MikeyKemac, MikeyPayload, MikeyTimestampRole
from focus.mikey.payload import MikeyRandRole as MikeyRandRolePayload
from focus.mikey.ticket import MikeyBaseTicketContent, open_ticket, seal_ticket
from focus.mikey.timestamp import MikeyReplayCache, ntp_from_unix, timestamp_64, unix_from_timestamp
from focus.mikey.tp import MikeyTicket, MikeyTicketPolicy

logger = logging.getLogger(__name__)

GRANTED_FLAGS = (
    MikeyTicketFlag.D | MikeyTicketFlag.E | MikeyTicketFlag.F | MikeyTicketFlag.G
    | MikeyTicketFlag.H | MikeyTicketFlag.N | MikeyTicketFlag.O
)  # fmt: skip
KEY_LENGTH = 32  # MPK and TGK length in bytes


@dataclass(frozen=True, slots=True)
class KmsConfig:
    """KMS policy knobs."""

    identity: bytes = b"sip:kms@127.0.0.1"
    validity: float = 3600.0  # default ticket lifetime, seconds
    max_validity: float = 86400.0
    fork_keys: bool = True
    profile: MikeyProfile = MikeyProfile()
    max_responders: int = 16


class KmsCore:
    """Issues and resolves tickets for enrolled users; ``handle`` never raises for input."""

    def __init__(
        self,
        users: Callable[[bytes], bytes | None],
        ticket_secrets: Mapping[int, bytes],
        current_secret: int,
        config: KmsConfig = KmsConfig(),
        replay: MikeyReplayCache | None = None,
    ) -> None:
        self._users = users
        self._secrets = ticket_secrets
        self._current = current_secret
        self.config = config
        # one cache per process unless given a shared one (focus.kms.store, several nodes)
        self.replay = replay if replay is not None else MikeyReplayCache(config.profile.window)

    def handle(self, data: bytes, now: float) -> bytes:
        """One request in, the response (or a MIKEY Error message) out."""
        try:
            request = MikeyMessage.parse(data)
        except MikeyRemoteError as exc:
            logger.info("KMS: malformed request: %s", exc.reason)
            return bytes(error_message(None, exc.code, now))
        handler = {
            MikeyDataType.REQUEST_INIT_PSK: self._request,
            MikeyDataType.RESOLVE_INIT_PSK: self._resolve,
        }.get(request.data_type)  # type: ignore[call-overload]
        if handler is None:
            return bytes(error_message(request.header, MikeyErrorCode.UNSUPPORTED_MESSAGE, now))
        key: list[bytes] = []
        try:
            return bytes(handler(request, now, key))
        except MikeyError as exc:
            code = exc.code if isinstance(exc, MikeyRemoteError) else MikeyErrorCode.UNSPECIFIED
            logger.info("KMS: refused data type %d: %s", request.data_type, exc)
            try:
                auth = self._error_key(request, key[0]) if key else None
            except MikeyError:  # e.g. an unknown PRF: the keys cannot be derived at all
                auth = None
            return bytes(error_message(request.header, code, now, auth_key=auth))

    def _error_key(self, request: MikeyMessage, psk: bytes) -> bytes:
        rand_i = _rand(request, MikeyRandRole.RANDRI)
        rand_r = _rand(request, MikeyRandRole.RANDRR)
        return message_keys(
            self.config.profile, request.header.prf, psk, request.header.csb_id,
            response=True, rand_i=rand_i, rand_r=rand_r,
        ).auth_key  # fmt: skip

    def _authenticate(
        self, request: MikeyMessage, role: int, rand_role: int, now: float, key: list[bytes]
    ) -> tuple[bytes, bytes]:
        """``(identity, psk)`` of the requester after MAC, timestamp and replay checks."""
        user = require_identity(request, role)
        psk = self._users(user)
        if psk is None:
            raise MikeyRemoteError("unknown KMS user", MikeyErrorCode.INVALID_ID)
        key.append(psk)
        rand = _rand(request, rand_role)
        if rand is None:
            raise MikeyRemoteError("missing RANDR", MikeyErrorCode.UNSPECIFIED)
        rand_i, rand_r = (rand, None) if rand_role == MikeyRandRole.RANDRI else (None, rand)
        keys = message_keys(
            self.config.profile, request.header.prf, psk, request.header.csb_id,
            response=False, rand_i=rand_i, rand_r=rand_r,
        )  # fmt: skip
        verify(request, keys.auth_key, user + identity(request, ROLE_KMS))
        check_fresh(request, now, self.config.profile.window, self.replay, user, rand)
        return user, psk

    def _request(self, request: MikeyMessage, now: float, key: list[bytes]) -> MikeyMessage:
        user, psk = self._authenticate(request, ROLE_I, MikeyRandRole.RANDRI, now, key)
        wanted = request.find(MikeyTicketPolicy)
        if wanted is None or wanted.ticket_type != MikeyTicketType.MIKEY_BASE:
            raise MikeyRemoteError("ticket type not supported", MikeyErrorCode.INVALID_TICKET)
        responders = [p.data for p in wanted.find_all(MikeyIdRole, ROLE_R)]
        if not responders or len(responders) > self.config.max_responders:
            raise MikeyRemoteError("TP must name 1..16 responders", MikeyErrorCode.INVALID_TPPAR)
        if wanted.find(MikeyKemac) is not None:
            raise MikeyRemoteError("only the default TGK is issued", MikeyErrorCode.INVALID_TPPAR)
        start, end = self._validity(wanted, now)
        forking = self.config.fork_keys or WILDCARD_IDENTITY in responders
        flags = GRANTED_FLAGS | (MikeyTicketFlag.I if forking else 0)
        prf = self.config.profile.prf
        tp_payloads: tuple[MikeyPayload, ...] = (
            idr(ROLE_KMS, self.config.identity), idr(ROLE_I, user),
            MikeyTimestampRole(MikeyTsRole.TRS, MikeyTsType.NTP_UTC, ntp_from_unix(start)),
            MikeyTimestampRole(MikeyTsRole.TRE, MikeyTsType.NTP_UTC, ntp_from_unix(end)),
            *(idr(ROLE_R, r) for r in responders),
        )  # fmt: skip
        granted = MikeyTicketPolicy(MikeyTicketType.MIKEY_BASE, 1, 1, prf, flags, tp_payloads)
        mpk, tgk = secrets.token_bytes(KEY_LENGTH), secrets.token_bytes(KEY_LENGTH)
        rand = secrets.token_bytes(self.config.profile.rand_length)
        tgk_data = MikeyKeyData(
            MikeyKeyType.TGK,
            tgk,
            kv=MikeyKeyValidityData(MikeyKeyValidity.SPI, spi=secrets.token_bytes(4)),
        )
        content = MikeyBaseTicketContent(self._current, ntp_from_unix(now), rand, mpk, (tgk_data,))
        ticket = seal_ticket(granted, content, self._secrets[self._current])
        mpk_i, mpk_r = kdf.mpk_pair(prf, mpk, rand)
        keys = [MikeyKeyData(MikeyKeyType.MPK, mpk_i)]
        if forking:
            keys.append(MikeyKeyData(MikeyKeyType.MPK, mpk_r))
        keys.append(tgk_data)
        logger.info(
            "KMS: ticket for %r, %d responder(s), forking=%s", user, len(responders), forking
        )
        return self._respond(
            request, MikeyDataType.REQUEST_RESP, psk, now, keys,
            before=[idr(ROLE_KMS, self.config.identity), ticket], after=[],
        )  # fmt: skip

    def _validity(self, wanted: MikeyTicketPolicy, now: float) -> tuple[float, float]:
        start, end = now, now + self.config.validity
        trs = wanted.find(MikeyTimestampRole, MikeyTsRole.TRS)
        tre = wanted.find(MikeyTimestampRole, MikeyTsRole.TRE)
        if trs is not None:
            start = unix_from_timestamp(trs.ts_type, trs.value) or start
        if tre is not None:
            end = unix_from_timestamp(tre.ts_type, tre.value) or end
        if not start < end or end - start > self.config.max_validity or end <= now:
            raise MikeyRemoteError("ticket validity period refused", MikeyErrorCode.INVALID_TPPAR)
        return start, end

    def _resolve(self, request: MikeyMessage, now: float, key: list[bytes]) -> MikeyMessage:
        user, psk = self._authenticate(request, ROLE_R, MikeyRandRole.RANDRR, now, key)
        ticket = request.find(MikeyTicket)
        if ticket is None:
            raise MikeyRemoteError("RESOLVE_INIT without TICKET", MikeyErrorCode.INVALID_TICKET)
        content = open_ticket(ticket, self._secrets)
        _check_period(ticket, now)
        allowed = [p.data for p in ticket.find_all(MikeyIdRole, ROLE_R)]
        if user not in allowed and WILDCARD_IDENTITY not in allowed:
            raise MikeyRemoteError(
                "resolver is not an allowed recipient", MikeyErrorCode.INVALID_ID
            )
        mpk_i, mpk_r = kdf.mpk_pair(ticket.prf, content.mpk, content.rand)
        tgk = next(k for k in content.keys if k.key_type == MikeyKeyType.TGK)
        keys = [MikeyKeyData(MikeyKeyType.MPK, mpk_i)]
        after: list[MikeyPayload] = [idr(ROLE_R, user)]
        if ticket.has(MikeyTicketFlag.I):
            rand_kms = secrets.token_bytes(self.config.profile.rand_length)
            mpk_r = kdf.fork_key(ticket.prf, mpk_r, kdf.MPKR_FORK_CONST, user, rand_kms)
            forked = kdf.fork_key(ticket.prf, tgk.key, kdf.TGK_FORK_CONST, user, rand_kms)
            keys.append(MikeyKeyData(MikeyKeyType.MPK, mpk_r))
            tgk = MikeyKeyData(tgk.key_type, forked, tgk.salt, tgk.kv)
            after.append(MikeyRandRolePayload(MikeyRandRole.RANDRKMS, rand_kms))
        keys.append(tgk)
        logger.info("KMS: resolved a ticket of %r for %r", identity(request, ROLE_I) or b"-", user)
        return self._respond(
            request, MikeyDataType.RESOLVE_RESP, psk, now, keys,
            before=[idr(ROLE_KMS, self.config.identity)], after=after,
        )  # fmt: skip

    def _respond(
        self,
        request: MikeyMessage,
        data_type: int,
        psk: bytes,
        now: float,
        keys: list[MikeyKeyData],
        *,
        before: list[MikeyPayload],
        after: list[MikeyPayload],
    ) -> MikeyMessage:
        """``HDR, T, before..., KEMAC, after..., V`` keyed by the requester's PSK."""
        profile, header = self.config.profile, request.header
        msg_keys = message_keys(
            profile, header.prf, psk, header.csb_id, response=True,
            rand_i=_rand(request, MikeyRandRole.RANDRI),
            rand_r=_rand(request, MikeyRandRole.RANDRR),
        )  # fmt: skip
        ts = timestamp(now)
        encrypted = kdf.kemac_crypt(
            profile.encr_alg, msg_keys, header.csb_id, timestamp_64(ts.ts_type, ts.value),
            push_key_data_list(keys), encrypt=True,
        )  # fmt: skip
        kemac = MikeyKemac(profile.encr_alg, encrypted, MikeyMacAlg.NULL)
        reply_header = MikeyHeader(data_type, header.csb_id, header.prf, False, MikeyMapType.EMPTY)
        payloads = (ts, *before, kemac, *after, placeholder_v(profile))
        return sign(MikeyMessage(reply_header, payloads), msg_keys.auth_key, bytes(request))


def _rand(message: MikeyMessage, role: int) -> bytes | None:
    payload = message.find(MikeyRandRolePayload, role)
    return payload.data if payload else None


def _check_period(ticket: MikeyTicket, now: float) -> None:
    """RFC 6043 §6.10: the ticket is valid from TRs to TRe."""
    trs = ticket.find(MikeyTimestampRole, MikeyTsRole.TRS)
    tre = ticket.find(MikeyTimestampRole, MikeyTsRole.TRE)
    start = unix_from_timestamp(trs.ts_type, trs.value) if trs else None
    end = unix_from_timestamp(tre.ts_type, tre.value) if tre else None
    if start is None or end is None or not start <= now <= end:
        raise MikeyRemoteError("ticket expired or not yet valid", MikeyErrorCode.INVALID_TICKET)
