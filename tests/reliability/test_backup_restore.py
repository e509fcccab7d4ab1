"""Backup and restore exactly as docs/operations.md says, proven on the real server.

A running ``mrf serve`` (embedded KMS) holds accounts, API tokens, conferences
with their policies and authorized lists (one created through the REST API
while it runs), a KMS-enrolled user and its certificate.  The backup is taken
online with the commands of the doc (which are checked to be in the doc,
verbatim); a conference created after the backup must not come back.  The
copy is restored into a fresh directory, a new ``mrf serve`` starts on it, and
then: ``mrf conference list`` prints the same conferences, policies and lists;
the tokens work on the REST API; the passwords sign in; the enrolled user's
KMS key still gets a ticket from the embedded KMS; the certificate (and so the
fingerprint) is the same; an authorized participant dials in.

SQLite: ``sqlite3 .backup`` (and the Python ``sqlite3`` backup API one-liner,
whose copy must hold the same data).  PostgreSQL (the suite's throw-away
cluster): ``pg_dump --format=custom`` and ``pg_restore`` into a new database.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from focus.conference import ConferencePolicy
from focus.kms.client import kms_exchange
from focus.kms.keys import KmsKeys
from focus.mikey.initiator import MikeyTicketRequest
from focus.store import ConferenceStore
from mrf.tls import certificate_fingerprint
from tests.conftest import PostgresServer, _pg_binary
from tests.interop.harness import MrfServer, free_port, require_peer, tail, wait_for
from tests.reliability.session import Identity, dial_in, hang_up

pytestmark = pytest.mark.interop

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ALICE, BOB, CAROL = (f"sip:{name}@127.0.0.1" for name in ("alice", "bob", "carol"))
PASSWORDS = {"ana": "ana's long password", "root": "root's long password"}

# The commands of docs/operations.md, run as they are written there.
SQLITE_BACKUP = """\
umask 077
mkdir -p backup
sqlite3 var/mrf.db ".backup 'backup/mrf.db'"
cp -a var/tls var/kms backup/"""
PYTHON_BACKUP = (
    "python3 -c 'import sqlite3, sys; src, dst = sqlite3.connect(sys.argv[1]), "
    "sqlite3.connect(sys.argv[2]); src.backup(dst); dst.close(); src.close()' "
    "var/mrf.db backup/mrf-py.db"
)
SQLITE_RESTORE = """\
mkdir var
cp backup/mrf.db var/mrf.db
cp -a backup/tls backup/kms var/"""
PG_BACKUP = """\
umask 077
mkdir -p backup
pg_dump --format=custom --file=backup/mrf.dump "$DB"
cp -a var/tls var/kms backup/"""
PG_RESTORE = """\
pg_restore --no-owner --exit-on-error --dbname="$RESTORED" backup/mrf.dump
mkdir var
cp -a backup/tls backup/kms var/"""


@dataclass
class Live:
    """The running server, its web port and what a restore must bring back."""

    server: MrfServer
    web_port: int
    tokens: dict[str, str]
    alice_key: bytes
    fingerprint: str = ""
    listing: list[dict[str, object]] | None = None


def _shell(script: str, cwd: Path, **env: str) -> None:
    """``bash -e`` in ``cwd``; ``python3`` is this interpreter (it has sqlite3)."""
    script = script.replace("python3 ", f"{sys.executable} ")
    result = subprocess.run(
        ["bash", "-ec", script], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{script}\n{result.stdout}{result.stderr}"


def _documented(*scripts: str) -> None:
    text = DOC.read_text()
    for script in scripts:
        for line in script.splitlines():
            assert line in text, f"docs/operations.md no longer says: {line}"


def _server(workdir: Path, database_url: str) -> tuple[MrfServer, int]:
    """A config with the embedded KMS on a free port and ``database_url``; the web port."""
    server = MrfServer(workdir)
    text = server.config.read_text()
    web_port = int(re.search(r"\[web\]\nhost = \"[^\"]+\"\nport = (\d+)", text)[1])  # type: ignore[index]
    text = re.sub(r'database_url = "[^"]*"', f'database_url = "{database_url}"', text)
    kms = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    server.config.write_text(
        text[: text.index("[kms]")] + f'[kms]\nurl = "{kms}"\nembedded = true\n'
    )
    server.kms_url = kms  # type: ignore[attr-defined]
    return server, web_port


def _api(port: int, token: str, method: str = "GET", body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/conferences", data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _names(port: int, token: str) -> set[str]:
    status, found = _api(port, token)
    assert status == 200, (status, found)
    assert isinstance(found, dict)
    return {str(item["name"]) for item in found["conferences"]}


def _listing(server: MrfServer) -> list[dict[str, object]]:
    out = server.cli("conference", "list").stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _populate(server: MrfServer, database_url: str) -> tuple[dict[str, str], bytes]:
    """Accounts, tokens, two conferences with policies and lists, alice enrolled at the KMS."""
    with ConferenceStore(database_url) as store:
        store.create_all()
        ana = store.create_account("ana", PASSWORDS["ana"])
        store.create_account("root", PASSWORDS["root"], is_admin=True)
        tokens = {name: store.create_token(name) for name in PASSWORDS}
        store.create_conference(
            "retro", [(ALICE, "chair"), (BOB, "participant", True)], owner_id=ana.id,
            policy=ConferencePolicy(key_modes=("sdes", "fingerprint", "mikey-ticket"),
                                    notify_protection="required", chair_uri=ALICE),
        )  # fmt: skip
        store.create_conference("board", [CAROL], policy=ConferencePolicy(allow_anonymous=True))
    return tokens, KmsKeys.in_data_dir(server.data_dir).enroll(ALICE)


def _start_live(workdir: Path, database_url: str) -> Live:
    server, web_port = _server(workdir, database_url)
    tokens, alice_key = _populate(server, database_url)
    server.start()
    live = Live(server, web_port, tokens, alice_key)
    status, _ = _api(web_port, tokens["ana"], "POST", {  # a change made while it runs
        "name": "late", "participants": [{"uri": BOB, "role": "participant"}]})  # fmt: skip
    assert status == 201
    live.fingerprint = certificate_fingerprint((server.data_dir / "tls" / "cert.pem").read_bytes())
    live.listing = _listing(server)
    assert {c["name"] for c in live.listing} == {"board", "late", "retro"}
    return live


def _after_backup(live: Live) -> None:
    """A change after the backup: the restore must not have it."""
    status, _ = _api(live.web_port, live.tokens["root"], "POST", {"name": "after"})
    assert status == 201


async def _kms_grants(url: str, identity: str, key: bytes) -> bool:
    request = MikeyTicketRequest.build(
        identity.encode(), key, responders=[b"sip:retro@127.0.0.1"], now=time.time()
    )
    reply = await kms_exchange(url, bytes(request.message))
    return request.process_response(reply, now=time.time()).identity == identity.encode()


def _check_restored(live: Live, restored: MrfServer, web_port: int, database_url: str) -> None:
    """Everything the live server had at backup time, through the restored server."""
    assert _listing(restored) == live.listing  # conferences, policies, authorized lists
    assert _names(web_port, live.tokens["ana"]) == {"late", "retro"}  # ana's own
    assert _names(web_port, live.tokens["root"]) == {"board", "late", "retro"}  # admin: all
    with ConferenceStore(database_url) as store:
        for name, password in PASSWORDS.items():
            account = store.authenticate(name, password)
            assert account is not None and account.is_admin == (name == "root")
        assert store.authenticate("ana", "not ana's password") is None
    fingerprint = certificate_fingerprint((restored.data_dir / "tls" / "cert.pem").read_bytes())
    assert fingerprint == live.fingerprint
    assert f"({live.fingerprint})" in restored.log_text()
    url = restored.kms_url  # type: ignore[attr-defined]
    assert asyncio.run(_kms_grants(url, ALICE, live.alice_key)), "the KMS key no longer works"

    async def dial() -> None:
        identity = Identity(restored.workdir / "alice")
        call = await dial_in(restored.host, restored.port, "retro", ALICE, identity)
        await hang_up(restored.host, restored.port, ALICE, call)

    asyncio.run(dial())
    joined = f"{ALICE} joined sip:retro@"
    assert wait_for(lambda: joined in restored.log_text(), 10.0), tail(restored.log)


def test_sqlite_online_backup_restores_everything(tmp_path: Path) -> None:
    require_peer("sqlite3")
    _documented(SQLITE_BACKUP, PYTHON_BACKUP, SQLITE_RESTORE)
    live_dir = tmp_path / "live"
    live = _start_live(live_dir, f"sqlite:///{live_dir}/var/mrf.db")
    try:
        _shell(SQLITE_BACKUP, live_dir)  # online: the server is running
        _shell(PYTHON_BACKUP, live_dir)
        _after_backup(live)
    finally:
        live.server.stop()
    backup = live_dir / "backup"
    for private in (backup, backup / "mrf.db", backup / "kms" / "keys.json"):  # umask 077
        assert private.stat().st_mode & 0o077 == 0, oct(private.stat().st_mode)
    with (
        ConferenceStore(f"sqlite:///{backup}/mrf.db") as cli_copy,
        ConferenceStore(f"sqlite:///{backup}/mrf-py.db") as python_copy,
    ):
        assert python_copy.list_conferences() == cli_copy.list_conferences()
        assert python_copy.list_accounts() == cli_copy.list_accounts()
        for token in live.tokens.values():
            assert python_copy.account_for_token(token) == cli_copy.account_for_token(token)

    restored_dir = tmp_path / "restored"  # another machine: only the backup goes there
    restored, web_port = _server(restored_dir, f"sqlite:///{restored_dir}/var/mrf.db")
    shutil.copytree(backup, restored_dir / "backup")
    _shell(SQLITE_RESTORE, restored_dir)
    restored.start()
    try:
        _check_restored(live, restored, web_port, f"sqlite:///{restored_dir}/var/mrf.db")
    finally:
        restored.stop()


def test_postgresql_dump_and_restore_restore_everything(
    tmp_path: Path, postgresql_server: PostgresServer, postgresql_url: str
) -> None:
    import psycopg

    _documented(PG_BACKUP, PG_RESTORE)
    tools = {"PATH": f"{Path(_pg_binary('pg_dump')).parent}:{os.environ['PATH']}"}
    live_dir = tmp_path / "live"
    live = _start_live(live_dir, postgresql_url)
    libpq_url = postgresql_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        _shell(PG_BACKUP, live_dir, DB=libpq_url, **tools)
        _after_backup(live)
    finally:
        live.server.stop()

    name = f"restored_{secrets.token_hex(6)}"
    admin = f"host={postgresql_server.host} port={postgresql_server.port} user=postgres"
    with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    restored_url = postgresql_server.url(name)
    try:
        restored_dir = tmp_path / "restored"
        restored, web_port = _server(restored_dir, restored_url)
        shutil.copytree(live_dir / "backup", restored_dir / "backup")
        _shell(PG_RESTORE, restored_dir, RESTORED=restored_url.replace("+psycopg", ""), **tools)
        restored.start()
        try:
            _check_restored(live, restored, web_port, restored_url)
        finally:
            restored.stop()
    finally:
        with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
