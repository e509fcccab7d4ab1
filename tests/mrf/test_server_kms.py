"""``mrf serve`` runs the embedded KMS at the default ``kms.url``; another URL disables it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from focus.kms.client import kms_exchange
from focus.kms.keys import KmsKeys
from focus.mikey.initiator import MikeyTicketRequest
from mrf.server import start
from mrf.settings import KmsSettings, MediaSettings, Settings, SipSettings, WebSettings


def _settings(tmp_path: Path, kms_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path}/mrf.db",
        sip=SipSettings(port=0, tls_port=0), web=WebSettings(port=0),
        media=MediaSettings(rtp_ports=(31200, 31299)), kms=KmsSettings(url=kms_url),
    )  # fmt: skip


async def _embedded(tmp_path: Path) -> None:
    key = KmsKeys.in_data_dir(tmp_path / "var").enroll("sip:alice@127.0.0.1")
    server = await start(_settings(tmp_path, KmsSettings().url))
    try:
        assert server.kms is not None
        request = MikeyTicketRequest.build(
            b"sip:alice@127.0.0.1", key, responders=[b"?@?"], now=time.time()
        )
        reply = await kms_exchange(KmsSettings().url, bytes(request.message))
        assert request.process_response(reply, now=time.time()).identity == b"sip:alice@127.0.0.1"
    finally:
        await server.close()


def test_embedded_kms_issues_tickets(tmp_path: Path) -> None:
    asyncio.run(_embedded(tmp_path))


async def _external(tmp_path: Path) -> None:
    server = await start(_settings(tmp_path, "http://192.0.2.1:8090/kms"))
    try:
        assert server.kms is None
        assert not (tmp_path / "var" / "kms").exists()  # the focus holds no KMS keys
    finally:
        await server.close()


def test_external_kms_url_disables_the_embedded_one(tmp_path: Path) -> None:
    asyncio.run(_external(tmp_path))
