"""``mrf cluster --nodes N``: PostgreSQL, Kamailio and N ``mrf serve`` nodes on loopback.

A local cluster for trying and testing the scale-out (docs/scaling.md):

* PostgreSQL from the Debian package (``initdb`` + ``pg_ctl`` in a temporary
  directory, as the ``postgres`` user when run as root), databases ``mrf``
  (conferences, accounts, homes) and ``mrf_kms`` (the KMS's trust domain);
* N nodes ``mrf-1`` .. ``mrf-N``, each on its own loopback address
  (``127.0.0.11`` ...) with the same ports, ``node.homes`` on;
* Kamailio on ``127.0.0.10`` with :file:`kamailio.cfg` and a dispatcher list
  of the nodes.

It prints one JSON line per part (``database``, ``node``, ``entry``), then
``{"event": "ready"}``, and stops everything on SIGINT/SIGTERM (nodes first,
then Kamailio, then PostgreSQL).  Logs stay in the run directory.
"""

from __future__ import annotations

import argparse
import glob
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """A part of the cluster did not start."""


@dataclass
class Part:
    """One started process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop: Callable[[], None] | None = None

    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class NodeAddress:
    name: str
    host: str
    sip_port: int
    web_port: int
    kms_port: int

    @property
    def sip(self) -> str:
        return f"{self.host}:{self.sip_port}"

    @property
    def web(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    @property
    def kms_url(self) -> str:
        return f"http://{self.host}:{self.kms_port}/kms"


@dataclass
class ClusterPlan:
    """Where every part listens."""

    nodes: int = 3
    entry_host: str = "127.0.0.10"
    entry_port: int = 5060
    first_node_host: str = "127.0.0.11"
    sip_port: int = 5060
    web_port: int = 8080
    kms_port: int = 8090
    rtp_ports: tuple[int, int] = (40000, 40999)
    database_host: str = "127.0.0.1"
    database_port: int = 0  # 0: a free port
    lease: float = 4.0
    domain: str | None = None  # sip.domain of every node (default: the entry address)
    extra_env: dict[str, str] = field(default_factory=dict)
    # the first admin's password (printed once, in the "ready" line, like ``mrf serve`` does)
    admin_password: str = field(
        default_factory=lambda: os.environ.get("MRF_ADMIN_PASSWORD") or secrets.token_urlsafe(12),
        repr=False,
    )

    def addresses(self) -> list[NodeAddress]:
        first = ipaddress.ip_address(self.first_node_host)
        return [
            NodeAddress(f"mrf-{i + 1}", str(first + i), self.sip_port, self.web_port,
                        self.kms_port)
            for i in range(self.nodes)
        ]  # fmt: skip


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise ClusterError(f"{name} not found: install the Debian package for it")
    return found[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _wait(check: Callable[[], bool], timeout: float, part: Part | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if part is not None and not part.running():
            return False
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Part:
    handle: IO[bytes] = log.open("wb")
    process = subprocess.Popen(
        argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )  # fmt: skip
    handle.close()
    return Part(name, process, log)


def _terminate(part: Part, grace: float = 10.0) -> None:
    if part.stop is not None:
        part.stop()
    if part.running():
        part.process.send_signal(signal.SIGTERM)
        try:
            part.process.wait(grace)
        except subprocess.TimeoutExpired:
            part.process.kill()
            part.process.wait(5)


@contextmanager
def postgresql(run: Path, host: str, port: int) -> Iterator[tuple[Part, str, str]]:
    """A throw-away PostgreSQL; yields (part, conference database URL, KMS database URL)."""
    initdb, pg_ctl, postgres = _binary("initdb"), _binary("pg_ctl"), _binary("postgres")
    # a directory of its own: the postgres user (we run as root) may not enter ``run``
    base = Path(tempfile.mkdtemp(prefix="mrf-cluster-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data = base / "data"
    initialised = subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if initialised.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise ClusterError(f"initdb failed: {initialised.stderr.strip()[-500:]}")
    port = port or _free_port(host)
    argv = _as_postgres([postgres, "-D", str(data), "-h", host, "-p", str(port), "-k", str(base),
                         "-c", "fsync=off", "-c", "max_connections=200"])  # fmt: skip
    part = _spawn("postgresql", argv, run / "postgresql.log")

    def ready() -> bool:
        with socket.create_connection((host, port), timeout=0.5):
            return True

    try:
        if not _wait(ready, START_TIMEOUT, part):
            raise ClusterError(f"PostgreSQL did not start:\n{part.tail()}")
        import psycopg

        admin = f"host={host} port={port} user=postgres dbname=postgres"
        for _ in range(50):  # the socket opens a moment before connections are accepted
            try:
                with psycopg.connect(admin, autocommit=True) as connection:
                    connection.execute('CREATE DATABASE "mrf"')
                    connection.execute('CREATE DATABASE "mrf_kms"')
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        else:
            raise ClusterError(f"PostgreSQL refused connections:\n{part.tail()}")
        url = f"postgresql+psycopg://postgres@{host}:{port}"

        def stop() -> None:
            subprocess.run(
                _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True, check=False, timeout=30,
            )  # fmt: skip

        part.stop = stop
        yield part, f"{url}/mrf", f"{url}/mrf_kms"
    finally:
        _terminate(part)
        shutil.rmtree(base, ignore_errors=True)


def render_kamailio(run: Path, plan: ClusterPlan, nodes: list[NodeAddress]) -> Path:
    """The dispatcher list and kamailio.cfg for these nodes, in ``run``."""
    listing = run / "dispatcher.list"
    listing.write_text(
        "# setid destination flags priority attributes\n"
        + "".join(f"1 sip:{n.sip} 0 0 name={n.name}\n" for n in nodes)
    )
    text = (HERE / "kamailio.cfg").read_text()
    for key, value in {
        "LISTEN_IP": plan.entry_host, "PORT": str(plan.entry_port),
        "DISPATCHER_LIST": str(listing),
    }.items():  # fmt: skip
        text = text.replace(f"@{key}@", value)
    cfg = run / "kamailio.cfg"
    cfg.write_text(text)
    return cfg


def _sip_ping(host: str, port: int) -> bool:
    """OPTIONS with Max-Forwards 0: Kamailio answers it itself (483)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(0.5)
        local = sock.getsockname()
        branch = f"z9hG4bK{time.monotonic_ns()}"
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch={branch};rport\r\n"
            f"Max-Forwards: 0\r\nFrom: <sip:probe@{local[0]}>;tag=1\r\n"
            f"To: <sip:{host}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (host, port))
        data = sock.recv(65535)
        return data.startswith(b"SIP/2.0 483")


