"""SDP for MSRP media (RFC 4975 §8, RFC 6135, RFC 6714, RFC 7701 §5, RFC 8122).

The focus answers ``m=message`` lines here; :mod:`focus.sdp.offer_answer`
calls :func:`plan_msrp` for them and :func:`msrp_answer_media` to write them.

Rules of :func:`plan_msrp` (the offer side is the participant):

- ``TCP/TLS/MSRP`` only when ``policy.require_security`` (plain ``TCP/MSRP``
  gets port 0, or 488 when nothing else is acceptable); TLS needs at least one
  ``a=fingerprint`` with SHA-256 or stronger (RFC 8122 §5, RFC 4975 §14.4),
  unless MIKEY-TICKET keys it (``psk``); with ``policy.fingerprint`` off (the
  conference's key modes lack ``fingerprint``) only a ``psk`` line is accepted.
- ``a=accept-types`` must allow ``message/cpim`` (RFC 7701 §5.2).
- ``a=path`` is required; its URIs must be ``msrps`` for TLS.
- ``a=setup`` (RFC 6135, RFC 4145 §4): ``active`` or ``actpass`` → we are
  passive (we listen); ``passive`` → we connect; absent → the offerer connects
  (RFC 4975 §8.5 default).  The TLS roles follow (RFC 8122 §6.2: active is the
  TLS client).
- CEMA (RFC 6714 §4.3): when we connect we use the offer's c=/m= address if it
  carries ``a=msrp-cema``; without it, an offer whose c=/m= address differs
  from the path's first URI is refused (port 0), except an ``a=setup:active``
  offer on the discard port 9 (RFC 4145 §4: it only connects, we never use
  its address); else the path URI is used.
- ``a=max-size`` (RFC 4975 §8.6) of the offer limits what we send.
- MSRP over WebSocket (RFC 7977): ``TCP/WSS/MSRP`` only when
  ``policy.websocket`` (the INVITE came over SIP/WebSocket, whose web session
  authenticates the ``/msrp`` connection too); ``TCP/WS/MSRP`` only when
  ``policy.websocket_plain`` as well (SIP itself came over plain ``ws``, which
  the web server offers on loopback only).  The browser always connects
  (RFC 7977 §5.2: the WebSocket client), so ``a=setup`` and CEMA do not apply
  and no ``a=fingerprint`` is needed: the WebSocket's TLS is the web server's,
  and the connection is bound to the session by the web session's identity and
  the ``a=path`` (:meth:`mrf.chat.ChatLink._resolve`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from focus.sdp.attributes import SdpFingerprint, SdpSetup, fingerprints, setup
from focus.sdp.session import SdpAttribute, SdpMedia, SdpRemoteError, SdpSession

__all__ = [
    "SdpMsrpLocal",
    "SdpMsrpPlan",
    "SdpMsrpPolicy",
    "msrp_answer_media",
    "msrp_offer_media",
    "plan_msrp",
]

TLS_PROTO = "TCP/TLS/MSRP"
TCP_PROTO = "TCP/MSRP"
WSS_PROTO = "TCP/WSS/MSRP"  # RFC 7977 §8
WS_PROTO = "TCP/WS/MSRP"
DISCARD_PORT = 9  # an active endpoint's m= port (RFC 4145 §4, RFC 6135 §4.1)
_PATH_URI = re.compile(
    r"^msrps?://(?:[^@/;]*@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):([0-9]{1,5})/[^;\s]+;\S+$"
)


class MsrpRejected(Exception):
    """The m-line is refused (port 0) with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SdpMsrpPolicy:
    """What the focus accepts and announces for chat."""

    require_security: bool = True
    fingerprint: bool = True  # certificate TLS (RFC 8122); False: MIKEY-TICKET TLS-PSK only
    accept_types: tuple[str, ...] = ("message/cpim",)
    accept_wrapped_types: tuple[str, ...] = ("text/plain", "*")
    max_size: int = 16 * 1024 * 1024
    chatroom: tuple[str, ...] = ("nickname", "private-messages")
    websocket: bool = False  # TCP/WSS/MSRP acceptable (the call came over SIP/WebSocket)
    websocket_plain: bool = False  # TCP/WS/MSRP too (SIP came over plain ws, loopback only)


