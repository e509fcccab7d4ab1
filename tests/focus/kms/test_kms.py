"""The KMS over HTTP on loopback: keys file, listener, client, ``mrf kms enroll``."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import pytest

from focus.kms.client import KmsUnavailable, kms_exchange
from focus.kms.core import KmsCore
from focus.kms.http import KmsHttpServer, start_embedded_kms
from focus.kms.keys import KmsKeys, KmsKeysError
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.message import MikeyGenericIdEntry
from focus.mikey.responder import MikeyTransferResponder
from focus.mikey.timestamp import MikeyReplayCache
from mrf.__main__ import main


def test_keys_file_is_private_and_reloads(tmp_path: Path) -> None:
    keys = KmsKeys.in_data_dir(tmp_path)
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    other = KmsKeys(keys.path)  # e.g. `mrf kms enroll` in another process
    key = other.enroll("sip:alice@127.0.0.1")
    assert keys.user_key(b"sip:alice@127.0.0.1") == key
    assert keys.ticket_secrets == other.ticket_secrets and len(key) == 32


def test_broken_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "kms" / "keys.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(KmsKeysError, match="unusable KMS keys file"):
        KmsKeys(path)


def test_cli_enroll_prints_the_key_once(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MRF_DATA_DIR", str(tmp_path))
    assert main(["kms", "enroll", "sip:Bob@127.0.0.1"]) == 0
    key = capsys.readouterr().out.strip()
    document = json.loads((tmp_path / "kms" / "keys.json").read_text())
    assert list(document["users"].values()) == [key] and len(bytes.fromhex(key)) == 32
    assert main(["kms", "enroll", "not a uri"]) == 2


async def _http(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = await reader.read()
    writer.close()
    return data


def test_ticket_exchange_over_http(tmp_path: Path) -> None:
    asyncio.run(_ticket_exchange(tmp_path))


async def _ticket_exchange(tmp_path: Path) -> None:
    keys = KmsKeys.in_data_dir(tmp_path)
    alice, conf = keys.enroll("sip:alice@127.0.0.1"), keys.enroll("sip:retro@127.0.0.1")
    server = await start_embedded_kms("http://127.0.0.1:0/kms", tmp_path)
    port = server._server.sockets[0].getsockname()[1]  # noqa: SLF001
    url = f"http://127.0.0.1:{port}/kms"
    try:
        now = time.time()
        request = MikeyTicketRequest.build(
            b"sip:alice@127.0.0.1", alice, responders=[b"?@?"], now=now
        )
        granted = request.process_response(await kms_exchange(url, bytes(request.message)), now=now)
        sessions = [MikeyGenericIdEntry(1, 241, ())]
        init = MikeyTransferInitiator.build(granted, b"sip:retro@127.0.0.1", sessions, [], now=now)
        responder = MikeyTransferResponder.receive(
            bytes(init.message), identity_r=b"sip:retro@127.0.0.1", kms_key=conf, now=now,
            cache=MikeyReplayCache(),
        )  # fmt: skip
        reply = await kms_exchange(url, bytes(responder.resolve))
        assert (
            responder.process_resolve_response(reply, now=now).initiator == b"sip:alice@127.0.0.1"
        )
    finally:
        await server.close()


MIKEY_POST = b"POST /kms HTTP/1.1\r\nContent-Type: application/mikey\r\n"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (MIKEY_POST + b"Content-Length: 3\r\n\r\nabc", b"200"),
        (b"GET /kms HTTP/1.1\r\n\r\n", b"405"),
        (b"POST /other HTTP/1.1\r\n\r\n", b"404"),
        (b"POST /kms HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx", b"415"),
        (b"POST /kms HTTP/1.1\r\nContent-Type: application/mikey\r\n\r\n", b"411"),
        (MIKEY_POST + b"Content-Length: 99999\r\n\r\n", b"413"),
        (b"garbage\r\n\r\n", b"400"),
    ],
)
def test_http_statuses(raw: bytes, status: bytes) -> None:
    asyncio.run(_statuses(raw, status))


async def _statuses(raw: bytes, status: bytes) -> None:
    server = KmsHttpServer(KmsCore(lambda _: None, {1: b"s" * 32}, 1), "/kms", read_timeout=2)
    _, port = await server.start("127.0.0.1", 0)
    try:
        response = await _http(port, raw)
    finally:
        await server.close()
    assert response.split(b" ")[1] == status
    if status == b"200":  # junk gets a MIKEY Error message (data type 6)
        assert b"application/mikey" in response and response.split(b"\r\n\r\n", 1)[1][1] == 6


def test_unreachable_kms_raises_kms_unavailable() -> None:
    asyncio.run(_unreachable())


async def _unreachable() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(KmsUnavailable):
        await kms_exchange(f"http://127.0.0.1:{port}/kms", b"x", timeout=2)
    with pytest.raises(KmsUnavailable):
        await kms_exchange("ftp://127.0.0.1/kms", b"x")
