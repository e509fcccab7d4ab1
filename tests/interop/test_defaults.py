"""A conference made with defaults takes every secure key mode (issue 13, "Done when").

One ``mrf serve`` with the embedded KMS; the conference is made with ``mrf
conference create room --participant ...`` and no ``--key-mode``.  Against it:

* ``mrf kms enroll`` + ``mrf ue join --mikey --audio --msrp --bfcp`` joins:
  SRTP keyed by MIKEY-TICKET both ways, MSRP and BFCP over TLS-PSK;
* baresip with SDES (``mediaenc=srtp-mand``) and baresip with DTLS-SRTP
  (``dtls_srtp``) join, and the server's ``media-summary`` lines say
  ``key_mode=sdes`` / ``key_mode=dtls`` with packets in and no auth failures;
* a chair console offering only ``TCP/TLS/BFCP`` (``mrf ue join --bfcp``, no
  ``--audio``) gets a BFCP session: FloorStatus for the floors it queries,
  and it grants and denies a participant's floor requests;
* a refused join prints the Warning text in ``mrf ue``'s ``refused`` event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import finish_server
from .harness import Artifacts, MrfServer, UeJoin, free_port, tail, wait_for
from .peers import Baresip

pytestmark = pytest.mark.interop

ALICE, BOB, CHAIR = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1", "sip:chair@127.0.0.1"
EVERY_MODE = ["sdes", "mikey-ticket", "dtls", "fingerprint"]


@pytest.fixture
def server(artifacts: Artifacts) -> Iterator[tuple[MrfServer, str]]:
    """``room`` made with the CLI defaults; the embedded KMS on a free port."""
    server = MrfServer(artifacts.directory / "server")
    artifacts.logs["server stderr"] = server.log
    url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    text = server.config.read_text()
    kms = f'[kms]\nurl = "{url}"\nembedded = true\n'
    server.config.write_text(text[: text.index("[kms]")] + kms)
    server.cli("conference", "create", "room", "--participant", ALICE, "--participant", BOB,
               "--participant", f"{CHAIR},chair")  # fmt: skip
    (listed,) = [json.loads(line) for line in server.cli("conference", "list").stdout.split("\n")
                 if line.strip()]  # fmt: skip
    assert listed["policy"]["key_modes"] == EVERY_MODE, listed
    server.start()
    try:
        yield server, url
    finally:
        finish_server(server)


class Ue(UeJoin):
    def __init__(self, artifacts: Artifacts, server: MrfServer, who: str, *extra: str) -> None:
        super().__init__(artifacts, server, "room", who, "--duration", "60", *extra)

    def wait(self, kind: str, timeout: float = 20, **match: object) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            return [e for e in self.events(kind) if all(e.get(k) == v for k, v in match.items())]

        wait_for(lambda: found() or self.proc.poll() is not None, timeout)
        assert found(), f"no {kind} {match}: {self.events()}\n{self.err.read_text()[-2000:]}"
        return found()[-1]


def test_mikey_audio_msrp_and_bfcp_join_a_default_conference(
    artifacts: Artifacts, server: tuple[MrfServer, str]
) -> None:
    mrf, url = server
    key = mrf.cli("kms", "enroll", ALICE).stdout.strip()
    alice = Ue(artifacts, mrf, ALICE, "--mikey", "--kms", url, "--kms-key", key,
               "--audio", "--msrp", "--bfcp")  # fmt: skip
    try:
        joined = alice.wait("joined")
        assert joined["media"] == ["audio", "message", "application"], joined
        media = alice.wait("media")
        assert media["key_mode"] == "mikey-ticket" and media["auth_failures"] == 0, media
        assert media["received"] > 0, media
        alice.wait("floor", status="hello-ack")
        assert alice.finish() == 0, alice.err.read_text()[-2000:]
    finally:
        alice.finish()
    (row,) = mrf.wait_media_summary(ALICE)
    assert row["key_mode"] == "mikey-ticket" and row["auth_failures"] == "0", row
    log = mrf.log_text()
    assert "MSRP TLS from" in log and "PSK-AES" in log, tail(mrf.log)


def _baresip(artifacts: Artifacts, name: str, mediaenc: str) -> Baresip:
    config = {"module++": "dtls_srtp.so"} if mediaenc == "dtls_srtp" else {}
    return Baresip(
        artifacts, name=f"baresip-{name}", config=config,
        account=f"<sip:{name}@127.0.0.1>;regint=0;mediaenc={mediaenc};answermode=auto;"
                "audio_codecs=PCMU/8000/1",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("who", "mediaenc", "key_mode"),
    [("alice", "srtp-mand", "sdes"), ("bob", "dtls_srtp", "dtls")],
    ids=["sdes", "dtls-srtp"],
)
def test_baresip_joins_a_default_conference(
    artifacts: Artifacts, server: tuple[MrfServer, str], who: str, mediaenc: str, key_mode: str
) -> None:
    mrf, _ = server
    ua = _baresip(artifacts, who, mediaenc)
    try:
        assert ua.command("dial", f"sip:room@127.0.0.1:{mrf.port}").get("ok")
        event = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 15)
        assert event is not None and event["type"] == "CALL_ESTABLISHED", (
            f"{ua.events}\n{tail(ua.process.log)}\n{tail(mrf.log)}"
        )
        assert ua.wait_event({"CALL_MENC"}, 10) is not None, "call without SRTP"
        time.sleep(1.0)  # let media flow for the media-summary line to count it
        ua.command("hangup")
        assert ua.wait_event({"CALL_CLOSED"}, 5) is not None
    finally:
        ua.close()
    (row,) = mrf.wait_media_summary(f"sip:{who}@127.0.0.1")
    assert row["key_mode"] == key_mode and row["suite"] != "none", row
    assert int(row["packets_in"]) > 0 and row["auth_failures"] == "0", row


def test_a_bfcp_only_chair_grants_and_denies(
    artifacts: Artifacts, server: tuple[MrfServer, str]
) -> None:
    mrf, _ = server
    chair = Ue(artifacts, mrf, CHAIR, "--bfcp")  # a chair console: no audio
    ues = [chair]
    try:
        joined = chair.wait("joined")
        assert joined["media"] == ["application"], joined  # the TCP/TLS/BFCP line only
        connected = chair.wait("floor", status="connected")
        assert connected["floors"] == [1] and connected["psk"] is False, connected
        chair.wait("floor", status="hello-ack")
        chair.wait("floor", status="floor-status")  # FloorStatus for the floor it queried
        alice = Ue(artifacts, mrf, ALICE, "--audio", "--bfcp")
        ues.append(alice)
        alice.wait("floor", status="hello-ack")
        alice.command("floor request")
        pending = alice.wait("floor", status="pending", notification=False)
        chair.command(f"floor accept {pending['request_id']}")
        chair.wait("floor", status="chair-ack")
        alice.wait("floor", status="granted", notification=True)
        assert wait_for(lambda: (ALICE, "granted") in _statuses(chair), 15), chair.events()
        alice.command("floor release")
        alice.wait("floor", status="released")
        alice.command("floor request")
        again = alice.wait("floor", status="pending", notification=False, request_id=2)
        chair.command(f"floor deny {again['request_id']}")
        alice.wait("floor", status="denied")
        changes = {(ALICE, "released"), (ALICE, "denied")}
        assert wait_for(lambda: changes <= _statuses(chair), 15), chair.events()
        for ue in ues:
            assert ue.finish() == 0, ue.err.read_text()[-2000:]
            assert not [e for e in ue.events() if e["event"] == "error"], ue.events()
    finally:
        for ue in ues:
            ue.finish()


def _statuses(ue: Ue) -> set[tuple[str, str]]:
    """(user, request status) pairs in the FloorStatus messages ``ue`` received."""
    return {(str(r["user"]), str(r["status"])) for e in ue.events("floor")
            if e.get("status") == "floor-status" for r in e["requests"]}  # fmt: skip


def test_a_refused_join_prints_the_warning(
    artifacts: Artifacts, server: tuple[MrfServer, str]
) -> None:
    mrf, _ = server
    mallory = Ue(artifacts, mrf, "sip:mallory@127.0.0.1", "--audio")
    try:
        refused = mallory.wait("refused")
        assert refused["status"] == 403, refused
        assert refused["warning"] == "the identity in From is not on the authorized list"
    finally:
        assert mallory.finish() == 1
