"""MIKEY key derivation, KEMAC encryption and MACs (RFC 3830 §4; RFC 6043 §5.1, §6.1, App. A).

PRF (RFC 3830 §4.1.2; PRF-HMAC-SHA-256 RFC 6043 §6.1)::

    P(s, label, m) = HMAC(s, A_1 || label) || ... || HMAC(s, A_m || label)
    A_0 = label, A_i = HMAC(s, A_{i-1})
    inkey = s_1 || ... || s_n   (256-bit blocks, the last may be shorter)
    PRF(inkey, label, L) = first L bits of P(s_1, label, m) XOR ... XOR P(s_n, label, m)

Labels: RFC 3830 §4.1.3 (TGK → TEK),
§4.1.4 (message keys), RFC 6043 §5.1.1 (forking), §5.1.2 (message keys of
MIKEY-TICKET), §5.1.3 (TGK → TEK), §6.10 (Vr), App. A.2 (TPK, MPKi/MPKr).
MAC checks use :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from focus.mikey.buffer import MikeyLocalError, MikeyRemoteError
from focus.mikey.constants import MAC_LENGTHS, MikeyEncrAlg, MikeyErrorCode, MikeyMacAlg

# RFC 3830 §4.1.3 / §4.1.4 constants
TEK_CONST = 0x2AD01C64
AUTH_CONST_TGK = 0x1B5C7973
ENCR_CONST_TGK = 0x15798CEF
SALT_CONST_TGK = 0x39A2C14B
ENCR_CONST = 0x150533E1
AUTH_CONST = 0x2D22AC75
SALT_CONST = 0x29B88916
# RFC 6043 §5.1.1 forking constants; App. A.2.2 MPK constants
MPKR_FORK_CONST = 0x2B288856
TGK_FORK_CONST = 0x1512B54A
MPKI_CONST = 0x220E99A2
MPKR_CONST = 0x1F4D675B

ALL_CS = 0xFFFFFFFF
ENCR_KEY_LENGTHS = {
    MikeyEncrAlg.NULL: 0,
    MikeyEncrAlg.AES_CM_128: 16,
    MikeyEncrAlg.AES_KW_128: 16,
    MikeyEncrAlg.AES_CM_256: 32,
}
SALT_LENGTHS = {  # RFC 3830 §4.2.3: 112-bit salt for AES-CM, 64-bit IV for AES-KW
    MikeyEncrAlg.NULL: 0,
    MikeyEncrAlg.AES_CM_128: 14,
    MikeyEncrAlg.AES_KW_128: 8,
    MikeyEncrAlg.AES_CM_256: 14,
}


def _digest(prf: int) -> str:
    if prf == 0:
        return "sha1"
    if prf == 1:
        return "sha256"
    raise MikeyRemoteError(f"unknown PRF func {prf}", MikeyErrorCode.INVALID_PRF)


def _p_hash(secret: bytes, label: bytes, length: int, digest: str) -> bytes:
    out = bytearray()
    a = label
    while len(out) < length:
        a = hmac.new(secret, a, digest).digest()
        out += hmac.new(secret, a + label, digest).digest()
    return bytes(out[:length])


def prf(prf_func: int, inkey: bytes, label: bytes, length: int) -> bytes:
    """MIKEY PRF (RFC 3830 §4.1.2) with MIKEY-1 (0) or PRF-HMAC-SHA-256 (1), ``length`` bytes."""
    digest = _digest(prf_func)
    result = bytes(length)
    for start in range(0, max(len(inkey), 1), 32):
        block = _p_hash(inkey[start : start + 32], label, length, digest)
        result = bytes(x ^ y for x, y in zip(result, block, strict=True))
    return result


def _u32(value: int) -> bytes:
    return value.to_bytes(4)


def _rands(rand_i: bytes | None, rand_r: bytes | None) -> bytes:
    """``len(RANDRi) (8) || RANDRi || len(RANDRr) (8) || RANDRr`` (RFC 6043 §5.1)."""
    rand_i, rand_r = rand_i or b"", rand_r or b""
    return bytes([len(rand_i)]) + rand_i + bytes([len(rand_r)]) + rand_r


@dataclass(frozen=True, slots=True)
class MikeyMessageKeys:
    """encr_key, salt_key and auth_key protecting one message (RFC 3830 §4.1.4)."""

    encr_key: bytes
    salt: bytes
    auth_key: bytes


def _message_keys(
    prf_func: int, inkey: bytes, tail: bytes, encr: int, mac: int
) -> MikeyMessageKeys:
    encr_alg, mac_alg = MikeyEncrAlg(encr), MikeyMacAlg(mac)
    return MikeyMessageKeys(
        prf(prf_func, inkey, _u32(ENCR_CONST) + tail, ENCR_KEY_LENGTHS[encr_alg]),
        prf(prf_func, inkey, _u32(SALT_CONST) + tail, SALT_LENGTHS[encr_alg]),
        prf(prf_func, inkey, _u32(AUTH_CONST) + tail, MAC_LENGTHS[mac_alg]),
    )


def rfc3830_message_keys(
    prf_func: int, inkey: bytes, csb_id: int, rand: bytes, encr_alg: int, mac_alg: int
) -> MikeyMessageKeys:
    """RFC 3830 §4.1.4: label ``const || 0xFF || CSB ID || RAND``."""
    return _message_keys(prf_func, inkey, b"\xff" + _u32(csb_id) + rand, encr_alg, mac_alg)


def ticket_message_keys(
    prf_func: int,
    inkey: bytes,
    csb_id: int,
    *,
    response: bool,
    rand_i: bytes | None,
    rand_r: bytes | None,
    encr_alg: int = MikeyEncrAlg.AES_CM_128,
    mac_alg: int = MikeyMacAlg.HMAC_SHA_256_256,
) -> MikeyMessageKeys:
    """RFC 6043 §5.1.2: ``const || 0xFF || CSB ID || 0x01/0x02 || RANDRi || RANDRr``."""
    tail = b"\xff" + _u32(csb_id) + (b"\x02" if response else b"\x01") + _rands(rand_i, rand_r)
    return _message_keys(prf_func, inkey, tail, encr_alg, mac_alg)


def ticket_tek(
    prf_func: int,
    tgk: bytes,
    cs_id: int,
    *,
    rand_i: bytes | None,
    rand_r: bytes | None,
    length: int = 16,
    salt_length: int = 14,
) -> tuple[bytes, bytes]:
    """RFC 6043 §5.1.3: ``(TEK, salt)``, label ``const || CS ID || 0xFFFFFFFF || 0x03 || RANDs``.

    RANDRi is passed iff the H flag is set, RANDRr iff the G flag is set.
    """
    if rand_i is None and rand_r is None:
        raise MikeyLocalError("TEK derivation needs RANDRi or RANDRr")
    tail = bytes([cs_id]) + _u32(ALL_CS) + b"\x03" + _rands(rand_i, rand_r)
    return (
        prf(prf_func, tgk, _u32(TEK_CONST) + tail, length),
        prf(prf_func, tgk, _u32(SALT_CONST_TGK) + tail, salt_length),
    )


def fork_key(prf_func: int, key: bytes, const: int, id_data: bytes, rand_kms: bytes) -> bytes:
    """RFC 6043 §5.1.1: MPKr' (MPKR_FORK_CONST) or TGK' (TGK_FORK_CONST) for one resolver."""
    label = (
        _u32(const) + b"\xff" + _u32(ALL_CS) + b"\x00"
        + len(id_data).to_bytes(2) + id_data + bytes([len(rand_kms)]) + rand_kms
    )  # fmt: skip
    return prf(prf_func, key, label, len(key))


def ticket_protection_keys(
    prf_func: int, kms_secret: bytes, rand: bytes, encr_alg: int, mac_alg: int
) -> MikeyMessageKeys:
    """RFC 6043 App. A.2.1: TPK keys, label ``const || 0xFF || 0xFFFFFFFF || 0x05 || RAND``."""
    tail = b"\xff" + _u32(ALL_CS) + b"\x05" + bytes([len(rand)]) + rand
    return _message_keys(prf_func, kms_secret, tail, encr_alg, mac_alg)


def mpk_pair(prf_func: int, mpk: bytes, rand: bytes) -> tuple[bytes, bytes]:
    """RFC 6043 App. A.2.2: ``(MPKi, MPKr)`` from the ticket's MPK."""
    tail = b"\xff" + _u32(ALL_CS) + b"\x06" + bytes([len(rand)]) + rand
    return (
        prf(prf_func, mpk, _u32(MPKI_CONST) + tail, len(mpk)),
        prf(prf_func, mpk, _u32(MPKR_CONST) + tail, len(mpk)),
    )


