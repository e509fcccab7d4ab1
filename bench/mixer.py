"""How many participants one core mixes in real time, SRTP included.

For each codec (PCMU, opus) the bench finds the largest conference size N
for which one 20 ms tick -- every participant's packet SRTP-unprotected,
parsed, decoded into its jitter buffer, then the N-1 mixes limited,
encoded, SRTP-protected and sent over a loopback UDP socket -- has a 99th
percentile compute time under 20 ms and no tick over 40 ms (a tick longer
than two periods is what makes the skip-ahead clock drop one).

In the same run it measures the reference: the same packets through SRTP +
codec alone (unprotect, parse, decode, encode, protect, send; no jitter
buffer, no mixing) and prints the ratio mixer / reference at the found N.

    .venv/bin/python bench/mixer.py [--ticks 100] [--codecs PCMU,opus]

Single-threaded: the whole process runs on one core.  Target: >= 200 PCMU.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrf.rtp.codec import RtpCodec, create_codec  # noqa: E402
from mrf.rtp.mixer import RtpMixer, RtpMixerParticipant  # noqa: E402
from mrf.rtp.packet import RtpPacket  # noqa: E402
from mrf.rtp.srtp import SrtpContext, SrtpDirection  # noqa: E402

SUITE = "AES_CM_128_HMAC_SHA1_80"
RTPMAP = {"PCMU": ("PCMU", 8000, 0), "opus": ("opus", 48000, 111)}
PERIOD = 0.020


class Peer:
    """One participant: its sender (outside the timing) and the server's two contexts."""

    def __init__(self, codec_name: str, index: int, sock: socket.socket, target: tuple[str, int]):
        encoding, clock, self.pt = RTPMAP[codec_name]
        rx_key, tx_key = secrets.token_bytes(30), secrets.token_bytes(30)
        self.sender = SrtpContext(SUITE, rx_key, SrtpDirection.OUTBOUND)
        self.rx = SrtpContext(SUITE, rx_key, SrtpDirection.INBOUND)
        self.tx = SrtpContext(SUITE, tx_key, SrtpDirection.OUTBOUND)
        encoder = create_codec(encoding, clock)
        rate, count = encoder.sample_rate, encoder.frame_samples
        t = np.arange(50 * count) / rate
        tone = (0.2 * np.sin(2 * np.pi * (200 + 7 * index) * t)).astype(np.float32)
        self.payloads = [encoder.encode(tone[i * count : (i + 1) * count]) for i in range(50)]
        self.increment = encoder.timestamp_increment
        self.ssrc = secrets.randbits(32)
        self.seq = self.out_seq = 0
        self.sock, self.target = sock, target
        self.codec_args = (encoding, clock)

    def next_packet(self) -> bytes:
        payload = self.payloads[self.seq % len(self.payloads)]
        packet = RtpPacket(
            self.pt, self.seq & 0xFFFF, self.seq * self.increment, self.ssrc, payload
        )
        self.seq += 1
        return self.sender.protect(bytes(packet))

    def send(self, payload: bytes, pt: int, increment: int) -> bool:
        packet = RtpPacket(pt, self.out_seq & 0xFFFF, self.out_seq * increment, 1, payload)
        self.out_seq += 1
        self.sock.sendto(self.tx.protect(bytes(packet)), self.target)
        return True


def _sockets() -> tuple[socket.socket, socket.socket]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    return sink, out


def _drain(sink: socket.socket) -> None:
    try:
        while True:
            sink.recv(2048)
    except BlockingIOError:
        pass


def _send_safely(peer: Peer) -> Callable[[bytes, int, int], bool]:
    def send(payload: bytes, pt: int, increment: int) -> bool:
        try:
            return peer.send(payload, pt, increment)
        except BlockingIOError:
            return False  # socket buffer full: the packet is lost, as on a real network

    return send


