"""MIKEY-TICKET at the focus as the Responder of a dial-in (TS 33.328 G.3.2, RFC 6043 §4.2.2-4.2.3).

:class:`MikeyFocusKeying` is the asynchronous step the focus runs between
admission and offer/answer when an offer carries ``a=key-mgmt:mikey`` and the
conference accepts ``mikey-ticket``::

    keys = await keying.resolve(offer, conference_uri, authorized, now=time.time())
    plan = plan_answer(offer, SdpFocusPolicy(..., mikey=keys))   # keys per m-line

For each TRANSFER_INIT (session level, or per m-line):

1. :meth:`MikeyTransferResponder.receive` checks the message type, the
   timestamp window and the replay cache; a refusal is 488.
2. **Early authorization**: the Initiator named by the ticket (TP IDRi) must be
   on the conference's authorized list, else 403 without contacting the KMS.
3. RESOLVE_INIT to the KMS as the conference's KMS identity (its URI); an
   unreachable KMS is ``503`` with ``Retry-After`` (SDES calls are unaffected).
4. RESOLVE_RESP verified, the TRANSFER_INIT MAC checked with MPKi, the
   KMS-vouched Initiator identity authorized again (403).  **No TEK is derived
   before every TRANSFER_INIT of the offer passed steps 1-4.**
5. TRANSFER_RESP built (:func:`focus.mikey.media.responder_sessions`) and the
   TEKs mapped to m-lines (:func:`focus.mikey.media.assign_crypto_sessions`);
   a crypto session of Prot type PSK S/MIME keys no m-line: its ``(TEK,
   SPI)`` becomes ``keys.smime``, the NOTIFY KEK of this participant
   (``call.mikey.smime``, :class:`notify.kek.CallKekProvider`).

The focus's KMS key per conference identity comes from ``credentials``
(``mrf.server`` enrols conference URIs at the embedded KMS on demand).
Keys are never logged.

**Dial-out** (TS 33.328 G.3.1, the focus as Initiator): :meth:`MikeyFocusKeying.initiate`
asks the KMS for a ticket (REQUEST_INIT_PSK as the conference URI, the invited
identity the only allowed Responder) and builds the TRANSFER_INIT for the
offer's ``a=key-mgmt:mikey`` with two SRTP crypto sessions (focus→participant
with our SSRC, participant→focus); :meth:`MikeyDialOutKeys.answer_keys`
verifies the answer's TRANSFER_RESP, whose IDRr must be the invited identity
(else the dial-out is dropped with ACK + BYE, like a wrong P-Asserted-Identity).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from focus.kms.client import KmsUnavailable, kms_exchange
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode, MikeyIdRole, MikeyProtType
from focus.mikey.exchange import DEFAULT_PROFILE, MikeyProfile
from focus.mikey.exchange import identity as mikey_identity
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.media import (
    MikeyStreamKeys,
    assign_crypto_sessions,
    responder_sessions,
    srtp_policy,
    srtp_suite,
)
from focus.mikey.message import MikeyGenericIdEntry, MikeyMessage
from focus.mikey.payload import MikeyIdRole as MikeyIdRolePayload
from focus.mikey.payload import MikeySecurityPolicy
from focus.mikey.responder import MikeyTransferResponder
from focus.mikey.timestamp import MikeyReplayCache
from focus.sdp.attributes import SdpKeyMgmt
from focus.sdp.offer_answer import SdpMikeyKeys
from focus.sdp.secret import SecretBytes
from focus.sdp.session import SdpSession

logger = logging.getLogger(__name__)

__all__ = ["MikeyDialOutKeys", "MikeyFocusKeying", "MikeyRefused", "offer_key_mgmt"]

DIAL_OUT_SUITE = "AES_CM_128_HMAC_SHA1_80"

type KmsExchange = Callable[[str, bytes], Awaitable[bytes]]


class MikeyRefused(Exception):
    """The call is refused: SIP ``status``, ``reason`` and extra headers."""

    def __init__(
        self, status: int, reason: str, detail: str, headers: Sequence[tuple[str, str]] = ()
    ):
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, list(headers)


def offer_key_mgmt(offer: SdpSession) -> dict[bytes, list[int]]:
    """``{TRANSFER_INIT bytes: [m-line indexes]}`` of the offer's ``a=key-mgmt:mikey`` lines.

    A media-level line covers its m-line; the session-level one covers every
    m-line without a media-level one (RFC 4567 §3).  Raises ``SdpRemoteError``
    (400) for malformed attributes.
    """
    session = _mikey(offer.attributes)
    groups: dict[bytes, list[int]] = {}
    for index, media in enumerate(offer.media):
        data = _mikey(media.attributes) or session
        if data is not None and media.port != 0:
            groups.setdefault(data, []).append(index)
    return groups


def _mikey(attributes: Sequence[object]) -> bytes | None:
    for attribute in attributes:
        if getattr(attribute, "name", None) == "key-mgmt":
            parsed = SdpKeyMgmt.parse(getattr(attribute, "value", "") or "")
            if parsed.protocol == "mikey":
                return parsed.data
    return None


@dataclass(slots=True)
class _Pending:
    responder: MikeyTransferResponder
    indexes: list[int]
    resolved: object = None


@dataclass(slots=True)
class MikeyFocusKeying:
    """The focus's MIKEY-TICKET Responder (see the module docstring)."""

    kms_url: str
    credentials: Callable[[bytes], bytes | None]
    profile: MikeyProfile = DEFAULT_PROFILE
    kms_identity: bytes = b""
    retry_after: int = 10
    exchange: KmsExchange = kms_exchange
    cache: MikeyReplayCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = MikeyReplayCache(self.profile.window)

    async def resolve(
        self,
        offer: SdpSession,
        conference_uri: str,
        authorized: Callable[[str], bool],
        *,
        now: float,
    ) -> SdpMikeyKeys:
        """Steps 1-5 of the module docstring; raises :class:`MikeyRefused`."""
        groups = offer_key_mgmt(offer)
        identity = conference_uri.encode()
        kms_key = self.credentials(identity)
        if kms_key is None:
            raise MikeyRefused(488, "Not Acceptable Here", f"no KMS key for {conference_uri}")
        pending = [self._receive(data, indexes, identity, kms_key, now, authorized)
                   for data, indexes in groups.items()]  # fmt: skip
        for item in pending:
            item.resolved = await self._resolve(item, now, authorized)
        return self._answer(offer, pending, now)

    async def initiate(
        self, conference_uri: str, invited: str, *, ssrc: int, now: float
    ) -> MikeyDialOutKeys:
        """Ticket from the KMS and TRANSFER_INIT for a dial-out; raises :class:`MikeyRefused`."""
        identity = conference_uri.encode()
        kms_key = self.credentials(identity)
        if kms_key is None:
            raise MikeyRefused(488, "Not Acceptable Here", f"no KMS key for {conference_uri}")
        request = MikeyTicketRequest.build(
            identity, kms_key, responders=[invited.encode()], now=now,
            kms_identity=self.kms_identity or None, profile=self.profile,
        )  # fmt: skip
        try:
            reply = await self.exchange(self.kms_url, bytes(request.message))
        except KmsUnavailable as exc:
            logger.warning("KMS unreachable: %s", exc)
            raise MikeyRefused(503, "Service Unavailable", "KMS unreachable") from exc
        try:
            granted = request.process_response(reply, now=now)
            sessions = [
                MikeyGenericIdEntry(1, MikeyProtType.SRTP, (0,), ssrc.to_bytes(4)),
                MikeyGenericIdEntry(2, MikeyProtType.SRTP, (0,)),
            ]
            policies = [srtp_policy(0, DIAL_OUT_SUITE)]
            transfer = MikeyTransferInitiator.build(
                granted, invited.encode(), sessions, policies, now=now, profile=self.profile
            )
        except MikeyRemoteError as exc:
            raise _not_acceptable(exc) from exc
        return MikeyDialOutKeys(invited, transfer, ssrc)

    def _receive(
        self,
        data: bytes,
        indexes: list[int],
        identity: bytes,
        kms_key: bytes,
        now: float,
        authorized: Callable[[str], bool],
    ) -> _Pending:
        try:
            responder = MikeyTransferResponder.receive(
                data, identity_r=identity, kms_key=kms_key, now=now, cache=self.cache,
                kms_identity=self.kms_identity, profile=self.profile,
            )  # fmt: skip
        except MikeyRemoteError as exc:
            raise _not_acceptable(exc) from exc
        named = responder.ticket.find(MikeyIdRolePayload, MikeyIdRole.IDRI)
        initiator = named.data if named is not None else responder.claimed_initiator
        _authorize(initiator, authorized)
        return _Pending(responder, indexes)

    async def _resolve(
        self, item: _Pending, now: float, authorized: Callable[[str], bool]
    ) -> object:
        try:
            reply = await self.exchange(self.kms_url, bytes(item.responder.resolve))
        except KmsUnavailable as exc:
            logger.warning("KMS unreachable: %s", exc)
            raise MikeyRefused(
                503, "Service Unavailable", "the key management service is unreachable",
                [("Retry-After", str(self.retry_after))],
            ) from exc  # fmt: skip
        try:
            resolved = item.responder.process_resolve_response(reply, now=now)
        except MikeyRemoteError as exc:
            raise _not_acceptable(exc) from exc
        _authorize(resolved.initiator, authorized)
        return resolved

    def _answer(self, offer: SdpSession, pending: list[_Pending], now: float) -> SdpMikeyKeys:
        keys = SdpMikeyKeys()
        session_level = _mikey(offer.attributes)
        for item in pending:
            responder = item.responder
            lines = [(i, offer.media[i].proto) for i in item.indexes]
            entries = [
                e for e in responder.transfer.header.cs_map if isinstance(e, MikeyGenericIdEntry)
            ]
            try:
                streams = assign_crypto_sessions(entries, lines, self.profile.prot_types)
                own = {s.srtp[-1]: secrets.randbits(32) for s in streams if s.srtp}
                offered = responder.transfer.find_all(MikeySecurityPolicy)
                sessions, policies = responder_sessions(
                    entries, offered, self.profile.prot_types, own
                )
                message, teks = responder.build_response(item.resolved, sessions, policies, now=now)  # type: ignore[arg-type]
                all_policies = {p.policy_no: p for p in [*offered, *policies]}
                for stream in streams:
                    _key_stream(keys, stream, teks, sessions, all_policies, own)
                keys.smime = _smime(sessions, teks, self.profile) or keys.smime
            except MikeyRemoteError as exc:
                raise _not_acceptable(exc) from exc
            attribute = str(SdpKeyMgmt("mikey", bytes(message)))
            if session_level is not None and responder.transfer_bytes == session_level:
                keys.session_key_mgmt = attribute
            else:
                keys.media_key_mgmt.update({i: attribute for i in item.indexes})
            logger.info(
                "MIKEY-TICKET: %d crypto session(s) keyed for %r (CSB %08x)",
                len(teks), responder.claimed_initiator, responder.transfer.header.csb_id,
            )  # fmt: skip
        return keys


