"""Three mrf nodes behind Kamailio on one PostgreSQL (``mrf cluster``, docs/scaling.md).

The cluster is the product's own runner (:mod:`mrf.cluster.runner`):
PostgreSQL, Kamailio on 127.0.0.10 with the dispatcher config of the
repository, nodes mrf-1..3 on 127.0.0.11..13.  Kamailio's hash over the
Request-URI user is deterministic for one dispatcher list: ``room-a`` lands
on mrf-2, ``room-b`` on mrf-1, ``room-c`` on mrf-3 (the tests check that, as
well as what follows from it).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from focus.kms.client import kms_exchange
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyDataType
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.message import MikeyGenericIdEntry, MikeyMessage
from focus.mikey.responder import MikeyTransferResponder
from focus.mikey.timestamp import MikeyReplayCache
from mrf.cluster.runner import ClusterPlan, cluster

from .harness import (
    Artifacts,
    clean_env,
    free_port,
    network_isolated,
    require_peer,
    tail,
    wait_for,
)
from .test_mixing import ISOLATION_DB, _levels, _participant, _recording

pytestmark = pytest.mark.interop

ENTRY = "127.0.0.10:5060"
HASHED = {"room-a": "mrf-2", "room-b": "mrf-1", "room-c": "mrf-3"}
PEOPLE = ("sip:alice@127.0.0.1", "sip:bob@127.0.0.1", "sip:carol@127.0.0.1")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    run: Path
    database_url: str
    kms_url: str
    nodes: dict[str, dict[str, Any]]  # name -> its JSON line
    token: str
    conference_ids: dict[str, int]

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = clean_env(PYTHONPATH=str(REPO), MRF_DATABASE_URL=self.database_url,
                                MRF_DATA_DIR=str(self.run / "cli"), **env)  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "mrf", *args], capture_output=True, text=True, timeout=30,
            env=environment, check=True,
        )  # fmt: skip

    def api(self, node: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.nodes[node]['web']}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def home(self, conference: str, *, ask: str = "mrf-3") -> str | None:
        found = self.api(ask, f"/api/conferences/{self.conference_ids[conference]}")
        return found.get("home")

    def ue(self, artifacts: Artifacts, conference: str, who: str, *args: str) -> UeProcess:
        return UeProcess(artifacts, f"sip:{conference}@127.0.0.10", who, *args)


class UeProcess:
    """``mrf ue join`` with its JSON events in the test's directory."""

    def __init__(self, artifacts: Artifacts, uri: str, who: str, *args: str) -> None:
        name = who.split(":", 1)[1].split("@")[0]
        self.out = artifacts.path(f"ue-{name}-{time.monotonic_ns()}.jsonl")
        with self.out.open("wb") as out, artifacts.path(f"ue-{name}.log").open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mrf", "ue", "join", uri, "--as", who, *args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=clean_env(PYTHONPATH=str(REPO)),
            )  # fmt: skip

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        lines = self.out.read_bytes().split(b"\n")[:-1]
        found = [json.loads(line) for line in lines if line.startswith(b"{")]
        return [e for e in found if kind is None or e["event"] == kind]

    def wait(self, timeout: float = 30) -> list[dict[str, Any]]:
        self.proc.wait(timeout)
        return self.events()


def _live(roster: dict[str, Any]) -> list[dict[str, Any]]:
    """The roster's calls that are up: not the history of ended ones (state "left")."""
    return [p for p in roster["participants"] if p.get("state") != "left"]


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not network_isolated():
        pytest.fail(
            "the cluster test binds 127.0.0.10-13 with fixed ports: run it in a private "
            "network namespace as root (`make test` uses unshare -n)", pytrace=False,
        )  # fmt: skip
    require_peer("kamailio")
    run = tmp_path_factory.mktemp("cluster")
    out = io.StringIO()
    with cluster(ClusterPlan(nodes=3), run, out):
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        database = next(line for line in lines if line["event"] == "database")
        nodes = {line["name"]: line for line in lines if line["event"] == "node"}
        assert [line["event"] for line in lines][-1] == "entry"
        made = Cluster(run, database["url"], database["kms_url"], nodes, "", {})
        made.token = made.cli("admin", "token", "admin").stdout.strip()
        for name in HASHED:
            argv = ["conference", "create", name]
            for uri in PEOPLE:
                argv += ["--participant", uri]
            made.cli(*argv)
        listed = made.api("mrf-1", "/api/conferences")["conferences"]
        made.conference_ids = {c["name"]: c["id"] for c in listed}
        yield made


