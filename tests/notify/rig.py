"""In-process rig for the notifier: the real focus + NotifyService on a SipEndpoint,
a client SipEndpoint that subscribes, answers NOTIFYs and dials in; plus the
independent checkers (openssl cms, xmllint, the RFC 4575 schema via lxml)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from focus.endpoint import SipEndpoint
from focus.service import FocusConfig, FocusService
from focus.sip.dialog import SipDialog, dialog_from_uac
from focus.sip.message import SipHeaders, SipRequest, SipResponse, make_response
from focus.sip.transaction import SipAddress
from focus.store import ConferenceStore
from mrf.rtp.plane import MediaPlane
from notify.service import NotifyConfig, NotifyService
from notify.subscription import SubscriptionConfig

HOST = "127.0.0.1"
# RFC 4575 §5, vendored with its xml.xsd stand-in (tests/vectors/conference_info/SOURCES.md)
XSD = Path(__file__).resolve().parents[1] / "vectors" / "conference_info" / "conference-info.xsd"
ALICE, BOB, CAROL, MALLORY = (f"sip:{n}@example.com" for n in ("alice", "bob", "carol", "mallory"))

_schema: etree.XMLSchema | None = None


def schema() -> etree.XMLSchema:
    """The RFC 4575 §5 schema, read in place (it imports xml.xsd beside it)."""
    global _schema
    if _schema is None:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        _schema = etree.XMLSchema(etree.parse(str(XSD), parser))
    return _schema


def assert_valid(document: bytes) -> etree._Element:
    root = etree.fromstring(document)
    checker = schema()
    assert checker.validate(root), f"{checker.error_log}\n{document.decode()}"
    return root


def xmllint_validates(path: Path) -> subprocess.CompletedProcess[str]:
    xmllint = shutil.which("xmllint")
    assert xmllint, "xmllint missing: apt-get install libxml2-utils"
    argv = [xmllint, "--noout", "--nonet", "--schema", str(XSD), str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def openssl_decrypt(der: bytes, kek: bytes, key_id: bytes, workdir: Path) -> bytes:
    """``openssl cms -decrypt -inform DER -secretkey -secretkeyid``: the plaintext."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing: apt-get install openssl"
    source = workdir / f"notify-{secrets.token_hex(4)}.der"
    source.write_bytes(der)
    argv = [openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(source)]
    argv += ["-secretkey", kek.hex(), "-secretkeyid", key_id.hex()]
    result = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


class Subscriber:
    """The client side: answers every NOTIFY 200 and records it."""

    def __init__(self) -> None:
        self.notifies: list[SipRequest] = []
        self.requests: list[SipRequest] = []

    def handle_request(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        if event.request.method == "NOTIFY":
            self.notifies.append(event.request)
        else:
            self.requests.append(event.request)
        endpoint.respond(event.key, make_response(event.request, 200))

    def handle_ack(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_cancel(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_timeout(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def for_call(self, call_id: str) -> list[SipRequest]:
        return [n for n in self.notifies if n.call_id == call_id]


@dataclass
class Rig:
    store: ConferenceStore
    focus: FocusService
    notify: NotifyService
    server: SipEndpoint
    client: SipEndpoint
    subscriber: Subscriber
    address: SipAddress
    dialogs: dict[str, SipDialog] = field(default_factory=dict)

    def subscribe_request(
        self,
        conference: str,
        *,
        from_uri: str = ALICE,
        expires: int | None = 600,
        event: str = "conference",
        headers: tuple[tuple[str, str], ...] = (),
        dialog: SipDialog | None = None,
    ) -> SipRequest:
        if dialog is not None:
            request = dialog.create_request("SUBSCRIBE", headers=[("Event", event)])
        else:
            local = self.client.local_address("udp")
            h = SipHeaders()
            h.add("Max-Forwards", "70")
            h.add("From", f"<{from_uri}>;tag={secrets.token_hex(4)}")
            h.add("To", f"<sip:{conference}@{HOST}>")
            h.add("Call-ID", secrets.token_hex(8))
            h.add("CSeq", "1 SUBSCRIBE")
            h.add("Contact", f"<sip:watcher@{local.host}:{local.port}>")
            h.add("Event", event)
            request = SipRequest("SUBSCRIBE", f"sip:{conference}@{HOST}:{self.address.port}", h)
        if expires is not None:
            request.headers.add("Expires", str(expires))
        for name, value in headers:
            request.headers.add(name, value)
        return request

    async def subscribe(self, conference: str, **kwargs: object) -> SipResponse:
        request = self.subscribe_request(conference, **kwargs)  # type: ignore[arg-type]
        response = await self.client.request(request, self.address)
        if 200 <= response.status < 300 and kwargs.get("dialog") is None:
            self.dialogs[request.call_id] = dialog_from_uac(request, response, transport="udp")
        return response

    async def dial_in(self, conference: str, from_uri: str) -> tuple[SipDialog, SipResponse]:
        """INVITE with an SDES offer, ACK the 200: a participant joins."""
        local = self.client.local_address("udp")
        key = base64.b64encode(secrets.token_bytes(30)).decode()
        sdp = (
            "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 40002 RTP/SAVP 0\r\na=sendrecv\r\n"
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
        ).encode()
        h = SipHeaders()
        h.add("Max-Forwards", "70")
        h.add("From", f"<{from_uri}>;tag={secrets.token_hex(4)}")
        h.add("To", f"<sip:{conference}@{HOST}>")
        h.add("Call-ID", secrets.token_hex(8))
        h.add("CSeq", "1 INVITE")
        h.add("Contact", f"<sip:{secrets.token_hex(3)}@{local.host}:{local.port}>")
        h.add("Content-Type", "application/sdp")
        request = SipRequest("INVITE", f"sip:{conference}@{HOST}:{self.address.port}", h, sdp)
        response = await self.client.request(request, self.address)
        assert response.status == 200, response
        dialog = dialog_from_uac(request, response, transport="udp")
        self.client.send_ack(dialog.create_ack(response), self.address)
        return dialog, response

    async def hang_up(self, dialog: SipDialog) -> None:
        response = await self.client.request(dialog.create_request("BYE"), self.address)
        assert response.status == 200


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    min_notify_interval: float = 0.0,
    protection: str = "optional",
    subscription: SubscriptionConfig | None = None,
) -> AsyncIterator[Rig]:
    store = ConferenceStore(f"sqlite:///{tmp_path / 'mrf.db'}")
    store.create_all()
    store.create_conference(
        "retro", [(ALICE, "participant"), (BOB, "participant"), (CAROL, "chair")]
    )
    store.update_policy("retro", notify_protection=protection)
    media = MediaPlane(HOST, (44000, 44199))
    focus = FocusService(store, media, FocusConfig(domain=HOST))
    server = SipEndpoint(focus)
    focus.attach(server)
    config = subscription or SubscriptionConfig(min_notify_interval=min_notify_interval)
    notify = NotifyService(focus, NotifyConfig(subscription=config, notify_timeout=5.0))
    notify.start()
    subscriber = Subscriber()
    client = SipEndpoint(subscriber)
    address = await server.listen_udp(HOST, 0)
    await client.listen_udp(HOST, 0)
    try:
        async with asyncio.timeout(60):
            yield Rig(store, focus, notify, server, client, subscriber, address)
    finally:
        await notify.close(timeout=2.0)
        await focus.shutdown(server)
        await client.close()
        await server.close()
        media.close()
        await media.wait_closed()
        store.close()


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
