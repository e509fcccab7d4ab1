"""SecretBytes: one holder per key, borrowed without copies, wiped once for everyone."""

from __future__ import annotations

import base64
import hashlib

import pytest

from focus.sdp.offer_answer import (
    SdpAnswerPlan,
    SdpCryptoChoice,
    SdpMikeyKeys,
    SdpStreamPlan,
)
from focus.sdp.secret import SecretBytes

KEY = bytes(range(30))


def test_borrowers_read_in_place_and_see_the_wipe() -> None:
    held = SecretBytes(KEY)
    assert base64.b64encode(held) == base64.b64encode(KEY)  # bytes-like (PEP 688)
    assert hashlib.sha256(held).digest() == hashlib.sha256(KEY).digest()
    assert held == KEY and KEY == held and held != SecretBytes(KEY[::-1])
    view = held.view()
    with pytest.raises(TypeError):
        view[0] = 1  # type: ignore[index]  # read-only for borrowers
    held.wipe()
    assert bytes(view) == bytes(30)  # zeroed in place, seen through an open view
    assert held.wiped and len(held) == 0 and not held and bytes(held) == b""
    assert repr(SecretBytes(KEY)) == "<SecretBytes 30 bytes>"
    assert repr(held) == "<SecretBytes wiped>"
    with pytest.raises(TypeError):
        hash(SecretBytes(KEY))


def _plan(remote: SecretBytes, local: SecretBytes, psk: SecretBytes | None = None) -> SdpAnswerPlan:
    crypto = SdpCryptoChoice(1, "AES_CM_128_HMAC_SHA1_80", remote, local)
    audio = SdpStreamPlan(0, "audio", True, None, "RTP/SAVP", crypto=crypto, key_mode="sdes")
    chat = SdpStreamPlan(1, "message", True, None, "TCP/TLS/MSRP", psk=psk, key_mode="psk")
    return SdpAnswerPlan((audio, chat))


def test_a_replaced_plan_wipes_only_the_keys_not_kept() -> None:
    """An offerer that kept its key keeps ours too: the same objects, not wiped."""
    remote, local, psk = SecretBytes(KEY), SecretBytes(KEY[::-1]), SecretBytes(b"p" * 16)
    old = _plan(remote, local, psk)
    new = _plan(remote, local)  # same SRTP key objects, the PSK not any more
    old.wipe(keep=new)
    assert not remote.wiped and not local.wiped and psk.wiped
    new.wipe()
    assert remote.wiped and local.wiped


def test_mikey_keys_wipe_srtp_psk_and_the_smime_tek() -> None:
    rx, tx, psk, tek = (SecretBytes(bytes([n]) * 30) for n in range(1, 5))
    keys = SdpMikeyKeys(srtp={0: ("AES_CM_128_HMAC_SHA1_80", rx, tx)}, psk={1: psk},
                        smime=(tek, b"spi"))  # fmt: skip
    keys.wipe()
    assert all(k.wiped for k in (rx, tx, psk, tek))
