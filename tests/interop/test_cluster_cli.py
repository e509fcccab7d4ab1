"""``mrf cluster``: the JSON lines of interfaces.md, and SIGTERM stops every part."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import clean_env, network_isolated, require_peer, wait_for

pytestmark = pytest.mark.interop
REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def test_mrf_cluster_prints_its_parts_and_stops_them_all_on_sigterm(tmp_path: Path) -> None:
    if not network_isolated():
        pytest.fail("run in a private network namespace (make test: unshare -n)", pytrace=False)
    require_peer("kamailio")
    out = tmp_path / "cluster.jsonl"
    with out.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mrf", "cluster", "--nodes", "2", "--entry", "127.0.0.20:5060",
             "--first-node", "127.0.0.21", "--run-dir", str(tmp_path / "run")],
            stdout=handle, stderr=subprocess.STDOUT, env=clean_env(PYTHONPATH=str(REPO)),
        )  # fmt: skip

    def lines() -> list[dict[str, object]]:
        text = out.read_text().splitlines()
        return [json.loads(line) for line in text if line.startswith("{")]

    try:
        assert wait_for(lambda: any(e["event"] == "ready" for e in lines()), 90), out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    events = lines()
    kinds = [e["event"] for e in events]
    assert kinds == ["database", "node", "node", "entry", "ready", "stopped"], kinds
    assert code == 0
    nodes = [e for e in events if e["event"] == "node"]
    assert [(n["name"], n["sip"], n["web"]) for n in nodes] == [
        ("mrf-1", "127.0.0.21:5060", "http://127.0.0.21:8080"),
        ("mrf-2", "127.0.0.22:5060", "http://127.0.0.22:8080"),
    ]
    entry = next(e for e in events if e["event"] == "entry")
    assert entry["sip"] == "127.0.0.20:5060"
    database = next(e for e in events if e["event"] == "database")
    assert str(database["url"]).startswith("postgresql+psycopg://postgres@127.0.0.1:")
    pids = [int(e["pid"]) for e in events if "pid" in e]  # type: ignore[call-overload]
    assert len(pids) == 4 and not [p for p in pids if _alive(p)], "every part stopped"
    assert "admin_password" in events[kinds.index("ready")]
