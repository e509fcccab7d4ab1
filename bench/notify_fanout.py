"""Fan-out of protected NOTIFYs: 1,000 PSK S/MIME subscribers on one conference.

Measures, in one process on 127.0.0.1 (UDP), the time from a roster change (a
participant joins) to the last NOTIFY sent by the notifier and to the last one
received by the subscribers, then reports the per-subscriber cost as a ratio to
raw AES-128-GCM + AES key wrap of the same document measured in the same run.

    .venv/bin/python bench/notify_fanout.py [--subscribers 1000]

Not part of the pass/fail suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from focus.endpoint import SipEndpoint  # noqa: E402
from focus.events import ParticipantJoined  # noqa: E402
from focus.service import FocusConfig, FocusService  # noqa: E402
from focus.sip.dialog import dialog_from_uac  # noqa: E402
from focus.sip.message import SipHeaders, SipRequest, make_response  # noqa: E402
from focus.sip.transaction import SipAddress  # noqa: E402
from focus.store import ConferenceStore  # noqa: E402
from mrf.rtp.plane import MediaPlane  # noqa: E402
from notify.conference_info import render_partial  # noqa: E402
from notify.service import NotifyConfig, NotifyService  # noqa: E402
from notify.smime import prepare_mime_entity  # noqa: E402
from notify.subscription import SubscriptionConfig  # noqa: E402

HOST = "127.0.0.1"


class Sink:
    """All subscribers in one endpoint: answer every NOTIFY 200, note arrival times."""

    def __init__(self) -> None:
        self.received: list[float] = []

    def handle_request(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        self.received.append(time.perf_counter())
        endpoint.respond(event.key, make_response(event.request, 200))

    def handle_ack(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_cancel(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_timeout(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass


def subscribe_request(index: int, port: int, local_port: int) -> SipRequest:
    h = SipHeaders()
    h.add("Max-Forwards", "70")
    h.add("From", f"<sip:user{index}@example.com>;tag={secrets.token_hex(4)}")
    h.add("To", f"<sip:bench@{HOST}>")
    h.add("Call-ID", secrets.token_hex(8))
    h.add("CSeq", "1 SUBSCRIBE")
    h.add("Contact", f"<sip:user{index}@{HOST}:{local_port}>")
    h.add("Event", "conference")
    h.add("Expires", "3600")
    return SipRequest("SUBSCRIBE", f"sip:bench@{HOST}:{port}", h)


async def dial_in(client: SipEndpoint, server: SipAddress, local_port: int, user: str) -> None:
    """INVITE with an SDES offer and ACK: a participant joins the conference."""
    key = base64.b64encode(os.urandom(30)).decode()
    sdp = (
        "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 40002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
    ).encode()
    h = SipHeaders()
    for name, value in (
        ("Max-Forwards", "70"), ("From", f"<{user}>;tag={secrets.token_hex(4)}"),
        ("To", f"<sip:bench@{HOST}>"), ("Call-ID", secrets.token_hex(8)), ("CSeq", "1 INVITE"),
        ("Contact", f"<sip:joiner@{HOST}:{local_port}>"), ("Content-Type", "application/sdp"),
    ):  # fmt: skip
        h.add(name, value)
    request = SipRequest("INVITE", f"sip:bench@{HOST}:{server.port}", h, sdp)
    response = await client.request(request, server)
    assert response.status == 200, response.status
    dialog = dialog_from_uac(request, response, transport="udp")
    client.send_ack(dialog.create_ack(response), server)


def raw_cost(document: bytes, rounds: int) -> float:
    """Seconds per message of AES-128-GCM over the entity + wrapping a fresh CEK."""
    kek, entity = os.urandom(16), prepare_mime_entity(document, "application/conference-info+xml")
    start = time.perf_counter()
    for _ in range(rounds):
        cek = os.urandom(16)
        AESGCM(cek).encrypt(os.urandom(12), entity, None)
        aes_key_wrap(kek, cek)
    return (time.perf_counter() - start) / rounds


async def main(count: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    store = ConferenceStore(f"sqlite:///{workdir / 'mrf.db'}")
    store.create_all()
    users = [f"sip:user{i}@example.com" for i in range(count)]
    store.create_conference("bench", [(u, "participant") for u in users])
    store.update_policy("bench", notify_protection="required")
    media = MediaPlane(HOST, (45000, 45099))
    focus = FocusService(store, media, FocusConfig(domain=HOST))
    server = SipEndpoint(focus)
    focus.attach(server)
    limits = SubscriptionConfig(min_notify_interval=0.0, max_subscriptions_per_conference=count)
    notify = NotifyService(focus, NotifyConfig(subscription=limits))
    notify.start()
    for index, user in enumerate(users):
        notify.keys.set("bench", user, os.urandom(16), index.to_bytes(4, "big"))  # type: ignore[attr-defined]
    sink = Sink()
    client = SipEndpoint(sink)
    address = await server.listen_udp(HOST, 0)
    local = await client.listen_udp(HOST, 0)
    try:
        for start in range(0, count, 100):
            batch = [
                subscribe_request(i, address.port, local.port)
                for i in range(start, min(count, start + 100))
            ]
            answers = await asyncio.gather(*(client.request(r, address) for r in batch))
            assert all(a.status == 200 for a in answers), {a.status for a in answers}
        async with asyncio.timeout(60):
            while len(sink.received) < count:
                await asyncio.sleep(0.01)
        print(f"{count} subscriptions active", file=sys.stderr)
        await asyncio.sleep(0.5)
        sink.received.clear()
        before = notify.snapshot("bench")
        sent_before = server.stats["sent"]
        last_sent = 0.0
        transmit = server._transmit  # noqa: SLF001 - timestamp the last NOTIFY put on the wire

        def timed(message, dest):  # type: ignore[no-untyped-def]
            nonlocal last_sent
            transmit(message, dest)
            if isinstance(message, SipRequest) and message.method == "NOTIFY":
                last_sent = time.perf_counter()

        server._transmit = timed  # type: ignore[method-assign]  # noqa: SLF001
        changed = 0.0

        def joined(event: object) -> None:
            nonlocal changed
            if isinstance(event, ParticipantJoined):
                changed = time.perf_counter()

        focus.subscribe(joined)
        await dial_in(client, address, local.port, users[0])  # the roster change
        async with asyncio.timeout(60):
            while len(sink.received) < count:
                await asyncio.sleep(0.001)
        to_sent, to_received = last_sent - changed, max(sink.received) - changed
        after = notify.snapshot("bench")
        assert before is not None and after is not None
        document = render_partial(before, after, 2) or b""
        raw = raw_cost(document, 2000)
        per_subscriber = to_sent / count
        print(f"subscribers={count} sip_messages_sent={server.stats['sent'] - sent_before}")
        print(f"roster change -> last NOTIFY sent:     {to_sent * 1000:.1f} ms")
        print(f"roster change -> last NOTIFY received: {to_received * 1000:.1f} ms")
        print(
            f"per subscriber: {per_subscriber * 1e6:.1f} us; raw AES-GCM + key wrap: "
            f"{raw * 1e6:.2f} us; ratio {per_subscriber / raw:.1f}x"
        )
    finally:
        await notify.close(timeout=2.0)
        await client.close()
        await server.close()
        media.close()
        await media.wait_closed()
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    asyncio.run(main(parser.parse_args().subscribers))
