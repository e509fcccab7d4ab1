"""The MSRP switch of the focus (RFC 7701) over TLS with SDP fingerprints.

:class:`ChatRelay` implements :class:`focus.call.ChatService`: when a call with
an accepted ``m=message`` is answered, :meth:`ChatRelay.open` creates its chat
session (a fresh, unguessable session-id in our ``a=path``) and the focus
writes our fingerprint into the answer; :meth:`ChatRelay.close` tears it down
when the participant leaves.  One TLS listener (``msrp.port``) serves every
session (RFC 4975 §6: sessions are told apart by To-Path):

1. the TLS handshake (:mod:`mrf.stream_service`) is accepted only when the
   client's certificate matches the SDP ``a=fingerprint`` of a session that is
   waiting for its connection; otherwise the connection is closed before any
   MSRP byte is read;
2. the first request binds the session (To-Path names it, From-Path must end
   with the participant's ``a=path`` URI, the certificate must match *that*
   session's fingerprints: else 403; unknown session 481, already bound 506);
3. a whole message (``message/cpim`` only, RFC 7701 §5.2; 415 otherwise) is
   re-wrapped in CPIM with the sender's identity from admission and sent to
   every other participant, or to the CPIM ``To`` recipient for a private
   message (404 if none); large messages stream from a spooled file, chunk by
   chunk.  A recipient that refuses or never answers (30 s) makes the sender
   get a failure REPORT: nothing accepted with 200 is dropped silently.
4. NICKNAME (RFC 7701 §7.1): 200, or 425 when taken in the conference.

When the offer is ``a=setup:passive`` the focus connects (TLS client) to the
participant, at the c=/m= address under CEMA (RFC 6714).

**TLS-PSK sessions** (MIKEY-TICKET, TS 33.328 Annex H; ``plan.psk`` set): the
PSK identity is empty (decision (d)), so one shared listener could not tell
whose key to use.  Each such session gets its own listener on an ephemeral
port of ``media.host`` (in its ``a=path`` and ``m=`` port), served by
:class:`mrf.stream_service.SecureStreamService` with that session's TEK; the
session binds only to a connection that completed the handshake with its key.

Sockets, TLS and timers are the shared secure-stream layer's
(:mod:`mrf.stream_service`, :mod:`mrf.stream`): this module brings only the
MSRP core per connection and the switch that handles its events.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import functools
import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from focus.call import FocusCall
from focus.sdp.attributes import SdpFingerprint, fingerprints_match
from focus.sdp.msrp import SdpMsrpLocal, SdpMsrpPolicy
from focus.sdp.offer_answer import SdpStreamPlan
from focus.sip.message import SipError
from focus.sip.uri import SipUri
from mrf.connection_cap import SourceCap
from mrf.msrp.connection import MsrpConfig, MsrpConnection
from mrf.msrp.cpim import CPIM_TYPE, CpimMessage
from mrf.msrp.errors import MsrpError
from mrf.msrp.events import (
    MsrpConnectionFailed,
    MsrpDeliveryFailed,
    MsrpEvent,
    MsrpMessageReceived,
    MsrpNicknameRequested,
)
from mrf.msrp.message import MsrpByteRange, new_ident
from mrf.msrp.reassembly import MsrpReassembly
from mrf.msrp.uri import MsrpUri, parse_path
from mrf.stream import StreamDriver
from mrf.stream_service import SecureStreamService
from mrf.tls import certificate_der

logger = logging.getLogger(__name__)

__all__ = ["ChatRelay", "SpooledStorage"]


class SpooledStorage:
    """Reassembly storage: memory up to ``max_memory`` bytes, then a temporary file."""

    def __init__(self, max_memory: int = 256 * 1024) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=max_memory)  # noqa: SIM115

    def write_at(self, offset: int, data: bytes) -> None:
        self._file.seek(offset)
        self._file.write(data)

    def read_at(self, offset: int, size: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()


@dataclass(slots=True)
class ChatSession:
    """One participant's chat session at the focus."""

    call_id: str
    conference: str
    conference_uri: str
    identity: str
    local: MsrpUri
    remote_path: tuple[MsrpUri, ...]
    fingerprints: tuple[SdpFingerprint, ...]
    link: ChatLink | None = None
    nickname: str | None = None
    psk_port: int = 0  # this session's own TLS-PSK listener (0: the shared one)
    websocket: bool = False  # MSRP over WebSocket (RFC 7977): bound by the web session

    def certificate_matches(self, der: bytes) -> bool:
        return fingerprints_match(der, self.fingerprints)


