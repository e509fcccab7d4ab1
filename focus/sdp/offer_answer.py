"""Offer/answer (RFC 3264) for the conference focus, with SDES keying (RFC 4568).

The focus is always the answerer for dial-in. Two pure steps::

    plan = plan_answer(offer, policy, previous=None)   # decide, draw fresh keys
    answer = build_answer(offer, plan, local_host="192.0.2.1",
                          ports={0: 40000}, session_id=sid, session_version=1)

``plan_answer(offer: SdpSession, policy: SdpFocusPolicy = SdpFocusPolicy(),
previous: SdpAnswerPlan | None = None) -> SdpAnswerPlan`` returns one
``SdpStreamPlan`` per offered m-line, in offer order (RFC 3264 §6). Rules:

- audio on RTP/SAVP or RTP/SAVPF with at least one acceptable ``a=crypto`` is
  accepted with the first acceptable line in offer order (the offerer's
  preference, RFC 4568 §5.1.1). A line is skipped when its suite is not in
  ``policy.suites``, it has more than one master key, a non-``inline`` key
  method, an MKI while ``policy.accept_mki`` is off, or a session parameter
  we do not implement: UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP,
  UNAUTHENTICATED_SRTP, KDR, FEC_KEY or an unknown one (WSH and FEC_ORDER are
  harmless hints). Malformed crypto lines are skipped, not fatal.  With
  ``policy.sdes_refused`` set (the focus's ``sip.sdes_requires_tls``: the offer
  did not come over TLS or a trusted proxy) a line keyed only by ``a=crypto``
  is refused with that reason -- not even answered as plain RTP.
- audio on RTP/AVP(F) with ``a=crypto`` is Opportunistic SRTP (RFC 8643): we
  answer RTP/AVP with a crypto line and use SRTP. Plain RTP/AVP without crypto
  is accepted only when ``policy.require_security`` is False.
- MIKEY-TICKET (``a=key-mgmt:mikey``, RFC 4567 / RFC 6043): the keys are
  resolved *before* planning (``focus.keying``, it needs the KMS) and passed
  as ``policy.mikey`` (:class:`SdpMikeyKeys`, per m-line index): an RTP/SAVP(F)
  line with SRTP keys there is accepted with ``key_mode="mikey-ticket"`` (no
  ``a=crypto`` in the answer), a TCP/TLS/MSRP line with a PSK there needs no
  fingerprint (``key_mode="psk"``, ``plan.psk``).  ``build_answer(...,
  mikey=keys)`` writes the TRANSFER_RESP ``a=key-mgmt`` where the offer had
  its TRANSFER_INIT (session or media level).
- audio on UDP/TLS/RTP/SAVP(F) is DTLS-SRTP (``key_mode="dtls"``, when the
  policy's key modes have ``dtls``): ``focus.sdp.dtls`` checks the offer's
  ``a=fingerprint``/``a=setup`` (``plan.dtls``); the keys come later from the
  handshake.  An offer with ICE credentials and candidates gets ``plan.ice``
  (``focus.sdp.ice``), whatever its key mode.
- everything else gets port 0: video, application, message (MSRP), TCP,
  and offers keyed only by ``a=key-mgmt`` without resolved keys. At most
  ``policy.max_audio_streams`` audio streams are accepted.
- codecs: the offered payload types matching ``policy.codecs`` (PCMU/8000,
  PCMA/8000, G722/8000 and opus/48000/2 by default: what the mixer,
  ``mrf.rtp.codec``, encodes; static types need no rtpmap, RFC 3551 §6) plus the
  first ``telephone-event/8000`` type (RFC 4733), all in offer order with the
  offer's numbers (RFC 3264 §6.1). The first one is the preferred send codec.
- direction (RFC 3264 §6.1): sendonly→recvonly, recvonly→sendonly,
  inactive→inactive, sendrecv→sendrecv. Legacy hold ``c=0.0.0.0``
  (RFC 3264 §8.4) counts as "the offerer will not receive": sendrecv is
  treated as sendonly and recvonly as inactive. ``on_hold`` is set for
  ``c=0.0.0.0``, sendonly and inactive offers.
- ``SdpRemoteError(488, reason)`` when no audio stream is acceptable;
  ``SdpRemoteError(400, reason)`` for a malformed offer (bad rtpmap, missing
  ``c=``, two direction attributes...).

Keys: every plan draws a fresh local master key and salt per accepted stream
with ``generate_key_salt`` (secrets.token_bytes), so two participants (or two
answers) never share a key.  Both directions' keys are held as
:class:`~focus.sdp.secret.SecretBytes`, which the media plane borrows;
:meth:`SdpAnswerPlan.wipe` zeroes them (the focus does at hang-up and when a
re-offer replaces them). Re-offers (re-INVITE, RFC 3264 §8): pass the
``previous`` plan. A new local key is generated for every answer in which
the offerer changed its key, tag or suite (RFC 4568 §7.1.4 allows either);
when the offerer kept its key (hold, an ICE updated offer) we keep ours too,
because baresip 1.0 does not re-key its inbound SRTP on a re-INVITE answer
(the media plane then keeps its SRTP contexts, ``RtpStream.set_keys``): the
new plan then holds the very same key objects as the previous one.
``previous`` is used to keep the previously chosen crypto line (same tag and
suite) when it is still offered, to refuse an m-line count that shrinks
(RFC 3264 §8) and to refuse a downgrade of a secured stream to plain RTP.
Our answer never carries an MKI (each direction's key parameters are
independent, RFC 4568 §6.1); the offerer's MKI is reported as
``crypto.remote_mki``: its SRTP packets carry it.

``build_answer(offer, plan, *, local_host, ports, session_id, session_version,
username="mrf", rtcp_ports=None) -> SdpSession`` writes the answer: same
m-lines in the same order; rejected ones keep the offer's proto and formats
with port 0; accepted audio gets our payload types with rtpmaps, the
telephone-event fmtp ``0-15``, ``a=ptime``, the answer direction, ``a=rtcp``
when our RTCP port is not RTP+1, ``a=rtcp-mux`` when agreed, and
``a=crypto:<offer tag> <suite> inline:<base64 key||salt>``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from focus.sdp.attributes import (
    SdpCrypto,
    SdpDirection,
    SdpFingerprint,
    SdpRtpmap,
    direction,
    key_mgmts,
    rtcp,
    rtcp_mux,
    rtpmaps,
)
from focus.sdp.bfcp import (
    BfcpRejected,
    SdpBfcpLocal,
    SdpBfcpPlan,
    SdpBfcpPolicy,
    bfcp_answer_media,
    is_bfcp,
    plan_bfcp,
)
from focus.sdp.dtls import (
    DTLS_PROTOS,
    DtlsRejected,
    SdpDtlsPlan,
    dtls_answer_attributes,
    is_dtls,
    plan_dtls,
)
from focus.sdp.ice import SdpIcePlan, ice_answer_attributes, plan_ice
from focus.sdp.msrp import (
    MsrpRejected,
    SdpMsrpLocal,
    SdpMsrpPlan,
    SdpMsrpPolicy,
    msrp_answer_media,
    plan_msrp,
)
from focus.sdp.sdes import SDES_SUITES, generate_key_salt
from focus.sdp.secret import SecretBytes
from focus.sdp.session import (
    SdpAttribute,
    SdpConnection,
    SdpLocalError,
    SdpMedia,
    SdpOrigin,
    SdpRemoteError,
    SdpSession,
    SdpTiming,
)

__all__ = [
    "DEFAULT_SUITES",
    "SUPPORTED_KEY_MODES",
    "SdpAnswerPlan",
    "SdpCodec",
    "SdpCryptoChoice",
    "SdpFocusPolicy",
    "SdpMikeyKeys",
    "SdpStreamPlan",
    "build_answer",
    "plan_answer",
]

SUPPORTED_KEY_MODES = frozenset({"sdes", "mikey-ticket", "dtls"})
DEFAULT_SUITES = (
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
)
_SECURE_PROTOS = frozenset({"RTP/SAVP", "RTP/SAVPF"})
_PLAIN_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF"})
_REFUSED_PARAMS = frozenset(
    {"UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP", "KDR", "FEC_KEY"}
)
_HINT_PARAMS = frozenset({"WSH", "FEC_ORDER"})
_TELEPHONE_EVENTS = "0-15"  # DTMF digits, RFC 4733 §3.2

# RFC 3551 §6: static audio payload types usable without an rtpmap.
_STATIC_AUDIO = {
    0: SdpRtpmap(0, "PCMU", 8000),
    3: SdpRtpmap(3, "GSM", 8000),
    4: SdpRtpmap(4, "G723", 8000),
    8: SdpRtpmap(8, "PCMA", 8000),
    9: SdpRtpmap(9, "G722", 8000),
    18: SdpRtpmap(18, "G729", 8000),
}
# RFC 3264 §6.1 answer directions.
_ANSWER_DIRECTION = {
    SdpDirection.SENDRECV: SdpDirection.SENDRECV,
    SdpDirection.SENDONLY: SdpDirection.RECVONLY,
    SdpDirection.RECVONLY: SdpDirection.SENDONLY,
    SdpDirection.INACTIVE: SdpDirection.INACTIVE,
}
# RFC 3264 §8.4: c=0.0.0.0 means the offerer does not want to receive.
_LEGACY_HOLD = {
    SdpDirection.SENDRECV: SdpDirection.SENDONLY,
    SdpDirection.RECVONLY: SdpDirection.INACTIVE,
}


@dataclass(frozen=True, slots=True)
class SdpCodec:
    """An audio codec the mixer can use (RFC 4855 names, case-insensitive)."""

    encoding: str
    clock_rate: int
    channels: int = 1


PCMU = SdpCodec("PCMU", 8000)
PCMA = SdpCodec("PCMA", 8000)
G722 = SdpCodec("G722", 8000)  # 16 kHz audio, 8000 RTP clock (RFC 3551 §4.5.2)
OPUS = SdpCodec("opus", 48000, 2)  # always opus/48000/2 in SDP (RFC 7587 §6.1)


@dataclass(slots=True)
class SdpMikeyKeys:
    """MIKEY-TICKET keys resolved before planning (``focus.keying``), per m-line index.

    ``srtp``: ``(suite, rx key||salt, tx key||salt)`` of an audio line;
    ``psk``: the TLS-PSK of a TCP/TLS/MSRP or BFCP line (decision (d));
    ``ssrc``: the SSRC our TRANSFER_RESP announced for the audio we send;
    ``smime``: ``(TEK, SPI)`` of a PSK S/MIME crypto session (the NOTIFY KEK,
    ``notify.kek.CallKekProvider``); the ``a=key-mgmt`` values
    (``mikey <base64 TRANSFER_RESP>``) for the answer.
    """

    srtp: dict[int, tuple[str, SecretBytes, SecretBytes]] = field(default_factory=dict, repr=False)
    psk: dict[int, SecretBytes] = field(default_factory=dict, repr=False)
    ssrc: dict[int, int] = field(default_factory=dict)
    session_key_mgmt: str | None = None
    media_key_mgmt: dict[int, str] = field(default_factory=dict)
    transfer_inits: tuple[bytes, ...] = field(default=(), repr=False)  # what was answered
    smime: tuple[SecretBytes, bytes] | None = field(default=None, repr=False)  # (TEK, SPI)

    def wipe(self) -> None:
        """Zero every key held here (hang-up, or a re-offer with other keys)."""
        for held in _mikey_secrets(self):
            held.wipe()


@dataclass(frozen=True, slots=True)
class SdpFocusPolicy:
    """What the focus accepts; see the module docstring for the rules."""

    require_security: bool = True
    key_modes: frozenset[str] = SUPPORTED_KEY_MODES
    suites: tuple[str, ...] = DEFAULT_SUITES
    codecs: tuple[SdpCodec, ...] = (PCMU, PCMA, G722, OPUS)
    telephone_event: bool = True
    ptime: int = 20
    max_audio_streams: int = 1
    accept_mki: bool = True
    mki_suites: frozenset[str] | None = None  # suites whose MKI the media plane strips
    accept_rtcp_mux: bool = False
    msrp: SdpMsrpPolicy | None = None  # chat (focus.sdp.msrp); None refuses m=message
    bfcp: SdpBfcpPolicy | None = None  # floor control (focus.sdp.bfcp); None refuses BFCP
    mikey: SdpMikeyKeys | None = None  # MIKEY-TICKET keys of this offer (focus.keying)
    sdes_refused: str | None = None  # why SDES is refused for this offer (signalling)

    def __post_init__(self) -> None:
        if not self.key_modes <= SUPPORTED_KEY_MODES:
            raise SdpLocalError(f"unsupported key modes: {sorted(self.key_modes)}")
        unknown = [s for s in self.suites if s not in SDES_SUITES]
        if unknown:
            raise SdpLocalError(f"unknown SRTP suites: {unknown}")
        if not self.codecs or self.ptime <= 0 or self.max_audio_streams < 1:
            raise SdpLocalError("policy needs codecs, a positive ptime and max_audio_streams")


@dataclass(frozen=True, slots=True)
class SdpCryptoChoice:
    """The chosen ``a=crypto`` line and both directions' key material."""

    tag: int
    suite: str
    remote_key_salt: SecretBytes = field(repr=False)
    local_key_salt: SecretBytes = field(repr=False)
    remote_mki: bytes | None = None
    remote_lifetime: int | None = None

    @property
    def local_inline(self) -> str:
        """``inline:<base64(key||salt)>`` (RFC 4568 §6.1), padded base64."""
        return "inline:" + base64.b64encode(self.local_key_salt.view()).decode("ascii")


