"""``mrf ue`` (mrf.ue.cli): arguments, JSON event lines, stdin commands, exit codes.

Everything runs in process: the client is a stand-in where the network
would be needed, except the refusal test, which answers the INVITE from a
UDP socket on loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

import mrf.ue.cli as cli
from focus.sip.message import SipRequest, make_response, parse_message
from mrf.__main__ import build_parser, main


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRF_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["ue", "join", *argv])


def test_join_arguments() -> None:
    args = parse("sip:retro@127.0.0.1", "--as", "sip:alice@127.0.0.1", "--proxy", "[::1]:5062",
                 "--transport", "tls", "--msrp", "--bfcp", "--say", "one", "--say", "zwei ☃",
                 "--nickname", "Al", "--duration", "2.5", "--request-floor")  # fmt: skip
    assert args.conference == "sip:retro@127.0.0.1" and args.identity == "sip:alice@127.0.0.1"
    assert args.proxy == ("::1", 5062) and args.transport == "tls"
    assert args.msrp and args.bfcp and not args.audio and args.request_floor
    assert args.say == ["one", "zwei ☃"] and args.nickname == "Al" and args.duration == 2.5
    assert args.handler is cli.run
    defaults = parse("sip:retro@127.0.0.1", "--as", "sip:a@127.0.0.1")
    assert (defaults.transport, defaults.proxy, defaults.duration) == ("udp", None, None)
    assert defaults.host == "127.0.0.1" and not defaults.bad_fingerprint


@pytest.mark.parametrize(
    "argv",
    [
        ["ue", "join", "sip:retro@127.0.0.1"],  # no --as
        ["ue", "join", "sip:r@127.0.0.1", "--as", "sip:a@h", "--proxy", "nohost"],
        ["ue", "join", "sip:r@127.0.0.1", "--as", "sip:a@h", "--proxy", "h:99999"],
        ["ue", "join", "sip:r@127.0.0.1", "--as", "sip:a@h", "--transport", "sctp"],
        ["ue", "join", "sip:r@127.0.0.1", "--as", "sip:a@h", "--duration", "soon"],
        ["ue", "dance"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().out == ""  # stdout stays pure JSON lines


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ue", "join", "--help"]) == 0
    assert "--msrp" in capsys.readouterr().out


def test_events_are_one_json_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    cli._emit({"event": "chat", "from": "sip:bob@127.0.0.1", "text": "Grüße\nzweite Zeile ☃"})
    cli._emit({"event": "left", "reason": "leave"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {"event": "chat", "from": "sip:bob@127.0.0.1", "text": "Grüße\nzweite Zeile ☃"}
    assert "☃" in lines[0]  # UTF-8, not \\u escapes
    assert json.loads(lines[1])["event"] == "left"


class FakeChat:
    def __init__(self) -> None:
        self.nicknames: list[str] = []
        self.closed = asyncio.Event()

    def nickname(self, name: str) -> None:
        self.nicknames.append(name)


class FakeFloor:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def request(self, beneficiary: int | None = None) -> None:
        self.calls.append(("request", beneficiary))

    def release(self, number: int | None) -> None:
        self.calls.append(("release", number))

    def query_floor(self) -> None:
        self.calls.append(("query",))

    def query_user(self, number: int | None) -> None:
        self.calls.append(("user", number))

    def chair(self, action: str, number: int, text: str) -> None:
        self.calls.append((action, number, text))


class FakeClient:
    """What cli._main / _session / _command use of UeClient."""

    def __init__(self, *, joins: bool = True, floor: bool = False) -> None:
        self.joins = joins
        self.said: list[tuple[str, str | None]] = []
        self.chat = FakeChat()
        self.floor: FakeFloor | None = FakeFloor() if floor else None
        self.left = asyncio.Event()
        self.left_reason: str | None = None
        self.closed = False

    async def join(self) -> bool:
        return self.joins

    def say(self, text: str, to: str | None = None) -> None:
        self.said.append((text, to))

    async def leave(self, reason: str = "leave") -> None:
        self.left_reason = reason
        self.left.set()
        cli._emit({"event": "left", "reason": reason})

    async def close(self) -> None:
        self.closed = True


def test_stdin_commands(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(floor=True)

    async def drive() -> list[bool]:
        lines = ["say hello wörld", "say-to sip:bob@127.0.0.1 just for you", "nick Ali Baba",
                 "floor request", "floor request 7", "floor release 3", "floor query",
                 "floor user 2", "floor accept 4 ok then", "floor deny 5", "floor revoke 6",
                 "floor grant 9", "floor bogus", "dance", "", "leave"]  # fmt: skip
        return [await cli._command(client, line) for line in lines]  # type: ignore[arg-type]

    results = asyncio.run(drive())
    assert results == [False] * 15 + [True]
    assert client.said == [("hello wörld", None), ("just for you", "sip:bob@127.0.0.1")]
    assert client.chat.nicknames == ["Ali Baba"]
    assert client.floor is not None and client.floor.calls == [
        ("request", None), ("request", 7), ("release", 3), ("query",), ("user", 2),
        ("accept", 4, "ok then"), ("deny", 5, ""), ("revoke", 6, ""), ("grant", 9, ""),
    ]  # fmt: skip
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = [e["detail"] for e in events if e["event"] == "error"]
    assert len(errors) == 2 and "bogus" in errors[0] and "dance" in errors[1]
    assert events[-1] == {"event": "left", "reason": "leave"}


def test_floor_command_without_bfcp(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(cli._command(FakeClient(), "floor request"))  # type: ignore[arg-type]
    assert "--bfcp" in json.loads(capsys.readouterr().out)["detail"]


def run_main(
    monkeypatch: pytest.MonkeyPatch, client: FakeClient, stdin: str, duration: float | None
) -> int:
    monkeypatch.setattr(cli, "UeClient", lambda options, emit: client)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    options = cli.UeOptions("sip:r@127.0.0.1", "sip:a@127.0.0.1", msrp=True, says=("first",))
    return asyncio.run(cli._main(options, duration))


def test_exit_0_after_leave_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient()
    assert run_main(monkeypatch, client, "say second\nleave\nsay never\n", None) == 0
    assert client.said == [("first", None), ("second", None)] and client.closed
    assert client.left_reason == "leave"


def test_exit_0_at_end_of_input_and_after_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()
    assert run_main(monkeypatch, client, "say bye\n", None) == 0
    assert client.left_reason == "end of input"
    client = FakeClient()
    assert run_main(monkeypatch, client, "", 0.2) == 0  # stdin closed, --duration runs on
    assert client.left_reason == "duration"


def test_stdin_after_the_session_ended_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdin may deliver a line (or EOF) after the loop closed: the reader thread stays quiet."""
    loop = asyncio.new_event_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop.close()
    monkeypatch.setattr(cli.sys, "stdin", io.StringIO("say late\n"))
    before = set(threading.enumerate())
    cli._stdin_lines(loop, queue)
    for thread in set(threading.enumerate()) - before:
        thread.join(5)
    assert queue.empty()


