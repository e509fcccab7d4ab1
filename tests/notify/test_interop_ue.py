"""Protected ``mrf ue`` subscribers and a sipp subscriber see the same roster changes.

1. ``python -m mrf serve`` (tests.interop.harness.MrfServer) with its embedded
   KMS and ``notify.min_interval = 0``; users enrolled with ``mrf kms enroll``.
   ``mrf ue subscribe --mikey`` (alice; the KEK from the MIKEY-TICKET exchange in
   its SUBSCRIBE) and sipp (the watcher, unprotected, ``optional`` policy) watch
   bob join with ``mrf ue join --audio --bfcp --request-floor`` (floor granted),
   then leave.  Mallory (not on the list) and alice presenting bob's KMS
   identity get 403.
2. Mute: there is no REST call for it, so the composition root runs in this
   process (``mrf.server.start``, what ``mrf serve`` runs) and the test calls
   ``FocusService.set_muted``; the subscribers are the same external processes,
   plus bob himself (``mrf ue join --subscribe``, unprotected).

Every protected body is opened by ``openssl cms -decrypt`` with the KEK the
subscriber dumped (opt-in ``--key-dump``) and validated by ``xmllint --schema``;
every sipp body is validated against the same schema.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from focus.store import ConferenceStore
from mrf.server import start
from mrf.settings import (
    BfcpSettings,
    KmsSettings,
    MediaSettings,
    MsrpSettings,
    NotifySettings,
    Settings,
    SipSettings,
    WebSettings,
)
from tests.interop.harness import (
    REPO,
    BackgroundProcess,
    MrfServer,
    clean_env,
    free_port,
    reap,
    tail,
)
from tests.interop.harness import wait_for as poll
from tests.notify.watchers import (
    check_protected_bodies,
    floor_is,
    reached,
    sipp_summaries,
    sipp_watch_argv,
    ue_events,
    ue_summaries,
    user_is,
)

pytestmark = pytest.mark.interop

NAMES = ("alice", "bob", "watcher", "mallory")
ALICE, BOB, WATCHER, MALLORY = (f"sip:{name}@127.0.0.1" for name in NAMES)
MRF = [sys.executable, "-m", "mrf"]


class UeProcess:
    """``python -m mrf ue ...`` with stdin commands; JSON events in ``<name>.jsonl``."""

    def __init__(self, workdir: Path, name: str, *args: str) -> None:
        self.out, self.err = workdir / f"{name}.jsonl", workdir / f"{name}.log"
        self._files = (self.out.open("wb"), self.err.open("wb"))
        self.proc = subprocess.Popen(
            [*MRF, "ue", *args], stdin=subprocess.PIPE, stdout=self._files[0],
            stderr=self._files[1], env=clean_env(PYTHONPATH=str(REPO)), cwd=workdir,
        )  # fmt: skip

    def explain(self) -> str:
        return f"{ue_events(self.out)}\n{tail(self.err, 30)}"

    def finish(self, timeout: float = 20) -> int:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(b"leave\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        return reap(self.proc, timeout, self._files)


def protected_subscriber(workdir: Path, conference: str, url: str, key: str) -> UeProcess:
    return UeProcess(workdir, "alice", "subscribe", conference, "--as", ALICE, "--mikey",
                     "--kms", url, "--kms-key", key, "--duration", "90",
                     "--key-dump", str(workdir / "keys.txt"),
                     "--save-notify", str(workdir / "bodies"))  # fmt: skip


def refused(workdir: Path, name: str, *args: str) -> dict[str, object]:
    ue = UeProcess(workdir, name, "subscribe", *args, "--duration", "5")
    status = ue.finish()
    events = ue_events(ue.out, "refused")
    assert status == 1 and events, ue.explain()
    return events[0]


@pytest.fixture
def server(tmp_path: Path) -> MrfServer:
    started = MrfServer(tmp_path / "server")
    text = started.config.read_text()
    started.kms_url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"  # type: ignore[attr-defined]
    started.config.write_text(
        text[: text.index("[kms]")] + f'[kms]\nurl = "{started.kms_url}"\nembedded = true\n'  # type: ignore[attr-defined]
        "[notify]\nmin_interval = 0\n"
    )
    started.cli("conference", "create", "retro", "--participant", ALICE, "--participant", BOB,
                "--participant", WATCHER)  # fmt: skip
    return started


def test_protected_ue_and_sipp_see_join_floor_and_leave(server: MrfServer, tmp_path: Path) -> None:
    keys = {who: server.cli("kms", "enroll", who).stdout.strip() for who in (ALICE, BOB)}
    server.start()
    conference, url = server.request_uri("retro"), server.kms_url  # type: ignore[attr-defined]
    sipp = BackgroundProcess(sipp_watch_argv(server.host, server.port, "retro", WATCHER, tmp_path),
                             tmp_path / "watch.out.log", env=clean_env())  # fmt: skip
    alice = protected_subscriber(tmp_path, conference, url, keys[ALICE])
    bob: UeProcess | None = None
    try:
        assert poll(lambda: ue_events(alice.out, "notify"), 20), alice.explain()
        assert ue_events(alice.out, "subscribed")[0]["protected"] is True
        assert poll(lambda: f"{WATCHER} subscribed to retro" in server.log_text(), 10)

        bob = UeProcess(tmp_path, "bob", "join", conference, "--as", BOB, "--audio", "--bfcp",
                        "--request-floor", "--duration", "60")  # fmt: skip
        granted = [user_is(BOB, "connected"), floor_is(BOB, "granted")]
        assert poll(lambda: reached(ue_summaries(alice.out), granted), 30), alice.explain()
        assert bob.finish() == 0, bob.explain()
        left = [*granted, user_is(BOB, "disconnected"), floor_is(BOB, None)]
        assert poll(lambda: reached(ue_summaries(alice.out), left), 20), alice.explain()

        assert refused(tmp_path, "mallory", conference, "--as", MALLORY)["status"] == 403
        posing = refused(tmp_path, "posing", conference, "--as", ALICE, "--mikey", "--kms", url,
                         "--kms-key", keys[BOB], "--kms-identity", BOB)  # fmt: skip
        assert posing["status"] == 403
        assert alice.finish() == 0, alice.explain()
        assert ue_events(alice.out)[-1]["event"] == "unsubscribed"
    finally:
        for process in (bob, alice):
            if process is not None:
                process.finish()
        server.stop()  # the watcher's subscription ends "deactivated"
        watched = sipp.wait(20)
        sipp.stop()
    messages = tmp_path / "watch.messages.log"
    assert watched == 0, f"{tail(tmp_path / 'watch.logs.log')}\n{tail(messages, 80)}"
    assert reached(sipp_summaries(messages), left), sipp_summaries(messages)
    assert check_protected_bodies(tmp_path / "bodies", tmp_path / "keys.txt", tmp_path) >= 4
    assert "Traceback (most recent call last)" not in server.log_text(), tail(server.log, 80)


def _settings(workdir: Path, kms_url: str) -> Settings:
    return Settings(
        data_dir=workdir / "var", database_url=f"sqlite:///{workdir}/mrf.db",
        sip=SipSettings(port=free_port(), tls_port=free_port(tcp_and_udp=False)),
        web=WebSettings(port=0), media=MediaSettings(rtp_ports=(31400, 31499)),
        msrp=MsrpSettings(port=0), bfcp=BfcpSettings(port=0),
        kms=KmsSettings(url=kms_url, embedded=True), notify=NotifySettings(min_interval=0),
    )  # fmt: skip


async def _run(command: list[str], env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    return out.decode().strip()


async def _until(predicate: object, timeout: float) -> bool:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.1)
    return True


def test_mute_reaches_the_protected_ue_and_sipp(tmp_path: Path) -> None:
    async def main() -> None:
        url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
        settings = _settings(tmp_path, url)
        store = ConferenceStore(settings.database_url)
        store.create_all()
        store.create_conference("retro", [(ALICE, "participant"), (BOB, "participant"),
                                          (WATCHER, "participant")])  # fmt: skip
        store.close()
        env = clean_env(PYTHONPATH=str(REPO), MRF_DATA_DIR=str(settings.data_dir))
        key = await _run([*MRF, "kms", "enroll", ALICE], env)
        server = await start(settings)
        conference = f"sip:retro@127.0.0.1:{settings.sip.port}"
        argv = sipp_watch_argv("127.0.0.1", settings.sip.port, "retro", WATCHER, tmp_path)
        sipp = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)  # fmt: skip
        alice = await asyncio.to_thread(protected_subscriber, tmp_path, conference, url, key)
        join = ("join", conference, "--as", BOB, "--audio", "--subscribe", "--duration", "60")
        bob = await asyncio.to_thread(UeProcess, tmp_path, "bob", *join)
        try:
            await _until(lambda: any(c.participant == BOB for c in server.focus.calls), 30)
            call = next(c for c in server.focus.calls if c.participant == BOB)
            connected = [user_is(BOB, "connected")]
            await _until(lambda: reached(ue_summaries(alice.out), connected), 20)
            assert server.focus.set_muted(call.call_id, True)
            muted = [*connected, user_is(BOB, "muted-via-focus")]
            await _until(lambda: reached(ue_summaries(alice.out), muted), 20)
            assert server.focus.set_muted(call.call_id, False)
            unmuted = [*muted, user_is(BOB, "connected")]
            await _until(lambda: reached(ue_summaries(alice.out), unmuted), 20)
            await _until(lambda: reached(ue_summaries(bob.out), unmuted), 20)  # join --subscribe
        finally:
            assert await asyncio.to_thread(bob.finish) == 0, bob.explain()
            assert await asyncio.to_thread(alice.finish) == 0, alice.explain()
            await server.close()  # the watcher's subscription ends "deactivated"
            watched = await asyncio.wait_for(sipp.wait(), 20)
        assert watched == 0, tail(tmp_path / "watch.messages.log", 80)
        assert reached(sipp_summaries(tmp_path / "watch.messages.log"), unmuted)
        assert check_protected_bodies(tmp_path / "bodies", tmp_path / "keys.txt", tmp_path) >= 3

    asyncio.run(main())


def test_a_participant_over_sip_tls_gets_its_notifies_on_its_own_connection(
    server: MrfServer, tmp_path: Path
) -> None:
    """`mrf ue` dials in over TLS with a certificate no CA signed: the focus cannot open a
    verified connection back to its Contact, so NOTIFY and BYE ride the UE's own
    connection (its Via ``alias``, RFC 5923)."""
    server.start()
    conference = server.request_uri("retro")
    alice = UeProcess(tmp_path, "alice", "join", conference, "--as", ALICE, "--transport",
                      "tls", "--proxy", f"127.0.0.1:{server.tls_port}", "--subscribe",
                      "--duration", "30")  # fmt: skip
    try:
        assert poll(lambda: ue_events(alice.out, "notify"), 20), alice.explain()
        assert ue_events(alice.out, "notify")[0]["state"] == "full"
        server.stop()  # the focus hangs up on everyone: a BYE to alice
        assert poll(lambda: ue_events(alice.out, "left"), 20), alice.explain()
        assert ue_events(alice.out, "left")[0]["reason"] != "duration", alice.explain()
        assert "NOTIFY not answered" not in server.log_text()
        assert "BYE not answered" not in server.log_text()
    finally:
        alice.finish()
        server.stop()
