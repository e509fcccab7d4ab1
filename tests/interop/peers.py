"""Drivers for the third-party peers (their files: tests/peers, see its README.md).

Each driver runs its peer bounded in time, keeps every log in the test's
directory (registered in :class:`Artifacts`, attached to a failed test's
report) and is always stopped by the fixture that made it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.peers import SIPP_DIR, make_conf, render, write_baresip_config, write_certificate

from .harness import (
    Artifacts,
    BackgroundProcess,
    clean_env,
    free_port,
    network_isolated,
    require_peer,
    run_bounded,
    sip_options,
    tail,
    wait_for,
)

# Offer keys of tests/peers/sipp/uac_invite_accept.xml (RFC 4568 §6.1 inline keys).
SIPP_OFFER_CRYPTO = {
    "1": ("AES_CM_128_HMAC_SHA1_80", "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
    "2": ("AES_CM_128_HMAC_SHA1_32", "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"),
}
_SIPP_LOG_FIELD = re.compile(r"(\w+)=(\S*)")


@dataclass
class SippRun:
    """Outcome of one sipp run (exit status 0 = every call passed)."""

    returncode: int
    logs: str
    messages: Path
    errors: Path

    def log_records(self, prefix: str) -> list[dict[str, str]]:
        """``-trace_logs`` lines starting with ``prefix`` as ``{field: value}``."""
        rows = []
        for line in self.logs.splitlines():
            if line.startswith(prefix):
                rows.append(dict(_SIPP_LOG_FIELD.findall(line[len(prefix) :])))
        return rows

    def finals(self) -> list[str]:
        """Final statuses logged by uac_invite_refused.xml ("FINAL 403 call=...")."""
        return [line.split()[1] for line in self.logs.splitlines() if line.startswith("FINAL ")]

    def explain(self) -> str:
        """The SIP trace and sipp's errors, for an assertion message."""
        return (
            f"sipp rc={self.returncode}\n--- sipp errors ---\n{tail(self.errors, 20)}\n"
            f"--- SIP trace (sipp side) ---\n{tail(self.messages, 120)}"
        )


class Sipp:
    """Runs the scenarios of tests/peers/sipp against a target, bounded."""

    def __init__(self, artifacts: Artifacts) -> None:
        self.binary = require_peer("sipp")
        self.artifacts = artifacts
        self.count = 0

    def run(
        self,
        scenario: str,
        target: str,
        *,
        keys: dict[str, str],
        transport: str = "u1",
        local_ip: str = "127.0.0.1",
        calls: int = 1,
        pause_ms: int = 0,
        timeout: float = 20.0,
    ) -> SippRun:
        """``sipp TARGET -sf SCENARIO -t TRANSPORT -m CALLS`` with ``-key``s."""
        self.count += 1
        stem = f"sipp{self.count}-{Path(scenario).stem}-{transport}"
        messages = self.artifacts.path(f"{stem}.messages.log")
        logs = self.artifacts.path(f"{stem}.logs.log")
        errors = self.artifacts.path(f"{stem}.errors.log")
        argv = [self.binary, target, "-sf", str(SIPP_DIR / scenario)]
        argv += ["-i", local_ip, "-p", str(free_port(local_ip)), "-t", transport]
        argv += ["-m", str(calls), "-d", str(pause_ms), "-l", str(max(calls, 10)), "-nostdin"]
        argv += ["-recv_timeout", "5000", "-timeout", str(int(timeout - 2)), "-timeout_error"]
        argv += ["-trace_msg", "-message_file", str(messages)]
        argv += ["-trace_logs", "-log_file", str(logs), "-trace_err", "-error_file", str(errors)]
        for name, value in keys.items():
            argv += ["-key", name, value]
        out = self.artifacts.path(f"{stem}.out.log")
        result = run_bounded(argv, out, timeout=timeout, env=clean_env())
        text = logs.read_text(errors="replace") if logs.exists() else ""
        return SippRun(result.returncode, text, messages, errors)


