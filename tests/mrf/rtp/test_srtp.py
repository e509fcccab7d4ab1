"""SRTP context tests, including an independent AES-CM SRTP reference built on
`cryptography` (RFC 3711 §4.1.1 AES-CM, §4.2 HMAC-SHA1, §4.3 key derivation;
RFC 6188 for the 256-bit key) that the libsrtp output must match byte for byte.
"""

import hashlib
import hmac
import os
import struct

import pylibsrtp
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.rtp.packet import RtcpSenderReport, RtpPacket
from mrf.rtp.srtp import (
    SRTP_SUITES,
    SrtpAuthError,
    SrtpContext,
    SrtpDirection,
    SrtpLocalError,
    SrtpRemoteError,
    SrtpReplayError,
    SrtpSuite,
    mki_supported,
)

IN, OUT = SrtpDirection.INBOUND, SrtpDirection.OUTBOUND

# (name, key+salt bytes, SRTP tag bytes) from RFC 4568 §6.2, RFC 6188 §7.1, RFC 7714 §14.2
EXPECTED = [
    ("AES_CM_128_HMAC_SHA1_80", 30, 10),
    ("AES_CM_128_HMAC_SHA1_32", 30, 4),
    ("AEAD_AES_128_GCM", 28, 16),
    ("AEAD_AES_256_GCM", 44, 16),
    ("AES_256_CM_HMAC_SHA1_80", 46, 10),
    ("AES_256_CM_HMAC_SHA1_32", 46, 4),
]


def rtp(seq: int = 1, ssrc: int = 0xDEADBEEF) -> bytes:
    return bytes(RtpPacket(0, seq, 160 * seq, ssrc, b"\xff" * 160))


def pair(name: str, key: bytes | None = None) -> tuple[SrtpContext, SrtpContext]:
    key = key or os.urandom(SRTP_SUITES[name].key_salt_length)
    return SrtpContext(name, key, OUT), SrtpContext(name, key, IN)


# --- independent reference ----------------------------------------------------------------


