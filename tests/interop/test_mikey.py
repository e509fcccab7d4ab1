"""MIKEY-TICKET dial-in: ``mrf ue --mikey`` against ``mrf serve`` with its embedded KMS.

Judged by what the participants print (SRTP packets both ways, chat over
TLS-PSK), by the server's ``media-summary`` lines (key_mode=mikey-ticket, no
authentication failures), by ``openssl s_client -psk`` with the TEK the test
derives from its own exchange, and by tshark decoding the MIKEY message inside
the captured INVITE's ``a=key-mgmt``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from focus.kms.core import KmsConfig, KmsCore
from focus.kms.http import KmsHttpServer
from focus.kms.keys import KmsKeys
from focus.mikey.message import MikeyMessage
from focus.sdp.attributes import SdpKeyMgmt
from focus.sdp.session import SdpSession
from mrf.ue.client import UeClient, UeOptions
from tests.notify.rig import openssl_decrypt
from tests.peers.pcap import tshark_fields

from .harness import (
    REPO,
    Artifacts,
    MrfServer,
    UeJoin,
    clean_env,
    free_port,
    reap,
    require_peer,
    wait_for,
)
from .peers import Baresip

pytestmark = pytest.mark.interop

ALICE, BOB, MALLORY = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1", "sip:mallory@127.0.0.1"


def _server(artifacts: Artifacts, *, kms_url: str | None = None) -> tuple[MrfServer, str]:
    """A server with the embedded KMS on a free port (or ``kms_url``, external)."""
    server = MrfServer(artifacts.directory / "server")
    artifacts.logs["server stderr"] = server.log
    url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    text = server.config.read_text()
    start = text.index("[kms]")
    kms = f'[kms]\nurl = "{kms_url or url}"\nembedded = {"false" if kms_url else "true"}\n'
    server.config.write_text(text[:start] + kms)
    modes = ("--key-mode", "mikey-ticket", "--key-mode", "sdes", "--key-mode", "fingerprint")
    server.cli("conference", "create", "secure", "--participant", ALICE, "--participant", BOB,
               *modes)  # fmt: skip
    return server, kms_url or url


def _enroll(server: MrfServer, who: str) -> str:
    key = server.cli("kms", "enroll", who).stdout.strip()
    assert len(bytes.fromhex(key)) == 32
    return key


class Ue(UeJoin):
    """``mrf ue join`` to the secure room (with ``--mikey`` when asked)."""

    def __init__(self, artifacts: Artifacts, server: MrfServer, who: str, *extra: str) -> None:
        super().__init__(artifacts, server, "secure", who, "--duration", "30", *extra)

    def wait_event(self, kind: str, timeout: float = 20) -> dict[str, Any]:
        found = wait_for(lambda: self.events(kind) or self.proc.poll() is not None, timeout)
        assert found and self.events(kind), f"no {kind}: {self.events()}\n{self.err.read_text()}"
        return self.events(kind)[0]


def _mikey_args(url: str, key: str, *extra: str) -> tuple[str, ...]:
    return ("--mikey", "--kms", url, "--kms-key", key, *extra)


def test_mikey_dial_in_keys_srtp_and_tls_psk_chat(artifacts: Artifacts) -> None:
    server, url = _server(artifacts)
    alice_key, bob_key = _enroll(server, ALICE), _enroll(server, BOB)
    server.start()
    ues: list[Ue] = []
    try:
        alice = Ue(artifacts, server, ALICE, "--audio", "--msrp", *_mikey_args(url, alice_key))
        ues.append(alice)
        alice.wait_event("joined")
        bob = Ue(artifacts, server, BOB, "--audio", "--msrp", *_mikey_args(url, bob_key))
        ues.append(bob)
        bob.wait_event("joined")
        for ue in ues:
            media = ue.wait_event("media")
            assert media["key_mode"] == "mikey-ticket"
            assert media["sent"] == 25 and media["auth_failures"] == 0
            assert media["received"] > 0, media  # the focus's SRTP (silence/mix) decrypts
        alice.command("say over TLS-PSK ☃")
        wait_for(lambda: bob.events("chat"), 10)
        assert [e["text"] for e in bob.events("chat")] == ["over TLS-PSK ☃"]
        assert [u.finish() for u in ues] == [0, 0]
        for who in (ALICE, BOB):
            (row,) = server.wait_media_summary(who)
            assert row["key_mode"] == "mikey-ticket", row
            assert row["suite"] == "AES_CM_128_HMAC_SHA1_80"
            assert int(row["packets_in"]) >= 25 and row["auth_failures"] == "0", row
        log = server.log_text()
        assert "MSRP TLS from" in log and "PSK-AES" in log
        assert alice_key not in log and bob_key not in log
    finally:
        for ue in ues:
            ue.finish()
        server.stop()


def test_unauthorized_kms_identity_is_refused_before_any_resolve(artifacts: Artifacts) -> None:
    server, url = _server(artifacts)
    mallory_key = _enroll(server, MALLORY)
    server.start()
    try:  # SIP identity alice (authorized), KMS identity mallory (not authorized)
        ue = Ue(artifacts, server, ALICE, "--audio",
                *_mikey_args(url, mallory_key, "--kms-identity", MALLORY))  # fmt: skip
        refused = ue.wait_event("refused")
        assert refused["status"] == 403
        assert ue.finish() == 1
        log = server.log_text()
        assert "KMS: ticket for b'sip:mallory@127.0.0.1'" in log  # the ticket was issued
        assert "KMS: resolved a ticket" not in log  # but never resolved
        assert "keyed for" not in log and "media-summary" not in log
    finally:
        server.stop()


class _ThreadKms:
    """A KMS on its own event loop thread, sharing the server's keys file."""

    def __init__(self, data_dir: Path) -> None:
        keys = KmsKeys.in_data_dir(data_dir)
        core = KmsCore(keys.user_key, keys.ticket_secrets, keys.current_secret, KmsConfig())
        self.server = KmsHttpServer(core, "/kms")
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(self.server.start("127.0.0.1", 0))[1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_kms_down_is_503_while_sdes_baresip_still_joins(artifacts: Artifacts) -> None:
    dead = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    server, _ = _server(artifacts, kms_url=dead)
    bob_key = _enroll(server, BOB)
    _enroll(server, "sip:secure@127.0.0.1")  # the focus's identity at the (external) KMS
    server.start()
    kms = _ThreadKms(server.data_dir)  # the UE gets its ticket here; the focus cannot resolve
    try:
        ue = Ue(artifacts, server, BOB, "--audio",
                *_mikey_args(f"http://127.0.0.1:{kms.port}/kms", bob_key))  # fmt: skip
        refused = ue.wait_event("refused")
        assert refused["status"] == 503
        assert ue.finish() == 1
        log = server.log_text()
        assert "KMS unreachable" in log and "Retry-After" not in log  # header, not logged
        ua = Baresip(artifacts)  # alice, SDES-SRTP
        try:
            assert ua.command("dial", f"sip:secure@127.0.0.1:{server.port}").get("ok")
            event = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
            assert event is not None and event["type"] == "CALL_ESTABLISHED", ua.events
            time.sleep(1.0)
            ua.command("hangup")
            assert ua.wait_event({"CALL_CLOSED"}, 5) is not None
        finally:
            ua.close()
        (row,) = server.wait_media_summary(ALICE)
        assert row["key_mode"] == "sdes" and int(row["packets_in"]) > 0, row
    finally:
        kms.close()
        server.stop()


async def _join_and_probe(
    server: MrfServer, url: str, key: str, openssl: str
) -> tuple[bytes, str, str, bytes]:
    """Join (MSRP only) in this process; while joined, probe the session's PSK listener."""
    options = UeOptions(server.request_uri("secure"), BOB, msrp=True, mikey=True,
                        kms_url=url, kms_key=key)  # fmt: skip
    client = UeClient(options, lambda event: None)
    invites: list[bytes] = []
    build = client._invite

    def capture(offer: SdpSession) -> Any:
        request = build(offer)
        invites.append(bytes(request))
        return request

    client._invite = capture  # type: ignore[method-assign]
    try:
        assert await client.join()
        chat = client.chat
        assert chat is not None and chat.psk is not None and chat.channel is not None
        assert chat.channel.transport is not None
        port = chat.channel.transport.get_extra_info("peername")[1]
        good = await asyncio.to_thread(_s_client, openssl, port, chat.psk.hex())
        wrong = await asyncio.to_thread(_s_client, openssl, port, "00" * 16)
        return chat.psk, good, wrong, invites[0]
    finally:
        await client.leave()
        await client.close()


def test_openssl_psk_handshake_and_tshark_decodes_key_mgmt(artifacts: Artifacts) -> None:
    openssl = require_peer("openssl")
    server, url = _server(artifacts)
    key = _enroll(server, BOB)
    server.start()
    try:
        tek, good, wrong, invite = asyncio.run(_join_and_probe(server, url, key, openssl))
    finally:
        server.stop()
    artifacts.path("s_client.txt").write_text(good + "\n----\n" + wrong)
    assert len(tek) == 16
    assert "PSK-AES128-GCM-SHA256" in good and "TLSv1.2" in good, good
    assert "DHE" not in good and "NULL" not in good, good
    assert "PSK-AES128-GCM-SHA256" not in wrong, wrong  # another key: no handshake
    sdp = SdpSession.parse(invite.split(b"\r\n\r\n", 1)[1])
    (attribute,) = [a for a in sdp.attributes if a.name == "key-mgmt"]
    message = MikeyMessage.parse(SdpKeyMgmt.parse(attribute.value or "").data)
    artifacts.path("invite.txt").write_bytes(invite)
    names = ("_ws.malformed", "mikey.version", "mikey.type", "mikey.csb_id")
    fields = tshark_fields(invite, "sip", names, port=5060, options=("-E", "occurrence=f"))
    assert fields[0] == "", f"tshark flags the INVITE as malformed: {fields}"
    assert fields[1:3] == ["1", "14"], fields  # version 1, TRANSFER_INIT (RFC 6043 §6.1)
    assert int(fields[3], 0) == message.header.csb_id


def _s_client(openssl: str, port: int, psk_hex: str) -> str:
    argv = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-psk", psk_hex,
            "-psk_identity", "", "-cipher", "PSK", "-brief"]  # fmt: skip
    try:
        result = subprocess.run(argv, input="", capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired as exc:
        return f"TIMEOUT {exc}"
    return result.stdout + result.stderr


def test_bfcp_over_tls_psk_and_notify_kek_from_the_invite(artifacts: Artifacts) -> None:
    """BFCP keyed by the INVITE's TLS crypto session; NOTIFYs by its PSK S/MIME session."""
    server, url = _server(artifacts)
    text = server.config.read_text()
    server.config.write_text(text + "[notify]\nmin_interval = 0\n")
    key = _enroll(server, ALICE)
    server.start()
    keys, bodies = artifacts.path("keys.txt"), artifacts.path("bodies")
    try:
        alice = Ue(artifacts, server, ALICE, "--audio", "--bfcp", "--request-floor",
                   "--subscribe", "--key-dump", str(keys), "--save-notify", str(bodies),
                   *_mikey_args(url, key))  # fmt: skip
        alice.wait_event("joined")
        connected = [e for e in alice.events("floor") if e["status"] == "connected"]
        assert connected and connected[0]["psk"] is True, alice.events()
        assert connected[0]["cipher"].startswith("PSK-AES"), connected
        wait_for(lambda: any(e["status"] == "granted" for e in alice.events("floor")), 10)
        assert any(e["status"] == "granted" for e in alice.events("floor")), alice.events()
        subscribed = alice.wait_event("subscribed")
        assert subscribed["protected"] is True and subscribed["key_id"], subscribed
        wait_for(lambda: any(e.get("protected") for e in alice.events("notify")), 10)
        assert any(e.get("protected") for e in alice.events("notify")), alice.events()
        assert alice.finish() == 0
    finally:
        server.stop()
    log = server.log_text()
    assert "BFCP TLS from" in log and "PSK-AES" in log, log[-3000:]
    assert key not in log
    (line,) = keys.read_text().splitlines()
    _, _, key_id, kek = line.split()
    assert key_id == subscribed["key_id"]
    ders = sorted(bodies.glob("*.der"))
    assert ders, "no protected NOTIFY body saved"
    plain = openssl_decrypt(ders[0].read_bytes(), bytes.fromhex(kek), bytes.fromhex(key_id),
                            artifacts.directory)  # fmt: skip
    assert b"conference-info" in plain


async def _join_bfcp_and_probe(
    server: MrfServer, url: str, key: str, openssl: str
) -> tuple[bytes, str, str]:
    """Join with audio + BFCP over TLS-PSK in this process; probe the BFCP port with s_client."""
    options = UeOptions(server.request_uri("secure"), BOB, audio=True, bfcp=True, mikey=True,
                        kms_url=url, kms_key=key, audio_packets=1)  # fmt: skip
    client = UeClient(options, lambda event: None)
    try:
        assert await client.join()
        floor = client.floor
        assert floor is not None and floor.psk is not None and floor.answer is not None
        port = floor.answer.port
        good = await asyncio.to_thread(_s_client, openssl, port, floor.psk.hex())
        wrong = await asyncio.to_thread(_s_client, openssl, port, "00" * 16)
        return floor.psk, good, wrong
    finally:
        await client.leave()
        await client.close()


def test_openssl_psk_handshake_on_the_bfcp_port(artifacts: Artifacts) -> None:
    openssl = require_peer("openssl")
    server, url = _server(artifacts)
    key = _enroll(server, BOB)
    server.start()
    try:
        psk, good, wrong = asyncio.run(_join_bfcp_and_probe(server, url, key, openssl))
    finally:
        server.stop()
    artifacts.path("s_client-bfcp.txt").write_text(good + "\n----\n" + wrong)
    assert len(psk) == 16
    assert "PSK-AES128-GCM-SHA256" in good and "TLSv1.2" in good, good
    assert "PSK-AES128-GCM-SHA256" not in wrong, wrong


class Answerer:
    """``python -m mrf ue answer`` with JSON events in a file."""

    def __init__(self, artifacts: Artifacts, port: int, *extra: str) -> None:
        argv = [sys.executable, "-m", "mrf", "ue", "answer", "--as", BOB,
                "--listen", f"127.0.0.1:{port}", "--duration", "30", *extra]  # fmt: skip
        self.out = artifacts.path(f"answer-{port}.jsonl")
        self.err = artifacts.path(f"answer-{port}.log")
        self._files = (self.out.open("wb"), self.err.open("wb"))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._files[0], stderr=self._files[1],
            env=clean_env(PYTHONPATH=str(REPO)), cwd=REPO,
        )  # fmt: skip

    def events(self, kind: str) -> list[dict[str, Any]]:
        lines = self.out.read_bytes().split(b"\n")[:-1]
        return [e for e in map(json.loads, lines) if e["event"] == kind]

    async def wait(self, timeout: float = 20) -> int:
        return await asyncio.to_thread(reap, self.proc, timeout, self._files)