@dataclass(frozen=True, slots=True)
class SdpStreamPlan:
    """The decision for one offered m-line (``index`` counts from 0)."""

    index: int
    kind: str
    accepted: bool
    reason: str | None
    proto: str
    payload_types: list[int] = field(default_factory=list)
    rtpmaps: list[SdpRtpmap] = field(default_factory=list)
    telephone_event_pt: int | None = None
    remote_host: str | None = None
    remote_port: int = 0
    remote_rtcp_host: str | None = None
    remote_rtcp_port: int | None = None
    direction_offer: SdpDirection = SdpDirection.SENDRECV
    direction_answer: SdpDirection = SdpDirection.INACTIVE
    on_hold: bool = False
    rtcp_mux: bool = False
    ptime: int = 20
    crypto: SdpCryptoChoice | None = None
    key_mode: str = "none"
    msrp: SdpMsrpPlan | None = None  # set for an accepted m=message (focus.sdp.msrp)
    bfcp: SdpBfcpPlan | None = None  # set for an accepted BFCP line (focus.sdp.bfcp)
    psk: SecretBytes | None = field(default=None, repr=False)  # TLS-PSK from MIKEY-TICKET
    local_ssrc: int | None = None  # the SSRC a MIKEY TRANSFER_RESP announced
    dtls: SdpDtlsPlan | None = None  # DTLS-SRTP keying (focus.sdp.dtls), key_mode "dtls"
    ice: SdpIcePlan | None = None  # the offer's ICE (focus.sdp.ice), any key mode


