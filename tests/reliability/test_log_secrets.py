"""No key, password, token or message text reaches the log, even at DEBUG (docs/operations.md).

The real ``mrf serve`` (``log_level = "DEBUG"``, every logger of the process,
third-party ones included, on its stderr as an operator runs it) is started
through :mod:`tests.reliability.secret_recorder`, which writes down every
secret the process makes while it makes it.  Then a real session:

* bob dials in with MIKEY-TICKET (``mrf ue join --mikey``): SRTP audio, MSRP
  and BFCP over TLS-PSK, and a subscription whose NOTIFYs are PSK S/MIME;
* alice dials in over SIP/TLS with SDES audio, MSRP and BFCP over TLS
  (fingerprints), requests the floor, subscribes, and says a sentence that
  bob receives;
* an INVITE whose only ``a=crypto`` line is malformed is refused (488, logged
  with its reason), the key in that line is never quoted;
* on the web: a failed sign-in, a sign-in with the administrator's password,
  a REST call with a bearer token;
* both leave; the server stops (clean shutdown).

Then the log (and the server's stdout, which shares the file) must hold none
of: the recorded secrets (SDES master keys offered and answered, MIKEY TEKs and
every other KDF output, KMS user keys, ticket secrets, MPKs/TGKs, session ids,
CSRF and API tokens), the KMS keys file's values, the server's private key,
the TLS secrets of every TLS connection (the UEs' key logs), the PSK S/MIME
KEK (bob's key dump), the passwords tried, the API token, the chat sentence,
or a conference-info document.  Each secret is looked for as hex (either
case), base64 (standard and URL-safe, with or without padding) and Python's
``bytes`` repr, whole and by its first and last 16 bytes.

The run is checked to be real first: the log holds DEBUG lines, both joins,
the MIKEY keying, both media summaries; the KEK bob dumped is among the keys
the recorder saw the server derive.
"""

from __future__ import annotations

import base64
import http.cookiejar
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from focus.conference import ConferencePolicy
from focus.kms.keys import KmsKeys
from focus.store import ConferenceStore
from tests.interop.harness import (
    REPO,
    BackgroundProcess,
    MrfServer,
    clean_env,
    free_port,
    reap,
    sip_options,
    tail,
    wait_for,
)
from tests.notify.watchers import ue_events
from tests.reliability.secret_recorder import BOOT, read_records

pytestmark = pytest.mark.interop

ALICE, BOB = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1"
ADMIN_PASSWORD = "ops-admin-" + secrets.token_hex(12)
WRONG_PASSWORD = "ops-wrong-" + secrets.token_hex(12)
SENTENCE = "the quarterly numbers are " + secrets.token_hex(8)


class Ue:
    """``python -m mrf ue join ...`` with stdin commands; JSON events in ``<name>.jsonl``."""

    def __init__(self, workdir: Path, name: str, *args: str) -> None:
        self.out, self.err = workdir / f"{name}.jsonl", workdir / f"{name}.log"
        self._files = (self.out.open("wb"), self.err.open("wb"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mrf", "ue", "join", *args], stdin=subprocess.PIPE,
            stdout=self._files[0], stderr=self._files[1], env=clean_env(PYTHONPATH=str(REPO)),
            cwd=workdir,
        )  # fmt: skip

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        return ue_events(self.out, kind)

    def explain(self) -> str:
        return f"{self.events()}\n{tail(self.err, 30)}"

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 20) -> int:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.command("leave")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        return reap(self.proc, timeout, self._files)


def _server(workdir: Path) -> tuple[MrfServer, str, int]:
    """Config: DEBUG, embedded KMS on a free port, no NOTIFY rate cap; the KMS URL, web port."""
    server = MrfServer(workdir)
    kms_url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    text = server.config.read_text()
    web_port = int(re.search(r"\[web\]\nhost = \"[^\"]+\"\nport = (\d+)", text)[1])  # type: ignore[index]
    server.config.write_text(
        'log_level = "DEBUG"\n' + text[: text.index("[kms]")]
        + f'[kms]\nurl = "{kms_url}"\nembedded = true\n[notify]\nmin_interval = 0\n'
    )  # fmt: skip
    return server, kms_url, web_port


