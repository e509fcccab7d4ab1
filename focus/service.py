"""The conference focus: dial-in admission, offer/answer, call life cycle.

The focus is the transaction user behind a :class:`~focus.endpoint.SipEndpoint`
(RFC 3261 §8.2, RFC 4579 §5 "focus").  For an INVITE to ``sip:<name>@<domain>``:

1. 404 when no conference has that name (a Request-URI user part that cannot be
   a conference name is never looked up: :func:`focus.conference.conference_name`);
2. the caller's identity (:func:`focus.policy.caller_identity`): P-Asserted-
   Identity from trusted proxies only, else From; 403 for anonymous callers
   unless the policy allows them, and for identities not on the authorized list
   (TS 33.328 G.3.1) — *before* any key is drawn;
3. offer/answer (:mod:`focus.sdp.offer_answer`): 488 when no offered audio
   stream is acceptable (e.g. plain RTP while the policy requires security);
4. per-participant, per-stream SRTP streams at the media plane, keyed with the
   offerer's SDES key and a fresh key of ours; 200 OK with the answer.

In-dialog requests (BYE, re-INVITE, UPDATE, and through :meth:`FocusService.check_in_dialog`
REFER and SUBSCRIBE refreshes) act only when they come over the flow the dialog
was made on, or from a trusted proxy on its route (:meth:`SipDialog.accepts_from`);
anything else gets 403 with a Warning and changes nothing.  The dialog ID alone
proves nothing: it crosses every proxy on the path.

Re-INVITE re-runs offer/answer on the same streams (hold, new keys: old keys are
wiped first), BYE ends the call and logs its ``media-summary`` lines, CANCEL
before the answer gets the INVITE a 487, OPTIONS is answered with capabilities.

A locked conference (policy ``locked``) refuses a new dial-in with 403 and the
Warning :data:`LOCKED_WARNING`; whoever is in stays, and the focus's own
dial-outs still go out.  The last admission refusals of each conference are
kept in memory for the web page (:meth:`FocusService.refusals`).

Every refusal goes out through :meth:`FocusService._reject` as a
:class:`focus.sip.refusal.SipRefusal`: each 403, 404 and 488 carries a
``Warning`` (RFC 3261 §20.43) naming what was unacceptable, never a key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from focus.call import CallState, ChatService, FloorService, FocusCall, MediaAllocator
from focus.conference import ConferenceInfo, StoreError, conference_name, normalize_aor
from focus.directory import ConferenceDirectoryCache
from focus.endpoint import SipEndpoint
from focus.events import (
    FocusEvent,
    FocusEventBus,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
)
from focus.homing import FocusHoming
from focus.keying import MikeyFocusKeying, MikeyRefused, offer_key_mgmt
from focus.policy import Admission, CallerIdentity, admit, caller_identity, session_identity
from focus.sdp.bfcp import SdpBfcpPolicy
from focus.sdp.msrp import SdpMsrpPolicy
from focus.sdp.offer_answer import (
    SUPPORTED_KEY_MODES,
    SdpAnswerPlan,
    SdpFocusPolicy,
    SdpMikeyKeys,
    build_answer,
    plan_answer,
)
from focus.sdp.session import SdpError, SdpRemoteError, SdpSession
from focus.sip.dialog import (
    AckTimedOut,
    SipDialog,
    SipDialogState,
    dialog_from_uas,
    incoming_dialog_id,
)
from focus.sip.message import (
    SipError,
    SipRemoteError,
    SipRequest,
    SipResponse,
    make_response,
    validate_request,
)
from focus.sip.refusal import EXPLAINED_STATUSES, SipRefusal, format_warning
from focus.sip.transaction import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    SipAddress,
    TransactionTimedOut,
)
from focus.websocket import WEBSOCKET_TRANSPORTS

if TYPE_CHECKING:  # focus.dialout imports this module
    from focus.dialout import FocusDialOut

logger = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
NOT_THE_FLOW = "in-dialog request not from the flow this dialog was made on"
LOCKED_WARNING = "the conference is locked: no new participants are admitted"
MAX_REFUSALS_KEPT = 20  # per conference, for the web page (FocusService.refusals)
MAX_REFUSAL_CONFERENCES = 1000
SUPPORTED_OPTIONS: frozenset[str] = frozenset()


type MethodHandler = Callable[[SipEndpoint, RequestReceived], Awaitable[None] | None]


class ConferenceDirectory(Protocol):
    """What the focus needs of the store: look a conference up by name."""

    def get_conference(self, name: str) -> ConferenceInfo | None: ...


@dataclass(frozen=True, slots=True)
class FocusConfig:
    """The focus's settings (from ``mrf.settings``)."""

    domain: str = "127.0.0.1"
    trusted_proxies: frozenset[str] = frozenset()
    max_calls: int = 2000
    bye_timeout: float = 5.0
    suites: tuple[str, ...] | None = None
    mki_suites: frozenset[str] | None = None  # where the media plane handles an MKI
    sdes_requires_tls: bool = False  # SDES keys only over SIP/TLS or from a trusted proxy