@dataclass(frozen=True, slots=True)
class SdpAnswerPlan:
    streams: tuple[SdpStreamPlan, ...]

    @property
    def accepted(self) -> tuple[SdpStreamPlan, ...]:
        return tuple(s for s in self.streams if s.accepted)

    def secrets(self) -> list[SecretBytes]:
        """The key objects of this plan: SRTP keys both ways, TLS-PSKs."""
        held: list[SecretBytes] = []
        for stream in self.streams:
            if stream.crypto is not None:
                held += [stream.crypto.remote_key_salt, stream.crypto.local_key_salt]
            if stream.psk is not None:
                held.append(stream.psk)
        return held

    def wipe(self, keep: SdpAnswerPlan | None = None) -> None:
        """Zero this plan's keys, except those ``keep`` (the plan replacing it) holds too."""
        kept = {id(held) for held in keep.secrets()} if keep is not None else set()
        for held in self.secrets():
            if id(held) not in kept:
                held.wipe()


def _mikey_secrets(keys: SdpMikeyKeys) -> list[SecretBytes]:
    held = [k for _, rx, tx in keys.srtp.values() for k in (rx, tx)]
    return held + list(keys.psk.values()) + ([keys.smime[0]] if keys.smime else [])


class _StreamRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def plan_answer(
    offer: SdpSession,
    policy: SdpFocusPolicy | None = None,
    previous: SdpAnswerPlan | None = None,
) -> SdpAnswerPlan:
    """Decide the answer to ``offer``; raise ``SdpRemoteError(488)`` if no audio fits."""
    policy = policy or SdpFocusPolicy()
    if previous is not None and len(offer.media) < len(previous.streams):
        raise SdpRemoteError(488, "re-offer removed m-lines (RFC 3264 §8)")
    streams: list[SdpStreamPlan] = []
    for index, media in enumerate(offer.media):
        prev = previous.streams[index] if previous and index < len(previous.streams) else None
        full = sum(s.accepted and s.kind == "audio" for s in streams) >= policy.max_audio_streams
        try:
            if policy.bfcp is not None and is_bfcp(media):
                streams.append(SdpStreamPlan(index, media.kind, False, "later", media.proto))
                continue
            if media.kind == "message" and policy.msrp is not None:
                psk = policy.mikey.psk.get(index) if policy.mikey else None
                streams.append(_plan_message(offer, index, media, policy.msrp, psk))
                continue
            streams.append(_plan_audio(offer, index, media, policy, prev, full=full))
        except _StreamRejected as exc:
            streams.append(SdpStreamPlan(index, media.kind, False, exc.reason, media.proto))
    if policy.bfcp is not None:
        _plan_floors(offer, streams, policy.bfcp, policy.mikey)
    if not any(s.accepted for s in streams):
        reasons = "; ".join(f"m-line {s.index}: {s.reason}" for s in streams)
        code = _warn_code(offer, streams, policy)
        raise SdpRemoteError(488, f"no acceptable stream ({reasons or 'no m-lines'})", code)
    return SdpAnswerPlan(tuple(streams))


