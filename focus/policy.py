"""Admission decisions for the conference focus (pure functions, no I/O).

TS 33.328 G.3.1: the focus checks that a participant is authorized to join the
conference before any media key is agreed.  This module decides *who* the caller
is and *whether* it may join; the service carries the decision out.

Identity (RFC 3325, RFC 3323):

* ``P-Asserted-Identity`` is believed only when the request arrived from a
  configured trusted proxy (the "trust domain" of RFC 3325 §2.3); from anyone
  else the header is ignored and the ``From`` URI is the identity.
* ``Privacy: id`` (RFC 3325 §9.3) or an anonymous URI
  (``sip:anonymous@anonymous.invalid``, RFC 3323 §4.1.1.3) makes the caller
  anonymous.  An anonymous caller is admitted only when the policy allows it, and
  then only as a plain participant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from focus.sip.message import SipRemoteError, SipRequest, SipResponse
from focus.sip.uri import SipNameAddr, SipUri


class IdentitySource(StrEnum):
    """Where the caller's identity was taken from."""

    ASSERTED = "p-asserted-identity"
    FROM = "from"
    SESSION = "web-session"  # SIP over WebSocket: the web session's identity (RFC 7118 flow)

    @property
    def header(self) -> str:
        """The header field the identity was taken from (the session has none)."""
        names = {IdentitySource.ASSERTED: "P-Asserted-Identity", IdentitySource.FROM: "From"}
        return names.get(self, "web session")


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """The caller as the focus sees it; ``aor`` is ``None`` when anonymous."""

    aor: str | None
    anonymous: bool
    source: IdentitySource

    def __str__(self) -> str:
        return "anonymous" if self.anonymous or self.aor is None else self.aor


@dataclass(frozen=True, slots=True)
class Admission:
    """Outcome of an admission check: ``status`` is 200 or the SIP refusal.

    ``warning`` says, in words for the caller's Warning header (RFC 3261 §20.43),
    why it was refused; it names the rule, never the identity.
    """

    status: int
    reason: str
    role: str | None = None
    warning: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200


ANONYMOUS_HOSTS = frozenset({"anonymous.invalid"})
ANONYMOUS_USERS = frozenset({"anonymous"})


def uri_aor(uri: SipUri) -> str:
    """Address of record used for authorization: ``sip:user@host``.

    ``sips`` compares equal to ``sip``; ports, parameters and headers are
    dropped; the host is compared case-insensitively, the user exactly.
    """
    return uri.aor


def is_anonymous_uri(uri: SipUri) -> bool:
    """RFC 3323 §4.1.1.3 anonymous URIs, and URIs without a user part."""
    if uri.scheme == "tel":
        return False
    if uri.host.lower() in ANONYMOUS_HOSTS:
        return True
    return uri.user is None or uri.user.lower() in ANONYMOUS_USERS


def privacy_requests_anonymity(request: SipRequest) -> bool:
    """True when a ``Privacy`` header asks to withhold the identity (``id``, ``user``)."""
    values: list[str] = []
    for header in request.headers.get_all("Privacy"):
        values.extend(token.strip().lower() for token in header.split(";"))
    return "id" in values or "user" in values


def asserted_identity(request: SipRequest | SipResponse) -> SipUri | None:
    """First SIP(S) URI of P-Asserted-Identity, else its tel URI (RFC 3325 §9.1)."""
    uris: list[SipUri] = []
    for value in request.headers.get_all("P-Asserted-Identity"):
        try:
            uris.append(SipNameAddr.parse(value).uri)
        except SipRemoteError:
            continue
    for uri in uris:
        if uri.scheme in ("sip", "sips"):
            return uri
    return uris[0] if uris else None


def caller_identity(
    request: SipRequest, source_host: str, trusted_proxies: Iterable[str]
) -> CallerIdentity:
    """Decide who sent ``request`` (see the module docstring for the rules)."""
    anonymous = privacy_requests_anonymity(request)
    if source_host in frozenset(trusted_proxies):
        asserted = asserted_identity(request)
        if asserted is not None:
            anonymous = anonymous or is_anonymous_uri(asserted)
            aor = None if anonymous else uri_aor(asserted)
            return CallerIdentity(aor, anonymous, IdentitySource.ASSERTED)
    from_uri = request.from_addr.uri
    anonymous = anonymous or is_anonymous_uri(from_uri)
    return CallerIdentity(None if anonymous else uri_aor(from_uri), anonymous, IdentitySource.FROM)


def session_identity(aor: str) -> CallerIdentity:
    """The identity of a SIP-over-WebSocket flow: the web session's, bound at the
    upgrade; From and P-Asserted-Identity of its requests are not consulted."""
    return CallerIdentity(aor, False, IdentitySource.SESSION)


def not_listed(identity: CallerIdentity) -> str:
    """The Warning text for an identity not on the authorized list (it names the header
    the identity came from, not the identity)."""
    if identity.source is IdentitySource.SESSION:
        return "the identity of the web session is not on the authorized list"
    return f"the identity in {identity.source.header} is not on the authorized list"


def admit(
    identity: CallerIdentity,
    authorized: dict[str, str],
    *,
    allow_anonymous: bool,
) -> Admission:
    """Admission per TS 33.328 G.3.1: ``authorized`` maps AOR → role.

    Anonymous callers: 403 unless the policy allows anonymous participants.
    Identified callers: 403 unless on the authorized list.
    """
    if identity.anonymous or identity.aor is None:
        if allow_anonymous:
            return Admission(200, "OK", "participant")
        return Admission(
            403,
            "Anonymous Participants Not Allowed",
            warning="anonymous callers are not admitted to this conference",
        )
    role = authorized.get(identity.aor)
    if role is None:
        return Admission(403, "Not Authorized For This Conference", warning=not_listed(identity))
    return Admission(200, "OK", role)
