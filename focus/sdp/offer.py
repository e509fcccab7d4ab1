"""The focus as offerer (dial-out): an SDES audio offer and the check of its answer.

RFC 3264 §5 and RFC 4568 §5.1: the offer carries one ``a=crypto`` line per
suite we accept, each with its own fresh key (keys are declarative: each side
sends its own transmit key), in our order of preference.  The answer picks one
line by echoing its tag with the same suite and carries the answerer's key
(§5.1.2).  :func:`accept_answer` turns a valid answer into the same
:class:`~focus.sdp.offer_answer.SdpAnswerPlan` the dial-in path produces, so the
media plane keys a dialled-out participant exactly like a dialled-in one: the
answerer's key inbound, our key of the chosen line outbound.

Every offer draws fresh keys, so two participants never share one; the keys of
the lines the answerer did not choose are never used, and :meth:`SdpOfferState.wipe`
zeroes them (the dial-out does once the answer is in, or the dial-out failed).

**MIKEY-TICKET** (``key_mgmt`` given, RFC 4567 §3 / RFC 6043): the offer
carries the TRANSFER_INIT as session-level ``a=key-mgmt`` and no ``a=crypto``;
the answer must not carry ``a=crypto`` either, and :func:`accept_answer` takes
the keys the caller derived from its TRANSFER_RESP (``mikey``, see
``focus.keying.MikeyDialOutKeys``): ``key_mode="mikey-ticket"``.

**Chat and floor control** (``msrp``/``bfcp`` given): the offer adds an
``m=message ... TCP/TLS/MSRP`` line (RFC 4975 §8, CEMA RFC 6714, our path and
certificate fingerprint, RFC 8122) and an ``m=application ... TCP/TLS/BFCP``
line on which the focus is the floor control server (RFC 8856 §10.1:
``a=floorctrl:s-only``, ``a=confid``, ``a=userid``, ``a=floorid`` naming the
audio line's ``a=label``), both ``a=setup:actpass`` (RFC 4145 §4).  The
answer's line is planned like a dial-in offer's (:func:`focus.sdp.msrp.plan_msrp`,
:func:`focus.sdp.bfcp.plan_bfcp`), with the answer rules of RFC 4145 §4.1: it
must say ``active`` or ``passive`` (absent means passive: we connect); a line
the answerer rejected, downgraded or left unusable is not opened (its plan is
not accepted, the audio is unaffected).
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field

from focus.sdp.attributes import SdpDirection, SdpRtpmap, SdpSetup, direction, setup
from focus.sdp.bfcp import (
    CONFERENCE_AUDIO_LABEL,
    BfcpRejected,
    SdpBfcpLocal,
    SdpBfcpPolicy,
    plan_bfcp,
)
from focus.sdp.msrp import (
    MsrpRejected,
    SdpMsrpLocal,
    SdpMsrpPolicy,
    msrp_offer_media,
    plan_msrp,
)
from focus.sdp.offer_answer import (
    DEFAULT_SUITES,
    PCMA,
    PCMU,
    SdpAnswerPlan,
    SdpCodec,
    SdpCryptoChoice,
    SdpStreamPlan,
)
from focus.sdp.sdes import SdpCrypto, generate_key_salt
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

STATIC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
TELEPHONE_EVENT_PT = 101
AUDIO_LABEL = CONFERENCE_AUDIO_LABEL  # the a=label our a=floorid names (RFC 4574, RFC 8856 §5.4)
_ANSWER_TO_OURS = {  # what we may send/receive given the answerer's direction
    SdpDirection.SENDRECV: SdpDirection.SENDRECV,
    SdpDirection.RECVONLY: SdpDirection.SENDONLY,
    SdpDirection.SENDONLY: SdpDirection.RECVONLY,
    SdpDirection.INACTIVE: SdpDirection.INACTIVE,
}


@dataclass(frozen=True, slots=True)
class SdpOfferState:
    """Our offer and the keys behind its crypto lines (kept for the answer)."""

    offer: SdpSession
    keys: dict[int, tuple[str, SecretBytes]] = field(repr=False)  # tag -> (suite, key||salt)
    payload_types: tuple[int, ...]
    telephone_event_pt: int | None
    key_mgmt: str | None = None  # our a=key-mgmt (MIKEY-TICKET TRANSFER_INIT)
    msrp: SdpMsrpLocal | None = None  # our chat line (m-line 1), when offered
    bfcp: SdpBfcpLocal | None = None  # our floor control line (last m-line), when offered

    def __bytes__(self) -> bytes:
        return bytes(self.offer)

    def wipe(self, keep: SdpAnswerPlan | None = None) -> None:
        """Zero our offered keys, except the one the answer chose (``keep`` holds it)."""
        kept = {id(held) for held in keep.secrets()} if keep is not None else set()
        for _, key in self.keys.values():
            if id(key) not in kept:
                key.wipe()


def build_offer(
    *,
    local_host: str,
    port: int,
    session_id: int,
    session_version: int = 0,
    suites: tuple[str, ...] = DEFAULT_SUITES,
    codecs: tuple[SdpCodec, ...] = (PCMU, PCMA),
    telephone_event: bool = True,
    ptime: int = 20,
    username: str = "mrf",
    key_mgmt: str | None = None,
    msrp: SdpMsrpLocal | None = None,
    bfcp: SdpBfcpLocal | None = None,
) -> SdpOfferState:
    """An RTP/SAVP audio offer with a fresh key per offered suite (RFC 4568 §5.1.1).

    With ``key_mgmt`` (``mikey <base64 TRANSFER_INIT>``) the audio is keyed by
    MIKEY-TICKET instead: session-level ``a=key-mgmt``, no ``a=crypto``.
    """
    if key_mgmt is not None:
        suites = ()
    elif not suites:
        raise SdpLocalError("an offer needs at least one suite and a valid port")
    if not 0 < port < 65535:
        raise SdpLocalError("an offer needs at least one suite and a valid port")
    payload_types = [STATIC_PAYLOAD_TYPES[c.encoding.upper()] for c in codecs]
    te_pt = TELEPHONE_EVENT_PT if telephone_event else None
    formats = [str(pt) for pt in payload_types] + ([str(te_pt)] if te_pt is not None else [])
    attributes = [SdpAttribute("rtpmap", f"{pt} {c.encoding}/{c.clock_rate}")
                  for pt, c in zip(payload_types, codecs, strict=True)]  # fmt: skip
    if te_pt is not None:
        attributes += [
            SdpAttribute("rtpmap", f"{te_pt} telephone-event/8000"),
            SdpAttribute("fmtp", f"{te_pt} 0-15"),
        ]
    attributes += [SdpAttribute("ptime", str(ptime)), SdpAttribute("sendrecv", None)]
    if bfcp is not None:
        attributes.append(SdpAttribute("label", AUDIO_LABEL))
    keys: dict[int, tuple[str, SecretBytes]] = {}
    for tag, suite in enumerate(suites, start=1):
        keys[tag] = (suite, SecretBytes(generate_key_salt(suite)))
        inline = base64.b64encode(keys[tag][1].view()).decode("ascii")
        attributes.append(SdpAttribute("crypto", f"{tag} {suite} inline:{inline}"))
    addrtype = "IP6" if ":" in local_host else "IP4"
    media = SdpMedia("audio", port, "RTP/SAVP", formats, attributes=attributes)
    offer = SdpSession(
        origin=SdpOrigin(username, session_id, session_version, local_host, addrtype),
        name="-",
        connection=SdpConnection(local_host, addrtype),
        timings=[SdpTiming()],
        attributes=[SdpAttribute("key-mgmt", key_mgmt)] if key_mgmt is not None else [],
        media=[media, *_side_media(msrp, bfcp)],
    )
    return SdpOfferState(offer, keys, tuple(payload_types), te_pt, key_mgmt, msrp, bfcp)


def _side_media(msrp: SdpMsrpLocal | None, bfcp: SdpBfcpLocal | None) -> list[SdpMedia]:
    """The chat and floor control lines of the offer (RFC 6135 / RFC 8856: actpass)."""
    lines = []
    if msrp is not None:
        lines.append(msrp_offer_media(msrp, setup_role=SdpSetup.ACTPASS))
    if bfcp is not None:
        lines.append(bfcp_server_offer_media(bfcp))
    return lines


def bfcp_server_offer_media(local: SdpBfcpLocal) -> SdpMedia:
    """An offer's BFCP line with the focus as floor control server (RFC 8856 §10.1)."""
    attributes = [
        SdpAttribute("setup", str(SdpSetup.ACTPASS)),
        SdpAttribute("connection", "new"),
        SdpAttribute("fingerprint", str(local.fingerprint)),
        SdpAttribute("floorctrl", "s-only"),
        SdpAttribute("confid", str(local.conference_id)),
        SdpAttribute("userid", str(local.user_id)),
        *(SdpAttribute("floorid", f"{floor} mstrm:{label}") for floor, label in local.floors),
        SdpAttribute("bfcpver", "1"),
    ]
    return SdpMedia("application", local.port, "TCP/TLS/BFCP", ["*"], attributes=attributes)