@dataclass(frozen=True, slots=True)
class _Relayed:
    """The ``context`` of each relayed copy: whom a failure REPORT goes to (§7.1.2)."""

    origin: ChatSession
    message_id: str
    size: int


class ChatLink:
    """One connection carrying MSRP: an MsrpConnection run by a :class:`StreamDriver`."""

    def __init__(
        self,
        relay: ChatRelay,
        psk_session: ChatSession | None = None,
        *,
        websocket_identity: str | None = None,
    ) -> None:
        self.relay = relay
        self.psk_session = psk_session  # a TLS-PSK link serves this session only
        # a /msrp WebSocket link (RFC 7977) serves the sessions of its web session's identity
        self.websocket_identity = websocket_identity
        self.msrp = MsrpConnection(relay.msrp_config, self._resolve, SpooledStorage)
        self.driver: StreamDriver[MsrpEvent] = StreamDriver(self.msrp, self)
        self.sessions: set[str] = set()

    def _resolve(self, local: MsrpUri, from_path: tuple[MsrpUri, ...]) -> int:
        session = self.relay.sessions.get(local.session_id or "")
        if session is None or session.local != local:
            return 481
        if session.link is not None and session.link is not self:
            return 506
        if self.websocket_identity is not None or session.websocket:
            # RFC 7977 §5: the web session's identity authenticates the connection,
            # the a=path of the call's offer picks the session
            if (
                not session.websocket
                or self.websocket_identity is None
                or _aor(self.websocket_identity) != _aor(session.identity)
                or from_path[-1] != session.remote_path[-1]
            ):
                return 403
            return self._bind(session)
        if self.psk_session is not None or session.psk_port:
            if session is not self.psk_session or from_path[-1] != session.remote_path[-1]:
                return 403
            return self._bind(session)
        channel = self.driver.channel
        der = channel.peer_certificate if channel else None
        if (
            not der
            or not session.certificate_matches(der)
            or from_path[-1] != session.remote_path[-1]
        ):
            return 403
        return self._bind(session)

    def _bind(self, session: ChatSession) -> int:
        session.link = self
        self.sessions.add(session.local.session_id or "")
        return 200

    # -- StreamHandler ---------------------------------------------------------------

    def stream_open(self, driver: StreamDriver[MsrpEvent]) -> None:
        channel = driver.channel
        assert channel is not None
        if self.websocket_identity is not None:
            logger.info("MSRP WebSocket from %s for %s", channel.peer_address,
                        self.websocket_identity)  # fmt: skip
            return
        logger.info(
            "MSRP TLS from %s: %s %s", channel.peer_address, channel.version, channel.cipher
        )

    def stream_events(self, driver: StreamDriver[MsrpEvent]) -> None:
        self.relay.pump(self)

    def stream_closed(self, driver: StreamDriver[MsrpEvent], reason: str | None) -> None:
        for session_id in self.sessions:
            session = self.relay.sessions.get(session_id)
            if session is not None and session.link is self:
                session.link = None
        # partial incoming messages are dropped; copies still waiting for their 200
        # fail now, so their senders get a failure REPORT (RFC 4975 §7.1.2)
        self.msrp.connection_lost()
        self.relay.pump(self)

    def flush(self) -> None:
        """Everything queued on this connection in one TLS write; re-arm the timer if moved."""
        self.driver.flush()

    def close(self) -> None:
        self.driver.close()


