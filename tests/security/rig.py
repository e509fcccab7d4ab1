"""One ``mrf serve`` for the whole security suite, set up as an operator would.

The server runs as a subprocess (:class:`tests.interop.harness.MrfServer`,
``python -m mrf serve --config FILE``) with the embedded KMS, one trusted
proxy (``127.0.0.2``, the P-CSCF: its P-Asserted-Identity is believed, and the
dial-out answerer stands behind it) and one conference, ``room``, owned by the
web account ``ana``, where ``dora`` is the chair.  A second account, ``ben``,
owns nothing and has no SIP identity; the accounts ``alice`` and ``mallory``
carry the SIP identities ALICE (on the list) and MALLORY (on none) for the
browser (SIP over WebSocket); ``metrics_token`` is the scrape token of ``GET /metrics``.
Accounts, tokens, the conference and alice's KMS key are written to the data
directory before the server starts (the same store and key file the CLI
writes).
"""

from __future__ import annotations

import re
import secrets
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from focus.conference import ConferencePolicy
from focus.kms.keys import KmsKeys
from focus.store import ConferenceStore
from tests.interop.harness import MrfServer, free_port, sip_options, tail, wait_for

PROXY = "127.0.0.2"  # the only trusted proxy (sip.trusted_proxies)
ALICE = "sip:alice@127.0.0.1"
CAROL = "sip:carol@127.0.0.1"
DORA = "sip:dora@127.0.0.1"  # the room's chair (may REFER others in)
BOB = f"sip:bob@{PROXY}"  # reached through the trusted proxy (dial-out)
MALLORY = "sip:mallory@127.0.0.1"  # on no list
ANONYMOUS = "sip:anonymous@anonymous.invalid"  # RFC 3323 §4.1.1.3
PASSWORD = "correct horse battery staple"
ROOM = "room"
KEY_MODES = ("sdes", "mikey-ticket", "fingerprint")


@dataclass
class SecurityServer:
    """The running server and what the tests need to reach it."""

    server: MrfServer
    web: str  # http://127.0.0.1:PORT
    kms_url: str
    alice_kms_key: str  # hex, as `mrf kms enroll` prints it
    ana_token: str
    ben_token: str
    room_id: int
    metrics_token: str  # the scrape token (web.metrics_token_file)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def sip(self) -> tuple[str, int]:
        return self.server.host, self.server.port

    @property
    def room_uri(self) -> str:
        """The Request-URI a caller dials (the conference at this server's port)."""
        return self.server.request_uri(ROOM)

    def listener_port(self, kind: str) -> int:
        """The port of the ``MSRP`` or ``BFCP`` TLS listener, from the server's log."""
        found = re.findall(rf"{kind} over TLS listening on [0-9.]+:(\d+)", self.server.log_text())
        assert found, f"no {kind} listener in the log:\n{tail(self.server.log)}"
        return int(found[-1])

    def answers_options(self) -> bool:
        """The process runs and answers an OPTIONS over UDP (within 5 s)."""
        running = self.server.process is not None and self.server.process.running()
        return running and bool(wait_for(lambda: sip_options(*self.sip), 5.0, 0.1))

    def log_count(self, text: str) -> int:
        return self.server.log_text().count(text)


def start_security_server(workdir: Path) -> SecurityServer:
    """Config (trusted proxy, embedded KMS), accounts, tokens, ``room``; then serve."""
    server = MrfServer(workdir, trusted_proxies=(PROXY,))
    kms_url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    metrics_token = secrets.token_hex(32)
    token_file = workdir / "metrics.token"
    token_file.write_text(metrics_token + "\n")
    scrape = f'[web]\nmetrics_token_file = "{token_file}"\n'
    text = server.config.read_text().replace("[web]\n", scrape)
    server.config.write_text(
        text[: text.index("[kms]")] + f'[kms]\nurl = "{kms_url}"\nembedded = true\n'
    )
    web_port = int(tomllib.loads(server.config.read_text())["web"]["port"])
    server.data_dir.mkdir(parents=True, exist_ok=True)
    with ConferenceStore(f"sqlite:///{server.data_dir}/mrf.db") as store:
        store.create_all()
        ana = store.create_account("ana", PASSWORD)
        store.create_account("ben", PASSWORD)
        store.create_account("alice", PASSWORD, sip_uri=ALICE)  # joins from the browser
        store.create_account("mallory", PASSWORD, sip_uri=MALLORY)  # a SIP identity on no list
        tokens = store.create_token("ana"), store.create_token("ben")
        participants = [
            (ALICE, "participant"), (CAROL, "participant"), (BOB, "participant"), (DORA, "chair")
        ]  # fmt: skip
        room = store.create_conference(
            ROOM, participants, owner_id=ana.id, policy=ConferencePolicy(key_modes=KEY_MODES)
        )
    alice_key = KmsKeys.in_data_dir(server.data_dir).enroll(ALICE).hex()
    server.start()
    web = f"http://{server.host}:{web_port}"
    assert wait_for(lambda: _health(web), 20.0, 0.1), f"web not up:\n{tail(server.log)}"
    return SecurityServer(server, web, kms_url, alice_key, *tokens, room.id, metrics_token)


def _health(web: str) -> bool:
    try:
        with urllib.request.urlopen(f"{web}/api/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