def test_exit_1_when_not_joined_or_chat_lost(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient(joins=False)
    assert run_main(monkeypatch, client, "", None) == 1 and client.closed and not client.said
    client = FakeClient()
    client.chat.closed.set()  # the focus dropped the TLS connection (e.g. wrong fingerprint)
    assert run_main(monkeypatch, client, "", 5.0) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"event": "error", "detail": "MSRP connection lost (refused by the focus?)"} in events
    assert client.left_reason == "msrp connection lost"


def test_exit_0_when_the_focus_hangs_up(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()

    async def hang_up_soon() -> None:
        await asyncio.sleep(0.05)
        client.left.set()

    real_join = client.join

    async def join() -> bool:
        asyncio.get_running_loop().create_task(hang_up_soon())
        return await real_join()

    client.join = join  # type: ignore[method-assign]
    assert run_main(monkeypatch, client, "", 10.0) == 0


def _refusing_registrar(sock: socket.socket, stop: threading.Event) -> None:
    """Answer every INVITE with 403 (the focus's refusal of an unknown identity)."""
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            data, address = sock.recvfrom(65535)
        except TimeoutError:
            continue
        request = parse_message(data)
        if isinstance(request, SipRequest) and request.method == "INVITE":
            warning = ("Warning", '399 127.0.0.1 "the identity in From is not on the list"')
            response = make_response(request, 403, "Forbidden", to_tag="x1", headers=[warning])
            sock.sendto(bytes(response), address)


def test_refused_join_prints_refused_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=_refusing_registrar, args=(sock, stop), daemon=True)
    thread.start()
    try:
        status = main(["ue", "join", f"sip:retro@127.0.0.1:{port}", "--as",
                       "sip:mallory@127.0.0.1", "--msrp", "--duration", "1"])  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
        sock.close()
    assert status == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events == [{"event": "refused", "status": 403, "reason": "Forbidden",
                       "warning": "the identity in From is not on the list"}]  # fmt: skip
