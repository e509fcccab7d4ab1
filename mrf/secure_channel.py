"""TLS channels authenticated by SDP fingerprints (RFC 8122), for MSRP and BFCP.

RFC 4975 §14.4 and RFC 8122 §6.2: both ends of ``TCP/TLS/MSRP`` (and
``TCP/TLS/BFCP``) use self-signed certificates and must check that the peer's
certificate matches an ``a=fingerprint`` of its SDP, tearing the connection
down otherwise.  **Why pyOpenSSL and not ``ssl``:** a stdlib *server* cannot
ask for a client certificate without verifying it against a CA
(``CERT_OPTIONAL`` still aborts the handshake with "unknown ca" on a
self-signed certificate; checked), so the passive side could never learn the
participant's certificate.  pyOpenSSL lets the verify callback accept any
certificate; the fingerprint is then compared right after the handshake and
a mismatch closes the connection before a single application byte is handed
to the protocol above.  The TLS engine runs on memory BIOs inside an asyncio
protocol (no threads).

Policy (TS 33.328 §5.3): TLS 1.2 or later, ECDHE with AEAD suites only
(AES-GCM, ChaCha20-Poly1305; TLS 1.3 suites are AEAD), never NULL/export/CBC.
The key log (NSS format) is an explicit opt-in for tshark.

:class:`PskSecureChannel` is the same channel keyed by a TLS-PSK from
MIKEY-TICKET (TS 33.328 Annex H) on the stdlib ``ssl`` engine: its
``channel_*`` callbacks receive it in place of a :class:`SecureChannel`.

:func:`fingerprint_matches` implements RFC 8122 §5: of the peer's
fingerprints, those of its strongest hash that we support are used, and the
certificate must equal one of them; hashes weaker than SHA-256 are ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from OpenSSL import SSL, crypto

logger = logging.getLogger(__name__)

__all__ = [
    "CIPHERS",
    "PskSecureChannel",
    "SecureChannel",
    "SecureChannelApp",
    "fingerprint_matches",
    "make_context",
]

CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!EXPORT:!SHA1"
HANDSHAKE_TIMEOUT = 10.0
_HASHES = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}  # strongest last


def fingerprint_matches(certificate_der: bytes, fingerprints: Iterable[tuple[str, str]]) -> bool:
    """True when the certificate equals one of the peer's strongest fingerprints."""
    usable = [(h.lower(), v.upper()) for h, v in fingerprints if h.lower() in _HASHES]
    if not usable:
        return False
    strongest = max((h for h, _ in usable), key=list(_HASHES).index)
    digest = hashlib.new(_HASHES[strongest], certificate_der).digest()
    actual = ":".join(f"{byte:02X}" for byte in digest)
    return any(value == actual for h, value in usable if h == strongest)


