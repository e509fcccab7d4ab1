"""Interop harness: the server under test as a subprocess, bounded peer processes.

Everything here talks to 127.0.0.0/8 only.  The server is started exactly as an
operator would (``python -m mrf serve --config FILE``, conferences created with
``python -m mrf conference create``, as README.md shows) and judged
only by what it puts on the wire and the ``media-summary`` lines it logs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# Debian package that ships each peer binary (named in the failure message).
PEER_PACKAGES = {
    "sipp": "sip-tester",
    "baresip": "baresip-core",
    "linphone-daemon": "linphone-cli",
    "kamailio": "kamailio (+ kamailio-tls-modules)",
    "socat": "socat",
    "openssl": "openssl",
    "stdbuf": "coreutils",
}

_SUMMARY = re.compile(r"media-summary\s+(?P<fields>(?:[A-Za-z_]+=\S*\s*)+)")


def require_peer(binary: str) -> str:
    """Path of ``binary``; fail (never skip silently) naming its Debian package."""
    if os.environ.get("MRF_SKIP_INTEROP") == "1":
        pytest.skip("MRF_SKIP_INTEROP=1: third-party interop peers not run")
    path = shutil.which(binary)
    if path is None:
        package = PEER_PACKAGES.get(binary, binary)
        pytest.fail(
            f"interop peer {binary!r} not found: install the Debian package {package} "
            "(`make test` installs the peers when run as root), "
            "or set MRF_SKIP_INTEROP=1 to skip the interop suite",
            pytrace=False,
        )
    return path


def network_isolated() -> bool:
    """True inside a network namespace whose only interface is ``lo`` (``unshare -n``).

    ``/sys/class/net`` shows the namespace of whoever mounted /sys, so the
    interface list comes from the kernel for *this* namespace instead.
    """
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def free_port(host: str = "127.0.0.1", *, tcp_and_udp: bool = True) -> int:
    """A TCP port free on ``host`` (and free for UDP too unless ``tcp_and_udp=False``).

    Racy by nature (the port is released before the peer binds it); fine on a
    loopback that only this test run uses (``unshare -n``).
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
        if not tcp_and_udp:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port found on {host}")


