"""ICE in SDP offer/answer (RFC 8839) for the focus's answers, sans-I/O.

The focus is the answerer, a full ICE agent in the controlled role (RFC 8445
§6.1.1: the offerer is controlling unless it is ICE-lite).  ``plan_ice`` reads
the offer's ``a=ice-ufrag``/``a=ice-pwd`` (media level, else session level,
RFC 8839 §5.4) and its ``a=candidate`` lines (§5.1) and draws our credentials;
``ice_answer_attributes`` writes our credentials and one host candidate per
component on the media address (§5.1; priority formula of RFC 8445
§5.1.2.1).  The connectivity checks themselves run in ``mrf.rtp.ice``.

Rules:

- no ``a=ice-ufrag``/``a=ice-pwd`` pair, credentials outside the grammar
  (``ice-char``, 4-256 / 22-256 characters, RFC 8839 §5.4) or no usable UDP
  candidate: no ICE, the stream is answered as plain (S)RTP on the default
  address (RFC 8839 §3.2.1.2: the offerer then does not use ICE);
- the default destination (``c=`` and ``m=`` port) is not among the
  component-1 candidates: ``a=ice-mismatch`` and no ICE (RFC 8839 §5.5);
- malformed candidates, candidates of other transports (TCP, RFC 6544) and
  those beyond ``MAX_CANDIDATES`` are skipped;
- a re-offer with the same remote credentials keeps our credentials (no ICE
  restart, RFC 8839 §4.4.1.1.1); new remote credentials get new ones.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import zlib
from dataclasses import dataclass

from focus.sdp.session import SdpAttribute, SdpMedia, SdpRemoteError, SdpSession

__all__ = [
    "MAX_CANDIDATES",
    "SdpCandidate",
    "SdpIcePlan",
    "candidate_priority",
    "host_candidate",
    "ice_answer_attributes",
    "plan_ice",
]

MAX_CANDIDATES = 32  # remote candidates kept per m-line (a cap on peer input)
_UFRAG_RE = re.compile(r"[A-Za-z0-9+/]{4,256}")  # RFC 8839 §5.4 ice-char
_PWD_RE = re.compile(r"[A-Za-z0-9+/]{22,256}")
_FOUNDATION_RE = re.compile(r"[A-Za-z0-9+/]{1,32}")
_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_HOST_TYPE_PREFERENCE = 126  # RFC 8445 §5.1.2.2
_LOCAL_PREFERENCE = 65535  # one address per agent (RFC 8445 §5.1.2.1)


def _bad(reason: str) -> SdpRemoteError:
    return SdpRemoteError(400, reason)


@dataclass(frozen=True, slots=True)
class SdpCandidate:
    """``a=candidate`` (RFC 8839 §5.1); extension attributes are not kept."""

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None

    @classmethod
    def parse(cls, value: str) -> SdpCandidate:
        """Parse the attribute value; ``SdpRemoteError(400)`` when malformed."""
        fields = value.split()
        if len(fields) < 8 or fields[6] != "typ" or len(fields) > 64:
            raise _bad("a=candidate needs 'foundation component transport priority "
                       "address port typ type' (RFC 8839 §5.1)")  # fmt: skip
        foundation, component, transport, priority, address, port, _, kind = fields[:8]
        if not _FOUNDATION_RE.fullmatch(foundation) or kind not in _TYPES:
            raise _bad("invalid candidate foundation or type")
        numbers = (component, priority, port)
        if not all(_is_digits(n, 10) for n in numbers):
            raise _bad("candidate component, priority and port must be numbers")
        if (
            not 1 <= int(component) <= 256
            or not 1 <= int(priority) < 2**31
            or not 0 < int(port) < 65536
        ):
            raise _bad("candidate component, priority or port out of range")
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError as exc:
            raise _bad("candidate address must be an IP address") from exc
        related = dict(zip(fields[8::2], fields[9::2], strict=False))
        rport = related.get("rport", "")
        return cls(
            foundation, int(component), transport.upper(), int(priority), address, int(port),
            kind, _ip_or_none(related.get("raddr")),
            int(rport) if _is_digits(rport, 5) and int(rport) < 65536 else None,
        )  # fmt: skip

    def __str__(self) -> str:
        text = (
            f"{self.foundation} {self.component} {self.transport} {self.priority} "
            f"{self.address} {self.port} typ {self.type}"
        )
        if self.related_address is not None and self.related_port is not None:
            text += f" raddr {self.related_address} rport {self.related_port}"
        return text


@dataclass(frozen=True, slots=True)
class SdpIcePlan:
    """ICE for one accepted m-line: the offerer's credentials and candidates, and ours."""

    remote_ufrag: str
    remote_pwd: str
    remote_candidates: tuple[SdpCandidate, ...]
    local_ufrag: str
    local_pwd: str
    remote_lite: bool = False
    mismatch: bool = False  # RFC 8839 §5.5: answer a=ice-mismatch, do not run ICE

    @property
    def components(self) -> int:
        """Number of components the offerer has candidates for (RTP, RTCP)."""
        return max((c.component for c in self.remote_candidates), default=1)