def _warn_code(offer: SdpSession, streams: list[SdpStreamPlan], policy: SdpFocusPolicy) -> int:
    """RFC 3261 §20.43 for an offer with nothing acceptable: 304 when no m-line is of a
    kind we serve, 305 when only the codecs did not match, 399 (policy, keys...) else."""
    served = [
        m for m in offer.media
        if m.kind == "audio" or (m.kind == "message" and policy.msrp is not None)
        or (policy.bfcp is not None and is_bfcp(m))
    ]  # fmt: skip
    if not served:
        return 304
    if {s.reason for s in streams} == {"no common audio codec"}:
        return 305
    return 399


def _plan_floors(
    offer: SdpSession,
    streams: list[SdpStreamPlan],
    policy: SdpBfcpPolicy,
    mikey: SdpMikeyKeys | None = None,
) -> None:
    """BFCP lines (focus.sdp.bfcp), once the audio line the floor controls is known.

    A line with a MIKEY-TICKET TLS-PSK (``mikey.psk``) is ``key_mode="psk"``."""
    audio = next((s.index for s in streams if s.accepted and s.kind == "audio"), None)
    for index, media in enumerate(offer.media):
        if not is_bfcp(media):
            continue
        try:
            psk = mikey.psk.get(index) if mikey else None
            plan = plan_bfcp(offer, media, policy, audio, psk=psk is not None)
        except BfcpRejected as exc:
            streams[index] = SdpStreamPlan(index, media.kind, False, exc.reason, media.proto)
            continue
        mode = "psk" if psk is not None else "fingerprint" if plan.secure else "none"
        streams[index] = SdpStreamPlan(
            index, media.kind, True, None, media.proto, key_mode=mode, bfcp=plan, psk=psk
        )


