"""Soak: steady SDES dial-ins to several conferences plus chatting ``mrf ue`` participants.

For ``--seconds`` (default 60; 600 for the real soak) one sipp per conference
runs ``tests/interop/sipp/uac_invite_accept.xml`` (INVITE with an SDES offer,
200 with an ``a=crypto`` answer, ACK, ``--hold-ms`` of call, BYE) at
``--rate`` calls/s in total, while ``--chatters`` ``mrf ue join --msrp``
participants per conference each send one message every ``--chat-interval``
seconds.  At the end it reports failed calls, the call set-up time (INVITE to
200, sipp ``-trace_rtt``) p50/p99/max, chat messages sent and received, and
the RSS and open file descriptors (``/proc/<pid>/fd``) of ``mrf serve`` at the
start and the end.  Exit status 0 when no call failed, every chat message
reached every other chatter of its conference, and no traceback was logged.

usage (as root, in a private namespace so the ports cannot collide):
    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/soak.py --seconds 600'
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.interop.harness import MrfServer, clean_env, free_port, require_peer  # noqa: E402
from tests.interop.peers import SIPP_OFFER_CRYPTO  # noqa: E402

SCENARIO = REPO / "tests/interop/sipp/uac_invite_accept.xml"
CALLER = "sip:alice@127.0.0.1"
SDES_80 = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + SIPP_OFFER_CRYPTO["1"][1]


@dataclass
class Usage:
    """What ``mrf serve`` holds at one moment."""

    rss_kib: int
    fds: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return cls(rss, len(list(Path(f"/proc/{pid}/fd").iterdir())))


def start_server(workdir: Path, conferences: list[str], chatters: int) -> MrfServer:
    server = MrfServer(workdir, rtp_port_count=4000)
    for name in conferences:
        people = [CALLER, *(f"sip:{name}-chat{i}@127.0.0.1" for i in range(chatters))]
        args = [arg for who in people for arg in ("--participant", who)]
        server.cli("conference", "create", name, *args, "--key-mode", "sdes")
    server.start()
    return server


def start_sipp(
    server: MrfServer, workdir: Path, name: str, rate: float, seconds: int, hold_ms: int
) -> subprocess.Popen[bytes]:
    """One sipp at ``rate`` calls/s (``-r`` calls per ``-rp`` ms) for ``seconds``."""
    calls = max(1, round(rate * seconds))
    argv = [require_peer("sipp"), f"127.0.0.1:{server.port}", "-sf", str(SCENARIO),
            "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1",
            "-r", str(max(1, round(rate * 10))), "-rp", "10000", "-m", str(calls),
            "-l", str(max(10, int(rate * hold_ms / 1000) * 4 + 10)), "-d", str(hold_ms),
            "-nostdin", "-recv_timeout", "8000", "-timeout", str(seconds + 120), "-timeout_error",
            "-trace_stat", "-stf", str(workdir / f"{name}.csv"), "-fd", "5",
            "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file",
            str(workdir / f"{name}.errors.log"),
            "-key", "ruri", server.request_uri(name), "-key", "from_uri", CALLER,
            "-key", "pai_uri", CALLER, "-key", "privacy", "none",
            "-key", "proto", "RTP/SAVP", "-key", "media_attr", SDES_80]  # fmt: skip
    directory = workdir / name
    directory.mkdir()
    with (workdir / f"{name}.out.log").open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=directory,
                                env=clean_env())  # fmt: skip


class Chatter:
    """``mrf ue join --msrp``: says one line per interval, counts what it hears."""

    def __init__(self, server: MrfServer, workdir: Path, conference: str, index: int,
                 seconds: int) -> None:  # fmt: skip
        self.name = f"{conference}-chat{index}"
        self.out = workdir / f"ue-{self.name}.jsonl"
        argv = [sys.executable, "-m", "mrf", "ue", "join", server.request_uri(conference),
                "--as", f"sip:{self.name}@127.0.0.1", "--msrp",
                "--duration", str(seconds + 60)]  # fmt: skip
        with self.out.open("wb") as out, (workdir / f"ue-{self.name}.log").open("wb") as err:
            env = clean_env(PYTHONPATH=str(REPO))
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, cwd=workdir
            )
        self.said = 0

    def events(self) -> list[dict[str, object]]:
        lines = self.out.read_bytes().split(b"\n")[:-1]
        return [json.loads(line) for line in lines if line.startswith(b"{")]

    def say(self) -> None:
        assert self.proc.stdin is not None
        self.said += 1
        self.proc.stdin.write(f"say {self.name} message {self.said}\n".encode())
        self.proc.stdin.flush()

    def finish(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(b"leave\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def last_row(path: Path) -> dict[str, str]:
    rows = list(csv.DictReader(path.open(), delimiter=";"))
    return rows[-1] if rows else {}


def setup_times(workdir: Path, names: list[str]) -> list[float]:
    """INVITE→200 times in ms from every sipp's ``*_rtt.csv`` (``date;rtt_ms;rtd_no``)."""
    times: list[float] = []
    for name in names:
        for path in (workdir / name).glob("*_rtt.csv"):
            for line in path.read_text().splitlines():
                fields = line.split(";")
                if len(fields) >= 2 and fields[1].replace(".", "", 1).isdigit():
                    times.append(float(fields[1]))
    return sorted(times)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0, help="calls/s over all conferences")
    parser.add_argument("--conferences", type=int, default=3)
    parser.add_argument("--chatters", type=int, default=2, help="mrf ue chatters per conference")
    parser.add_argument("--chat-interval", type=float, default=2.0)
    parser.add_argument("--hold-ms", type=int, default=2000, help="each call's length")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    names = [f"soak{i}" for i in range(1, options.conferences + 1)]
    server = start_server(workdir / "server", names, options.chatters)
    assert server.process is not None
    pid = server.process.proc.pid
    chatters = [Chatter(server, workdir, n, i, options.seconds)
                for n in names for i in range(options.chatters)]  # fmt: skip
    time.sleep(3)  # the chatters dial in and open their MSRP connections
    start_usage = Usage.of(pid)
    print(f"work files in {workdir}; start: RSS {start_usage.rss_kib} KiB, {start_usage.fds} fds")
    per_conference = options.rate / len(names)
    sipps = [start_sipp(server, workdir, n, per_conference, options.seconds, options.hold_ms)
             for n in names]  # fmt: skip
    began = time.monotonic()
    while time.monotonic() - began < options.seconds:
        for chatter in chatters:
            chatter.say()
        time.sleep(options.chat_interval)
    for sipp in sipps:
        try:
            sipp.wait(options.seconds + 180)
        except subprocess.TimeoutExpired:
            sipp.kill()
            sipp.wait(5)
    time.sleep(2)  # the last chat messages arrive
    end_usage = Usage.of(pid)
    for chatter in chatters:
        chatter.finish()
    return report(options, workdir, server, names, chatters, sipps, start_usage, end_usage)


