"""The MIKEY-TICKET exchange carried in a SUBSCRIBE (TS 33.328 G.3.3, Annex I; RFC 6043 §4.2.2).

A subscriber that has not joined by INVITE establishes its PSK S/MIME key in
the SUBSCRIBE (docs/notify.md, "Where the KEK comes from")::

    SUBSCRIBE sip:retro@example.com           Key-Mgmt: prot=mikey; data="<TRANSFER_INIT>"
    200 OK                                    Key-Mgmt: prot=mikey; data="<TRANSFER_RESP>"

:class:`NotifyMikeyExchange` is the notifier's Responder, with the
conference URI as its KMS identity (as for INVITE, ``focus.keying``):

1. :meth:`MikeyTransferResponder.receive` checks type, timestamp window,
   replay cache and ticket policy; the crypto sessions must be exactly one of
   Prot type PSK S/MIME (decision (a): 242) — anything else is **488**;
2. **early authorization**: the Initiator named by the ticket (TP IDRi) must be
   the subscriber's authorized SIP identity, else **403** before the KMS is
   contacted (TS 33.328 G.3.3: the focus checks that the KMS UID is authorized);
3. RESOLVE_INIT to the KMS; unreachable → **503** with ``Retry-After``;
4. RESOLVE_RESP verified, the TRANSFER_INIT MAC checked with MPKi, and the
   KMS-vouched Initiator identity compared again (**403**);
5. TRANSFER_RESP built (#P = 1, SPI chosen when the Initiator left it empty);
   the TEK of the PSK S/MIME crypto session is the KEK and its SPI the key id
   (decision (b)).

Keys are never logged (the SPI and the KEK length are).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from focus.kms.client import KmsUnavailable, kms_exchange
from focus.mikey.buffer import MikeyError, MikeyRemoteError
from focus.mikey.constants import MikeyIdRole
from focus.mikey.exchange import DEFAULT_PROFILE, MikeyProfile
from focus.mikey.media import responder_sessions
from focus.mikey.message import MikeyGenericIdEntry
from focus.mikey.payload import MikeyIdRole as MikeyIdRolePayload
from focus.mikey.payload import MikeySecurityPolicy
from focus.mikey.responder import MikeyResolvedTransfer, MikeyTransferResponder
from focus.mikey.timestamp import MikeyReplayCache
from focus.sip.message import SipRemoteError
from focus.sip.uri import SipUri
from notify.kek import NotifyKek
from notify.subscription import NotifyRemoteError

logger = logging.getLogger(__name__)

__all__ = ["NotifyMikeyExchange", "same_identity"]

type KmsExchange = Callable[[str, bytes], Awaitable[bytes]]


def same_identity(kms_identity: bytes, aor: str) -> bool:
    """The KMS identity (a SIP URI, TS 23.333 §6.2.19) names the subscriber's AOR."""
    try:
        return str(SipUri.parse(kms_identity.decode("utf-8")).aor) == aor
    except (UnicodeDecodeError, SipRemoteError, ValueError):
        return False


def _refused(exc: MikeyError) -> NotifyRemoteError:
    code = getattr(getattr(exc, "code", None), "name", "UNSPECIFIED")
    detail = f"MIKEY-TICKET refused: {code} ({getattr(exc, 'reason', exc)})"
    return NotifyRemoteError(488, "Not Acceptable Here", warning=detail)


def _forbidden(identity: bytes, aor: str) -> NotifyRemoteError:
    logger.info("MIKEY-TICKET in SUBSCRIBE: KMS identity %r is not %s", identity[:128], aor)
    detail = "the initiator's KMS identity is not the subscriber's identity"
    return NotifyRemoteError(403, "Forbidden", warning=detail)