def _netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def _free_port_pair(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP whose successor is free for TCP too (libre's TLS)."""
    for _ in range(50):
        port = free_port(host)
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair on loopback")


class Baresip:
    """baresip 1.0 with tests/peers/baresip's config, driven over ctrl_tcp."""

    def __init__(
        self,
        artifacts: Artifacts,
        name: str = "baresip",
        *,
        account: str | None = None,
        config: dict[str, str] | None = None,
    ) -> None:
        """``account`` replaces the accounts line; ``config`` sets/adds config keys
        (a key ``module+`` appends one more ``module`` line)."""
        binary = require_peer("baresip")
        self.workdir = artifacts.directory / name
        certificate = write_certificate(self.workdir / "certs")
        self.events: list[dict[str, Any]] = []
        self._buffer = bytearray()
        self._token = 0
        self._sock: socket.socket | None = None
        # libre also binds SIP port + 1 (TLS), which free_port() does not reserve: a
        # port taken meanwhile makes baresip exit at start, so try fresh ports again.
        for attempt in range(3):
            self.sip_port = _free_port_pair()
            self.ctrl_port = free_port(tcp_and_udp=False)
            confdir = write_baresip_config(
                self.workdir / "baresip", certificate, sip_port=self.sip_port,
                ctrl_port=self.ctrl_port,
            )  # fmt: skip
            _customise(confdir, account, config or {})
            argv = [binary, "-f", str(confdir), "-s"]
            if shutil.which("stdbuf"):
                argv = ["stdbuf", "-oL", "-eL", *argv]
            log = artifacts.path(f"{name}.log" if attempt == 0 else f"{name}-{attempt}.log")
            self.process = BackgroundProcess(argv, log, env=clean_env())
            self._sock = self._connect(deadline=time.monotonic() + 10)
            if self._sock is not None:
                return
            self.process.stop(signal.SIGTERM, grace=3)
        pytest.fail(f"baresip ctrl_tcp not reachable:\n{tail(self.process.log)}", pytrace=False)

    def _connect(self, deadline: float) -> socket.socket | None:
        while time.monotonic() < deadline:
            if not self.process.running():
                return None
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=0.5)
            except OSError:
                time.sleep(0.05)
        return None

    def _pump(self, timeout: float) -> None:
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            raise ConnectionError("baresip closed ctrl_tcp")
        self._buffer += data
        while (colon := self._buffer.find(b":")) >= 0:
            size = int(self._buffer[:colon])
            if len(self._buffer) < colon + size + 2:
                break
            self.events.append(json.loads(self._buffer[colon + 1 : colon + 1 + size]))
            del self._buffer[: colon + size + 2]

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Send a ctrl_tcp command; its response object."""
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": command, "params": params, "token": token})
        self._sock.sendall(_netstring(body.encode()))
        found = self._wait(lambda e: e.get("response") and e.get("token") == token, timeout)
        assert found is not None, f"baresip: no response to {command!r}"
        return found

    def wait_event(self, kinds: set[str], timeout: float) -> dict[str, Any] | None:
        """The first event of one of ``kinds`` received (now or within ``timeout``)."""
        return self._wait(lambda e: bool(e.get("event")) and e.get("type") in kinds, timeout)

    def _wait(self, match: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if match(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._pump(min(remaining, 0.2))

    def log_text(self) -> str:
        """baresip's console output (with the ``-s`` SIP trace)."""
        return self.process.text()

    def close(self) -> int:
        """``quit`` (sends BYE for live calls), then stop the process."""
        if self.process.running() and self._sock is not None:
            try:
                self._sock.sendall(_netstring(b'{"command":"quit","params":"","token":"q"}'))
            except OSError:
                pass
            self.process.wait(5)
        if self._sock is not None:
            self._sock.close()
        return self.process.stop(signal.SIGTERM, grace=3)


def _customise(confdir: Path, account: str | None, config: dict[str, str]) -> None:
    """Edit the rendered baresip config dir before baresip starts."""
    if account is not None:
        (confdir / "accounts").write_text(account + "\n")
    lines = (confdir / "config").read_text().splitlines()
    for key, value in config.items():
        name = key.rstrip("+")
        line = f"{name}\t\t{value}"
        if key.endswith("+"):
            lines.append(line)
            continue
        found = [i for i, text in enumerate(lines) if text.split(maxsplit=1)[:1] == [name]]
        if found:
            lines[found[0]] = line
        else:
            lines.append(line)
    (confdir / "config").write_text("\n".join(lines) + "\n")


class LinphoneDaemon:
    """linphone-daemon (SDES-SRTP UAC) with its control socket in the test dir.

    tests/peers/linphone/linphonerc.in as its factory config; it needs a network
    namespace whose only interface is ``lo`` (tests/peers/README.md, linphone).
    """

    def __init__(self, artifacts: Artifacts, identity: str, *, auto_answer: bool = False) -> None:
        binary = require_peer("linphone-daemon")
        if not network_isolated():
            pytest.fail(
                "linphone-daemon needs a network namespace with only `lo` (else its SDP "
                "carries the external address): run the suite with `make test`, which "
                "runs pytest under `unshare -n`",
                pytrace=False,
            )
        self.workdir = artifacts.directory / "linphone"
        home = self.workdir / "home"
        (home / ".local/share/linphone").mkdir(parents=True)
        self.port = free_port()
        render("linphone/linphonerc.in", self.workdir / "factory.rc",
               CONTACT=identity, SIP_PORT=self.port)  # fmt: skip
        self.socket_path = self.workdir / "ctl.sock"
        self.daemon_log = artifacts.path("linphone-daemon.log")
        argv = [binary, "--config", str(self.workdir / "linphonerc")]
        argv += ["--factory-config", str(self.workdir / "factory.rc")]
        argv += ["--pipe", f"..{self.socket_path}", "--log", str(self.daemon_log)]
        if auto_answer:  # answers incoming calls itself
            argv.append("--auto-answer")
        env = clean_env(HOME=str(home))
        self.process = BackgroundProcess(argv, artifacts.path("linphone.out.log"), env=env)
        if not wait_for(self.socket_path.exists, 10):
            self.close()
            pytest.fail("linphone-daemon made no control socket in 10 s", pytrace=False)

    def command(self, line: str, timeout: float = 3.0) -> str:
        """One command on a fresh control connection; the reply text."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            reply = b""
            deadline = time.monotonic() + timeout
            while b"Status:" not in reply or not reply.endswith(b"\n"):
                if time.monotonic() >= deadline:
                    break
                try:
                    chunk = sock.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not chunk:
                    break
                reply += chunk
        return reply.decode(errors="replace")

    def tone_wav(self, seconds: float = 2.0) -> Path:
        """A 440 Hz, 8 kHz mono 16-bit WAV file (for ``incall-player-start``)."""
        path = self.workdir / "tone.wav"
        frames = bytearray()
        for n in range(int(8000 * seconds)):
            frames += int(8000 * math.sin(2 * math.pi * 440 * n / 8000)).to_bytes(
                2, "little", signed=True
            )
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(bytes(frames))
        return path

    def log_text(self) -> str:
        """liblinphone's log file."""
        return self.daemon_log.read_text(errors="replace") if self.daemon_log.exists() else ""

    def close(self) -> int:
        """``quit``, then stop the process."""
        if self.process.running() and self.socket_path.exists():
            try:
                self.command("quit", timeout=2)
            except OSError:
                pass
            self.process.wait(5)
        return self.process.stop(signal.SIGTERM, grace=3)


class Kamailio:
    """tests/peers/kamailio/pcscf.cfg (P-CSCF hop) on ``listen_ip``, relaying to ``as_uri``."""

    def __init__(
        self,
        artifacts: Artifacts,
        *,
        as_uri: str,
        listen_ip: str = "127.0.0.2",
        tls_cfg: Path | None = None,
        name: str = "kamailio",
        assert_answerer: bool = False,
    ) -> None:
        binary = require_peer("kamailio")
        self.host = listen_ip
        self.port = free_port(listen_ip)
        self.tls_port = free_port(listen_ip, tcp_and_udp=False)
        workdir = artifacts.directory / name
        (workdir / "run").mkdir(parents=True)
        cfg = render("kamailio/pcscf.cfg", workdir / "pcscf.cfg", LISTEN_IP=listen_ip,
                     PORT=self.port, TLS_PORT=self.tls_port, AS_URI=as_uri,
                     TLS_CFG=tls_cfg or "")  # fmt: skip
        argv = [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(workdir / "run")]
        argv += ["-m", "64", "-M", "8"]
        if tls_cfg is not None:
            argv += ["-A", "WITH_TLS"]
        if assert_answerer:  # the terminating side: assert the answerer in 2xx (RFC 3325)
            argv += ["-A", "ASSERT_ANSWERER"]
        self.process = BackgroundProcess(argv, artifacts.path(f"{name}.log"), env=clean_env())
        if not wait_for(lambda: not self.process.running() or self._answers(), 15):
            self.close()
            pytest.fail(
                f"kamailio did not answer OPTIONS:\n{tail(self.process.log)}", pytrace=False
            )
        if not self.process.running():
            pytest.fail(f"kamailio exited:\n{tail(self.process.log)}", pytrace=False)

    def _answers(self) -> bool:
        # Max-Forwards: 0 is answered (483) by kamailio itself, not relayed.
        return sip_options(self.host, self.port, timeout=0.5, max_forwards=0) == 483

    def log_text(self) -> str:
        """kamailio's stderr (``PCSCF: ... PAI=...`` lines per request)."""
        return self.process.text()

    def close(self) -> int:
        """SIGTERM to the main process (it ends its workers)."""
        return self.process.stop(signal.SIGTERM, grace=5)


def make_certs(artifacts: Artifacts) -> Path:
    """A per-test dir with a loopback certificate (certs/) and kamailio/tls.cfg."""
    return make_conf(artifacts.directory / "conf")


def srtp_suites_from_menc(event: dict[str, Any]) -> str:
    """The suite in a CALL_MENC event param ``"0,audio,AES_CM_128_HMAC_SHA1_80"``."""
    return str(event.get("param", "")).split(",")[-1]


__all__ = [
    "SIPP_OFFER_CRYPTO",
    "Baresip",
    "Kamailio",
    "LinphoneDaemon",
    "Sipp",
    "SippRun",
    "make_certs",
    "srtp_suites_from_menc",
]
