"""mrf.tls: persistent self-signed certificate, RFC 8122 fingerprints, hardened contexts."""

from __future__ import annotations

import datetime
import hashlib
import logging
import ssl
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mrf.tls import (
    TlsError,
    certificate_der,
    certificate_fingerprint,
    client_ssl_context,
    ensure_certificate,
    server_ssl_context,
)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return ensure_certificate(tmp_path)


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, hostname: str | None = None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake in memory; raises the first side's SSLError."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    client_to_server, server_to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(server_to_client, client_to_server, server_hostname=hostname)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client_side), ("server", server_side)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        to_server.write(client_to_server.read())
        server_to_client.write(to_client.read())
        if all(done.values()):
            return server_side, client_side
    raise AssertionError("handshake did not finish")


def test_certificate_created_with_expected_properties(pair: tuple[Path, Path]) -> None:
    cert_path, key_path = pair
    assert cert_path.name == "cert.pem" and key_path.name == "key.pem"
    assert cert_path.parent.name == "tls"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert certificate.subject == certificate.issuer
    cn = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "127.0.0.1"
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.days >= 3650


def test_certificate_is_persisted_and_reused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    before = pair[0].read_bytes(), pair[1].read_bytes()
    assert ensure_certificate(tmp_path) == pair
    assert (pair[0].read_bytes(), pair[1].read_bytes()) == before