async def _dial_out(tmp: Path, artifacts: Artifacts, mikey: bool) -> None:
    from focus.call import CallState
    from mrf.server import start
    from mrf.settings import load_settings

    low = 27000 + (free_port() % 40) * 20
    url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    config = tmp / "mrf.toml"
    config.write_text(
        f'data_dir = "{tmp / "var"}"\n[sip]\nport = 0\ntls_port = 0\n'
        f"[media]\nrtp_ports = [{low}, {low + 19}]\n[msrp]\nport = 0\n[bfcp]\nport = 0\n"
        f'[kms]\nurl = "{url}"\nembedded = true\n'
    )
    key = KmsKeys.in_data_dir(tmp / "var").enroll(BOB).hex()
    server = await start(load_settings(config, environ={}))
    server.store.create_conference("conf1", [(ALICE, "participant"), (BOB, "participant", mikey)])
    port = free_port()
    extra = ("--mikey", "--kms", url, "--kms-key", key) if mikey else ()
    ue = Answerer(artifacts, port, *extra)
    try:
        async with asyncio.timeout(20):  # the answerer's listener
            while not ue.events("listening") and ue.proc.poll() is None:
                await asyncio.sleep(0.05)
        call = await server.focus.dialout.dial("conf1", f"{BOB}:{port}")
        assert call.state is CallState.CONNECTED, call.reason
        (entry,) = [e for e in server.focus.roster("conf1") if e["uri"] == BOB]
        mode = "mikey-ticket" if mikey else "sdes"
        assert entry["media"][0]["key_mode"] == mode, entry
        await asyncio.to_thread(wait_for, lambda: ue.events("media"), 10)
        stream = call.streams[0]
        assert stream.packets_in >= 20 and stream.auth_failures == 0, vars(stream)
        assert await server.focus.hang_up(call.call_id, "test")
        assert await ue.wait() == 0, ue.err.read_text()
    finally:
        if ue.proc.poll() is None:
            ue.proc.kill()
        await server.close()
    (incoming,) = ue.events("incoming")
    assert incoming["key_mode"] == mode
    if mikey:
        assert incoming["initiator"] == "sip:conf1@" + server.settings.sip.domain, incoming
    (media,) = ue.events("media")
    assert media["key_mode"] == mode and media["auth_failures"] == 0, media
    assert media["received"] > 0, media
    assert ue.events("left")


@pytest.mark.parametrize("mikey", [True, False], ids=["mikey", "sdes"])
def test_dial_out_to_ue_answer(artifacts: Artifacts, tmp_path: Path, mikey: bool) -> None:
    asyncio.run(asyncio.wait_for(_dial_out(tmp_path, artifacts, mikey), 60))
