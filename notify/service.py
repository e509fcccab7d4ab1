"""The conference event notifier: SUBSCRIBE/NOTIFY for ``Event: conference``.

TS 33.328 G.3.3: only authorized participants may subscribe, and the state in
NOTIFY is protected with PSK S/MIME (Annex I).  The service sits beside the focus
on the same SIP endpoint (``FocusService.register_method("SUBSCRIBE", ...)``):

1. out of dialog: :func:`~notify.subscription.check_subscribe` (489, 406, 423),
   404 for an unknown conference, the subscriber's identity exactly as for
   INVITE (:func:`focus.policy.caller_identity`) → 403 when anonymous or not on
   the authorized list (the chair URI and the creator's AOR count as listed),
   then the KEK (:mod:`notify.kek`; a ``Key-Mgmt`` MIKEY-TICKET exchange when
   present, :mod:`notify.mikey`): with ``notify_protection = required`` a
   subscriber without one gets 488;
2. 200 (Expires granted, ``isfocus`` Contact, the TRANSFER_RESP) and at once a
   NOTIFY with the full document; later changes go out as partial documents,
   coalesced by the rate cap (:mod:`notify.sender`);
3. a refresh gets a new full NOTIFY (a ``Key-Mgmt`` in it re-keys); ``Expires:
   0`` a final ``terminated;reason=timeout`` NOTIFY; expiry the same; a
   refresh that does not come over the subscription's flow (nor from a trusted
   proxy on its route) gets 403 and changes nothing
   (``FocusService.check_in_dialog``);
4. when the conference is deleted (``FocusService.apply_policy``) every
   subscription ends with ``noresource`` and a ``deleted`` document; a
   subscriber removed from the list gets ``rejected``; shutdown ``deactivated``;
5. the focus's events (join, leave, mute, hold) and the floor control's
   changes (:meth:`watch_floor`, BFCP grants and queues) mark the conference
   changed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

from focus.conference import ConferenceInfo
from focus.endpoint import SipEndpoint
from focus.events import FocusEvent, ParticipantJoined, ParticipantLeft
from focus.policy import CallerIdentity, not_listed
from focus.service import FocusService, no_conference
from focus.sip.dialog import dialog_from_uas, incoming_dialog_id
from focus.sip.message import SipRemoteError, SipRequest, make_response
from focus.sip.refusal import SipRefusal
from focus.sip.transaction import RequestReceived
from focus.sip.uri import SipNameAddr
from notify.conference_info import ConferenceInfoSnapshot
from notify.kek import (
    KEY_MGMT_HEADER,
    CallKekProvider,
    ChainedKekProvider,
    KekProvider,
    NotifyKek,
    StaticKekProvider,
    SubscribeKeyExchange,
    format_key_mgmt,
    key_mgmt_message,
)
from notify.roster import ConferenceRoster, FloorStates, floor_states
from notify.sender import NotifyConfig, NotifySender, NotifySubscriber, notify_config
from notify.subscription import (
    EVENT_PACKAGE,
    NotifyRemoteError,
    NotifySubscription,
    SubscriptionReason,
    check_subscribe,
    parse_event,
)

logger = logging.getLogger(__name__)

__all__ = ["NotifyConfig", "NotifyService", "NotifySubscriber", "notify_config"]


class NotifyService(NotifySender):
    """Subscriptions to the conference event package (see the module docstring)."""

    def __init__(
        self,
        focus: FocusService,
        config: NotifyConfig | None = None,
        *,
        keys: KekProvider | None = None,
        key_exchange: SubscribeKeyExchange | None = None,
        owner_aor: Callable[[int], str | None] | None = None,
    ) -> None:
        if keys is None:  # keys set directly, then the INVITE's PSK S/MIME crypto sessions
            keys = ChainedKekProvider([StaticKekProvider(), CallKekProvider(lambda: focus.calls)])
        super().__init__(focus, config or NotifyConfig(), keys)
        self.key_exchange = key_exchange
        self.owner_aor = owner_aor
        self.floor: Any = None  # mrf.floor.FloorControl, see watch_floor
        self._rosters: dict[str, ConferenceRoster] = {}
        self._snapshots: dict[str, ConferenceInfoSnapshot] = {}
        self._floors: dict[str, FloorStates] = {}
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        """Take SUBSCRIBE from the focus and listen to its events."""
        self.focus.register_method("SUBSCRIBE", self.handle_subscribe)
        self._unsubscribe.append(self.focus.subscribe(self._on_focus_event))
        self._unsubscribe.append(self.focus.on_policy_applied(self._on_policy_applied))

    def watch_floor(self, control: Any) -> None:
        """Report floor grants and queues of ``control`` (``mrf.floor.FloorControl``)."""
        self.floor = control
        self._unsubscribe.append(control.on_floor_change(self._on_floor_change))

    async def close(self, timeout: float | None = None) -> None:
        """End every subscription (``deactivated``; final NOTIFYs bounded by ``timeout``)."""
        for stop in self._unsubscribe:
            stop()
        for subscriber in list(self.subscribers.values()):
            subscriber.core.terminate(SubscriptionReason.DEACTIVATED)
            self._spawn(self._notify(subscriber, None))
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout or self.config.notify_timeout)
        for task in self._tasks:
            task.cancel()

    # -- SUBSCRIBE -------------------------------------------------------------

    async def handle_subscribe(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        try:
            if request.to_addr.tag:
                await self._in_dialog(endpoint, event)
            else:
                await self._new_subscription(endpoint, event)
        except NotifyRemoteError as exc:
            self.stats["refused"] += 1
            logger.info("[%s] SUBSCRIBE refused: %d %s", request.call_id, exc.status, exc.reason)
            to_tag = None if request.to_addr.tag else secrets.token_hex(8)
            refusal = SipRefusal(exc.status, exc.warning, exc.reason, exc.headers)
            endpoint.respond(
                event.key, refusal.response(request, agent=self.focus.config.domain, to_tag=to_tag)
            )

    @staticmethod
    def _check_contact(request: SipRequest) -> None:
        """The subscriber's Contact: a URI the NOTIFYs can go to (RFC 6665 §4.1.1)."""
        contact = (request.headers.get("Contact") or "").strip()
        if not contact:  # absent, or present and empty
            raise NotifyRemoteError(400, "Missing Contact", warning="SUBSCRIBE needs a Contact URI")
        try:
            SipNameAddr.parse(contact)
        except SipRemoteError as exc:
            raise NotifyRemoteError(400, "Bad Contact", warning="Contact is not a SIP URI") from exc

    async def _new_subscription(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        accepted = check_subscribe(request, self.config.subscription)
        info = self._conference(request)
        identity = self.focus.identify(endpoint, event, info.name)
        if isinstance(identity, SipRefusal):
            raise NotifyRemoteError(identity.status, "Forbidden", warning=identity.warning)
        self._authorize(info, identity, request.call_id)
        self._check_contact(request)
        self._check_capacity(info.name)
        aor = str(identity.aor)
        kek, key_headers = await self._key_exchange(request, info, aor)
        if (
            kek is None
            and self.keys.lookup(info.name, aor) is None
            and (info.policy.notify_protection == "required")
        ):
            raise NotifyRemoteError(488, "Not Acceptable Here", warning=(
                "notify_protection is required: establish a PSK S/MIME key (MIKEY-TICKET) first"
            ))  # fmt: skip
        response = make_response(
            request, 200, "OK", to_tag=secrets.token_hex(8),
            headers=[*self._contact_headers(endpoint, request, info.name),
                     ("Expires", str(accepted.expires)), *key_headers],
        )  # fmt: skip
        dialog = dialog_from_uas(
            request, response, transport=event.source.transport, flow=event.source
        )
        endpoint.respond(event.key, response)
        now = asyncio.get_running_loop().time()
        core = NotifySubscription(self.config.subscription, accepted.expires, now)
        subscriber = NotifySubscriber(info.name, aor, dialog, core, accepted.event_id, kek=kek)
        self.stats["subscribed"] += 1
        logger.info(
            "[%s] %s subscribed to %s for %d s (%s%s)", request.call_id, aor, info.name,
            accepted.expires, "fetch" if accepted.expires == 0 else "active",
            f", key {kek.key_id.hex()}" if kek else "",
        )  # fmt: skip
        if accepted.expires == 0:  # a fetch (RFC 6665 §4.4.3): one full, final NOTIFY
            core.terminate(SubscriptionReason.TIMEOUT)
        else:
            self.subscribers[subscriber.key] = subscriber
        self.notify_full(subscriber)

    async def _in_dialog(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        package, event_id = parse_event(request.headers.get("Event"))
        subscriber = self.subscribers.get((incoming_dialog_id(request), event_id))
        if subscriber is None or package != EVENT_PACKAGE:
            raise NotifyRemoteError(481, "Subscription Does Not Exist")
        accepted = check_subscribe(request, self.config.subscription)
        try:  # over the subscription's flow only (a refresh may re-key the NOTIFYs)
            self.focus.check_in_dialog(subscriber.dialog, event)
        except SipRemoteError as exc:
            raise NotifyRemoteError(exc.status, exc.reason, exc.headers) from exc
        info = self._conference_named(subscriber.conference)
        kek, key_headers = await self._key_exchange(request, info, subscriber.identity)
        subscriber.kek = kek or subscriber.kek  # a Key-Mgmt in a refresh re-keys
        headers = [("Expires", str(accepted.expires)), *key_headers]
        endpoint.respond(event.key, make_response(request, 200, "OK", headers=headers))
        subscriber.core.refresh(accepted.expires, asyncio.get_running_loop().time())
        if subscriber.core.active:
            self.notify_full(subscriber)
        else:
            self.finish(subscriber)

    def _conference(self, request: SipRequest) -> ConferenceInfo:
        info = self.focus.lookup(request)
        if info is None:
            refusal = no_conference(request.request_uri.user)
            raise NotifyRemoteError(404, "Conference Not Found", warning=refusal.warning)
        return info

    def _conference_named(self, name: str) -> ConferenceInfo:
        info = self.focus.directory.get_conference(name)
        if info is None:
            raise NotifyRemoteError(404, "Conference Not Found", warning="the conference is gone")
        return info

    def _authorize(self, info: ConferenceInfo, identity: CallerIdentity, call_id: str) -> None:
        """Exactly the INVITE identity rules; anonymous subscribers are always refused."""
        if identity.anonymous or identity.aor is None:
            raise NotifyRemoteError(403, "Anonymous Subscribers Not Allowed",
                                    warning="anonymous subscribers are not admitted")  # fmt: skip
        if identity.aor not in self._allowed(info):
            logger.info("[%s] %s not authorized for %s", call_id, identity, info.name)
            raise NotifyRemoteError(
                403, "Not Authorized For This Conference", warning=not_listed(identity)
            )

    def _allowed(self, info: ConferenceInfo) -> set[str]:
        allowed = set(info.authorized())
        if info.policy.chair_uri:
            allowed.add(info.policy.chair_uri)
        if info.owner_id is not None and self.owner_aor is not None:
            owner = self.owner_aor(info.owner_id)
            if owner:
                allowed.add(owner)
        return allowed

    async def _key_exchange(
        self, request: SipRequest, info: ConferenceInfo, aor: str
    ) -> tuple[NotifyKek | None, list[tuple[str, str]]]:
        """A MIKEY-TICKET TRANSFER_INIT in ``Key-Mgmt`` establishes the subscription's KEK."""
        value = request.headers.get(KEY_MGMT_HEADER)
        if value is None:
            return None, []
        if self.key_exchange is None:
            raise NotifyRemoteError(
                488, "Not Acceptable Here", warning="this server has no KMS for MIKEY-TICKET"
            )
        message = key_mgmt_message(value)
        uri = info.uri(self.focus.config.domain)
        answer, kek = await self.key_exchange.answer(uri, aor, message)
        return kek, [(KEY_MGMT_HEADER, format_key_mgmt("mikey", answer))]

    def _check_capacity(self, conference: str) -> None:
        limits = self.config.subscription
        count = sum(1 for s in self.subscribers.values() if s.conference == conference)
        if len(self.subscribers) >= limits.max_subscriptions or (
            count >= limits.max_subscriptions_per_conference
        ):
            raise NotifyRemoteError(503, "Service Unavailable", (("Retry-After", "30"),))

    def _contact_headers(
        self, endpoint: SipEndpoint, request: SipRequest, name: str
    ) -> list[tuple[str, str]]:
        via = request.vias[0] if request.vias else None
        transport = via.transport.lower() if via else "udp"
        address = endpoint.local_address(transport)
        host = f"[{address.host}]" if ":" in address.host else address.host
        params = "" if transport == "udp" else f";transport={transport}"
        record_route = [("Record-Route", v) for v in request.headers.get_all("Record-Route")]
        contact = f"<sip:{name}@{host}:{address.port}{params}>;isfocus"
        return [*record_route, ("Contact", contact), ("Allow-Events", EVENT_PACKAGE)]

    # -- focus events, floors and policy -------------------------------------------

    def _roster(self, name: str) -> ConferenceRoster:
        roster = self._rosters.get(name)
        if roster is None:
            roster = self._rosters[name] = ConferenceRoster(
                name, max_departed=self.config.max_departed
            )
        return roster

    def _on_focus_event(self, event: FocusEvent) -> None:
        roster = self._roster(event.conference)
        if isinstance(event, ParticipantLeft):
            roster.left(event.call_id, event.reason)
        else:
            call = self.focus.find_call(event.call_id)
            if call is not None:
                if isinstance(event, ParticipantJoined):
                    roster.joined(call)
                roster.seen(call)  # a departure inside one rate-cap interval is still reported
        self.conference_changed(event.conference)

    def _on_floor_change(self) -> None:
        """The floor server changed: re-read the floors of every watched conference."""
        for name in {s.conference for s in self.subscribers.values()}:
            floors = floor_states(self.floor, name)
            if floors != self._floors.get(name, {}):
                self._floors[name] = floors
                self.conference_changed(name)

    def _on_policy_applied(self, name: str, info: ConferenceInfo | None) -> None:
        for subscriber in [s for s in self.subscribers.values() if s.conference == name]:
            if info is None:
                subscriber.core.terminate(SubscriptionReason.NORESOURCE)
            elif subscriber.identity not in self._allowed(info):
                subscriber.core.terminate(SubscriptionReason.REJECTED)
            elif info.policy.notify_protection == "required" and self.kek(subscriber) is None:
                subscriber.core.terminate(SubscriptionReason.DEACTIVATED)
            if not subscriber.core.active:
                self.finish(subscriber)
        if info is None:
            for cache in (self._rosters, self._snapshots, self._floors):
                cache.pop(name, None)
        else:
            self.conference_changed(name)

    def conference_changed(self, name: str) -> None:
        self._snapshots.pop(name, None)
        super().conference_changed(name)

    def snapshot(self, name: str) -> ConferenceInfoSnapshot | None:
        """The conference's current state (cached until the next change)."""
        cached = self._snapshots.get(name)
        if cached is not None:
            return cached
        info = self.focus.directory.get_conference(name)
        if info is None:
            return None
        domain = self.focus.config.domain
        calls = [c for c in self.focus.calls if c.conference.name == name]
        floors = self._floors[name] = floor_states(self.floor, name)
        roster = self._roster(name)
        snapshot = roster.snapshot(info, calls, info.uri(domain), f"sip:{domain}", floors)
        self._snapshots[name] = snapshot
        return snapshot
