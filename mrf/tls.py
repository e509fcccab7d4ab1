"""TLS for SIP (RFC 3261 §26.2.1), MSRP (RFC 4975 §14.4) and BFCP (RFC 8856 §9).

* :func:`ensure_certificate` makes the server's self-signed certificate once and
  keeps it in ``<data_dir>/tls/``: peers authenticate it by its SDP
  ``a=fingerprint`` (RFC 8122 §5), so it must survive restarts.  An operator may
  drop in their own ``cert.pem``/``key.pem`` (docs/operations.md): the pair is
  checked at start (both files present, key matches certificate, within its
  validity period) and then used as it is; a lone file is never overwritten.
* :func:`certificate_fingerprint` gives the RFC 8122 §5 fingerprint value.
* :func:`server_ssl_context` / :func:`client_ssl_context`: TLS 1.2 or later,
  forward-secret AEAD suites only (no NULL, no CBC, no static RSA).
* A key-log file (NSS ``SSLKEYLOGFILE`` format) is an explicit opt-in
  (``keylog_filename``), off by default; it lets tshark decrypt captures.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
VALIDITY = datetime.timedelta(days=3650)
EXPIRY_WARNING = datetime.timedelta(days=30)  # a warning at start when less is left
# The one cipher policy of every certificate TLS listener and client (SIP, MSRP, BFCP):
# forward-secret (ECDHE) AEAD suites; the exclusions name what must never appear.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!EXPORT:!SHA1"
# RFC 8122 §5 hash-func names (IANA "Hash Function Textual Names"); MD2/MD5 are forbidden.
FINGERPRINT_HASHES = {
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}


class TlsError(Exception):
    """Certificate files are unusable, or a fingerprint request is invalid."""


def ensure_certificate(data_dir: Path) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` under ``data_dir/tls``, created on first use.

    EC P-256, self-signed, CN ``127.0.0.1``, SAN 127.0.0.1, ::1 and localhost,
    valid 10 years; the key file is mode 0600.  Existing files are checked
    (parseable, key matches certificate, valid now) and reused.  Only one of
    the two files present is an error too: the other is not regenerated over it.
    """
    directory = Path(data_dir) / "tls"
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if cert_path.exists() and key_path.exists():
        _check_pair(cert_path, key_path)
        return cert_path, key_path
    for present, missing in ((cert_path, key_path), (key_path, cert_path)):
        if present.exists():
            raise TlsError(
                f"{present} exists without {missing}: put the matching file there, "
                "or remove both to have a new self-signed certificate made"
            )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key)
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    logger.info(
        "created TLS certificate %s (sha-256 %s)",
        cert_path,
        certificate_fingerprint(certificate.public_bytes(serialization.Encoding.DER)),
    )
    return cert_path, key_path


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("localhost"),
    ]
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically with ``mode`` (never world-readable in between)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _check_pair(cert_path: Path, key_path: Path) -> None:
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsError(f"unusable TLS files in {cert_path.parent}: {exc}") from exc
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != certificate.public_key().public_bytes(*public):
        raise TlsError(f"{key_path} does not match {cert_path}")
    _check_validity(cert_path, certificate, datetime.datetime.now(datetime.UTC))


def _check_validity(path: Path, certificate: x509.Certificate, now: datetime.datetime) -> None:
    """Refuse a certificate outside its validity period; warn 30 days before it ends."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < start:
        raise TlsError(f"{path} is not valid before {start:%Y-%m-%d %H:%M} UTC")
    if now > end:
        raise TlsError(f"{path} expired on {end:%Y-%m-%d %H:%M} UTC")
    if end - now < EXPIRY_WARNING:
        logger.warning("TLS certificate %s expires on %s UTC", path, f"{end:%Y-%m-%d %H:%M}")


def certificate_fingerprint(certificate: bytes | str, hash: str = "sha-256") -> str:
    """RFC 8122 §5 fingerprint: upper-case hex pairs joined by ``:`` over the DER.

    ``certificate`` is PEM (text or bytes) or DER bytes (``getpeercert(True)``);
    ``hash`` is an RFC 8122 hash name such as ``sha-256`` (MD5/MD2 refused).
    """
    algorithm = FINGERPRINT_HASHES.get(hash.lower())
    if algorithm is None:
        raise TlsError(
            f"unsupported fingerprint hash {hash!r}: use {', '.join(FINGERPRINT_HASHES)}"
        )
    digest = hashlib.new(algorithm, certificate_der(certificate)).digest()
    return ":".join(f"{byte:02X}" for byte in digest)


def certificate_der(certificate: bytes | str) -> bytes:
    """DER bytes of a PEM or DER certificate (validated)."""
    data = certificate.encode("ascii") if isinstance(certificate, str) else bytes(certificate)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            parsed = x509.load_pem_x509_certificate(data)
        else:
            parsed = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise TlsError(f"not an X.509 certificate: {exc}") from exc
    return parsed.public_bytes(serialization.Encoding.DER)


def _harden(context: ssl.SSLContext, keylog_filename: str | Path | None) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)  # TLS 1.3 suites are all AEAD already
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if keylog_filename is not None:
        context.keylog_filename = str(keylog_filename)
        logger.warning("TLS key log enabled: %s (debugging only)", keylog_filename)
    return context


def server_ssl_context(
    cert: str | Path, key: str | Path, *, keylog_filename: str | Path | None = None
) -> ssl.SSLContext:
    """Server context with our certificate: TLS 1.2+, ECDHE AEAD suites only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return _harden(context, keylog_filename)


def client_ssl_context(
    verify: bool = False,
    *,
    cafile: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    keylog_filename: str | Path | None = None,
) -> ssl.SSLContext:
    """Client context: TLS 1.2+, ECDHE AEAD suites only.

    ``verify=False`` is for peers authenticated by SDP fingerprint instead
    (RFC 8122 §6.2): the caller must compare :func:`certificate_fingerprint` of
    the peer certificate itself.  ``verify=True`` checks the chain (``cafile``
    or the system store) and the host name.  ``cert``/``key`` present a client
    certificate (the active side of MSRP/BFCP, RFC 8122 §6.2).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if cafile is not None:
            context.load_verify_locations(cafile=cafile)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(cert, key)
    return _harden(context, keylog_filename)
