"""Our media plane against Janus AudioBridge on the same core, under the same load.

One room, Opus 48 kHz, 20 ms: N participants send, 3 of them talk (tones of
440, 700 and 1100 Hz), the others send what an Opus encoder makes of silence.
The *same* load generator drives each side, out of process, and each side is
judged by what every participant receives:

* packets: at least 99 % of the expected 50/s overall and 95 % for every
  participant, in the measured window;
* spacing: the 99th percentile of the inter-arrival times (kernel receive
  timestamps, pooled over everyone) at most 30 ms, i.e. 1.5 frames;
* sound: the last second each participant heard, decoded: every talker's tone
  at least 20 dB above the loudest other spectral line, and no talker hearing
  itself (own tone 20 dB under the others).

A side mixes N "in real time" when all three hold; the largest such N on the
grid is reported per side, and the ratio ours / Janus.

Sides (``--sides``):

* ``ours``: a separate process (``--serve``) runs the real media plane:
  a ``MediaPlane`` with one ``RtpStream`` per participant (its own UDP port
  pair and its own SDES keys, AES_CM_128_HMAC_SHA1_80, RTCP every ~5 s),
  hooked into an ``RtpConferenceMixer`` on an asyncio loop -- the path
  ``mrf serve`` runs after a call is answered.  Keys are exchanged over a pipe
  (what SIP/SDES would carry); signalling is not measured.  The generator
  protects what it sends and the analysis unprotects what it received, each
  with the participant's own keys: *ours pays per-participant SRTP both ways*.
* ``janus``: Debian's ``janus`` (``apt-get install janus``), started here with
  a configuration written to a temporary directory (only the AudioBridge
  plugin and the HTTP transport), one room (``sampling_rate`` 48000,
  ``allow_rtp_participants``), each participant joined over the HTTP API with
  the ``rtp`` join option (plain RTP: ``payload_type`` 111, Opus complexity 5
  and 32 kbit/s, as ours).  *Janus with plain RTP pays no SRTP at all.*
* ``ours-plain`` (bench only, not a product mode): the same process as
  ``ours`` with each stream's two SRTP contexts replaced by a pass-through that
  packs the header and copies the payload -- the same code path minus libsrtp,
  to show what SRTP costs us and to compare like with like.

Both servers run pinned to one core (``--server-cpu``, default 0); the
generator processes (one per ``--per-generator`` participants) and this
script run on another (``--generator-cpu``, default 1).  A generator sends
from one UDP socket with ``sendmmsg`` and receives with ``recvmmsg`` (libc
through cffi, ABI mode) with ``SO_TIMESTAMPNS``; its participants' send times
are spread over the 20 ms in 10 slots.  It checks itself: how late each slot
went out (p99, max) and its CPU share; a trial whose generator fell behind
(p99 lateness over ``--max-late``, default 2 ms) is marked ``GENERATOR LATE``, judges nothing, and
is run again (``--retries``, default 2).
Also printed: the server's CPU share of its core in the window
(``/proc/PID/stat``), and for ours the mixer's own tick p99 and dropped ticks.

    unshare -n bash -c 'ip link set lo up && .venv/bin/python bench/mixer_janus.py'
    .venv/bin/python bench/mixer_janus.py --sides ours --sizes 100,500 --seconds 4

Run it inside a network namespace: it binds thousands of loopback ports and
Janus's HTTP port 8088.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import math
import os
import pickle
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cffi  # type: ignore[import-untyped]
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrf.rtp.codec import create_codec  # noqa: E402
from mrf.rtp.srtp import SrtpContext, SrtpDirection, SrtpError  # noqa: E402

SUITE = "AES_CM_128_HMAC_SHA1_80"
PT = 111
PERIOD = 0.020
SLOTS = 10  # send slots per 20 ms period
TONES = (440.0, 700.0, 1100.0)
HOST = "127.0.0.1"
GENERATOR_PORT = 15000  # generator k binds GENERATOR_PORT + 2k
OURS_PORTS = (20000, 39999)
JANUS_PORTS = (40000, 59999)
JANUS_HTTP = 8088
MIN_SHARE_ALL, MIN_SHARE_EACH = 0.99, 0.95
MAX_SPACING_P99 = 0.030
TONE_MARGIN = 20.0
MAX_LATE_P99 = 0.002  # --max-late; both servers' jitter buffers absorb far more
BATCH = 256

# --- batched UDP through libc (cffi ABI mode: nothing to compile) -------------------------

_ffi = cffi.FFI()
_ffi.cdef("""
struct iovec { void *iov_base; size_t iov_len; };
struct msghdr {
    void *msg_name; unsigned int msg_namelen; struct iovec *msg_iov; size_t msg_iovlen;
    void *msg_control; size_t msg_controllen; int msg_flags;
};
struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
struct timespec { long tv_sec; long tv_nsec; };
int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
int recvmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags,
             struct timespec *timeout);
