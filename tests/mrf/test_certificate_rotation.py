"""Rotating the focus certificate as docs/operations.md says: stop, replace the pair, start.

The real ``mrf serve`` (a subprocess, as an operator runs it).  Before the
rotation its self-signed certificate's SHA-256 fingerprint is in the MSRP and
BFCP lines of an answer and is what the SIP-TLS, MSRP and BFCP listeners
present; a call is up.  Stopping the server sends that call a BYE.  The
operator puts their own pair in ``<data_dir>/tls/`` (RSA, another subject) and
starts again: new answers carry the new fingerprint, every listener presents
the new certificate, and the files are used as they are (not rewritten).
A key that does not match the certificate, or an expired certificate, stops
``mrf serve`` at start with exit status 1 and one ``cannot start: TLS
certificate: ...`` line (no traceback), leaving the files alone.
"""

from __future__ import annotations

import datetime
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from focus.sdp.session import SdpSession
from focus.sip.message import SipRequest, SipResponse, make_response, parse_message
from mrf.tls import certificate_fingerprint
from tests.interop.harness import REPO, MrfServer, clean_env, tail
from tests.reliability.session import Identity, offer

pytestmark = pytest.mark.interop

ALICE = "sip:alice@127.0.0.1"
DAY = datetime.timedelta(days=1)


