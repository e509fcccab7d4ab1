"""The focus end to end in one process: a client SipEndpoint dials in to the real
FocusService over UDP/TCP on 127.0.0.1, and real SRTP flows both ways."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pylibsrtp
import pytest

from focus.endpoint import SipEndpoint
from focus.service import LOCKED_WARNING, FocusConfig, FocusService
from focus.sip.dialog import SipDialog, dialog_from_uac
from focus.sip.message import SipHeaders, SipRequest, SipResponse
from focus.sip.transaction import SipAddress
from focus.store import ConferenceStore
from mrf.rtp.packet import RtpPacket
from mrf.rtp.plane import MediaPlane

HOST = "127.0.0.1"
PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80


class ClientHandler:
    """The participant side: answers the focus's BYE, records requests."""

    def __init__(self) -> None:
        self.requests: list[SipRequest] = []

    def handle_request(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        from focus.sip.message import make_response

        self.requests.append(event.request)
        endpoint.respond(event.key, make_response(event.request, 200))

    def handle_ack(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_cancel(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass

    def handle_timeout(self, endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
        pass


@dataclass
class Rig:
    focus: FocusService
    server: SipEndpoint
    client: SipEndpoint
    handler: ClientHandler
    media: MediaPlane
    addresses: dict[str, SipAddress] = field(default_factory=dict)


@asynccontextmanager
async def rig(
    tmp_path: Path, rtp_ports: tuple[int, int] = (43000, 43099), **config: object
) -> AsyncIterator[Rig]:
    store = ConferenceStore(f"sqlite:///{tmp_path / 'mrf.db'}")
    store.create_all()
    store.create_conference(
        "retro", [("sip:alice@example.com", "participant"), ("sip:carol@example.com", "chair")]
    )
    store.create_conference("open", [], allow_anonymous=True)
    store.create_conference("plain", [("sip:alice@example.com", "participant")])
    store.update_policy("plain", require_media_security=False)
    media = MediaPlane(HOST, rtp_ports)
    focus = FocusService(store, media, FocusConfig(domain=HOST, **config))  # type: ignore[arg-type]
    server = SipEndpoint(focus)
    handler = ClientHandler()
    client = SipEndpoint(handler)
    addresses = {
        "udp": await server.listen_udp(HOST, 0),
        "tcp": await server.listen_tcp(HOST, 0),
    }
    await client.listen_udp(HOST, 0)
    await client.listen_tcp(HOST, 0)
    try:
        async with asyncio.timeout(30):
            yield Rig(focus, server, client, handler, media, addresses)
    finally:
        await focus.shutdown(server)
        await client.close()
        await server.close()
        media.close()
        await media.wait_closed()
        store.close()


def offer_sdp(
    port: int,
    key: bytes,
    *,
    proto: str = "RTP/SAVP",
    direction: str = "sendrecv",
    extra_media: str = "",
) -> bytes:
    crypto = f"a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}\r\n"
    lines = (
        "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} {proto} 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n" + (crypto if proto == "RTP/SAVP" else "") + extra_media
    )
    return lines.encode()


def invite(
    rig: Rig,
    transport: str,
    conference: str,
    body: bytes,
    *,
    from_uri: str = "sip:alice@example.com",
    headers: tuple[tuple[str, str], ...] = (),
) -> SipRequest:
    dest = rig.addresses[transport]
    local = rig.client.local_address(transport)
    h = SipHeaders()
    h.add("Via", rig.client.make_via(transport))
    h.add("Max-Forwards", "70")
    h.add("From", f"<{from_uri}>;tag={secrets.token_hex(4)}")
    h.add("To", f"<sip:{conference}@{HOST}>")
    h.add("Call-ID", secrets.token_hex(8))
    h.add("CSeq", "1 INVITE")
    suffix = "" if transport == "udp" else f";transport={transport}"
    h.add("Contact", f"<sip:alice@{local.host}:{local.port}{suffix}>")
    for name, value in headers:
        h.add(name, value)
    if body:
        h.add("Content-Type", "application/sdp")
    uri = f"sip:{conference}@{dest.host}:{dest.port}{suffix}"
    return SipRequest("INVITE", uri, h, body)


async def call(rig: Rig, request: SipRequest, transport: str = "udp") -> SipResponse:
    return await rig.client.request(request, rig.addresses[transport])


def answer_key_and_port(response: SipResponse) -> tuple[bytes, int, str]:
    body = response.body.decode()
    match = re.search(r"a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", body)
    port = re.search(r"m=audio (\d+) ", body)
    assert match and port, body
    assert match.group(1) == "7"  # the offer's tag is echoed (RFC 4568 §5.1.2)
    return base64.b64decode(match.group(3)), int(port.group(1)), match.group(2)


def ack(rig: Rig, request: SipRequest, response: SipResponse, transport: str) -> SipDialog:
    dialog = dialog_from_uac(request, response, transport=transport)
    rig.client.send_ack(dialog.create_ack(response), rig.addresses[transport])
    return dialog


class Media(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)


async def media_socket() -> tuple[asyncio.DatagramTransport, Media, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Media, local_addr=(HOST, 0))
    return transport, protocol, transport.get_extra_info("sockname")[1]


def srtp_session(key: bytes, outbound: bool) -> pylibsrtp.Session:
    ssrc = pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc, srtp_profile=PROFILE))


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def run(coro_factory: Callable[[], object]) -> None:
    asyncio.run(coro_factory())  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dial_in_with_sdes_srtp_both_ways(tmp_path: Path, transport: str) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            sock, peer, port = await media_socket()
            our_key = secrets.token_bytes(30)
            request = invite(r, transport, "retro", offer_sdp(port, our_key))
            response = await call(r, request, transport)
            assert response.status == 200
            assert "isfocus" in (response.headers.get("Contact") or "")
            focus_key, focus_port, suite = answer_key_and_port(response)
            assert suite == "AES_CM_128_HMAC_SHA1_80"
            assert focus_key != our_key and len(focus_key) == 30
            dialog = ack(r, request, response, transport)
            # we send SRTP with our key; the focus unprotects it with that key only
            tx = srtp_session(our_key, outbound=True)
            for seq in range(20):
                sock.sendto(
                    tx.protect(bytes(RtpPacket(0, seq, seq * 160, 0xABC, b"\xff" * 160))),
                    (HOST, focus_port),
                )
            (focus_call,) = r.focus.calls
            (stream,) = focus_call.streams.values()
            await until(lambda: stream.packets_in == 20)
            assert stream.auth_failures == 0
            # the focus's comfort silence decrypts with the answer's key
            await until(lambda: len(peer.received) >= 3)
            rx = srtp_session(focus_key, outbound=False)
            packet = RtpPacket.parse(rx.unprotect(peer.received[0]))
            assert packet.payload_type == 0 and packet.payload == b"\xff" * 160
            entry = r.focus.roster("retro")[0]
            assert entry["uri"] == "sip:alice@example.com" and entry["state"] == "connected"
            bye = dialog.create_request("BYE")
            assert (await r.client.request(bye, r.addresses[transport])).status == 200
            assert r.focus.calls == [] and focus_call.streams == {}
            sock.close()

    run(main)


def test_two_participants_get_different_keys_and_ports(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            key = secrets.token_bytes(30)
            first = await call(r, invite(r, "udp", "retro", offer_sdp(20000, key)))
            second = await call(
                r,
                invite(r, "udp", "retro", offer_sdp(20002, key), from_uri="sip:carol@example.com"),
            )
            k1, p1, _ = answer_key_and_port(first)
            k2, p2, _ = answer_key_and_port(second)
            assert (first.status, second.status) == (200, 200)
            assert k1 != k2 and p1 != p2
            roles = sorted(e["role"] for e in r.focus.roster("retro"))
            assert roles == ["chair", "participant"]

    run(main)


@pytest.mark.parametrize(
    ("conference", "from_uri", "headers", "proto", "status", "warning"),
    [
        (
            "nosuch",
            "sip:alice@example.com",
            (),
            "RTP/SAVP",
            404,
            "399 127.0.0.1 \"no conference named 'nosuch'\"",
        ),
        (
            "retro",
            "sip:mallory@example.com",
            (),
            "RTP/SAVP",
            403,
            '399 127.0.0.1 "the identity in From is not on the authorized list"',
        ),
        (
            "retro",
            "sip:alice@example.com",
            (("Privacy", "id"),),
            "RTP/SAVP",
            403,
            '399 127.0.0.1 "anonymous callers are not admitted to this conference"',
        ),
        (
            "retro",
            "sip:anonymous@anonymous.invalid",
            (),
            "RTP/SAVP",
            403,
            '399 127.0.0.1 "anonymous callers are not admitted to this conference"',
        ),
        (
            "retro",
            "sip:alice@example.com",
            (),
            "RTP/AVP",
            488,
            '399 127.0.0.1 "no acceptable stream (m-line 0: no acceptable keying for RTP/AVP: '
            'no a=crypto)"',
        ),
        ("retro", "sip:alice@example.com", (("Require", "100rel"),), "RTP/SAVP", 420, None),
        ("open", "sip:anonymous@anonymous.invalid", (), "RTP/SAVP", 200, None),
        ("plain", "sip:alice@example.com", (), "RTP/AVP", 200, None),
    ],  # fmt: skip
)
def test_refusals(
    tmp_path: Path,
    conference: str,
    from_uri: str,
    headers: tuple[tuple[str, str], ...],
    proto: str,
    status: int,
    warning: str | None,
) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            body = offer_sdp(20000, secrets.token_bytes(30), proto=proto)
            request = invite(r, "udp", conference, body, from_uri=from_uri, headers=headers)
            response = await call(r, request)
            assert response.status == status, response
            assert response.headers.get_all("Warning") == ([warning] if warning else [])
            if status != 200:
                assert r.focus.calls == [] and len(r.media) == 0
                assert response.to_addr.tag
            if status == 420:
                assert response.headers.get("Unsupported") == "100rel"

    run(main)


class _Lookups:
    """The store, recording every name the focus asks it for."""

    def __init__(self, store: object) -> None:
        self.store, self.names = store, []  # type: ignore[var-annotated]

    def get_conference(self, name: str) -> object:
        self.names.append(name)
        return self.store.get_conference(name)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("user", "looked_up", "status"),
    [
        ("RETRO", ["retro"], 200),  # names are lower-case: ASCII letters fold
        ("re%FFtro", [], 404),  # an escaped octet that is not UTF-8
        ("re%00tro", [], 404),  # NUL: PostgreSQL cannot hold it
        ("%E2%84%AAretro", [], 404),  # KELVIN SIGN would fold to "k": not ASCII, no lookup
        ("r" * 65, [], 404),  # longer than a name can be
    ],
)
def test_only_valid_names_reach_the_store(
    tmp_path: Path, user: str, looked_up: list[str], status: int
) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            lookups = _Lookups(r.focus.directory.store)
            r.focus.directory.store = lookups  # type: ignore[assignment]
            request = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            request.uri = request.uri.replace("sip:retro@", f"sip:{user}@")
            response = await call(r, request)
            assert response.status == status, response
            assert lookups.names == looked_up
            if status == 404:
                assert "cannot be a conference name" in (response.headers.get("Warning") or "")

    run(main)


def test_unauthorized_caller_gets_no_key_and_no_port(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            body = offer_sdp(20000, secrets.token_bytes(30))
            response = await call(
                r, invite(r, "udp", "retro", body, from_uri="sip:eve@example.com")
            )
            assert response.status == 403 and response.body == b""
            assert len(r.media) == 0

    run(main)


def test_offer_less_and_wrong_content_type(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            assert (await call(r, invite(r, "udp", "retro", b""))).status == 488
            request = invite(r, "udp", "retro", b"hello")
            request.headers.set("Content-Type", "text/plain")
            response = await call(r, request)
            assert response.status == 415 and response.headers.get("Accept") == "application/sdp"
            garbage = invite(r, "udp", "retro", b"v=0\r\nthis is not sdp\r\n")
            assert (await call(r, garbage)).status == 400

    run(main)


def test_video_and_msrp_streams_rejected_with_port_zero(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            extra = (
                "m=video 30000 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n"
                "m=message 2855 TCP/MSRP *\r\na=path:msrp://127.0.0.1:2855/x;tcp\r\n"
            )
            body = offer_sdp(20000, secrets.token_bytes(30), extra_media=extra)
            response = await call(r, invite(r, "udp", "retro", body))
            assert response.status == 200
            text = response.body.decode()
            assert "m=video 0 RTP/SAVP 96" in text and "m=message 0 TCP/MSRP *" in text

    run(main)


def test_reinvite_hold_and_rekey(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            sock, _peer, port = await media_socket()
            key1 = secrets.token_bytes(30)
            request = invite(r, "udp", "retro", offer_sdp(port, key1))
            response = await call(r, request)
            focus_key1, focus_port, _ = answer_key_and_port(response)
            dialog = ack(r, request, response, "udp")
            (focus_call,) = r.focus.calls
            stream = focus_call.streams[0]
            # re-INVITE: hold, with a new key of ours
            key2 = secrets.token_bytes(30)
            hold = dialog.create_request("INVITE", body=offer_sdp(port, key2, direction="sendonly"))
            reply = await r.client.request(hold, r.addresses["udp"])
            assert reply.status == 200 and "a=recvonly" in reply.body.decode()
            focus_key2, port2, _ = answer_key_and_port(reply)
            assert focus_key2 != focus_key1 and port2 == focus_port
            assert focus_call.state == "on-hold"
            rekeyed = dialog.create_ack(reply)
            r.client.send_ack(rekeyed, r.addresses["udp"])
            # the old key no longer works, the new one does
            old = srtp_session(key1, outbound=True)
            new = srtp_session(key2, outbound=True)
            sock.sendto(old.protect(bytes(RtpPacket(0, 1, 160, 0x1, b"\x00" * 160))), (HOST, port2))
            await until(lambda: stream.auth_failures == 1)
            sock.sendto(new.protect(bytes(RtpPacket(0, 2, 320, 0x1, b"\x00" * 160))), (HOST, port2))
            await until(lambda: stream.packets_in == 1)
            # resume
            resume = dialog.create_request("INVITE", body=offer_sdp(port, key2))
            reply = await r.client.request(resume, r.addresses["udp"])
            assert reply.status == 200 and "a=sendrecv" in reply.body.decode()
            assert focus_call.state == "connected"
            sock.close()

    run(main)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_in_dialog_requests_only_over_the_dialogs_flow(tmp_path: Path, transport: str) -> None:
    """Another socket (UDP) or connection (TCP) naming the dialog gets 403 and changes
    nothing (not the CSeq, not the keys); the participant's own flow still works."""

    async def main() -> None:
        async with rig(tmp_path) as r:
            request = invite(r, transport, "retro", offer_sdp(40000, secrets.token_bytes(30)))
            response = await call(r, request, transport)
            dialog = ack(r, request, response, transport)
            (focus_call,) = r.focus.calls
            keys = focus_call.plan.streams[0].crypto if focus_call.plan else None
            other = SipEndpoint(ClientHandler())
            await other.listen_udp(HOST, 0)
            try:
                for method, body in (
                    ("BYE", b""),
                    ("UPDATE", b""),
                    ("INVITE", offer_sdp(40002, secrets.token_bytes(30))),
                ):
                    hijack = dialog.create_request(method, body=body)
                    hijack.headers.set("CSeq", f"1000 {method}")
                    refused = await other.request(hijack, r.addresses[transport])
                    assert refused.status == 403, (method, refused.status)
                    assert "flow" in (refused.headers.get("Warning") or "")
            finally:
                await other.close()
            assert r.focus.calls == [focus_call] and focus_call.plan is not None
            assert focus_call.plan.streams[0].crypto is keys  # no re-key
            update = dialog.create_request("UPDATE")  # CSeq 2: 1000 was not absorbed
            assert (await r.client.request(update, r.addresses[transport])).status == 405
            bye = dialog.create_request("BYE")
            assert (await r.client.request(bye, r.addresses[transport])).status == 200
            assert r.focus.calls == []

    run(main)


def test_in_dialog_request_for_unknown_dialog_is_481(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            request = invite(r, "udp", "retro", b"")
            bye = SipRequest("BYE", request.uri, request.headers.copy())
            bye.headers.set("CSeq", "2 BYE")
            bye.headers.set("To", f"<sip:retro@{HOST}>;tag=nosuch")
            bye.headers.remove("Via")
            assert (await call(r, bye)).status == 481

    run(main)


def test_options_and_unknown_method(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            request = invite(r, "udp", "retro", b"")
            options = SipRequest("OPTIONS", request.uri, request.headers.copy())
            options.headers.set("CSeq", "1 OPTIONS")
            options.headers.remove("Via")
            response = await call(r, options)
            assert response.status == 200 and "INVITE" in (response.headers.get("Allow") or "")
            message = SipRequest("MESSAGE", request.uri, request.headers.copy())
            message.headers.set("CSeq", "1 MESSAGE")
            message.headers.remove("Via")
            assert (await call(r, message)).status == 405

    run(main)


def test_shutdown_sends_bye_to_everyone(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            request = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            response = await call(r, request)
            ack(r, request, response, "udp")
            await r.focus.shutdown(r.server)
            assert [q.method for q in r.handler.requests] == ["BYE"]
            assert r.focus.calls == [] and len(r.media) == 0

    run(main)


def test_media_plane_full_gives_503_and_the_focus_keeps_serving(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, rtp_ports=(43200, 43201)) as r:  # one port pair only
            first = await call(
                r, invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            )
            second = await call(
                r,
                invite(
                    r,
                    "udp",
                    "retro",
                    offer_sdp(20002, secrets.token_bytes(30)),
                    from_uri="sip:carol@example.com",
                ),
            )
            assert (first.status, second.status) == (200, 503)
            assert second.headers.get("Retry-After")
            assert len(r.focus.calls) == 1 and len(r.media) == 1
            assert r.server.stats["handler_errors"] == 0

    run(main)


class SlowMedia:
    """Holds port allocation until released, so a CANCEL can overtake the answer."""

    def __init__(self, media: MediaPlane) -> None:
        self.media = media
        self.host = media.host
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def allocate(self, label: str) -> object:
        self.waiting.set()
        await self.gate.wait()
        return await self.media.allocate(label)

    def release(self, stream: object) -> None:
        self.media.release(stream)  # type: ignore[arg-type]


def test_cancel_before_the_answer_gets_487_and_frees_the_media(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            slow = SlowMedia(r.media)
            r.focus.media = slow
            request = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            pending = asyncio.ensure_future(call(r, request))
            await slow.waiting.wait()
            r.client.cancel(request)
            await until(lambda: any(c.cancelled for c in r.focus._pending.values()))
            slow.gate.set()
            response = await pending
            assert response.status == 487
            assert r.focus.calls == [] and len(r.media) == 0

    run(main)


def test_events_and_live_policy_removal(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.focus.attach(r.server)
            events: list[object] = []
            unsubscribe = r.focus.subscribe(events.append)
            request = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            response = await call(r, request)
            ack(r, request, response, "udp")
            await until(lambda: len(events) == 1)  # joined on the ACK, not on the 200
            (joined,) = events
            assert type(joined).__name__ == "ParticipantJoined"
            assert (joined.conference, joined.participant) == ("retro", "sip:alice@example.com")
            assert r.focus.set_muted(joined.call_id, True)
            assert r.focus.roster("retro")[0]["muted"] is True
            # alice is removed from the authorized list: BYE, keys dropped
            store = r.focus.directory.store
            store.set_participants("retro", [("sip:carol@example.com", "chair")])
            assert await r.focus.apply_policy("retro") == ["sip:alice@example.com"]
            assert [q.method for q in r.handler.requests] == ["BYE"]
            assert r.focus.calls == [] and len(r.media) == 0
            kinds = [type(e).__name__ for e in events]
            assert kinds == ["ParticipantJoined", "ParticipantUpdated", "ParticipantLeft"]
            assert events[-1].reason == "removed from the authorized list"
            unsubscribe()
            # the change is seen at once by the next INVITE (the cache was invalidated)
            again = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            assert (await call(r, again)).status == 403
            assert len(events) == 3

    run(main)


def test_a_failing_listener_does_not_break_call_handling(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.focus.subscribe(lambda event: 1 / 0)
            request = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            assert (await call(r, request)).status == 200

    run(main)


def test_registered_method_handlers_get_their_requests(tmp_path: Path) -> None:
    from focus.sip.message import make_response

    async def main() -> None:
        async with rig(tmp_path) as r:
            seen: list[str] = []

            def subscribe(endpoint: SipEndpoint, event) -> None:  # type: ignore[no-untyped-def]
                seen.append(event.request.method)
                endpoint.respond(event.key, make_response(event.request, 489, "Bad Event"))

            r.focus.register_method("SUBSCRIBE", subscribe)
            request = invite(r, "udp", "retro", b"")
            sub = SipRequest("SUBSCRIBE", request.uri, request.headers.copy())
            sub.headers.set("CSeq", "1 SUBSCRIBE")
            sub.headers.set("Event", "presence")
            sub.headers.remove("Via")
            assert (await call(r, sub)).status == 489 and seen == ["SUBSCRIBE"]
            options = SipRequest("OPTIONS", request.uri, request.headers.copy())
            options.headers.set("CSeq", "2 OPTIONS")
            options.headers.remove("Via")
            allow = (await call(r, options)).headers.get_all("Allow")
            assert "SUBSCRIBE" in allow

    run(main)


def test_a_locked_conference_admits_no_new_joins_and_keeps_whoever_is_in(tmp_path: Path) -> None:
    """Policy ``locked``: 403 with a Warning saying so; refusals are kept, newest first."""

    async def main() -> None:
        async with rig(tmp_path) as r:
            alice = invite(r, "udp", "retro", offer_sdp(20000, secrets.token_bytes(30)))
            assert (await call(r, alice)).status == 200
            store = r.focus.directory.store  # type: ignore[attr-defined]
            store.update_policy("retro", locked=True)
            assert await r.focus.apply_policy("retro") == [], "the lock disconnects no one"
            carol = invite(r, "udp", "retro", offer_sdp(20002, secrets.token_bytes(30)),
                           from_uri="sip:carol@example.com")  # fmt: skip
            refused = await call(r, carol)
            assert refused.status == 403
            assert refused.headers.get_all("Warning") == [f'399 127.0.0.1 "{LOCKED_WARNING}"']
            assert LOCKED_WARNING == "the conference is locked: no new participants are admitted"
            assert [e["uri"] for e in r.focus.roster("retro")] == ["sip:alice@example.com"]
            mallory = invite(r, "udp", "retro", offer_sdp(20004, secrets.token_bytes(30)),
                             from_uri="sip:mallory@example.com")  # fmt: skip
            assert (await call(r, mallory)).status == 403
            kept = r.focus.refusals("retro")
            assert [(k["uri"], k["reason"]) for k in kept] == [
                ("sip:mallory@example.com", "the identity in From is not on the authorized list"),
                ("sip:carol@example.com", LOCKED_WARNING),
            ]  # fmt: skip
            assert all(str(k["at"]).endswith("+00:00") for k in kept)
            assert r.focus.refusals("open") == []

    run(main)