def measure_mixer(codec_name: str, n: int, ticks: int) -> np.ndarray:
    """Per-tick compute time with the mixer (seconds)."""
    sink, out = _sockets()
    peers = [Peer(codec_name, i, out, sink.getsockname()) for i in range(n)]
    mixer = RtpMixer(max_participants=n)
    for i, peer in enumerate(peers):
        decoders: dict[int, RtpCodec] = {peer.pt: create_codec(*peer.codec_args)}
        mixer.add(
            RtpMixerParticipant(
                str(i), create_codec(*peer.codec_args), peer.pt, _send_safely(peer), decoders
            )
        )
    times = np.zeros(ticks)
    now = 0.0
    for tick in range(ticks + 5):
        wire = [peer.next_packet() for peer in peers]
        started = time.perf_counter()
        for i, peer in enumerate(peers):
            packet = RtpPacket.parse(peer.rx.unprotect(wire[i]))
            mixer.receive(str(i), packet.payload_type, packet.timestamp, packet.payload, now)
        mixer.tick(now)
        if tick >= 5:  # warm-up: jitter buffers filling
            times[tick - 5] = time.perf_counter() - started
        now += PERIOD
        _drain(sink)
    sink.close()
    out.close()
    return times


def measure_reference(codec_name: str, n: int, ticks: int) -> np.ndarray:
    """Per-tick compute time of SRTP + codec alone (seconds)."""
    sink, out = _sockets()
    peers = [Peer(codec_name, i, out, sink.getsockname()) for i in range(n)]
    codecs = [create_codec(*peer.codec_args) for peer in peers]
    senders = [_send_safely(peer) for peer in peers]
    times = np.zeros(ticks)
    for tick in range(-5, ticks):  # five warm-up ticks, as for the mixer
        wire = [peer.next_packet() for peer in peers]
        started = time.perf_counter()
        for i, codec in enumerate(codecs):
            packet = RtpPacket.parse(peers[i].rx.unprotect(wire[i]))
            samples = codec.decode(packet.payload)
            if samples.shape[0] == codec.frame_samples:
                senders[i](codec.encode(samples), packet.payload_type, codec.timestamp_increment)
        if tick >= 0:
            times[tick] = time.perf_counter() - started
        _drain(sink)
    sink.close()
    out.close()
    return times


def real_time(times: np.ndarray) -> bool:
    return float(np.percentile(times, 99)) < PERIOD and float(times.max()) < 2 * PERIOD


def fits(codec_name: str, n: int, ticks: int) -> bool:
    """Real time at `n`; a miss is measured once more (another process may have run)."""
    return any(real_time(measure_mixer(codec_name, n, ticks)) for _ in range(2))


def largest(codec_name: str, ticks: int) -> int:
    """Grow N by 1.5x until a tick misses real time, then bisect."""
    good, bad = 0, None
    n = 25
    while bad is None:
        if fits(codec_name, n, ticks):
            good, n = n, int(n * 1.5) + 1
        else:
            bad = n
    while bad - good > max(2, good // 50):
        middle = (good + bad) // 2
        if fits(codec_name, middle, ticks):
            good = middle
        else:
            bad = middle
    return good


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=150)
    parser.add_argument("--codecs", default="PCMU,opus")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print(f"one core, {args.ticks} ticks of 20 ms per trial, SRTP {SUITE}")
    for codec_name in args.codecs.split(","):
        n = largest(codec_name, args.ticks)
        mixed = measure_mixer(codec_name, n, args.ticks)
        reference = measure_reference(codec_name, n, args.ticks)
        p99_mix, p99_ref = np.percentile(mixed, 99) * 1e3, np.percentile(reference, 99) * 1e3
        print(
            f"{codec_name:5s} largest conference mixed in real time: {n} participants; "
            f"tick p99 {p99_mix:.2f} ms (max {mixed.max() * 1e3:.2f} ms); "
            f"SRTP + codec alone p99 {p99_ref:.2f} ms; ratio {p99_mix / p99_ref:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