def _plan_message(
    offer: SdpSession,
    index: int,
    media: SdpMedia,
    policy: SdpMsrpPolicy,
    psk: SecretBytes | None,
) -> SdpStreamPlan:
    try:
        chat = plan_msrp(offer, media, policy, psk=psk is not None)
    except MsrpRejected as exc:
        raise _StreamRejected(exc.reason) from exc
    mode = "psk" if psk is not None else "fingerprint" if chat.secure else "none"
    return SdpStreamPlan(
        index, "message", True, None, media.proto, key_mode=mode, msrp=chat, psk=psk
    )


def _plan_audio(
    offer: SdpSession,
    index: int,
    media: SdpMedia,
    policy: SdpFocusPolicy,
    prev: SdpStreamPlan | None,
    *,
    full: bool,
) -> SdpStreamPlan:
    if media.port == 0:
        raise _StreamRejected("stream disabled in the offer (port 0)")
    if media.kind != "audio":
        raise _StreamRejected(f"{media.kind} streams are not supported")
    if media.proto not in _SECURE_PROTOS | _PLAIN_PROTOS | DTLS_PROTOS:
        raise _StreamRejected(f"transport {media.proto} is not supported")
    if media.port_count not in (None, 1):
        raise _StreamRejected("layered port ranges are not supported")
    if full:
        raise _StreamRejected("no more audio streams accepted for this participant")
    payload_types, maps, te_pt = _match_codecs(media, policy)
    connection = offer.connection_for(media)
    if connection is None:
        raise SdpRemoteError(400, f"m-line {index} has no c= line (RFC 8866 §5.7)")
    mikey = policy.mikey.srtp.get(index) if policy.mikey else None
    dtls = _plan_dtls_keying(offer, media, policy, prev)
    if mikey is not None and media.proto in _SECURE_PROTOS:  # keyed by MIKEY-TICKET
        crypto: SdpCryptoChoice | None = SdpCryptoChoice(0, *mikey)
        mode = "mikey-ticket"
    elif dtls is not None:  # keyed by the DTLS handshake on the media path
        crypto, mode = None, "dtls"
    else:
        crypto = _plan_keying(offer, media, policy, prev)
        mode = "none" if crypto is None else "sdes"
    offered = direction(media, offer)
    effective = _LEGACY_HOLD.get(offered, offered) if connection.is_hold else offered
    rtcp_host, rtcp_port, mux = _rtcp_target(media, connection, policy)
    return SdpStreamPlan(
        index=index,
        kind=media.kind,
        accepted=True,
        reason=None,
        proto=media.proto,
        payload_types=payload_types,
        rtpmaps=maps,
        telephone_event_pt=te_pt,
        remote_host=connection.address,
        remote_port=media.port,
        remote_rtcp_host=rtcp_host,
        remote_rtcp_port=rtcp_port,
        direction_offer=offered,
        direction_answer=_ANSWER_DIRECTION[effective],
        on_hold=connection.is_hold or offered in (SdpDirection.SENDONLY, SdpDirection.INACTIVE),
        rtcp_mux=mux,
        ptime=policy.ptime,
        crypto=crypto,
        key_mode=mode,
        local_ssrc=policy.mikey.ssrc.get(index) if mikey is not None and policy.mikey else None,
        dtls=dtls,
        ice=plan_ice(offer, media, prev.ice if prev else None),
    )


