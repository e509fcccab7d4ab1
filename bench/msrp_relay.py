"""Chat messages relayed per second by the focus's MSRP switch over TLS.

N participants each send ``--messages`` chat messages of ``--size`` bytes at
once; every message reaches the N−1 others.  Two relays, measured in the same
run, each alone in its own process (so that the participants' work does not
count against it):

* **msrp**: the real :class:`mrf.chat.ChatRelay` (TLS on pyOpenSSL memory
  BIOs with the SDP-fingerprint check, MSRP parsing, 200 responses, CPIM
  re-wrapping with the sender's identity, chunked SEND to every recipient,
  their 200s);
* **bare**: an asyncio TLS server (stdlib ``ssl``, same certificates, same
  AEAD suites) that copies every byte it reads to the other N−1 connections;
* **floor**: the least Python an MSRP switch runs per message, on the bare
  relay's TLS: one regular expression frames a SEND, one format answers it,
  the CPIM head is replaced, each copy is one format with a fresh transaction
  id, each 200 one match and one dict pop; no validation, no sessions, no
  reports, no timers.  Not a product: it shows how close to the bare relay
  any Python relay can come on this machine.

The participants (one asyncio process) send pre-built MSRP SEND frames over
stdlib TLS with their own certificates and answer each SEND with 200.
Reported: delivered messages/s and MB/s of message content, and the ratio
msrp/bare (target ≥ 0.70 with 1 KB messages), and floor/bare.  Not part of the suite::

    .venv/bin/python bench/msrp_relay.py [--participants 4] [--messages 2000] [--size 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from focus.sdp.attributes import SdpFingerprint  # noqa: E402
from focus.sdp.msrp import SdpMsrpPlan  # noqa: E402
from focus.sdp.offer_answer import SdpStreamPlan  # noqa: E402
from mrf.chat import start_chat_relay  # noqa: E402
from mrf.msrp.cpim import CPIM_TYPE, CpimMessage  # noqa: E402
from mrf.msrp.message import MsrpRequest, new_ident  # noqa: E402
from mrf.msrp.uri import MsrpUri  # noqa: E402
from mrf.tls import TLS12_CIPHERS, certificate_der, ensure_certificate  # noqa: E402

ROOM = "sip:bench@127.0.0.1"
_SEND_HEAD = re.compile(rb"MSRP (\S+) SEND\r\nTo-Path: (\S+)\r\nFrom-Path: (\S+)\r\n")
_END = re.compile(rb"\r\n-------(\S+?)([$+#])\r\n")


# -- the two relays (run in a child process) ------------------------------------


async def serve_msrp(directory: Path, participants: int) -> None:
    cert, key = ensure_certificate(directory / "focus")
    relay = await start_chat_relay("127.0.0.1", 0, cert, key)
    paths = []
    for index in range(participants):
        der = certificate_der(ensure_certificate(directory / f"p{index}")[0].read_bytes())
        path = f"msrps://127.0.0.1:9/p{index}session;tcp"
        plan = SdpMsrpPlan(
            True,
            (path,),
            (SdpFingerprint.from_certificate(der),),
            False,
            "127.0.0.1",
            9,
            True,
            None,
        )
        call = SimpleNamespace(
            call_id=f"c{index}",
            conference=SimpleNamespace(name="bench"),
            conference_uri=ROOM,
            participant=f"sip:p{index}@127.0.0.1",
        )
        local = relay.open(call, SdpStreamPlan(0, "message", True, None, "TCP/TLS/MSRP", msrp=plan))
        paths.append([local.path, path])
    print(json.dumps({"port": relay.port, "paths": paths}), flush=True)
    await asyncio.get_running_loop().create_future()  # until killed


class _BareRelay(asyncio.Protocol):
    """Forwards whole frames (cut at MSRP end-lines) to every other connection.

    The least a correct relay must do: without framing, senders' bytes would
    interleave at arbitrary boundaries on a recipient's connection.
    """

    peers: list[asyncio.Transport] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.peers.append(transport)

    def data_received(self, data: bytes) -> None:
        data = self.buffer + data
        cut = data.rfind(b"$\r\n") + 3 if data.endswith(b"$\r\n") else 0
        if not cut:
            ends = [m.end() for m in _END.finditer(data)]
            cut = ends[-1] if ends else 0
        self.buffer = data[cut:]
        if cut:
            whole = data[:cut]
            for peer in self.peers:
                if peer is not self.transport:
                    peer.write(whole)


_FLOOR_OK = re.compile(rb"MSRP (\S+) 200 OK\r\nTo-Path: \S+\r\nFrom-Path: \S+\r\n-------\1\$\r\n")
_FLOOR_SEND = re.compile(rb"MSRP (\S+) SEND\r\nTo-Path: (\S+)\r\nFrom-Path: (\S+)\r\n")


class _FloorRelay(asyncio.Protocol):
    """The minimal Python MSRP switch (see the module docstring)."""

    peers: list[_FloorRelay] = []
    pending: dict[bytes, _FloorRelay] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""
        self.paths = b""  # "To-Path: <theirs>\r\nFrom-Path: <ours>\r\n" of our SENDs to them
        self.peers.append(self)

    def data_received(self, data: bytes) -> None:
        data, pos, out = self.buffer + data, 0, []
        copies: dict[_FloorRelay, list[bytes]] = {}
        while True:
            ok = _FLOOR_OK.match(data, pos)
            if ok is not None:
                self.pending.pop(ok[1], None)
                pos = ok.end()
                continue
            head = _FLOOR_SEND.match(data, pos)
            if head is None:
                break
            tid = head[1]
            end = data.find(b"\r\n-------" + tid, head.end() - 2)
            if end < 0 or len(data) < end + len(tid) + 12:
                break
            self.paths = b"To-Path: %s\r\nFrom-Path: %s\r\n" % (head[3], head[2])
            out.append(b"MSRP %s 200 OK\r\n%s-------%s$\r\n" % (tid, self.paths, tid))
            blank = data.find(b"\r\n\r\n", head.end() - 2, end)
            if blank >= 0:  # re-wrap: our CPIM head, the sender's content part
                body = data[blank + 4 : end]
                content = body[body.find(b"\r\n\r\n") + 4 :]
                wrapped = _FLOOR_CPIM + content
                for peer in self.peers:
                    if peer is not self:
                        copy = new_ident().encode()
                        self.pending[copy] = peer
                        copies.setdefault(peer, []).append(
                            b"MSRP %s SEND\r\n%sMessage-ID: %s\r\nByte-Range: 1-%d/%d\r\n"
                            b"Content-Type: message/cpim\r\n\r\n%s\r\n-------%s$\r\n"
                            % (copy, peer.paths, copy, len(wrapped), len(wrapped), wrapped, copy)
                        )
            pos = end + len(tid) + 12
        self.buffer = data[pos:]
        if out:
            self.transport.write(b"".join(out))
        for peer, frames in copies.items():
            peer.transport.write(b"".join(frames))


_FLOOR_CPIM = (
    b"From: <sip:someone@127.0.0.1>\r\nTo: <" + ROOM.encode() + b">\r\n"
    b"DateTime: 2026-01-01T00:00:00+00:00\r\n\r\nContent-Type: text/plain\r\n\r\n"
)


async def serve_floor(directory: Path) -> None:
    await serve_bare(directory, _FloorRelay)


async def serve_bare(directory: Path, protocol: type[asyncio.Protocol] = _BareRelay) -> None:
    cert, key = ensure_certificate(directory / "focus")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_NONE
    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0, ssl=context)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().create_future()


# -- the participants (this process) ---------------------------------------------


class Participant(asyncio.Protocol):
    """Sends pre-built SEND frames; answers SENDs with 200; counts what arrives."""

    def __init__(self, local: bytes, remote: bytes, answer: bool) -> None:
        self.local, self.remote, self.answer = local, remote, answer
        self.buffer = b""
        self.received = 0  # SEND end-lines ("$") seen: messages (one chunk each at 1 KB)
        self.bytes = 0
        self.bound = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        data = self.buffer + data
        keep = 0
        replies = []
        for match in _END.finditer(data):
            keep = match.end()
            self.received += match[2] == b"$"
        if self.answer:
            for head in _SEND_HEAD.finditer(data, 0, keep):
                replies.append(
                    b"MSRP %s 200 OK\r\nTo-Path: %s\r\nFrom-Path: %s\r\n-------%s$\r\n"
                    % (head[1], head[3], head[2], head[1])
                )
            self.received -= len(re.findall(rb"\r\nMSRP \S+ 200", b"\r\n" + data[:keep]))
            if replies and self.transport is not None:
                self.transport.write(b"".join(replies))
            if not self.bound.is_set() and b" 200 OK" in data[:keep]:
                self.bound.set()
        self.buffer = data[keep:]


def frames(identity: str, local: str, remote: str, count: int, size: int) -> list[bytes]:
    text = ("x" * size).encode()
    out = []
    for _ in range(count):
        body = bytes(
            CpimMessage(
                [("From", f"<{identity}>"), ("To", f"<{ROOM}>")],
                [("Content-Type", "text/plain")],
                text,
            )
        )
        headers = [
            ("Message-ID", new_ident()),
            ("Byte-Range", f"1-{len(body)}/{len(body)}"),
            ("Content-Type", CPIM_TYPE),
        ]
        to, frm = (MsrpUri.parse(remote),), (MsrpUri.parse(local),)
        out.append(bytes(MsrpRequest(new_ident(), "SEND", to, frm, headers, body)))
    return out


def client_context(directory: Path, index: int) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(*ensure_certificate(directory / f"p{index}"))
    return context


async def run_clients(
    directory: Path, port: int, paths: list[list[str]], messages: int, size: int, msrp: bool
) -> float:
    loop = asyncio.get_running_loop()
    people: list[Participant] = []
    for index, (remote, local) in enumerate(paths):
        person = Participant(local.encode(), remote.encode(), answer=msrp)
        await loop.create_connection(
            lambda p=person: p, "127.0.0.1", port, ssl=client_context(directory, index)
        )
        people.append(person)
    if msrp:
        for person, (remote, local) in zip(people, paths, strict=True):
            bind = MsrpRequest(
                new_ident(),
                "SEND",
                (MsrpUri.parse(remote),),
                (MsrpUri.parse(local),),
                [("Message-ID", new_ident()), ("Byte-Range", "1-0/0")],
            )
            assert person.transport is not None
            person.transport.write(bytes(bind))
            await asyncio.wait_for(person.bound.wait(), 10)
            person.received = 0
    batches = [
        b"".join(frames(f"sip:p{i}@127.0.0.1", local, remote, messages, size))
        for i, (remote, local) in enumerate(paths)
    ]
    expected = messages * (len(people) - 1)
    start = time.perf_counter()
    for person, batch in zip(people, batches, strict=True):
        assert person.transport is not None
        person.transport.write(batch)
    frame_bytes = len(batches[0]) * (len(people) - 1)

    def done(person: Participant) -> bool:
        # the bare relay interleaves senders' bytes at any boundary: count bytes there
        return person.received >= expected if msrp else person.bytes >= frame_bytes

    while not all(done(p) for p in people):
        await asyncio.sleep(0.002)
        if time.perf_counter() - start > 120:
            raise RuntimeError(f"stalled: {[p.received for p in people]} of {expected}")
    elapsed = time.perf_counter() - start
    for person in people:
        assert person.transport is not None
        person.transport.close()
    return elapsed


def start_child(
    kind: str, directory: Path, participants: int
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    argv = [
        sys.executable,
        __file__,
        "--serve",
        kind,
        "--dir",
        str(directory),
        "--participants",
        str(participants),
    ]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert child.stdout is not None
    return child, json.loads(child.stdout.readline())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    kind: str, directory: Path, participants: int, messages: int, size: int
) -> tuple[float, float, float]:
    """Wall time of one run, and the CPU seconds the relay and the participants spent."""
    child, info = start_child(kind, directory, participants)
    try:
        if kind != "msrp":  # same frames, addressed as if to the focus
            info["paths"] = [
                [f"msrps://127.0.0.1:{info['port']}/s{i};tcp", f"msrps://127.0.0.1:9/p{i};tcp"]
                for i in range(participants)
            ]
        relay_before, clients_before = cpu_seconds(child.pid), time.process_time()
        elapsed = asyncio.run(
            run_clients(directory, info["port"], info["paths"], messages, size, kind != "bare")
        )
        relay = cpu_seconds(child.pid) - relay_before
        return elapsed, relay, time.process_time() - clients_before
    finally:
        child.terminate()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=4)
    parser.add_argument("--messages", type=int, default=2000, help="per participant")
    parser.add_argument("--size", type=int, default=1024, help="message text bytes")
    parser.add_argument("--rounds", type=int, default=3, help="best of")
    parser.add_argument("--serve", choices=("msrp", "bare", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "msrp":
        if os.environ.get("MRF_BENCH_PROFILE"):  # a cProfile of the relay, dumped on SIGTERM
            import cProfile
            import signal

            profile = cProfile.Profile()

            def dump(*_: object) -> None:
                profile.disable()
                profile.dump_stats(os.environ["MRF_BENCH_PROFILE"])
                os._exit(0)

            signal.signal(signal.SIGTERM, dump)
            profile.enable()
        asyncio.run(serve_msrp(args.dir, args.participants))
        return
    if args.serve == "floor":
        asyncio.run(serve_floor(args.dir))
        return
    if args.serve == "bare":
        asyncio.run(serve_bare(args.dir))
        return
    with tempfile.TemporaryDirectory(prefix="msrp-bench-") as tmp:
        directory = Path(tmp)
        for index in range(args.participants):
            ensure_certificate(directory / f"p{index}")
        delivered = args.messages * args.participants * (args.participants - 1)
        results = {}
        cpu = {}
        for kind in ("bare", "floor", "msrp"):
            best, relay_cpu, client_cpu = min(
                measure(kind, directory, args.participants, args.messages, args.size)
                for _ in range(args.rounds)
            )
            results[kind] = best
            cpu[kind] = relay_cpu
            rate = delivered / best
            print(
                f"{kind:5} {args.participants} participants, {delivered} messages of "
                f"{args.size} B delivered in {best:.3f} s: {rate:,.0f} msg/s, "
                f"{rate * args.size / 1e6:.1f} MB/s; relay CPU {relay_cpu:.3f} s "
                f"({relay_cpu / delivered * 1e6:.1f} µs/delivery), "
                f"participants' CPU {client_cpu:.3f} s"
            )
        ratio = results["bare"] / results["msrp"]
        verdict = "meets" if ratio >= 0.70 else "MISSES"
        print(f"ratio msrp/bare = {ratio:.2f} ({verdict} the 0.70 target)")
        print(f"ratio floor/bare = {results['bare'] / results['floor']:.2f} (the least Python)")
        print(f"relay CPU per delivery, bare/msrp = {cpu['bare'] / cpu['msrp']:.2f}")


if __name__ == "__main__":
    main()
