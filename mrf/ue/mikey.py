"""MIKEY-TICKET for ``mrf ue --mikey`` as the Initiator of a dial-in (RFC 6043 §4.2.1-4.2.2).

:class:`UeMikey` asks the KMS for a ticket (REQUEST_INIT_PSK with the UE's KMS
key, the conference URI as the only allowed Responder), builds the
TRANSFER_INIT for the offer (session-level ``a=key-mgmt:mikey``) and, from the
answer's TRANSFER_RESP, derives the keys:

* audio (RTP/SAVP): two SRTP crypto sessions, the first keys what we send
  (our SSRC in its Session Data), the second what the focus sends
  (:mod:`focus.mikey.media` rule), policy ``AES_CM_128_HMAC_SHA1_80``;
* MSRP (``TCP/TLS/MSRP``) and BFCP (``TCP/TLS/BFCP``): one crypto session of
  Prot type TLS each, in m-line order; its TEK is that line's TLS-PSK
  (TS 23.333 §6.2.19; decision (d));
* with ``smime`` (``mrf ue join --mikey --subscribe``): one crypto session of
  Prot type PSK S/MIME keying no m-line; its TEK and SPI are the KEK and key
  id of the protected NOTIFYs (TS 33.328 Annex I, decision (b)), so the
  SUBSCRIBE needs no exchange of its own.

The answer's TRANSFER_RESP must come from the Responder we asked for: its
IDRr is the one the KMS allowed (the forked keys only verify for the identity
the KMS resolved), and it must name the conference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from focus.kms.client import kms_exchange
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode, MikeyIdRole, MikeyProtType, MikeyProtTypes
from focus.mikey.exchange import MikeyProfile, identity
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.media import srtp_policy
from focus.mikey.message import MikeyGenericIdEntry, MikeyMessage
from focus.mikey.payload import MikeySecurityPolicy
from focus.sdp.attributes import SdpKeyMgmt
from focus.sdp.session import SdpSession
from focus.sip.uri import SipUri

__all__ = ["UeMikey", "UeMikeyKeys"]

SUITE = "AES_CM_128_HMAC_SHA1_80"


@dataclass(slots=True)
class UeMikeyKeys:
    """What the TRANSFER_RESP keyed: audio ``(suite, tx key||salt, rx key||salt)``, the PSKs."""

    audio: tuple[str, bytes, bytes] | None = field(default=None, repr=False)
    psk: bytes | None = field(default=None, repr=False)  # MSRP
    bfcp_psk: bytes | None = field(default=None, repr=False)
    smime: tuple[bytes, bytes] | None = field(default=None, repr=False)  # (KEK, key id = SPI)


@dataclass(slots=True)
class UeMikey:
    """The Initiator's state across ticket request, offer and answer."""

    kms_url: str
    kms_key: bytes
    identity: str
    responder: str
    profile: MikeyProfile = field(default_factory=MikeyProfile)
    transfer: MikeyTransferInitiator | None = None
    audio_cs: tuple[int, int] | None = None
    tls_cs: int | None = None
    bfcp_cs: int | None = None
    smime_cs: int | None = None

    @classmethod
    def for_conference(
        cls, kms_url: str, kms_key_hex: str, identity: str, conference: str, prot_tls: int = 241
    ) -> UeMikey:
        key = bytes.fromhex(kms_key_hex)
        responder = SipUri.parse(conference).aor  # the conference's KMS identity
        profile = MikeyProfile(prot_types=MikeyProtTypes(tls=prot_tls))
        return cls(kms_url, key, SipUri.parse(identity).aor, responder, profile)

    async def offer_attribute(
        self,
        *,
        audio_ssrc: int | None,
        msrp: bool,
        now: float,
        bfcp: bool = False,
        smime: bool = False,
    ) -> str:
        """REQUEST_INIT at the KMS, then the ``a=key-mgmt`` value with TRANSFER_INIT.

        ``msrp`` / ``bfcp``: the offer has that TLS line (MSRP before BFCP, the
        m-line order of ``mrf ue``); ``smime``: add the PSK S/MIME session.
        """
        request = MikeyTicketRequest.build(
            self.identity.encode(), self.kms_key, responders=[self.responder.encode()],
            now=now, profile=self.profile,
        )  # fmt: skip
        reply = await kms_exchange(self.kms_url, bytes(request.message))
        granted = request.process_response(reply, now=now)
        sessions: list[MikeyGenericIdEntry] = []
        policies: list[MikeySecurityPolicy] = []
        if audio_ssrc is not None:
            policies.append(srtp_policy(0, SUITE))
            sessions += [
                MikeyGenericIdEntry(1, MikeyProtType.SRTP, (0,), audio_ssrc.to_bytes(4)),
                MikeyGenericIdEntry(2, MikeyProtType.SRTP, (0,)),
            ]
            self.audio_cs = (1, 2)
        tls = self.profile.prot_types.tls
        if msrp or bfcp:
            policies.append(MikeySecurityPolicy(1, tls))
        if msrp:
            self.tls_cs = len(sessions) + 1
            sessions.append(MikeyGenericIdEntry(self.tls_cs, tls, (1,)))
        if bfcp:
            self.bfcp_cs = len(sessions) + 1
            sessions.append(MikeyGenericIdEntry(self.bfcp_cs, tls, (1,)))
        if smime:
            self.smime_cs = len(sessions) + 1
            sessions.append(MikeyGenericIdEntry(self.smime_cs, self.profile.prot_types.psk_smime))
        self.transfer = MikeyTransferInitiator.build(
            granted, self.responder.encode(), sessions, policies, now=now, profile=self.profile
        )
        return str(SdpKeyMgmt("mikey", bytes(self.transfer.message)))

    def answer_keys(self, answer: SdpSession, *, now: float) -> UeMikeyKeys:
        """Verify the answer's TRANSFER_RESP; raises ``MikeyRemoteError`` or ``ValueError``."""
        if self.transfer is None:
            raise ValueError("no TRANSFER_INIT was offered")
        data = _transfer_resp(answer)
        if data is None:
            raise ValueError("the answer carries no a=key-mgmt:mikey")
        reply = MikeyMessage.parse(data)
        named = identity(reply, MikeyIdRole.IDRR)
        if named and named.decode("utf-8", "replace") != self.responder:
            raise MikeyRemoteError(
                f"TRANSFER_RESP from {named[:80]!r}, not {self.responder}",
                MikeyErrorCode.INVALID_ID,
            )
        teks = self.transfer.process_response(data, now=now)
        keys = UeMikeyKeys()
        if self.audio_cs is not None:
            tx, rx = (teks[cs] for cs in self.audio_cs)
            keys.audio = (SUITE, tx[1] + tx[2], rx[1] + rx[2])
        if self.tls_cs is not None:
            keys.psk = teks[self.tls_cs][1]
        if self.bfcp_cs is not None:
            keys.bfcp_psk = teks[self.bfcp_cs][1]
        if self.smime_cs is not None:
            entry = reply.header.generic_entry(self.smime_cs)
            if entry is None or not entry.spi:
                raise MikeyRemoteError(
                    "no SPI for the PSK S/MIME crypto session", MikeyErrorCode.INVALID_SP
                )
            keys.smime = (teks[self.smime_cs][1], entry.spi)
        return keys


def _transfer_resp(answer: SdpSession) -> bytes | None:
    values = [a.value or "" for a in answer.attributes if a.name == "key-mgmt"]
    for media in answer.media:
        values += [a.value or "" for a in media.attributes if a.name == "key-mgmt"]
    for value in values:
        parsed = SdpKeyMgmt.parse(value)
        if parsed.protocol == "mikey":
            return parsed.data
    return None