@dataclass(frozen=True, slots=True)
class SdpMsrpPlan:
    """The decision for an accepted ``m=message`` line."""

    secure: bool
    remote_path: tuple[str, ...]
    remote_fingerprints: tuple[SdpFingerprint, ...]
    we_connect: bool
    connect_host: str
    connect_port: int
    cema: bool
    remote_max_size: int | None
    websocket: bool = False  # RFC 7977: the participant connects to /msrp on the web port


@dataclass(frozen=True, slots=True)
class SdpMsrpLocal:
    """Our side of one chat session: where we listen and who we are."""

    host: str
    port: int
    session_id: str
    fingerprint: SdpFingerprint
    secure: bool = True
    transport: str = "tcp"  # "ws": MSRP over WebSocket (RFC 7977 §6), host:port the web's

    @property
    def path(self) -> str:
        scheme = "msrps" if self.secure else "msrp"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.session_id};{self.transport}"


def plan_msrp(
    offer: SdpSession, media: SdpMedia, policy: SdpMsrpPolicy, *, psk: bool = False
) -> SdpMsrpPlan:
    """Plan our answer to ``media``; raises :class:`MsrpRejected` (port 0).

    ``psk``: the line is keyed by a MIKEY-TICKET TLS crypto session (TLS-PSK,
    TS 33.328 Annex H), so no ``a=fingerprint`` is needed.
    """
    if media.port == 0:
        raise MsrpRejected("stream disabled in the offer (port 0)")
    if media.proto in (WSS_PROTO, WS_PROTO):
        return _plan_websocket(media, policy)
    secure = media.proto == TLS_PROTO
    if media.proto not in (TLS_PROTO, TCP_PROTO):
        raise MsrpRejected(f"transport {media.proto} is not MSRP")
    if not secure and policy.require_security:
        raise MsrpRejected("plain TCP/MSRP refused: the policy requires TLS")
    _check_accept_types(media)
    path = _path(media, secure)
    prints = tuple(f for f in fingerprints(media, offer) if f.usable)
    if secure and not psk and not policy.fingerprint:
        raise MsrpRejected("a=fingerprint (TCP/TLS/MSRP) not accepted by this conference's policy")
    if secure and not prints and not psk:
        raise MsrpRejected("TCP/TLS/MSRP needs a=fingerprint with SHA-256 or stronger")
    role = setup(media, offer)
    we_connect = role is SdpSetup.PASSIVE
    if role is SdpSetup.HOLDCONN:
        raise MsrpRejected("a=setup:holdconn")
    connection = offer.connection_for(media)
    if connection is None:
        raise SdpRemoteError(400, "m=message without c= line (RFC 8866 §5.7)")
    cema = media.get_attribute("msrp-cema") is not None
    host, port = _first_hop(path[0])
    discard = role is SdpSetup.ACTIVE and media.port == DISCARD_PORT  # RFC 4145 §4
    mismatch = not _same_host(host, connection.address) or port != media.port
    if not cema and mismatch and not discard:
        raise MsrpRejected("c=/m= differs from a=path without a=msrp-cema (RFC 6714 §4.3)")
    return SdpMsrpPlan(
        secure=secure,
        remote_path=path,
        remote_fingerprints=prints,
        we_connect=we_connect,
        connect_host=connection.address if cema else host,
        connect_port=media.port if cema else port,
        cema=cema,
        remote_max_size=_max_size(media),
    )


def _plan_websocket(media: SdpMedia, policy: SdpMsrpPolicy) -> SdpMsrpPlan:
    """RFC 7977: the participant is the WebSocket client of our ``/msrp``."""
    secure = media.proto == WSS_PROTO
    if not policy.websocket:
        raise MsrpRejected(f"{media.proto} is offered only to calls over SIP/WebSocket")
    if not secure and not policy.websocket_plain:  # never leaves the host
        raise MsrpRejected("TCP/WS/MSRP only with SIP over plain ws on loopback")
    _check_accept_types(media)
    path = _path(media, secure)
    if not path[-1].lower().endswith(";ws"):
        raise MsrpRejected("the a=path of MSRP over WebSocket ends in ;ws (RFC 7977 §6)")
    host, port = _first_hop(path[0])
    return SdpMsrpPlan(
        secure=secure,
        remote_path=path,
        remote_fingerprints=(),
        we_connect=False,
        connect_host=host,
        connect_port=port,
        cema=False,
        remote_max_size=_max_size(media),
        websocket=True,
    )


