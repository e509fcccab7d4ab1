"""Large-room mixing on one core, SRTP AES_CM_128_HMAC_SHA1_80, 20 ms ticks.

Scenarios (the load: N participants, each its own keys and UDP socket pair):

* ``3+N opus`` / ``3+N PCMU``: 3 speakers (tones) and N listeners sending what
  their encoder makes of silence;
* ``all opus`` / ``all PCMU``: N participants, every one talking.

Each trial runs the real code: every participant is an ``RtpStream`` (bound
on 127.0.0.1 from a ``MediaPlane``); each tick, every participant's SRTP packet
goes through the stream's receive path (unprotect, parse, reception stats,
``RtpMixer.receive``), then ``RtpMixer.tick`` selects speakers, mixes, encodes
and calls every stream's ``send_rtp`` (protect in place, ``sendto``).  The
senders' own encoding and protection happen outside the timing.

In the same run, for the same N streams, the **floor** is measured: one
``send_rtp`` per participant of a payload of the same size and nothing else
-- the per-participant SRTP protect + send that TS 33.328 G.1 makes
irreducible.  Printed per trial: receive, tick (mix + send), their sum, the
floor, and tick / floor.  Real time: p99 of receive + tick < 20 ms and no
tick over 40 ms.  A PNG (``--plot``, matplotlib: ``pip install -e '.[bench]'``)
draws the CPU time per tick against N per scenario, floor beside it.

    unshare -n bash -c 'ip link set lo up && .venv/bin/python bench/mixer.py'
    .venv/bin/python bench/mixer.py --scenarios 3+N-opus --sizes 1000 --profile

Times are the thread's CPU time (``CLOCK_THREAD_CPUTIME_ID``), kernel work of
the sends included: on a machine shared with other loads, wall-clock time
measures the neighbours; CPU time per tick is what one core must supply.
Run it in a network namespace (the plane binds thousands of loopback ports).
Goals (issue 18): 3+N opus N >= 1000, 3+N PCMU N >= 2000, all opus >= 100,
all PCMU >= 300, and tick <= 1.5 x floor in the 3-speaker scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import resource
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrf.rtp.codec import create_codec  # noqa: E402
from mrf.rtp.mixer import RtpMixer, RtpMixerParticipant  # noqa: E402
from mrf.rtp.packet import RtpPacket  # noqa: E402
from mrf.rtp.plane import MediaPlane  # noqa: E402
from mrf.rtp.srtp import SrtpContext, SrtpDirection  # noqa: E402
from mrf.rtp.stream import RtpStream  # noqa: E402

SUITE = "AES_CM_128_HMAC_SHA1_80"
RTPMAP = {"PCMU": ("PCMU", 8000, 0), "opus": ("opus", 48000, 111)}
PERIOD = 0.020
WARMUP = 10
SCENARIOS = {  # name -> (codec, speakers or None for everyone, default sizes)
    "3+N-opus": ("opus", 3, (250, 500, 1000, 1500, 2000)),
    "3+N-PCMU": ("PCMU", 3, (500, 1000, 2000, 3000, 4000)),
    "all-opus": ("opus", None, (25, 50, 100, 150, 200)),
    "all-PCMU": ("PCMU", None, (100, 200, 300, 450, 600)),
}


class Payloads:
    """Pre-encoded 20 ms payloads: one sequence per tone, one of silence for listeners."""

    def __init__(self, codec: str, frames: int = 50) -> None:
        self.codec, self.frames = codec, frames
        self._cache: dict[float, list[bytes]] = {}

    def sequence(self, frequency: float) -> list[bytes]:
        if frequency not in self._cache:
            encoding, clock, _ = RTPMAP[self.codec]
            encoder = create_codec(encoding, clock)
            n, rate = encoder.frame_samples, encoder.sample_rate
            t = np.arange(self.frames * n) / rate
            level = 0.2 if frequency else 0.0
            audio = (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
            self._cache[frequency] = [
                encoder.encode(audio[i * n : (i + 1) * n]) for i in range(self.frames)
            ]
        return self._cache[frequency]


@dataclass
class Member:
    """One participant: its sender (outside the timing) and its server-side stream."""

    stream: RtpStream
    sender: SrtpContext
    payloads: list[bytes]
    pt: int
    increment: int
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    seq: int = 0

    def next_packet(self) -> bytes:
        payload = self.payloads[self.seq % len(self.payloads)]
        packet = RtpPacket(
            self.pt, self.seq & 0xFFFF, (self.seq * self.increment) & 0xFFFFFFFF, self.ssrc,
            payload,
        )  # fmt: skip
        self.seq += 1
        return self.sender.protect(bytes(packet))


@dataclass
class Trial:
    scenario: str
    n: int
    receive: np.ndarray
    tick: np.ndarray
    floor: np.ndarray
    encodes_per_tick: float
    decodes_per_tick: float

    @property
    def total(self) -> np.ndarray:
        return self.receive + self.tick

    @property
    def real_time(self) -> bool:
        total = self.total
        return float(np.percentile(total, 99)) < PERIOD and float(total.max()) < 2 * PERIOD

    def line(self) -> str:
        def ms(values: np.ndarray, q: float = 99) -> str:
            return f"{np.percentile(values, q) * 1e3:6.2f}"

        ratio = np.median(self.tick) / np.median(self.floor)
        return (
            f"{self.scenario:9s} N={self.n:5d}  receive p99 {ms(self.receive)}  "
            f"tick p99 {ms(self.tick)}  total p99 {ms(self.total)} max "
            f"{self.total.max() * 1e3:6.2f} ms  floor p99 {ms(self.floor)}  "
            f"tick/floor (median) {ratio:4.2f}x  encodes/tick {self.encodes_per_tick:5.1f}  "
            f"decodes/tick {self.decodes_per_tick:6.1f}  "
            f"{'real time' if self.real_time else 'MISSES real time'}"
        )


async def _members(
    plane: MediaPlane, sink: socket.socket, codec: str, count: int, speakers: int | None,
    payloads: Payloads,
) -> list[Member]:  # fmt: skip
    encoding, clock, pt = RTPMAP[codec]
    members = []
    for i in range(count):
        stream = await plane.allocate(f"p{i}")
        rx, tx = secrets.token_bytes(30), secrets.token_bytes(30)
        stream.set_keys(SUITE, rx, tx)
        stream.set_remote(*sink.getsockname())
        talking = speakers is None or i < speakers
        frequency = 200.0 + 7 * i if talking else 0.0
        sender = SrtpContext(SUITE, rx, SrtpDirection.OUTBOUND)
        increment = create_codec(encoding, clock).timestamp_increment
        members.append(Member(stream, sender, payloads.sequence(frequency), pt, increment))
    return members


def _drain(sink: socket.socket) -> None:
    try:
        while True:
            sink.recv(2048)
    except BlockingIOError:
        pass


def _sink() -> socket.socket:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    return sink


async def run_trial(scenario: str, n: int, ticks: int, profile: bool = False) -> Trial:
    codec, speakers, _ = SCENARIOS[scenario]
    count = n + (speakers or 0)
    plane = MediaPlane("127.0.0.1", (20000, 59999), max_streams=count, rtcp_interval=3600)
    sink = _sink()
    payloads = Payloads(codec)
    members = await _members(plane, sink, codec, count, speakers, payloads)
    mixer = RtpMixer(max_participants=count)
    encoding, clock, pt = RTPMAP[codec]
    for i, member in enumerate(members):
        key = f"p{i}"
        participant = RtpMixerParticipant(
            key, create_codec(encoding, clock), pt, member.stream.send_rtp,
            {pt: create_codec(encoding, clock)},
        )  # fmt: skip
        mixer.add(participant)
        member.stream.on_rtp = _hook(mixer, key)
    receive, tick = np.zeros(ticks), np.zeros(ticks)
    profiler = cProfile.Profile() if profile else None
    source = ("127.0.0.1", 1)
    now, encodes, decodes = 0.0, 0, 0
    try:
        for index in range(-WARMUP, ticks):
            wire = [member.next_packet() for member in members]
            if index == 0:
                encodes, decodes = mixer.encodes, sum(p.decoded for p in mixer.participants)
                if profiler is not None:
                    profiler.enable()
            started = time.thread_time()
            for member, data in zip(members, wire, strict=True):
                member.stream._datagram_received(data, source, rtcp_port=False)
            middle = time.thread_time()
            mixer.tick(now)
            ended = time.thread_time()
            if index >= 0:
                receive[index], tick[index] = middle - started, ended - middle
            now += PERIOD
            _drain(sink)
        if profiler is not None:
            profiler.disable()
        encodes = mixer.encodes - encodes
        decodes = sum(p.decoded for p in mixer.participants) - decodes
        floor = _floor(members, sink, ticks, pt)
    finally:
        await plane.wait_closed()
        sink.close()
    if profiler is not None:
        _print_profile(profiler, scenario, n, ticks)
    return Trial(scenario, n, receive, tick, floor, encodes / ticks, decodes / ticks)


def _hook(mixer: RtpMixer, key: str):  # type: ignore[no-untyped-def]
    def on_rtp(stream: RtpStream, packet: RtpPacket) -> None:
        mixer.receive(key, packet.payload_type, packet.timestamp, packet.payload, time.monotonic())

    return on_rtp


def _floor(members: list[Member], sink: socket.socket, ticks: int, pt: int) -> np.ndarray:
    """Per-participant SRTP protect + send alone, same streams, a typical payload."""
    payload = members[-1].payloads[7]  # a listener's (or talker's) real payload size
    increment = members[0].increment
    times = np.zeros(ticks)
    for index in range(-WARMUP, ticks):
        started = time.thread_time()
        for member in members:
            member.stream.send_rtp(payload, pt, increment)
        if index >= 0:
            times[index] = time.thread_time() - started
        _drain(sink)
    return times


def _print_profile(profiler: cProfile.Profile, scenario: str, n: int, ticks: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(14)
    print(f"\n-- profile {scenario} N={n}, {ticks} ticks (tottime = own time) --")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[start : start + 16]))


def largest(trials: list[Trial]) -> int:
    """The largest N whose trial is in real time, below the first N that is not."""
    best = 0
    for trial in sorted(trials, key=lambda t: t.n):
        if not trial.real_time:
            break
        best = trial.n
    return best


def plot(results: dict[str, list[Trial]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for ax, (scenario, trials) in zip(axes.flat, results.items(), strict=False):
        ns = [t.n for t in trials]
        for label, values, style in (
            ("receive + tick (p99)", [np.percentile(t.total, 99) for t in trials], "o-"),
            ("tick: mix + send (median)", [np.median(t.tick) for t in trials], "s-"),
            ("floor: SRTP protect + send (median)", [np.median(t.floor) for t in trials], "^--"),
        ):
            ax.plot(ns, np.array(values) * 1e3, style, label=label)
        ax.axhline(20, color="red", linewidth=0.8, linestyle=":", label="20 ms tick")
        ax.set_title(scenario)
        ax.set_xlabel("N")
        ax.set_ylabel("CPU time per tick (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"mrf mixer, one core, SRTP {SUITE}, 20 ms ticks")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=150)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--sizes", default="", help="comma-separated N (default: per scenario)")
    parser.add_argument("--plot", type=Path, default=Path("bench/mixer.png"))
    parser.add_argument("--json", type=Path, default=None, help="write the trials here")
    parser.add_argument("--profile", action="store_true", help="cProfile each trial's ticks")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"one core, {args.ticks} ticks of 20 ms per trial, SRTP {SUITE}")
    results: dict[str, list[Trial]] = {}
    for scenario in args.scenarios.split(","):
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else SCENARIOS[scenario][2]
        trials = results[scenario] = []
        for n in sizes:
            trial = asyncio.run(run_trial(scenario, n, args.ticks, args.profile))
            trials.append(trial)
            print(trial.line(), flush=True)
        print(f"{scenario}: largest N in real time on this grid: {largest(trials)}\n")
    if args.json is not None:
        args.json.write_text(json.dumps({
            s: [{"n": t.n, "receive": t.receive.tolist(), "tick": t.tick.tolist(),
                 "floor": t.floor.tolist()} for t in trials]
            for s, trials in results.items()
        }))  # fmt: skip
    try:
        plot(results, args.plot)
        print(f"plot: {args.plot}")
    except ImportError:
        print("no plot: matplotlib missing (pip install -e '.[bench]')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