def _plan_dtls_keying(
    offer: SdpSession, media: SdpMedia, policy: SdpFocusPolicy, prev: SdpStreamPlan | None
) -> SdpDtlsPlan | None:
    """DTLS-SRTP (RFC 5763) for UDP/TLS/RTP/SAVP(F) lines; raises ``_StreamRejected``."""
    if not is_dtls(media):
        return None
    if "dtls" not in policy.key_modes:
        raise _StreamRejected(f"{media.proto}: DTLS-SRTP not accepted by this conference's policy")
    try:
        return plan_dtls(offer, media, prev.dtls if prev else None)
    except DtlsRejected as exc:
        raise _StreamRejected(exc.reason) from exc


def _plan_keying(
    offer: SdpSession, media: SdpMedia, policy: SdpFocusPolicy, prev: SdpStreamPlan | None
) -> SdpCryptoChoice | None:
    """SDES choice, or None for accepted plain RTP; raises ``_StreamRejected``."""
    secure = media.proto in _SECURE_PROTOS
    offered = media.get_attributes("crypto")
    if offered and policy.sdes_refused:  # its keys crossed unprotected signalling
        raise _StreamRejected(policy.sdes_refused)
    choice: SdpCryptoChoice | None = None
    problems: list[str] = []
    if offered and "sdes" in policy.key_modes:
        choice, problems = _choose_crypto(offered, policy, prev)
    if choice is not None:
        return choice
    if problems:
        detail = "; ".join(problems)
    elif offered:
        detail = "a=crypto (SDES) not accepted by this conference's policy"
    elif key_mgmts(media, offer) and "mikey-ticket" not in policy.key_modes:
        detail = "a=key-mgmt not accepted by this conference's policy"
    elif key_mgmts(media, offer):
        detail = "a=key-mgmt gave no MIKEY-TICKET keys (this server has no KMS?)"
    else:
        detail = "no a=crypto"
    if secure or policy.require_security:
        raise _StreamRejected(f"no acceptable keying for {media.proto}: {detail}")
    if prev is not None and prev.key_mode != "none":
        raise _StreamRejected("re-offer would downgrade a secured stream to plain RTP")
    return None


def _choose_crypto(
    offered: list[SdpAttribute], policy: SdpFocusPolicy, prev: SdpStreamPlan | None
) -> tuple[SdpCryptoChoice | None, list[str]]:
    problems: list[str] = []
    candidates: list[SdpCrypto] = []
    tags: set[int] = set()
    for attribute in offered:
        try:
            crypto = SdpCrypto.parse(attribute.value or "")
        except SdpRemoteError as exc:
            problems.append(f"malformed a=crypto ({exc.reason})")
            continue
        if crypto.tag in tags:
            raise _StreamRejected(f"duplicate crypto tag {crypto.tag} (RFC 4568 §9.1)")
        tags.add(crypto.tag)
        problem = _crypto_problem(crypto, policy)
        if problem:
            problems.append(f"crypto:{crypto.tag} {problem}")
        else:
            candidates.append(crypto)
    if not candidates:
        return None, problems
    chosen = candidates[0]
    if prev is not None and prev.crypto is not None:
        same = [c for c in candidates if (c.tag, c.suite) == (prev.crypto.tag, prev.crypto.suite)]
        chosen = same[0] if same else chosen
    key = chosen.keys[0]
    old = prev.crypto if prev is not None and prev.key_mode == "sdes" else None
    if (
        old is not None
        and (old.tag, old.suite) == (chosen.tag, chosen.suite)
        and (old.remote_key_salt == key.key_salt)
    ):  # the offerer kept its key (e.g. ICE's updated offer): so do we, same objects
        remote, local = old.remote_key_salt, old.local_key_salt
    else:
        remote = SecretBytes(key.key_salt)
        local = SecretBytes(generate_key_salt(chosen.suite))
    return (
        SdpCryptoChoice(
            tag=chosen.tag,
            suite=chosen.suite,
            remote_key_salt=remote,
            local_key_salt=local,
            remote_mki=key.mki,
            remote_lifetime=key.lifetime,
        ),
        problems,
    )


def _crypto_problem(crypto: SdpCrypto, policy: SdpFocusPolicy) -> str | None:
    if crypto.suite not in policy.suites:
        return f"suite {crypto.suite} not supported"
    if len(crypto.keys) != 1:
        return "more than one master key is not supported"
    key = crypto.keys[0]
    if key.method != "inline":
        return f"key method {key.method} not supported"
    if key.mki_value is not None and not policy.accept_mki:
        return "MKI not supported"
    if key.mki_value is not None and policy.mki_suites is not None:
        if crypto.suite not in policy.mki_suites:
            return f"MKI not supported with {crypto.suite}"
    for param in crypto.session_params:
        name = param.partition("=")[0]
        if name in _REFUSED_PARAMS:
            return f"session parameter {name} refused"
        if name not in _HINT_PARAMS:
            return f"unknown session parameter {name[:32]}"
    return None


