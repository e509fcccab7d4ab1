"""Sending NOTIFYs for the conference event package (RFC 6665 §4.2.2, RFC 4575 §3.9).

:class:`NotifySender` is the half of the notifier that owns the live
subscriptions and sends their NOTIFYs; :class:`notify.service.NotifyService`
adds the SUBSCRIBE handling and the focus's events on top.

* the full document goes out at once after a SUBSCRIBE (:meth:`notify_full`);
* changes mark every subscription of the conference (:meth:`conference_changed`);
  each one's timer (:class:`~notify.subscription.NotifySubscription`, the rate
  cap) sends one partial document describing the net difference;
* a terminated subscription gets its final NOTIFY (:meth:`finish`): no body,
  or a ``state="deleted"`` document for ``noresource``;
* bodies are PSK S/MIME (``application/pkcs7-mime; smime-type=authEnveloped-data``)
  under the subscriber's KEK — the one its SUBSCRIBE established, else the
  :class:`~notify.kek.KekProvider`'s — or, with ``notify_protection =
  optional``, the plain ``application/conference-info+xml`` document;
* a NOTIFY answered with an error or not within ``notify_timeout`` ends the
  subscription without a further NOTIFY.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from focus.service import FocusService
from focus.sip.dialog import SipDialog, SipDialogState
from focus.sip.message import SipError
from notify.conference_info import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfoSnapshot,
    render_deleted,
    render_full,
    render_partial,
)
from notify.kek import KekProvider, NotifyKek
from notify.smime import (
    SMIME_CONTENT_TYPE,
    SmimeContentAlgorithm,
    encrypt_auth_enveloped,
    prepare_mime_entity,
)
from notify.subscription import (
    EVENT_PACKAGE,
    NotifySubscription,
    SubscriptionConfig,
    SubscriptionReason,
)

logger = logging.getLogger(__name__)

__all__ = ["NotifyConfig", "NotifySender", "NotifySubscriber", "notify_config"]

type DialogKey = tuple[tuple[str, str, str], str | None]


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """Notifier settings (subscription limits, algorithm, bounded waits)."""

    subscription: SubscriptionConfig = field(default_factory=SubscriptionConfig)
    algorithm: SmimeContentAlgorithm = SmimeContentAlgorithm.AES128_GCM
    notify_timeout: float = 32.0  # a NOTIFY's answer, at most (timer F is 64*T1)
    max_departed: int = 100


def notify_config(settings: Any) -> NotifyConfig:
    """A :class:`NotifyConfig` from the ``[notify]`` settings (``mrf.settings.NotifySettings``).

    The default Expires (3600 s, RFC 4575 §3.3) is clamped into the bounds.
    """
    low, high = settings.min_expires, settings.max_expires
    subscription = SubscriptionConfig(
        default_expires=min(max(3600, low), high), min_expires=low, max_expires=high,
        min_notify_interval=settings.min_interval,
    )  # fmt: skip
    return NotifyConfig(subscription, SmimeContentAlgorithm(settings.algorithm))


@dataclass(slots=True, eq=False)
class NotifySubscriber:
    """One live subscription: its dialog, core state and what it was last told."""

    conference: str
    identity: str
    dialog: SipDialog
    core: NotifySubscription
    event_id: str | None
    sent: ConferenceInfoSnapshot | None = None
    timer: asyncio.TimerHandle | None = None
    kek: NotifyKek | None = field(default=None, repr=False)  # established in its SUBSCRIBE

    @property
    def key(self) -> DialogKey:
        return (self.dialog.id, self.event_id)


class NotifySender:
    """Live subscriptions and their NOTIFYs (see the module docstring)."""

    def __init__(self, focus: FocusService, config: NotifyConfig, keys: KekProvider) -> None:
        self.focus = focus
        self.config = config
        self.keys = keys
        self.subscribers: dict[DialogKey, NotifySubscriber] = {}
        self.stats: dict[str, int] = dict.fromkeys(
            ("subscribed", "refused", "notify", "protected"), 0
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def snapshot(self, name: str) -> ConferenceInfoSnapshot | None:
        """The conference's current state (the service builds it from the focus)."""
        raise NotImplementedError

    def kek(self, subscriber: NotifySubscriber) -> NotifyKek | None:
        """The subscriber's KEK: its own exchange's, else the provider's."""
        return subscriber.kek or self.keys.lookup(subscriber.conference, subscriber.identity)

    def conference_changed(self, name: str) -> None:
        for subscriber in self.subscribers.values():
            if subscriber.conference == name:
                subscriber.core.changed()
                self._arm(subscriber)

    def _arm(self, subscriber: NotifySubscriber) -> None:
        """(Re)schedule the subscription's timer; one already due then is kept as it is.

        Every focus event of the conference re-arms each subscription: while a
        coalesced NOTIFY is pending its deadline does not move, so the timer stays.
        """
        when = subscriber.core.get_timer()
        if subscriber.timer is not None:
            if when is not None and subscriber.timer.when() == when:
                return
            subscriber.timer.cancel()
            subscriber.timer = None
        if when is None:
            return
        loop = asyncio.get_running_loop()
        if when <= loop.time():
            self._on_timer(subscriber)
        else:
            subscriber.timer = loop.call_at(when, self._on_timer, subscriber)

    def _on_timer(self, subscriber: NotifySubscriber) -> None:
        subscriber.timer = None
        now = asyncio.get_running_loop().time()
        if subscriber.core.handle_timer(now):
            self.finish(subscriber)
            return
        due = subscriber.core.notify_at()
        if due is not None and due <= now:
            current = self.snapshot(subscriber.conference)
            previous = subscriber.sent
            if current is None or previous is None or previous == current:
                subscriber.core.pending_change = False
            else:
                body = render_partial(previous, current, subscriber.core.next_version())
                subscriber.sent = current
                self._spawn(self._notify(subscriber, body))
        self._arm(subscriber)

    def notify_full(self, subscriber: NotifySubscriber) -> None:
        """The full document now (after a SUBSCRIBE or a refresh)."""
        current = self.snapshot(subscriber.conference)
        if current is None:
            subscriber.core.terminate(SubscriptionReason.NORESOURCE)
            self.finish(subscriber)
            return
        subscriber.sent = current
        body = render_full(current, subscriber.core.next_version())
        self._spawn(self._notify(subscriber, body))
        self._arm(subscriber)

    def finish(self, subscriber: NotifySubscriber) -> None:
        """Drop a terminated subscription and send its final NOTIFY."""
        self.subscribers.pop(subscriber.key, None)
        if subscriber.timer is not None:
            subscriber.timer.cancel()
            subscriber.timer = None
        body = None
        if subscriber.core.reason is SubscriptionReason.NORESOURCE:
            entity = subscriber.sent.entity if subscriber.sent else f"sip:{subscriber.conference}"
            body = render_deleted(entity, subscriber.core.next_version())
        logger.info(
            "[%s] subscription of %s to %s terminated (%s)", subscriber.dialog.call_id,
            subscriber.identity, subscriber.conference, subscriber.core.reason,
        )  # fmt: skip
        self._spawn(self._notify(subscriber, body))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _body(self, subscriber: NotifySubscriber, document: bytes) -> tuple[bytes, str] | None:
        """The NOTIFY body: PSK S/MIME when the subscriber has a KEK (None: refuse plain)."""
        kek = self.kek(subscriber)
        if kek is None:
            info = self.focus.directory.get_conference(subscriber.conference)
            if info is not None and info.policy.notify_protection == "required":
                return None
            return document, CONFERENCE_INFO_CONTENT_TYPE
        entity = prepare_mime_entity(document, CONFERENCE_INFO_CONTENT_TYPE)
        protected = encrypt_auth_enveloped(
            entity, kek.kek, kek.key_id, algorithm=self.config.algorithm
        )
        self.stats["protected"] += 1
        return protected, SMIME_CONTENT_TYPE

    async def _notify(self, subscriber: NotifySubscriber, document: bytes | None) -> None:
        endpoint = self.focus.endpoint
        core = subscriber.core
        if endpoint is None or subscriber.dialog.state is SipDialogState.TERMINATED:
            return
        body: tuple[bytes, str] = (b"", "")
        if document is not None:
            protected = self._body(subscriber, document)
            if protected is None:  # the key went away under a "required" policy
                core.terminate(SubscriptionReason.DEACTIVATED)
                self.subscribers.pop(subscriber.key, None)
            else:
                body = protected
        loop = asyncio.get_running_loop()
        core.notify_started(loop.time())
        event_value = EVENT_PACKAGE + (f";id={subscriber.event_id}" if subscriber.event_id else "")
        headers = [("Event", event_value), ("Subscription-State", core.state_header(loop.time()))]
        request = subscriber.dialog.create_request(
            "NOTIFY", headers=headers, body=body[0], content_type=body[1] or None
        )
        self.stats["notify"] += 1
        ok = await self._send(request, subscriber)
        was_active = core.active
        core.notify_finished(ok)
        if was_active and not core.active:
            self.subscribers.pop(subscriber.key, None)
        elif core.active:
            self._arm(subscriber)
        else:
            subscriber.dialog.terminate()
            subscriber.kek = None  # keys are dropped with the subscription

    async def _send(self, request: Any, subscriber: NotifySubscriber) -> bool:
        """Send one NOTIFY; True when it was answered 2xx within ``notify_timeout``."""
        endpoint = self.focus.endpoint
        assert endpoint is not None
        try:
            async with asyncio.timeout(self.config.notify_timeout):
                response = await endpoint.request(request, subscriber.dialog.destination())
        except (TimeoutError, SipError, OSError) as exc:
            logger.info("[%s] NOTIFY not answered: %s", request.call_id, exc)
            return False
        if not 200 <= response.status < 300:
            logger.info("[%s] NOTIFY answered %d", request.call_id, response.status)
            return False
        return True
