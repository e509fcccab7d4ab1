"""SDP for BFCP streams (RFC 8856, RFC 4145, RFC 4574, RFC 8122).

The focus is always the floor control server: it answers an ``m=application
... TCP/TLS/BFCP *`` line here; :mod:`focus.sdp.offer_answer` calls
:func:`plan_bfcp` for it and :func:`bfcp_answer_media` to write it.

Rules of :func:`plan_bfcp` (the offerer is the participant, RFC 8856 §10.2):

- ``TCP/TLS/BFCP`` only when ``policy.require_security`` (``TCP/BFCP`` gets
  port 0); TLS needs an ``a=fingerprint`` with SHA-256 or stronger (RFC 8122 §5),
  unless the line is keyed by a MIKEY-TICKET crypto session of Prot type TLS
  (``psk=True``: TLS-PSK, TS 33.328 Annex H; no certificate, no fingerprint).
- ``a=floorctrl`` (§5.1): the answer is ``s-only``, so the offer must allow us
  to be the server: ``c-only``, ``c-s`` (deprecated, read as both), or absent
  (the answerer is then the server).  An offer of ``s-only`` alone is refused.
- ``a=bfcpver`` (§5.5): absent means 1 over TCP; the offer must list 1, the
  answer lists ``1`` (RFC 4582 and RFC 8855 both use version 1 over TCP/TLS).
- ``a=setup`` (RFC 4145 §4): ``active`` or ``actpass`` (or absent: the offerer
  is active) → we are passive and listen; ``passive`` → we connect to the c=/m=
  address; ``holdconn`` is refused.  Project decision (d): the TLS server is
  the passive party (RFC 8122 §6.2).
- The answer carries ``a=confid``, ``a=userid`` (assigned by the focus per
  conference and per participant), ``a=floorid:<n> mstrm:<label>`` for each
  floor, ``a=setup``, ``a=connection:new``, ``a=fingerprint`` and ``a=label``
  on the controlled audio line (RFC 8856 §10.2, RFC 4574).
- An offer whose only accepted line is BFCP (a chair console, or a participant
  whose audio comes from another device) gets floor control too: the floors
  control the conference's audio, which is no stream of that session, so the
  answer says ``a=floorid:<n> mstrm:audio`` (:data:`CONFERENCE_AUDIO_LABEL`,
  the label the focus's own offers give the conference audio; RFC 8856 §5.4
  requires one token) and no m-line gets an ``a=label``.
- ``policy.fingerprint`` off (a conference whose key modes lack
  ``fingerprint``): TLS lines must be keyed by MIKEY-TICKET (``psk``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from focus.sdp.attributes import SdpFingerprint, SdpSetup, fingerprints, setup
from focus.sdp.session import SdpAttribute, SdpMedia, SdpRemoteError, SdpSession

__all__ = [
    "BFCP_PROTOS",
    "CONFERENCE_AUDIO_LABEL",
    "BfcpRejected",
    "SdpBfcpLocal",
    "SdpBfcpPlan",
    "SdpBfcpPolicy",
    "bfcp_answer_media",
    "bfcp_offer_media",
    "floor_label",
    "is_bfcp",
    "parse_bfcp_answer",
    "plan_bfcp",
]

TLS_PROTO = "TCP/TLS/BFCP"
TCP_PROTO = "TCP/BFCP"
BFCP_PROTOS = frozenset({TLS_PROTO, TCP_PROTO, "TCP/DTLS/BFCP", "UDP/BFCP", "UDP/TLS/BFCP"})
CONFERENCE_AUDIO_LABEL = "audio"  # a=floorid's mstrm when the session has no audio
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,64}$")


class BfcpRejected(Exception):
    """The m-line is refused (port 0) with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SdpBfcpPolicy:
    """What the focus accepts for floor control."""

    require_security: bool = True
    fingerprint: bool = True  # certificate TLS (RFC 8122); False: MIKEY-TICKET TLS-PSK only


