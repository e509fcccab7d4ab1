"""DTLS-SRTP keying of a participant stream (RFC 5763, RFC 5764).

`RtpDtlsSession` wraps one pyOpenSSL DTLS connection on memory BIOs: datagrams
go in with :meth:`~RtpDtlsSession.receive`, the datagrams to send come out,
and the retransmission timer is read with :meth:`~RtpDtlsSession.timeout` and
fired with :meth:`~RtpDtlsSession.handle_timeout` (OpenSSL keeps the clock).
The peer's certificate is checked against the offer's ``a=fingerprint``
inside the handshake (RFC 5763 §5, RFC 8122 §5): a mismatch aborts it with a
``bad_certificate`` alert and no key is ever derived.  Once connected, the
SRTP master keys come from the exporter (RFC 5764 §4.2)::

    EXTRACTOR-dtls_srtp → client_key | server_key | client_salt | server_salt

and the client writes with the client key (its receive key is the server's).

`RtpDtlsKeying` drives a session for one :class:`~mrf.rtp.stream.RtpStream`:
DTLS datagrams (first byte 20-63, RFC 7983 §7) are handed to it, its output
goes out of the stream's RTP socket, and on success the stream's existing
SRTP contexts are keyed (`RtpStream.set_keys`), so the mixer and the counters
work exactly as with SDES.  Before that the stream is unkeyed: it neither
accepts nor sends media.

Errors: ``DtlsError`` → ``DtlsLocalError`` (our misuse) and
``DtlsRemoteError`` (the peer's handshake failed or its certificate did not
match).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from focus.sdp.attributes import SdpFingerprint, fingerprints_match
from focus.sdp.secret import SecretBytes

logger = logging.getLogger(__name__)

MAX_DATAGRAM_SIZE = 1500
EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
CERTIFICATE_LIFETIME = datetime.timedelta(days=30)


class DtlsError(Exception):
    """Base of the DTLS-SRTP errors."""


class DtlsLocalError(DtlsError):
    """Our misuse (session used in the wrong state)."""


class DtlsRemoteError(DtlsError):
    """The peer failed the handshake or presented a certificate the SDP did not announce."""


@dataclass(frozen=True, slots=True)
class DtlsSrtpProfile:
    """An SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2) and its SDES suite name."""

    openssl_name: bytes
    suite: str
    key_length: int
    salt_length: int


# Our preference order (AEAD first); every one is an SrtpContext suite.
DTLS_SRTP_PROFILES = (
    DtlsSrtpProfile(b"SRTP_AEAD_AES_128_GCM", "AEAD_AES_128_GCM", 16, 12),
    DtlsSrtpProfile(b"SRTP_AEAD_AES_256_GCM", "AEAD_AES_256_GCM", 32, 12),
    DtlsSrtpProfile(b"SRTP_AES128_CM_SHA1_80", "AES_CM_128_HMAC_SHA1_80", 16, 14),
    DtlsSrtpProfile(b"SRTP_AES128_CM_SHA1_32", "AES_CM_128_HMAC_SHA1_32", 16, 14),
)
_PROFILES = {p.openssl_name: p for p in DTLS_SRTP_PROFILES}


class RtpDtlsState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RtpDtlsKeys:
    """SRTP master key||salt per direction, from the exporter (never logged)."""

    suite: str
    rx_key_salt: SecretBytes = field(repr=False)  # borrowed by the stream's SRTP contexts
    tx_key_salt: SecretBytes = field(repr=False)


class RtpDtlsCertificate:
    """A self-signed ECDSA P-256 certificate for DTLS (RFC 5763 §5: self-signed is fine)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self.key = key
        self.certificate = certificate
        self.der = certificate.public_bytes(serialization.Encoding.DER)

    @classmethod
    def generate(cls) -> RtpDtlsCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, secrets.token_hex(8))])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + CERTIFICATE_LIFETIME)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def fingerprint(self, hash_func: str = "sha-256") -> SdpFingerprint:
        """``a=fingerprint`` of this certificate (RFC 8122 §5)."""
        return SdpFingerprint.from_certificate(self.der, hash_func)