@dataclass(slots=True)
class ChatRelay:
    """The focus's MSRP listener and switch (:class:`focus.call.ChatService`)."""

    host: str
    cert: Path
    key: Path
    fingerprint: SdpFingerprint
    policy: SdpMsrpPolicy = field(default_factory=SdpMsrpPolicy)
    keylog_filename: Path | None = None
    port: int = 0
    sessions: dict[str, ChatSession] = field(default_factory=dict)
    msrp_config: MsrpConfig = field(default_factory=MsrpConfig)
    source_cap: SourceCap = field(default_factory=SourceCap)  # connections per address
    streams: SecureStreamService | None = None  # sockets and TLS: made by listen()
    _rooms: dict[str, list[ChatSession]] = field(default_factory=dict)  # by conference
    _offered: dict[str, str] = field(default_factory=dict)  # dial-out: call ID -> session ID
    _history: dict[str, collections.deque[dict[str, object]]] = field(default_factory=dict)
    _chat_listeners: list[Callable[[str], None]] = field(default_factory=list)

    # -- the web control room: the room's recent messages, and posting as the conference --

    def on_chat(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(conference)`` after a message was relayed or posted."""
        self._chat_listeners.append(listener)
        return lambda: self._chat_listeners.remove(listener)

    def history(self, conference: str) -> list[dict[str, object]]:
        """The last :data:`CHAT_HISTORY` messages of ``conference``, oldest first:
        ``from``, ``nickname``, ``to``, ``text``, ``private``, ``at``.  A private message
        is listed (who to whom) without its text: the switch relays it, nobody else reads it."""
        return [dict(m) for m in self._history.get(conference, ())]

    def _remember(
        self, conference: str, sender: str, nickname: str | None, target: str,
        text: str | None, private: bool,
    ) -> None:  # fmt: skip
        kept = self._history.setdefault(conference, collections.deque(maxlen=CHAT_HISTORY))
        while len(self._history) > CHAT_HISTORY_ROOMS:
            self._history.pop(next(iter(self._history)))
        kept.append({"from": sender, "nickname": nickname, "to": target,
                     "text": None if private else text, "private": private,
                     "at": _now_stamp()})  # fmt: skip
        for listener in list(self._chat_listeners):
            listener(conference)

    def post(self, conference: str, conference_uri: str, text: str) -> int:
        """Send ``text`` to everyone in ``conference``'s chat as the conference itself
        (CPIM ``From: <conference URI>``, RFC 7701 §6); how many it was sent to."""
        body = text.encode("utf-8")
        prefix = CpimMessage(
            [("From", f"<{conference_uri}>"), ("To", f"<{conference_uri}>"),
             ("DateTime", _now_stamp())],
            [("Content-Type", "text/plain;charset=utf-8")],
        ).head()  # fmt: skip
        whole = prefix + body
        if not body or len(body) > MAX_POST_SIZE or len(whole) > self.msrp_config.chunk_size:
            raise ValueError(f"a posted message has 1 to {MAX_POST_SIZE} bytes")
        now = asyncio.get_running_loop().time()
        sent = 0
        for session in self._rooms.get(conference, ()):
            if session.link is None:
                continue
            try:
                session.link.msrp.send_single(session.local, CPIM_TYPE, whole, now)
            except MsrpError as exc:  # this participant's connection is backed up
                logger.info("chat post to %s not sent: %s", session.identity, exc)
                continue
            session.link.flush()
            sent += 1
        self._remember(conference, conference_uri, None, conference_uri, text, False)
        return sent

    def nicknames(self, conference: str) -> dict[str, str]:
        """Call-ID → the nickname (RFC 7701 §7) its chat session holds in ``conference``."""
        return {s.call_id: s.nickname for s in self._rooms.get(conference, ()) if s.nickname}

    async def listen(self, port: int) -> int:
        """Start the TLS listener; returns the bound port."""
        self.msrp_config = MsrpConfig(
            max_message_size=self.policy.max_size, accept_types=(CPIM_TYPE,),
            delivered_events=False,  # the relay only acts on failures (their context)
        )  # fmt: skip
        self.streams = streams = SecureStreamService.with_certificate(
            "MSRP", self.host, self.cert, self.key, source_cap=self.source_cap,
            keylog_filename=self.keylog_filename,
        )  # fmt: skip
        self.port = await streams.listen(port, lambda: ChatLink(self).driver, self._any_waiting)
        return self.port

    def _any_waiting(self, der: bytes) -> bool:
        """Before any MSRP byte: the certificate must belong to a session of ours."""
        return any(s.certificate_matches(der) for s in self.sessions.values() if s.link is None)

    async def close_all(self) -> None:
        for session in list(self.sessions.values()):
            self._drop(session)
        if self.streams is not None:
            await self.streams.close()

    # -- ChatService ------------------------------------------------------------

    def offer(self, call: FocusCall) -> SdpMsrpLocal:
        """Our side of a dial-out's chat before the answer (the offer carries our path,
        RFC 4975 §8.2); :meth:`open` with the answer's plan keeps this session ID."""
        session_id = secrets.token_urlsafe(18)
        self._offered[call.call_id] = session_id
        return SdpMsrpLocal(self.host, self.port, session_id, self.fingerprint)

    def open(self, call: FocusCall, plan: SdpStreamPlan) -> SdpMsrpLocal:
        assert plan.msrp is not None
        existing = next((s for s in self.sessions.values() if s.call_id == call.call_id), None)
        if existing is not None:  # re-INVITE: same session, new fingerprints
            existing.fingerprints = plan.msrp.remote_fingerprints
            return self._local(existing)
        assert self.streams is not None, "listen() first"
        session_id = self._offered.pop(call.call_id, None) or secrets.token_urlsafe(18)
        scheme = "msrps" if plan.msrp.secure else "msrp"
        transport = "ws" if plan.msrp.websocket else "tcp"
        session = ChatSession(
            call.call_id, call.conference.name, call.conference_uri, call.participant,
            MsrpUri(scheme, self.host, self.port, session_id, transport),
            parse_path(" ".join(plan.msrp.remote_path)), plan.msrp.remote_fingerprints,
            websocket=plan.msrp.websocket,
        )  # fmt: skip
        if plan.psk is not None and not plan.msrp.we_connect and not plan.msrp.websocket:
            # our own listener for this session (the answer goes out before anyone connects)
            session.psk_port = self.streams.listen_psk(
                session_id, plan.psk, lambda: ChatLink(self, session).driver
            )
            session.local = MsrpUri(scheme, self.host, session.psk_port, session_id)
        self.sessions[session_id] = session
        self._rooms.setdefault(session.conference, []).append(session)
        if plan.msrp.we_connect:
            self.streams.spawn(self._connect(session, plan))
        return self._local(session)

    def _local(self, session: ChatSession) -> SdpMsrpLocal:
        session_id = session.local.session_id or ""
        port = session.local.port or self.port
        secure = session.local.scheme == "msrps"
        return SdpMsrpLocal(self.host, port, session_id, self.fingerprint, secure,
                            session.local.transport)  # fmt: skip

    def websocket_link(self, identity: str) -> ChatLink:
        """A link for one ``/msrp`` WebSocket (RFC 7977) of a web session admitted as
        ``identity``: it binds only that identity's WebSocket sessions, by their a=path."""
        return ChatLink(self, websocket_identity=identity)

    def close(self, call: FocusCall) -> None:
        self._offered.pop(call.call_id, None)
        for session in [s for s in self.sessions.values() if s.call_id == call.call_id]:
            self._drop(session)

    def _drop(self, session: ChatSession) -> None:
        if self.sessions.pop(session.local.session_id or "", None) is session:
            room = self._rooms.get(session.conference, [])
            if session in room:
                room.remove(session)
            if not room:
                self._rooms.pop(session.conference, None)
        if session.psk_port and self.streams is not None:
            self.streams.close_psk(session.local.session_id or "")
        link = session.link
        session.link = None
        if link is not None:
            link.sessions.discard(session.local.session_id or "")
            if not link.sessions:
                link.close()

    async def _connect(self, session: ChatSession, plan: SdpStreamPlan) -> None:
        """a=setup:active on our side: TLS client to the participant (CEMA address)."""
        assert plan.msrp is not None and self.streams is not None
        link = ChatLink(self, session if plan.psk is not None else None)
        where = plan.msrp.connect_host, plan.msrp.connect_port
        channel = await self.streams.connect(
            *where, link.driver, verifier=session.certificate_matches, psk=plan.psk
        )
        if channel is None:
            logger.info("MSRP connect to %s failed", session.identity)
            return
        session.link = link
        link.sessions.add(session.local.session_id or "")
        link.msrp.bind(session.local, session.remote_path)
        link.msrp.send_bind(session.local, asyncio.get_running_loop().time())
        link.flush()

    # -- the switch -------------------------------------------------------------

    def pump(self, link: ChatLink) -> None:
        """Handle the events of ``link``'s MSRP connection, then flush every link."""
        touched = {link}
        for event in link.driver.events():
            if isinstance(event, MsrpMessageReceived):
                touched |= self._on_message(event)
            elif isinstance(event, MsrpNicknameRequested):
                self._on_nickname(link, event)
            elif isinstance(event, MsrpDeliveryFailed):
                touched |= self._on_failed(event)
            elif isinstance(event, MsrpConnectionFailed):
                link.flush()
                link.close()
        for each in touched:
            each.flush()

    def _on_message(self, event: MsrpMessageReceived) -> set[ChatLink]:
        sender = self.sessions.get(event.local.session_id or "")
        try:
            if sender is None:
                return set()
            head, offset = CpimMessage.parse_head(event.reassembly.read(0, 16384))
            return self._relay(sender, event, head, offset)
        except MsrpError as exc:
            status = getattr(exc, "status", 400)
            return self._report(sender, event.message_id, event.size, status)
        finally:
            event.reassembly.close()

    def _relay(
        self, sender: ChatSession, event: MsrpMessageReceived, head: CpimMessage, offset: int
    ) -> set[ChatLink]:
        targets = head.all("To")
        if len(targets) > 1:
            return self._report(sender, event.message_id, event.size, 403)
        claimed = head.sender
        if claimed and _aor(claimed) != _aor(sender.identity):
            return self._report(sender, event.message_id, event.size, 403)
        room = self._rooms.get(sender.conference, ())
        target = _uri_of(targets[0]) if targets else sender.conference_uri
        private = _aor(target) != _aor(sender.conference_uri)
        target = target if private else sender.conference_uri
        recipients = [
            s for s in room if s is not sender and (not private or _aor(s.identity) == _aor(target))
        ]
        if private and not recipients:
            return self._report(sender, event.message_id, event.size, 404)
        self._remember(sender.conference, sender.identity, sender.nickname, target,
                       _text_of(head, event, offset), private)  # fmt: skip
        # the CPIM wrapper (RFC 7701 §6) is the same for every recipient: built once
        display = f'"{sender.nickname}" ' if sender.nickname else ""
        stamp = head.header("DateTime") or _now_stamp()
        prefix = CpimMessage(
            [("From", f"{display}<{sender.identity}>"), ("To", f"<{target}>"),
             ("DateTime", stamp)],
            head.content_headers,
        ).head()  # fmt: skip
        total = len(prefix) + event.size - offset
        step = self.msrp_config.chunk_size
        # a message that fits one chunk: its whole wrapped body, shared by every copy
        whole = prefix + event.reassembly.read(offset, total) if total <= step else None
        context = _Relayed(sender, event.message_id, event.size)
        now = asyncio.get_running_loop().time()
        touched: set[ChatLink] = set()
        for recipient in recipients:
            link = recipient.link
            if link is None:
                touched |= self._report(sender, event.message_id, event.size, 408)
                continue
            if whole is not None:
                link.msrp.send_single(recipient.local, CPIM_TYPE, whole, now, context=context)
            else:
                self._send_chunks(link, recipient, prefix, event, offset, total, now, context)
            touched.add(link)
        return touched

    def _send_chunks(
        self,
        link: ChatLink,
        recipient: ChatSession,
        prefix: bytes,
        event: MsrpMessageReceived,
        offset: int,
        total: int,
        now: float,
        context: _Relayed,
    ) -> None:
        """A large message, chunk by chunk, read lazily from its (spooled) storage."""
        message_id = new_ident()
        step = self.msrp_config.chunk_size
        position = 0
        while position < total or position == 0:
            data = _slice(prefix, event.reassembly, offset, position, step)
            link.msrp.send_chunk(
                recipient.local, message_id, CPIM_TYPE, position + 1, data, total, now,
                last=position + len(data) >= total, context=context,
            )  # fmt: skip
            position += len(data)
            if not data:
                break

    def _on_failed(self, event: MsrpDeliveryFailed) -> set[ChatLink]:
        relayed = event.context
        if not isinstance(relayed, _Relayed):
            return set()
        logger.info("chat delivery failed %s: %d %s", event.local, event.status, event.reason)
        return self._report(relayed.origin, relayed.message_id, relayed.size, event.status)

    def _report(
        self, session: ChatSession | None, message_id: str, size: int, status: int
    ) -> set[ChatLink]:
        """A failure REPORT to the sender (RFC 4975 §7.1.2)."""
        if session is None or session.link is None:
            return set()
        byte_range = MsrpByteRange(1, size, size)
        session.link.msrp.send_report(session.local, message_id, status, byte_range)
        return {session.link}

    def _on_nickname(self, link: ChatLink, event: MsrpNicknameRequested) -> None:
        session = self.sessions.get(event.local.session_id or "")
        if session is None:
            link.msrp.respond(event.transaction_id, event.local, 481)
            return
        wanted = event.nickname.casefold()
        taken = any(
            s.nickname is not None and s.nickname.casefold() == wanted
            and s.identity != session.identity and s.conference == session.conference
            for s in self.sessions.values()
        )  # fmt: skip
        if not taken:
            session.nickname = event.nickname
        link.msrp.respond(event.transaction_id, event.local, 425 if taken else 200)


