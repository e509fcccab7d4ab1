"""Hostile input at full strength (issues 10, 13): >= 10,000 malformed SIP, 20,000 SIP
requests with bytes that are not UTF-8, and 10,000 MSRP/BFCP/MIKEY messages.

Starts ``mrf serve`` like the interop harness (conference ``fuzz``, embedded KMS,
alice enrolled), then runs the PROTOS-style mutation fuzzers of
``tests/reliability`` with the counts below, printing one line per run
(sent, answered by status, connections the server closed, silent messages,
403/404/488 answers without a Warning), checks after each run that the
server is alive and answers OPTIONS, and finishes with a normal sipp SDES
call.  Exit status 0 when all of that holds, no refusal lacked its Warning
and the log holds no traceback.

    .venv/bin/python bench/hostile.py          # 10k SIP + 20k non-UTF-8 SIP + 10k TLS
    .venv/bin/python bench/hostile.py --sip 20000 --bytes 40000 --tls 3000 --seed 7

Not part of pytest (the CI run is tests/reliability/test_hostile.py, reduced counts).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.interop.harness import Artifacts  # noqa: E402  (repo root first on sys.path)
from tests.reliability.conftest import (  # noqa: E402
    server_alive,
    sipp_call,
    start_fuzz_server,
    tracebacks,
)
from tests.reliability.hostile import fuzz_sip_tcp, fuzz_sip_udp  # noqa: E402
from tests.reliability.hostile_tls import (  # noqa: E402
    fuzz_bfcp,
    fuzz_kms,
    fuzz_msrp,
    fuzz_transfer_init,
)
from tests.reliability.mutate import SipEncodingMutator  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sip", type=int, default=10000, help="SIP messages (half UDP, half TCP)")
    parser.add_argument("--bytes", type=int, default=20000,
                        help="SIP requests with non-UTF-8 bytes in URIs and headers "
                        "(half UDP, half TCP)")  # fmt: skip
    parser.add_argument("--sip-tls", type=int, default=1000, help="SIP messages over TLS")
    parser.add_argument("--tls", type=int, default=3400, help="MSRP, BFCP and MIKEY messages each")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mrf-hostile-"))
    fuzz = start_fuzz_server(workdir)
    target, seed = fuzz.target, args.seed
    runs = [
        lambda: fuzz_sip_udp(target, args.sip // 2, seed),
        lambda: fuzz_sip_tcp(target, args.sip - args.sip // 2, seed + 1),
        lambda: fuzz_sip_udp(target, args.bytes // 2, seed + 7, SipEncodingMutator),
        lambda: fuzz_sip_tcp(
            target, args.bytes - args.bytes // 2, seed + 8, mutator=SipEncodingMutator
        ),
        lambda: fuzz_sip_tcp(target, args.sip_tls, seed + 2, tls=True),
        lambda: fuzz_msrp(target, args.tls, workdir, seed + 3),
        lambda: fuzz_bfcp(target, args.tls, workdir, seed + 4),
        lambda: fuzz_kms(target, args.tls // 2, fuzz.kms_url, fuzz.kms_key, seed + 5),
        lambda: fuzz_transfer_init(
            target, args.tls - args.tls // 2, fuzz.kms_url, fuzz.kms_key, seed + 6
        ),
    ]
    ok, total = True, 0
    try:
        for run in runs:
            start = time.monotonic()
            tally = asyncio.run(run())
            total += tally.sent
            alive = server_alive(fuzz.server)
            print(f"{tally.line()} in {time.monotonic() - start:.1f} s; server alive: {alive}")
            ok &= alive and tally.unexplained == 0
        call = sipp_call(fuzz.server, Artifacts(workdir))
        print(f"messages sent: {total}; normal sipp call afterwards: "
              f"{'connected' if call == 0 else f'FAILED (sipp rc={call})'}")  # fmt: skip
        ok &= call == 0
    finally:
        fuzz.server.stop()
        found = tracebacks(fuzz.server)
        count = fuzz.server.log_text().count("Traceback (most recent call last)")
        print(f"tracebacks in the server log: {count}")
        if found:
            print(f"the server logged a traceback:\n{found}")
            ok = False
        print(f"logs: {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
