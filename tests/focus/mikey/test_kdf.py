"""MIKEY PRF and derivations checked against a direct reading of RFC 3830 §4.1.2 / §4.2.3."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from focus.mikey import kdf
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyEncrAlg, MikeyErrorCode, MikeyMacAlg


def reference_prf(digest: str, inkey: bytes, label: bytes, length: int) -> bytes:
    """RFC 3830 §4.1.2, written out independently of focus.mikey.kdf."""
    size = hashlib.new(digest).digest_size
    m = -(-length // size)
    blocks = [inkey[i : i + 32] for i in range(0, len(inkey), 32)]
    out = bytes(m * size)
    for s in blocks:
        a, p = label, b""
        for _ in range(m):
            a = hmac.new(s, a, digest).digest()
            p += hmac.new(s, a + label, digest).digest()
        out = bytes(x ^ y for x, y in zip(out, p, strict=True))
    return out[:length]


@pytest.mark.parametrize("prf_func, digest", [(0, "sha1"), (1, "sha256")])
@pytest.mark.parametrize("inkey_length", [16, 32, 33, 70])
@pytest.mark.parametrize("length", [14, 16, 20, 32, 45])
def test_prf_matches_rfc3830_construction(prf_func, digest, inkey_length, length) -> None:
    inkey = bytes(range(inkey_length))
    label = b"\x2a\xd0\x1c\x64\x01\x12\x34\x56\x78" + b"R" * 16
    assert kdf.prf(prf_func, inkey, label, length) == reference_prf(digest, inkey, label, length)


def test_unknown_prf_is_invalid_prf() -> None:
    with pytest.raises(MikeyRemoteError) as info:
        kdf.prf(5, b"k", b"l", 16)
    assert info.value.code == MikeyErrorCode.INVALID_PRF


def test_ticket_message_key_labels() -> None:
    """RFC 6043 §5.1.2: const || 0xFF || CSB ID || 0x01/0x02 || len RANDRi || RANDRi || ..."""
    keys = kdf.ticket_message_keys(
        1, b"K" * 32, 0x01020304, response=True, rand_i=b"i" * 16, rand_r=None
    )
    tail = b"\xff\x01\x02\x03\x04\x02\x10" + b"i" * 16 + b"\x00"
    assert keys.encr_key == reference_prf("sha256", b"K" * 32, b"\x15\x05\x33\xe1" + tail, 16)
    assert keys.salt == reference_prf("sha256", b"K" * 32, b"\x29\xb8\x89\x16" + tail, 14)
    assert keys.auth_key == reference_prf("sha256", b"K" * 32, b"\x2d\x22\xac\x75" + tail, 32)
    initial = kdf.ticket_message_keys(
        1, b"K" * 32, 0x01020304, response=False, rand_i=b"i" * 16, rand_r=None
    )
    assert initial.auth_key != keys.auth_key


def test_tek_and_forking_labels() -> None:
    tek, salt = kdf.ticket_tek(1, b"T" * 32, 2, rand_i=b"i" * 16, rand_r=b"r" * 16)
    tail = b"\x02\xff\xff\xff\xff\x03\x10" + b"i" * 16 + b"\x10" + b"r" * 16
    assert tek == reference_prf("sha256", b"T" * 32, b"\x2a\xd0\x1c\x64" + tail, 16)
    assert salt == reference_prf("sha256", b"T" * 32, b"\x39\xa2\xc1\x4b" + tail, 14)
    forked = kdf.fork_key(1, b"T" * 32, kdf.TGK_FORK_CONST, b"sip:b@x", b"k" * 16)
    label = b"\x15\x12\xb5\x4a\xff\xff\xff\xff\xff\x00\x00\x07sip:b@x\x10" + b"k" * 16
    assert forked == reference_prf("sha256", b"T" * 32, label, 32)
    assert kdf.fork_key(1, b"T" * 32, kdf.TGK_FORK_CONST, b"sip:c@x", b"k" * 16) != forked
    mpk_i, mpk_r = kdf.mpk_pair(1, b"M" * 32, b"R" * 16)
    assert mpk_i == reference_prf(
        "sha256", b"M" * 32, b"\x22\x0e\x99\xa2\xff\xff\xff\xff\xff\x06\x10" + b"R" * 16, 32
    )
    assert mpk_r != mpk_i


def test_aes_cm_iv_is_rfc3830_construction() -> None:
    keys = kdf.MikeyMessageKeys(b"E" * 16, bytes(range(14)), b"")
    csb, t = 0x11223344, 0xE1E2E3E4_F1F2F3F4
    block = b"\x00\x00" + csb.to_bytes(4) + t.to_bytes(8)
    iv = bytes(a ^ b for a, b in zip(bytes(range(14)), block, strict=True)) + b"\x00\x00"
    expected = Cipher(algorithms.AES(b"E" * 16), modes.CTR(iv)).encryptor().update(b"P" * 40)
    assert (
        kdf.kemac_crypt(MikeyEncrAlg.AES_CM_128, keys, csb, t, b"P" * 40, encrypt=True) == expected
    )
    assert (
        kdf.kemac_crypt(MikeyEncrAlg.AES_CM_128, keys, csb, t, expected, encrypt=False) == b"P" * 40
    )


def test_aes_kw_is_rfc3394_with_the_salt_as_iv() -> None:
    keys = kdf.MikeyMessageKeys(b"W" * 16, bytes.fromhex("a6a6a6a6a6a6a6a6"), b"")
    wrapped = kdf.kemac_crypt(MikeyEncrAlg.AES_KW_128, keys, 0, 0, b"K" * 24, encrypt=True)
    assert wrapped == keywrap.aes_key_wrap(b"W" * 16, b"K" * 24)  # default IV = A6.. (RFC 3394)
    assert kdf.kemac_crypt(MikeyEncrAlg.AES_KW_128, keys, 0, 0, wrapped, encrypt=False) == b"K" * 24
    bad = kdf.MikeyMessageKeys(b"W" * 16, b"\x00" * 8, b"")
    with pytest.raises(MikeyRemoteError, match="integrity"):
        kdf.kemac_crypt(MikeyEncrAlg.AES_KW_128, bad, 0, 0, wrapped, encrypt=False)


def test_mac_verification_is_strict() -> None:
    tag = kdf.mac(MikeyMacAlg.HMAC_SHA_256_256, b"a" * 32, b"data")
    assert len(tag) == 32 and len(kdf.mac(MikeyMacAlg.HMAC_SHA_1_160, b"a" * 20, b"d")) == 20
    kdf.verify_mac(MikeyMacAlg.HMAC_SHA_256_256, b"a" * 32, b"data", tag)
    with pytest.raises(MikeyRemoteError) as info:
        kdf.verify_mac(MikeyMacAlg.HMAC_SHA_256_256, b"a" * 32, b"datA", tag)
    assert info.value.code == MikeyErrorCode.INVALID_MAC
    with pytest.raises(MikeyRemoteError, match="NULL MAC"):
        kdf.verify_mac(MikeyMacAlg.NULL, b"", b"data", b"")
