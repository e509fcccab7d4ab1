"""One conference-event subscription at the notifier (RFC 6665 §4.2, RFC 4575 §3).

Sans-I/O core: requests and ``now`` in, decisions and timer deadlines out.

* :func:`check_subscribe` vets a SUBSCRIBE: ``Event: conference`` else 489 with
  ``Allow-Events`` (RFC 6665 §4.2.1.1 / §8.2.2), ``Accept`` must admit
  ``application/conference-info+xml`` else 406 (RFC 4575 §3.4), ``Expires``
  absent → 3600 s (RFC 4575 §3.3), above the cap → the cap (the 200 may shorten,
  never lengthen, §4.2.1.1), below ``min_expires`` but not 0 → 423 with
  ``Min-Expires``; ``Expires: 0`` un-subscribes (§4.1.2.3) or, out of dialog,
  fetches the state once.
* :class:`NotifySubscription` is the life cycle::

      (new) --accept--> ACTIVE --refresh--> ACTIVE
                          |  expiry / unsubscribe / terminate(reason)
                          v
                      TERMINATED

  with the ``Subscription-State`` value for each NOTIFY (§4.1.3: ``active;
  expires=N`` or ``terminated;reason=R``), the per-subscription ``version`` of
  conference-info (RFC 4575 §5.2) and a NOTIFY rate cap: changes arriving less
  than ``min_notify_interval`` after the previous NOTIFY are coalesced into one
  NOTIFY at the end of the interval (RFC 4575 §3.9 recommends at most one NOTIFY
  per 5 s); a change NOTIFY waits until the previous NOTIFY was answered.  The NOTIFYs a SUBSCRIBE
  triggers and the final one are never delayed (§4.2.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from focus.sip.message import SipRequest

EVENT_PACKAGE = "conference"  # RFC 4575 §3.1
CONFERENCE_INFO_TYPE = "application/conference-info+xml"
MAX_EXPIRES_VALUE = 0xFFFFFFFF  # RFC 3261 §20.19: delta-seconds fit 32 bits


class NotifyError(Exception):
    """Base of the conference event package's errors::

    NotifyError
     ├── NotifyLocalError   our misuse (a NOTIFY on a terminated subscription)
     └── NotifyRemoteError  the subscriber's request is refused: status, reason, headers,
                            warning
    """


class NotifyLocalError(NotifyError):
    """The notifier used a subscription wrongly."""


class NotifyRemoteError(NotifyError):
    """A SUBSCRIBE the notifier refuses; answer with ``status`` and ``headers``.

    ``warning``: what was unacceptable, in words, for the answer's ``Warning``
    (RFC 3261 §20.43; required for 403, 404 and 488, never key material).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        warning: str | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers
        self.warning = warning


class SubscriptionState(StrEnum):
    """``Subscription-State`` substate values (RFC 6665 §4.1.3) this notifier uses."""

    ACTIVE = "active"
    TERMINATED = "terminated"


class SubscriptionReason(StrEnum):
    """Reason codes of a terminated subscription (RFC 6665 §4.1.3, IANA registry)."""

    DEACTIVATED = "deactivated"  # retry at once (server shutdown, key gone)
    PROBATION = "probation"
    REJECTED = "rejected"  # authorization changed: do not retry
    TIMEOUT = "timeout"  # expired, or un-subscribed
    GIVEUP = "giveup"
    NORESOURCE = "noresource"  # the conference ended (RFC 4575 §3.3)
    INVARIANT = "invariant"


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    """Notifier limits; durations in seconds."""

    default_expires: int = 3600  # RFC 4575 §3.3
    min_expires: int = 60
    max_expires: int = 3600
    min_notify_interval: float = 5.0  # RFC 4575 §3.9
    max_subscriptions: int = 10_000
    max_subscriptions_per_conference: int = 2_000

    def __post_init__(self) -> None:
        if not 1 <= self.min_expires <= self.max_expires:
            raise NotifyLocalError("need 1 <= min_expires <= max_expires")
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise NotifyLocalError("default_expires must lie within [min_expires, max_expires]")
        if self.min_notify_interval < 0:
            raise NotifyLocalError("min_notify_interval must not be negative")


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """What :func:`check_subscribe` accepted: the granted duration and the Event id."""

    expires: int  # seconds granted; 0 = un-subscribe or fetch
    event_id: str | None


def parse_event(value: str | None) -> tuple[str, str | None]:
    """``(package, id)`` of an ``Event`` header value (RFC 6665 §8.2.1)."""
    if not value:
        raise NotifyRemoteError(400, "Missing Event Header")
    package, *params = (part.strip() for part in value.split(";"))
    event_id = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "id":
            event_id = param_value.strip().strip('"') or None
    return package.lower(), event_id