def accept_answer(
    state: SdpOfferState,
    answer: SdpSession,
    *,
    mikey: tuple[str, SecretBytes, SecretBytes] | None = None,
    local_ssrc: int | None = None,
) -> SdpAnswerPlan:
    """Check ``answer`` against our offer (RFC 3264 §6, RFC 4568 §5.1.2).

    A MIKEY-TICKET offer needs ``mikey`` = ``(suite, rx key||salt, tx
    key||salt)`` from the TRANSFER_RESP and ``local_ssrc`` (the SSRC our
    TRANSFER_INIT announced).

    Raises ``SdpRemoteError(488)`` when the answer rejects the audio, drops
    SRTP, picks a crypto line we did not offer or changes its suite, or keeps
    none of our codecs; ``SdpRemoteError(400)`` for a malformed answer.
    """
    if len(answer.media) != len(state.offer.media):
        raise SdpRemoteError(400, "answer has a different number of m-lines (RFC 3264 §6)")
    media = answer.media[0]
    if media.port == 0:
        raise SdpRemoteError(488, "the answer rejected the audio stream")
    if media.proto != "RTP/SAVP":
        raise SdpRemoteError(488, f"the answer downgraded the audio to {media.proto}")
    if state.key_mgmt is not None:
        if mikey is None:
            raise SdpRemoteError(488, "the answer's TRANSFER_RESP was not verified")
        if media.get_attributes("crypto"):
            raise SdpRemoteError(488, "a=crypto in the answer to a MIKEY-TICKET offer")
        crypto = SdpCryptoChoice(0, *mikey)
    else:
        crypto = _chosen_crypto(state, media)
    connection = answer.connection_for(media)
    if connection is None:
        raise SdpRemoteError(400, "answer m-line without c= (RFC 8866 §5.7)")
    payload_types = [int(f) for f in media.formats if f.isdigit() and int(f) in state.payload_types]
    if not payload_types:
        raise SdpRemoteError(488, "the answer kept none of our codecs")
    te_pt = state.telephone_event_pt if str(state.telephone_event_pt) in media.formats else None
    names = {pt: name for name, pt in STATIC_PAYLOAD_TYPES.items()}
    maps = [SdpRtpmap(pt, names[pt], 8000) for pt in payload_types]  # what the mixer codes
    if te_pt is not None:
        maps.append(SdpRtpmap(te_pt, "telephone-event", 8000))
    theirs = direction(media, answer)
    plan = SdpStreamPlan(
        index=0,
        kind="audio",
        accepted=True,
        reason=None,
        proto=media.proto,
        payload_types=payload_types,
        rtpmaps=maps,
        telephone_event_pt=te_pt,
        remote_host=connection.address,
        remote_port=media.port,
        remote_rtcp_host=connection.address,
        remote_rtcp_port=media.port + 1,
        direction_offer=SdpDirection.SENDRECV,
        direction_answer=_ANSWER_TO_OURS[theirs],
        on_hold=connection.is_hold or theirs in (SdpDirection.RECVONLY, SdpDirection.INACTIVE),
        crypto=crypto,
        key_mode="sdes" if state.key_mgmt is None else "mikey-ticket",
        local_ssrc=local_ssrc if state.key_mgmt is not None else None,
    )
    return SdpAnswerPlan((plan, *_side_plans(state, answer)))