def _match_codecs(
    media: SdpMedia, policy: SdpFocusPolicy
) -> tuple[list[int], list[SdpRtpmap], int | None]:
    maps = rtpmaps(media)
    payload_types: list[int] = []
    chosen: list[SdpRtpmap] = []
    te_pt: int | None = None
    for fmt in media.formats:
        if not fmt.isdigit() or len(fmt) > 3 or int(fmt) in payload_types:
            continue
        pt = int(fmt)
        rtpmap = maps.get(pt) or _STATIC_AUDIO.get(pt)
        if rtpmap is None:
            continue
        codec = any(rtpmap.matches(c.encoding, c.clock_rate, c.channels) for c in policy.codecs)
        event = policy.telephone_event and te_pt is None and rtpmap.matches("telephone-event", 8000)
        if codec or event:
            payload_types.append(pt)
            chosen.append(rtpmap)
            te_pt = pt if event and not codec else te_pt
    if all(pt == te_pt for pt in payload_types):
        raise _StreamRejected("no common audio codec")
    return payload_types, chosen, te_pt


def _rtcp_target(
    media: SdpMedia, connection: SdpConnection, policy: SdpFocusPolicy
) -> tuple[str, int, bool]:
    """RTCP destination: rtcp-mux (RFC 5761), a=rtcp (RFC 3605) or RTP port + 1."""
    if policy.accept_rtcp_mux and rtcp_mux(media):
        return connection.address, media.port, True
    explicit = rtcp(media)
    if explicit is not None:
        host = explicit.connection.address if explicit.connection else connection.address
        return host, explicit.port, False
    if media.port >= 65535:
        raise _StreamRejected("RTP port 65535 leaves no RTCP port")
    return connection.address, media.port + 1, False


def build_answer(
    offer: SdpSession,
    plan: SdpAnswerPlan,
    *,
    local_host: str,
    ports: dict[int, int],
    session_id: int,
    session_version: int,
    username: str = "mrf",
    rtcp_ports: dict[int, int] | None = None,
    msrp_local: dict[int, tuple[SdpMsrpLocal, SdpMsrpPolicy]] | None = None,
    bfcp_local: dict[int, SdpBfcpLocal] | None = None,
    mikey: SdpMikeyKeys | None = None,
    dtls_fingerprint: SdpFingerprint | None = None,
) -> SdpSession:
    """Write the answer for ``plan`` (RFC 3264 §6); raises ``SdpLocalError`` on misuse.

    ``dtls_fingerprint`` is our DTLS certificate's (RFC 8122), needed when a
    stream is keyed by DTLS-SRTP; ICE lines get our host candidates on
    ``local_host`` (``focus.sdp.ice``)."""
    if len(plan.streams) != len(offer.media):
        raise SdpLocalError("plan does not belong to this offer")
    if session_id < 0 or session_version < 0 or not local_host or " " in local_host:
        raise SdpLocalError("invalid origin values")
    addrtype = "IP6" if ":" in local_host else "IP4"
    media = [
        _message_media(stream, offer.media[stream.index], msrp_local or {})
        if stream.msrp is not None
        else _floor_media(stream, offer.media[stream.index], bfcp_local or {})
        if stream.bfcp is not None
        else _answer_media(stream, offer.media[stream.index], ports, rtcp_ports or {})
        for stream in plan.streams
    ]
    for stream in plan.streams:  # RFC 8856 §10.2: a=label on each controlled m-line
        floor = stream.bfcp
        if floor is None or floor.stream_index is None:  # None: the conference's audio
            continue
        if not media[floor.stream_index].get_attribute("label"):
            media[floor.stream_index].attributes.append(SdpAttribute("label", floor.label))
    _transport_answer(plan, media, local_host, ports, rtcp_ports or {}, dtls_fingerprint)
    timings = [SdpTiming(t.start, t.stop, list(t.repeats)) for t in offer.timings]
    return SdpSession(
        origin=SdpOrigin(username, session_id, session_version, local_host, addrtype),
        name="-",
        connection=SdpConnection(local_host, addrtype),
        timings=timings or [SdpTiming()],
        attributes=[*_bundle_answer(offer, media), *_mikey_answer(plan, media, mikey)],
        media=media,
    )


def _bundle_answer(offer: SdpSession, media: list[SdpMedia]) -> list[SdpAttribute]:
    """``a=mid`` (RFC 5888 §9.1) on each accepted line whose offer named one, and a
    BUNDLE group (RFC 8843 §7.3) when exactly one accepted RTP line is in the offer's
    group: what a browser asks for with ``bundlePolicy: "max-bundle"``.  Several RTP
    lines are not bundled (each has its own transport here), so no group then."""
    bundled: list[str] = []
    groups = [a.value or "" for a in offer.attributes if a.name == "group"]
    offered = {tag for g in groups if g.split()[:1] == ["BUNDLE"] for tag in g.split()[1:]}
    for line, offered_line in zip(media, offer.media, strict=True):
        mid = offered_line.get_attribute("mid")
        if line.port == 0 or mid is None or not mid.value:
            continue
        if line.get_attribute("mid") is None:
            line.attributes.append(SdpAttribute("mid", mid.value))
        if mid.value in offered and "RTP" in line.proto:
            bundled.append(mid.value)
    return [SdpAttribute("group", f"BUNDLE {bundled[0]}")] if len(bundled) == 1 else []


