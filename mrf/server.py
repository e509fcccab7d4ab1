"""The composition root: ``mrf serve`` wires every service on one event loop.

Store (SQLModel) → media plane (SRTP sockets) → focus service → SIP endpoint
listening on UDP+TCP (``sip.port``) and TLS (``sip.tls_port``) with the
certificate persisted in the data directory.  SIGINT/SIGTERM stop it cleanly:
every participant gets a BYE (bounded), media keys are wiped, sockets closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from focus.dialout import FocusDialOut
from focus.endpoint import SipEndpoint
from focus.sdp.sdes import SDES_SUITES
from focus.service import FocusConfig, FocusService
from focus.store import ConferenceStore
from mrf.rtp.plane import MediaPlane
from mrf.rtp.srtp import mki_supported
from mrf.settings import Settings
from mrf.tls import certificate_fingerprint, ensure_certificate, server_ssl_context

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Server:
    """Everything ``mrf serve`` runs, for tests and for the web layer later."""

    settings: Settings
    store: ConferenceStore
    media: MediaPlane
    focus: FocusService
    endpoint: SipEndpoint

    async def close(self) -> None:
        if self.focus.dialout is not None:
            await self.focus.dialout.close()
        await self.focus.shutdown(self.endpoint)
        await self.endpoint.close()
        self.media.close()
        await self.media.wait_closed()
        self.store.close()


async def start(settings: Settings) -> Server:
    """Open the store, bind every listener; raise ``OSError`` if a port is taken."""
    for listener in settings.non_loopback_listeners():
        logger.warning("listening beyond loopback: %s (explicit setting)", listener)
    store = ConferenceStore(settings.database_url)
    store.create_all()
    cert, key = ensure_certificate(settings.data_dir)
    tls_context = server_ssl_context(cert, key, keylog_filename=settings.tls.keylog_file)
    low, high = settings.media.rtp_ports
    media = MediaPlane(settings.media.host, (low, high), max_streams=(high - low + 1) // 2)
    config = FocusConfig(
        domain=settings.sip.domain,
        trusted_proxies=frozenset(settings.sip.trusted_proxies),
        mki_suites=frozenset(name for name in SDES_SUITES if mki_supported(name)),
    )
    focus = FocusService(store, media, config)
    endpoint = SipEndpoint(focus, max_message_size=settings.sip.max_message_size)
    focus.attach(endpoint)
    FocusDialOut(focus)  # registers itself: focus.dialout, REFER handling
    try:
        sip = settings.sip
        for address in (
            await endpoint.listen_udp(sip.host, sip.port),
            await endpoint.listen_tcp(sip.host, sip.port),
            await endpoint.listen_tls(sip.host, sip.tls_port, tls_context),
        ):
            logger.info("SIP listening on %s %s:%d", address.transport, address.host, address.port)
    except OSError:
        await endpoint.close()
        store.close()
        raise
    logger.info("TLS certificate %s (%s)", cert, certificate_fingerprint(cert.read_bytes()))
    logger.info(
        "media plane %s ports %d-%d; conference URIs sip:<name>@%s",
        settings.media.host, *settings.media.rtp_ports, settings.sip.domain,
    )  # fmt: skip
    return Server(settings, store, media, focus, endpoint)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set or SIGINT/SIGTERM arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await start(settings)
    logger.info("mrf ready")
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await server.close()
        logger.info("stopped")


def run(settings: Settings) -> int:
    """Entry point of ``mrf serve``; returns the process exit code."""
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    return 0
