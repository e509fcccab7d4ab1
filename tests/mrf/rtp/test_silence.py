"""Comfort-silence generator on a fake loop clock (sans-I/O timing checks)."""

from collections.abc import Callable

import pytest

from mrf.rtp.silence import PACKET_INTERVAL, SILENCE_PAYLOADS, RtpSilenceGenerator


class FakeHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Just enough of an event loop: a settable clock and one pending call_at."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pending: tuple[float, Callable[[], None], FakeHandle] | None = None

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle()
        self.pending = (when, callback, handle)
        return handle

    def fire(self, late: float = 0.0) -> None:
        assert self.pending is not None
        when, callback, handle = self.pending
        assert not handle.cancelled
        self.now = when + late
        callback()


class Recorder:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.sent: list[tuple[bytes, int, int, bool]] = []
        self.skipped: list[int] = []

    def send(
        self, payload: bytes, pt: int, timestamp_increment: int, *, marker: bool = False
    ) -> bool:
        self.sent.append((payload, pt, timestamp_increment, marker))
        return self.accept


def generator(
    codec: str = "PCMU", accept: bool = True
) -> tuple[RtpSilenceGenerator, FakeLoop, Recorder]:
    loop, rec = FakeLoop(), Recorder(accept)
    gen = RtpSilenceGenerator(loop, rec.send, rec.skipped.append, codec)  # type: ignore[arg-type]
    return gen, loop, rec


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_first_packet_now_with_marker_then_every_20ms(codec: str) -> None:
    gen, loop, rec = generator(codec)
    gen.start()
    for _ in range(3):
        loop.fire()
    pt, payload = SILENCE_PAYLOADS[codec]
    assert rec.sent == [(payload, pt, 160, True)] + [(payload, pt, 160, False)] * 3
    assert loop.pending is not None and loop.pending[0] == pytest.approx(
        100.0 + 4 * PACKET_INTERVAL
    )
    assert rec.skipped == [] and gen.running


def test_marker_stays_until_a_packet_is_really_sent() -> None:
    gen, loop, rec = generator(accept=False)
    gen.start()
    rec.accept = True
    loop.fire()
    loop.fire()
    assert [marker for *_, marker in rec.sent] == [True, True, False]


def test_late_loop_skips_slots_and_advances_timestamp() -> None:
    gen, loop, rec = generator()
    gen.start()
    loop.fire(late=0.065)  # slot at +20 ms fired at +85 ms: the +40/+60/+80 ms slots are gone
    assert len(rec.sent) == 2 and rec.skipped == [3 * 160]
    assert loop.pending is not None and loop.pending[0] == pytest.approx(100.0 + 0.1)


def test_stop_cancels_and_restart_marks_again() -> None:
    gen, loop, rec = generator()
    gen.start()
    assert loop.pending is not None
    handle = loop.pending[2]
    gen.stop()
    assert handle.cancelled and not gen.running
    gen.stop()  # idempotent
    gen.start()
    assert rec.sent[-1][3] is True


def test_unknown_codec() -> None:
    with pytest.raises(ValueError, match="G722"):
        generator("G722")