def _start(server: MrfServer, records: Path) -> None:
    """``mrf serve`` under the recorder, MRF_ADMIN_PASSWORD set; wait for OPTIONS."""
    argv = [sys.executable, "-c", BOOT, str(REPO), str(records), "serve",
            "--config", str(server.config)]  # fmt: skip
    env = clean_env(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", MRF_ADMIN_PASSWORD=ADMIN_PASSWORD)
    server.process = BackgroundProcess(argv, server.log, env=env, cwd=server.workdir)
    up = wait_for(lambda: not server.process.running() or sip_options(server.host, server.port), 30)  # type: ignore[union-attr]
    if not (up and server.process.running()):
        server.stop()
        pytest.fail(f"mrf serve did not start:\n{tail(server.log)}", pytrace=False)


def _web_session(port: int, token: str) -> None:
    """A failed sign-in, a good one (the password), a REST call with the bearer token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"

    def sign_in(password: str) -> tuple[int, str]:
        """The status and the page the form's post/redirect/get lands on."""
        page = opener.open(f"{base}/login", timeout=10).read().decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
        form = {"csrf_token": csrf, "name": "admin", "password": password}
        try:
            with opener.open(f"{base}/login", urllib.parse.urlencode(form).encode(), 10) as reply:
                return int(reply.status), urllib.parse.urlsplit(reply.geturl()).path
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    assert sign_in(WRONG_PASSWORD) == (200, "/login")  # refused: back on the form (docs/web.md)
    assert sign_in(ADMIN_PASSWORD) == (200, "/conferences")  # redirected, signed in
    assert any(cookie.name == "mrf_session" for cookie in jar)
    request = urllib.request.Request(
        f"{base}/api/conferences", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert b'"retro"' in reply.read()


def _refused_offer(server: MrfServer) -> str:
    """An INVITE whose only a=crypto is malformed (17 session parameters): 488, logged.

    The key in it is returned: the refusal's log line must not quote it.
    """
    key = base64.b64encode(secrets.token_bytes(30)).decode()
    crypto = f"1 AES_CM_128_HMAC_SHA1_80 inline:{key} " + " ".join(["WSH=64"] * 17)
    body = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 9 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:{crypto}\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port, uri = sock.getsockname()[1], server.request_uri("retro")
        branch, tag = f"z9hG4bK{secrets.token_hex(8)}", secrets.token_hex(4)
        head = (
            f"SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: <{ALICE}>;tag={tag}\r\nCall-ID: {secrets.token_hex(8)}@refused\r\n"
        )
        invite = (
            f"INVITE {uri} SIP/2.0\r\nVia: {head}To: <{uri}>\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:alice@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendto(invite.encode() + body, (server.host, server.port))
        while not (reply := sock.recv(65535)).startswith(b"SIP/2.0 4"):
            assert reply.startswith(b"SIP/2.0 1"), reply[:80]
        assert reply.startswith(b"SIP/2.0 488 "), reply[:80]
        to = re.search(rb"^To: (.*?)\r$", reply, re.M)[1].decode()  # type: ignore[index]
        ack = (
            f"ACK {uri} SIP/2.0\r\nVia: {head}To: {to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(ack.encode(), (server.host, server.port))
    return key


def _forms(secret: bytes) -> set[str]:
    """How a secret could show in a log line."""
    forms: set[str] = set()
    for part in {secret, secret[:16], secret[-16:]}:
        forms |= {part.hex(), part.hex().upper(), repr(part)[2:-1]}
        for encoded in (base64.b64encode(part), base64.urlsafe_b64encode(part)):
            text = encoded.decode()
            forms |= {text, text.rstrip("=")}
    return {form for form in forms if len(form) >= 16}


def _tls_secrets(keylog: Path) -> set[bytes]:
    """The secrets of NSS key-log lines (``LABEL <client random> <secret>``)."""
    found = set()
    for line in keylog.read_text().splitlines() if keylog.exists() else []:
        fields = line.split()
        if len(fields) == 3 and not line.startswith("#"):
            found.add(bytes.fromhex(fields[2]))
    return found


def _private_key_parts(key_pem: Path) -> set[str]:
    """The base64 lines of the PEM and the private scalar in hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = key_pem.read_text()
    lines = {line for line in text.splitlines() if line and not line.startswith("-----")}
    key = serialization.load_pem_private_key(text.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return lines | _forms(scalar)


def test_debug_log_of_a_real_session_holds_no_secret(tmp_path: Path) -> None:
    server, kms_url, web_port = _server(tmp_path / "server")
    with ConferenceStore(f"sqlite:///{server.data_dir}/mrf.db") as store:
        store.create_all()
        store.create_conference("retro", [ALICE, BOB], policy=ConferencePolicy(
            key_modes=("sdes", "fingerprint", "mikey-ticket")))  # fmt: skip
    bob_key = KmsKeys.in_data_dir(server.data_dir).enroll(BOB).hex()
    records = tmp_path / "secrets.txt"
    _start(server, records)
    conference = server.request_uri("retro")
    bob = alice = None
    try:
        bob = Ue(tmp_path, "bob", conference, "--as", BOB, "--mikey", "--kms", kms_url,
                 "--kms-key", bob_key, "--audio", "--msrp", "--bfcp", "--subscribe",
                 "--key-dump", str(tmp_path / "bob.kek"), "--keylog-file",
                 str(tmp_path / "bob.keys"), "--duration", "120")  # fmt: skip
        assert wait_for(lambda: bob.events("joined"), 30), bob.explain()
        alice = Ue(tmp_path, "alice", conference, "--as", ALICE, "--transport", "tls",
                   "--proxy", f"127.0.0.1:{server.tls_port}", "--audio", "--msrp", "--bfcp",
                   "--request-floor", "--subscribe", "--keylog-file", str(tmp_path / "alice.keys"),
                   "--duration", "120")  # fmt: skip
        assert wait_for(lambda: alice.events("joined"), 30), alice.explain()
        deadline = time.monotonic() + 30
        while not any(e.get("text") == SENTENCE for e in bob.events("chat")):
            assert time.monotonic() < deadline, f"bob got no chat:\n{bob.explain()}"
            alice.command(f"say {SENTENCE}")  # again until bob's MSRP session is bound
            wait_for(lambda: bob.events("chat"), 3)
        assert wait_for(lambda: any(e.get("protected") for e in bob.events("notify")), 20), (
            bob.explain()
        )
        refused_key = _refused_offer(server)
        with ConferenceStore(f"sqlite:///{server.data_dir}/mrf.db") as store:
            token = store.create_token("admin")
        _web_session(web_port, token)
        assert alice.finish() == 0, alice.explain()
        assert bob.finish() == 0, bob.explain()
        assert wait_for(lambda: len(server.media_summaries()) >= 2, 20), tail(server.log)
    finally:
        for ue in (alice, bob):
            if ue is not None:
                ue.finish()
        server.stop()
    assert server.returncode == 0, tail(server.log)
    log = server.log_text()

    # the run was real, and logged at DEBUG
    assert " DEBUG " in log and "SRTP keyed suite=" in log, tail(server.log)
    for expected in (f"{ALICE} joined sip:retro@", f"{BOB} joined sip:retro@",
                     "crypto session(s) keyed for", "SDP refused: 488 ", "mrf ready",
                     "stopped"):  # fmt: skip
        assert expected in log, f"{expected!r} not logged:\n{tail(server.log)}"
    recorded = read_records(records)
    kek_lines = (tmp_path / "bob.kek").read_text().split()
    kek = bytes.fromhex(kek_lines[3])
    assert kek in recorded["mikey-kdf"], "the recorder did not see the server derive bob's KEK"
    for kind in ("random", "mikey-kdf", "sdes-offered", "sdes-answered"):
        assert recorded.get(kind), f"no {kind} secret recorded: the recorder is not hooked"

    # what must not be there
    keys_file = KmsKeys.in_data_dir(server.data_dir)
    # MSRP session ids (random too) are identifiers sent in clear in a=path, not secrets:
    # a failed delivery's log line may name its session (msrps://host:port/<id>;tcp)
    session_ids = set(re.findall(r"msrps?://[^/\s]+/([A-Za-z0-9_-]+);tcp", log))
    recorded["random"] = {
        value
        for value in recorded["random"]
        if base64.urlsafe_b64encode(value).decode().rstrip("=") not in session_ids
    }
    wanted: dict[str, set[bytes]] = {
        **recorded,
        "kms-user-keys": set(keys_file.users.values()),
        "kms-ticket-secrets": set(keys_file.ticket_secrets.values()),
        "tls-secrets": _tls_secrets(tmp_path / "alice.keys") | _tls_secrets(tmp_path / "bob.keys"),
        "psk-smime-kek": {kek},
    }
    assert wanted["tls-secrets"], "the UEs wrote no TLS key log"
    texts = {
        "server private key": _private_key_parts(server.data_dir / "tls" / "key.pem"),
        "passwords": {ADMIN_PASSWORD, WRONG_PASSWORD},
        "API token": {token},
        "key of a refused offer": {refused_key, refused_key[:16]},
        "chat text": {SENTENCE},
        "conference-info": {"<conference-info", "urn:ietf:params:xml:ns:conference-info"},
    }
    for kind, values in wanted.items():
        texts[kind] = {form for value in values for form in _forms(value)}
    leaks = sorted(
        f"{kind}: {form}" for kind, forms in texts.items() for form in forms if form in log
    )
    assert not leaks, f"secrets in the log ({len(leaks)}): {leaks[:10]}"
