"""Soak: steady SDES dial-ins, chat and floor traffic, protected subscribers (issue 10).

For ``--seconds`` (default 600) one sipp per conference runs
``tests/peers/sipp/uac_invite_accept.xml`` (INVITE with an SDES offer, 200
with an ``a=crypto`` answer, ACK, ``--hold-ms`` of call, BYE) at ``--rate``
calls/s in total, so each conference holds about ``rate / conferences *
hold`` dial-in participants at any time (100 calls/s, 10 conferences, 2 s:
twenty).  Meanwhile ``--chatters`` ``mrf ue join --msrp`` participants per
conference each send one message every ``--chat-interval`` seconds, and
``--floor-chatters`` of them also join with ``--bfcp`` and alternate
``floor request`` / ``floor release`` on stdin.  ``--subscribers`` users
(enrolled at the embedded KMS, on the conferences' lists round-robin) hold
protected subscriptions (``Event: conference`` with a MIKEY-TICKET PSK S/MIME
exchange, docs/notify.md) from one helper process running
:class:`mrf.ue.notify.UeSubscription` on one SIP endpoint.

The RSS and open file descriptors (``/proc/<pid>/fd``) of ``mrf serve`` are
sampled every ``--sample-interval`` seconds; the RSS trend is the
least-squares slope over the second half of the run.  Reported: failed
calls, set-up time (INVITE to 200, sipp ``-trace_rtt``) p50/p99/max, chat
deliveries, floor grants, NOTIFYs received, RSS and fds at start and end,
and the CPU seconds spent during the load (``/proc/<pid>/stat``; sipp's from
``wait4``) by ``mrf serve``, by the load generators (sipp, the chatters, the
subscriber helper, this script) and by everything else on the machine, so a
failed run shows whether the server or the machine ran out of CPU.
Exit status 0 when no call failed, every chat message reached every other
chatter, every floor requester was granted at least once, every subscriber
stayed subscribed and got protected NOTIFYs, fds returned to the baseline
(± ``--fd-slack``), the RSS slope stayed under ``--max-rss-slope`` KiB/min,
and no traceback was logged.  ``--json FILE`` writes the numbers.

usage (as root, in a private namespace so the ports cannot collide):
    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/soak.py'          # 10 min
    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/soak.py --ci'     # CI, ~70 s
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.interop.harness import MrfServer, clean_env, free_port, require_peer  # noqa: E402
from tests.interop.peers import SIPP_OFFER_CRYPTO  # noqa: E402

SCENARIO = REPO / "tests/peers/sipp/uac_invite_accept.xml"
CALLER = "sip:alice@127.0.0.1"
SDES_80 = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + SIPP_OFFER_CRYPTO["1"][1]
FULL = {"seconds": 600, "rate": 100.0, "conferences": 10, "chatters": 2, "floor_chatters": 1,
        "subscribers": 200, "sample_interval": 5.0, "max_rss_slope": 1024.0}  # fmt: skip
CI = {"seconds": 45, "rate": 20.0, "conferences": 2, "chatters": 3, "floor_chatters": 2,
      "subscribers": 20, "sample_interval": 2.0, "max_rss_slope": 16384.0}  # fmt: skip


@dataclass
class Usage:
    """What ``mrf serve`` holds at one moment (``at``: seconds since the run began)."""

    at: float
    rss_kib: int
    fds: int

    @classmethod
    def of(cls, pid: int, at: float = 0.0) -> Usage:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return cls(round(at, 1), rss, len(list(Path(f"/proc/{pid}/fd").iterdir())))


class Sampler(threading.Thread):
    """Samples :class:`Usage` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[Usage] = []
        self.began = time.monotonic()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.samples.append(Usage.of(self.pid, time.monotonic() - self.began))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(5)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live (or not yet reaped) process, 0.0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (proc(5) 14, 15)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core (``/proc/stat``)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / CLOCK_TICKS, sum(ticks) / CLOCK_TICKS