class RtpDtlsSession:
    """One DTLS association over memory BIOs; see the module docstring."""

    def __init__(
        self,
        certificate: RtpDtlsCertificate,
        *,
        client: bool,
        fingerprints: Sequence[SdpFingerprint],
        profiles: Sequence[DtlsSrtpProfile] = DTLS_SRTP_PROFILES,
    ) -> None:
        if not fingerprints:
            raise DtlsLocalError("the peer's fingerprints are required (RFC 5763 §5)")
        self.client = client
        self.state = RtpDtlsState.NEW
        self.error: str | None = None
        self.keys: RtpDtlsKeys | None = None
        self._fingerprints = tuple(fingerprints)
        self._mismatch = False
        self._ssl = SSL.Connection(self._context(certificate, profiles), None)
        if client:
            self._ssl.set_connect_state()
        else:
            self._ssl.set_accept_state()

    def _context(
        self, certificate: RtpDtlsCertificate, profiles: Sequence[DtlsSrtpProfile]
    ) -> SSL.Context:
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_options(SSL.OP_NO_TICKET)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        context.use_certificate(certificate.certificate)
        context.use_privatekey(certificate.key)
        context.set_tlsext_use_srtp(b":".join(p.openssl_name for p in profiles))
        return context

    def _verify(self, _conn: Any, cert: Any, _errno: int, depth: int, _ok: int) -> bool:
        """Accept exactly a certificate the SDP announced (self-signed is the norm)."""
        if depth != 0:
            return True
        der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
        if fingerprints_match(der, self._fingerprints):
            return True
        self._mismatch = True
        return False

    # -- driving ------------------------------------------------------------------------

    def start(self) -> list[bytes]:
        """Begin the handshake (a client sends its ClientHello); the datagrams to send."""
        if self.state is not RtpDtlsState.NEW:
            raise DtlsLocalError(f"cannot start a {self.state} session")
        self.state = RtpDtlsState.CONNECTING
        if self.client:
            self._handshake()
        return self._drain()

    def receive(self, data: bytes) -> list[bytes]:
        """Feed one datagram; the datagrams to send back.  Never raises for peer input."""
        if self.state in (RtpDtlsState.FAILED, RtpDtlsState.CLOSED) or not data:
            return []
        if self.state is RtpDtlsState.NEW:
            self.state = RtpDtlsState.CONNECTING
        self._ssl.bio_write(data[:MAX_DATAGRAM_SIZE])
        if self.state is RtpDtlsState.CONNECTING:
            self._handshake()
        else:
            self._read_records()
        return self._drain()

    def timeout(self) -> float | None:
        """Seconds until the retransmission timer fires (RFC 6347 §4.2.4), or None."""
        if self.state is not RtpDtlsState.CONNECTING:
            return None
        value = self._ssl.DTLSv1_get_timeout()
        return None if value is None else float(value)

    def handle_timeout(self) -> list[bytes]:
        """Retransmit the last flight if its timer expired."""
        if self.state is RtpDtlsState.CONNECTING:
            self._ssl.DTLSv1_handle_timeout()
        return self._drain()

    def close(self) -> list[bytes]:
        """Send close_notify if connected; the session is done."""
        if self.state is RtpDtlsState.CONNECTED:
            try:
                self._ssl.shutdown()
            except SSL.Error:
                pass
        self.state = RtpDtlsState.CLOSED
        return self._drain()

    # -- internals ----------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as exc:
            self._fail("certificate does not match a=fingerprint" if self._mismatch else str(exc))
            return
        try:
            self.keys = self._export()
        except DtlsRemoteError as exc:
            self._fail(str(exc))
            return
        self.state = RtpDtlsState.CONNECTED

    def _export(self) -> RtpDtlsKeys:
        """RFC 5764 §4.2 key material, split per direction."""
        name = self._ssl.get_selected_srtp_profile()
        profile = _PROFILES.get(name)
        if profile is None:
            raise DtlsRemoteError("no SRTP protection profile negotiated (use_srtp, RFC 5764)")
        k, s = profile.key_length, profile.salt_length
        material = self._ssl.export_keying_material(EXPORTER_LABEL, 2 * (k + s))
        client = material[:k] + material[2 * k : 2 * k + s]
        server = material[k : 2 * k] + material[2 * k + s :]
        rx, tx = (server, client) if self.client else (client, server)
        return RtpDtlsKeys(profile.suite, SecretBytes(rx), SecretBytes(tx))

    def _read_records(self) -> None:
        """After the handshake only alerts are expected: close_notify ends the session."""
        try:
            self._ssl.recv(MAX_DATAGRAM_SIZE)
        except SSL.ZeroReturnError:
            self.state = RtpDtlsState.CLOSED
        except (SSL.WantReadError, SSL.Error):
            pass

    def _fail(self, reason: str) -> None:
        self.state = RtpDtlsState.FAILED
        self.error = reason[:200]

    def _drain(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                out.append(self._ssl.bio_read(MAX_DATAGRAM_SIZE))
            except SSL.WantReadError:
                return out


class RtpDtlsKeying:
    """Keys one `RtpStream` by DTLS-SRTP; the handshake runs on the stream's RTP socket."""

    def __init__(
        self,
        stream: Any,
        session: RtpDtlsSession,
        *,
        on_failed: Callable[[str], None] | None = None,
        key_log: Callable[[Any, RtpDtlsKeys], None] | None = None,
    ) -> None:
        self.stream = stream
        self.session = session
        self.on_failed = on_failed
        self.key_log = key_log  # opt-in debugging only (tls.srtp_keylog_file)
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._peer: tuple[str, int] | None = None
        self.closed = False
        self.plan: Any = None  # the focus.sdp.dtls.SdpDtlsPlan this association follows
        stream.dtls_handler = self.datagram_received
        stream.add_closer(self.close)

    @property
    def state(self) -> RtpDtlsState:
        return self.session.state

    def start(self) -> None:
        """Start the handshake (the client sends; the server waits for a ClientHello)."""
        self._send(self.session.start())
        self._rearm()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.closed:
            return
        before = self.session.state
        self._peer = addr
        self._send(self.session.receive(data))
        self._rearm()
        if before is not self.session.state:
            self._state_changed()

    def _state_changed(self) -> None:
        session = self.session
        label = self.stream.label
        if session.state is RtpDtlsState.CONNECTED and session.keys is not None:
            keys = session.keys
            self.stream.set_keys(keys.suite, keys.rx_key_salt, keys.tx_key_salt)
            if self.key_log is not None:
                self.key_log(self.stream, keys)
            logger.info("[%s] DTLS-SRTP connected suite=%s role=%s", label, keys.suite,
                        "client" if session.client else "server")  # fmt: skip
        elif session.state is RtpDtlsState.FAILED:
            logger.warning("[%s] DTLS-SRTP failed: %s", label, session.error)
            if self.on_failed is not None:
                self.on_failed(session.error or "DTLS handshake failed")

    def _send(self, datagrams: list[bytes]) -> None:
        target = self._peer or self.stream.remote_rtp
        if target is None:
            return
        for datagram in datagrams:
            self.stream.send_raw(datagram, target)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delay = self.session.timeout()
        if delay is not None and not self.closed:
            self._timer = self._loop.call_later(max(delay, 0.001), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._send(self.session.handle_timeout())
        self._rearm()

    def close(self) -> None:
        """close_notify (when connected), timers off; the stream wipes its own keys."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        try:
            self._send(self.session.close())
        except OSError:
            pass
        if getattr(self.stream, "dtls_handler", None) == self.datagram_received:
            self.stream.dtls_handler = None


__all__ = [
    "DTLS_SRTP_PROFILES",
    "DtlsError",
    "DtlsLocalError",
    "DtlsRemoteError",
    "DtlsSrtpProfile",
    "RtpDtlsCertificate",
    "RtpDtlsKeying",
    "RtpDtlsKeys",
    "RtpDtlsSession",
    "RtpDtlsState",
]
