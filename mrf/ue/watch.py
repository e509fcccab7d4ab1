"""``mrf ue subscribe``: watch a conference through its event package without joining.

::

    mrf ue subscribe CONFERENCE-URI --as SIP-URI [--proxy HOST:PORT] [--transport udp|tcp|tls]
                     [--mikey --kms URL --kms-key HEX] [--expires S] [--duration S]
                     [--key-dump FILE] [--save-notify DIR]

Prints ``subscribed`` (or ``refused`` with ``status``), one ``notify`` per
NOTIFY (:mod:`mrf.ue.notify`), and ``unsubscribed``; stdin ``leave`` (or the
end of ``--duration``, or of stdin without it) un-subscribes.  Exit status 0
when it subscribed and un-subscribed as asked, 1 when refused or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

from focus.endpoint import SipEndpoint
from focus.sip.message import make_response
from focus.sip.transaction import AckReceived, CancelReceived, RequestReceived, SipAddress
from focus.sip.uri import SipUri
from mrf.ue.notify import UeSubscription, UeSubscriptionOptions

__all__ = ["add_subscribe_arguments", "add_subscribe_parser", "target"]


def add_subscribe_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``join --subscribe`` shares with ``subscribe``."""
    parser.add_argument("--expires", type=int, default=3600, metavar="SECONDS",
                        help="SUBSCRIBE Expires (default 3600)")  # fmt: skip
    parser.add_argument("--key-dump", type=Path, default=None, metavar="FILE",
                        help="append the PSK S/MIME KEK and key id (debugging only)")  # fmt: skip
    parser.add_argument("--save-notify", type=Path, default=None, metavar="DIR",
                        help="write every NOTIFY body as received")  # fmt: skip


def add_subscribe_parser(actions: Any, subparser: Any, hostport: Any) -> None:
    """Register ``ue subscribe`` (``subparser`` is mrf's helper, ``hostport`` the type)."""
    watch = subparser(actions, "subscribe", "watch a conference (event package), no joining")
    watch.add_argument("conference", metavar="CONFERENCE-URI")
    watch.add_argument("--as", dest="identity", metavar="SIP-URI", required=True)
    watch.add_argument("--proxy", type=hostport, metavar="HOST:PORT", default=None)
    watch.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    watch.add_argument("--mikey", action="store_true", help="protect NOTIFYs: MIKEY in SUBSCRIBE")
    watch.add_argument("--kms", dest="kms_url", metavar="URL", help="the KMS (with --mikey)")
    watch.add_argument("--kms-key", metavar="HEX", help="our KMS key from `mrf kms enroll`")
    watch.add_argument("--kms-identity", metavar="SIP-URI", help="KMS identity (default --as)")
    watch.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    watch.add_argument("--host", default="127.0.0.1", help="local address (default 127.0.0.1)")
    add_subscribe_arguments(watch)
    watch.set_defaults(handler=run)


def target(conference: str, proxy: tuple[str, int] | None, transport: str) -> SipAddress:
    """Where the SUBSCRIBE goes: the proxy, else the conference URI's host and port."""
    if proxy is not None:
        return SipAddress(transport, *proxy)
    uri = SipUri.parse(conference)
    return SipAddress(transport, uri.host, uri.port or (5061 if transport == "tls" else 5060))


def options_from(args: argparse.Namespace) -> UeSubscriptionOptions:
    return UeSubscriptionOptions(
        conference=args.conference, identity=args.identity,
        target=target(args.conference, args.proxy, args.transport), transport=args.transport,
        expires=args.expires, mikey=args.mikey, kms_url=args.kms_url, kms_key=args.kms_key,
        kms_identity=args.kms_identity, key_dump=args.key_dump, save_notify=args.save_notify,
    )  # fmt: skip


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class UeWatcher:
    """A SIP handler that passes its subscription's NOTIFYs on and refuses the rest."""

    def __init__(self) -> None:
        self.subscription: UeSubscription | None = None

    def handle_request(self, endpoint: SipEndpoint, event: RequestReceived) -> None:
        request = event.request
        if self.subscription is not None and self.subscription.owns(request):
            self.subscription.handle_notify(endpoint, event)
        elif request.method == "OPTIONS":
            endpoint.respond(event.key, make_response(request, 200, "OK"))
        else:
            endpoint.respond(event.key, make_response(request, 481 if request.to_addr.tag else 405))

    def handle_ack(self, endpoint: SipEndpoint, event: AckReceived) -> None:
        return None

    def handle_cancel(self, endpoint: SipEndpoint, event: CancelReceived) -> None:
        return None

    def handle_timeout(self, endpoint: SipEndpoint, event: Any) -> None:
        return None


def run(args: argparse.Namespace, settings: Any) -> int:
    try:
        return asyncio.run(_main(options_from(args), args.host, args.duration))
    except KeyboardInterrupt:
        return 130


async def _main(options: UeSubscriptionOptions, host: str, duration: float | None) -> int:
    watcher = UeWatcher()
    endpoint = SipEndpoint(watcher)
    try:
        await endpoint.listen_udp(host, 0)
        await endpoint.listen_tcp(host, 0)
        subscription = watcher.subscription = UeSubscription(endpoint, options, _emit)
        if not await subscription.subscribe():
            await subscription.close()
            return 1
        await _until_done(subscription, duration)
        await subscription.unsubscribe()
        return 0
    finally:
        await endpoint.close()


async def _until_done(subscription: UeSubscription, duration: float | None) -> None:
    """Until stdin says ``leave`` (or ends, without ``--duration``), the duration, or the end."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line.strip()[:200])
        except (OSError, ValueError):
            pass
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=pump, name="mrf-ue-stdin", daemon=True).start()
    deadline = None if duration is None else loop.time() + duration
    ended = asyncio.ensure_future(subscription.terminated.wait())
    try:
        while not subscription.terminated.is_set():
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            getter = asyncio.ensure_future(lines.get())
            done, _ = await asyncio.wait({getter, ended}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if getter not in done:
                getter.cancel()
                return
            line = getter.result()
            if line == "leave" or (line is None and deadline is None):
                return
    finally:
        ended.cancel()
