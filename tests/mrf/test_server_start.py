"""``mrf serve`` opens its SIP ports last: a call arriving during the start gets the whole
service, and a SIP or MSRP port that is taken stops the start with everything it had
opened closed again (the composition root's AsyncExitStack)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from focus.endpoint import SipEndpoint
from focus.store import ConferenceStore
from mrf.rtp.plane import MediaPlane
from mrf.server import start
from mrf.settings import (
    BfcpSettings,
    KmsSettings,
    MediaSettings,
    MsrpSettings,
    Settings,
    SipSettings,
    WebSettings,
)


def _settings(tmp_path: Path, sip_port: int = 0, msrp_port: int = 0) -> Settings:
    return Settings(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path}/mrf.db",
        sip=SipSettings(port=sip_port, tls_port=0), web=WebSettings(port=0),
        msrp=MsrpSettings(port=msrp_port), bfcp=BfcpSettings(port=0),
        media=MediaSettings(rtp_ports=(31400, 31499)),
        kms=KmsSettings(url="http://127.0.0.1:9/kms"),  # external: no embedded KMS here
    )  # fmt: skip


def test_sip_listens_only_once_everything_is_wired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, bool]] = []
    listen_udp = SipEndpoint.listen_udp

    async def watching(self: SipEndpoint, host: str, port: int) -> Any:
        focus: Any = self.handler  # the FocusService behind the endpoint
        seen.append({"chat": focus.chat is not None, "floor": focus.floor is not None,
                     "mikey": focus.mikey is not None})  # fmt: skip
        return await listen_udp(self, host, port)

    monkeypatch.setattr(SipEndpoint, "listen_udp", watching)

    async def main() -> None:
        server = await start(_settings(tmp_path))
        try:
            assert server.web is not None
        finally:
            await server.close()

    asyncio.run(main())
    assert seen == [{"chat": True, "floor": True, "mikey": True}]


def test_a_taken_sip_port_fails_the_start_and_closes_the_rest(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]

        async def main() -> None:
            before = {t for t in asyncio.all_tasks()}
            with pytest.raises(OSError):
                await start(_settings(tmp_path, port))
            await asyncio.sleep(0)
            assert {t for t in asyncio.all_tasks() if not t.done()} - before <= {
                asyncio.current_task()
            }

        asyncio.run(main())


def test_a_taken_msrp_port_closes_what_the_start_had_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    media_close, store_close = MediaPlane.close, ConferenceStore.close

    def close_media(self: MediaPlane) -> None:
        closed.append("media")
        media_close(self)

    def close_store(self: ConferenceStore) -> None:
        closed.append("store")
        store_close(self)

    monkeypatch.setattr(MediaPlane, "close", close_media)
    monkeypatch.setattr(ConferenceStore, "close", close_store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)

        async def main() -> None:
            with pytest.raises(OSError):
                await start(_settings(tmp_path, msrp_port=taken.getsockname()[1]))

        asyncio.run(main())
    assert "media" in closed and closed[-1] == "store"  # the media plane too, the store last
