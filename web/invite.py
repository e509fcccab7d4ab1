"""The invite panel of the conference page: how to dial in, in words to send on.

The dial-in URIs carry the port the SIP listeners are really bound to (asked of
the running endpoint, so an ephemeral or non-default port is right too) and the
transport: ``sip:NAME@DOMAIN:PORT`` over UDP or TCP, ``sips:NAME@DOMAIN:PORT``
over TLS.  A softphone given only ``sip:NAME@DOMAIN`` tries 5060, which is wrong
whenever the server listens elsewhere.  The invite text says which identity to
use (the one on the authorized list, or any when anonymous callers are allowed)
and which key modes the conference accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from focus.conference import ConferenceInfo
from web.state import WebState

KEY_MODE_NAMES = {
    "sdes": "SDES-SRTP (keys in the SDP, a=crypto; needs SIP over TLS to be private)",
    "dtls": "DTLS-SRTP (a=fingerprint; browsers and WebRTC clients)",
    "mikey-ticket": "MIKEY-TICKET (keys from the KMS, TS 33.328 Annex H)",
    "fingerprint": "chat and floor control over TLS, checked by certificate fingerprint",
}


@dataclass(frozen=True, slots=True)
class InvitePanel:
    uri: str  # sip:NAME@DOMAIN:PORT (UDP and TCP)
    tls_uri: str | None  # sips:NAME@DOMAIN:PORT, when the TLS listener is up
    key_modes: tuple[str, ...]  # plain-words names of the accepted modes
    text: str  # the invitation to copy


def _port(state: WebState, transport: str, configured: int) -> int | None:
    """The bound port of ``transport`` (None: not listening); the setting without an endpoint."""
    endpoint = getattr(state.services.focus, "endpoint", None)
    if endpoint is None or not hasattr(endpoint, "listening"):
        return configured or None
    if not endpoint.listening().get(transport):
        return None
    return int(endpoint.local_address(transport).port)


def invite_panel(state: WebState, info: ConferenceInfo) -> InvitePanel:
    sip = state.settings.sip
    host = f"[{state.domain}]" if ":" in state.domain else state.domain
    port = _port(state, "udp", sip.port)
    tls_port = _port(state, "tls", sip.tls_port)
    uri = f"sip:{info.name}@{host}" + (f":{port}" if port else "")
    tls_uri = f"sips:{info.name}@{host}:{tls_port}" if tls_port else None
    modes = tuple(KEY_MODE_NAMES[m] for m in info.policy.key_modes if m in KEY_MODE_NAMES)
    if info.policy.allow_anonymous:
        who = "any SIP account (anonymous callers are admitted)"
    else:
        who = "the SIP account you were invited as (the identity on the conference's list)"
    lines = [
        f"You are invited to the conference “{info.name}”.",
        f"Dial {uri} (UDP or TCP)" + (f", or {tls_uri} over TLS." if tls_uri else "."),
        f"Call from {who}.",
        "Media must be encrypted; this conference accepts: " + "; ".join(modes) + ".",
    ]
    if info.policy.locked:
        lines.append("The conference is locked right now: ask the organiser to unlock it.")
    return InvitePanel(uri, tls_uri, modes, "\n".join(lines))
