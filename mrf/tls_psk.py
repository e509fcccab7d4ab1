"""TLS-PSK contexts for MSRP and BFCP keyed by MIKEY-TICKET (TS 33.328 Annex H; decision (d)).

* The PSK is the TEK of the crypto session whose Prot type is "TLS"
  (TS 23.333 §6.2.19): :func:`psk_from_crypto_sessions`.
* TLS 1.2 only, RFC 4279 PSK cipher suites **without (EC)DHE** and never NULL
  encryption (:data:`PSK_CIPHERS`, configurable); no certificates.
* The client sends an **empty PSK identity**; the server ignores the identity
  (Annex H.2).  TLS 1.3 is not offered: its external PSKs need a non-empty
  identity (RFC 8446 §4.2.11), which OpenSSL 3.0 enforces.
* The TLS role follows ``a=setup`` (RFC 4145; RFC 8122 §6.2): the passive
  party is the TLS server.

Uses ``SSLContext.set_psk_server_callback`` / ``set_psk_client_callback``
(Python 3.13).  Keys are never logged; a key-log file is an explicit opt-in.
A PSK given as :class:`~focus.sdp.secret.SecretBytes` is read only when a
handshake asks for it (``ssl`` takes ``bytes``: a copy per handshake), so a
key the focus wiped at hang-up fails the handshake instead.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from pathlib import Path

from focus.sdp.secret import SecretBytes

PSK_CIPHERS = "PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305"
DEFAULT_TLS_PROT_TYPE = 241  # decision (a); configurable

type PskKey = bytes | SecretBytes
type PskLookup = Callable[[str | None], PskKey | None]


class TlsPskError(ValueError):
    """No usable PSK, or TLS-PSK is not available in this Python."""


def psk_from_crypto_sessions(
    sessions: Mapping[int, tuple[int, bytes, bytes]],
    *,
    tls_prot_type: int = DEFAULT_TLS_PROT_TYPE,
    cs_id: int | None = None,
) -> bytes:
    """The TEK of the "TLS" crypto session (``{cs_id: (prot type, TEK, salt)}``)."""
    if cs_id is not None:
        entry = sessions.get(cs_id)
        if entry is None or entry[0] != tls_prot_type:
            raise TlsPskError(f"crypto session {cs_id} is not a TLS crypto session")
        return entry[1]
    teks = [tek for prot, tek, _ in sessions.values() if prot == tls_prot_type]
    if len(teks) != 1:
        raise TlsPskError(f"expected one TLS crypto session, found {len(teks)}")
    return teks[0]


def _check_support() -> None:
    if not hasattr(ssl.SSLContext, "set_psk_server_callback"):
        raise TlsPskError("this Python's ssl module has no TLS-PSK callbacks (needs 3.13)")


def _base(side: int, ciphers: str, keylog_filename: Path | None) -> ssl.SSLContext:
    _check_support()
    context = ssl.SSLContext(side)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise TlsPskError(f"no usable cipher in {ciphers!r}") from exc
    for suite in context.get_ciphers():
        if suite["protocol"] != "TLSv1.3" and (
            suite["kea"] != "kx-psk" or not suite["symmetric"] or suite["aead"] is False
        ):
            raise TlsPskError(f"{suite['name']}: only plain-PSK AEAD suites (no (EC)DHE, no NULL)")
    if keylog_filename is not None:
        context.keylog_filename = str(keylog_filename)
    return context


def psk_server_context(
    psk: PskKey | PskLookup,
    *,
    ciphers: str = PSK_CIPHERS,
    keylog_filename: Path | None = None,
) -> ssl.SSLContext:
    """Server side: ``psk`` is the key, or a lookup called with the (ignored) identity.

    A lookup returning ``None`` fails the handshake (unknown PSK).
    """
    context = _base(ssl.PROTOCOL_TLS_SERVER, ciphers, keylog_filename)

    def callback(identity: str | None) -> bytes:
        key = psk(identity) if callable(psk) else psk
        return bytes(key) if key else b""  # empty (unknown, or wiped) = handshake failure

    context.set_psk_server_callback(callback)
    return context


def psk_client_context(
    psk: PskKey, *, ciphers: str = PSK_CIPHERS, keylog_filename: Path | None = None
) -> ssl.SSLContext:
    """Client side: empty PSK identity, no certificate check (the PSK authenticates)."""
    if not psk:
        raise TlsPskError("empty PSK")
    context = _base(ssl.PROTOCOL_TLS_CLIENT, ciphers, keylog_filename)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_psk_client_callback(lambda hint: (None, bytes(psk)))
    return context