def test_two_baresips_dialling_through_kamailio_meet_on_one_home_and_hear_each_other(
    local_cluster: Cluster, artifacts: Artifacts
) -> None:
    uas = {name: _participant(artifacts, name) for name in ("alice", "bob")}
    try:
        for ua in uas.values():
            assert ua.command("dial", f"sip:room-a@{ENTRY}").get("ok")
            event = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 15)
            assert event is not None and event["type"] == "CALL_ESTABLISHED", (
                f"{ua.events}\n{tail(ua.process.log, 40)}"
            )
        home = local_cluster.home("room-a", ask="mrf-1")  # asked of a node that is not it
        assert home == HASHED["room-a"]
        path = f"/api/conferences/{local_cluster.conference_ids['room-a']}/roster"
        roster = local_cluster.api(home, path)
        assert sorted(p["uri"] for p in _live(roster)) == list(PEOPLE[:2])
        for node in local_cluster.nodes:  # the calls were answered by the home only
            log = (local_cluster.run / f"{node}.log").read_text()
            assert log.count("joined sip:room-a@") == (2 if node == home else 0), node
        time.sleep(3.0)
        for ua in uas.values():
            ua.command("hangup")
            assert ua.wait_event({"CALL_CLOSED"}, 5) is not None
    finally:
        for ua in uas.values():
            ua.close()
    for name, ua in uas.items():
        audio, rate = _recording(ua)
        assert audio.shape[0] > 2 * rate, f"{name}: only {audio.shape[0] / rate:.2f} s recorded"
        levels = _levels(audio, rate)
        other = "bob" if name == "alice" else "alice"
        assert levels[other] >= levels[name] + ISOLATION_DB, (name, levels)


def test_conferences_spread_over_nodes_and_a_stray_call_is_redirected_to_the_home(
    local_cluster: Cluster, artifacts: Artifacts
) -> None:
    alice, bob, carol = PEOPLE
    # room-c first reaches mrf-1 directly (not through Kamailio): mrf-1 becomes its home
    direct = UeProcess(artifacts, "sip:room-c@127.0.0.11:5060", carol, "--audio",
                       "--proxy", "127.0.0.11:5060", "--duration", "8")  # fmt: skip
    assert wait_for(lambda: direct.events("joined"), 10), direct.events()
    joins = [
        local_cluster.ue(artifacts, "room-b", alice, "--proxy", ENTRY, "--duration", "6"),
        local_cluster.ue(artifacts, "room-c", bob, "--proxy", ENTRY, "--duration", "6"),
    ]
    assert all(wait_for(lambda j=j: j.events("joined"), 15) for j in joins), [
        j.events() for j in joins
    ]
    assert local_cluster.home("room-b") == HASHED["room-b"] == "mrf-1"
    # Kamailio's hash sent room-c to mrf-3, which answered 302 to its home mrf-1
    assert local_cluster.home("room-c") == "mrf-1" != HASHED["room-c"]
    roster = local_cluster.api(
        "mrf-1", f"/api/conferences/{local_cluster.conference_ids['room-c']}/roster"
    )
    assert sorted(p["uri"] for p in _live(roster)) == [bob, carol]
    kamailio = (local_cluster.run / "kamailio.log").read_text()
    assert "CLUSTER: room-c homed at sip:room-c@127.0.0.11:5060" in kamailio
    # a client that does not follow redirects sees the 302 itself, with the home's Contact
    stray = UeProcess(artifacts, "sip:room-c@127.0.0.12:5060", alice, "--audio",
                      "--proxy", "127.0.0.12:5060", "--duration", "1")  # fmt: skip
    stray.wait(20)
    refused = stray.events("refused")
    assert refused and refused[0]["status"] == 302, stray.events()
    for process in (direct, *joins):
        assert process.wait(20) and process.proc.returncode == 0, process.events()
        media = process.events("media")
        assert media and media[0]["received"] > 0 and media[0]["auth_failures"] == 0


