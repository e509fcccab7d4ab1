"""REST API throughput: conference creation and roster reads, with p50/p99 latency.

100 conferences of 50 authorized participants each are created through
``POST /api/conferences`` (bearer token), then every conference's roster is read
(``GET /api/conferences/{id}/roster``, 50 live entries each, as the focus would
report them) ``--reads`` times in round-robin.  The app is the real one
(:func:`web.create_app`) over the real store (SQLite WAL in a temporary
directory, or ``--database-url``), served by uvicorn on 127.0.0.1 exactly as in
``mrf serve``; the client is one keep-alive HTTP/1.1 connection per worker
thread.  The reference measured in the same run is ``GET /api/health`` (no
database, no authentication): the report gives each operation's rate as a ratio
of it.  Not part of the pass/fail suite.

    .venv/bin/python bench/web_api.py [--conferences 100] [--participants 50] [--reads 10]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn  # noqa: E402

from focus.store import ConferenceStore  # noqa: E402
from mrf.settings import Settings  # noqa: E402
from web import create_app  # noqa: E402


class BenchFocus:
    """A focus whose every conference has ``size`` connected SDES participants."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.dialout = None
        self.calls: list[Any] = []

    def roster(self, conference: str) -> list[dict[str, object]]:
        return [
            {"uri": f"sip:user{i}@127.0.0.1", "role": "participant", "state": "connected",
             "joined_by": "dial-in", "reason": None, "muted": False, "call_id": f"{conference}-{i}",
             "media": [{"type": "audio", "key_mode": "sdes", "packets_in": 500 + i,
                        "packets_out": 498 + i}]}
            for i in range(self.size)
        ]  # fmt: skip

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None

    async def apply_policy(self, conference: str) -> list[str]:
        return []


class BenchServices:
    def __init__(self, store: ConferenceStore, size: int) -> None:
        self.store = store
        self.focus = BenchFocus(size)

    def listeners(self) -> dict[str, bool]:
        return {"sip-udp": True}


def timed_requests(
    port: int, requests: list[tuple[str, str, bytes | None]], token: str, workers: int
) -> tuple[list[float], float, list[Any]]:
    """Run ``requests`` over ``workers`` keep-alive connections; latencies, wall time."""
    chunks = [requests[i::workers] for i in range(workers)]

    def run(chunk: list[tuple[str, str, bytes | None]]) -> list[tuple[float, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done = []
        for method, path, body in chunk:
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            start = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - start
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
            done.append((elapsed, json.loads(data)))
        connection.close()
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = [item for part in pool.map(run, chunks) for item in part]
    wall = time.perf_counter() - started
    return [r[0] for r in results], wall, [r[1] for r in results]


def report(name: str, latencies: list[float], wall: float, reference: float | None) -> float:
    rate = len(latencies) / wall
    cuts = statistics.quantiles(latencies, n=100)
    ratio = f"  {rate / reference:.3f}x health" if reference else ""
    print(f"{name:<22} {len(latencies):>6} req  {rate:>8.0f}/s  p50 {cuts[49] * 1e3:6.2f} ms  "
          f"p99 {cuts[98] * 1e3:6.2f} ms{ratio}")  # fmt: skip
    return rate


async def serve_and_measure(args: argparse.Namespace, database_url: str) -> None:
    store = ConferenceStore(database_url)
    store.create_all()
    store.create_account("bench", "bench-password")
    token = store.create_token("bench")
    app = create_app(Settings(), BenchServices(store, args.participants))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    health = [("GET", "/api/health", None)] * (args.conferences * args.reads)
    lat, wall, _ = await asyncio.to_thread(timed_requests, port, health, token, args.workers)
    reference = report("GET /api/health (ref)", lat, wall, None)
    creates = [
        ("POST", "/api/conferences", json.dumps({
            "name": f"bench{i}",
            "participants": [{"uri": f"sip:user{j}@127.0.0.1"} for j in range(args.participants)],
        }).encode())
        for i in range(args.conferences)
    ]  # fmt: skip
    lat, wall, bodies = await asyncio.to_thread(timed_requests, port, creates, token, args.workers)
    report("POST /api/conferences", lat, wall, reference)
    ids = [body["id"] for body in bodies]
    reads = [("GET", f"/api/conferences/{i}/roster", None) for i in ids] * args.reads
    lat, wall, rosters = await asyncio.to_thread(timed_requests, port, reads, token, args.workers)
    assert all(len(r["participants"]) == args.participants for r in rosters)
    report("GET .../roster", lat, wall, reference)
    server.should_exit = True
    await task
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=100)
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--reads", type=int, default=10, help="roster reads per conference")
    parser.add_argument("--workers", type=int, default=4, help="client connections")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        print(f"{args.conferences} conferences x {args.participants} participants, "
              f"{args.workers} connections, {url.split(':')[0]}")  # fmt: skip
        asyncio.run(serve_and_measure(args, url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