@dataclass(slots=True)
class NotifyMikeyExchange:
    """The notifier's MIKEY-TICKET Responder (see the module docstring)."""

    kms_url: str
    credentials: Callable[[bytes], bytes | None]  # conference URI -> its KMS key
    profile: MikeyProfile = DEFAULT_PROFILE
    kms_identity: bytes = b""
    retry_after: int = 10
    exchange: KmsExchange = kms_exchange
    clock: Callable[[], float] = time.time
    cache: MikeyReplayCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = MikeyReplayCache(self.profile.window)

    async def answer(
        self, conference_uri: str, identity: str, message: bytes
    ) -> tuple[bytes, NotifyKek]:
        """Steps 1-5 of the module docstring; raises :class:`NotifyRemoteError`."""
        kms_key = self.credentials(conference_uri.encode())
        if kms_key is None:
            raise NotifyRemoteError(
                488, "Not Acceptable Here", warning=f"no KMS key for {conference_uri}"
            )
        responder = self._receive(message, conference_uri.encode(), kms_key, identity)
        resolved = await self._resolve(responder, identity)
        return self._respond(responder, resolved)

    def _receive(
        self, message: bytes, conference: bytes, kms_key: bytes, identity: str
    ) -> MikeyTransferResponder:
        try:
            responder = MikeyTransferResponder.receive(
                message, identity_r=conference, kms_key=kms_key, now=self.clock(),
                cache=self.cache, kms_identity=self.kms_identity, profile=self.profile,
            )  # fmt: skip
        except MikeyError as exc:
            raise _refused(exc) from exc
        named = responder.ticket.find(MikeyIdRolePayload, MikeyIdRole.IDRI)
        initiator = named.data if named is not None else responder.claimed_initiator
        if not same_identity(initiator, identity):
            raise _forbidden(initiator, identity)
        self._smime_session(responder)
        return responder

    def _smime_session(self, responder: MikeyTransferResponder) -> MikeyGenericIdEntry:
        """The one crypto session, of Prot type PSK S/MIME (else 488)."""
        entries = [
            e for e in responder.transfer.header.cs_map if isinstance(e, MikeyGenericIdEntry)
        ]
        wanted = self.profile.prot_types.psk_smime
        if len(entries) != 1 or entries[0].prot_type != wanted:
            types = [e.prot_type for e in entries]
            detail = f"need one crypto session of Prot type {wanted} (PSK S/MIME), got {types}"
            raise NotifyRemoteError(488, "Not Acceptable Here", warning=detail)
        return entries[0]

    async def _resolve(
        self, responder: MikeyTransferResponder, identity: str
    ) -> MikeyResolvedTransfer:
        try:
            reply = await self.exchange(self.kms_url, bytes(responder.resolve))
        except KmsUnavailable as exc:
            logger.warning("KMS unreachable: %s", exc)
            raise NotifyRemoteError(
                503, "Service Unavailable", (("Retry-After", str(self.retry_after)),),
                warning="the key management service is unreachable",
            ) from exc  # fmt: skip
        try:
            resolved = responder.process_resolve_response(reply, now=self.clock())
        except MikeyError as exc:
            raise _refused(exc) from exc
        if not same_identity(resolved.initiator, identity):
            raise _forbidden(resolved.initiator, identity)
        return resolved

    def _respond(
        self, responder: MikeyTransferResponder, resolved: MikeyResolvedTransfer
    ) -> tuple[bytes, NotifyKek]:
        entry = self._smime_session(responder)
        offered = responder.transfer.find_all(MikeySecurityPolicy)
        try:
            sessions, policies = responder_sessions([entry], offered, self.profile.prot_types, {})
            answer, teks = responder.build_response(resolved, sessions, policies, now=self.clock())
        except MikeyRemoteError as exc:
            raise _refused(exc) from exc
        spi = sessions[0].spi
        _, tek, _ = teks[entry.cs_id]
        logger.info(
            "MIKEY-TICKET in SUBSCRIBE: PSK S/MIME key %s (%d bytes) for %r (CSB %08x)",
            spi.hex(), len(tek), resolved.initiator[:128], responder.transfer.header.csb_id,
        )  # fmt: skip
        return bytes(answer), NotifyKek(tek, spi)