def sip_options(
    host: str, port: int, *, timeout: float = 0.5, max_forwards: int = 70
) -> int | None:
    """Send one OPTIONS over UDP (RFC 3261 §11); the response status or None.

    ``max_forwards=0`` makes a proxy answer 483 itself (RFC 3261 §16.3 step 2).
    """
    branch = "z9hG4bK" + secrets.token_hex(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch};rport\r\n"
            f"Max-Forwards: {max_forwards}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@127.0.0.1\r\n"
            f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        sock.sendto(request.encode(), (host, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                return None
            match = re.match(rb"SIP/2\.0 (\d{3}) ", data)
            if match and branch.encode() in data and int(match[1]) >= 200:
                return int(match[1])
    return None


def parse_media_summaries(text: str) -> list[dict[str, str]]:
    """Every ``media-summary k=v ...`` log line (docs/architecture.md) as a dict."""
    found = []
    for line in text.splitlines():
        match = _SUMMARY.search(line)
        if match:
            pairs = (item.split("=", 1) for item in match["fields"].split())
            found.append({key: value for key, value in pairs})
    return found


def wait_for[T](predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def tail(path: Path, lines: int = 60) -> str:
    """Last ``lines`` lines of a log file (for failure messages)."""
    if not path.exists():
        return f"<{path} missing>"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class Artifacts:
    """Log files of one test, attached to the report when the test fails."""

    directory: Path
    logs: dict[str, Path] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """A fresh file in the test's directory, registered under ``name``."""
        path = self.directory / name
        self.logs[name] = path
        return path


class BackgroundProcess:
    """A bounded child process with its output in a log file; always reaped."""

    def __init__(
        self,
        argv: Sequence[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def running(self) -> bool:
        """True while the child has not exited."""
        return self.proc.poll() is None

    def text(self) -> str:
        """Everything the child wrote so far."""
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None if still running after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int:
        """Send ``sig`` to the child, kill its process group after ``grace`` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if self.wait(grace) is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        elif _group_alive(self.proc.pid):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._out.close()
        return int(self.proc.returncode)


def reap(proc: subprocess.Popen[bytes], timeout: float, files: Iterable[IO[bytes]] = ()) -> int:
    """Exit status of ``proc`` within ``timeout`` s (killed after that); ``files`` and its
    stdin closed in every case."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
    finally:
        for handle in files:
            handle.close()
        if proc.stdin is not None:
            proc.stdin.close()


class UeJoin:
    """``python -m mrf ue join CONFERENCE --as IDENTITY ARGS...`` against ``server``:
    stdin commands, JSON events in ``ue-<user>.jsonl``, stderr in ``ue-<user>.log``."""

    def __init__(
        self, artifacts: Artifacts, server: MrfServer, conference: str, identity: str,
        *args: str,
    ) -> None:  # fmt: skip
        argv = [sys.executable, "-m", "mrf", "ue", "join", server.request_uri(conference),
                "--as", identity, *args]  # fmt: skip
        name = identity.split(":", 1)[1].split("@")[0]
        self.out = artifacts.path(f"ue-{name}.jsonl")
        self.err = artifacts.path(f"ue-{name}.log")
        self._files = (self.out.open("wb"), self.err.open("wb"))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=self._files[0], stderr=self._files[1],
            env=clean_env(PYTHONPATH=str(REPO)), cwd=server.workdir,
        )  # fmt: skip

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        complete = self.out.read_bytes().split(b"\n")[:-1]  # the last line may be partial
        found = [json.loads(line) for line in complete if line.startswith(b"{")]
        return [e for e in found if kind is None or e["event"] == kind]

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        """``leave`` on stdin, then the exit status within 15 s (killed after)."""
        if self.proc.poll() is None:
            try:
                self.command("leave")
            except BrokenPipeError:
                pass
        return reap(self.proc, 15, self._files)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_bounded(
    argv: Sequence[str], log: Path, *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run to completion with stdout+stderr in ``log``; fail the test on timeout."""
    try:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        log.write_text(f"TIMEOUT after {timeout}s: {argv}\n{exc.stdout!r}\n{exc.stderr!r}\n")
        pytest.fail(f"{argv[0]} did not finish within {timeout}s (see {log})", pytrace=False)
    log.write_text(f"$ {' '.join(argv)}\nrc={result.returncode}\n{result.stdout}{result.stderr}")
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no inherited ``MRF_*`` settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MRF_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Conference:
    """A conference to create through the CLI before the server starts."""

    name: str
    participants: tuple[str, ...] = ()  # "sip:alice@example.com" or "...,chair"
    allow_anonymous: bool = False
    key_modes: tuple[str, ...] = ()  # --key-mode each (empty: the CLI default)


class MrfServer:
    """``python -m mrf serve`` on free loopback ports, with its stderr in a file."""

    LOG_NAME = "mrf-serve.log"
    CLI_LOG_NAME = "mrf-cli.log"

    def __init__(
        self,
        workdir: Path,
        *,
        trusted_proxies: Iterable[str] = (),
        domain: str = "127.0.0.1",
        rtp_port_count: int = 200,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.domain = domain
        self.port = free_port()
        self.tls_port = free_port(tcp_and_udp=False)
        self.data_dir = workdir / "var"
        self.config = workdir / "mrf.toml"
        self.log = workdir / self.LOG_NAME
        self.trusted_proxies = tuple(trusted_proxies)
        self.rtp_port_count = rtp_port_count
        self.process: BackgroundProcess | None = None
        self.returncode: int | None = None
        self._write_config()

    def _write_config(self) -> None:
        rtp_first = 24000 + 2 * (self.port % 2000)  # clear of baresip 20000-20100
        rtp_last = rtp_first + self.rtp_port_count - 1
        proxies = ", ".join(f'"{ip}"' for ip in self.trusted_proxies)
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n'
            f'database_url = "sqlite:///{self.data_dir}/mrf.db"\n'
            f"[sip]\n"
            f'host = "{self.host}"\nport = {self.port}\ntls_port = {self.tls_port}\n'
            f'domain = "{self.domain}"\ntrusted_proxies = [{proxies}]\n'
            f'[web]\nhost = "{self.host}"\nport = {free_port(tcp_and_udp=False)}\n'
            f'[media]\nhost = "{self.host}"\nrtp_ports = [{rtp_first}, {rtp_last}]\n'
            f"[msrp]\nport = 0\n[bfcp]\nport = 0\n"
            # a non-default KMS URL disables the embedded KMS (its port 8090 is fixed)
            f'[kms]\nurl = "http://{self.host}:{free_port(tcp_and_udp=False)}/kms"\n'
        )

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``python -m mrf ARGS --config FILE``; fail the test if it fails."""
        argv = [sys.executable, "-m", "mrf", *args, "--config", str(self.config)]
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
            env=clean_env(PYTHONPATH=str(REPO)),
            check=False,
        )
        with (self.workdir / self.CLI_LOG_NAME).open("a") as out:
            out.write(f"$ {' '.join(argv)}\nrc={result.returncode}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            pytest.fail(
                f"server CLI failed (rc={result.returncode}): {' '.join(args)}\n"
                f"{result.stdout}{result.stderr}",
                pytrace=False,
            )
        return result

    def create_conference(self, conference: Conference) -> str:
        """Create it with the CLI; the printed conference URI (checked)."""
        args = ["conference", "create", conference.name]
        for participant in conference.participants:
            args += ["--participant", participant]
        if conference.allow_anonymous:
            args.append("--allow-anonymous")
        for mode in conference.key_modes:
            args += ["--key-mode", mode]
        out = self.cli(*args).stdout.strip()
        expected = f"sip:{conference.name}@{self.domain}"
        assert expected in out.split(), f"conference create printed {out!r}, not {expected!r}"
        return expected

    def start(self, ready_timeout: float = 30.0) -> None:
        """Start serving and wait until an OPTIONS over UDP is answered."""
        argv = [sys.executable, "-m", "mrf", "serve", "--config", str(self.config)]
        env = clean_env(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.process = BackgroundProcess(argv, self.log, env=env, cwd=self.workdir)
        deadline = time.monotonic() + ready_timeout
        retries = 2  # a port picked by free_port() can be taken (ephemeral) before we bind
        while time.monotonic() < deadline:
            if not self.process.running():
                if retries and "address already in use" in self.log_text().lower():
                    retries -= 1
                    self.process.stop(grace=1)  # reaps it and closes its log file
                    time.sleep(0.5)
                    self.process = BackgroundProcess(argv, self.log, env=env, cwd=self.workdir)
                    continue
                self.stop()
                pytest.fail(
                    f"mrf serve exited with {self.process.proc.returncode} before answering "
                    f"OPTIONS on {self.host}:{self.port}:\n{tail(self.log)}",
                    pytrace=False,
                )
            if sip_options(self.host, self.port, timeout=0.3) is not None:
                return
        self.stop()
        pytest.fail(
            f"mrf serve did not answer OPTIONS on udp {self.host}:{self.port} within "
            f"{ready_timeout}s:\n{tail(self.log)}",
            pytrace=False,
        )

    def conference_uri(self, name: str) -> str:
        """``sip:<name>@<domain>`` (interfaces.md)."""
        return f"sip:{name}@{self.domain}"

    def request_uri(self, name: str) -> str:
        """The request URI a caller dials: the conference at this server's port."""
        return f"sip:{name}@{self.host}:{self.port}"

    def log_text(self) -> str:
        """The server's stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def media_summaries(self, participant: str | None = None) -> list[dict[str, str]]:
        """Parsed ``media-summary`` lines, optionally only one participant's."""
        rows = parse_media_summaries(self.log_text())
        return [row for row in rows if participant is None or row.get("participant") == participant]

    def wait_media_summary(
        self, participant: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, str]]:
        """At least ``count`` summaries for ``participant`` (fails after ``timeout``)."""
        rows = wait_for(lambda: len(self.media_summaries(participant)) >= count, timeout)
        found = self.media_summaries(participant)
        assert rows, (
            f"server logged {len(found)} media-summary line(s) for {participant}, "
            f"expected {count} within {timeout}s; server log:\n{tail(self.log)}"
        )
        return found

    def stop(self) -> int | None:
        """SIGINT (Ctrl-C), kill after 10 s; the exit status."""
        if self.process is not None and self.returncode is None:
            self.returncode = self.process.stop(signal.SIGINT, grace=10.0)
        return self.returncode
