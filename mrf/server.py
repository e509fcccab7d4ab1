"""The composition root: ``mrf serve`` wires every service on one event loop.

Store (SQLModel) → media plane (SRTP sockets) → focus service → SIP endpoint
listening on UDP+TCP (``sip.port``) and TLS (``sip.tls_port``) with the
certificate persisted in the data directory.  SIGINT/SIGTERM stop it cleanly:
every participant gets a BYE (bounded), media keys are wiped, sockets closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from focus.dialout import DialOutConfig, FocusDialOut
from focus.endpoint import SipEndpoint
from focus.events import FocusEventBus
from focus.homing import FocusHoming
from focus.keying import MikeyFocusKeying
from focus.kms.http import KmsHttpServer, shared_kms_state, start_embedded_kms
from focus.kms.keys import KEYS_FILE, KmsKeys, KmsKeysError
from focus.kms.store import KmsDatabaseKeys
from focus.mikey.constants import MikeyProtTypes
from focus.mikey.exchange import MikeyProfile
from focus.sdp.sdes import SDES_SUITES
from focus.service import FocusConfig, FocusService
from focus.sip.dialog import uri_address
from focus.sip.uri import SipUri
from focus.store import ConferenceStore
from mrf.chat import ChatRelay, start_chat_relay
from mrf.cluster.bus import ClusterBus
from mrf.cluster.node import start_cluster_node
from mrf.floor import FloorControl, start_floor_control
from mrf.rtp.conference import RtpMixerPool
from mrf.rtp.plane import MediaPlane
from mrf.rtp.speakers import RtpSpeakerConfig
from mrf.rtp.srtp import mki_supported
from mrf.settings import Settings
from mrf.tls import TlsError, certificate_fingerprint, ensure_certificate, server_ssl_context
from mrf.webserver import WebServer, start_web
from notify.mikey import NotifyMikeyExchange
from notify.service import NotifyService, notify_config

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Server:
    """Everything ``mrf serve`` runs, for tests and for the web layer later."""

    settings: Settings
    store: ConferenceStore
    media: MediaPlane
    focus: FocusService
    endpoint: SipEndpoint
    mixers: RtpMixerPool | None = None  # per-conference audio mixers (mrf.rtp.conference)
    web: WebServer | None = None  # the web UI and REST API (mrf.webserver)
    chat: ChatRelay | None = None  # the MSRP switch over TLS (mrf.chat)
    floor: FloorControl | None = None  # BFCP floor control over TLS (mrf.floor)
    notify: NotifyService | None = None  # conference event package (notify.service)
    kms: KmsHttpServer | None = None  # the embedded KMS (None with an external kms.url)
    homing: FocusHoming | None = None  # conference homes, with node.homes (docs/scaling.md)
    bus: ClusterBus | None = None  # LISTEN/NOTIFY between nodes (mrf.cluster.bus)
    # how to stop what start() started, last started first (contextlib.AsyncExitStack)
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)

    def listeners(self) -> dict[str, bool]:
        """Which listeners are up, for ``GET /api/health``."""
        up = {f"sip-{name}": state for name, state in self.endpoint.listening().items()}
        up["media"] = not self.media.closed
        up["web"] = self.web is not None and self.web.up
        return up

    async def close(self) -> None:
        """Stop everything, in the reverse order of :func:`start` (idempotent)."""
        await self.resources.aclose()


async def start(settings: Settings) -> Server:
    """Check the certificate, open the store, bind every listener.

    Raises ``OSError`` if a port is taken or the certificate pair is unusable.
    Every resource is pushed on one :class:`contextlib.AsyncExitStack` as it is
    made, so a start that fails part way closes exactly what it had opened, and
    :meth:`Server.close` runs the same stack.  The pushes are ordered so that
    the stack unwinds as the server stops: web, KMS, dial-outs, the notifier's
    final NOTIFYs, BYE to every participant, chat, floor control, mixers, SIP
    sockets, media, store.
    """
    for listener in settings.non_loopback_listeners():
        logger.warning("listening beyond loopback: %s (explicit setting)", listener)
    try:  # checked before the database is touched; a bad pair stops the start
        cert, key = ensure_certificate(settings.data_dir)
    except TlsError as exc:
        raise OSError(f"TLS certificate: {exc}") from exc
    tls_context = server_ssl_context(cert, key, keylog_filename=settings.tls.keylog_file)
    async with AsyncExitStack() as stack:
        store = ConferenceStore(settings.database_url)
        stack.callback(store.close)
        store.create_all()
        low, high = settings.media.rtp_ports
        media = MediaPlane(
            settings.media.host, (low, high), max_streams=(high - low + 1) // 2,
            srtp_keylog_file=settings.tls.srtp_keylog_file,
        )  # fmt: skip
        if settings.tls.srtp_keylog_file is not None:
            logger.warning(
                "DTLS-SRTP key log enabled: %s (debugging only)", settings.tls.srtp_keylog_file
            )
        stack.push_async_callback(_close_media, media)
        config = FocusConfig(
            domain=settings.sip.domain,
            trusted_proxies=frozenset(settings.sip.trusted_proxies),
            mki_suites=frozenset(name for name in SDES_SUITES if mki_supported(name)),
            sdes_requires_tls=settings.sip.sdes_needs_protection,
        )
        events = FocusEventBus()  # participants joining, changing, leaving: one explicit bus
        focus = FocusService(store, media, config, events=events)
        endpoint = SipEndpoint(focus, max_message_size=settings.sip.max_message_size)
        focus.attach(endpoint)
        stack.push_async_callback(endpoint.close)
        speakers = RtpSpeakerConfig(max_speakers=settings.mixer.max_speakers)
        mixers = RtpMixerPool(focus, speakers=speakers)  # joins, hold/mute, leaves drive them
        stack.callback(mixers.close)
        proxy = settings.sip.outbound_proxy
        dialout = FocusDialOut(  # registers itself: focus.dialout, REFER handling
            focus,
            DialOutConfig(
                ring_timeout=settings.sip.ring_timeout,
                outbound_proxy=uri_address(SipUri.parse(proxy)) if proxy else None,
            ),
        )
        notify = NotifyService(focus, notify_config(settings.notify))  # SUBSCRIBE/NOTIFY
        notify.start()  # before floor control: it hears the focus's events first, as before
        floor = await start_floor_control(
            settings.media.host, settings.bfcp.port, cert, key,
            keylog_filename=settings.tls.keylog_file, floors=settings.bfcp.floors,
        )  # fmt: skip
        stack.push_async_callback(floor.close_all)
        focus.chat = chat = await start_chat_relay(
            settings.media.host, settings.msrp.port, cert, key,
            keylog_filename=settings.tls.keylog_file,
        )  # fmt: skip
        stack.push_async_callback(chat.close_all)
        floor.attach(focus)  # BFCP lines in answers; release on ParticipantLeft
        notify.watch_floor(floor)  # floor grants and queues in conference-info
        mixers.watch_floor(floor)  # a floor holder is always among the mixed speakers
        stack.push_async_callback(focus.shutdown, endpoint)  # BYE to everyone first
        stack.push_async_callback(notify.close, 2.0)
        stack.push_async_callback(dialout.close)
        logger.info("TLS certificate %s (%s)", cert, certificate_fingerprint(cert.read_bytes()))
        logger.info(
            "media plane %s ports %d-%d; conference URIs sip:<name>@%s",
            settings.media.host, *settings.media.rtp_ports, settings.sip.domain,
        )  # fmt: skip
        server = Server(
            settings, store, media, focus, endpoint, mixers=mixers, notify=notify, chat=chat,
            floor=floor,
        )  # fmt: skip
        if settings.kms.serves_embedded:  # by default an external KMS URL disables it
            kms_identity = f"sip:kms@{settings.sip.domain}".encode()
            try:
                server.kms = await start_embedded_kms(
                    settings.kms.url, settings.data_dir, identity=kms_identity,
                    database_url=settings.kms.database_url,
                )  # fmt: skip
            except (OSError, KmsKeysError) as exc:
                raise OSError(f"embedded KMS: {exc}") from exc
            stack.push_async_callback(server.kms.close)
        try:
            focus.mikey = mikey_responder(settings)
        except KmsKeysError as exc:
            raise OSError(str(exc)) from exc
        notify.key_exchange = NotifyMikeyExchange(  # MIKEY-TICKET in SUBSCRIBE (docs/notify.md)
            focus.mikey.kms_url, focus.mikey.credentials, focus.mikey.profile
        )

        async def close_cluster() -> None:  # whatever start_cluster_node got to start
            if server.bus is not None:
                await server.bus.close()
            if server.homing is not None:
                await server.homing.close()

        stack.push_async_callback(close_cluster)
        await start_cluster_node(server)  # node.homes: homes, shared MIKEY replay cache, bus
        server.web = await start_web(settings, server)
        stack.push_async_callback(server.web.close)
        # SIP last: a call that arrives during the start gets the whole service
        # (chat, floor control, MIKEY), never an answer missing what is not wired yet
        sip = settings.sip
        for address in (
            await endpoint.listen_udp(sip.host, sip.port),
            await endpoint.listen_tcp(sip.host, sip.port),
            await endpoint.listen_tls(sip.host, sip.tls_port, tls_context),
        ):
            logger.info("SIP listening on %s %s:%d", address.transport, address.host, address.port)
        server.resources = stack.pop_all()  # started: the server owns them now
    return server


async def _close_media(media: MediaPlane) -> None:
    media.close()
    await media.wait_closed()


def mikey_responder(settings: Settings) -> MikeyFocusKeying:
    """The focus's MIKEY-TICKET Responder (``focus.keying``).

    Its KMS identity per conference is the conference URI (TS 23.333 §6.2.19:
    identities from the To/From URIs); the keys are in the KMS keys file of
    the data directory.  With the embedded KMS a conference URI is enrolled on
    its first MIKEY call; with an external KMS, enrol it there and here
    (``mrf kms enroll sip:<name>@<domain>``) with the same key.
    """
    path = settings.data_dir / KEYS_FILE
    embedded = settings.kms.serves_embedded
    opened: list[KmsKeys | KmsDatabaseKeys] = []

    def credentials(identity: bytes) -> bytes | None:
        if not opened:  # on first use: without MIKEY calls the focus holds no KMS keys
            if not embedded and not path.exists():
                return None
            try:
                opened.append(
                    shared_kms_state(settings.kms.database_url, 0.0)[0]
                    if settings.kms.database_url else KmsKeys(path)
                )  # fmt: skip
            except KmsKeysError as exc:
                logger.error("MIKEY-TICKET unavailable: %s", exc)
                return None
        keys = opened[0]
        try:
            key = keys.user_key(identity)
            if key is None and embedded and isinstance(keys, KmsDatabaseKeys):
                key = keys.enroll_once(identity.decode("utf-8"))  # another node may race us
                logger.info("KMS: enrolled the conference identity %s", identity.decode())
            elif key is None and embedded:
                key = keys.enroll(identity.decode("utf-8"))
                logger.info("KMS: enrolled the conference identity %s", identity.decode())
        except (KmsKeysError, OSError) as exc:
            logger.error("MIKEY-TICKET unavailable: %s", exc)
            return None
        return key

    mikey = settings.mikey
    prot_types = MikeyProtTypes(
        mikey.prot_type_tls, mikey.prot_type_psk_smime, mikey.prot_type_application
    )
    return MikeyFocusKeying(settings.kms.url, credentials, MikeyProfile(prot_types=prot_types))


def tune_gc() -> None:
    """Keep the cyclic garbage collector from walking what lives as long as the process.

    Under load (bench/soak.py: 100 calls/s, 200 mixed participants) the server
    spent 13.5% of its time in ``gc_collect_main``: every full collection
    walked every object loaded at start-up (modules, classes, codec tables,
    the ORM's metadata) and stalled the event loop for up to a second.
    :func:`gc.freeze` moves them to the permanent generation; the thresholds
    stay Python's own (raising them let cyclic garbage pile up between
    collections: RSS kept creeping, +1.3 MiB/min over a 10-minute soak).
    """
    gc.collect()
    gc.freeze()


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
    tune_gc()  # the whole process is the server (not in serve(): tests run that in pytest)
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    return 0
