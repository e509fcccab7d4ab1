"""focus/kms/store.py: several KMS instances on one database act as one KMS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from focus.kms.client import kms_exchange
from focus.kms.http import KmsHttpServer, shared_kms_state, start_embedded_kms
from focus.kms.store import MikeyDatabaseReplayCache
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyDataType
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.message import MikeyGenericIdEntry, MikeyMessage
from focus.mikey.responder import MikeyTransferResponder
from focus.store import make_engine, migrate

ALICE, CONF = b"sip:alice@127.0.0.1", b"sip:retro@127.0.0.1"


async def _three_kms(tmp_path: Path, url: str) -> list[tuple[KmsHttpServer, str]]:
    started = []
    for number in range(3):  # one data directory each: nothing shared but the database
        server = await start_embedded_kms(
            "http://127.0.0.1:0/kms", tmp_path / f"node{number}", database_url=url
        )
        port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        started.append((server, f"http://127.0.0.1:{port}/kms"))
    return started


def test_a_ticket_from_one_kms_resolves_on_another_and_a_replay_is_refused_on_a_third(
    tmp_path: Path, database_url: str
) -> None:
    asyncio.run(_ticket_across_nodes(tmp_path, database_url))


async def _ticket_across_nodes(tmp_path: Path, url: str) -> None:
    keys, _ = shared_kms_state(url, 300.0)
    alice, conf = keys.enroll("sip:alice@127.0.0.1"), keys.enroll_once("sip:retro@127.0.0.1")
    nodes = await _three_kms(tmp_path, url)
    (_, issuer), (_, resolver), (_, third) = nodes
    try:
        now = time.time()
        request = MikeyTicketRequest.build(ALICE, alice, responders=[b"?@?"], now=now)
        granted = request.process_response(await kms_exchange(issuer, bytes(request.message)),
                                           now=now)  # fmt: skip
        init = MikeyTransferInitiator.build(
            granted, CONF, [MikeyGenericIdEntry(1, 241, ())], [], now=now
        )
        responder = MikeyTransferResponder.receive(
            bytes(init.message), identity_r=CONF, kms_key=conf, now=now,
            cache=MikeyDatabaseReplayCache(keys.engine, scope=b"focus"),
        )  # fmt: skip
        reply = await kms_exchange(resolver, bytes(responder.resolve))
        assert responder.process_resolve_response(reply, now=now).initiator == ALICE
        replayed = await kms_exchange(third, bytes(responder.resolve))
        assert MikeyMessage.parse(replayed).data_type == MikeyDataType.ERROR
        with pytest.raises(MikeyRemoteError, match="MIKEY error 1$"):  # Invalid TS (replay)
            responder.process_resolve_response(replayed, now=now)
        again = await kms_exchange(issuer, bytes(request.message))  # the ticket request too
        assert MikeyMessage.parse(again).data_type == MikeyDataType.ERROR
    finally:
        for server, _ in nodes:
            await server.close()
        keys.engine.dispose()


def test_the_focus_replay_cache_refuses_a_transfer_init_seen_by_another_node(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    one, two = (MikeyDatabaseReplayCache(engine, 300.0, scope=b"focus") for _ in range(2))
    kms = MikeyDatabaseReplayCache(engine, 300.0, scope=b"kms")
    one.check_and_add(1000.0, b"transfer-init", b"\x01")
    with pytest.raises(MikeyRemoteError, match="replayed"):
        two.check_and_add(1000.5, b"transfer-init", b"\x01")
    kms.check_and_add(1000.5, b"transfer-init", b"\x01")  # another scope: not a replay
    two.check_and_add(1000.0 + 601, b"transfer-init", b"\x01")  # expired (2 windows): new
    assert two.sweep(1000.0 + 1300) == 2 and len(two) == 0
    engine.dispose()


def test_nodes_starting_together_share_one_ticket_secret(database_url: str) -> None:
    first, _ = shared_kms_state(database_url, 300.0)
    second, _ = shared_kms_state(database_url, 300.0)
    assert first.current_secret == second.current_secret == 1
    assert dict(first.ticket_secrets) == dict(second.ticket_secrets) and len(first.ticket_secrets)
    assert first.enroll_once("sip:x@h") == second.enroll_once("sip:x@h")
    first.engine.dispose()
    second.engine.dispose()


def test_cli_enroll_writes_the_shared_database(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from mrf.__main__ import main

    monkeypatch.setenv("MRF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MRF_KMS_DATABASE_URL", database_url)
    assert main(["kms", "enroll", "sip:bob@127.0.0.1"]) == 0
    key = bytes.fromhex(capsys.readouterr().out.strip())
    keys, _ = shared_kms_state(database_url, 300.0)
    assert keys.user_key(b"sip:bob@127.0.0.1") == key
    assert not (tmp_path / "kms" / "keys.json").exists()
    keys.engine.dispose()