@dataclass(slots=True)
class FocusStats:
    invites: int = 0
    admitted: int = 0
    refused: dict[int, int] = field(default_factory=dict)


class FocusService:
    """Implements :class:`focus.endpoint.SipHandler` for the conference focus."""

    def __init__(
        self,
        store: ConferenceDirectory,
        media: MediaAllocator,
        config: FocusConfig,
        chat: ChatService | None = None,
        *,
        events: FocusEventBus | None = None,
    ) -> None:
        self.directory = (
            store
            if isinstance(store, ConferenceDirectoryCache)
            else ConferenceDirectoryCache(store)
        )
        self.media = media
        self.chat = chat  # the MSRP switch; None refuses m=message lines
        self.floor: FloorService | None = None  # BFCP floor control; None refuses BFCP lines
        self.config = config
        self.stats = FocusStats()
        self._calls: dict[tuple[str, str, str], FocusCall] = {}
        self._pending: dict[str, FocusCall] = {}  # INVITE server txn key -> call
        self.events = events or FocusEventBus()  # ParticipantJoined/Updated/Left go out here
        self._policy_listeners: list[Callable[[str, ConferenceInfo | None], None]] = []
        self.endpoint: SipEndpoint | None = None
        self._methods: dict[str, MethodHandler] = {}
        self.dialout: FocusDialOut | None = None  # when dial-out is enabled
        self.mikey: MikeyFocusKeying | None = None  # MIKEY-TICKET responder (focus.keying)
        self.homing: FocusHoming | None = None  # conference homes of a cluster (focus.homing)
        self.allow = ALLOW
        self._hangups: set[asyncio.Task[None]] = set()  # BYEs started by media failures
        self._refusals: dict[str, deque[dict[str, object]]] = {}  # by conference name

    def attach(self, endpoint: SipEndpoint) -> None:
        """The endpoint used for requests the focus originates (BYE on policy change)."""
        self.endpoint = endpoint

    # -- listeners and control (web, mixer, notifier) -------------------------------

    def subscribe(self, listener: Callable[[FocusEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every :mod:`focus.events` event; returns an unsubscriber
        (:meth:`FocusEventBus.subscribe` on :attr:`events`)."""
        return self.events.subscribe(listener)

    def on_policy_applied(
        self, listener: Callable[[str, ConferenceInfo | None], None]
    ) -> Callable[[], None]:
        """Call ``listener(name, info)`` from :meth:`apply_policy` (``info`` None: deleted).

        The conference event notifier drops subscriptions with it; returns an unsubscriber.
        """
        self._policy_listeners.append(listener)
        return lambda: self._policy_listeners.remove(listener)

    def _emit(self, event: FocusEvent) -> None:
        self.events.emit(event)

    def find_call(self, call_id: str) -> FocusCall | None:
        return next((c for c in self._calls.values() if c.call_id == call_id), None)

    def set_muted(self, call_id: str, muted: bool) -> bool:
        """Mute or unmute a participant (the mixer drops its audio); False if unknown."""
        call = self.find_call(call_id)
        if call is None:
            return False
        call.muted = muted
        self._emit(_updated(call))
        return True

    def note_dtmf(self, call_id: str, event: str, duration_ms: int) -> bool:
        """Record a telephone-event (RFC 4733) the mixer saw; live rosters refresh."""
        call = self.find_call(call_id)
        if call is None:
            return False
        call.note_dtmf(event, duration_ms)
        self._emit(_updated(call))
        return True

    def note_talking(self, call_id: str, streams: frozenset[int]) -> bool:
        """The mixer's active speakers changed: ``streams`` of this call are heard now."""
        call = self.find_call(call_id)
        if call is None:
            return False
        if call.talking_streams != streams:
            call.talking_streams = streams
            self._emit(_updated(call))
        return True

    def _media_failed(self, call: FocusCall, detail: str) -> None:
        """A stream's DTLS handshake failed (RFC 5763 §5): no keys, so hang up with BYE."""
        call.log.warning("[%s] DTLS handshake failed: %s", call.call_id, detail)
        if call.dialog is None:  # not answered yet: _answer_invite refuses with 487
            call.cancelled = True
            return
        if call.state is CallState.LEFT:
            return
        if self.endpoint is None:
            self._end(call, reason="DTLS handshake failed")
            return
        task = asyncio.get_running_loop().create_task(
            self._hang_up(self.endpoint, call, reason="DTLS handshake failed")
        )
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    def _note_refusal(self, conference: str, identity: CallerIdentity, decision: Admission) -> None:
        """Keep the refusal for :meth:`refusals` (the newest :data:`MAX_REFUSALS_KEPT`)."""
        kept = self._refusals.setdefault(conference, deque(maxlen=MAX_REFUSALS_KEPT))
        while len(self._refusals) > MAX_REFUSAL_CONFERENCES:
            self._refusals.pop(next(iter(self._refusals)))
        uri = identity.aor if identity.aor is not None else "anonymous"
        reason = decision.warning or decision.reason
        kept.appendleft({"uri": uri, "reason": reason, "status": decision.status,
                         "at": datetime.now(UTC).isoformat(timespec="seconds")})  # fmt: skip

    def refusals(self, conference: str) -> list[dict[str, object]]:
        """The last admission refusals of ``conference``, newest first: uri, reason, at."""
        return [dict(r) for r in self._refusals.get(conference, ())]

    async def hang_up(self, call_id: str, reason: str) -> bool:
        """BYE one participant (bounded wait) and drop its keys; False if unknown."""
        call = self.find_call(call_id)
        if call is None or self.endpoint is None:
            return False
        await self._hang_up(self.endpoint, call, reason=reason)
        return True

    async def apply_policy(self, conference: str) -> list[str]:
        """Re-read ``conference`` and disconnect whoever it no longer admits.

        Called after the authorized list or the policy changed (web, REST): a
        participant removed from the list, or an anonymous one when anonymity is
        no longer allowed, gets a BYE and its keys are dropped.  A deleted
        conference disconnects everyone.  Returns the participants disconnected.
        """
        self.directory.invalidate(conference)
        info = self.directory.get_conference(conference)
        for listener in list(self._policy_listeners):
            try:
                listener(conference, info)
            except Exception:
                logger.exception("policy listener %r failed on %s", listener, conference)
        gone: list[FocusCall] = []
        for call in [c for c in self._calls.values() if c.conference.name == conference]:
            if info is None:
                gone.append(call)
                continue
            decision = admit(
                call.identity, info.authorized(), allow_anonymous=info.policy.allow_anonymous
            )
            if decision.allowed:
                call.conference, call.role = info, decision.role or call.role
            else:
                gone.append(call)
        reason = "conference deleted" if info is None else "removed from the authorized list"
        if self.endpoint is not None:
            await asyncio.gather(*(self._hang_up(self.endpoint, c, reason=reason) for c in gone))
        else:
            for call in gone:
                self._end(call, reason=reason)
        return [c.participant for c in gone]

    # -- roster ------------------------------------------------------------------

    @property
    def calls(self) -> list[FocusCall]:
        return list(self._calls.values())

    def roster(self, conference: str) -> list[dict[str, object]]:
        """Participants of ``conference`` (by name) as roster entries: the live
        calls, then dial-outs in progress and recently failed ones."""
        calls = [c for c in self._calls.values() if c.conference.name == conference]
        entries = [c.roster_entry() for c in calls]
        if self.dialout is not None:
            entries += self.dialout.roster(conference)
        return entries

    def admit_call(self, call: FocusCall) -> None:
        """Register an answered call (dial-out) so in-dialog requests find it."""
        assert call.dialog is not None
        self._calls[call.dialog.id] = call
        self.stats.admitted += 1

    # -- SipHandler ----------------------------------------------------------------

    def register_method(self, method: str, handler: MethodHandler) -> None:
        """Hand every ``method`` request (in or out of dialog) to ``handler``.

        For services beside the focus on the same SIP endpoint (SUBSCRIBE for
        the conference event package, REFER, MESSAGE).  The handler answers
        through ``endpoint.respond``; ``Allow`` lists the method from then on.
        """
        self._methods[method.upper()] = handler
        self.allow = ", ".join([*ALLOW.split(", "), *sorted(self._methods)])

    async def handle_request(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        try:
            validate_request(request, supported=SUPPORTED_OPTIONS)
        except SipRemoteError as exc:  # RFC 3261 §8.2: refuse what we must not process
            self._refuse(endpoint, event, exc.status, exc.reason, exc.headers)
            return
        extension = self._methods.get(request.method)
        if extension is not None:
            result = extension(endpoint, event)
            if result is not None:
                await result
            return
        if request.to_addr.tag:
            await self._in_dialog(endpoint, event)
        elif request.method == "INVITE":
            await self._dial_in(endpoint, event)
        elif request.method == "OPTIONS":
            endpoint.respond(event.key, self._options(request))
        elif request.method == "BYE":
            self._refuse(endpoint, event, 481, "Call/Transaction Does Not Exist")
        else:
            self._refuse(endpoint, event, 405, "Method Not Allowed", [("Allow", self.allow)])

    def handle_ack(self, endpoint: SipEndpoint, event: AckReceived) -> None:
        call = self._calls.get(incoming_dialog_id(event.request))
        if call is None or call.acked or call.dialog is None:
            return
        if not call.dialog.accepts_from(event.source, self.config.trusted_proxies):
            call.log.info("[%s] ACK ignored: not from the dialog's flow", call.call_id)
            return
        call.log.debug("[%s] ACK received: media starts", call.call_id)
        call.start_sending()
        self._emit(
            ParticipantJoined(
                call.conference.name, call.call_id, call.participant, call.role, call.joined_by
            )
        )

    def handle_cancel(self, endpoint: SipEndpoint, event: CancelReceived) -> None:
        call = self._pending.get(event.invite_key)
        if call is None:
            return
        call.cancelled = True
        call.log.info("[%s] CANCEL from %s before the answer", call.call_id, call.participant)

    async def handle_timeout(
        self, endpoint: SipEndpoint, event: TransactionTimedOut | AckTimedOut
    ) -> None:
        if isinstance(event, AckTimedOut):
            call = self._calls.get(event.dialog.id)
            if call is not None:
                call.log.warning("[%s] no ACK for our 2xx: ending the call", call.call_id)
                await self._hang_up(endpoint, call, reason="no ACK")

    # -- dial-in -------------------------------------------------------------------

    async def _dial_in(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request, key = event.request, event.key
        self.stats.invites += 1
        refusal = self._check_request(request)
        if refusal is not None:
            self._reject(endpoint, event, refusal)
            return
        conference = self.lookup(request)
        if conference is None:
            self._reject(endpoint, event, no_conference(request.request_uri.user))
            return
        identity = self.identify(endpoint, event, conference.name)
        if isinstance(identity, SipRefusal):
            self._reject(endpoint, event, identity)
            return
        decision = admit(
            identity, conference.authorized(), allow_anonymous=conference.policy.allow_anonymous
        )
        if decision.allowed and conference.policy.locked:
            decision = Admission(403, "Conference Locked", warning=LOCKED_WARNING)
        if not decision.allowed:
            logger.info(
                "[%s] refused %s (%s) for %s: %d %s",
                request.call_id, identity, identity.source, conference.name,
                decision.status, decision.reason,
            )  # fmt: skip
            self._note_refusal(conference.name, identity, decision)
            self._refuse(endpoint, event, decision.status, decision.reason,
                         warning=decision.warning)  # fmt: skip
            return
        if self.homing is not None:  # several nodes: one conference runs on its home only
            elsewhere = self.homing.redirect(conference.name)
            if elsewhere is not None:
                self._reject(endpoint, event, elsewhere)
                return
        if len(self._calls) + len(self._pending) >= self.config.max_calls:
            self._refuse(endpoint, event, 503, "Service Unavailable", [("Retry-After", "5")])
            return
        conference_uri = conference.uri(self.config.domain)
        call = FocusCall(
            request.call_id, conference, conference_uri, identity, decision.role or "participant",
            event.source, key, acked=False,
        )  # fmt: skip
        call.on_media_failed = lambda detail: self._media_failed(call, detail)
        self._pending[key] = call
        try:
            await self._answer_invite(endpoint, event, call)
        finally:
            self._pending.pop(key, None)

    def identify(
        self, endpoint: SipEndpoint, event: RequestReceived, conference: str
    ) -> CallerIdentity | SipRefusal:
        """Who is asking to join ``conference`` (dial-in, SUBSCRIBE).

        Over SIP/WebSocket the flow's web-session identity, whatever From or
        P-Asserted-Identity say (an invite link's flow reaches its own
        conference only); otherwise :func:`focus.policy.caller_identity`.
        """
        source = event.source
        if source.transport not in WEBSOCKET_TRANSPORTS:
            return caller_identity(event.request, source.host, self.config.trusted_proxies)
        binding = endpoint.websocket_binding(source)
        if binding is None:
            return SipRefusal(403, "this WebSocket connection has no web session identity")
        if binding.conference is not None and binding.conference != conference:
            return SipRefusal(403, "an invite link admits to its own conference only")
        return session_identity(binding.identity)

    async def disconnect_flows(self, flows: Iterable[SipAddress], *, reason: str) -> int:
        """End every call made over one of ``flows`` (BYE over the flow), then close
        the WebSocket flows among them; how many calls ended (invite revoked)."""
        wanted = set(flows)
        calls = [c for c in self._calls.values() if c.dialog and c.dialog.flow in wanted]
        endpoint = self.endpoint
        if endpoint is not None:
            await asyncio.gather(*(self._hang_up(endpoint, c, reason=reason) for c in calls))
            for flow in endpoint.websocket_flows():
                if flow.remote in wanted:
                    endpoint.websocket_closed(flow)
        return len(calls)

    def _check_request(self, request: SipRequest) -> SipRefusal | None:
        unsupported = [
            tag for value in request.headers.get_all("Require")
            for tag in (t.strip() for t in value.split(",")) if tag and tag not in SUPPORTED_OPTIONS
        ]  # fmt: skip
        if unsupported:
            return SipRefusal(420, headers=(("Unsupported", ", ".join(unsupported)),))
        if request.method == "INVITE" and "Contact" not in request.headers:
            return SipRefusal(400, "an INVITE needs a Contact header", "Missing Contact")
        if not request.body:
            return SipRefusal(488, "an SDP offer in the INVITE is required")
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/sdp":
            return SipRefusal(415, headers=(("Accept", "application/sdp"),))
        return None

    def lookup(self, request: SipRequest) -> ConferenceInfo | None:
        """The conference the Request-URI names (``None``: unknown, or not a name)."""
        name = conference_name(request.request_uri.user)
        return self.directory.get_conference(name) if name is not None else None

    async def _answer_invite(
        self, endpoint: SipEndpoint, event: RequestReceived, call: FocusCall
    ) -> None:
        request = event.request
        try:
            call.mikey = await self._resolve_mikey(request, call)
            offer, plan = self._plan(event, call.conference, previous=None, mikey=call.mikey)
        except MikeyRefused as exc:
            self._refuse_mikey(endpoint, event, exc)
            return
        except SdpRemoteError as exc:
            call.wipe_keys()  # MIKEY keys resolved for an offer we refuse
            self._refuse_sdp(endpoint, event, exc)
            return
        try:
            await call.apply_plan(plan, self.media)
            self._open_chat(call, plan)
            self._open_floor(call, plan)
        except Exception as exc:  # media plane full or failing: refuse, keep serving
            self._close_chat(call)
            self._close_floor(call)
            call.release_media(self.media)
            plan.wipe()
            logger.warning("[%s] no media for %s: %s", call.call_id, call.participant, exc)
            self._refuse(endpoint, event, 503, "Service Unavailable", [("Retry-After", "2")])
            return
        if call.cancelled:
            call.release_media(self.media)
            self._refuse(endpoint, event, 487, "Request Terminated")
            return
        response = self._answer(endpoint, request, offer, call, plan, to_tag=secrets.token_hex(8))
        dialog = dialog_from_uas(
            request, response, transport=event.source.transport, flow=event.source
        )
        call.dialog = dialog
        self._calls[dialog.id] = call
        self.stats.admitted += 1
        endpoint.respond(event.key, response, dialog=dialog)
        suites = ",".join(s.crypto.suite for s in plan.accepted if s.crypto) or "none"
        call.log.info(
            "[%s] %s joined %s as %s via %s (identity from %s, srtp=%s)",
            call.call_id, call.participant, call.conference_uri, call.role,
            event.source.transport, call.identity.source, suites,
        )  # fmt: skip

    async def _resolve_mikey(self, request: SipRequest, call: FocusCall) -> SdpMikeyKeys | None:
        """MIKEY-TICKET keys of the offer (``focus.keying``) when the conference accepts them.

        Before planning: the KMS is asked here, and the initiator's KMS identity
        must be authorized before any key is derived.  A re-offer carrying the
        TRANSFER_INIT(s) already answered keeps the keys (no replay).
        """
        if self.mikey is None or not _accepts_mikey(call):
            return None
        try:
            offer = SdpSession.parse(request.body)
            transfers = tuple(offer_key_mgmt(offer))
        except SdpError:
            return None  # _plan answers the malformed offer
        if not transfers:
            return None
        if call.mikey is not None and call.mikey.transfer_inits == transfers:
            return call.mikey  # type: ignore[no-any-return]
        authorized = set(call.conference.authorized())
        keys = await self.mikey.resolve(
            offer, call.conference_uri, lambda uri: _aor(uri) in authorized, now=time.time()
        )
        keys.transfer_inits = transfers
        return keys

    def _refuse_mikey(
        self, endpoint: SipEndpoint, event: RequestReceived, exc: MikeyRefused
    ) -> None:
        logger.info(
            "[%s] MIKEY-TICKET refused: %d %s", event.request.call_id, exc.status, exc.detail
        )
        self._refuse(endpoint, event, exc.status, exc.reason, exc.headers, warning=exc.detail)

    def _plan(
        self,
        event: RequestReceived,
        conference: ConferenceInfo,
        previous: SdpAnswerPlan | None,
        mikey: SdpMikeyKeys | None = None,
    ) -> tuple[SdpSession, SdpAnswerPlan]:
        try:
            offer = SdpSession.parse(event.request.body)
        except SdpError as exc:
            raise SdpRemoteError(400, f"malformed SDP: {exc}") from exc
        modes = frozenset(conference.policy.key_modes) & SUPPORTED_KEY_MODES
        policy = SdpFocusPolicy(
            require_security=conference.policy.require_media_security,
            key_modes=modes,
            mki_suites=self.config.mki_suites,
            msrp=self._chat_policy(conference, event.source.transport),
            bfcp=self._floor_policy(conference),
            mikey=mikey,
            sdes_refused=self._sdes_refused(event),
            # WebRTC (RFC 8829 §5.1.1) requires rtcp-mux: agreed with browsers (SIP over
            # WebSocket); other flows keep the RTCP port pair their tested peers use
            accept_rtcp_mux=event.source.transport in WEBSOCKET_TRANSPORTS,
        )
        if self.config.suites:
            policy = dataclasses.replace(policy, suites=self.config.suites)
        return offer, plan_answer(offer, policy, previous)

    def _sdes_refused(self, event: RequestReceived) -> str | None:
        """Why SDES keys are refused in this offer: ``sdes_requires_tls`` and the offer
        came neither over TLS nor from a trusted proxy (TS 33.328 relies on signalling
        security for SDES: over plain UDP or TCP its keys are readable on the path)."""
        source = event.source
        if not self.config.sdes_requires_tls or source.transport == "tls":
            return None
        if source.host in self.config.trusted_proxies:
            return None
        return (
            f"SDES keys need SIP over TLS here, not {source.transport.upper()} "
            "(sip.sdes_requires_tls); use TLS, DTLS-SRTP or MIKEY-TICKET"
        )

    def _chat_policy(self, conference: ConferenceInfo, transport: str) -> SdpMsrpPolicy | None:
        """The conference's chat policy; MSRP over WebSocket (RFC 7977) for a call that
        came over SIP/WebSocket (its web session binds the ``/msrp`` connection too)."""
        if self.chat is None:
            return None
        secure = conference.policy.require_media_security
        fingerprint = "fingerprint" in conference.policy.key_modes
        return dataclasses.replace(
            self.chat.policy, require_security=secure, fingerprint=fingerprint,
            websocket=transport in WEBSOCKET_TRANSPORTS, websocket_plain=transport == "ws",
        )  # fmt: skip

    def _open_chat(self, call: FocusCall, plan: SdpAnswerPlan) -> None:
        """Set up (or keep) the MSRP session of each accepted m=message before the 200."""
        chats = [s for s in plan.accepted if s.msrp is not None]
        if self.chat is None or not chats:
            self._close_chat(call)
            return
        call.chat = {s.index: (self.chat.open(call, s), self.chat.policy) for s in chats}

    def _floor_policy(self, conference: ConferenceInfo) -> SdpBfcpPolicy | None:
        if self.floor is None:
            return None
        secure = conference.policy.require_media_security
        fingerprint = "fingerprint" in conference.policy.key_modes
        return dataclasses.replace(
            self.floor.policy, require_security=secure, fingerprint=fingerprint
        )

    def _open_floor(self, call: FocusCall, plan: SdpAnswerPlan) -> None:
        """Register the participant with floor control (its BFCP user ID) before the 200."""
        floors = [s for s in plan.accepted if s.bfcp is not None]
        if self.floor is None or not floors:
            self._close_floor(call)
            return
        call.floor = {s.index: self.floor.open(call, s) for s in floors}

    def _close_floor(self, call: FocusCall) -> None:
        if self.floor is not None and call.floor:
            self.floor.close(call)
        call.floor = {}

    def _close_chat(self, call: FocusCall) -> None:
        if self.chat is not None and call.chat:
            self.chat.close(call)
        call.chat = {}

    def _answer(
        self,
        endpoint: SipEndpoint,
        request: SipRequest,
        offer: SdpSession,
        call: FocusCall,
        plan: SdpAnswerPlan,
        *,
        to_tag: str | None,
    ) -> SipResponse:
        ports = {index: stream.rtp_port for index, stream in call.streams.items()}
        answer = build_answer(
            offer, plan, local_host=self.media.host, ports=ports,
            session_id=call.session_id, session_version=call.session_version,
            msrp_local=call.chat, bfcp_local=call.floor, mikey=call.mikey,
            dtls_fingerprint=self._dtls_fingerprint(plan),
        )  # fmt: skip
        call.session_version += 1
        return make_response(
            request, 200, "OK", to_tag=to_tag,
            headers=self._contact_headers(endpoint, request, call),
            body=str(answer).encode("utf-8"), content_type="application/sdp",
        )  # fmt: skip

    def _dtls_fingerprint(self, plan: SdpAnswerPlan) -> Any:
        """The media plane's DTLS certificate fingerprint when a stream is DTLS-keyed."""
        if not any(s.dtls is not None for s in plan.accepted):
            return None
        return getattr(self.media, "dtls_fingerprint", None)

    def _contact_headers(
        self, endpoint: SipEndpoint, request: SipRequest, call: FocusCall
    ) -> list[tuple[str, str]]:
        """Contact that routes back to this endpoint; ``isfocus`` per RFC 4579 §5."""
        via = request.vias[0] if request.vias else None
        transport = via.transport.lower() if via else "udp"
        scheme = "sips" if transport == "tls" and request.request_uri.scheme == "sips" else "sip"
        address = endpoint.local_address(transport)
        host = f"[{address.host}]" if ":" in address.host else address.host
        params = "" if transport == "udp" else f";transport={transport}"
        contact = f"<{scheme}:{call.conference.name}@{host}:{address.port}{params}>;isfocus"
        record_route = [("Record-Route", v) for v in request.headers.get_all("Record-Route")]
        return [*record_route, ("Contact", contact), ("Allow", self.allow)]

    # -- in-dialog requests --------------------------------------------------------------

    def call_of(self, request: SipRequest) -> FocusCall | None:
        """The answered call whose dialog ``request`` is in (Call-ID and both tags)."""
        call = self._calls.get(incoming_dialog_id(request))
        return call if call is not None and call.dialog is not None else None

    def check_in_dialog(self, dialog: SipDialog, event: RequestReceived) -> None:
        """Absorb an in-dialog request (RFC 3261 §12.2.2) once it proved its flow.

        Raises :class:`SipRemoteError`: 403 with a Warning when ``event`` did not
        come over the dialog's flow nor from a trusted proxy on its route (then
        nothing changes, not even the CSeq), 500 for a CSeq out of order.
        """
        if not dialog.accepts_from(event.source, self.config.trusted_proxies):
            source = event.source
            logger.info(
                "[%s] %s in dialog refused: from %s %s:%d, not the dialog's flow",
                event.request.call_id, event.request.method, source.transport, source.host,
                source.port,
            )  # fmt: skip
            warning = ("Warning", format_warning(399, self.config.domain, NOT_THE_FLOW))
            raise SipRemoteError(403, "Forbidden", headers=[warning])
        dialog.receive_request(event.request)

    async def _in_dialog(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        call = self.call_of(request)
        if call is None or call.dialog is None:
            self._refuse(endpoint, event, 481, "Call/Transaction Does Not Exist")
            return
        try:
            self.check_in_dialog(call.dialog, event)
        except SipRemoteError as exc:
            others = [(name, value) for name, value in exc.headers if name != "Warning"]
            warning = NOT_THE_FLOW if exc.status == 403 else None
            self._refuse(endpoint, event, exc.status, exc.reason, others, warning=warning)
            return
        if request.method == "BYE":
            endpoint.respond(event.key, make_response(request, 200, "OK"))
            call.log.debug("[%s] BYE from %s", call.call_id, call.participant)
            self._end(call, reason="bye")
        elif request.method == "INVITE":
            await self._reinvite(endpoint, event, call)
        elif request.method == "OPTIONS":
            endpoint.respond(event.key, self._options(request))
        else:
            self._refuse(endpoint, event, 405, "Method Not Allowed", [("Allow", self.allow)])

    async def _reinvite(
        self, endpoint: SipEndpoint, event: RequestReceived, call: FocusCall
    ) -> None:
        request = event.request
        if call.reinvite_pending:
            self._refuse(endpoint, event, 491, "Request Pending", [("Retry-After", "1")])
            return
        refusal = self._check_request(request)
        if refusal is not None:
            self._reject(endpoint, event, refusal)
            return
        call.reinvite_pending = True
        try:
            try:
                mikey = await self._resolve_mikey(request, call)
                offer, plan = self._plan(event, call.conference, call.plan, mikey)
            except MikeyRefused as exc:
                self._refuse_mikey(endpoint, event, exc)  # the old session stays
                return
            except SdpRemoteError as exc:
                if mikey is not None and mikey is not call.mikey:
                    mikey.wipe()
                self._refuse_sdp(endpoint, event, exc)  # the old session stays (RFC 3264 §8)
                return
            replaced, call.mikey = call.mikey, mikey
            await call.apply_plan(plan, self.media)
            if replaced is not None and replaced is not mikey:
                replaced.wipe()
            self._open_chat(call, plan)
            self._open_floor(call, plan)
            response = self._answer(endpoint, request, offer, call, plan, to_tag=None)
            endpoint.respond(event.key, response, dialog=call.dialog)
            call.log.info("[%s] re-INVITE: %s, new keys", call.call_id, call.state)
            self._emit(_updated(call))
        finally:
            call.reinvite_pending = False

    # -- ending calls ----------------------------------------------------------------------

    def _end(self, call: FocusCall, *, reason: str) -> None:
        if call.dialog is not None:
            self._calls.pop(call.dialog.id, None)
            call.dialog.terminate()
        if call.state is not CallState.LEFT:
            self._close_chat(call)
            self._close_floor(call)
            call.release_media(self.media)
            call.log.info(
                "[%s] %s left %s (%s)", call.call_id, call.participant, call.conference_uri, reason
            )
            self._emit(
                ParticipantLeft(call.conference.name, call.call_id, call.participant, reason)
            )

    async def _hang_up(self, endpoint: SipEndpoint, call: FocusCall, *, reason: str) -> None:
        """Send BYE (bounded wait) and end the call whatever the answer."""
        dialog = call.dialog
        bye = None
        if dialog is not None and dialog.state is not SipDialogState.TERMINATED:
            reason_header = ("Reason", f'SIP;cause=200;text="{reason}"')
            bye = dialog.create_request("BYE", headers=[reason_header])
        self._end(call, reason=reason)
        if dialog is None or bye is None:
            return
        try:
            async with asyncio.timeout(self.config.bye_timeout):
                await endpoint.request(bye, dialog.destination())
        except (TimeoutError, SipError, OSError) as exc:  # timeouts, transport, overload
            call.log.info("[%s] BYE not answered: %s", call.call_id, exc)

    async def shutdown(self, endpoint: SipEndpoint) -> None:
        """BYE every participant (bounded), releasing all media."""
        calls = list(self._calls.values())
        await asyncio.gather(*(self._hang_up(endpoint, c, reason="shutdown") for c in calls))

    # -- responses ---------------------------------------------------------------------------

    def _options(self, request: SipRequest) -> SipResponse:
        return make_response(
            request, 200, "OK",
            headers=[("Allow", self.allow), ("Accept", "application/sdp")],
        )  # fmt: skip

    def _refuse(
        self,
        endpoint: SipEndpoint,
        event: RequestReceived,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        *,
        warning: str | None = None,
    ) -> None:
        """Answer ``status`` (with ``warning``, required for 403/404/488)."""
        self._reject(endpoint, event, SipRefusal(status, warning, reason, tuple(headers)))

    def _reject(self, endpoint: SipEndpoint, event: RequestReceived, refusal: SipRefusal) -> None:
        """The one way refusals leave the focus; the Warning's agent is our SIP domain."""
        self.stats.refused[refusal.status] = self.stats.refused.get(refusal.status, 0) + 1
        if refusal.status in EXPLAINED_STATUSES and refusal.warning is None:
            logger.error("[%s] %d sent without a Warning", event.request.call_id, refusal.status)
        to_tag = secrets.token_hex(8) if not event.request.to_addr.tag else None
        response = refusal.response(event.request, agent=self.config.domain, to_tag=to_tag)
        endpoint.respond(event.key, response)

    def _refuse_sdp(
        self, endpoint: SipEndpoint, event: RequestReceived, exc: SdpRemoteError
    ) -> None:
        status = exc.status if exc.status in (400, 488) else 488
        logger.info("[%s] SDP refused: %d %s", event.request.call_id, status, exc)
        self._reject(endpoint, event, SipRefusal(status, str(exc), code=exc.warn_code))


def no_conference(user: str | None) -> SipRefusal:
    """The 404 for a Request-URI naming no conference (INVITE and SUBSCRIBE alike)."""
    if not user:
        text = "the Request-URI has no user part naming a conference"
    elif conference_name(user) is None:
        text = f"'{user[:64]}' cannot be a conference name (a-z 0-9 . _ -)"
    else:
        text = f"no conference named '{user[:64]}'"
    return SipRefusal(404, text, "Conference Not Found")


def _aor(uri: str) -> str:
    try:
        return normalize_aor(uri)
    except StoreError:
        return ""


def _accepts_mikey(call: FocusCall) -> bool:
    """``mikey-ticket`` in the conference's key modes, or the caller's entry says ``use_mikey``."""
    if "mikey-ticket" in call.conference.policy.key_modes:
        return True
    aor = _aor(str(call.identity))
    return any(e.use_mikey and e.uri == aor for e in call.conference.participants)


def _updated(call: FocusCall) -> ParticipantUpdated:
    return ParticipantUpdated(
        call.conference.name, call.call_id, call.participant, str(call.state), call.muted
    )