def make_context(
    cert: str | Path, key: str | Path, *, keylog_filename: str | Path | None = None
) -> SSL.Context:
    """A context for either role: our certificate, any peer certificate requested."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_cipher_list(CIPHERS)
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    context.use_certificate_file(str(cert))
    context.use_privatekey_file(str(key))
    context.check_privatekey()
    # no CA decides: the SDP fingerprint does, during the handshake (_verify_fingerprint)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_fingerprint)
    if keylog_filename is not None:
        path = Path(keylog_filename)
        logger.warning("TLS key log enabled for MSRP/BFCP: %s (debugging only)", path)

        def keylog(connection: SSL.Connection, line: bytes) -> None:
            with path.open("ab") as handle:
                handle.write(line + b"\n")

        context.set_keylog_callback(keylog)
    return context


_BIO_READ = 262144  # bytes of TLS records taken from the memory BIO per call
_MISMATCH = "peer certificate does not match the SDP fingerprint (RFC 8122)"


def _verify_fingerprint(
    connection: SSL.Connection, certificate: crypto.X509, errno: int, depth: int, ok: int
) -> bool:
    """OpenSSL's verify callback: the peer's own certificate must match its SDP
    ``a=fingerprint`` (RFC 8122 §5), else the handshake fails with a fatal alert
    to the peer (OpenSSL sends unknown_ca: the SDP is our only trust anchor)
    instead of a silent close after it.  Chains are not
    checked (self-signed certificates are the rule): only the leaf counts."""
    channel = connection.get_app_data()
    if depth != 0 or not isinstance(channel, SecureChannel):
        return True
    der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate)
    if channel._verifier(der):  # noqa: SLF001 (the channel this connection belongs to)
        return True
    channel._mismatch = True  # noqa: SLF001
    return False


class SecureChannelApp(Protocol):
    """The protocol above the channel (MSRP, BFCP)."""

    def channel_open(self, channel: SecureChannel) -> None: ...
    def channel_data(self, channel: SecureChannel, data: bytes) -> None: ...
    def channel_closed(self, channel: SecureChannel, reason: str | None) -> None: ...


class SecureChannel(asyncio.Protocol):
    """TLS over an asyncio transport; ``verifier(der)`` gates the application."""

    def __init__(
        self,
        context: SSL.Context,
        app: SecureChannelApp,
        verifier: Callable[[bytes], bool],
        *,
        server_side: bool,
    ) -> None:
        self._tls = SSL.Connection(context, None)
        self._tls.set_app_data(self)  # for _verify_fingerprint
        self._mismatch = False
        if server_side:
            self._tls.set_accept_state()
        else:
            self._tls.set_connect_state()
        self.app = app
        self._verifier = verifier
        self.server_side = server_side
        self.transport: asyncio.Transport | None = None
        self.peer_certificate: bytes | None = None
        self.cipher: str | None = None
        self.version: str | None = None
        self.open = False
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self._fail, "handshake timeout")
        self._handshake()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._tls.bio_write(data)
        if not self.open:
            self._handshake()
        if self.open:
            self._read()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(str(exc) if exc else None)

    # -- API ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.open or self.closed:
            return
        view = memoryview(data)
        while view:
            sent = self._tls.send(view[:16384])
            view = view[sent:]
        self._flush()

    def close(self) -> None:
        if self.closed:
            return
        if self.open:
            try:
                self._tls.shutdown()
            except SSL.Error:
                pass
            self._flush()
        if self.transport is not None:
            self.transport.close()
        self._finish(None)

    @property
    def peer_address(self) -> tuple[str, int] | None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return (str(peer[0]), int(peer[1])) if peer else None

    # -- internals ------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._tls.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as exc:
            self._flush()  # our alert, if any
            self._fail(_MISMATCH if self._mismatch else f"TLS handshake failed: {exc}")
            return
        self._flush()
        certificate = self._tls.get_peer_certificate()
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate) if certificate else b""
        if not der or not self._verifier(der):  # again: a resumed session skips the callback
            self._fail(_MISMATCH)
            return
        if self._timer is not None:
            self._timer.cancel()
        self.peer_certificate = der
        self.cipher = self._tls.get_cipher_name()
        self.version = self._tls.get_protocol_version_name()
        self.open = True
        self.app.channel_open(self)

    def _read(self) -> None:
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(self._tls.recv(65536))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self.close()
                break
            except SSL.Error as exc:
                self._fail(f"TLS error: {exc}")
                break
        self._flush()
        if chunks and not self.closed:
            self.app.channel_data(self, b"".join(chunks))

    def _flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        while True:
            try:
                data = self._tls.bio_read(_BIO_READ)
            except SSL.WantReadError:
                return
            if not data:
                return
            self.transport.write(data)
            if len(data) < _BIO_READ:  # a memory BIO hands out all it holds: drained
                return

    def _fail(self, reason: str) -> None:
        if self.closed:
            return
        logger.info("TLS channel from %s closed: %s", self.peer_address, reason)
        if self.transport is not None:
            self.transport.close()
        self._finish(reason)

    def _finish(self, reason: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._tls.set_app_data(None)
        if self._timer is not None:
            self._timer.cancel()
        was_open, self.open = self.open, False
        if was_open or reason is not None:
            self.app.channel_closed(self, reason)


class PskSecureChannel(asyncio.Protocol):
    """TLS-PSK (TS 33.328 Annex H, decision (d)) over an asyncio transport.

    The same interface as :class:`SecureChannel` for MSRP and BFCP, but keyed
    by a MIKEY-TICKET TEK instead of certificates: pyOpenSSL has no PSK API,
    so this runs the stdlib ``ssl`` engine on memory BIOs
    (``SSLContext.wrap_bio``) with the Python 3.13 PSK callbacks of
    :mod:`mrf.tls_psk` (TLS 1.2 plain-PSK AEAD suites, empty identity).  A
    wrong key fails the handshake (``bad_record_mac`` / ``decrypt_error``)
    before a single application byte reaches the protocol above.
    """

    peer_certificate: bytes | None = None

    def __init__(self, context: ssl.SSLContext, app: SecureChannelApp, *, server_side: bool):
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=server_side)
        self.app = app
        self.server_side = server_side
        self.transport: asyncio.Transport | None = None
        self.cipher: str | None = None
        self.version: str | None = None
        self.open = False
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self._fail, "handshake timeout")
        self._handshake()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._in.write(data)
        if not self.open:
            self._handshake()
        if self.open:
            self._read()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(str(exc) if exc else None)

    def write(self, data: bytes) -> None:
        if not self.open or self.closed:
            return
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            self._fail(f"TLS error: {exc}")
            return
        self._flush()

    def close(self) -> None:
        if self.closed:
            return
        if self.open:
            try:
                self._tls.unwrap()
            except ssl.SSLError:
                pass
            self._flush()
        if self.transport is not None:
            self.transport.close()
        self._finish(None)

    @property
    def peer_address(self) -> tuple[str, int] | None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return (str(peer[0]), int(peer[1])) if peer else None

    def _handshake(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:
            self._flush()
            self._fail(f"TLS-PSK handshake failed: {exc.reason or exc}")
            return
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
        suite = self._tls.cipher()
        self.cipher = suite[0] if suite else None
        self.version = self._tls.version()
        self.open = True
        self.app.channel_open(self)  # type: ignore[arg-type]

    def _read(self) -> None:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.close()
                break
            except ssl.SSLError as exc:
                self._fail(f"TLS error: {exc}")
                break
            if not chunk:
                break
            chunks.append(chunk)
        self._flush()
        if chunks and not self.closed:
            self.app.channel_data(self, b"".join(chunks))  # type: ignore[arg-type]

    def _flush(self) -> None:
        data = self._out.read()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, reason: str) -> None:
        if self.closed:
            return
        logger.info("TLS-PSK channel from %s closed: %s", self.peer_address, reason)
        if self.transport is not None:
            self.transport.close()
        self._finish(reason)

    def _finish(self, reason: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        was_open, self.open = self.open, False
        if was_open or reason is not None:
            self.app.channel_closed(self, reason)  # type: ignore[arg-type]