def _check_accept_types(media: SdpMedia) -> None:
    attribute = media.get_attribute("accept-types")
    if attribute is None or not attribute.value:
        raise MsrpRejected("a=accept-types is required (RFC 4975 §8.6)")
    types = [t.lower() for t in attribute.value.split()]
    if not ({"message/cpim", "message/*", "*"} & set(types)):
        raise MsrpRejected("message/cpim is not accepted (RFC 7701 §5.2)")


def _path(media: SdpMedia, secure: bool) -> tuple[str, ...]:
    attribute = media.get_attribute("path")
    uris = tuple((attribute.value or "").split()) if attribute else ()
    if not uris or len(uris) > 16:
        raise MsrpRejected("a=path is required (RFC 4975 §8.6)")
    for uri in uris:
        if _PATH_URI.match(uri) is None:
            raise MsrpRejected(f"malformed a=path URI {uri[:80]!r}")
        if secure != uri.lower().startswith("msrps:"):
            raise MsrpRejected("a=path scheme does not match the transport")
    return uris


def _first_hop(uri: str) -> tuple[str, int]:
    match = _PATH_URI.match(uri)
    assert match is not None
    return match[1].strip("[]"), int(match[2])


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


def _max_size(media: SdpMedia) -> int | None:
    attribute = media.get_attribute("max-size")
    value = (attribute.value or "") if attribute else ""
    return int(value) if value.isdigit() and len(value) < 19 else None


def _common_attributes(
    local: SdpMsrpLocal, accept: tuple[str, ...], wrapped: tuple[str, ...], max_size: int
) -> list[SdpAttribute]:
    attributes = [SdpAttribute("accept-types", " ".join(accept))]
    if wrapped:
        attributes.append(SdpAttribute("accept-wrapped-types", " ".join(wrapped)))
    attributes += [
        SdpAttribute("path", local.path),
        SdpAttribute("max-size", str(max_size)),
    ]
    if local.transport == "ws":  # the web server's TLS; the web session binds it
        return attributes
    attributes.append(SdpAttribute("msrp-cema"))
    if local.secure:
        attributes.append(SdpAttribute("fingerprint", str(local.fingerprint)))
    return attributes


def msrp_answer_media(
    offered: SdpMedia, plan: SdpMsrpPlan, local: SdpMsrpLocal, policy: SdpMsrpPolicy
) -> SdpMedia:
    """The answer's m=message line (``a=setup`` is the opposite role, RFC 4145 §4.1)."""
    attributes = _common_attributes(
        local, policy.accept_types, policy.accept_wrapped_types, policy.max_size
    )
    attributes.append(SdpAttribute("setup", "active" if plan.we_connect else "passive"))
    if policy.chatroom:
        attributes.append(SdpAttribute("chatroom", " ".join(policy.chatroom)))
    return SdpMedia("message", local.port, offered.proto, ["*"], attributes=attributes)


def msrp_offer_media(
    local: SdpMsrpLocal,
    *,
    setup_role: SdpSetup = SdpSetup.ACTPASS,
    accept_types: tuple[str, ...] = ("message/cpim", "text/plain"),
    wrapped: tuple[str, ...] = ("text/plain",),
    max_size: int = 16 * 1024 * 1024,
) -> SdpMedia:
    """A participant's m=message offer (``mrf ue``): RFC 6135 setup, CEMA, fingerprint."""
    attributes = _common_attributes(local, accept_types, wrapped, max_size)
    attributes.append(SdpAttribute("setup", str(setup_role)))
    proto = TLS_PROTO if local.secure else TCP_PROTO
    return SdpMedia("message", local.port, proto, ["*"], attributes=attributes)
