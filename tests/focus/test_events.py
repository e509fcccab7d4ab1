"""The focus's explicit event bus (focus.events.FocusEventBus)."""

from __future__ import annotations

import logging

import pytest

from focus.events import FocusEvent, FocusEventBus, ParticipantJoined, ParticipantLeft

JOINED = ParticipantJoined("room", "c1", "sip:a@x", "participant", "dial-in")
LEFT = ParticipantLeft("room", "c1", "sip:a@x", "bye")


def test_listeners_hear_every_event_in_subscription_order() -> None:
    bus, heard = FocusEventBus(), []
    bus.subscribe(lambda event: heard.append(("first", event)))
    bus.subscribe(lambda event: heard.append(("second", event)))
    bus.emit(JOINED)
    bus.emit(LEFT)
    assert heard == [("first", JOINED), ("second", JOINED), ("first", LEFT), ("second", LEFT)]


def test_a_failing_listener_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    bus, heard = FocusEventBus(), []

    def broken(event: FocusEvent) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    bus.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, logger="focus.events"):
        bus.emit(JOINED)
    assert heard == [JOINED] and "listener bug" in caplog.text


def test_unsubscribe_stops_delivery_and_may_run_twice() -> None:
    bus, heard = FocusEventBus(), []
    stop = bus.subscribe(heard.append)
    stop()
    stop()
    bus.emit(JOINED)
    assert heard == []


def test_the_focus_publishes_on_the_bus_it_was_given() -> None:
    from focus.service import FocusConfig, FocusService

    bus, heard = FocusEventBus(), []
    bus.subscribe(heard.append)
    focus = FocusService(_NoStore(), _NoMedia(), FocusConfig(), events=bus)  # type: ignore[arg-type]
    assert focus.events is bus
    unsubscribe = focus.subscribe(heard.append)  # the same bus
    focus.events.emit(LEFT)
    unsubscribe()
    assert heard == [LEFT, LEFT]


class _NoStore:
    pass


class _NoMedia:
    pass