def _transport_answer(
    plan: SdpAnswerPlan,
    media: list[SdpMedia],
    host: str,
    ports: dict[int, int],
    rtcp_ports: dict[int, int],
    fingerprint: SdpFingerprint | None,
) -> None:
    """DTLS (a=setup, a=fingerprint) and ICE (credentials, candidates) of accepted audio."""
    for stream in plan.accepted:
        line = media[stream.index]
        if stream.dtls is not None:
            if fingerprint is None:
                raise SdpLocalError(f"m-line {stream.index} needs our DTLS fingerprint")
            line.attributes += dtls_answer_attributes(stream.dtls, fingerprint)
        if stream.ice is not None and stream.index in ports:
            port = ports[stream.index]
            rtcp_port = None if stream.rtcp_mux else rtcp_ports.get(stream.index, port + 1)
            line.attributes += ice_answer_attributes(stream.ice, host, port, rtcp_port)


def _mikey_answer(
    plan: SdpAnswerPlan, media: list[SdpMedia], mikey: SdpMikeyKeys | None
) -> list[SdpAttribute]:
    """RFC 4567: TRANSFER_RESP where the TRANSFER_INIT was; TLS-PSK lines lose the fingerprint."""
    if mikey is None:
        return []
    for stream in plan.accepted:
        line = media[stream.index]
        if stream.psk is not None:
            line.attributes = [a for a in line.attributes if a.name != "fingerprint"]
        if stream.index in mikey.media_key_mgmt and stream.key_mode in ("mikey-ticket", "psk"):
            line.attributes.append(SdpAttribute("key-mgmt", mikey.media_key_mgmt[stream.index]))
    used = any(s.key_mode in ("mikey-ticket", "psk") for s in plan.accepted)
    if mikey.session_key_mgmt is None or not used:
        return []
    return [SdpAttribute("key-mgmt", mikey.session_key_mgmt)]


def _floor_media(
    stream: SdpStreamPlan, offered: SdpMedia, bfcp_local: dict[int, SdpBfcpLocal]
) -> SdpMedia:
    local = bfcp_local.get(stream.index)
    if local is None or stream.bfcp is None:
        raise SdpLocalError(f"no BFCP session for accepted m-line {stream.index}")
    return bfcp_answer_media(offered, stream.bfcp, local)


def _message_media(
    stream: SdpStreamPlan,
    offered: SdpMedia,
    msrp_local: dict[int, tuple[SdpMsrpLocal, SdpMsrpPolicy]],
) -> SdpMedia:
    local = msrp_local.get(stream.index)
    if local is None or stream.msrp is None:
        raise SdpLocalError(f"no MSRP session for accepted m-line {stream.index}")
    return msrp_answer_media(offered, stream.msrp, *local)


def _answer_media(
    stream: SdpStreamPlan, offered: SdpMedia, ports: dict[int, int], rtcp_ports: dict[int, int]
) -> SdpMedia:
    if not stream.accepted:
        return SdpMedia(offered.kind, 0, offered.proto, list(offered.formats))
    port = ports.get(stream.index)
    if port is None or not 0 < port <= 65535:
        raise SdpLocalError(f"no valid local port for accepted m-line {stream.index}")
    attributes = [SdpAttribute("rtpmap", str(m)) for m in stream.rtpmaps]
    if stream.telephone_event_pt is not None:
        attributes.append(SdpAttribute("fmtp", f"{stream.telephone_event_pt} {_TELEPHONE_EVENTS}"))
    attributes += [
        SdpAttribute("ptime", str(stream.ptime)),
        SdpAttribute(stream.direction_answer.value),
    ]
    rtcp_port = rtcp_ports.get(stream.index)
    if rtcp_port is not None and rtcp_port != port + 1 and not stream.rtcp_mux:
        attributes.append(SdpAttribute("rtcp", str(rtcp_port)))
    if stream.rtcp_mux:
        attributes.append(SdpAttribute("rtcp-mux"))
    if stream.crypto is not None and stream.key_mode == "sdes":
        crypto = stream.crypto
        attributes.append(
            SdpAttribute("crypto", f"{crypto.tag} {crypto.suite} {crypto.local_inline}")
        )
    formats = [str(pt) for pt in stream.payload_types]
    return SdpMedia(offered.kind, port, stream.proto, formats, attributes=attributes)
