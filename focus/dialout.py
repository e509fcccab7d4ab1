"""Dial-out and REFER: the focus invites participants (TS 33.328 G.1/G.2, RFC 4579).

Dial-out (web page, REST, or a chair's REFER to the focus):

1. only identities on the conference's authorized list are dialled;
2. the INVITE carries an SDES offer with fresh per-participant keys
   (:mod:`focus.sdp.offer`); the media stream is bound but **not keyed and
   silent** until the answer is accepted.  With ``sip.sdes_requires_tls`` an
   SDES offer goes only over TLS or to a trusted proxy (else 488 before any
   INVITE): its keys would be readable on the path;
3. provisional responses move the roster entry to ``ringing``; no final answer
   within the ring timeout → CANCEL; a final refusal (486, 603, ...) marks the
   entry ``failed`` with the status as ``reason``;
4. on 2xx the ACK goes out at once (RFC 3261 §13.2.2.4), then the answerer's
   identity is checked: when the INVITE went through a trusted proxy, the
   answer's P-Asserted-Identity (RFC 3325) must be the invited identity (or,
   when ``accept_other_authorized`` is set, another authorized one); a missing
   identity or any other identity means re-targeting to someone not authorized
   or not identified, and the focus sends BYE immediately: no key of ours is
   installed, no RTP is ever sent (TS 33.328 G.2);
5. otherwise the stream is keyed like a dial-in one and the participant joins.

MIKEY-TICKET dial-out (TS 33.328 G.3.1): when the participant's authorized
entry says ``use_mikey`` or the conference accepts only ``mikey-ticket``, the
focus first gets a ticket from the KMS as the conference URI
(``focus.keying.MikeyFocusKeying.initiate``; unreachable KMS → failed ``503``
before any INVITE), offers ``a=key-mgmt:mikey`` instead of ``a=crypto``, and
checks the answer's TRANSFER_RESP, including that the responder's KMS
identity (IDRr) is the invited one; otherwise ACK + BYE as in step 4 and
nothing is keyed.  The SDES path is unchanged.

Chat and floor control follow the conference like dial-in does: when the
focus serves chat (``focus.chat``) and floor control (``focus.floor``), an SDES
offer also carries ``TCP/TLS/MSRP`` and ``TCP/TLS/BFCP`` lines
(:mod:`focus.sdp.offer`: our path, BFCP user, fingerprint, ``a=setup:actpass``)
reserved before the INVITE; the answer's fingerprints and ``a=setup`` open the
sessions only once the answerer passed the identity check, and a failed
dial-out releases them.  (MIKEY-TICKET dial-outs offer audio only.)

REFER (RFC 3515): a chair's REFER to the focus (``Refer-To`` a participant)
dials that participant out and reports progress in NOTIFYs with
``message/sipfrag`` bodies; anyone else gets 403.  In a call's dialog the
referrer is that call (the whole dialog ID, over the dialog's flow: 481 / 403
otherwise); out of dialog its identity is checked exactly as for INVITE.
:meth:`refer` sends a REFER whose Refer-To is the conference URI, so the
participant dials in itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from focus.call import CallState, FocusCall
from focus.events import ParticipantJoined
from focus.keying import MikeyDialOutKeys, MikeyRefused
from focus.policy import CallerIdentity, IdentitySource, asserted_identity, caller_identity
from focus.sdp.bfcp import SdpBfcpLocal
from focus.sdp.msrp import SdpMsrpLocal
from focus.sdp.offer import AUDIO_LABEL, SdpOfferState, accept_answer, build_offer
from focus.sdp.offer_answer import SdpAnswerPlan
from focus.sdp.session import SdpError, SdpSession
from focus.sip.dialog import SipDialog, dialog_from_uac, dialog_from_uas, uri_address
from focus.sip.message import (
    SipError,
    SipHeaders,
    SipRemoteError,
    SipRequest,
    SipResponse,
    make_response,
)
from focus.sip.transaction import RequestReceived, SipAddress
from focus.sip.uri import SipNameAddr, SipUri

if TYPE_CHECKING:
    from focus.endpoint import SipEndpoint
    from focus.service import FocusService

logger = logging.getLogger(__name__)


@runtime_checkable
class OfferingChat(Protocol):
    """A chat service that can reserve our side before the answer (``mrf.chat.ChatRelay``)."""

    def offer(self, call: FocusCall) -> SdpMsrpLocal: ...
    def close(self, call: FocusCall) -> None: ...


@runtime_checkable
class OfferingFloor(Protocol):
    """Floor control that can reserve a BFCP user before the answer (``mrf.floor``)."""

    def offer(self, call: FocusCall, label: str) -> SdpBfcpLocal: ...
    def close(self, call: FocusCall) -> None: ...


class DialOutError(Exception):
    """A dial-out that cannot start; ``status`` is the HTTP-ish/SIP code to report."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DialOutConfig:
    ring_timeout: float = 30.0
    cancel_timeout: float = 5.0
    outbound_proxy: SipAddress | None = None  # next hop for every INVITE (e.g. the P-CSCF)
    accept_other_authorized: bool = False
    failed_kept: int = 50  # failed dial-outs kept for the roster, per focus


