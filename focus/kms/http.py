"""The KMS HTTP listener: ``POST <path>`` of ``application/mikey`` (project decision (c)).

A deliberately small HTTP/1.1 server on asyncio streams: one request per
connection (``Connection: close``), request head capped at 8 KiB, body at
``max_body_size``, each read bounded by ``read_timeout``.  Answers: 200 with
the MIKEY response (REQUEST_RESP, RESOLVE_RESP or a MIKEY Error message),
404 for another path, 405 for another method, 411/413 for a bad length, 415
for another content type, 400 for a malformed request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from focus.kms.core import KmsConfig, KmsCore
from focus.kms.keys import KmsKeys, KmsKeysError
from focus.kms.store import KmsDatabaseKeys, MikeyDatabaseReplayCache
from focus.mikey.exchange import MIKEY_CONTENT_TYPE
from focus.store import StoreError, make_engine, migrate

logger = logging.getLogger(__name__)

MAX_HEAD_SIZE = 8192
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
}  # fmt: skip


class KmsHttpServer:
    """Serves a :class:`KmsCore` at ``path``."""

    def __init__(
        self,
        core: KmsCore,
        path: str = "/kms",
        *,
        max_body_size: int = 65536,
        read_timeout: float = 10.0,
    ) -> None:
        self.core = core
        self.path = path
        self.max_body_size = max_body_size
        self.read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self.engine: Engine | None = None  # the shared KMS database, disposed on close

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound ``(host, port)``."""
        self._server = await asyncio.start_server(self._connection, host, port)
        address = self._server.sockets[0].getsockname()
        return address[0], address[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await asyncio.wait_for(self._request(reader), self.read_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status, body = 400, b""
        except ConnectionError:
            writer.close()
            return
        head = (
            f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n"
        )
        if status == 200:
            head += f"Content-Type: {MIKEY_CONTENT_TYPE}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _request(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD_SIZE:
            return 400, b""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, b""
        method, target = parts[0], parts[1].split("?", 1)[0]
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if target != self.path:
            return 404, b""
        if method != "POST":
            return 405, b""
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != MIKEY_CONTENT_TYPE:
            return 415, b""
        if "content-length" not in headers or not headers["content-length"].isdigit():
            return 411, b""
        length = int(headers["content-length"])
        if length > self.max_body_size:
            return 413, b""
        body = await reader.readexactly(length)
        return 200, self.core.handle(body, time.time())


async def start_embedded_kms(
    url: str,
    data_dir: Path,
    *,
    identity: bytes = b"sip:kms@127.0.0.1",
    database_url: str | None = None,
) -> KmsHttpServer:
    """The KMS of ``mrf serve``, listening at ``url``.

    Keys in ``<data_dir>/kms/keys.json``, or with ``database_url`` in that
    database's tables together with the replay cache, shared by every node
    pointing at it (:mod:`focus.kms.store`, docs/scaling.md).
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise KmsKeysError(f"the embedded KMS serves plain http on loopback, not {url!r}")
    config = KmsConfig(identity)
    if database_url:
        keys, replay = shared_kms_state(database_url, config.profile.window)
        core = KmsCore(keys.user_key, keys.ticket_secrets, keys.current_secret, config, replay)
        where = keys.path
        server = KmsHttpServer(core, parts.path or "/")
        server.engine = keys.engine
    else:
        file_keys = KmsKeys.in_data_dir(data_dir)
        core = KmsCore(file_keys.user_key, file_keys.ticket_secrets, file_keys.current_secret,
                       config)  # fmt: skip
        where = str(file_keys.path)
        server = KmsHttpServer(core, parts.path or "/")
    try:
        host, port = await server.start(parts.hostname, 80 if parts.port is None else parts.port)
    except OSError:
        await server.close()
        raise
    logger.info("KMS listening on http://%s:%d%s (keys %s)", host, port, server.path, where)
    return server


def shared_kms_state(
    database_url: str, window: float
) -> tuple[KmsDatabaseKeys, MikeyDatabaseReplayCache]:
    """The KMS keys and replay cache in ``database_url`` (schema upgraded first)."""
    try:
        engine = make_engine(database_url)
        migrate(engine)
        return KmsDatabaseKeys(engine), MikeyDatabaseReplayCache(engine, window)
    except (StoreError, SQLAlchemyError) as exc:
        raise KmsKeysError(f"kms.database_url: {type(exc).__name__}: {exc}") from exc