def test_a_ticket_from_one_nodes_kms_resolves_on_another_and_its_replay_is_refused_on_a_third(
    local_cluster: Cluster, artifacts: Artifacts
) -> None:
    kms_env = {"MRF_KMS_DATABASE_URL": local_cluster.kms_url}
    alice = bytes.fromhex(
        local_cluster.cli("kms", "enroll", "sip:alice@127.0.0.1", **kms_env).stdout.strip()
    )
    conference = b"sip:kmscheck@127.0.0.10"
    conf_key = bytes.fromhex(
        local_cluster.cli("kms", "enroll", conference.decode(), **kms_env).stdout.strip()
    )
    one, two, three = (local_cluster.nodes[n]["kms"] for n in ("mrf-1", "mrf-2", "mrf-3"))
    asyncio_run = __import__("asyncio").run

    async def exchange() -> None:
        now = time.time()
        request = MikeyTicketRequest.build(
            b"sip:alice@127.0.0.1", alice, responders=[b"?@?"], now=now
        )
        granted = request.process_response(await kms_exchange(one, bytes(request.message)),
                                           now=now)  # fmt: skip
        init = MikeyTransferInitiator.build(
            granted, conference, [MikeyGenericIdEntry(1, 241, ())], [], now=now
        )
        responder = MikeyTransferResponder.receive(
            bytes(init.message), identity_r=conference, kms_key=conf_key, now=now,
            cache=MikeyReplayCache(),
        )  # fmt: skip
        resolved = responder.process_resolve_response(
            await kms_exchange(two, bytes(responder.resolve)), now=now
        )
        assert resolved.initiator == b"sip:alice@127.0.0.1"
        replayed = await kms_exchange(three, bytes(responder.resolve))
        assert MikeyMessage.parse(replayed).data_type == MikeyDataType.ERROR
        with pytest.raises(MikeyRemoteError, match="MIKEY error 1$"):  # Invalid TS: a replay
            responder.process_resolve_response(replayed, now=now)

    asyncio_run(exchange())
    # and a MIKEY-TICKET call: ticket from mrf-3's KMS, resolved by the home's own KMS
    ue = local_cluster.ue(
        artifacts, "room-b", "sip:alice@127.0.0.1", "--proxy", ENTRY, "--mikey",
        "--kms", three, "--kms-key", alice.hex(), "--duration", "2",
    )  # fmt: skip
    events = ue.wait(30)
    media = [e for e in events if e["event"] == "media"]
    assert media and media[0]["key_mode"] == "mikey-ticket" and media[0]["received"] > 0, events