class FocusDialOut:
    """Outgoing calls and REFER for a :class:`~focus.service.FocusService`."""

    def __init__(self, focus: FocusService, config: DialOutConfig | None = None) -> None:
        self.focus = focus
        self.config = config or DialOutConfig()
        self.pending: dict[str, FocusCall] = {}
        self.failed: deque[FocusCall] = deque(maxlen=self.config.failed_kept)
        self._tasks: set[asyncio.Task[FocusCall]] = set()
        self._inviting: dict[str, tuple[SipRequest, SipEndpoint]] = {}  # by Call-ID
        focus.dialout = self
        focus.register_method("REFER", self.handle_refer)

    # -- roster ---------------------------------------------------------------------

    def roster(self, conference: str) -> list[dict[str, object]]:
        calls = [*self.pending.values(), *self.failed]
        return [c.roster_entry() for c in calls if c.conference.name == conference]

    def cancel(self, call_id: str) -> bool:
        """CANCEL a dial-out that has not been answered (RFC 3261 §9.1); False if none.

        The INVITE then ends with 487 and the call shows as failed with that status.
        """
        call, inviting = self.pending.get(call_id), self._inviting.get(call_id)
        if call is None or inviting is None:
            return False
        invite, endpoint = inviting
        call.log.info("[%s] dial-out to %s cancelled", call_id, call.participant)
        endpoint.cancel(invite)
        return True

    def dismiss(self, call_id: str) -> bool:
        """Drop an ended dial-out from the roster's history; False if it is not there."""
        for call in self.failed:
            if call.call_id == call_id:
                self.failed.remove(call)
                return True
        return False

    # -- dial-out -------------------------------------------------------------------

    def start(self, conference: str, target: str) -> FocusCall:
        """Validate, then dial in the background; the returned call shows progress."""
        call, prepared = self._prepare(conference, target)
        task = asyncio.ensure_future(self._run(call, prepared))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def dial(self, conference: str, target: str) -> FocusCall:
        """Dial and wait for the outcome (``state`` connected or failed)."""
        call, prepared = self._prepare(conference, target)
        return await self._run(call, prepared)

    def _prepare(self, conference: str, target: str) -> tuple[FocusCall, SipUri]:
        endpoint = self.focus.endpoint
        if endpoint is None:
            raise DialOutError(503, "the SIP endpoint is not running")
        info = self.focus.directory.get_conference(conference)
        if info is None:
            raise DialOutError(404, f"no conference {conference!r}")
        try:
            uri = SipUri.parse(target.strip().strip("<>"))
        except SipError as exc:
            raise DialOutError(400, f"not a SIP URI: {target!r}") from exc
        if uri.scheme not in ("sip", "sips"):
            raise DialOutError(400, "dial-out needs a sip: or sips: URI")
        role = info.authorized().get(uri.aor)
        if role is None:
            raise DialOutError(403, f"{uri.aor} is not on the authorized list")
        identity = CallerIdentity(uri.aor, False, IdentitySource.FROM)
        call_id = secrets.token_hex(12)
        dest = self.config.outbound_proxy or uri_address(uri)
        call = FocusCall(call_id, info, info.uri(self.focus.config.domain), identity, role,
                         dest, "", joined_by="dial-out", state=CallState.DIALING)  # fmt: skip
        if not self._uses_mikey(call) and not self._protected(dest):
            hop = dest.transport.upper()
            raise DialOutError(
                488,
                f"SDES keys need SIP over TLS here, not {hop} "
                "(sip.sdes_requires_tls): dial a sips: URI or via a trusted proxy",
            )
        self.pending[call_id] = call
        return call, uri

    def _protected(self, dest: SipAddress) -> bool:
        """Our SDES offer may go to ``dest``: over TLS, to a trusted proxy, or no policy."""
        config = self.focus.config
        return (
            not config.sdes_requires_tls
            or dest.transport == "tls"
            or (dest.host in config.trusted_proxies)
        )

    async def _run(self, call: FocusCall, target: SipUri) -> FocusCall:
        endpoint = self.focus.endpoint
        assert endpoint is not None
        media = self.focus.media
        try:
            stream = await media.allocate(f"{call.call_id}/0")
        except Exception as exc:  # the media plane is full: nothing was sent yet
            return self._fail(call, f"503 no media port ({exc})")
        call.streams[0] = stream  # bound, not keyed: nothing can be sent on it yet
        if self._uses_mikey(call):
            try:
                call.mikey_dialout = await self._mikey_offer(call)
            except MikeyRefused as exc:
                return self._fail(call, f"{exc.status} {exc.detail}")
        key_mgmt = call.mikey_dialout.attribute if call.mikey_dialout is not None else None
        chat, floor = self._offer_channels(call) if key_mgmt is None else (None, None)
        offer = build_offer(local_host=media.host, port=stream.rtp_port,
                            session_id=call.session_id, suites=self._suites(),
                            key_mgmt=key_mgmt, msrp=chat, bfcp=floor)  # fmt: skip
        invite = self._invite(call, target, offer, endpoint)
        call.log.info("[%s] dialling %s for %s", call.call_id, target, call.conference_uri)
        try:
            response = await self._invite_and_wait(call, invite, endpoint)
            if response is None:
                return self._fail(call, "408 ring timeout")
            if response.status >= 300:
                return self._fail(call, f"{response.status} {response.reason}")
            return await self._answered(call, invite, response, offer, endpoint)
        finally:
            offer.wipe(keep=call.plan)  # the keys of the lines not chosen (all, on failure)

    def _offer_channels(self, call: FocusCall) -> tuple[SdpMsrpLocal | None, SdpBfcpLocal | None]:
        """Our chat and floor control sides, when the focus serves them (as dial-in)."""
        chat, floor = self.focus.chat, self.focus.floor
        return (
            chat.offer(call) if isinstance(chat, OfferingChat) else None,
            floor.offer(call, AUDIO_LABEL) if isinstance(floor, OfferingFloor) else None,
        )

    def _release_channels(self, call: FocusCall) -> None:
        """Drop what :meth:`_offer_channels` reserved (and any session of the call)."""
        for service in (self.focus.chat, self.focus.floor):
            if isinstance(service, (OfferingChat, OfferingFloor)):
                service.close(call)
        call.chat, call.floor = {}, {}

    def _uses_mikey(self, call: FocusCall) -> bool:
        """The entry's ``use_mikey``, or a conference whose RTP key modes leave MIKEY only.

        Our offer keys audio with SDES or with MIKEY-TICKET (never both: RFC 4567
        §3.1 would need the callee to pick), so SDES is offered wherever the policy
        allows it (the default, every mode, included) and the participant is not
        marked ``use_mikey``; a policy without ``sdes`` that has ``mikey-ticket``
        dials out with MIKEY-TICKET.
        """
        info = call.conference
        aor = call.identity.aor
        if any(e.use_mikey and e.uri == aor for e in info.participants):
            return True
        modes = info.policy.key_modes
        return "mikey-ticket" in modes and "sdes" not in modes

    async def _mikey_offer(self, call: FocusCall) -> MikeyDialOutKeys:
        keying = self.focus.mikey
        if keying is None:
            raise MikeyRefused(488, "Not Acceptable Here", "no KMS configured for MIKEY-TICKET")
        ssrc = secrets.randbits(32)
        invited = str(call.identity.aor)
        return await keying.initiate(call.conference_uri, invited, ssrc=ssrc, now=time.time())

    def _suites(self) -> tuple[str, ...]:
        from focus.sdp.offer_answer import DEFAULT_SUITES

        return self.focus.config.suites or DEFAULT_SUITES

    def _invite(
        self, call: FocusCall, target: SipUri, offer: SdpOfferState, endpoint: SipEndpoint
    ) -> SipRequest:
        transport = call.peer.transport
        local = endpoint.local_address(transport)
        host = f"[{local.host}]" if ":" in local.host else local.host
        params = "" if transport == "udp" else f";transport={transport}"
        name = call.conference.name
        headers = SipHeaders()
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<{call.conference_uri}>;tag={secrets.token_hex(8)}")
        headers.add("To", f"<{target}>")
        headers.add("Call-ID", call.call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<sip:{name}@{host}:{local.port}{params}>;isfocus")
        headers.add("Allow", self.focus.allow)
        headers.add("Content-Type", "application/sdp")
        return SipRequest("INVITE", str(target), headers, bytes(offer))

    async def _invite_and_wait(
        self, call: FocusCall, invite: SipRequest, endpoint: SipEndpoint
    ) -> SipResponse | None:
        """The final response, or None after a ring timeout (the INVITE is CANCELled)."""

        def provisional(response: SipResponse) -> None:
            if response.status in (180, 183) and call.state is CallState.DIALING:
                call.state = CallState.RINGING

        pending = asyncio.ensure_future(
            endpoint.request(invite, call.peer, on_provisional=provisional)
        )
        self._inviting[invite.call_id] = (invite, endpoint)
        try:
            return await asyncio.wait_for(asyncio.shield(pending), self.config.ring_timeout)
        except TimeoutError:
            endpoint.cancel(invite)
        except SipError as exc:
            call.reason = f"408 {exc}"
            pending.cancel()
            return None
        finally:
            self._inviting.pop(invite.call_id, None)
        try:
            final = await asyncio.wait_for(pending, self.config.cancel_timeout)
        except (TimeoutError, SipError):
            return None
        if 200 <= final.status < 300:  # the answer crossed our CANCEL: ACK and BYE it
            await self._ack_and_bye(invite, final, endpoint, "ring timeout")
        return None

    async def _answered(
        self,
        call: FocusCall,
        invite: SipRequest,
        response: SipResponse,
        offer: SdpOfferState,
        endpoint: SipEndpoint,
    ) -> FocusCall:
        dialog = dialog_from_uac(invite, response, transport=call.peer.transport, flow=call.peer)
        endpoint.send_ack(dialog.create_ack(response), uri_address(dialog.next_hop()))
        refusal = self._check_answerer(call, response)
        plan = None
        if refusal is None:
            try:
                plan = self._accept(call, offer, SdpSession.parse(response.body))
            except SdpError as exc:
                refusal = f"488 unacceptable answer: {exc}"
            except MikeyRefused as exc:
                refusal = f"{exc.status} {exc.detail}"
        if refusal is not None or plan is None:
            call.log.warning("[%s] dropping the answer: %s", call.call_id, refusal)
            await self._bye(dialog, endpoint, refusal or "bad answer")
            return self._fail(call, refusal or "488 bad answer")
        call.dialog = dialog
        await call.apply_plan(plan, self.focus.media)  # keys installed only now
        self._open_channels(call, plan)
        self.pending.pop(call.call_id, None)
        self.focus.admit_call(call)
        self.focus.events.emit(
            ParticipantJoined(
                call.conference.name, call.call_id, call.participant, call.role, call.joined_by
            )  # fmt: skip
        )
        call.log.info("[%s] %s answered the dial-out to %s", call.call_id, call.participant,
                      call.conference_uri)  # fmt: skip
        return call

    def _open_channels(self, call: FocusCall, plan: SdpAnswerPlan) -> None:
        """Open chat and floor control with the answer's fingerprints and ``a=setup``."""
        for stream in plan.streams[1:]:
            if not stream.accepted:
                call.log.info("[%s] %s line not opened: %s", call.call_id, stream.kind,
                              stream.reason)  # fmt: skip
        chat, floor = self.focus.chat, self.focus.floor
        chats = [s for s in plan.accepted if s.msrp is not None]
        floors = [s for s in plan.accepted if s.bfcp is not None]
        if chat is not None and chats:
            call.chat = {s.index: (chat.open(call, s), chat.policy) for s in chats}
        elif isinstance(chat, OfferingChat):
            chat.close(call)
        if floor is not None and floors:
            call.floor = {s.index: floor.open(call, s) for s in floors}
        elif isinstance(floor, OfferingFloor):
            floor.close(call)

    def _accept(self, call: FocusCall, offer: SdpOfferState, answer: SdpSession) -> SdpAnswerPlan:
        """The answer's plan; MIKEY: TRANSFER_RESP checked first (:class:`MikeyRefused`)."""
        keys = call.mikey_dialout
        if keys is None:
            return accept_answer(offer, answer)
        mikey = keys.answer_keys(answer, now=time.time())
        return accept_answer(offer, answer, mikey=mikey, local_ssrc=keys.ssrc)

    def _check_answerer(self, call: FocusCall, response: SipResponse) -> str | None:
        """None when the answerer may join; else why not (TS 33.328 G.2 re-targeting)."""
        if call.peer.host not in self.focus.config.trusted_proxies:
            return None  # dialled directly: the invited UA answered, nothing asserted
        asserted = asserted_identity(response)
        if asserted is None:
            return "403 answerer not identified (no P-Asserted-Identity)"
        aor = asserted.aor
        if aor == call.identity.aor:
            return None
        if self.config.accept_other_authorized and aor in call.conference.authorized():
            call.identity = CallerIdentity(aor, False, IdentitySource.ASSERTED)
            call.role = call.conference.authorized()[aor]
            return None
        return f"403 answered by {aor}, who is not the invited participant"

    async def _ack_and_bye(
        self, invite: SipRequest, response: SipResponse, endpoint: SipEndpoint, reason: str
    ) -> None:
        dialog = dialog_from_uac(invite, response)
        endpoint.send_ack(dialog.create_ack(response), uri_address(dialog.next_hop()))
        await self._bye(dialog, endpoint, reason)

    async def _bye(self, dialog: SipDialog, endpoint: SipEndpoint, reason: str) -> None:
        text = reason.replace('"', "'")
        bye = dialog.create_request("BYE", headers=[("Reason", f'SIP;cause=200;text="{text}"')])
        dialog.terminate()
        try:
            await asyncio.wait_for(endpoint.request(bye, uri_address(dialog.next_hop())), 5.0)
        except (TimeoutError, SipError, OSError) as exc:
            logger.info("BYE to a refused answerer not answered: %s", exc)

    def _fail(self, call: FocusCall, reason: str) -> FocusCall:
        self.pending.pop(call.call_id, None)
        self._release_channels(call)
        call.release_media(self.focus.media)
        call.state, call.reason = CallState.FAILED, reason
        self.failed.append(call)
        call.log.info("[%s] dial-out to %s failed: %s", call.call_id, call.participant, reason)
        return call

    # -- REFER ------------------------------------------------------------------------

    async def handle_refer(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        """A REFER to the focus (RFC 3515): chairs may bring participants in."""
        request = event.request
        refer_to = request.headers.get("Refer-To")
        if refer_to is None or len(request.headers.get_all("Refer-To")) != 1:
            endpoint.respond(event.key, make_response(request, 400, "Exactly One Refer-To"))
            return
        try:
            conference, role = self._referrer(event)
        except SipRemoteError as exc:  # in dialog: no such dialog, or not its flow
            endpoint.respond(
                event.key, make_response(request, exc.status, exc.reason, headers=exc.headers)
            )
            return
        if conference is None:
            endpoint.respond(event.key, make_response(request, 404, "Conference Not Found"))
            return
        if role != "chair":
            endpoint.respond(event.key, make_response(request, 403, "Only Chairs May Refer"))
            return
        try:
            target = SipNameAddr.parse(refer_to).uri
            call, uri = self._prepare(conference, str(target))
        except (SipRemoteError, DialOutError) as exc:
            status = exc.status if isinstance(exc, DialOutError) else 400
            endpoint.respond(event.key, make_response(request, status, str(exc)[:80]))
            return
        accepted = make_response(
            request,
            202,
            "Accepted",
            to_tag=request.to_addr.tag or secrets.token_hex(8),
            headers=self._contact(endpoint, request),
        )
        dialog = dialog_from_uas(
            request, accepted, transport=event.source.transport, flow=event.source
        )
        endpoint.respond(event.key, accepted)
        await self._notify(endpoint, dialog, "SIP/2.0 100 Trying", active=True)
        result = await self._run(call, uri)
        final = "SIP/2.0 200 OK" if result.state is not CallState.FAILED else (
            f"SIP/2.0 {result.reason or '500 Failed'}")  # fmt: skip
        await self._notify(endpoint, dialog, final, active=False)

    def _referrer(self, event: RequestReceived) -> tuple[str | None, str | None]:
        """(conference name, the referrer's role) from an in- or out-of-dialog REFER.

        In dialog, the role is that of the call whose dialog the REFER is in --
        the whole dialog ID, over the dialog's flow (``FocusService.check_in_dialog``;
        raises ``SipRemoteError`` 481 or 403), never the Call-ID alone, which
        anyone who saw the dialog can copy.
        """
        request = event.request
        if request.to_addr.tag:
            call = self.focus.call_of(request)
            if call is None or call.dialog is None:
                raise SipRemoteError(481, "Call/Transaction Does Not Exist")
            self.focus.check_in_dialog(call.dialog, event)
            return call.conference.name, call.role
        name = request.request_uri.user or ""
        info = self.focus.directory.get_conference(name)
        if info is None:
            return None, None
        source = event.source.host
        identity = caller_identity(request, source, self.focus.config.trusted_proxies)
        return name, (None if identity.aor is None else info.authorized().get(identity.aor))

    def _contact(self, endpoint: SipEndpoint, request: SipRequest) -> list[tuple[str, str]]:
        transport = request.vias[0].transport.lower() if request.vias else "udp"
        local = endpoint.local_address(transport)
        params = "" if transport == "udp" else f";transport={transport}"
        user = request.request_uri.user or "focus"
        return [("Contact", f"<sip:{user}@{local.host}:{local.port}{params}>;isfocus")]

    async def _notify(
        self, endpoint: SipEndpoint, dialog: SipDialog, sipfrag: str, *, active: bool
    ) -> None:
        state = "active;expires=60" if active else "terminated;reason=noresource"
        notify = dialog.create_request(
            "NOTIFY",
            headers=[("Event", "refer"), ("Subscription-State", state)],
            body=(sipfrag + "\r\n").encode(),
            content_type="message/sipfrag;version=2.0",
        )
        try:
            await asyncio.wait_for(endpoint.request(notify, uri_address(dialog.next_hop())), 5.0)
        except (TimeoutError, SipError, OSError) as exc:
            logger.info("REFER NOTIFY not answered: %s", exc)

    async def refer(self, call_id: str) -> int:
        """REFER a connected participant to the conference URI (it dials in itself).

        Returns the final status of the REFER (202 when accepted).
        """
        call = self.focus.find_call(call_id)
        endpoint = self.focus.endpoint
        if call is None or call.dialog is None or endpoint is None:
            raise DialOutError(404, f"no connected call {call_id}")
        # the conference URI as a routable URI of this focus (the configured domain
        # may not resolve for the participant): name @ our listening address
        local = endpoint.local_address(call.peer.transport)
        host = f"[{local.host}]" if ":" in local.host else local.host
        params = "" if call.peer.transport == "udp" else f";transport={call.peer.transport}"
        target = f"sip:{call.conference.name}@{host}:{local.port}{params}"
        refer = call.dialog.create_request(
            "REFER", headers=[("Refer-To", f"<{target}>"),
                              ("Referred-By", f"<{call.conference_uri}>")])  # fmt: skip
        response = await endpoint.request(refer, uri_address(call.dialog.next_hop()))
        return response.status

    async def close(self) -> None:
        """Shutdown: CANCEL what is still ringing (§9.1: nobody is left with a phone
        ringing for a conference that is gone), waiting up to ``cancel_timeout``."""
        cancels = [endpoint.cancel(invite) for invite, endpoint in self._inviting.values()]
        for task in list(self._tasks):
            task.cancel()
        sent = [task for task in cancels if task is not None]
        if sent:
            await asyncio.wait(sent, timeout=self.config.cancel_timeout)
        for call in list(self.pending.values()):
            self._fail(call, "shutdown")