def report(
    options: argparse.Namespace, workdir: Path, server: MrfServer, names: list[str],
    chatters: list[Chatter], sipps: list[subprocess.Popen[bytes]], start: Usage, end: Usage,
) -> int:  # fmt: skip
    rows = [last_row(workdir / f"{name}.csv") for name in names]
    ok = sum(int(row.get("SuccessfulCall(C)", 0)) for row in rows)
    failed = sum(int(row.get("FailedCall(C)", 0)) for row in rows)
    times = setup_times(workdir, names)
    expected_chat = 0
    heard = 0
    for chatter in chatters:
        room = chatter.name.split("-")[0]
        others = [c for c in chatters if c is not chatter and c.name.split("-")[0] == room]
        expected_chat += sum(c.said for c in others)
        heard += sum(1 for e in chatter.events() if e.get("event") == "chat")
    tracebacks = server.log_text().count("Traceback (most recent call last)")
    server.stop()
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    print(f"calls: {ok} connected, {failed} failed (sipp exit {[s.returncode for s in sipps]})")
    print(f"call set-up INVITE->200 over {len(times)} calls: p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms, max {times[-1] if times else float('nan'):.1f} ms")  # fmt: skip
    print(f"chat: {sum(c.said for c in chatters)} sent, {heard} of {expected_chat} deliveries")
    print(f"mrf serve RSS {start.rss_kib} -> {end.rss_kib} KiB "
          f"({end.rss_kib - start.rss_kib:+d}), fds {start.fds} -> {end.fds}")  # fmt: skip
    print(f"tracebacks in the server log: {tracebacks}")
    healthy = failed == 0 and ok > 0 and heard == expected_chat and tracebacks == 0
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