@dataclass(slots=True)
class MikeyDialOutKeys:
    """The TRANSFER_INIT of one dial-out and the check of its answer (Initiator side)."""

    invited: str
    transfer: MikeyTransferInitiator = field(repr=False)
    ssrc: int  # announced in the focus→participant crypto session

    @property
    def attribute(self) -> str:
        """The offer's ``a=key-mgmt`` value (RFC 4567 §3)."""
        return str(SdpKeyMgmt("mikey", bytes(self.transfer.message)))

    def answer_keys(
        self, answer: SdpSession, *, now: float
    ) -> tuple[str, SecretBytes, SecretBytes]:
        """``(suite, rx key||salt, tx key||salt)``; :class:`MikeyRefused` (403 / 488)."""
        groups = offer_key_mgmt(answer)
        if len(groups) != 1:
            raise MikeyRefused(488, "Not Acceptable Here", "the answer has no single TRANSFER_RESP")
        data = next(iter(groups))
        try:
            named = mikey_identity(MikeyMessage.parse(data), MikeyIdRole.IDRR)
            if named != self.invited.encode():
                logger.info("MIKEY-TICKET: answered by KMS identity %r", named[:128])
                raise MikeyRefused(
                    403, "Forbidden", "the responder's KMS identity is not the invited one"
                )
            teks = self.transfer.process_response(data, now=now)
        except MikeyRemoteError as exc:
            raise _not_acceptable(exc) from exc
        if 1 not in teks or 2 not in teks:
            raise MikeyRefused(488, "Not Acceptable Here", "TRANSFER_RESP lost a crypto session")
        tx, rx = teks[1], teks[2]
        return DIAL_OUT_SUITE, SecretBytes(rx[1] + rx[2]), SecretBytes(tx[1] + tx[2])


