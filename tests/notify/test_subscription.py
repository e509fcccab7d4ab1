"""The subscription core (RFC 6665): SUBSCRIBE checks, state header, rate cap, expiry."""

from __future__ import annotations

import pytest

from focus.sip.message import SipHeaders, SipRequest
from notify.subscription import (
    NotifyLocalError,
    NotifyRemoteError,
    NotifySubscription,
    SubscriptionConfig,
    SubscriptionReason,
    check_subscribe,
    parse_event,
)

CONFIG = SubscriptionConfig(min_expires=60, max_expires=3600, min_notify_interval=5.0)


def subscribe(*headers: tuple[str, str]) -> SipRequest:
    h = SipHeaders()
    for name, value in headers:
        h.add(name, value)
    return SipRequest("SUBSCRIBE", "sip:retro@127.0.0.1", h)


@pytest.mark.parametrize(
    ("headers", "expires"),
    [
        ((("Event", "conference"),), 3600),  # RFC 4575 §3.3 default
        ((("Event", "conference"), ("Expires", "600")), 600),
        ((("Event", "Conference;id=7"), ("Expires", "90000")), 3600),  # capped
        ((("Event", "conference"), ("Expires", "0")), 0),
        ((("Event", "conference"), ("Accept", "application/conference-info+xml, a/b")), 3600),
    ],
)
def test_accepted(headers: tuple[tuple[str, str], ...], expires: int) -> None:
    assert check_subscribe(subscribe(*headers), CONFIG).expires == expires


@pytest.mark.parametrize(
    ("headers", "status", "header"),
    [
        ((), 400, None),
        ((("Event", "presence"),), 489, ("Allow-Events", "conference")),
        ((("Event", "conference"), ("Expires", "59")), 423, ("Min-Expires", "60")),
        ((("Event", "conference"), ("Expires", "soon")), 400, None),
        ((("Event", "conference"), ("Expires", "99999999999")), 400, None),
        ((("Event", "conference"), ("Accept", "text/plain")), 406, None),
    ],
)
def test_refused(
    headers: tuple[tuple[str, str], ...], status: int, header: tuple[str, str] | None
) -> None:
    with pytest.raises(NotifyRemoteError) as caught:
        check_subscribe(subscribe(*headers), CONFIG)
    assert caught.value.status == status
    if header:
        assert header in caught.value.headers


def test_event_id() -> None:
    assert parse_event("conference;id=abc") == ("conference", "abc")
    assert check_subscribe(subscribe(("Event", "conference; id=x")), CONFIG).event_id == "x"


def test_state_header_and_versions() -> None:
    sub = NotifySubscription(CONFIG, 600, now=100.0)
    assert sub.state_header(100.0) == "active;expires=600"
    assert sub.state_header(400.2) == "active;expires=300"
    assert [sub.next_version() for _ in range(3)] == [1, 2, 3]
    sub.refresh(120, now=500.0)
    assert sub.expires_at == 620.0
    sub.terminate(SubscriptionReason.REJECTED)
    sub.terminate(SubscriptionReason.TIMEOUT)  # the first reason stays
    assert sub.state_header(500.0) == "terminated;reason=rejected"
    with pytest.raises(NotifyLocalError):
        sub.refresh(60, now=501.0)


def test_unsubscribe_is_timeout() -> None:
    sub = NotifySubscription(CONFIG, 600, now=0.0)
    sub.refresh(0, now=1.0)
    assert not sub.active and sub.reason is SubscriptionReason.TIMEOUT


def test_rate_cap_coalesces_and_waits_for_the_answer() -> None:
    sub = NotifySubscription(CONFIG, 600, now=0.0)
    sub.notify_started(0.0)  # the full NOTIFY after the SUBSCRIBE
    sub.changed()
    assert sub.notify_at() is None  # in flight: wait for its answer
    sub.notify_finished(True)
    assert sub.notify_at() == 5.0 and sub.get_timer() == 5.0
    sub.changed()  # a second change inside the interval: still one NOTIFY
    assert sub.notify_at() == 5.0
    sub.notify_started(5.0)
    sub.notify_finished(True)
    assert sub.notify_at() is None and sub.get_timer() == 600.0


def test_expiry_and_failed_notify() -> None:
    sub = NotifySubscription(CONFIG, 60, now=0.0)
    assert not sub.handle_timer(59.9)
    assert sub.handle_timer(60.0) and sub.reason is SubscriptionReason.TIMEOUT
    assert sub.get_timer() is None
    other = NotifySubscription(CONFIG, 60, now=0.0)
    other.notify_started(1.0)
    other.changed()
    other.notify_finished(False)  # RFC 6665 §4.2.2: the subscription is gone
    assert not other.active and other.notify_at() is None


def test_config_validation() -> None:
    with pytest.raises(NotifyLocalError):
        SubscriptionConfig(min_expires=100, max_expires=50)
    with pytest.raises(NotifyLocalError):
        SubscriptionConfig(min_notify_interval=-1)
