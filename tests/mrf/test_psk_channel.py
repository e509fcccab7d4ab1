"""PskTlsEngine under SecureChannel: TLS-PSK on memory BIOs under asyncio (decision (d))."""

from __future__ import annotations

import asyncio

from mrf.secure_channel import SecureChannel
from mrf.tls_engine import PskTlsEngine
from mrf.tls_psk import psk_client_context, psk_server_context


class App:
    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self.data = b""
        self.reason: str | None = None

    def channel_open(self, channel: SecureChannel) -> None:
        self.opened.set()

    def channel_data(self, channel: SecureChannel, data: bytes) -> None:
        self.data += data

    def channel_closed(self, channel: SecureChannel, reason: str | None) -> None:
        self.reason = reason
        self.closed.set()


async def pair(server_key: bytes, client_key: bytes) -> tuple[App, App, SecureChannel]:
    server_app, client_app = App(), App()
    context = psk_server_context(server_key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SecureChannel(PskTlsEngine(context, server_side=True), server_app), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    _, channel = await loop.create_connection(
        lambda: SecureChannel(
            PskTlsEngine(psk_client_context(client_key), server_side=False), client_app
        ),
        "127.0.0.1", port,
    )  # fmt: skip
    server.close()
    return server_app, client_app, channel


def test_same_key_opens_and_carries_data() -> None:
    async def main() -> None:
        server, client, channel = await pair(b"k" * 16, b"k" * 16)
        await asyncio.wait_for(client.opened.wait(), 5)
        assert channel.version == "TLSv1.2" and channel.cipher == "PSK-AES128-GCM-SHA256"
        channel.write(b"MSRP abc SEND\r\n" * 1000)
        await asyncio.wait_for(server.opened.wait(), 5)
        for _ in range(100):
            if len(server.data) == 15000:
                break
            await asyncio.sleep(0.01)
        assert server.data == b"MSRP abc SEND\r\n" * 1000
        channel.close()
        await asyncio.wait_for(server.closed.wait(), 5)

    asyncio.run(main())


def test_another_key_never_opens() -> None:
    async def main() -> None:
        server, client, _ = await pair(b"k" * 16, b"x" * 16)
        await asyncio.wait_for(client.closed.wait(), 5)
        await asyncio.wait_for(server.closed.wait(), 5)
        assert not client.opened.is_set() and not server.opened.is_set()
        assert server.data == b"" and "handshake failed" in (server.reason or "")

    asyncio.run(main())