def _aes_cm(key: bytes, salt: bytes, csb_id: int, timestamp: int, data: bytes) -> bytes:
    """RFC 3830 §4.2.3: ``IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000``."""
    block = (b"\x00\x00" + _u32(csb_id) + timestamp.to_bytes(8))[-14:]
    iv = bytes(x ^ y for x, y in zip(salt, block, strict=True)) + b"\x00\x00"
    if len(data) > (1 << 20):  # RFC 3830 §4.2.3: at most 2^23 bits
        raise MikeyLocalError("AES-CM KEMAC data over 2^23 bits")
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _aes_kw(key: bytes, iv: bytes, data: bytes, *, wrap: bool) -> bytes:
    """RFC 3394 key wrap with the 64-bit salt as IV (RFC 3830 §4.2.3 AES-KW-128)."""
    if len(data) % 8 or len(data) < (16 if wrap else 24):
        raise MikeyRemoteError(
            "AES-KW data must be a multiple of 8 bytes", MikeyErrorCode.INVALID_EA
        )
    ecb = Cipher(algorithms.AES(key), modes.ECB())
    if wrap:
        a, r = iv, [data[i : i + 8] for i in range(0, len(data), 8)]
        enc = ecb.encryptor()
        for j in range(6):
            for i in range(len(r)):
                b = enc.update(a + r[i])
                a = (int.from_bytes(b[:8]) ^ (len(r) * j + i + 1)).to_bytes(8)
                r[i] = b[8:]
        return a + b"".join(r)
    a, r = data[:8], [data[i : i + 8] for i in range(8, len(data), 8)]
    dec = ecb.decryptor()
    for j in reversed(range(6)):
        for i in reversed(range(len(r))):
            t = (int.from_bytes(a) ^ (len(r) * j + i + 1)).to_bytes(8)
            b = dec.update(t + r[i])
            a, r[i] = b[:8], b[8:]
    if not hmac.compare_digest(a, iv):
        raise MikeyRemoteError("AES-KW integrity check failed", MikeyErrorCode.AUTH_FAILURE)
    return b"".join(r)