""")
_libc: Any = None
MSG_DONTWAIT = 0x40
SO_TIMESTAMPNS = 35
BUFFER = 1536
CONTROL = 64
NAME = 16


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = _ffi.dlopen(None)
    return _libc


def _sockaddr(host: str, port: int) -> Any:
    name = _ffi.new("char[]", NAME)
    _ffi.memmove(
        name,
        struct.pack("=H", socket.AF_INET)
        + struct.pack("!H", port)
        + socket.inet_aton(host)
        + bytes(8),
        NAME,
    )
    return name


class Messages:
    """`count` preallocated mmsghdrs, each with one buffer (and name, control) of its own."""

    def __init__(self, count: int, *, receive: bool) -> None:
        self.count = count
        self.vec = _ffi.new("struct mmsghdr[]", count)
        self.iov = _ffi.new("struct iovec[]", count)
        self.block = _ffi.new("char[]", count * BUFFER)
        self.data = np.frombuffer(_ffi.buffer(self.block), dtype=np.uint8).reshape(count, BUFFER)
        self.views = [memoryview(self.data[i]) for i in range(count)]
        if receive:
            self.names = _ffi.new("char[]", count * NAME)
            self.controls = _ffi.new("char[]", count * CONTROL)
            self.name_array = np.frombuffer(_ffi.buffer(self.names), dtype=np.uint8).reshape(
                count, NAME
            )
            self.control_array = np.frombuffer(_ffi.buffer(self.controls), dtype=np.int64).reshape(
                count, CONTROL // 8
            )
        lengths = np.frombuffer(_ffi.buffer(self.vec), dtype=np.uint32)
        self.lengths = lengths.reshape(count, _ffi.sizeof("struct mmsghdr") // 4)[
            :, _ffi.offsetof("struct mmsghdr", "msg_len") // 4
        ]
        for i in range(count):
            self.iov[i].iov_base = self.block + i * BUFFER
            self.iov[i].iov_len = BUFFER
            header = self.vec[i].msg_hdr
            header.msg_iov = self.iov + i
            header.msg_iovlen = 1
            if receive:
                header.msg_name = self.names + i * NAME
                header.msg_namelen = NAME
                header.msg_control = self.controls + i * CONTROL
                header.msg_controllen = CONTROL

    def rearm(self, n: int) -> None:
        for i in range(n):
            header = self.vec[i].msg_hdr
            header.msg_namelen = NAME
            header.msg_controllen = CONTROL


# --- payloads ------------------------------------------------------------------------------


def tone_payloads(frequency: float, frames: int = 50) -> list[bytes]:
    """One second of a tone (whole periods: it loops without a click), or of silence."""
    encoder = create_codec("opus", 48000)
    n = encoder.frame_samples
    t = np.arange(frames * n) / 48000
    level = 0.2 if frequency else 0.0
    audio = (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return [encoder.encode(audio[i * n : (i + 1) * n]) for i in range(frames)]


def band_level(audio: np.ndarray, frequency: float, width: float = 20.0) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / 48000)
    return float(20 * np.log10(spectrum[np.abs(freqs - frequency) < width].max() + 1e-9))


def rest_level(audio: np.ndarray, width: float = 40.0) -> float:
    """The loudest spectral line above 100 Hz away from every tone."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / 48000)
    rest = freqs > 100
    for tone in TONES:
        rest &= np.abs(freqs - tone) > width
    return float(20 * np.log10(spectrum[rest].max() + 1e-9))