def _slice(
    prefix: bytes, reassembly: MsrpReassembly, offset: int, position: int, step: int
) -> bytes:
    """Bytes ``position..position+step`` of ``prefix + content`` (content read lazily)."""
    if position < len(prefix):
        data = prefix[position : position + step]
        more = step - len(data)
        return data + (reassembly.read(offset, more) if more > 0 else b"")
    return reassembly.read(offset + position - len(prefix), step)


CHAT_HISTORY = 50  # messages kept per conference for the web page
CHAT_HISTORY_ROOMS = 1000
MAX_POST_SIZE = 4096  # bytes of text the web may post (one MSRP chunk with its CPIM head)
MAX_SHOWN_TEXT = 2048  # bytes of a relayed message kept for the web page


def _text_of(head: CpimMessage, event: MsrpMessageReceived, offset: int) -> str | None:
    """The text of a ``text/plain`` message (cut at :data:`MAX_SHOWN_TEXT`), else None."""
    content_type = next((v for n, v in head.content_headers if n.lower() == "content-type"), "")
    if content_type.split(";")[0].strip().lower() != "text/plain":
        return None
    size = min(event.size - offset, MAX_SHOWN_TEXT)
    return event.reassembly.read(offset, size).decode("utf-8", "replace") if size > 0 else ""