def _side_plans(state: SdpOfferState, answer: SdpSession) -> list[SdpStreamPlan]:
    """The answer's chat and floor control lines (m-lines 1.. in our offer's order)."""
    plans = []
    for index in range(1, len(state.offer.media)):
        ours, media = state.offer.media[index], answer.media[index]
        try:
            plans.append(_side_plan(state, answer, index, ours, media))
        except (MsrpRejected, BfcpRejected) as exc:
            plans.append(SdpStreamPlan(index, ours.kind, False, exc.reason, media.proto))
    return plans


def _side_plan(
    state: SdpOfferState, answer: SdpSession, index: int, ours: SdpMedia, media: SdpMedia
) -> SdpStreamPlan:
    rejected = MsrpRejected if ours.kind == "message" else BfcpRejected
    if media.kind != ours.kind or media.proto != ours.proto:
        raise rejected(f"the answer changed {ours.kind} {ours.proto} to {media.proto}")
    if media.port == 0:
        raise rejected("rejected by the answerer (port 0)")
    role = setup(media, answer)
    if role in (SdpSetup.ACTPASS, SdpSetup.HOLDCONN):  # RFC 4145 §4.1
        raise rejected(f"a=setup:{role} is not an answer")
    we_connect = role in (SdpSetup.PASSIVE, None)  # absent in an answer: passive
    if ours.kind == "message":
        chat = plan_msrp(answer, media, SdpMsrpPolicy())
        chat = dataclasses.replace(chat, we_connect=we_connect)
        return SdpStreamPlan(index, "message", True, None, media.proto, key_mode="fingerprint",
                             msrp=chat)  # fmt: skip
    _answer_floorctrl(media)
    floor = plan_bfcp(answer, media, SdpBfcpPolicy(), 0)
    floor = dataclasses.replace(floor, we_connect=we_connect, label=AUDIO_LABEL)
    return SdpStreamPlan(index, media.kind, True, None, media.proto, key_mode="fingerprint",
                         bfcp=floor)  # fmt: skip