@dataclass(frozen=True, slots=True)
class SdpBfcpPlan:
    """The decision for an accepted BFCP m-line."""

    secure: bool
    remote_fingerprints: tuple[SdpFingerprint, ...]
    we_connect: bool
    connect_host: str
    connect_port: int
    label: str  # a=label of the audio stream the floor controls
    stream_index: int | None  # that audio stream's m-line index; None: the conference's


@dataclass(frozen=True, slots=True)
class SdpBfcpLocal:
    """Our side of one participant's BFCP stream."""

    host: str
    port: int
    conference_id: int
    user_id: int
    floors: tuple[tuple[int, str], ...]  # (floor ID, controlled stream label)
    fingerprint: SdpFingerprint
    secure: bool = True


def is_bfcp(media: SdpMedia) -> bool:
    return media.kind == "application" and media.proto.upper() in BFCP_PROTOS


def floor_label(offer: SdpSession, index: int) -> str:
    """The label of the audio line ``index``: its own ``a=label``, else ``audio<index>``."""
    attribute = offer.media[index].get_attribute("label")
    value = (attribute.value or "") if attribute else ""
    return value if _TOKEN.match(value) else f"audio{index}"


def plan_bfcp(
    offer: SdpSession,
    media: SdpMedia,
    policy: SdpBfcpPolicy,
    audio_index: int | None,
    *,
    psk: bool = False,
) -> SdpBfcpPlan:
    """Plan our answer to ``media``; raises :class:`BfcpRejected` (port 0).

    ``psk``: the line has a TLS-PSK from MIKEY-TICKET (no fingerprint needed);
    ``audio_index``: the accepted audio line the floors control, ``None`` when
    the session has none (the floors then name the conference's audio).
    """
    if media.port == 0:
        raise BfcpRejected("stream disabled in the offer (port 0)")
    proto = media.proto.upper()
    if proto not in (TLS_PROTO, TCP_PROTO):
        raise BfcpRejected(f"transport {media.proto} is not served (TCP/TLS/BFCP only)")
    secure = proto == TLS_PROTO
    if not secure and policy.require_security:
        raise BfcpRejected("plain TCP/BFCP refused: the policy requires TLS")
    _check_floorctrl(media)
    _check_version(media)
    prints = tuple(f for f in fingerprints(media, offer) if f.usable)
    if psk and not secure:
        raise BfcpRejected("a TLS crypto session keys a TCP/BFCP line without TLS")
    if secure and not psk and not policy.fingerprint:
        raise BfcpRejected("a=fingerprint (TCP/TLS/BFCP) not accepted by this conference's policy")
    if secure and not prints and not psk:
        raise BfcpRejected("TCP/TLS/BFCP needs a=fingerprint with SHA-256 or stronger")
    role = setup(media, offer)
    if role is SdpSetup.HOLDCONN:
        raise BfcpRejected("a=setup:holdconn")
    connection = offer.connection_for(media)
    if connection is None:
        raise SdpRemoteError(400, "BFCP m-line without c= line (RFC 8866 §5.7)")
    return SdpBfcpPlan(
        secure=secure,
        remote_fingerprints=prints,
        we_connect=role is SdpSetup.PASSIVE,
        connect_host=connection.address,
        connect_port=media.port,
        label=CONFERENCE_AUDIO_LABEL if audio_index is None else floor_label(offer, audio_index),
        stream_index=audio_index,
    )


def _check_floorctrl(media: SdpMedia) -> None:
    values = {v for a in media.get_attributes("floorctrl") for v in (a.value or "").split()}
    if values and not ({"c-only", "c-s"} & values):
        raise BfcpRejected("a=floorctrl does not let the focus be the server (RFC 8856 §5.1)")


