"""MIKEY-TICKET refusals through the real responder and KMS (RFC 6043, TS 33.328 Annex H).

alice, enrolled at the embedded KMS, gets a ticket and builds a TRANSFER_INIT
with ``mrf ue``'s initiator (:class:`mrf.ue.mikey.UeMikey`); the tests then
put it into INVITEs sent over SIP/UDP.  A TRANSFER_INIT the focus already
accepted (replay, RFC 3830 §5.4) and one whose MAC was altered must get
``488`` with the MIKEY error in a Warning and no key of ours; a replayed
REQUEST_INIT must get a MIKEY Error message from the KMS.  A fresh exchange
still works afterwards.  The TLS-PSK the exchange keys (MSRP and BFCP over
TLS-PSK) refuses ``openssl s_client`` with another key.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import urllib.request
from contextlib import closing
from typing import Any

import pytest

from focus.mikey.constants import MikeyDataType, MikeyErrorCode
from focus.mikey.initiator import MikeyTicketRequest
from focus.mikey.message import MikeyMessage
from focus.mikey.payload import MikeyErr
from focus.sdp.attributes import SdpKeyMgmt
from mrf.ue.client import UeClient, UeOptions
from mrf.ue.mikey import UeMikey
from tests.security.rig import ALICE, SecurityServer
from tests.security.sip_probe import MediaWatch, SipExchange, SipProbe, mikey_offer
from tests.security.table import RefusalLog
from tests.security.tls_probe import alerts_of, s_client, server_finished

RESOLVED = "KMS: resolved a ticket"


def _transfer_init(server: SecurityServer) -> str:
    """A fresh ``a=key-mgmt`` value: ticket from the KMS, TRANSFER_INIT for the room."""
    ue = UeMikey.for_conference(server.kms_url, server.alice_kms_key, ALICE, server.room_uri)
    return asyncio.run(ue.offer_attribute(audio_ssrc=secrets.randbits(32), msrp=False,
                                          now=time.time()))  # fmt: skip


def _invite(server: SecurityServer, key_mgmt: str, watch: MediaWatch | None = None) -> SipExchange:
    """INVITE with ``key_mgmt``, its RTP port ``watch`` (default: one of its own).

    A 200 is hung up once its SRTP arrived: a fresh call after a refused one is
    the synchronisation point of the refused call's media check.
    """
    own = watch or MediaWatch()
    try:
        with SipProbe(server.sip) as probe:
            offer = mikey_offer(server.host, own.port, key_mgmt)
            call = probe.request("INVITE", server.room_uri, from_uri=ALICE, body=offer)
            if call.response.status == 200:
                assert own.wait(1, timeout=10.0), "no SRTP after the MIKEY-TICKET answer"
                assert probe.in_dialog(call, "BYE").response.status == 200
        return call
    finally:
        if watch is None:
            own.close()


def _accepted(call: SipExchange) -> bool:
    return call.response.status == 200 and b"a=key-mgmt:mikey " in call.response.body


def _refused(call: SipExchange, packets: int) -> str:
    return f"{call.answered}, {packets} RTP"


def test_replayed_transfer_init_is_refused(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    server = security_server
    key_mgmt = _transfer_init(server)
    first = _invite(server, key_mgmt)
    assert _accepted(first), first.status_line  # the message itself is valid
    resolves = server.log_count(RESOLVED)
    with closing(MediaWatch()) as watch:
        replay = _invite(server, key_mgmt, watch)  # same TRANSFER_INIT, new Call-ID and tags
        resolves_for_replay = server.log_count(RESOLVED) - resolves
        fresh = _invite(server, _transfer_init(server))
        packets = watch.count()
    refusal.record(
        "replayed MIKEY message",
        "INVITE re-using a TRANSFER_INIT the focus accepted (new Call-ID)",
        f"{_refused(replay, packets)}; then a fresh one: {fresh.status_line}",
    )
    assert (replay.response.status, replay.response.reason) == (488, "Not Acceptable Here")
    replay.assert_warning(domain=server.server.domain, says="INVALID_TS (replayed MIKEY message)")
    assert replay.response.body == b"" and packets == 0
    assert resolves_for_replay == 0, "the replay reached the KMS"
    assert _accepted(fresh), fresh.status_line


def test_tampered_transfer_init_is_refused(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    server = security_server
    key_mgmt = _transfer_init(server)
    data = bytearray(SdpKeyMgmt.parse(key_mgmt).data)
    data[-1] ^= 0x01  # the last byte of the V payload's MAC (RFC 3830 §6.9)
    with closing(MediaWatch()) as watch:
        tampered = _invite(server, str(SdpKeyMgmt("mikey", bytes(data))), watch)
        fresh = _invite(server, _transfer_init(server))
        packets = watch.count()
    refusal.record(
        "tampered MIKEY message (MAC)",
        "INVITE with a fresh TRANSFER_INIT, one bit of its MAC flipped",
        f"{_refused(tampered, packets)}; then a fresh one: {fresh.status_line}",
    )
    assert (tampered.response.status, tampered.response.reason) == (488, "Not Acceptable Here")
    tampered.assert_warning(domain=server.server.domain, says="INVALID_MAC")
    assert tampered.response.body == b"" and packets == 0
    assert _accepted(fresh), fresh.status_line


def _kms_post(url: str, body: bytes) -> tuple[int, bytes, MikeyMessage]:
    """POST ``application/mikey`` to the KMS (RFC 6043 over HTTP): status, body, message."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/mikey"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data = response.read()
        return int(response.status), data, MikeyMessage.parse(data)