def kamailio(run: Path, plan: ClusterPlan, nodes: list[NodeAddress]) -> Part:
    binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if not Path(binary).exists():
        raise ClusterError("kamailio not found: apt-get install kamailio")
    cfg = render_kamailio(run, plan, nodes)
    (run / "kamailio-run").mkdir()
    argv = [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(run / "kamailio-run"),
            "-m", "64", "-M", "8"]  # fmt: skip
    part = _spawn("kamailio", argv, run / "kamailio.log")
    if not _wait(lambda: _sip_ping(plan.entry_host, plan.entry_port), START_TIMEOUT, part):
        _terminate(part)
        raise ClusterError(f"kamailio did not start:\n{part.tail()}")
    return part


def node_environment(
    plan: ClusterPlan, node: NodeAddress, run: Path, database_url: str, kms_url: str
) -> dict[str, str]:
    """The ``MRF_*`` settings of one node (everything else: the embedded defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRF_")}
    env.update({
        "MRF_DATA_DIR": str(run / node.name),
        "MRF_DATABASE_URL": database_url,
        "MRF_NODE_NAME": node.name,
        "MRF_NODE_HOMES": "true",
        "MRF_NODE_LEASE": str(plan.lease),
        "MRF_SIP_HOST": node.host,
        "MRF_SIP_PORT": str(node.sip_port),
        "MRF_SIP_TLS_PORT": str(node.sip_port + 1),
        "MRF_SIP_DOMAIN": plan.domain or plan.entry_host,
        "MRF_SIP_TRUSTED_PROXIES": plan.entry_host,
        "MRF_WEB_HOST": node.host,
        "MRF_WEB_PORT": str(node.web_port),
        "MRF_MEDIA_HOST": node.host,
        "MRF_MEDIA_RTP_PORTS": f"{plan.rtp_ports[0]}-{plan.rtp_ports[1]}",
        "MRF_MSRP_PORT": "0",
        "MRF_BFCP_PORT": "0",
        "MRF_KMS_URL": node.kms_url,
        "MRF_KMS_EMBEDDED": "true",
        "MRF_KMS_DATABASE_URL": kms_url,
        "MRF_ADMIN_PASSWORD": plan.admin_password,
    })  # fmt: skip
    env.update(plan.extra_env)
    return env


def _healthy(node: NodeAddress) -> bool:
    with urllib.request.urlopen(f"{node.web}/api/health", timeout=1) as response:
        return bool(response.status == 200)


def start_node(plan: ClusterPlan, node: NodeAddress, run: Path, urls: tuple[str, str]) -> Part:
    env = node_environment(plan, node, run, *urls)
    argv = [sys.executable, "-m", "mrf", "serve"]
    part = _spawn(node.name, argv, run / f"{node.name}.log", env)
    if not _wait(lambda: _healthy(node), START_TIMEOUT, part):
        _terminate(part)
        raise ClusterError(f"{node.name} did not start:\n{part.tail()}")
    return part


def emit(event: dict[str, object], out: IO[str]) -> None:
    out.write(json.dumps(event) + "\n")
    out.flush()


def _terminate_all(parts: list[Part]) -> None:
    for part in reversed(parts):
        _terminate(part)


@contextmanager
def cluster(plan: ClusterPlan, run: Path, out: IO[str]) -> Iterator[list[Part]]:
    """Start every part (printing its JSON line); stop them all on exit, nodes first."""
    with ExitStack() as stack:
        database, url, kms_url = stack.enter_context(postgresql(
            run, plan.database_host, plan.database_port))  # fmt: skip
        emit({"event": "database", "url": url, "kms_url": kms_url, "pid": database.process.pid},
             out)  # fmt: skip
        parts: list[Part] = [database]
        nodes = plan.addresses()
        started: list[Part] = []
        stack.callback(_terminate_all, started)
        for node in nodes:  # one by one: the first creates the schema and the first admin
            part = start_node(plan, node, run, (url, kms_url))
            started.append(part)
            emit({"event": "node", "name": node.name, "pid": part.process.pid,
                  "sip": node.sip, "web": node.web, "kms": node.kms_url}, out)  # fmt: skip
        entry = kamailio(run, plan, nodes)
        started.insert(0, entry)  # stopped last of the SIP parts (reversed order)
        emit({"event": "entry", "sip": f"{plan.entry_host}:{plan.entry_port}",
              "pid": entry.process.pid}, out)  # fmt: skip
        parts += started
        yield parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=3, help="how many mrf nodes (default 3)")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where data and logs go (default: a new temporary directory)",
    )
    parser.add_argument(
        "--entry",
        default="127.0.0.10:5060",
        metavar="HOST:PORT",
        help="Kamailio's SIP address (default 127.0.0.10:5060)",
    )
    parser.add_argument(
        "--first-node",
        default="127.0.0.11",
        metavar="HOST",
        help="address of mrf-1; the others follow (default 127.0.0.11)",
    )
    parser.add_argument("--lease", type=float, default=4.0,
                        help="conference home lease in seconds (default 4)")  # fmt: skip


def plan_of(args: argparse.Namespace) -> ClusterPlan:
    host, _, port = args.entry.rpartition(":")
    if not 1 <= args.nodes <= 32:
        raise ClusterError("--nodes must be 1..32")
    return ClusterPlan(nodes=args.nodes, entry_host=host, entry_port=int(port),
                       first_node_host=args.first_node, lease=args.lease)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mrf cluster``: runs until SIGINT/SIGTERM."""
    plan = plan_of(args)
    directory = args.run_dir or Path(tempfile.mkdtemp(prefix="mrf-cluster-"))
    directory.mkdir(parents=True, exist_ok=True)
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with cluster(plan, directory, sys.stdout) as parts:
            emit({"event": "ready", "run_dir": str(directory), "admin": "admin",
                  "admin_password": plan.admin_password}, sys.stdout)  # fmt: skip
            while not stopping:
                dead = [p.name for p in parts if not p.running()]
                if dead:
                    emit({"event": "exited", "parts": dead}, sys.stdout)
                    dead.clear()
                    parts = [p for p in parts if p.running()]
                time.sleep(0.5)
    except ClusterError as exc:
        print(f"mrf cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    emit({"event": "stopped"}, sys.stdout)
    return 0