def test_a_lone_certificate_or_key_is_refused_never_overwritten(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = pair
    kept = key.read_bytes()
    cert.unlink()
    with pytest.raises(TlsError, match="key.pem exists without .*cert.pem"):
        ensure_certificate(tmp_path)
    assert key.read_bytes() == kept and not cert.exists()
    ensure_certificate(tmp_path / "other")[0].replace(cert)  # an operator's cert, no key
    kept = cert.read_bytes()
    key.unlink()
    with pytest.raises(TlsError, match="cert.pem exists without .*key.pem"):
        ensure_certificate(tmp_path)
    assert cert.read_bytes() == kept and not key.exists()
    cert.unlink()  # both gone: a new pair is made
    assert ensure_certificate(tmp_path) == pair
    server_ssl_context(*pair)  # the new pair matches


def _operator_pair(
    directory: Path, not_before: datetime.datetime, not_after: datetime.datetime
) -> tuple[Path, Path]:
    """An operator's own pair in ``directory/tls``: RSA, CN conference.example.net."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conference.example.net")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (directory / "tls").mkdir(parents=True)
    cert, key_file = directory / "tls" / "cert.pem", directory / "tls" / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


def test_an_operator_pair_is_used_as_it_is(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    pair = _operator_pair(
        tmp_path, now - datetime.timedelta(days=1), now + datetime.timedelta(days=90)
    )
    before = pair[0].read_bytes(), pair[1].read_bytes()
    assert ensure_certificate(tmp_path) == pair
    assert (pair[0].read_bytes(), pair[1].read_bytes()) == before
    server, client = handshake(server_ssl_context(*pair), client_ssl_context())
    assert certificate_fingerprint(client.getpeercert(True)) == certificate_fingerprint(before[0])


def test_expired_or_future_certificates_are_refused(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    _operator_pair(tmp_path / "old", now - 400 * day, now - day)
    with pytest.raises(TlsError, match=r"cert\.pem expired on \d{4}-\d\d-\d\d"):
        ensure_certificate(tmp_path / "old")
    _operator_pair(tmp_path / "new", now + day, now + 400 * day)
    with pytest.raises(TlsError, match=r"cert\.pem is not valid before \d{4}-"):
        ensure_certificate(tmp_path / "new")


def test_a_certificate_near_its_end_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    _operator_pair(tmp_path, now - datetime.timedelta(days=300), now + datetime.timedelta(days=10))
    with caplog.at_level(logging.WARNING, logger="mrf.tls"):
        ensure_certificate(tmp_path)
    assert [r.getMessage() for r in caplog.records if "expires on" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mrf.tls"):
        ensure_certificate(tmp_path / "fresh")  # ten years left: no warning
    assert not [r for r in caplog.records if "expires on" in r.getMessage()]


def test_mismatched_or_corrupt_files_are_reported(tmp_path: Path) -> None:
    cert, _ = ensure_certificate(tmp_path / "a")
    _, other_key = ensure_certificate(tmp_path / "b")
    (tmp_path / "a" / "tls" / "key.pem").write_bytes(other_key.read_bytes())
    with pytest.raises(TlsError, match="does not match"):
        ensure_certificate(tmp_path / "a")
    cert.write_text("garbage")
    with pytest.raises(TlsError, match="unusable TLS files"):
        ensure_certificate(tmp_path / "a")


def test_fingerprint_equals_hash_of_der(pair: tuple[Path, Path]) -> None:
    pem = pair[0].read_text()
    der = ssl.PEM_cert_to_DER_cert(pem)
    expected = hashlib.sha256(der).hexdigest().upper()
    fingerprint = certificate_fingerprint(pem)
    assert fingerprint.replace(":", "") == expected
    assert len(fingerprint) == 32 * 3 - 1 and fingerprint == fingerprint.upper()
    assert certificate_fingerprint(der) == fingerprint
    assert certificate_fingerprint(pem.encode()) == fingerprint
    assert certificate_der(pem) == der
    sha1 = certificate_fingerprint(der, "SHA-1")
    assert sha1.replace(":", "") == hashlib.sha1(der).hexdigest().upper()


def test_fingerprint_rejects_md5_and_garbage(pair: tuple[Path, Path]) -> None:
    with pytest.raises(TlsError, match="unsupported fingerprint hash 'md5'"):
        certificate_fingerprint(pair[0].read_text(), "md5")
    with pytest.raises(TlsError, match="not an X.509 certificate"):
        certificate_fingerprint(b"\x30\x03\x02\x01\x00")


def test_handshake_with_verification_and_fingerprint(pair: tuple[Path, Path]) -> None:
    server = server_ssl_context(*pair)
    client = client_ssl_context(verify=True, cafile=pair[0])
    server_side, client_side = handshake(server, client, hostname="127.0.0.1")
    assert client_side.version() in ("TLSv1.2", "TLSv1.3")
    peer = client_side.getpeercert(binary_form=True)
    assert peer is not None
    assert certificate_fingerprint(peer) == certificate_fingerprint(pair[0].read_text())


def test_tls12_negotiates_ecdhe_aead_only(pair: tuple[Path, Path]) -> None:
    client = client_ssl_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    _, client_side = handshake(server_ssl_context(*pair), client)
    name, version, _ = client_side.cipher()  # type: ignore[misc]
    assert version == "TLSv1.2"
    assert name.startswith("ECDHE-ECDSA-") and ("GCM" in name or "CHACHA20" in name)


def test_contexts_offer_only_aead_suites(pair: tuple[Path, Path]) -> None:
    for context in (server_ssl_context(*pair), client_ssl_context()):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        ciphers = context.get_ciphers()
        assert ciphers
        assert all(c["aead"] for c in ciphers)
        assert not any("NULL" in c["name"] for c in ciphers)


def test_server_refuses_tls11(pair: tuple[Path, Path]) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings(action="ignore", category=DeprecationWarning):
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as info:
        handshake(server_ssl_context(*pair), old)
    # the server side refuses the protocol version (not the old client giving up)
    assert "UNSUPPORTED_PROTOCOL" in str(info.value)


def test_client_verification_rejects_unknown_certificate(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    other, _ = ensure_certificate(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_ssl_context(*pair), client_ssl_context(True, cafile=other), "127.0.0.1")


def test_keylog_is_opt_in(pair: tuple[Path, Path], tmp_path: Path) -> None:
    assert server_ssl_context(*pair).keylog_filename is None
    assert client_ssl_context().keylog_filename is None
    log = tmp_path / "keys.log"
    handshake(server_ssl_context(*pair), client_ssl_context(keylog_filename=log))
    assert "CLIENT_" in log.read_text() or "CLIENT_RANDOM" in log.read_text()
