"""The web UI and REST API inside ``mrf serve``: uvicorn on the server's event loop.

:func:`start_web` creates the first administrator when there is no account
(its password comes from ``MRF_ADMIN_PASSWORD`` or is drawn at random and
printed once on stdout), binds ``web.host:web.port`` itself (so a taken port is
an ``OSError`` at start like the SIP ports), loads the ``web`` package by name
(nothing imports ``web``: it sits on top of the services) and serves its app
with a uvicorn ``Server`` task whose signal handling is left to ``mrf serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

import web
from focus.store import ConferenceStore
from mrf.settings import Settings

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 5.0
WS_MAX_SIZE = 65536  # one SIP message per WebSocket message (RFC 7118 §5.2), SIP's own cap


class _EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to ``mrf serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


class WebServer:
    """The running web listener: its uvicorn server and task."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], port: int) -> None:
        self.server = server
        self.task = task
        self.port = port

    @property
    def up(self) -> bool:
        return self.server.started and not self.server.should_exit and not self.task.done()

    async def close(self) -> None:
        """Stop accepting, end open requests (live rosters too), wait for the task."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def ensure_first_admin(store: ConferenceStore, environ: Any = os.environ) -> None:
    """Create ``admin`` on the first start; print a generated password once."""
    given = environ.get("MRF_ADMIN_PASSWORD")
    created = store.ensure_first_admin(given)
    if created is None:
        return
    account, password = created
    if given is not None:
        logger.info("first admin %r created (password: MRF_ADMIN_PASSWORD)", account.name)
        return
    print(
        f"mrf: first admin account {account.name!r} created; password (shown only once): "
        f"{password}",
        flush=True,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def start_web(settings: Settings, services: Any) -> WebServer:
    """Serve ``web.create_app(settings, services)``; ``OSError`` if the port is taken."""
    ensure_first_admin(services.store)
    app = web.create_app(settings, services)
    sock = _bind(settings.web.host, settings.web.port)
    config = uvicorn.Config(
        app, log_level=settings.log_level.lower(), lifespan="on", log_config=None,
        access_log=False, timeout_graceful_shutdown=2, server_header=False,
        ws="websockets-sansio", ws_max_size=WS_MAX_SIZE,
    )  # fmt: skip
    server = _EmbeddedUvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="web")
    port = int(sock.getsockname()[1])
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            sock.close()
            raise OSError(f"the web server did not start on {settings.web.host}:{port}")
        await asyncio.sleep(0.01)
    logger.info("web UI and REST API on http://%s:%d/", settings.web.host, port)
    return WebServer(server, task, port)