class CpuAccount:
    """CPU seconds used during the load by the server, each kind of load generator, the machine.

    sipp exits at the end of the load: :meth:`reap` waits for it with ``wait4`` and
    keeps its resource usage; the others are read from ``/proc`` at :meth:`stop`.
    """

    def __init__(self, server: int, chatters: list[int], subscribers: int) -> None:
        self.pids = {"server": [server], "chatters": chatters, "subscribers": [subscribers],
                     "soak": [os.getpid()]}  # fmt: skip
        self.start = {kind: sum(cpu_seconds(p) for p in pids) for kind, pids in self.pids.items()}
        self.busy0, self.total0 = machine_busy_seconds()
        self.began = time.monotonic()
        self.sipp = 0.0
        self.used: dict[str, float] = {}

    def reap(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait for one sipp (killed after ``timeout``), adding its CPU seconds."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                self.sipp += usage.ru_utime + usage.ru_stime
                return
            if time.monotonic() > deadline:
                proc.kill()
                deadline = float("inf")
            time.sleep(0.1)

    def stop(self) -> dict[str, float]:
        """CPU seconds per kind, the wall time and the machine's busy share (every core)."""
        wall = time.monotonic() - self.began
        busy, total = machine_busy_seconds()
        used = {kind: sum(cpu_seconds(p) for p in pids) - self.start[kind]
                for kind, pids in self.pids.items()}  # fmt: skip
        used["sipp"] = self.sipp
        ours = sum(used.values())
        machine = busy - self.busy0
        self.used = {
            **{f"{kind}_cpu_s": round(value, 1) for kind, value in used.items()},
            "wall_s": round(wall, 1), "cores": os.cpu_count() or 1,
            "server_cpu_percent": round(100 * used["server"] / wall, 1),
            "generators_cpu_percent": round(100 * (ours - used["server"]) / wall, 1),
            "machine_busy_percent": round(100 * machine / (total - self.total0) , 1),
            "others_cpu_s": round(max(0.0, machine - ours), 1),
        }  # fmt: skip
        return self.used


def rss_slope(samples: list[Usage]) -> float:
    """Least-squares slope of RSS over the second half of the samples, KiB per minute."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    mean_t = sum(s.at for s in half) / len(half)
    mean_r = sum(s.rss_kib for s in half) / len(half)
    var = sum((s.at - mean_t) ** 2 for s in half)
    cov = sum((s.at - mean_t) * (s.rss_kib - mean_r) for s in half)
    return 60.0 * cov / var if var else 0.0


def subscriber_uri(index: int) -> str:
    return f"sip:sub{index}@127.0.0.1"


def start_server(workdir: Path, conferences: list[str], chatters: int,
                 subscribers: int) -> tuple[MrfServer, str, dict[str, str]]:  # fmt: skip
    """Embedded KMS, the conferences (SDES and MIKEY-TICKET), enrolled subscribers."""
    from focus.kms.keys import KmsKeys

    server = MrfServer(workdir, rtp_port_count=4000)
    kms_url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    text = server.config.read_text()
    server.config.write_text(text[: text.index("[kms]")] + f'[kms]\nurl = "{kms_url}"\n'
                             "embedded = true\n")  # fmt: skip
    for n, name in enumerate(conferences):
        people = [
            CALLER,
            *(f"sip:{name}-chat{i}@127.0.0.1" for i in range(chatters)),
            *(subscriber_uri(i) for i in range(n, subscribers, len(conferences))),
        ]
        args = [arg for who in people for arg in ("--participant", who)]
        # the default key modes: SDES calls, fingerprint TLS chat and floors, MIKEY NOTIFYs
        server.cli("conference", "create", name, *args)
    keys = KmsKeys.in_data_dir(server.data_dir)
    enrolled = {subscriber_uri(i): keys.enroll(subscriber_uri(i)).hex() for i in range(subscribers)}
    server.start()
    return server, kms_url, enrolled


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
    """``mrf ue join --msrp [--bfcp]``: says one line per interval, counts what it hears."""

    def __init__(self, server: MrfServer, workdir: Path, conference: str, index: int,
                 seconds: int, floor: bool) -> None:  # fmt: skip
        self.name = f"{conference}-chat{index}"
        self.room, self.floor = conference, floor
        self.out = workdir / f"ue-{self.name}.jsonl"
        argv = [sys.executable, "-m", "mrf", "ue", "join", server.request_uri(conference),
                "--as", f"sip:{self.name}@127.0.0.1", "--msrp",
                *(["--audio", "--bfcp"] if floor else []),
                "--duration", str(seconds + 60)]  # fmt: skip
        with self.out.open("wb") as out, (workdir / f"ue-{self.name}.log").open("wb") as err:
            env = clean_env(PYTHONPATH=str(REPO))
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, cwd=workdir
            )
        self.said = 0
        self.floor_commands = 0

    def events(self) -> list[dict[str, Any]]:
        lines = self.out.read_bytes().split(b"\n")[:-1]
        return [json.loads(line) for line in lines if line.startswith(b"{")]

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def say(self) -> None:
        self.said += 1
        self._send(f"say {self.name} message {self.said}")

    def toggle_floor(self) -> None:
        """``floor request`` then ``floor release`` on alternate calls."""
        if self.floor:
            self._send("floor release" if self.floor_commands % 2 else "floor request")
            self.floor_commands += 1

    def finish(self) -> None:
        self._send("leave")
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


async def _subscribers_main(spec: dict[str, Any]) -> int:
    """The helper process: every subscription on one endpoint; a summary on stdout at the end."""
    from focus.endpoint import SipEndpoint
    from focus.sip.transaction import SipAddress
    from mrf.ue.notify import UeSubscription, UeSubscriptionOptions
    from mrf.ue.watch import UeWatcher

    counts: dict[str, int] = {"notify": 0, "protected": 0, "plain": 0, "errors": 0, "refused": 0}

    def emit(event: dict[str, Any]) -> None:
        kind = event.get("event")
        counts["notify"] += kind == "notify"
        counts["protected"] += kind == "notify" and event.get("protected") is True
        counts["plain"] += kind == "notify" and not event.get("protected") and "users" in event
        counts["errors"] += kind == "error"
        counts["refused"] += kind == "refused"

    class Dispatcher(UeWatcher):
        def handle_request(self, endpoint: SipEndpoint, event: Any) -> None:
            owner = next((s for s in subscriptions if s.owns(event.request)), None)
            self.subscription = owner
            super().handle_request(endpoint, event)

    endpoint = SipEndpoint(Dispatcher())
    await endpoint.listen_udp("127.0.0.1", 0)
    await endpoint.listen_tcp("127.0.0.1", 0)
    target = SipAddress("udp", "127.0.0.1", spec["port"])
    subscriptions = [UeSubscription(endpoint, UeSubscriptionOptions(
        conference=uri, identity=who, target=target, expires=spec["expires"], mikey=True,
        kms_url=spec["kms_url"], kms_key=key), emit)
        for who, uri, key in spec["users"]]  # fmt: skip
    gate = asyncio.Semaphore(8)

    async def subscribe(subscription: UeSubscription) -> bool:
        async with gate:
            return await subscription.subscribe()

    ok = await asyncio.gather(*(subscribe(s) for s in subscriptions))
    print(json.dumps({"event": "ready", "subscribed": sum(ok)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    alive = sum(1 for s in subscriptions if not s.terminated.is_set())
    with_protected = sum(1 for s in subscriptions if s.received and s.kek is not None)
    await asyncio.gather(*(s.unsubscribe() for s in subscriptions if s.dialog is not None))
    await endpoint.close()
    print(json.dumps({"event": "done", "subscribed": sum(ok), "alive": alive,
                      "with_notifies": with_protected, **counts}), flush=True)  # fmt: skip
    return 0


class Subscribers:
    """Runs :func:`_subscribers_main` in a child process (``--subscribers-helper``)."""

    def __init__(self, server: MrfServer, workdir: Path, kms_url: str, names: list[str],
                 keys: dict[str, str], seconds: int) -> None:  # fmt: skip
        users = [
            (who, server.request_uri(names[i % len(names)]), keys[who])
            for i, who in enumerate(sorted(keys, key=lambda u: int(u[7:].split("@")[0])))
        ]
        spec = {"port": server.port, "kms_url": kms_url, "users": users,
                "expires": max(120, seconds * 2)}  # fmt: skip
        self.count = len(users)
        self.out = workdir / "subscribers.jsonl"
        spec_file = workdir / "subscribers.spec.json"  # KMS keys: not on the command line
        spec_file.touch(mode=0o600)
        spec_file.write_text(json.dumps(spec))
        with self.out.open("wb") as out, (workdir / "subscribers.log").open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--subscribers-helper", str(spec_file)],
                stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=workdir,
                env=clean_env(PYTHONPATH=str(REPO)),
            )  # fmt: skip

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.out.read_text().splitlines() if x.startswith("{")]

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["event"] == "ready" for e in self.lines()) and time.monotonic() < deadline:
            time.sleep(0.2)

    def finish(self) -> dict[str, Any]:
        if self.count == 0:
            return {"subscribed": 0, "alive": 0, "with_notifies": 0, "protected": 0, "errors": 0}
        try:
            self.proc.communicate(b"done\n", timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        done = [e for e in self.lines() if e["event"] == "done"]
        return done[-1] if done else {"subscribed": 0, "alive": 0, "with_notifies": 0,
                                      "protected": 0, "errors": -1}  # fmt: skip


def last_row(path: Path) -> dict[str, str]:
    rows = list(csv.DictReader(path.open(), delimiter=";")) if path.exists() else []
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


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="the 2-core CI profile (~70 s)")
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--rate", type=float, help="calls/s over all conferences")
    parser.add_argument("--conferences", type=int)
    parser.add_argument("--chatters", type=int, help="mrf ue chatters per conference")
    parser.add_argument("--floor-chatters", type=int, help="of which also use --bfcp")
    parser.add_argument("--subscribers", type=int, help="protected subscribers in all")
    parser.add_argument("--sample-interval", type=float, help="seconds between RSS/fd samples")
    parser.add_argument("--max-rss-slope", type=float, help="KiB/min over the second half")
    parser.add_argument("--fd-slack", type=int, default=4)
    parser.add_argument("--chat-interval", type=float, default=2.0)
    parser.add_argument("--hold-ms", type=int, default=2000, help="each call's length")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--subscribers-helper", metavar="FILE", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    for key, value in (CI if options.ci else FULL).items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    return options


def main() -> int:
    options = parse_options()
    if options.subscribers_helper:
        spec = json.loads(Path(options.subscribers_helper).read_text())
        return asyncio.run(_subscribers_main(spec))
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    names = [f"soak{i}" for i in range(1, options.conferences + 1)]
    server, kms_url, keys = start_server(workdir / "server", names, options.chatters,
                                         options.subscribers)  # fmt: skip
    assert server.process is not None
    pid = server.process.proc.pid
    chatters = [Chatter(server, workdir, n, i, options.seconds, i < options.floor_chatters)
                for n in names for i in range(options.chatters)]  # fmt: skip
    subscribers = Subscribers(server, workdir, kms_url, names, keys, options.seconds)
    subscribers.wait_ready(60)
    time.sleep(2)  # the chatters' MSRP and BFCP connections are up
    sampler = Sampler(pid, options.sample_interval)
    sampler.start()
    print(f"work files in {workdir}", flush=True)
    per_conference = options.rate / len(names)
    sipps = [start_sipp(server, workdir, n, per_conference, options.seconds, options.hold_ms)
             for n in names]  # fmt: skip
    cpu = CpuAccount(pid, [c.proc.pid for c in chatters], subscribers.proc.pid)
    began = time.monotonic()
    while time.monotonic() - began < options.seconds:
        for chatter in chatters:
            chatter.say()
            chatter.toggle_floor()
        time.sleep(options.chat_interval)
    for sipp in sipps:
        cpu.reap(sipp, max(5.0, began + options.seconds + 180 - time.monotonic()))
    usage = cpu.stop()
    time.sleep(2)  # the last calls end, the last chat messages arrive
    sampler.stop()
    samples = [*sampler.samples, Usage.of(pid, time.monotonic() - sampler.began)]
    for chatter in chatters:
        if chatter.floor_commands % 2:
            chatter.toggle_floor()  # release a floor still held
        chatter.finish()
    summary = subscribers.finish()
    return report(options, workdir, server, names, chatters, sipps, samples, summary, usage)


def chat_and_floor(chatters: list[Chatter]) -> dict[str, int]:
    """Chat deliveries expected and heard; floor grants, requesters never granted, floor errors."""
    numbers = {"chat_sent": 0, "chat_expected": 0, "chat_heard": 0, "floor_granted": 0,
               "floor_starved": 0, "floor_errors": 0}  # fmt: skip
    for chatter in chatters:
        events = chatter.events()
        others = [c for c in chatters if c is not chatter and c.room == chatter.room]
        numbers["chat_sent"] += chatter.said
        numbers["chat_expected"] += sum(c.said for c in others)
        numbers["chat_heard"] += sum(1 for e in events if e.get("event") == "chat")
        floor = [e for e in events if e.get("event") == "floor"]
        granted = sum(1 for e in floor if e.get("status") == "granted" and e.get("user") is None)
        granted = granted or sum(1 for e in floor if e.get("status") == "granted")
        numbers["floor_granted"] += granted
        numbers["floor_starved"] += chatter.floor and not granted
        bad = ("error", "timeout", "malformed")
        numbers["floor_errors"] += sum(1 for e in floor if e.get("status") in bad)
    return numbers


def report(
    options: argparse.Namespace, workdir: Path, server: MrfServer, names: list[str],
    chatters: list[Chatter], sipps: list[subprocess.Popen[bytes]], samples: list[Usage],
    subscribers: dict[str, Any], cpu: dict[str, float],
) -> int:  # fmt: skip
    rows = [last_row(workdir / f"{name}.csv") for name in names]
    times = setup_times(workdir, names)
    start, end = samples[0], samples[-1]
    numbers: dict[str, Any] = {
        "seconds": options.seconds, "rate": options.rate, "conferences": options.conferences,
        "calls_ok": sum(int(row.get("SuccessfulCall(C)", 0)) for row in rows),
        "calls_failed": sum(int(row.get("FailedCall(C)", 0)) for row in rows),
        "sipp_exit": [s.returncode for s in sipps], "setup_count": len(times),
        "setup_p50_ms": percentile(times, 0.5), "setup_p99_ms": percentile(times, 0.99),
        "setup_max_ms": times[-1] if times else float("nan"),
        **chat_and_floor(chatters), "subscribers": subscribers,
        "rss_start_kib": start.rss_kib, "rss_end_kib": end.rss_kib,
        "rss_max_kib": max(s.rss_kib for s in samples), "rss_slope_kib_per_min": rss_slope(samples),
        "fds_start": start.fds, "fds_end": end.fds, "fds_max": max(s.fds for s in samples),
        "cpu": cpu, "samples": [asdict(s) for s in samples],
        "tracebacks": server.log_text().count("Traceback (most recent call last)"),
    }  # fmt: skip
    server.stop()
    n = numbers
    print(
        f"calls: {n['calls_ok']} connected, {n['calls_failed']} failed (sipp exit {n['sipp_exit']})"
    )
    print(f"call set-up INVITE->200 over {n['setup_count']} calls: p50 {n['setup_p50_ms']:.1f} ms, "
          f"p99 {n['setup_p99_ms']:.1f} ms, max {n['setup_max_ms']:.1f} ms")  # fmt: skip
    print(f"chat: {n['chat_sent']} sent, {n['chat_heard']} of {n['chat_expected']} deliveries; "
          f"floor: {n['floor_granted']} grants, {n['floor_starved']} requesters never granted, "
          f"{n['floor_errors']} errors")  # fmt: skip
    print(f"protected subscribers: {subscribers}")
    print(f"mrf serve RSS {start.rss_kib} -> {end.rss_kib} KiB (max {n['rss_max_kib']}, "
          f"slope {n['rss_slope_kib_per_min']:+.0f} KiB/min over the second half), "
          f"fds {start.fds} -> {end.fds} (max {n['fds_max']})")  # fmt: skip
    print(
        f"CPU over {cpu['wall_s']} s of load on {cpu['cores']} cores: mrf serve "
        f"{cpu['server_cpu_s']} s ({cpu['server_cpu_percent']}% of one core); generators: "
        f"sipp {cpu['sipp_cpu_s']} s, chatters {cpu['chatters_cpu_s']} s, subscribers "
        f"{cpu['subscribers_cpu_s']} s, soak.py {cpu['soak_cpu_s']} s "
        f"({cpu['generators_cpu_percent']}% of one core); machine "
        f"{cpu['machine_busy_percent']}% busy, {cpu['others_cpu_s']} s by other processes"
    )
    print(f"tracebacks in the server log: {n['tracebacks']}")
    if options.json:
        options.json.write_text(json.dumps(numbers, indent=1))
    healthy = (
        n["calls_failed"] == 0 and n["calls_ok"] > 0 and n["chat_heard"] == n["chat_expected"]
        and n["floor_starved"] == 0 and n["floor_errors"] == 0 and n["tracebacks"] == 0
        and subscribers.get("alive") == subscribers.get("with_notifies") == options.subscribers
        and abs(end.fds - start.fds) <= options.fd_slack
        and n["rss_slope_kib_per_min"] <= options.max_rss_slope
    )  # fmt: skip
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