_stamp: list[tuple[int, str]] = [(0, "")]


def _now_stamp() -> str:
    """CPIM ``DateTime`` (RFC 3862 §4.7, RFC 3339) to the second, formatted once a second."""
    second = int(time.time())
    if _stamp[0][0] != second:
        moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
        _stamp[0] = (second, moment.isoformat())
    return _stamp[0][1]


@functools.lru_cache(maxsize=4096)
def _aor(value: str) -> str:
    """Identity comparison: ``sip:user@host`` without port or parameters (memoized:
    every relayed message compares its sender's and recipients' identities)."""
    try:
        return SipUri.parse(_uri_of(value)).aor
    except SipError:
        return _uri_of(value)


def _uri_of(value: str) -> str:
    """``"Nick" <sip:a@b>`` → ``sip:a@b`` (CPIM From/To, RFC 3862 §3.3)."""
    start, end = value.find("<"), value.rfind(">")
    return value[start + 1 : end].strip() if 0 <= start < end else value.strip()


async def start_chat_relay(
    host: str, port: int, cert: Path, key: Path, *, keylog_filename: Path | None = None
) -> ChatRelay:
    """A listening :class:`ChatRelay` with our certificate's SHA-256 fingerprint."""
    der = certificate_der(cert.read_bytes())
    relay = ChatRelay(
        host, cert, key, SdpFingerprint.from_certificate(der), keylog_filename=keylog_filename
    )
    bound = await relay.listen(port)
    logger.info("MSRP over TLS listening on %s:%d", host, bound)
    return relay
