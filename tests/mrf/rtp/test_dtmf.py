"""RFC 4733 telephone-events: one report per event, lost end packets, bad payloads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mrf.rtp.dtmf import RtpTelephoneEvent, RtpTelephoneEventReceiver


def test_payload_round_trip_rfc_4733_figure() -> None:
    event = RtpTelephoneEvent(11, True, 10, 800)
    assert bytes(event) == b"\x0b\x8a\x03\x20"
    assert RtpTelephoneEvent.parse(bytes(event)) == event and event.name == "#"


def test_one_report_per_event_even_with_three_end_packets() -> None:
    receiver = RtpTelephoneEventReceiver()
    reports = []
    for duration, end in ((160, False), (320, False), (400, True), (400, True), (400, True)):
        reports += receiver.receive(1000, bytes(RtpTelephoneEvent(1, end, 10, duration)))
    assert [(r.name, r.duration, r.ended) for r in reports] == [("1", 0.05, True)]


def test_event_without_end_is_reported_when_the_next_starts() -> None:
    receiver = RtpTelephoneEventReceiver()
    assert receiver.receive(1000, bytes(RtpTelephoneEvent(2, False, 10, 160))) == []
    reports = receiver.receive(2000, bytes(RtpTelephoneEvent(3, True, 10, 160)))
    assert [(r.name, r.ended) for r in reports] == [("2", False), ("3", True)]


@given(st.binary(max_size=12))
def test_any_payload_is_reported_or_counted(payload: bytes) -> None:
    receiver = RtpTelephoneEventReceiver()
    receiver.receive(0, payload)
    assert receiver.malformed == (1 if len(payload) < 4 else 0)
