"""The focus's MIKEY-TICKET Responder step (focus.keying) against ``mrf ue``'s Initiator.

Both sides run in memory around one KMS core; the focus's KMS exchange is a
fake that can also be unreachable.  Checks that both derive the same SRTP keys
and TLS-PSK, and the refusals: 403 before any resolve, 503 with Retry-After,
488 for a replay.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import mrf.ue.mikey
from focus.keying import MikeyFocusKeying, MikeyRefused
from focus.kms.client import KmsUnavailable
from focus.kms.core import KmsConfig, KmsCore
from focus.mikey.message import MikeyMessage
from focus.sdp.attributes import SdpKeyMgmt
from focus.sdp.session import SdpAttribute, SdpConnection, SdpMedia, SdpOrigin, SdpSession
from mrf.ue.mikey import UeMikey

ALICE, CONF = "sip:alice@127.0.0.1", "sip:retro@127.0.0.1"
USERS = {ALICE.encode(): b"A" * 32, CONF.encode(): b"C" * 32, b"sip:eve@127.0.0.1": b"E" * 32}


class Kms:
    def __init__(self) -> None:
        self.core = KmsCore(USERS.get, {1: b"S" * 32}, 1, KmsConfig())
        self.seen: list[int] = []
        self.down = False

    async def exchange(self, url: str, body: bytes) -> bytes:
        if self.down:
            raise KmsUnavailable("connection refused")
        self.seen.append(MikeyMessage.parse(body).data_type)
        return self.core.handle(body, time.time())


def offer(value: str) -> SdpSession:
    audio = SdpMedia("audio", 4000, "RTP/SAVP", ["0"], attributes=[SdpAttribute("sendrecv")])
    chat = SdpMedia("message", 4002, "TCP/TLS/MSRP", ["*"],
                    attributes=[SdpAttribute("path", "msrps://127.0.0.1:4002/x;tcp")])  # fmt: skip
    return SdpSession(
        origin=SdpOrigin("ue", 1, 1, "127.0.0.1", "IP4"), connection=SdpConnection("127.0.0.1"),
        attributes=[SdpAttribute("key-mgmt", value)], media=[audio, chat],
    )  # fmt: skip


def initiator(kms: Kms, monkeypatch: pytest.MonkeyPatch, who: str = ALICE) -> tuple[UeMikey, str]:
    monkeypatch.setattr(mrf.ue.mikey, "kms_exchange", kms.exchange)
    ue = UeMikey.for_conference("http://kms", USERS[who.encode()].hex(), who, CONF + ":5060")
    value = asyncio.run(ue.offer_attribute(audio_ssrc=0xABCD, msrp=True, now=time.time()))
    return ue, value


def focus(kms: Kms) -> MikeyFocusKeying:
    return MikeyFocusKeying(
        "http://kms", lambda identity: USERS.get(identity), exchange=kms.exchange
    )


def resolve(keying: MikeyFocusKeying, sdp: SdpSession, allowed: set[str]):  # type: ignore[no-untyped-def]
    return asyncio.run(keying.resolve(sdp, CONF, allowed.__contains__, now=time.time()))


def test_initiator_and_focus_derive_the_same_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = Kms()
    ue, value = initiator(kms, monkeypatch)
    keys = resolve(focus(kms), offer(value), {ALICE})
    suite, rx, tx = keys.srtp[0]
    assert suite == "AES_CM_128_HMAC_SHA1_80" and len(rx) == len(tx) == 30 and rx != tx
    assert len(keys.psk[1]) == 16 and keys.session_key_mgmt is not None
    answer = offer(keys.session_key_mgmt)
    mine = ue.answer_keys(answer, now=time.time())
    assert mine.audio == (suite, rx, tx)  # what the UE sends is what the focus receives
    assert mine.psk == keys.psk[1]
    assert kms.seen == [11, 16]  # REQUEST_INIT_PSK, RESOLVE_INIT_PSK


def test_unauthorized_initiator_gets_403_without_a_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = Kms()
    _, value = initiator(kms, monkeypatch, "sip:eve@127.0.0.1")
    with pytest.raises(MikeyRefused) as info:
        resolve(focus(kms), offer(value), {ALICE})
    assert info.value.status == 403
    assert kms.seen == [11]  # the ticket request only: the KMS never resolved


def test_unreachable_kms_is_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = Kms()
    _, value = initiator(kms, monkeypatch)
    kms.down = True
    with pytest.raises(MikeyRefused) as info:
        resolve(focus(kms), offer(value), {ALICE})
    assert (info.value.status, info.value.headers) == (503, [("Retry-After", "10")])


def test_replayed_transfer_init_is_488(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = Kms()
    _, value = initiator(kms, monkeypatch)
    keying = focus(kms)
    resolve(keying, offer(value), {ALICE})
    with pytest.raises(MikeyRefused) as info:
        resolve(keying, offer(value), {ALICE})
    assert info.value.status == 488 and "replayed MIKEY message" in info.value.detail
    assert kms.seen == [11, 16]  # the replay never reached the KMS


def test_tampered_transfer_init_is_488(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = Kms()
    _, value = initiator(kms, monkeypatch)
    data = bytearray(SdpKeyMgmt.parse(value).data)
    data[-1] ^= 1  # the V payload's MAC
    with pytest.raises(MikeyRefused) as info:
        resolve(focus(kms), offer(str(SdpKeyMgmt("mikey", bytes(data)))), {ALICE})
    assert info.value.status == 488 and "INVALID_MAC" in info.value.detail


def test_focus_without_a_kms_key_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    kms = Kms()
    _, value = initiator(kms, monkeypatch)
    keying = MikeyFocusKeying("http://kms", lambda identity: None, exchange=kms.exchange)
    with pytest.raises(MikeyRefused) as info:
        resolve(keying, offer(value), {ALICE})
    assert info.value.status == 488