def _accepts(request: SipRequest) -> bool:
    values = request.headers.get_all("Accept")
    if not values:
        return True  # RFC 4575 §3.4: the default
    types = {v.split(";")[0].strip().lower() for v in values}
    return bool(types & {CONFERENCE_INFO_TYPE, "application/*", "*/*"})


def _requested_expires(request: SipRequest, config: SubscriptionConfig) -> int:
    value = request.headers.get("Expires")
    if value is None:
        return config.default_expires
    text = value.strip()
    if not text.isdigit() or len(text) > 10 or int(text) > MAX_EXPIRES_VALUE:
        raise NotifyRemoteError(400, "Invalid Expires")
    return int(text)


def check_subscribe(request: SipRequest, config: SubscriptionConfig) -> SubscribeRequest:
    """Vet a SUBSCRIBE for the conference package; raise :class:`NotifyRemoteError`."""
    package, event_id = parse_event(request.headers.get("Event"))
    if package != EVENT_PACKAGE:
        raise NotifyRemoteError(489, "Bad Event", (("Allow-Events", EVENT_PACKAGE),))
    if not _accepts(request):
        raise NotifyRemoteError(406, "Not Acceptable", (("Accept", CONFERENCE_INFO_TYPE),))
    expires = _requested_expires(request, config)
    if 0 < expires < config.min_expires:
        raise NotifyRemoteError(
            423, "Interval Too Brief", (("Min-Expires", str(config.min_expires)),)
        )
    return SubscribeRequest(min(expires, config.max_expires), event_id)


class NotifySubscription:
    """The notifier's state of one subscription (see the module docstring)."""

    def __init__(self, config: SubscriptionConfig, expires: int, now: float) -> None:
        self.config = config
        self.state = SubscriptionState.ACTIVE
        self.reason: SubscriptionReason | None = None
        self.expires_at = now + expires
        self.version = 0  # conference-info version of the last document sent
        self.last_notify_at: float | None = None
        self.pending_change = False
        self.in_flight = 0  # NOTIFYs awaiting their final response

    @property
    def active(self) -> bool:
        return self.state is SubscriptionState.ACTIVE

    def refresh(self, expires: int, now: float) -> None:
        """A refreshing SUBSCRIBE (§4.2.1.2); ``expires == 0`` ends it (timeout)."""
        if not self.active:
            raise NotifyLocalError("refresh of a terminated subscription")
        if expires == 0:
            self.terminate(SubscriptionReason.TIMEOUT)
        else:
            self.expires_at = now + expires

    def terminate(self, reason: SubscriptionReason) -> None:
        """End it; the next NOTIFY says ``terminated;reason=...`` (the first reason stays)."""
        if self.active:
            self.state = SubscriptionState.TERMINATED
            self.reason = reason

    def state_header(self, now: float) -> str:
        """The ``Subscription-State`` value for a NOTIFY sent at ``now`` (§4.1.3)."""
        if self.active:
            return f"active;expires={max(0, int(self.expires_at - now + 0.5))}"
        return f"terminated;reason={self.reason or SubscriptionReason.TIMEOUT}"

    def next_version(self) -> int:
        """The version for the next document: +1 each notification (RFC 4575 §5.2)."""
        if self.version >= 0xFFFFFFFF:
            raise NotifyLocalError("conference-info version space exhausted")
        self.version += 1
        return self.version

    # -- rate cap --------------------------------------------------------------

    def changed(self) -> None:
        """The conference changed: a (coalesced) partial NOTIFY is owed."""
        if self.active:
            self.pending_change = True

    def notify_at(self) -> float | None:
        """When the owed change NOTIFY may go out, or None if none is owed now."""
        if not self.active or not self.pending_change or self.in_flight:
            return None
        if self.last_notify_at is None:
            return float("-inf")
        return self.last_notify_at + self.config.min_notify_interval

    def get_timer(self) -> float | None:
        """The earliest deadline: the owed NOTIFY or the expiry."""
        if not self.active:
            return None
        due = self.notify_at()
        return self.expires_at if due is None else min(due, self.expires_at)

    def handle_timer(self, now: float) -> bool:
        """Expire the subscription at its deadline; True if it just expired."""
        if self.active and now >= self.expires_at:
            self.terminate(SubscriptionReason.TIMEOUT)
            return True
        return False

    def notify_started(self, now: float) -> None:
        """A NOTIFY (carrying every change so far) is being sent."""
        self.in_flight += 1
        self.pending_change = False
        self.last_notify_at = now

    def notify_finished(self, ok: bool) -> None:
        """Its final response arrived: a failure ends the subscription (RFC 6665 §4.2.2)."""
        self.in_flight = max(0, self.in_flight - 1)
        if not ok:
            self.terminate(SubscriptionReason.GIVEUP)
            self.pending_change = False
