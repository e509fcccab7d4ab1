"""SIP call-rate benchmark: ``mrf serve`` against a bare asyncio UDP responder.

Both targets get the same sipp scenario (tests/peers/sipp/uac_invite_accept.xml:
INVITE with an SDES offer / 200 with an a=crypto answer / ACK / BYE / 200, no
pause) at rising rates, ``-m rate*seconds`` calls each.  A rate passes when
sipp reports zero failed calls and every call succeeded; the result is the
highest passing rate per target and ``ratio = mrf_max_cps / reference_max_cps``.
The reference is a minimal Python ``DatagramProtocol`` (no transactions, no
SRTP, no database), i.e. the ceiling of a single asyncio process on this host.

usage (as root, in a private namespace so fixed ports cannot collide):
    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/sip_cps.py'
options: --rates 100,200,400 --seconds 5 --keep-going --transport u1
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.interop.harness import (  # noqa: E402  (repo root first on sys.path)
    Conference,
    MrfServer,
    free_port,
    sip_options,
    wait_for,
)

SCENARIO = REPO / "tests/peers/sipp/uac_invite_accept.xml"
CALLER = "sip:alice@example.com"
DEFAULT_RATES = (100, 200, 400, 600, 800, 1000)


@dataclass
class RateResult:
    """One sipp run at one target rate."""

    rate: int
    calls: int
    successful: int
    failed: int
    seconds: float
    returncode: int

    @property
    def passed(self) -> bool:
        """Zero failed calls, every call completed, and the rate really offered.

        sipp falls behind its target when the peer answers slowly; a run that
        completed fewer than 90 % of the target calls per second (wall clock,
        including sipp's start and drain) does not count as that rate.
        """
        complete = self.returncode == 0 and self.failed == 0 and self.successful == self.calls
        return complete and self.achieved >= 0.9 * self.rate

    @property
    def achieved(self) -> float:
        """Completed calls per wall-clock second."""
        return self.successful / self.seconds if self.seconds else 0.0


# --- reference responder (RFC 3261 §8.2.6 responses, stateless) -------------------

# Record-Route too (RFC 3261 §12.1.1): behind a proxy (bench/cluster.py) ACK and BYE follow it
_HEADER = re.compile(rb"^(Via|v|From|f|To|t|Call-ID|i|CSeq|Record-Route):[ \t]*(.*)$", re.I | re.M)
_CRYPTO = re.compile(rb"a=crypto:(\d+) (AES_CM_128_HMAC_SHA1_(?:80|32))")


class ReferenceResponder(asyncio.DatagramProtocol):
    """Answers INVITE with 200 + SDES SDP, BYE/OPTIONS with 200, ignores ACK."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])  # in Contact: a proxy uses it

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        method = data.split(b" ", 1)[0]
        if method not in (b"INVITE", b"BYE", b"OPTIONS"):
            return
        head = data.split(b"\r\n\r\n", 1)[0]
        copied = [b"%s: %s" % (name, value.rstrip(b"\r")) for name, value in _HEADER.findall(head)]
        lines = [b"SIP/2.0 200 OK"]
        for line in copied:
            if line[:3].lower() in (b"to:", b"t: ") and b";tag=" not in line:
                line += b";tag=" + secrets.token_hex(4).encode()
            lines.append(line)
        body = b""
        if method == b"INVITE":
            body = self._answer(data)
            contact = b"Contact: <sip:ref@127.0.0.1:%d>" % self.port
            lines += [contact, b"Content-Type: application/sdp"]
        lines.append(b"Content-Length: %d" % len(body))
        self.transport.sendto(b"\r\n".join(lines) + b"\r\n\r\n" + body, addr)

    @staticmethod
    def _answer(offer: bytes) -> bytes:
        match = _CRYPTO.search(offer)
        tag, suite = (match[1], match[2]) if match else (b"1", b"AES_CM_128_HMAC_SHA1_80")
        key = base64.b64encode(os.urandom(30))
        return (
            b"v=0\r\no=ref 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 30000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            b"a=crypto:%s %s inline:%s\r\na=sendrecv\r\n" % (tag, suite, key)
        )


def serve_reference(port: int) -> None:
    """Run the reference responder until killed (``--reference-responder PORT``)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(ReferenceResponder, local_addr=("127.0.0.1", port))
        await asyncio.Event().wait()

    asyncio.run(main())


# --- sipp driver -------------------------------------------------------------------


def run_rate(
    target: str, ruri: str, rate: int, seconds: int, workdir: Path, transport: str
) -> RateResult:
    """sipp at ``rate`` cps for ``rate*seconds`` calls; counters from ``-trace_stat``."""
    calls = rate * seconds
    stat = workdir / f"stat-{rate}.csv"
    argv = ["sipp", target, "-sf", str(SCENARIO), "-t", transport, "-i", "127.0.0.1"]
    argv += ["-p", str(free_port()), "-r", str(rate), "-m", str(calls), "-l", str(calls)]
    argv += ["-d", "0", "-nostdin", "-recv_timeout", "5000", "-timeout", str(seconds * 4 + 20)]
    argv += ["-timeout_error", "-trace_stat", "-stf", str(stat), "-fd", "1"]
    argv += ["-key", "ruri", ruri, "-key", "from_uri", CALLER, "-key", "pai_uri", CALLER]
    argv += [
        "-key",
        "privacy",
        "none",
        "-trace_err",
        "-error_file",
        str(workdir / f"err-{rate}.log"),
    ]
    started = time.monotonic()
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds * 4 + 40, check=False
    )
    elapsed = time.monotonic() - started
    (workdir / f"sipp-{rate}.out").write_text(proc.stdout + proc.stderr)
    successful, failed = _final_counters(stat)
    return RateResult(rate, calls, successful, failed, elapsed, proc.returncode)


def _final_counters(stat: Path) -> tuple[int, int]:
    """SuccessfulCall(C) and FailedCall(C) of the last ``-trace_stat`` row."""
    if not stat.exists():
        return 0, 0
    rows = list(csv.DictReader(stat.read_text().splitlines(), delimiter=";"))
    if not rows:
        return 0, 0
    last = rows[-1]
    return int(last.get("SuccessfulCall(C)", 0) or 0), int(last.get("FailedCall(C)", 0) or 0)


def sweep(
    name: str, target: str, ruri: str, args: argparse.Namespace, workdir: Path
) -> list[RateResult]:
    """All rates against one target (stops after the first failing rate)."""
    results = []
    for rate in args.rates:
        result = run_rate(target, ruri, rate, args.seconds, workdir, args.transport)
        results.append(result)
        verdict = "ok" if result.passed else "FAIL"
        print(
            f"  {name:9} {rate:5d} cps: {result.successful:6d}/{result.calls} ok, "
            f"{result.failed} failed, {result.achieved:7.1f} cps achieved  {verdict}",
            flush=True,
        )
        if not result.passed and not args.keep_going:
            break
    return results


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def best(results: list[RateResult]) -> int:
    """Highest rate that passed (0 if none)."""
    return max((r.rate for r in results if r.passed), default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", type=lambda t: [int(x) for x in t.split(",")], default=list(DEFAULT_RATES)
    )
    parser.add_argument("--seconds", type=int, default=5, help="seconds of calls per rate")
    parser.add_argument("--transport", default="u1", choices=["u1"], help="sipp transport (UDP)")
    parser.add_argument(
        "--keep-going", action="store_true", help="run every rate even after a failure"
    )
    parser.add_argument("--reference-responder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_responder:
        serve_reference(args.reference_responder)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="sip-cps-"))
    print(f"work files in {workdir}")

    server = MrfServer(workdir / "mrf", rtp_port_count=4000)
    server.create_conference(Conference("bench", (CALLER,)))
    server.start()
    pid = server.process.proc.pid if server.process else 0
    rss_before = rss_kib(pid)
    print(f"mrf serve pid {pid} on udp 127.0.0.1:{server.port}, RSS {rss_before} KiB")
    try:
        mrf = sweep("mrf", f"127.0.0.1:{server.port}", server.request_uri("bench"), args, workdir)
        rss_after = rss_kib(pid)
    finally:
        server.stop()

    ref_port = free_port()
    ref = subprocess.Popen([sys.executable, __file__, "--reference-responder", str(ref_port)])
    try:
        wait_for(lambda: sip_options("127.0.0.1", ref_port, timeout=0.2) is not None, 10)
        reference = sweep(
            "reference", f"127.0.0.1:{ref_port}", f"sip:bench@127.0.0.1:{ref_port}", args, workdir
        )
    finally:
        ref.terminate()
        ref.wait(10)

    print_table(mrf, reference)
    mrf_max, ref_max = best(mrf), best(reference)
    ratio = mrf_max / ref_max if ref_max else 0.0
    print(f"mrf_max_cps = {mrf_max}  reference_max_cps = {ref_max}  ratio = {ratio:.2f}")
    if ref_max == max(args.rates):
        print("note: the reference passed the highest rate tried; its real ceiling is higher,")
        print("      so the ratio is an upper bound (add higher --rates to pin it down)")
    errors = server.log_text().count("Traceback (most recent call last)")
    if errors:
        print(f"note: mrf serve logged {errors} traceback(s) under load: see {server.log}")
    print(
        f"mrf serve RSS before = {rss_before} KiB, after = {rss_after} KiB "
        f"(+{rss_after - rss_before} KiB after {sum(r.successful for r in mrf)} calls)"
    )
    return 0


def print_table(mrf: list[RateResult], reference: list[RateResult]) -> None:
    """One row per rate: calls ok / failed / achieved cps for both targets."""
    by_rate = {r.rate: r for r in reference}
    print(
        f"\n{'rate':>6} | {'mrf ok/failed':>15} {'cps':>8} | {'reference ok/failed':>20} {'cps':>8}"
    )
    print("-" * 66)
    for rate in sorted({r.rate for r in mrf} | set(by_rate)):
        left = next((r for r in mrf if r.rate == rate), None)
        right = by_rate.get(rate)
        print(f"{rate:6d} | {_cell(left, 15)} | {_cell(right, 20)}")
    print()


def _cell(result: RateResult | None, width: int) -> str:
    if result is None:
        return f"{'-':>{width}} {'-':>8}"
    counts = f"{result.successful}/{result.failed}"
    return f"{counts:>{width}} {result.achieved:8.1f}"


if __name__ == "__main__":
    sys.exit(main())