def _send(cluster: Cluster, node: str, method: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{cluster.nodes[node]['web']}{path}", method=method, data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_any_node_serves_the_roster_mute_and_dial_out_of_a_conference_homed_elsewhere(
    local_cluster: Cluster, artifacts: Artifacts
) -> None:
    alice, _, carol = PEOPLE
    ident = local_cluster.conference_ids["room-a"]
    live = local_cluster.ue(artifacts, "room-a", alice, "--proxy", ENTRY, "--duration", "30")
    answerer = None
    try:
        assert wait_for(lambda: live.events("joined"), 15), live.events()
        home = local_cluster.home("room-a")
        assert home == HASHED["room-a"]
        others = sorted(set(local_cluster.nodes) - {home})
        at_home = local_cluster.api(home, f"/api/conferences/{ident}/roster")
        assert [p["uri"] for p in _live(at_home)] == [alice]
        for node in others:  # read from a node that is not the home: the home's roster
            remote = local_cluster.api(node, f"/api/conferences/{ident}/roster")
            assert remote["conference"] == at_home["conference"]
            assert [p["call_id"] for p in _live(remote)] == [p["call_id"] for p in _live(at_home)]
        call_id = _live(at_home)[0]["call_id"]
        mute = f"/api/conferences/{ident}/roster/{call_id}"
        status, entry = _send(local_cluster, others[0], "PATCH", mute, {"muted": True})
        assert status == 200 and entry["muted"] is True
        muted = _live(local_cluster.api(home, f"/api/conferences/{ident}/roster"))
        assert muted[0]["muted"] is True, "muted on the home"
        # dial-out asked of a node that is not the home: the home places the call
        port = free_port()
        answerer = UeAnswer(artifacts, carol, port)
        assert wait_for(lambda: answerer.events("listening"), 15), answerer.events()
        target = {"uri": f"sip:carol@127.0.0.1:{port}"}
        dial = f"/api/conferences/{ident}/dial-out"
        status, body = _send(local_cluster, others[1], "POST", dial, target)
        assert status == 202 and body["participant"]["uri"] == carol, body
        assert wait_for(lambda: answerer.events("joined"), 15), answerer.events()
        home_log = (local_cluster.run / f"{home}.log").read_text()
        assert f"dial-out to {carol} (asked by {others[1]})" in home_log
        roster = local_cluster.api(others[0], f"/api/conferences/{ident}/roster")
        assert sorted(p["uri"] for p in _live(roster)) == [alice, carol]
        unknown = urllib.request.Request(
            f"{local_cluster.nodes[others[0]]['web']}/api/conferences/{ident}/roster/nope",
            method="PATCH", data=b'{"muted": false}',
            headers={"Authorization": f"Bearer {local_cluster.token}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:  # the home's 404, forwarded
            urllib.request.urlopen(unknown, timeout=10)
        assert refused.value.code == 404
        refused.value.close()
    finally:
        live.proc.kill()
        live.proc.wait(10)
        if answerer is not None:
            answerer.proc.kill()
            answerer.proc.wait(10)


class UeAnswer(UeProcess):
    """``mrf ue answer`` (auto-answers the dial-out) with its JSON events."""

    def __init__(self, artifacts: Artifacts, who: str, port: int) -> None:
        self.out = artifacts.path(f"answer-{port}.jsonl")
        with self.out.open("wb") as out, artifacts.path(f"answer-{port}.log").open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mrf", "ue", "answer", "--as", who,
                 "--listen", f"127.0.0.1:{port}", "--duration", "20"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=clean_env(PYTHONPATH=str(REPO)),
            )  # fmt: skip


def _table_rows(url: str) -> dict[str, int]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        names = set(sqlalchemy.inspect(engine).get_table_names()) - {"alembic_version"}
        with engine.connect() as connection:
            return {
                name: connection.execute(
                    sqlalchemy.text(f'SELECT count(*) FROM "{name}"')
                ).scalar_one()
                for name in sorted(names - {"conference_homes", "mikey_replay"})
            }
    finally:
        engine.dispose()


def test_kill_9_of_a_home_rehomes_its_conference_on_a_survivor_within_10_s(
    local_cluster: Cluster, artifacts: Artifacts
) -> None:
    """Runs last: it leaves mrf-2 dead (the module's cluster is stopped after it)."""
    alice, bob, _ = PEOPLE
    live = local_cluster.ue(artifacts, "room-a", alice, "--proxy", ENTRY, "--duration", "60")
    assert wait_for(lambda: live.events("joined"), 15), live.events()
    home = local_cluster.home("room-a")
    assert home == HASHED["room-a"]
    before = {"mrf": _table_rows(local_cluster.database_url),
              "kms": _table_rows(local_cluster.kms_url)}  # fmt: skip
    assert before["mrf"]["conferences"] == len(HASHED) and before["kms"]["kms_users"] >= 2
    import os
    import signal

    os.kill(local_cluster.nodes[home]["pid"], signal.SIGKILL)
    killed = time.monotonic()
    attempts: list[list[dict[str, Any]]] = []
    took, new_home = None, None
    while time.monotonic() - killed < 20:
        join = local_cluster.ue(artifacts, "room-a", bob, "--proxy", ENTRY, "--duration", "1")
        wait_for(lambda j=join: j.events("joined") or j.proc.poll() is not None, 30)
        if join.events("joined"):
            took = time.monotonic() - killed  # the moment the join was answered
            new_home = local_cluster.home("room-a", ask="mrf-1")
        attempts.append(join.wait(30))
        if took is not None:
            break
        time.sleep(0.2)
    assert took is not None, attempts
    assert any(e["event"] == "joined" for e in attempts[-1]), attempts
    print(f"re-homed on {new_home} {took:.1f} s after kill -9 of {home}, "
          f"{len(attempts)} attempt(s)")  # fmt: skip
    assert took < 10.0, f"{took:.1f} s: {attempts}"
    assert new_home in set(local_cluster.nodes) - {home}
    dispatched = [
        line.rsplit("-> ", 1)[1].strip()
        for line in (local_cluster.run / "kamailio.log").read_text().splitlines()
        if "CLUSTER: INVITE room-a ->" in line
    ]
    dead = f"sip:{local_cluster.nodes[home]['sip']}"
    assert dispatched[-1] != dead, f"Kamailio still sends room-a to {dead}: {dispatched}"
    after = {"mrf": _table_rows(local_cluster.database_url),
             "kms": _table_rows(local_cluster.kms_url)}  # fmt: skip
    assert after == before, "nothing of the database is lost with the node"
    live.proc.kill()  # its call died with its node (docs/scaling.md)
    live.proc.wait(10)