def test_replayed_ticket_request_gets_a_mikey_error_from_the_kms(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    server = security_server
    key = bytes.fromhex(server.alice_kms_key)
    room = server.room_uri.rsplit(":", 1)[0].encode()  # sip:room@127.0.0.1
    request = MikeyTicketRequest.build(ALICE.encode(), key, responders=[room], now=time.time())
    body = bytes(request.message)
    first = _kms_post(server.kms_url, body)
    replay = _kms_post(server.kms_url, body)
    fresh = MikeyTicketRequest.build(ALICE.encode(), key, responders=[room], now=time.time())
    again = _kms_post(server.kms_url, bytes(fresh.message))
    err = replay[2].find(MikeyErr)
    code = MikeyErrorCode(err.code).name if err is not None else "none"
    kinds = [MikeyDataType(m.data_type).name for m in (replay[2], again[2])]
    refusal.record(
        "replayed MIKEY message (KMS)",
        "the same REQUEST_INIT_PSK posted to the KMS a second time",
        f"HTTP {replay[0]} MIKEY {kinds[0]} message, ERR {code}; then a fresh one: {kinds[1]}",
    )
    assert first[2].data_type == MikeyDataType.REQUEST_RESP
    assert replay[0] == 200 and replay[2].data_type == MikeyDataType.ERROR
    assert err is not None and err.code == MikeyErrorCode.INVALID_TS
    assert again[2].data_type == MikeyDataType.REQUEST_RESP
    fresh.process_response(again[1], now=time.time())  # a valid ticket (raises otherwise)


async def _psk_probes(server: SecurityServer, kind: str) -> tuple[str, str]:
    """Join with MIKEY-TICKET; s_client on the session's ``kind`` line: (wrong key, right key)."""
    events: list[dict[str, Any]] = []
    options = UeOptions(server.room_uri, ALICE, audio=True, msrp=True, bfcp=True, mikey=True,
                        kms_url=server.kms_url, kms_key=server.alice_kms_key,
                        audio_packets=1)  # fmt: skip
    client = UeClient(options, events.append)
    try:
        assert await client.join(), events
        chat, floor = client.chat, client.floor
        assert chat is not None and chat.psk is not None and chat.channel is not None
        assert floor is not None and floor.psk is not None and floor.answer is not None
        assert chat.channel.transport is not None
        if kind == "MSRP":
            port, key = chat.channel.transport.get_extra_info("peername")[1], chat.psk
        else:
            port, key = floor.answer.port, floor.psk
        wrong = bytes(b ^ 0xFF for b in key)
        return (
            await asyncio.to_thread(_psk_client, server.host, port, wrong),
            await asyncio.to_thread(_psk_client, server.host, port, key),
        )
    finally:
        await client.leave()
        await client.close()


def _psk_client(host: str, port: int, psk: bytes) -> str:
    return s_client(host, port, "-tls1_2", "-psk", psk.hex(), "-psk_identity", "",
                    "-cipher", "PSK")  # fmt: skip


@pytest.mark.interop
@pytest.mark.parametrize("kind", ["MSRP", "BFCP"])
def test_wrong_tls_psk_fails_the_handshake(
    security_server: SecurityServer, refusal: RefusalLog, kind: str
) -> None:
    """The wrong key cannot decrypt the client's Finished (RFC 4279 §2); the right one works."""
    wrong, right = asyncio.run(asyncio.wait_for(_psk_probes(security_server, kind), 60))
    alerts = alerts_of(wrong)
    answered = ", ".join(f"TLS alert {level} {name}" for level, name in alerts) or "no alert"
    cipher = server_finished(right) and "Cipher is PSK-AES128-GCM-SHA256" in right
    refusal.record(f"wrong TLS-PSK key ({kind})",
                   "openssl s_client -psk <the MIKEY TEK, every bit flipped>",
                   f"{answered}; the right key: "
                   f"{'PSK-AES128-GCM-SHA256' if cipher else 'no handshake'}")  # fmt: skip
    # the server cannot decrypt the client's Finished (AES-GCM, RFC 5246 §7.2.2)
    assert alerts == [("fatal", "bad_record_mac")], wrong
    assert not server_finished(wrong) and "SSL alert number 20" in wrong, wrong
    assert cipher and alerts_of(right) == [] and "Protocol  : TLSv1.2" in right, right