class Caller:
    """A participant on a UDP socket: INVITE with MSRP+BFCP lines, ACK, and BYEs answered."""

    def __init__(self, server: MrfServer, identity: Identity) -> None:
        self.server = server
        self.identity = identity
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def _via(self) -> str:
        return f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport"

    def receive(self, timeout: float) -> SipRequest | SipResponse | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return parse_message(self.sock.recv(65535))
            except TimeoutError:
                continue
        return None

    def call(self) -> SdpSession:
        """Dial in to ``room``; the answer (the call stays up)."""
        uri = self.server.request_uri("room")
        body = offer(self.identity, "127.0.0.1", secrets.token_urlsafe(12))
        tag, call_id = secrets.token_hex(4), f"{secrets.token_hex(8)}@rotation"
        head = (
            f"INVITE {uri} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
            f"From: <{ALICE}>;tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:{self.port}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendto(head.encode() + body, (self.server.host, self.server.port))
        while True:
            answer = self.receive(10)
            assert isinstance(answer, SipResponse), f"no answer to the INVITE: {answer!r}"
            if answer.status >= 200:
                break
        assert answer.status == 200, f"INVITE answered {answer.status} {answer.reason}"
        contact = answer.headers.get("Contact", "").strip("<>").split(">")[0]
        ack = (
            f"ACK {contact} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
            f"From: <{ALICE}>;tag={tag}\r\nTo: {answer.headers.get('To')}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        self.sock.sendto(ack.encode(), (self.server.host, self.server.port))
        return SdpSession.parse(answer.body)

    def wait_bye(self, timeout: float) -> bool:
        """True once a BYE arrived (answered 200)."""
        while (message := self.receive(timeout)) is not None:
            if isinstance(message, SipRequest) and message.method == "BYE":
                via = message.vias[0]
                self.sock.sendto(bytes(make_response(message, 200)), (via.host, via.port or 5060))
                return True
        return False


def _answer_fingerprints(answer: SdpSession) -> set[str]:
    """The ``sha-256`` values of every ``a=fingerprint`` of the MSRP and BFCP lines."""
    found = set()
    for media in answer.media:
        if media.kind in ("message", "application") and media.port:
            for attribute in media.get_attributes("fingerprint"):
                hash_name, _, value = (attribute.value or "").partition(" ")
                assert hash_name.lower() == "sha-256", attribute.value
                found.add(value.upper())
    assert len(found) >= 1, f"no fingerprint in the answer:\n{answer}"
    return found


def _listeners(server: MrfServer, answer: SdpSession) -> dict[str, tuple[str, int]]:
    """SIP-TLS from the config; MSRP from the answer's a=path; BFCP from its m= line."""
    places = {"sip-tls": (server.host, server.tls_port)}
    for media in answer.media:
        if media.kind == "message" and media.port:
            path = (media.get_attribute("path").value or "").split("/")[2]  # type: ignore[union-attr]
            host, _, port = path.rpartition(":")
            places["msrp"] = (host.strip("[]"), int(port))
        elif media.kind == "application" and media.port:
            connection = answer.connection_for(media)
            places["bfcp"] = (connection.address if connection else server.host, media.port)
    assert set(places) == {"sip-tls", "msrp", "bfcp"}, places
    return places


def _presented(place: tuple[str, int], identity: Identity) -> str:
    """The fingerprint of the certificate a listener presents (we show ours: MSRP/BFCP ask)."""
    context = identity.tls_context()
    with socket.create_connection(place, timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return certificate_fingerprint(der)


def _operator_pair(directory: Path, *, expired: bool = False) -> tuple[bytes, bytes]:
    """Write an operator's RSA pair (CN conference.example.net) to ``directory/tls``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conference.example.net")])
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - 400 * DAY, now - DAY) if expired else (now - DAY, now + 365 * DAY)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("conference.example.net")]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    (directory / "tls" / "cert.pem").write_bytes(cert_pem)
    (directory / "tls" / "key.pem").write_bytes(key_pem)
    (directory / "tls" / "key.pem").chmod(0o600)
    return cert_pem, key_pem


def _stop(server: MrfServer, caller: Caller) -> None:
    """Ctrl-C; the caller's call gets a BYE (answered) and the server exits 0."""
    assert server.process is not None
    server.process.proc.send_signal(signal.SIGINT)
    assert caller.wait_bye(10), f"no BYE for the call in progress:\n{tail(server.log)}"
    assert server.process.wait(20) == 0, tail(server.log)
    assert server.stop() == 0


def _refused_start(server: MrfServer) -> str:
    """``mrf serve`` that must stop at start: its stderr (exit status 1 checked)."""
    result = subprocess.run(
        [sys.executable, "-m", "mrf", "serve", "--config", str(server.config)],
        capture_output=True, text=True, timeout=60, cwd=server.workdir,
        env=clean_env(PYTHONPATH=str(REPO)), check=False,
    )  # fmt: skip
    assert result.returncode == 1, f"rc={result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_stop_replace_start_rotates_every_fingerprint(tmp_path: Path) -> None:
    server = MrfServer(tmp_path / "server")
    server.cli("conference", "create", "room", "--participant", ALICE)
    identity = Identity(tmp_path / "alice")
    caller = Caller(server, identity)
    tls = server.data_dir / "tls"
    try:
        server.start()
        old = certificate_fingerprint((tls / "cert.pem").read_bytes())
        answer = caller.call()
        assert _answer_fingerprints(answer) == {old}
        for name, place in _listeners(server, answer).items():
            assert _presented(place, identity) == old, name

        _stop(server, caller)  # 1. stop: the call in progress gets a BYE

        cert_pem, key_pem = _operator_pair(server.data_dir)  # 2. the operator's pair
        new = certificate_fingerprint(cert_pem)
        assert new != old
        server.process = server.returncode = None
        server.start()  # 3. start again
        answer = caller.call()
        assert _answer_fingerprints(answer) == {new}
        for name, place in _listeners(server, answer).items():
            assert _presented(place, identity) == new, name
        assert f"TLS certificate {tls / 'cert.pem'} ({new})" in server.log_text()
        _stop(server, caller)
        assert (tls / "cert.pem").read_bytes() == cert_pem  # used as it is
        assert (tls / "key.pem").read_bytes() == key_pem
    finally:
        caller.close()
        server.stop()


def test_a_wrong_or_expired_pair_stops_the_start(tmp_path: Path) -> None:
    server = MrfServer(tmp_path / "server")
    tls = server.data_dir / "tls"
    tls.mkdir(parents=True)
    cert_pem, _ = _operator_pair(server.data_dir)
    other = ec.generate_private_key(ec.SECP256R1())
    (tls / "key.pem").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip
    stderr = _refused_start(server)
    assert "cannot start: TLS certificate: " in stderr and "does not match" in stderr, stderr
    assert (tls / "cert.pem").read_bytes() == cert_pem  # nothing was replaced
    assert not (server.data_dir / "mrf.db").exists()  # checked before the database is opened

    cert_pem, _ = _operator_pair(server.data_dir, expired=True)
    stderr = _refused_start(server)
    assert "cannot start: TLS certificate: " in stderr and "expired on" in stderr, stderr
    assert (tls / "cert.pem").read_bytes() == cert_pem

    (tls / "key.pem").unlink()  # a lone certificate: refused, never overwritten
    stderr = _refused_start(server)
    assert "exists without" in stderr, stderr
    assert (tls / "cert.pem").read_bytes() == cert_pem