def _check_version(media: SdpMedia) -> None:
    attribute = media.get_attribute("bfcpver")
    versions = (attribute.value or "").split() if attribute else ["1"]
    if "1" not in versions:
        raise BfcpRejected("no common BFCP version: TCP/TLS needs 1 (RFC 8856 §5.5)")


def _common(local: SdpBfcpLocal) -> list[SdpAttribute]:
    attributes = [SdpAttribute("connection", "new")]
    if local.secure:
        attributes.append(SdpAttribute("fingerprint", str(local.fingerprint)))
    return attributes


def bfcp_answer_media(offered: SdpMedia, plan: SdpBfcpPlan, local: SdpBfcpLocal) -> SdpMedia:
    """The answer's BFCP line; the active side shows port 9 (RFC 4145 §4)."""
    attributes = [
        SdpAttribute("setup", "active" if plan.we_connect else "passive"),
        *_common(local),
        SdpAttribute("floorctrl", "s-only"),
        SdpAttribute("confid", str(local.conference_id)),
        SdpAttribute("userid", str(local.user_id)),
        *(SdpAttribute("floorid", f"{floor} mstrm:{label}") for floor, label in local.floors),
        SdpAttribute("bfcpver", "1"),
    ]
    port = 9 if plan.we_connect else local.port
    return SdpMedia("application", port, offered.proto, ["*"], attributes=attributes)


def bfcp_offer_media(
    host_port: int, fingerprint: SdpFingerprint | None, *, setup_role: SdpSetup = SdpSetup.ACTIVE
) -> SdpMedia:
    """A participant's BFCP offer (``mrf ue``): client only, version 1, TLS when keyed."""
    attributes = [SdpAttribute("setup", str(setup_role)), SdpAttribute("connection", "new")]
    if fingerprint is not None:
        attributes.append(SdpAttribute("fingerprint", str(fingerprint)))
    attributes += [SdpAttribute("floorctrl", "c-only"), SdpAttribute("bfcpver", "1")]
    proto = TLS_PROTO if fingerprint is not None else TCP_PROTO
    return SdpMedia("application", host_port, proto, ["*"], attributes=attributes)


@dataclass(frozen=True, slots=True)
class SdpBfcpAnswer:
    """What a participant learns from the focus's answer."""

    host: str
    port: int
    conference_id: int
    user_id: int
    floors: tuple[tuple[int, str], ...]
    fingerprints: tuple[SdpFingerprint, ...]
    we_connect: bool


def parse_bfcp_answer(answer: SdpSession, media: SdpMedia) -> SdpBfcpAnswer:
    """Read confid, userid, floorid, setup and fingerprints; ``SdpRemoteError`` if unusable."""
    confid = (media.get_attribute("confid") or SdpAttribute("confid", "")).value or ""
    userid = (media.get_attribute("userid") or SdpAttribute("userid", "")).value or ""
    if not (confid.isdigit() and userid.isdigit() and len(confid) <= 10 and len(userid) <= 5):
        raise SdpRemoteError(400, "BFCP answer without a=confid / a=userid (RFC 8856 §10.2)")
    if int(confid) > 0xFFFFFFFF or int(userid) > 0xFFFF:
        raise SdpRemoteError(400, "a=confid / a=userid out of range")
    floors = []
    for attribute in media.get_attributes("floorid"):
        floor, _, rest = (attribute.value or "").partition(" ")
        if floor.isdigit() and len(floor) <= 5 and 0 < int(floor) <= 0xFFFF:
            labels = rest.replace("m-stream:", "mstrm:").removeprefix("mstrm:").split()
            floors.append((int(floor), labels[0] if labels else ""))
    connection = answer.connection_for(media)
    if connection is None:
        raise SdpRemoteError(400, "BFCP answer without c= line")
    return SdpBfcpAnswer(
        connection.address, media.port, int(confid), int(userid), tuple(floors),
        tuple(fingerprints(media, answer)), setup(media, answer) is not SdpSetup.ACTIVE,
    )  # fmt: skip