def _is_digits(text: str, max_digits: int) -> bool:
    """1*DIGIT of RFC 5234 (ASCII only: ``str.isdigit`` also accepts "²" and "١")."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def _ip_or_none(text: str | None) -> str | None:
    """``raddr`` as an IP address; an FQDN or garbage is dropped (informational only)."""
    try:
        return None if text is None else str(ipaddress.ip_address(text))
    except ValueError:
        return None


def candidate_priority(component: int, type_preference: int = _HOST_TYPE_PREFERENCE) -> int:
    """RFC 8445 §5.1.2.1: 2^24 type preference + 2^8 local preference + 256 - component."""
    return (type_preference << 24) | (_LOCAL_PREFERENCE << 8) | (256 - component)


def host_candidate(component: int, host: str, port: int) -> SdpCandidate:
    """Our host candidate (RFC 8445 §5.1.1.1); one foundation per base address (§5.1.1.3)."""
    foundation = f"{zlib.crc32(host.encode()):08x}"
    return SdpCandidate(
        foundation, component, "UDP", candidate_priority(component), host, port, "host"
    )


def _credential(media: SdpMedia, offer: SdpSession, name: str) -> str | None:
    attribute = media.get_attribute(name) or offer.get_attribute(name)
    return None if attribute is None or attribute.value is None else attribute.value.strip()


def _candidates(media: SdpMedia) -> list[SdpCandidate]:
    found: list[SdpCandidate] = []
    for attribute in media.get_attributes("candidate"):
        try:
            candidate = SdpCandidate.parse(attribute.value or "")
        except SdpRemoteError:
            continue  # a malformed candidate is skipped, not fatal
        if candidate.transport == "UDP" and candidate.component <= 2:
            found.append(candidate)
        if len(found) >= MAX_CANDIDATES:
            break
    return found


def _fresh_credentials() -> tuple[str, str]:
    """Random 8-char ufrag (48 bits) and 24-char password (144 bits), ice-char (RFC 8839 §5.4)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    text = "".join(alphabet[b % 64] for b in secrets.token_bytes(32))  # 6 bits each
    return text[:8], text[8:]


def plan_ice(offer: SdpSession, media: SdpMedia, previous: SdpIcePlan | None) -> SdpIcePlan | None:
    """ICE for an accepted audio m-line, or None when the offer does not (usably) use ICE."""
    ufrag = _credential(media, offer, "ice-ufrag")
    pwd = _credential(media, offer, "ice-pwd")
    if ufrag is None or pwd is None or not _UFRAG_RE.fullmatch(ufrag) or not _PWD_RE.fullmatch(pwd):
        return None
    candidates = tuple(_candidates(media))
    if not candidates:
        return None
    connection = offer.connection_for(media)
    default = (connection.address if connection else "", media.port)
    mismatch = not any(
        (c.address, c.port) == default for c in candidates if c.component == 1
    ) and not _is_any(default[0])
    lite = offer.get_attribute("ice-lite") is not None
    if previous is not None and (previous.remote_ufrag, previous.remote_pwd) == (ufrag, pwd):
        local = previous.local_ufrag, previous.local_pwd
    else:
        local = _fresh_credentials()
    return SdpIcePlan(ufrag, pwd, candidates, *local, remote_lite=lite, mismatch=mismatch)


def _is_any(address: str) -> bool:
    """c=0.0.0.0 (hold, or trickle ICE's placeholder, RFC 8840 §4.1.1)."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def ice_answer_attributes(
    plan: SdpIcePlan, host: str, rtp_port: int, rtcp_port: int | None
) -> list[SdpAttribute]:
    """``a=ice-ufrag``, ``a=ice-pwd`` and our host candidates (``rtcp_port`` None: rtcp-mux)."""
    if plan.mismatch:
        return [SdpAttribute("ice-mismatch")]
    attributes = [
        SdpAttribute("ice-ufrag", plan.local_ufrag),
        SdpAttribute("ice-pwd", plan.local_pwd),
    ]
    ports = [rtp_port] if rtcp_port is None or plan.components < 2 else [rtp_port, rtcp_port]
    for component, port in enumerate(ports, start=1):
        attributes.append(SdpAttribute("candidate", str(host_candidate(component, host, port))))
    return attributes