def _answer_floorctrl(media: SdpMedia) -> None:
    """We offered s-only: the answer must be c-only (RFC 8856 §5.1, §10.2)."""
    values = {v for a in media.get_attributes("floorctrl") for v in (a.value or "").split()}
    if values != {"c-only"}:
        raise BfcpRejected(f"a=floorctrl:{' '.join(sorted(values)) or '(none)'} answers s-only")


def _chosen_crypto(state: SdpOfferState, media: SdpMedia) -> SdpCryptoChoice:
    lines = media.get_attributes("crypto")
    if len(lines) != 1:
        raise SdpRemoteError(488, f"the answer must carry exactly one a=crypto, has {len(lines)}")
    crypto = SdpCrypto.parse(lines[0].value or "")
    ours = state.keys.get(crypto.tag)
    if ours is None or ours[0] != crypto.suite:
        raise SdpRemoteError(488, f"a=crypto:{crypto.tag} {crypto.suite} was not offered")
    if len(crypto.keys) != 1 or crypto.session_params:
        raise SdpRemoteError(488, "answer crypto with several keys or session parameters")
    key = crypto.keys[0]
    return SdpCryptoChoice(
        tag=crypto.tag,
        suite=crypto.suite,
        remote_key_salt=SecretBytes(key.key_salt),
        local_key_salt=ours[1],
        remote_mki=key.mki,
        remote_lifetime=key.lifetime,
    )
