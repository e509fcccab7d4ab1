"""The ``mrf ue`` subcommand: argument parsing, stdin commands, JSON-line events.

``mrf ue answer --as SIP-URI --listen HOST:PORT [--mikey --kms URL --kms-key
HEX] [--duration S]`` answers the focus's dial-out (:mod:`mrf.ue.answer`).

``mrf ue join CONFERENCE-URI --as SIP-URI [--proxy HOST:PORT] [--transport
udp|tcp|tls] [--audio] [--msrp] [--bfcp [--setup active|passive]
[--request-floor]] [--say TEXT]... [--duration SECONDS]``

Events (one JSON object a line on stdout, ``event`` field): ``joined``,
``refused`` (``status``, ``reason``, ``warning``: the text of the answer's
``Warning`` header, RFC 3261 §20.43, or null), ``chat`` (``from``, ``text``, ``size``, ``sha256``,
``private``), ``sent``, ``left``, ``error``.  Commands on stdin: ``say TEXT``,
``say-to URI TEXT`` (private message), ``nick NAME``, ``leave``.  Without
``--duration`` the client leaves at the end of stdin; with it, after that
many seconds (or on ``leave``).  Exit status 0 when it joined and left as
asked, 1 when it was refused or failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

from mrf.ue.answer import UeAnswerOptions, run_answer
from mrf.ue.client import UeClient, UeOptions
from mrf.ue.watch import add_subscribe_arguments, add_subscribe_parser
from mrf.ue.watch import options_from as subscribe_options

__all__ = ["add_parser", "run"]

MAX_COMMAND = 8 * 1024 * 1024


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def add_parser(commands: Any, subparser: Any) -> None:
    """Register ``ue join`` on the ``mrf`` parser (``subparser`` is mrf's helper)."""
    ue = subparser(commands, "ue", "the reference participant client (JSON events on stdout)")
    actions = ue.add_subparsers(dest="action", metavar="ACTION", required=True)
    join = subparser(actions, "join", "dial in to a conference, chat, leave")
    join.add_argument("conference", metavar="CONFERENCE-URI")
    join.add_argument("--as", dest="identity", metavar="SIP-URI", required=True)
    join.add_argument("--proxy", type=_hostport, metavar="HOST:PORT", default=None)
    join.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    join.add_argument(
        "--audio", action="store_true",
        help="offer SDES-SRTP audio (implied when none of --audio, --msrp, --bfcp is given)",
    )  # fmt: skip
    join.add_argument("--msrp", action="store_true", help="offer MSRP chat over TLS")
    join.add_argument("--bfcp", action="store_true", help="offer BFCP floor control over TLS")
    join.add_argument("--request-floor", action="store_true", help="request the floor on joining")
    join.add_argument(
        "--setup",
        choices=("active", "passive"),
        default="active",
        help="a=setup of the BFCP line: passive = listen, the focus connects (default active)",
    )
    join.add_argument(
        "--mikey", action="store_true", help="key audio, MSRP and BFCP with MIKEY-TICKET (TLS-PSK)"
    )
    join.add_argument("--kms", dest="kms_url", metavar="URL", help="the KMS (with --mikey)")
    join.add_argument("--kms-key", metavar="HEX", help="our KMS key from `mrf kms enroll`")
    join.add_argument("--kms-identity", metavar="SIP-URI", help="KMS identity (default --as)")
    join.add_argument("--subscribe", action="store_true",
                      help="subscribe to the conference event package once joined")  # fmt: skip
    add_subscribe_arguments(join)
    join.add_argument("--say", action="append", default=[], metavar="TEXT")
    join.add_argument("--nickname", default=None, help="RFC 7701 NICKNAME after joining")
    join.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    join.add_argument("--host", default="127.0.0.1", help="local address (default 127.0.0.1)")
    join.add_argument("--data-dir", type=Path, default=None, help="keep the certificate here")
    join.add_argument("--keylog-file", type=Path, default=None, help="TLS key log (debugging)")
    join.add_argument(
        "--bad-fingerprint",
        action="store_true",
        help="advertise another certificate's fingerprint (checks the focus refuses TLS)",
    )
    join.set_defaults(handler=run)
    add_subscribe_parser(actions, subparser, _hostport)
    answer = subparser(actions, "answer", "answer the focus's dial-out (UAS, JSON events)")
    answer.add_argument("--as", dest="identity", metavar="SIP-URI", required=True)
    answer.add_argument("--listen", type=_hostport, metavar="HOST:PORT", required=True)
    answer.add_argument("--audio", action="store_true", help="answer SRTP audio (the default)")
    answer.add_argument("--mikey", action="store_true", help="answer MIKEY-TICKET offers")
    answer.add_argument("--kms", dest="kms_url", metavar="URL", help="the KMS (with --mikey)")
    answer.add_argument("--kms-key", metavar="HEX", help="our KMS key from `mrf kms enroll`")
    answer.add_argument("--kms-identity", metavar="SIP-URI", help="KMS identity (default --as)")
    answer.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    answer.set_defaults(handler=run_answer_command)


def run(args: argparse.Namespace, settings: Any) -> int:
    if not (args.audio or args.msrp or args.bfcp):  # nothing asked for: audio
        args.audio = True
    options = UeOptions(
        conference=args.conference, identity=args.identity, proxy=args.proxy,
        transport=args.transport, audio=args.audio, msrp=args.msrp, host=args.host,
        bfcp=args.bfcp, request_floor=args.request_floor, bfcp_setup=args.setup,
        data_dir=args.data_dir, keylog_file=args.keylog_file,
        bad_fingerprint=args.bad_fingerprint, nickname=args.nickname, says=tuple(args.say),
        mikey=args.mikey, kms_url=args.kms_url, kms_key=args.kms_key,
        kms_identity=args.kms_identity,
        subscribe=subscribe_options(args) if args.subscribe else None,
    )  # fmt: skip
    try:
        return asyncio.run(_main(options, args.duration))
    except KeyboardInterrupt:
        return 130


def run_answer_command(args: argparse.Namespace, settings: Any) -> int:
    """``mrf ue answer`` (:mod:`mrf.ue.answer`)."""
    if args.mikey and not (args.kms_url and args.kms_key):
        _emit({"event": "error", "detail": "--mikey needs --kms URL and --kms-key HEX"})
        return 2
    options = UeAnswerOptions(
        identity=args.identity, listen=args.listen, mikey=args.mikey, kms_url=args.kms_url,
        kms_key=args.kms_key, kms_identity=args.kms_identity,
    )  # fmt: skip
    try:
        return asyncio.run(run_answer(options, _emit, args.duration))
    except KeyboardInterrupt:
        return 130


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """A daemon thread: stdin lines to ``queue`` (None at EOF)."""

    def post(item: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the session ended (loop closed) before stdin did
            return False
        return True

    def pump() -> None:
        try:
            for line in sys.stdin:
                if not post(line[:MAX_COMMAND].rstrip("\r\n")):
                    return
        except (OSError, ValueError):
            pass
        post(None)

    threading.Thread(target=pump, name="mrf-ue-stdin", daemon=True).start()


async def _main(options: UeOptions, duration: float | None) -> int:
    client = UeClient(options, _emit)
    try:
        if not await client.join():
            return 1
        for text in options.says:
            client.say(text)
        if options.request_floor and client.floor is not None:
            client.floor.request()
        return 0 if await _session(client, duration) else 1
    finally:
        await client.close()


async def _session(client: UeClient, duration: float | None) -> bool:
    """Run until left; False when the chat connection was lost (e.g. refused TLS)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    _stdin_lines(loop, queue)
    deadline = None if duration is None else loop.time() + duration
    lost = asyncio.ensure_future(client.chat.closed.wait()) if client.chat else None
    try:
        while not client.left.is_set():
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            getter = asyncio.ensure_future(queue.get())
            left = asyncio.ensure_future(client.left.wait())
            waiting = {getter, left} | ({lost} if lost else set())
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when="FIRST_COMPLETED")
            for future in (getter, left):
                if future not in done:
                    future.cancel()
            if lost is not None and lost in done:
                _emit({"event": "error", "detail": "MSRP connection lost (refused by the focus?)"})
                await client.leave("msrp connection lost")
                return False
            if left in done:
                return True
            if getter not in done:  # --duration elapsed
                await client.leave("duration")
                return True
            line = getter.result()
            if line is None:
                if deadline is None:
                    await asyncio.sleep(0.5)  # let the last chunks and responses through
                    await client.leave("end of input")
                    return True
                continue
            if await _command(client, line):
                return True
        return True
    finally:
        if lost is not None:
            lost.cancel()


def _floor_command(client: UeClient, rest: str) -> None:
    """``floor request|release [ID]|query|user [ID]|accept ID|grant ID|deny ID|revoke ID``."""
    words = rest.split()
    action = words[0] if words else ""
    number = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    floor = client.floor
    if floor is None:
        _emit({"event": "error", "detail": "no floor control (join with --bfcp)"})
    elif action == "request":
        floor.request(beneficiary=number)
    elif action == "release":
        floor.release(number)
    elif action == "query":
        floor.query_floor()
    elif action == "user":
        floor.query_user(number)
    elif action in ("accept", "grant", "deny", "revoke") and number is not None:
        floor.chair(action, number, " ".join(words[2:]))
    else:
        _emit({"event": "error", "detail": f"unknown floor command {rest[:40]!r}"})


async def _command(client: UeClient, line: str) -> bool:
    """Run one stdin command; True when the client left."""
    verb, _, rest = line.partition(" ")
    if verb == "say":
        client.say(rest)
    elif verb == "say-to":
        target, _, text = rest.partition(" ")
        client.say(text, to=target)
    elif verb == "nick" and client.chat is not None:
        client.chat.nickname(rest)
    elif verb == "floor":
        _floor_command(client, rest)
    elif verb == "leave":
        await client.leave("leave")
        return True
    elif verb:
        _emit({"event": "error", "detail": f"unknown command {verb[:40]!r}"})
    return False
