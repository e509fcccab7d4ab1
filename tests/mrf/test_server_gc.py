"""``mrf serve`` freezes its start-up objects out of the cyclic collector (mrf/server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json
import mrf.server
before = (gc.get_freeze_count(), gc.get_threshold())
mrf.server.tune_gc()
cycle = []
cycle.append(cycle)  # garbage made after the freeze is still collected
del cycle
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                  "threshold": gc.get_threshold(), "collected": gc.collect()}))
"""


def test_tune_gc_freezes_start_up_objects_and_keeps_collecting_new_cycles() -> None:
    # a child process: freezing would otherwise apply to the whole pytest run
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert run.returncode == 0, run.stderr
    numbers = json.loads(run.stdout)
    assert numbers["before"][0] == 0
    assert numbers["frozen"] > 10_000  # modules, classes, tables of everything mrf serve loads
    assert tuple(numbers["threshold"]) == tuple(numbers["before"][1])  # Python's own
    assert numbers["collected"] >= 1