def _key_stream(
    keys: SdpMikeyKeys,
    stream: MikeyStreamKeys,
    teks: dict[int, tuple[int, bytes, bytes]],
    sessions: list[MikeyGenericIdEntry],
    policies: dict[int, MikeySecurityPolicy],
    own: dict[int, int],
) -> None:
    if stream.tls is not None:
        keys.psk[stream.index] = SecretBytes(teks[stream.tls][1])
        return
    by_cs = {s.cs_id: s for s in sessions}
    suites = {srtp_suite(policies[by_cs[cs].policy_nos[0]]) for cs in stream.srtp}
    if len(suites) != 1:
        raise MikeyRemoteError("two SRTP policies for one audio line", MikeyErrorCode.INVALID_SP)
    rx, tx = stream.srtp[0], stream.srtp[-1]
    rx_key, tx_key = teks[rx][1] + teks[rx][2], teks[tx][1] + teks[tx][2]
    keys.srtp[stream.index] = (suites.pop(), SecretBytes(rx_key), SecretBytes(tx_key))
    keys.ssrc[stream.index] = own[tx]


def _smime(
    sessions: list[MikeyGenericIdEntry],
    teks: dict[int, tuple[int, bytes, bytes]],
    profile: MikeyProfile,
) -> tuple[SecretBytes, bytes] | None:
    """``(TEK, SPI)`` of the PSK S/MIME crypto session (TS 33.328 Annex I, decision (b))."""
    for entry in sessions:
        if entry.prot_type == profile.prot_types.psk_smime and entry.spi:
            return SecretBytes(teks[entry.cs_id][1]), entry.spi
    return None


def _authorize(initiator: bytes, authorized: Callable[[str], bool]) -> None:
    try:
        text = initiator.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or not authorized(text):
        logger.info("MIKEY-TICKET: KMS identity %r is not authorized", initiator[:128])
        raise MikeyRefused(403, "Forbidden", "the initiator's KMS identity is not authorized")


def _not_acceptable(exc: MikeyRemoteError) -> MikeyRefused:
    code = getattr(exc.code, "name", str(exc.code))
    return MikeyRefused(488, "Not Acceptable Here", f"MIKEY-TICKET refused: {code} ({exc.reason})")