def kemac_crypt(
    encr_alg: int,
    keys: MikeyMessageKeys,
    csb_id: int,
    timestamp: int,
    data: bytes,
    *,
    encrypt: bool,
) -> bytes:
    """Encrypt or decrypt KEMAC ``Encr data`` (RFC 3830 §4.2.3; AES-CM-256 RFC 6043 §6.2)."""
    if encr_alg == MikeyEncrAlg.NULL:
        return data
    if encr_alg in (MikeyEncrAlg.AES_CM_128, MikeyEncrAlg.AES_CM_256):
        return _aes_cm(keys.encr_key, keys.salt, csb_id, timestamp, data)
    if encr_alg == MikeyEncrAlg.AES_KW_128:
        return _aes_kw(keys.encr_key, keys.salt, data, wrap=encrypt)
    raise MikeyRemoteError(f"unknown encryption algorithm {encr_alg}", MikeyErrorCode.INVALID_EA)


def mac(mac_alg: int, key: bytes, data: bytes) -> bytes:
    """HMAC-SHA-1-160 / HMAC-SHA-256-256 (RFC 3830 §4.2.4; RFC 6043 §6.2); NULL is empty."""
    if mac_alg == MikeyMacAlg.NULL:
        return b""
    if mac_alg == MikeyMacAlg.HMAC_SHA_1_160:
        return hmac.new(key, data, hashlib.sha1).digest()
    if mac_alg == MikeyMacAlg.HMAC_SHA_256_256:
        return hmac.new(key, data, hashlib.sha256).digest()
    raise MikeyRemoteError(f"unknown MAC algorithm {mac_alg}", MikeyErrorCode.INVALID_HA)


def verify_mac(mac_alg: int, key: bytes, data: bytes, received: bytes) -> None:
    """Raise ``MikeyRemoteError(INVALID_MAC)`` unless ``received`` matches (constant time)."""
    if mac_alg == MikeyMacAlg.NULL:
        raise MikeyRemoteError("NULL MAC refused", MikeyErrorCode.INVALID_HA)
    if not hmac.compare_digest(mac(mac_alg, key, data), received):
        raise MikeyRemoteError("MAC verification failed", MikeyErrorCode.INVALID_MAC)
