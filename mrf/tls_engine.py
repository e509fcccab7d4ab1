"""TLS engines on memory BIOs for the MSRP and BFCP streams (no asyncio, no sockets).

A :class:`TlsEngine` takes the peer's TLS records with :meth:`~TlsEngine.receive_data`
and hands out the records to send with :meth:`~TlsEngine.data_to_send`; it never
touches a socket or a clock (the asyncio adapter, :class:`mrf.secure_channel.SecureChannel`,
does both).  Two engines fit the interface:

* :class:`CertificateTlsEngine` -- pyOpenSSL, our self-signed certificate, the
  peer's certificate checked against its SDP ``a=fingerprint`` (RFC 8122 §5,
  RFC 4975 §14.4, RFC 8856 §9) by ``verifier``.  **Why pyOpenSSL and not
  ``ssl``:** a stdlib *server* cannot ask for a client certificate without
  verifying it against a CA (``CERT_OPTIONAL`` still aborts the handshake with
  "unknown ca" on a self-signed certificate), so the passive side could never
  learn the participant's certificate.  pyOpenSSL's verify callback accepts any
  chain and the leaf is judged by ``verifier``: a mismatch fails the handshake
  with a fatal alert to the peer, before any application byte.
* :class:`PskTlsEngine` -- the stdlib ``ssl`` engine (``SSLContext.wrap_bio``)
  keyed by the TLS-PSK from MIKEY-TICKET (TS 33.328 Annex H) through the
  contexts of :mod:`mrf.tls_psk`; a wrong key fails the handshake.

Policy (TS 33.328 §5.3): TLS 1.2 or later, the one cipher policy
:data:`mrf.tls.TLS12_CIPHERS` (ECDHE with AEAD, never NULL/export/CBC/SHA-1);
TLS-PSK: :data:`mrf.tls_psk.PSK_CIPHERS`.  The key log (NSS format) is an
explicit opt-in for tshark.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from OpenSSL import SSL, crypto

from mrf.tls import TLS12_CIPHERS

logger = logging.getLogger(__name__)

__all__ = [
    "CertificateTlsEngine",
    "PskTlsEngine",
    "StreamSecurity",
    "TlsEngine",
    "TlsEngineError",
    "make_context",
]

FINGERPRINT_MISMATCH = "peer certificate does not match the SDP fingerprint (RFC 8122)"
_BIO_READ = 262144  # bytes of TLS records taken from a memory BIO per call
_RECORD = 16384  # plaintext per SSL_write (one TLS record)


class TlsEngineError(Exception):
    """The TLS session failed (handshake, record, or fingerprint); ``str`` is the reason."""


class StreamSecurity(Protocol):
    """What a secured stream learnt in its handshake (read by the services above)."""

    @property
    def server_side(self) -> bool: ...
    @property
    def peer_certificate(self) -> bytes | None: ...
    @property
    def cipher(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...


class TlsEngine(StreamSecurity, Protocol):
    """What :class:`mrf.secure_channel.SecureChannel` needs from a TLS implementation."""

    def receive_data(self, data: bytes) -> None:
        """TLS records from the peer."""

    def handshake(self) -> bool:
        """Advance the handshake: True once it is complete; raises :class:`TlsEngineError`."""

    def read(self) -> tuple[bytes, bool]:
        """Application bytes decrypted so far, and True when the peer sent close_notify."""

    def write(self, data: bytes) -> None:
        """Encrypt application bytes (read them back with :meth:`data_to_send`)."""

    def shutdown(self) -> None:
        """Queue our close_notify (errors ignored: the connection is going anyway)."""

    def data_to_send(self) -> bytes:
        """TLS records to send to the peer (empty when none)."""

    def release(self) -> None:
        """Drop references to callers (the verifier) once the connection is over."""


def make_context(
    cert: str | Path, key: str | Path, *, keylog_filename: str | Path | None = None
) -> SSL.Context:
    """A pyOpenSSL context for either role: our certificate, a peer certificate required."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_cipher_list(TLS12_CIPHERS.encode("ascii"))
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    context.use_certificate_file(str(cert))
    context.use_privatekey_file(str(key))
    context.check_privatekey()
    # no CA decides: the SDP fingerprint does, during the handshake (_verify_leaf)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_leaf)
    if keylog_filename is not None:
        path = Path(keylog_filename)
        logger.warning("TLS key log enabled for MSRP/BFCP: %s (debugging only)", path)

        def keylog(connection: SSL.Connection, line: bytes) -> None:
            with path.open("ab") as handle:
                handle.write(line + b"\n")

        context.set_keylog_callback(keylog)
    return context