def aes_cm_prf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1/§4.3.3 with key_derivation_rate 0 (r = 0)."""
    x = bytearray(master_salt)
    x[7] ^= label  # key_id = label || 48-bit zero index, right-aligned in the 112-bit salt
    iv = bytes(x) + b"\x00\x00"
    encryptor = Cipher(algorithms.AES(master_key), modes.CTR(iv)).encryptor()
    return encryptor.update(bytes(length))


def reference_protect(key_len: int, tag_len: int, key_salt: bytes, packet: bytes) -> bytes:
    """RFC 3711 §3.3 for the first packet of a stream (ROC 0)."""
    master_key, master_salt = key_salt[:key_len], key_salt[key_len:]
    enc_key = aes_cm_prf(master_key, master_salt, 0x00, key_len)
    auth_key = aes_cm_prf(master_key, master_salt, 0x01, 20)
    salt = aes_cm_prf(master_key, master_salt, 0x02, 14)
    seq, ssrc = struct.unpack_from("!H4xI", packet, 2)
    iv = bytearray(salt + b"\x00\x00")
    for i, b in enumerate(struct.pack("!I", ssrc)):
        iv[4 + i] ^= b
    for i, b in enumerate(struct.pack("!Q", seq)[2:]):  # 48-bit index, times 2^16
        iv[8 + i] ^= b
    encryptor = Cipher(algorithms.AES(enc_key), modes.CTR(bytes(iv))).encryptor()
    encrypted = packet[:12] + encryptor.update(packet[12:])
    tag = hmac.new(auth_key, encrypted + b"\x00\x00\x00\x00", hashlib.sha1).digest()
    return encrypted + tag[:tag_len]


def test_reference_kdf_matches_rfc3711_appendix_b3() -> None:
    master_key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    master_salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert aes_cm_prf(master_key, master_salt, 0, 16).hex().upper() == (
        "C61E7A93744F39EE10734AFE3FF7A087"
    )
    assert aes_cm_prf(master_key, master_salt, 2, 14).hex().upper() == (
        "30CBBC08863D8C85D49DB34A9AE1"
    )
    assert aes_cm_prf(master_key, master_salt, 1, 20).hex().upper() == (
        "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"
    )


@pytest.mark.parametrize(
    ("name", "key_len", "tag_len"),
    [
        ("AES_CM_128_HMAC_SHA1_80", 16, 10),
        ("AES_CM_128_HMAC_SHA1_32", 16, 4),
        ("AES_256_CM_HMAC_SHA1_80", 32, 10),
        ("AES_256_CM_HMAC_SHA1_32", 32, 4),
    ],
)
def test_protect_matches_independent_reference(name: str, key_len: int, tag_len: int) -> None:
    key_salt = os.urandom(key_len + 14)
    tx = SrtpContext(name, key_salt, OUT)
    packet = rtp(seq=4242)
    assert tx.protect(packet) == reference_protect(key_len, tag_len, key_salt, packet)


@pytest.mark.parametrize("name", ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"])
def test_protect_rtp_in_the_reused_buffer_equals_protect_of_the_packet(name: str) -> None:
    key = os.urandom(SRTP_SUITES[name].key_salt_length)
    fast, plain = SrtpContext(name, key, OUT), SrtpContext(name, key, OUT)
    rx = SrtpContext(name, key, IN)
    for seq in (1, 2, 3):
        packet = RtpPacket(0, seq, 160 * seq, 0xDEADBEEF, bytes([seq]) * 160, marker=seq == 1)
        view = fast.protect_rtp(0x80 | 0 if seq == 1 else 0, seq, 160 * seq, 0xDEADBEEF,
                                bytes([seq]) * 160)  # fmt: skip
        assert bytes(view) == plain.protect(bytes(packet))
        assert rx.unprotect(bytes(view)) == bytes(packet)
    with pytest.raises(SrtpLocalError):
        fast.protect_rtp(0, 4, 0, 1, bytes(1500))
    fast.wipe()
    with pytest.raises(SrtpLocalError):
        fast.protect_rtp(0, 5, 0, 1, b"x")
    with pytest.raises(SrtpLocalError):
        rx.protect_rtp(0, 5, 0, 1, b"x")


# --- behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key_salt_length", "tag"), EXPECTED)
def test_suite_table_and_round_trip(name: str, key_salt_length: int, tag: int) -> None:
    suite = SrtpSuite.by_name(name)
    assert suite.key_salt_length == key_salt_length
    tx, rx = pair(name)
    srtp = tx.protect(rtp())
    assert len(srtp) == len(rtp()) + tag
    assert srtp[12:] != rtp()[12:]  # payload is encrypted
    assert rx.unprotect(srtp) == rtp()
    sr = bytes(RtcpSenderReport(0xDEADBEEF, 1, 2, 3, 4))
    srtcp = tx.protect_rtcp(sr)
    assert srtcp[8 : len(sr)] != sr[8:]  # SRTCP encrypted, E flag set
    e_flag_at = len(sr) + (tag if name.startswith("AEAD") else 0)  # RFC 7714 §9.3
    assert srtcp[e_flag_at] & 0x80
    assert rx.unprotect_rtcp(srtcp) == sr
    assert (tx.protected, rx.unprotected) == (2, 2)


def test_sdes_oracle_mapping_interoperates() -> None:
    """Plain pylibsrtp profiles keyed from the SDES inline key, independent of SrtpContext."""
    profiles = {
        "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
        "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        "AEAD_AES_256_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
    }
    for name, profile in profiles.items():
        key = os.urandom(SRTP_SUITES[name].key_salt_length)
        peer_rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )
        peer_tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        tx, rx = pair(name, key)
        assert peer_rx.unprotect(tx.protect(rtp())) == rtp()
        assert rx.unprotect(peer_tx.protect(rtp(2))) == rtp(2)


def test_wrong_key_is_auth_failure() -> None:
    tx, _ = pair("AES_CM_128_HMAC_SHA1_80")
    _, rx = pair("AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SrtpAuthError):
        rx.unprotect(tx.protect(rtp()))
    with pytest.raises(SrtpAuthError):
        rx.unprotect_rtcp(tx.protect_rtcp(bytes(RtcpSenderReport(1, 2, 3, 4, 5))))
    assert rx.auth_failures == 2
    assert rx.unprotected == 0


def test_tampered_packet_is_auth_failure() -> None:
    tx, rx = pair("AEAD_AES_128_GCM")
    data = bytearray(tx.protect(rtp()))
    data[20] ^= 0x01
    with pytest.raises(SrtpAuthError):
        rx.unprotect(bytes(data))


def test_replay_is_rejected() -> None:
    tx, rx = pair("AES_CM_128_HMAC_SHA1_80")
    first = tx.protect(rtp(1))
    rx.unprotect(first)
    with pytest.raises(SrtpReplayError):
        rx.unprotect(first)
    for seq in range(2, 300):
        rx.unprotect(tx.protect(rtp(seq)))
    assert rx.replays == 1


def test_packet_outside_replay_window_is_replay() -> None:
    tx, rx = pair("AES_CM_128_HMAC_SHA1_80")
    early = tx.protect(rtp(1))
    for seq in range(2, 200):
        rx.unprotect(tx.protect(rtp(seq)))
    with pytest.raises(SrtpReplayError):
        rx.unprotect(early)  # 198 behind: older than the 128-packet window


@pytest.mark.parametrize("data", [b"", b"\x80\x00", b"\x80" * 12, b"\x81" * 20])
def test_garbage_is_remote_error(data: bytes) -> None:
    _, rx = pair("AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SrtpRemoteError):
        rx.unprotect(data)
    with pytest.raises(SrtpRemoteError):
        rx.unprotect_rtcp(data)


def test_oversized_packet() -> None:
    tx, rx = pair("AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SrtpRemoteError):
        rx.unprotect(b"\x80" * 2000)
    with pytest.raises(SrtpLocalError):
        tx.protect(b"\x80" * 2000)


def test_local_errors() -> None:
    with pytest.raises(SrtpLocalError, match="unsupported"):
        SrtpSuite.by_name("F8_128_HMAC_SHA1_80")
    with pytest.raises(SrtpLocalError, match="30 key"):
        SrtpContext("AES_CM_128_HMAC_SHA1_80", bytes(29), IN)
    tx, rx = pair("AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(SrtpLocalError):
        tx.unprotect(rtp())
    with pytest.raises(SrtpLocalError):
        rx.protect(rtp())


def test_wipe_overwrites_key_and_disables_context() -> None:
    key = os.urandom(30)
    tx, rx = pair("AES_CM_128_HMAC_SHA1_80", key)
    held = tx._key
    policy_key = tx._policy.key if tx._policy else None
    assert policy_key is not None and bytes(policy_key) == key
    exported = held.view()  # a borrower's view: it sees the bytes zeroed in place
    tx.wipe()
    assert held.wiped and len(held) == 0 and bytes(exported) == bytes(30)
    assert bytes(policy_key) == bytes(30)
    assert tx.wiped
    assert "wiped" in repr(tx) and key.hex() not in repr(tx)
    with pytest.raises(SrtpLocalError, match="wiped"):
        tx.protect(rtp())
    tx.wipe()  # idempotent
    assert rx.unprotect(SrtpContext("AES_CM_128_HMAC_SHA1_80", key, OUT).protect(rtp())) == rtp()


# --- inbound MKI (RFC 3711 §3.1, §3.4; RFC 4568 §6.1) ---------------------------------------

MKI_SUITES = [name for name, *_ in EXPECTED if not name.startswith("AEAD")]
SIPP_MKI = (1).to_bytes(4, "big")  # "inline:...|2^20|1:4" as sipp/linphone offer it


def with_mki(packet: bytes, mki: bytes, tag_len: int) -> bytes:
    """What a peer with an MKI emits: the MKI just before the (uncovered) tag."""
    return packet[:-tag_len] + mki + packet[-tag_len:]


def mki_pair(name: str, mki: bytes = SIPP_MKI) -> tuple[SrtpContext, SrtpContext]:
    key = os.urandom(SRTP_SUITES[name].key_salt_length)
    return SrtpContext(name, key, OUT), SrtpContext(name, key, IN, rx_mki=mki)


@pytest.mark.parametrize(("name", "key_salt_length", "tag"), EXPECTED)
def test_suite_tag_lengths_match_libsrtp_output(name: str, key_salt_length: int, tag: int) -> None:
    """SRTCP tags are 80 bits for the _32 suites too (RFC 4568 §6.2.2, RFC 6188 §7.1)."""
    suite = SrtpSuite.by_name(name)
    tx, _ = pair(name)
    sr = bytes(RtcpSenderReport(0xDEADBEEF, 1, 2, 3, 4))
    assert suite.srtp_tag_length == tag == len(tx.protect(rtp())) - len(rtp())
    assert suite.srtcp_tag_length == len(tx.protect_rtcp(sr)) - len(sr) - 4
    assert suite.srtcp_tag_length == (16 if suite.aead else 10)


@pytest.mark.parametrize("name", MKI_SUITES)
@pytest.mark.parametrize("mki", [SIPP_MKI, b"\x07", bytes(range(128))])
def test_mki_carrying_srtp_and_srtcp_decrypt(name: str, mki: bytes) -> None:
    suite = SrtpSuite.by_name(name)
    tx, rx = mki_pair(name, mki)
    for seq in (1, 2, 3):
        srtp = with_mki(tx.protect(rtp(seq)), mki, suite.srtp_tag_length)
        assert rx.unprotect(srtp) == rtp(seq)
    sr = bytes(RtcpSenderReport(0xDEADBEEF, 1, 2, 3, 4))
    srtcp = with_mki(tx.protect_rtcp(sr), mki, suite.srtcp_tag_length)
    assert rx.unprotect_rtcp(srtcp) == sr
    assert (rx.unprotected, rx.auth_failures, rx.errors) == (4, 0, 0)


def test_mki_from_independent_libsrtp_peer() -> None:
    key = os.urandom(30)
    peer = pylibsrtp.Session(
        pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
        )
    )
    rx = SrtpContext("AES_CM_128_HMAC_SHA1_32", key, IN, rx_mki=SIPP_MKI)
    assert rx.unprotect(with_mki(peer.protect(rtp(9)), SIPP_MKI, 4)) == rtp(9)
    sr = bytes(RtcpSenderReport(0xDEADBEEF, 1, 2, 3, 4))
    assert rx.unprotect_rtcp(with_mki(peer.protect_rtcp(sr), SIPP_MKI, 10)) == sr


@pytest.mark.parametrize("rtcp", [False, True])
def test_wrong_or_missing_mki_is_auth_failure(rtcp: bool) -> None:
    tx, rx = mki_pair("AES_CM_128_HMAC_SHA1_80")
    unprotect = rx.unprotect_rtcp if rtcp else rx.unprotect
    plain = [bytes(RtcpSenderReport(1, n, 2, 3, 4)) if rtcp else rtp(n) for n in (1, 2, 3)]
    protect = tx.protect_rtcp if rtcp else tx.protect
    with pytest.raises(SrtpAuthError, match="MKI not recognised"):
        unprotect(with_mki(protect(plain[0]), b"\x00\x00\x00\x02", 10))
    with pytest.raises(SrtpAuthError):
        unprotect(protect(plain[1]))  # no MKI at all
    assert rx.auth_failures == 2
    assert unprotect(with_mki(protect(plain[2]), SIPP_MKI, 10)) == plain[2]


def test_mki_is_outside_the_tag_and_tampering_elsewhere_still_fails() -> None:
    tx, rx = mki_pair("AES_CM_128_HMAC_SHA1_80")
    srtp = bytearray(with_mki(tx.protect(rtp(1)), SIPP_MKI, 10))
    srtp[20] ^= 0x01
    with pytest.raises(SrtpAuthError, match="authentication failure"):
        rx.unprotect(bytes(srtp))  # MKI matched; libsrtp's tag check rejected the payload


@pytest.mark.parametrize("length", [0, 5, 12, 12 + 4 + 10 - 1])
def test_truncated_mki_packet_is_malformed(length: int) -> None:
    tx, rx = mki_pair("AES_CM_128_HMAC_SHA1_80")
    srtp = with_mki(tx.protect(rtp(1)), SIPP_MKI, 10)
    with pytest.raises(SrtpRemoteError) as info:
        rx.unprotect(srtp[:length])
    assert not isinstance(info.value, SrtpAuthError)
    with pytest.raises(SrtpRemoteError):
        rx.unprotect_rtcp(srtp[: min(length, 8 + 4 + 4 + 10 - 1)])
    assert rx.errors == 2 and rx.unprotected == 0


def test_mki_cut_short_by_one_byte_is_rejected() -> None:
    tx, rx = mki_pair("AES_CM_128_HMAC_SHA1_80")
    srtp = with_mki(tx.protect(rtp(1)), SIPP_MKI, 10)
    with pytest.raises(SrtpRemoteError):
        rx.unprotect(srtp[:-1])
    assert rx.auth_failures + rx.errors == 1


def test_mki_local_errors_and_support_query() -> None:
    assert all(SrtpSuite.by_name(name).supports_mki for name in MKI_SUITES)
    assert mki_supported("AES_CM_128_HMAC_SHA1_80") and mki_supported("AES_256_CM_HMAC_SHA1_32")
    assert not mki_supported("AEAD_AES_128_GCM") and not mki_supported("AEAD_AES_256_GCM")
    assert not mki_supported("F8_128_HMAC_SHA1_80")
    with pytest.raises(SrtpLocalError, match="not supported"):
        SrtpContext("AEAD_AES_128_GCM", bytes(28), IN, rx_mki=SIPP_MKI)
    with pytest.raises(SrtpLocalError, match="outbound"):
        SrtpContext("AES_CM_128_HMAC_SHA1_80", bytes(30), OUT, rx_mki=SIPP_MKI)
    for bad in (b"", bytes(129)):
        with pytest.raises(SrtpLocalError, match="1..128"):
            SrtpContext("AES_CM_128_HMAC_SHA1_80", bytes(30), IN, rx_mki=bad)
    rx = SrtpContext("AES_CM_128_HMAC_SHA1_80", bytes(30), IN, rx_mki=SIPP_MKI)
    assert "4-byte MKI" in repr(rx)


@settings(max_examples=300)
@given(data=st.binary(max_size=200), mki=st.binary(min_size=1, max_size=8))
def test_mki_context_never_crashes_on_garbage(data: bytes, mki: bytes) -> None:
    rx = SrtpContext("AES_CM_128_HMAC_SHA1_32", bytes(30), IN, rx_mki=mki)
    for unprotect in (rx.unprotect, rx.unprotect_rtcp):
        with pytest.raises(SrtpRemoteError):
            unprotect(data)
