"""Run every atheris harness in ``bench/fuzz/`` for N inputs and report execs/s.

::

    .venv/bin/python bench/fuzz/run_all.py                      # 1,000,000 inputs each, 2 at a time
    .venv/bin/python bench/fuzz/run_all.py --runs 20000 sip sdp # quick, two parsers
    .venv/bin/python bench/fuzz/run_all.py --jobs 4 --max-time 900

Each harness runs as its own process (``fuzz_<proto>.py -runs=N -seed=S``)
on a working corpus in a temporary directory, seeded with
``tests/vectors/<proto>/`` plus the harness's own seeds, so libFuzzer never
writes into the repository. A crash input is copied to
``tests/vectors/<proto>/fuzz-<sha1>.bin`` (add a regression test and fix the
parser). Prints one line per parser: inputs run, seconds, execs/s, result.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parents[1] / "tests" / "vectors"
PARSERS = ("sip", "sdp", "msrp", "bfcp", "mikey", "cms", "conference_info", "rtp")
_DONE = re.compile(rb"Done (\d+) runs in (\d+) second")


@dataclass
class FuzzResult:
    proto: str
    runs: int
    seconds: float
    crash: Path | None
    returncode: int

    @property
    def execs_per_second(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0


def run_one(proto: str, runs: int, seed: int, max_time: int, work: Path) -> FuzzResult:
    """Fuzz one parser; copy a crash input into the vectors directory."""
    script = HERE / f"fuzz_{proto}.py"
    corpus, artifacts = work / proto / "corpus", work / proto / "artifacts"
    artifacts.mkdir(parents=True)
    subprocess.run(
        [sys.executable, script, "--write-seeds", corpus], check=True, capture_output=True
    )
    command = [
        sys.executable,
        script,
        f"-runs={runs}",
        f"-seed={seed}",
        f"-artifact_prefix={artifacts}/",
    ]
    if max_time:
        command.append(f"-max_total_time={max_time}")
    started = time.monotonic()
    proc = subprocess.run([*map(str, command), str(corpus)], capture_output=True)
    elapsed = time.monotonic() - started
    (work / proto / "log.txt").write_bytes(proc.stdout + proc.stderr)
    done = _DONE.search(proc.stdout + proc.stderr)
    crash = None
    for found in sorted(artifacts.iterdir()):
        data = found.read_bytes()
        crash = VECTORS / proto / f"fuzz-{hashlib.sha1(data).hexdigest()}.bin"
        crash.parent.mkdir(exist_ok=True)
        crash.write_bytes(data)
    return FuzzResult(proto, int(done.group(1)) if done else 0, elapsed, crash, proc.returncode)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parsers", nargs="*", help=f"subset of {', '.join(PARSERS)} (default: all)")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per parser")
    parser.add_argument("--jobs", type=int, default=2, help="parsers fuzzed at the same time")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer -seed")
    parser.add_argument(
        "--max-time", type=int, default=0, help="-max_total_time per parser (0: none)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (corpora, logs)"
    )
    args = parser.parse_args()
    unknown = set(args.parsers) - set(PARSERS)
    if unknown:
        parser.error(f"unknown parsers: {sorted(unknown)}")
    args.parsers = args.parsers or list(PARSERS)
    work = Path(tempfile.mkdtemp(prefix="mrf-fuzz-"))
    print(f"work directory: {work}", flush=True)
    failed = False
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_one, p, args.runs, args.seed, args.max_time, work) for p in args.parsers
        ]
        for future in as_completed(futures):
            r = future.result()
            status = (
                f"CRASH -> {r.crash}"
                if r.crash
                else ("ok" if r.returncode == 0 else f"exit {r.returncode}")
            )
            failed |= r.crash is not None or r.returncode != 0
            print(
                f"{r.proto:16} {r.runs:>10,} inputs {r.seconds:8.1f} s "
                f"{r.execs_per_second:>9,.0f} execs/s  {status}",
                flush=True,
            )
    if not args.keep and not failed:
        shutil.rmtree(work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