# --- the load generator (a process of its own) ---------------------------------------------


class _PlainContext:
    """Plain RTP for the generator: the header packed in front of the payload."""

    def __init__(self) -> None:
        self.buffer = bytearray(BUFFER)

    def protect_rtp(self, marker_pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> Any:
        struct.pack_into("!BBHII", self.buffer, 0, 0x80, marker_pt, seq, ts, ssrc)
        size = 12 + len(payload)
        self.buffer[12:size] = payload
        return memoryview(self.buffer)[:size]


def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Send every participant's 50 packets/s, receive what each gets; keep the window."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 26)  # SO_RCVBUFFORCE (root, in a namespace)
    sock.setsockopt(socket.SOL_SOCKET, 32, 1 << 24)  # SO_SNDBUFFORCE
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((HOST, spec["port"]))
    sock.setblocking(False)
    fd = sock.fileno()
    c = _c()
    members = spec["members"]
    tones = {f: tone_payloads(f) for f in {m["tone"] for m in members}}
    contexts: list[Any] = []
    for member in members:
        if member["send_key"]:
            key = bytes.fromhex(member["send_key"])
            contexts.append(SrtpContext(SUITE, key, SrtpDirection.OUTBOUND))
        else:
            contexts.append(_PlainContext())
    names = [_sockaddr(HOST, m["dst_port"]) for m in members]
    by_port = {m["src_port"]: i for i, m in enumerate(members)}
    ssrcs = [secrets.randbits(32) for _ in members]
    slots = [list(range(s, len(members), SLOTS)) for s in range(SLOTS)]
    out = Messages(max(len(s) for s in slots) or 1, receive=False)
    into = Messages(BATCH, receive=True)
    start, warmup, measure = spec["start"], spec["warmup"], spec["measure"]
    capture_from = start + warmup + measure - spec["capture"]
    end = start + warmup + measure
    received_port: list[np.ndarray] = []
    received_at: list[np.ndarray] = []
    captured: dict[int, list[bytes]] = {}
    late: list[float] = []
    sent = drops = rtcp = unknown = 0
    cpu0 = time.process_time()

    def drain() -> int:
        nonlocal rtcp, unknown
        got = 0
        while True:
            n = c.recvmmsg(fd, into.vec, BATCH, MSG_DONTWAIT, _ffi.NULL)
            if n <= 0:
                return got
            got += n
            ports = into.name_array[:n, 2].astype(np.int64) * 256 + into.name_array[:n, 3]
            at = into.control_array[:n, 2] + into.control_array[:n, 3] * 1e-9
            second = into.data[:n, 1]
            media = (second < 200) | (second > 204)  # RTCP (RFC 5761 §4) is not media
            rtcp += int(n - media.sum())
            received_port.append(ports[media])
            received_at.append(at[media])
            if at[-1] >= capture_from:
                lengths = into.lengths[:n]
                for j in np.nonzero(media & (at >= capture_from))[0]:
                    index = by_port.get(int(ports[j]))
                    if index is None:
                        unknown += 1
                        continue
                    captured.setdefault(index, []).append(into.data[j, : lengths[j]].tobytes())
            into.rearm(n)

    tick, running = 0, True
    while running:
        for slot, indices in enumerate(slots):
            due = start + tick * PERIOD + slot * PERIOD / SLOTS
            if due >= end:
                running = False
                break
            while True:
                drain()
                wait = due - time.time()
                if wait <= 0:
                    break
                _wait_readable(sock, min(wait, 0.001))
            late.append(time.time() - due)
            for j, i in enumerate(indices):
                payloads = tones[members[i]["tone"]]
                seq = (members[i]["seq0"] + tick) & 0xFFFF
                view = contexts[i].protect_rtp(
                    PT, seq, (tick * 960) & 0xFFFFFFFF, ssrcs[i], payloads[tick % 50]
                )
                size = len(view)
                out.views[j][:size] = view
                out.iov[j].iov_len = size
                out.vec[j].msg_hdr.msg_name = names[i]
                out.vec[j].msg_hdr.msg_namelen = NAME
            done = 0
            while done < len(indices):
                n = c.sendmmsg(fd, out.vec + done, len(indices) - done, 0)
                if n <= 0:
                    drops += len(indices) - done
                    break
                done += n
            sent += done
        tick += 1
    cpu = time.process_time() - cpu0
    time.sleep(0.05)
    drain()
    sock.close()
    late_arr = np.array(late) if late else np.zeros(1)
    return {
        "ports": np.concatenate(received_port) if received_port else np.zeros(0, np.int64),
        "at": np.concatenate(received_at) if received_at else np.zeros(0),
        "captured": captured,
        "late_p99": float(np.percentile(late_arr, 99)),
        "late_max": float(late_arr.max()),
        "cpu_share": cpu / (end - start),
        "sent": sent,
        "drops": drops,
        "rtcp": rtcp,
        "unknown": unknown,
    }


def _wait_readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


# --- our side: the media plane in a process of its own --------------------------------------


class _PassThrough:
    """ours-plain (bench only): stands in for both SRTP contexts of a stream."""

    def __init__(self) -> None:
        self.buffer = bytearray(BUFFER)
        self.suite = None

    def protect_rtp(self, marker_pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> Any:
        struct.pack_into("!BBHII", self.buffer, 0, 0x80, marker_pt, seq, ts, ssrc)
        size = 12 + len(payload)
        self.buffer[12:size] = payload
        return memoryview(self.buffer)[:size]

    def protect_rtcp(self, data: bytes) -> bytes:
        return data

    def unprotect(self, data: bytes) -> bytes:
        return data

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return data

    def wipe(self) -> None:
        pass


async def serve(count: int, generators: list[int], plain: bool) -> None:
    """Streams and mixer; print the keys; run until stdin closes; print the counters."""
    from mrf.rtp.conference import RtpConferenceMixer
    from mrf.rtp.mixer import RtpMixerParticipant
    from mrf.rtp.plane import MediaPlane
    from mrf.server import tune_gc

    loop = asyncio.get_running_loop()
    plane = MediaPlane(HOST, OURS_PORTS, max_streams=count)
    conference = RtpConferenceMixer("bench", loop)
    conference.mixer.max_participants = count
    keys = []
    streams = []
    for i in range(count):
        stream = await plane.allocate(f"p{i}")
        rx, tx = secrets.token_bytes(30), secrets.token_bytes(30)
        if plain:
            stream._rx, stream._tx = _PassThrough(), _PassThrough()  # type: ignore[assignment]
        else:
            stream.set_keys(SUITE, rx, tx)
        port = generators[i % len(generators)]
        stream.set_remote(HOST, port, port)  # rtcp-mux towards the generator
        participant = RtpMixerParticipant(
            f"p{i}",
            create_codec("opus", 48000),
            PT,
            stream.send_rtp,
            {PT: create_codec("opus", 48000)},
        )
        conference.attach(f"p{i}", stream, participant)
        streams.append(stream)
        keys.append(
            {
                "port": stream.rtp_port,
                "rx": "" if plain else rx.hex(),
                "tx": "" if plain else tx.hex(),
            }
        )
    tune_gc()
    print(json.dumps(keys), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    stats = {
        "dropped_ticks": conference.dropped_ticks,
        "ticks": conference.ticks,
        "tick_p99": conference.tick_percentile(99),
        "packets_in": sum(s.packets_in for s in streams),
        "packets_out": sum(s.packets_out for s in streams),
        "auth_failures": sum(s.auth_failures for s in streams),
        "send_drops": sum(s.send_drops for s in streams),
        "encodes": conference.mixer.encodes,
    }
    conference.close()
    await plane.wait_closed()
    print(json.dumps(stats), flush=True)


# --- Janus ------------------------------------------------------------------------------------


class Janus:
    """Debian's janus with a configuration of our own, driven over its HTTP API."""

    def __init__(self, workdir: Path, cpu: int) -> None:
        self.workdir, self.cpu = workdir, cpu
        self.process: subprocess.Popen[bytes] | None = None
        self.session = 0
        self._tx = 0

    @staticmethod
    def binary() -> str | None:
        return shutil.which("janus")

    def start(self) -> None:
        conf = self.workdir / "janus-conf"
        plugins, transports = self.workdir / "janus-plugins", self.workdir / "janus-transports"
        for folder in (conf, plugins, transports, self.workdir / "janus-empty"):
            folder.mkdir(exist_ok=True)
        libdir = Path("/usr/lib") / (sysconfig.get_config_var("MULTIARCH") or "") / "janus"
        for source, target in (
            (libdir / "plugins" / "libjanus_audiobridge.so", plugins),
            (libdir / "transports" / "libjanus_http.so", transports),
        ):
            link = target / source.name
            if not link.exists():
                link.symlink_to(source)
        empty = self.workdir / "janus-empty"
        (conf / "janus.jcfg").write_text(
            f'general: {{ configs_folder = "{conf}" plugins_folder = "{plugins}"\n'
            f'  transports_folder = "{transports}" events_folder = "{empty}"\n'
            f'  loggers_folder = "{empty}" debug_level = 3 session_timeout = 0 }}\n'
            f'media: {{ rtp_port_range = "60000-60999" }}\n'
            'nat: { ice_enforce_list = "lo" }\n'
        )
        (conf / "janus.transport.http.jcfg").write_text(
            f'general: {{ json = "plain" base_path = "/janus" http = true port = {JANUS_HTTP} }}\n'
            "admin: { admin_http = false }\n"
        )
        (conf / "janus.plugin.audiobridge.jcfg").write_text(
            f'general: {{ events = false local_ip = "{HOST}"\n'
            f'  rtp_port_range = "{JANUS_PORTS[0]}-{JANUS_PORTS[1]}" }}\n'
        )
        log = open(self.workdir / "janus.log", "ab")  # noqa: SIM115  # closed with the process
        self.process = subprocess.Popen(
            [str(self.binary()), "-F", str(conf), "-C", str(conf / "janus.jcfg"), "-o"],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, {self.cpu}),
        )
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.session = self._request("", {"janus": "create"})["data"]["id"]
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"janus exited; see {self.workdir / 'janus.log'}") from None
                time.sleep(0.2)
        raise RuntimeError("janus did not answer on its HTTP port")

    def _request(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        connection = http.client.HTTPConnection(HOST, JANUS_HTTP, timeout=30)
        try:
            self._tx += 1
            if body is None:
                connection.request("GET", f"/janus{path}")
            else:
                body = {**body, "transaction": f"t{self._tx}"}
                connection.request(
                    "POST", f"/janus{path}", json.dumps(body), {"Content-Type": "application/json"}
                )
            reply = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        if isinstance(reply, dict) and reply.get("janus") == "error":
            raise RuntimeError(f"janus: {reply['error']}")
        return reply  # type: ignore[no-any-return]

    def room(self, count: int, generators: list[int]) -> list[dict[str, Any]]:
        """One room; `count` participants joined with plain RTP; their Janus ports."""
        handle = self._attach()
        reply = self._request(
            f"/{self.session}/{handle}",
            {
                "janus": "message",
                "body": {
                    "request": "create",
                    "room": 1234,
                    "sampling_rate": 48000,
                    "allow_rtp_participants": True,
                    "audiolevel_ext": False,
                    "audiolevel_event": False,
                },
            },
        )
        data = reply.get("plugindata", {}).get("data", {})
        if data.get("audiobridge") != "created":
            raise RuntimeError(f"janus room not created: {reply}")
        handles: dict[int, int] = {}
        for i in range(count):
            handle = self._attach()
            handles[handle] = i
            port = generators[i % len(generators)]
            self._request(
                f"/{self.session}/{handle}",
                {
                    "janus": "message",
                    "body": {
                        "request": "join",
                        "room": 1234,
                        "display": f"p{i}",
                        "quality": 5,
                        "bitrate": 32000,
                        "rtp": {"ip": HOST, "port": port, "payload_type": PT},
                    },
                },
            )
        ports: dict[int, int] = {}
        deadline = time.monotonic() + 60 + count / 20
        while len(ports) < count and time.monotonic() < deadline:
            events = self._request(f"/{self.session}?maxev=100")
            for event in events if isinstance(events, list) else [events]:
                data = event.get("plugindata", {}).get("data", {})
                sender = event.get("sender")
                if data.get("audiobridge") == "joined" and "rtp" in data and sender in handles:
                    ports[handles[sender]] = int(data["rtp"]["port"])
                elif data.get("error"):
                    raise RuntimeError(f"janus join failed: {data}")
        if len(ports) < count:
            raise RuntimeError(f"only {len(ports)} of {count} joined janus")
        return [{"port": ports[i], "rx": "", "tx": ""} for i in range(count)]

    def _attach(self) -> int:
        reply = self._request(
            f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.audiobridge"}
        )
        return int(reply["data"]["id"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


# --- one trial ------------------------------------------------------------------------------


@dataclass
class Verdict:
    side: str
    n: int  # listeners: everyone but the 3 talkers
    share_all: float
    share_min: float
    spacing_p99: float
    spacing_max: float
    tones_ok: int
    tones_checked: int
    late_p99: float
    late_max: float
    generator_cpu: float
    server_cpu: float
    extra: str

    @property
    def generator_ok(self) -> bool:
        return self.late_p99 <= MAX_LATE_P99

    @property
    def real_time(self) -> bool:
        return (
            self.generator_ok
            and self.share_all >= MIN_SHARE_ALL
            and self.share_min >= MIN_SHARE_EACH
            and self.spacing_p99 <= MAX_SPACING_P99
            and self.tones_ok == self.tones_checked
        )

    def line(self) -> str:
        verdict = (
            "GENERATOR LATE"
            if not self.generator_ok
            else "real time"
            if self.real_time
            else "MISSES real time"
        )
        return (
            f"{self.side:10s} 3+N N={self.n:5d}  packets {self.share_all * 100:5.1f}% "
            f"(min {self.share_min * 100:5.1f}%)  spacing p99 {self.spacing_p99 * 1e3:5.1f} "
            f"max {self.spacing_max * 1e3:6.1f} ms  tones {self.tones_ok}/{self.tones_checked}  "
            f"server CPU {self.server_cpu * 100:3.0f}%  generator late p99 "
            f"{self.late_p99 * 1e3:4.2f} max {self.late_max * 1e3:5.1f} ms, CPU "
            f"{self.generator_cpu * 100:3.0f}%  {self.extra}{verdict}"
        )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trial(side: str, listeners: int, args: argparse.Namespace, workdir: Path) -> Verdict:
    count = listeners + len(TONES)
    groups = max(1, math.ceil(count / args.per_generator))
    generators = [GENERATOR_PORT + 2 * k for k in range(groups)]
    pin = {"preexec_fn": lambda: os.sched_setaffinity(0, {args.server_cpu})}
    server: subprocess.Popen[str] | None = None
    janus: Janus | None = None
    extra = ""
    try:
        if side == "janus":
            janus = Janus(workdir, args.server_cpu)
            janus.start()
            targets = janus.room(count, generators)
            pid = janus.process.pid  # type: ignore[union-attr]
        else:
            command = [
                sys.executable,
                __file__,
                "--serve",
                str(count),
                "--generator-ports",
                ",".join(map(str, generators)),
            ]
            if side == "ours-plain":
                command.append("--plain")
            server = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **pin
            )  # type: ignore[call-overload]
            assert server.stdout is not None
            targets = json.loads(server.stdout.readline())
            pid = server.pid
        start = time.time() + 1.0
        warmup, measure = args.warmup, args.seconds
        processes = []
        for k, port in enumerate(generators):
            members = []
            for i in range(k, count, groups):
                members.append(
                    {
                        "dst_port": targets[i]["port"],
                        "src_port": targets[i]["port"],
                        "send_key": targets[i]["rx"],
                        "tone": TONES[i] if i < len(TONES) else 0.0,
                        "seq0": secrets.randbits(16),
                        "index": i,
                    }
                )
            spec = {
                "port": port,
                "members": members,
                "start": start,
                "warmup": warmup,
                "measure": measure,
                # every packet: a fresh receiving SRTP context follows the sender's
                # rollover counter only from its first packet (RFC 3711 §3.3.1); the
                # judge decodes the last second
                "capture": warmup + measure + 1.0,
            }
            spec_path = workdir / f"gen{k}.json"
            spec_path.write_text(json.dumps(spec))
            processes.append(
                (
                    subprocess.Popen(
                        [sys.executable, __file__, "--generate", str(spec_path)],
                        preexec_fn=lambda: os.sched_setaffinity(0, {args.generator_cpu}),
                    ),
                    spec_path,
                    members,
                )
            )
        time.sleep(max(0.0, start + warmup - time.time()))
        cpu0 = _cpu_seconds(pid)
        time.sleep(max(0.0, start + warmup + measure - time.time()))
        server_cpu = (_cpu_seconds(pid) - cpu0) / measure
        results = []
        for process, spec_path, members in processes:
            if process.wait(120) != 0:
                raise RuntimeError(f"generator {spec_path} failed")
            with open(spec_path.with_suffix(".pickle"), "rb") as f:
                results.append((pickle.load(f), members))
        if server is not None:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.close()
            stats = json.loads(server.stdout.readline())
            server.wait(60)
            server = None
            extra = (
                f"(mixer tick p99 {stats['tick_p99'] * 1e3:4.1f} ms, dropped ticks "
                f"{stats['dropped_ticks']}, auth failures {stats['auth_failures']}) "
            )
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if janus is not None:
            janus.stop()
    return judge(side, listeners, results, targets, start + warmup, measure, server_cpu, extra)


def judge(
    side: str,
    listeners: int,
    results: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    targets: list[dict[str, Any]],
    window: float,
    measure: float,
    server_cpu: float,
    extra: str,
) -> Verdict:
    expected = measure / PERIOD
    shares, gaps, ok, checked = [], [], 0, 0
    for result, members in results:
        ports, at = result["ports"], result["at"]
        inside = (at >= window) & (at < window + measure)
        for j, member in enumerate(members):
            mine = at[(ports == member["src_port"]) & inside]
            shares.append(mine.size / expected)
            if mine.size > 1:
                gaps.append(np.diff(np.sort(mine)))
            heard = _decode(result["captured"].get(j, []), targets[member["index"]]["tx"])
            checked += 1
            ok += _tones_right(heard, member["index"])
    spacing = np.concatenate(gaps) if gaps else np.array([1.0])
    late = [r["late_p99"] for r, _ in results]
    return Verdict(
        side,
        listeners,
        float(np.mean(shares)),
        float(np.min(shares)),
        float(np.percentile(spacing, 99)),
        float(spacing.max()),
        ok,
        checked,
        max(late),
        max(r["late_max"] for r, _ in results),
        sum(r["cpu_share"] for r, _ in results),
        server_cpu,
        extra,
    )


def _decode(packets: list[bytes], key: str) -> np.ndarray | None:
    """The last second a participant heard, unprotected with its keys, in RTP order."""
    context = SrtpContext(SUITE, bytes.fromhex(key), SrtpDirection.INBOUND) if key else None
    frames = []
    for packet in packets:
        if context is not None:
            try:
                packet = context.unprotect(packet)
            except SrtpError:
                continue
        extension = packet[0] & 0x10
        offset = 12 + 4 * (packet[0] & 0x0F)
        if extension:
            offset += 4 + 4 * struct.unpack_from("!H", packet, offset + 2)[0]
        seq = struct.unpack_from("!H", packet, 2)[0]
        frames.append((seq, packet[offset:]))
    if len(frames) < 50:
        return None
    base = frames[0][0]
    frames.sort(key=lambda f: (f[0] - base) & 0xFFFF)
    decoder = create_codec("opus", 48000)
    audio = [decoder.decode(payload) for _, payload in frames]
    return np.concatenate(audio[-50:])


def _tones_right(audio: np.ndarray | None, index: int) -> bool:
    if audio is None:
        return False
    rest = rest_level(audio)
    heard = [t for k, t in enumerate(TONES) if k != index]
    if any(band_level(audio, t) < rest + TONE_MARGIN for t in heard):
        return False
    if index < len(TONES):  # a talker must not hear itself
        return band_level(audio, TONES[index]) < min(band_level(audio, t) for t in heard) - 20
    return True


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", default="ours,janus,ours-plain")
    parser.add_argument(
        "--sizes",
        default="50,100,200,400,700,1000,1500,2000",
        help="listeners N (3 talkers besides); each side stops at its first miss",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--per-generator", type=int, default=500)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--generator-cpu", type=int, default=1)
    parser.add_argument("--keep-going", action="store_true", help="try every size")
    parser.add_argument(
        "--max-late",
        type=float,
        default=2.0,
        help="ms: a trial whose generator sent later than this (p99) judges nothing",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="re-runs of a trial whose generator was late"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--generator-ports", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global MAX_LATE_P99
    MAX_LATE_P99 = args.max_late / 1e3
    if args.serve:
        ports = [int(p) for p in args.generator_ports.split(",")]
        asyncio.run(serve(args.serve, ports, args.plain))
        return 0
    if args.generate:
        gc.disable()
        spec = json.loads(args.generate.read_text())
        result = generate(spec)
        with open(args.generate.with_suffix(".pickle"), "wb") as f:
            pickle.dump(result, f)
        return 0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.sched_setaffinity(0, {args.generator_cpu})
    sides = args.sides.split(",")
    if "janus" in sides and Janus.binary() is None:
        print(
            "janus not found: install Debian's package (apt-get install janus); running without it"
        )
        sides.remove("janus")
    print(
        f"one room, Opus 48 kHz 20 ms, 3 talkers + N listeners; server on CPU "
        f"{args.server_cpu}, generators on CPU {args.generator_cpu}; load "
        f"{os.getloadavg()[0]:.2f}; window {args.seconds:g} s after {args.warmup:g} s"
    )
    best: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="mixer-janus-") as tmp:
        for side in sides:
            best[side] = 0
            for n in [int(s) for s in args.sizes.split(",")]:
                verdict = trial(side, n, args, Path(tmp))
                print(verdict.line(), flush=True)
                for _ in range(args.retries):
                    if verdict.generator_ok:
                        break
                    verdict = trial(side, n, args, Path(tmp))  # the generator's core was busy
                    print(verdict.line(), flush=True)
                if verdict.real_time:
                    best[side] = max(best[side], n)
                elif not args.keep_going:
                    break
            print(f"{side}: largest N in real time: {best[side]}\n", flush=True)
    if best.get("janus"):
        for side in ("ours", "ours-plain"):
            if side in best:
                print(f"ratio {side}/janus: {best[side] / best['janus']:.2f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
