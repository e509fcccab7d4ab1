"""DTLS-SRTP in SDP offer/answer (RFC 5763, RFC 5764, RFC 8122), sans-I/O.

An audio m-line on ``UDP/TLS/RTP/SAVP`` or ``UDP/TLS/RTP/SAVPF`` (RFC 5764
§8) is keyed by a DTLS handshake on the media path.  ``plan_dtls`` checks the
offer and picks our DTLS role; ``dtls_answer_attributes`` writes ours.

- The offer needs at least one usable ``a=fingerprint`` (media level, else
  session level; SHA-256 or stronger, the one rule of
  ``focus.sdp.attributes.fingerprints_match``, RFC 8122 §5): the peer's certificate is
  checked against them once the handshake is done (RFC 5763 §5).  Without one
  the stream is refused.
- ``a=setup`` (RFC 4145 §4, RFC 5763 §5): ``actpass`` → we are ``active``
  (the answerer SHOULD be active), ``passive`` → ``active``, ``active`` or
  absent (RFC 4145 default) → ``passive``; ``holdconn`` is refused.
- A re-offer with the same fingerprints and ``actpass`` keeps our previous
  role, so the existing DTLS association goes on;
  different fingerprints mean a new association and new SRTP keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from focus.sdp.attributes import SdpFingerprint, SdpSetup, fingerprints, setup
from focus.sdp.session import SdpAttribute, SdpMedia, SdpRemoteError, SdpSession

__all__ = [
    "DTLS_PROTOS",
    "DtlsRejected",
    "SdpDtlsPlan",
    "dtls_answer_attributes",
    "is_dtls",
    "plan_dtls",
]

DTLS_PROTOS = frozenset({"UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"})
MAX_FINGERPRINTS = 8

# RFC 5763 §5 / RFC 4145 §4.1: the offerer's setup → the answerer's.
_ANSWER_SETUP = {
    None: SdpSetup.PASSIVE,
    SdpSetup.ACTIVE: SdpSetup.PASSIVE,
    SdpSetup.PASSIVE: SdpSetup.ACTIVE,
    SdpSetup.ACTPASS: SdpSetup.ACTIVE,
}


class DtlsRejected(Exception):
    """The m-line cannot be keyed by DTLS-SRTP; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SdpDtlsPlan:
    """Our DTLS role (``active`` = DTLS client) and the peer's certificate fingerprints."""

    setup: SdpSetup
    remote_fingerprints: tuple[SdpFingerprint, ...]

    @property
    def client(self) -> bool:
        return self.setup is SdpSetup.ACTIVE


def is_dtls(media: SdpMedia) -> bool:
    return media.proto in DTLS_PROTOS


def plan_dtls(offer: SdpSession, media: SdpMedia, previous: SdpDtlsPlan | None) -> SdpDtlsPlan:
    """Check the offer's fingerprints and setup; raise :class:`DtlsRejected` if unusable."""
    try:
        offered = fingerprints(media, offer)
        role = setup(media, offer)
    except SdpRemoteError as exc:
        raise DtlsRejected(exc.reason) from exc
    usable = tuple(f for f in offered if f.usable)[:MAX_FINGERPRINTS]
    if not usable:
        raise DtlsRejected("no usable a=fingerprint for DTLS-SRTP (RFC 8122 §5)")
    if role is SdpSetup.HOLDCONN:
        raise DtlsRejected("a=setup:holdconn: no DTLS association (RFC 4145 §4)")
    ours = _ANSWER_SETUP[role]
    if previous is not None and previous.remote_fingerprints == usable:
        if role is SdpSetup.ACTPASS:
            ours = previous.setup  # the same association goes on
    return SdpDtlsPlan(ours, usable)


def dtls_answer_attributes(plan: SdpDtlsPlan, local: SdpFingerprint) -> list[SdpAttribute]:
    """``a=setup`` with our role and ``a=fingerprint`` of our DTLS certificate."""
    return [SdpAttribute("setup", plan.setup.value), SdpAttribute("fingerprint", str(local))]
