"""Cluster benchmark: dial-in calls/s through Kamailio to 1, 2 and 3 mrf nodes.

For each cluster size N the product's own runner (``mrf cluster``'s
:func:`mrf.cluster.runner.cluster`: PostgreSQL, Kamailio, N nodes) is started
afresh.  One conference per node is found by probing names through Kamailio
(its hash over the Request-URI user decides the node; the dispatcher log says
which), then N sipp instances (tests/peers/sipp/uac_invite_accept.xml: SDES
INVITE / 200 / ACK / BYE, through Kamailio's Record-Route) call those
conferences at once, each at ``rate / N``, at rising total rates.  A rate
passes when every sipp completed every call with none failed and the total
achieved at least 90 % of it.  Reported: the highest passing total rate per N,
its ratio to one node, and per core (this machine's cores are shared by all
parts: Kamailio, PostgreSQL, the nodes and sipp).

The ceiling: Kamailio with the same config in front of N bare asyncio
responders (bench/sip_cps.py's stateless reference), i.e. what Kamailio and
sipp alone sustain here.

Participants mixed in real time per cluster size are not measured yet (each
node mixes its own conferences; bench/mixer.py measures one node's mixer).

usage (as root, in a private namespace: the cluster binds 127.0.0.10-13):
    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/cluster.py'
options: --rates 50,100,200,300 --seconds 5 --sizes 1,2,3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sip_cps import CALLER, RateResult, run_rate  # noqa: E402

from mrf.cluster.runner import (  # noqa: E402  (repo root first on sys.path)
    ClusterPlan,
    NodeAddress,
    _spawn,
    _terminate,
    cluster,
    kamailio,
)
from tests.interop.harness import sip_options, wait_for  # noqa: E402

DEFAULT_RATES = (50, 100, 200, 300, 400, 600)
PROBE_NAMES = [f"bench-{i}" for i in range(40)]
ROUTED = re.compile(r"CLUSTER: INVITE (\S+) -> sip:(\S+)")


def cli(run: Path, database_url: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRF_")}
    env.update(MRF_DATABASE_URL=database_url, MRF_DATA_DIR=str(run / "cli"))
    subprocess.run([sys.executable, "-m", "mrf", *args], env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip


def one_name_per_node(run: Path, entry: str, nodes: int, workdir: Path) -> list[str]:
    """Conference names that Kamailio sends to different nodes (one probe call each)."""
    chosen: dict[str, str] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for name in PROBE_NAMES:
        run_rate(entry, f"sip:{name}@127.0.0.10", 1, 1, workdir, "u1")
        log = (run / "kamailio.log").read_text()
        for routed, address in ROUTED.findall(log):
            chosen.setdefault(address, routed)
        if len(chosen) == nodes:
            break
    return sorted(set(chosen.values()))


def parallel_rate(
    entry: str, names: list[str], rate: int, seconds: int, workdir: Path
) -> tuple[bool, float, list[RateResult]]:
    """``len(names)`` sipp at ``rate / len(names)`` each; (passed, total achieved cps, runs)."""
    share = max(1, rate // len(names))
    with ThreadPoolExecutor(len(names)) as pool:
        futures = [
            pool.submit(
                run_rate, entry, f"sip:{name}@127.0.0.10", share, seconds, workdir / name, "u1"
            )  # fmt: skip
            for name in names
        ]
        runs = [f.result() for f in futures]
    total = sum(r.achieved for r in runs)
    passed = all(r.returncode == 0 and r.failed == 0 and r.successful == r.calls for r in runs)
    return passed and total >= 0.9 * share * len(names), total, runs


def sweep(label: str, entry: str, names: list[str], args: argparse.Namespace, workdir: Path) -> int:
    best = 0
    for rate in args.rates:
        for name in names:
            (workdir / name).mkdir(parents=True, exist_ok=True)
        passed, total, runs = parallel_rate(entry, names, rate, args.seconds, workdir)
        failed = sum(r.failed for r in runs)
        print(f"  {label:12} {rate:5d} cps offered: {total:7.1f} achieved, {failed} failed  "
              f"{'ok' if passed else 'FAIL'}", flush=True)  # fmt: skip
        if not passed:
            break
        best = rate
    return best


def measure_cluster(size: int, args: argparse.Namespace, base: Path) -> int:
    run = base / f"cluster-{size}"
    run.mkdir()
    out = io.StringIO()
    with cluster(ClusterPlan(nodes=size), run, out):
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        url = next(line["url"] for line in lines if line["event"] == "database")
        for name in PROBE_NAMES:
            cli(run, url, "conference", "create", name, "--participant", CALLER)
        entry = "127.0.0.10:5060"
        names = one_name_per_node(run, entry, size, run / "probe")
        print(f"{size} node(s): conferences {names} (one per node)", flush=True)
        return sweep(f"{size} node(s)", entry, names, args, run)


def measure_ceiling(size: int, args: argparse.Namespace, base: Path) -> int:
    """Kamailio (same config) in front of ``size`` stateless reference responders."""
    run = base / "ceiling"
    run.mkdir()
    plan = ClusterPlan(nodes=size)
    # the reference responder binds 127.0.0.1 only: each gets its own port instead
    moved = [NodeAddress(f"ref-{i}", "127.0.0.1", 5100 + i, 0, 0) for i in range(size)]
    responders = [
        _spawn(
            n.name,
            [
                sys.executable,
                str(REPO / "bench/sip_cps.py"),
                "--reference-responder",
                str(n.sip_port),
            ],
            run / f"{n.name}.log",
        )  # fmt: skip
        for n in moved
    ]
    try:
        for n in moved:
            wait_for(lambda n=n: sip_options(n.host, n.sip_port, timeout=0.2) is not None, 10)
        entry_part = kamailio(run, plan, moved)
        try:
            time.sleep(2)  # the first OPTIONS probes mark the responders active
            names = [f"ref-{i}" for i in range(size)]
            return sweep("kamailio", "127.0.0.10:5060", names, args, run)
        finally:
            _terminate(entry_part)
    finally:
        for part in responders:
            _terminate(part)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=lambda t: [int(x) for x in t.split(",")],
                        default=list(DEFAULT_RATES))  # fmt: skip
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")],
                        default=[1, 2, 3])  # fmt: skip
    parser.add_argument("--ceiling-only", action="store_true", help="measure Kamailio alone")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    print(f"work files in {base}; {os.cpu_count()} cores shared by every part", flush=True)
    results = {} if args.ceiling_only else {s: measure_cluster(s, args, base) for s in args.sizes}
    ceiling = measure_ceiling(max(args.sizes), args, base)
    cores = os.cpu_count() or 1
    one = results.get(1) or 0
    print(f"\n{'nodes':>5} | {'max cps':>8} | {'ratio to 1':>10} | {'cps per core':>12}")
    print("-" * 46)
    for size, best in results.items():
        ratio = f"{best / one:.2f}" if one else "-"
        print(f"{size:5d} | {best:8d} | {ratio:>10} | {best / cores:12.1f}")
    print(f"kamailio alone (ceiling, {max(args.sizes)} reference responders): {ceiling} cps "
          f"({ceiling / cores:.1f} per core)")  # fmt: skip
    if ceiling == max(args.rates):
        print("note: the ceiling passed the highest rate tried; add higher --rates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