def _verify_leaf(
    connection: SSL.Connection, certificate: crypto.X509, errno: int, depth: int, ok: int
) -> bool:
    """OpenSSL's verify callback: only the leaf counts and its engine's verifier decides
    (OpenSSL then sends unknown_ca: the SDP is our only trust anchor)."""
    engine = connection.get_app_data()
    if depth != 0 or not isinstance(engine, CertificateTlsEngine):
        return True
    return engine.judge(crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate))


class CertificateTlsEngine:
    """pyOpenSSL on memory BIOs; ``verifier(der)`` judges the peer's certificate."""

    def __init__(
        self, context: SSL.Context, verifier: Callable[[bytes], bool], *, server_side: bool
    ) -> None:
        self._tls = SSL.Connection(context, None)
        self._tls.set_app_data(self)  # for _verify_leaf
        if server_side:
            self._tls.set_accept_state()
        else:
            self._tls.set_connect_state()
        self._verifier: Callable[[bytes], bool] | None = verifier
        self._mismatch = False
        self.server_side = server_side
        self.peer_certificate: bytes | None = None
        self.cipher: str | None = None
        self.version: str | None = None

    def judge(self, der: bytes) -> bool:
        """The verifier's verdict on ``der``; a refusal is remembered for the reason."""
        ok = self._verifier is not None and self._verifier(der)
        self._mismatch |= not ok
        return ok

    def receive_data(self, data: bytes) -> None:
        self._tls.bio_write(data)

    def handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except SSL.WantReadError:
            return False
        except SSL.Error as exc:
            raise TlsEngineError(
                FINGERPRINT_MISMATCH if self._mismatch else f"TLS handshake failed: {exc}"
            ) from exc
        certificate = self._tls.get_peer_certificate()
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate) if certificate else b""
        if not der or not self.judge(der):  # again: a resumed session skips the callback
            raise TlsEngineError(FINGERPRINT_MISMATCH)
        self.peer_certificate = der
        self.cipher = self._tls.get_cipher_name()
        self.version = self._tls.get_protocol_version_name()
        return True

    def read(self) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(self._tls.recv(65536))
            except SSL.WantReadError:
                return b"".join(chunks), False
            except SSL.ZeroReturnError:
                return b"".join(chunks), True
            except SSL.Error as exc:
                raise TlsEngineError(f"TLS error: {exc}") from exc

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self._tls.send(view[:_RECORD]) :]
        except SSL.Error as exc:
            raise TlsEngineError(f"TLS error: {exc}") from exc

    def shutdown(self) -> None:
        try:
            self._tls.shutdown()
        except SSL.Error:
            pass

    def data_to_send(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                data = self._tls.bio_read(_BIO_READ)
            except SSL.WantReadError:
                break
            if not data:
                break
            chunks.append(data)
            if len(data) < _BIO_READ:  # a memory BIO hands out all it holds: drained
                break
        return b"".join(chunks)

    def release(self) -> None:
        self._tls.set_app_data(None)
        self._verifier = None


class PskTlsEngine:
    """The stdlib ``ssl`` engine on memory BIOs, keyed by a TLS-PSK context (:mod:`mrf.tls_psk`)."""

    peer_certificate: bytes | None = None  # the PSK authenticates, no certificate

    def __init__(self, context: ssl.SSLContext, *, server_side: bool) -> None:
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=server_side)
        self.server_side = server_side
        self.cipher: str | None = None
        self.version: str | None = None

    def receive_data(self, data: bytes) -> None:
        self._in.write(data)

    def handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as exc:
            raise TlsEngineError(f"TLS-PSK handshake failed: {exc.reason or exc}") from exc
        suite = self._tls.cipher()
        self.cipher = suite[0] if suite else None
        self.version = self._tls.version()
        return True

    def read(self) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(65536)
            except ssl.SSLWantReadError:
                return b"".join(chunks), False
            except ssl.SSLZeroReturnError:
                return b"".join(chunks), True
            except ssl.SSLError as exc:
                raise TlsEngineError(f"TLS error: {exc}") from exc
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)

    def write(self, data: bytes) -> None:
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            raise TlsEngineError(f"TLS error: {exc}") from exc

    def shutdown(self) -> None:
        try:
            self._tls.unwrap()
        except ssl.SSLError:
            pass

    def data_to_send(self) -> bytes:
        return self._out.read()

    def release(self) -> None:
        pass
