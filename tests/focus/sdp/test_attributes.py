"""Typed SDP attribute codecs (RFC 4568, RFC 8122, RFC 4145, RFC 4567, RFC 3605)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from focus.sdp.attributes import (
    SdesKeyParam,
    SdpCrypto,
    SdpDirection,
    SdpFingerprint,
    SdpFmtp,
    SdpKeyMgmt,
    SdpRtcp,
    SdpRtpmap,
    SdpSetup,
    SdpTcpConnection,
    cryptos,
    direction,
    fingerprints,
    fingerprints_match,
    fmtps,
    key_mgmts,
    ptime,
    rtcp,
    rtcp_mux,
    rtpmaps,
    setup,
    tcp_connection,
)
from focus.sdp.sdes import SDES_SUITES, generate_key_salt
from focus.sdp.session import SdpConnection, SdpLocalError, SdpRemoteError, SdpSession

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sdp"
HEADER = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
RFC4568_LINE = (
    "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 "
    "FEC_ORDER=FEC_SRTP"
)


def vector(name: str) -> SdpSession:
    return SdpSession.parse((VECTORS / name).read_bytes())


def media_with(*attributes: str, session_attrs: str = "") -> SdpSession:
    text = HEADER + session_attrs + "m=audio 4000 RTP/SAVP 0\r\n"
    return SdpSession.parse(text + "".join(f"a={a}\r\n" for a in attributes))


# --- rtpmap / fmtp / ptime / direction ----------------------------------------------------


def test_rtpmap_parse_and_str() -> None:
    assert SdpRtpmap.parse("96 opus/48000/2") == SdpRtpmap(96, "opus", 48000, 2)
    assert str(SdpRtpmap(101, "telephone-event", 8000)) == "101 telephone-event/8000"
    assert SdpRtpmap.parse("0 pcmu/8000").matches("PCMU", 8000)
    assert not SdpRtpmap.parse("96 opus/48000/2").matches("opus", 48000)


@pytest.mark.parametrize("value", ["128 x/8000", "0 PCMU", "0 PCMU/x", "x PCMU/8000", "0 P/1/2/3"])
def test_rtpmap_invalid(value: str) -> None:
    with pytest.raises(SdpRemoteError):
        SdpRtpmap.parse(value)


def test_rtpmaps_and_fmtps_of_linphone_offer() -> None:
    media = vector("linphone_offer.sdp").media[0]
    maps = rtpmaps(media)
    assert maps[100] == SdpRtpmap(100, "telephone-event", 8000)
    assert 0 not in maps  # static types need no rtpmap
    assert fmtps(media)["18"] == SdpFmtp("18", "annexb=yes")
    assert str(SdpFmtp.parse("101 0-15")) == "101 0-15"
    with pytest.raises(SdpRemoteError, match="duplicate rtpmap"):
        rtpmaps(media_with("rtpmap:0 PCMU/8000", "rtpmap:0 PCMA/8000").media[0])


def test_ptime() -> None:
    assert ptime(vector("baresip_offer.sdp").media[0]) == 20.0
    assert ptime(media_with("ptime:22.5").media[0]) == 22.5
    assert ptime(media_with().media[0]) is None
    for bad in ("ptime:0", "ptime:abc", "ptime:"):
        with pytest.raises(SdpRemoteError):
            ptime(media_with(bad).media[0])


def test_direction_rules() -> None:
    assert direction(media_with().media[0]) is SdpDirection.SENDRECV
    session = media_with(session_attrs="a=recvonly\r\n")
    assert direction(session.media[0], session) is SdpDirection.RECVONLY
    session = media_with("inactive", session_attrs="a=sendonly\r\n")
    assert direction(session.media[0], session) is SdpDirection.INACTIVE
    with pytest.raises(SdpRemoteError, match="more than one direction"):
        direction(media_with("sendonly", "recvonly").media[0])


# --- a=crypto (RFC 4568) -----------------------------------------------------------------


def test_crypto_rfc4568_example() -> None:
    crypto = SdpCrypto.parse(RFC4568_LINE)
    assert (crypto.tag, crypto.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    (key,) = crypto.keys
    assert len(key.key_salt) == 30
    assert key.key_salt == base64.b64decode("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
    assert key.lifetime == 2**20
    assert (key.mki_value, key.mki_length, key.mki) == (1, 4, b"\x00\x00\x00\x01")
    assert crypto.session_params == ("FEC_ORDER=FEC_SRTP",)
    assert str(crypto) == RFC4568_LINE


def test_crypto_multi_key_and_mki_without_lifetime() -> None:
    session = vector("rfc4568_multi.sdp")
    first, f8 = cryptos(session.media[0])
    assert first.tag == 1
    assert f8.suite == "F8_128_HMAC_SHA1_80"
    assert [k.mki_value for k in f8.keys] == [1, 2]
    assert str(f8) == session.media[0].get_attributes("crypto")[1].value
    (video,) = cryptos(session.media[1])
    assert video.keys[0].lifetime is None
    assert (video.keys[0].mki_value, video.keys[0].mki_length) == (1066, 4)


@pytest.mark.parametrize("suite", sorted(SDES_SUITES))
def test_inline_key_length_checked_per_suite(suite: str) -> None:
    info = SDES_SUITES[suite]
    key_salt = generate_key_salt(suite)
    assert len(key_salt) == info.key_length + info.salt_length
    line = f"3 {suite} inline:{base64.b64encode(key_salt).decode()}"
    crypto = SdpCrypto.parse(line)
    assert crypto.keys[0].key_salt == key_salt
    assert str(crypto) == line
    for wrong in (key_salt[:-1], key_salt + b"\x00"):
        with pytest.raises(SdpRemoteError, match=f"must be {info.key_salt_length} bytes"):
            SdpCrypto.parse(f"3 {suite} inline:{base64.b64encode(wrong).decode()}")


def test_suite_key_and_salt_lengths() -> None:
    lengths = {name: (s.key_length, s.salt_length) for name, s in SDES_SUITES.items()}
    assert lengths["AES_CM_128_HMAC_SHA1_80"] == (16, 14)
    assert lengths["AES_CM_128_HMAC_SHA1_32"] == (16, 14)
    assert lengths["AES_256_CM_HMAC_SHA1_80"] == (32, 14)
    assert lengths["AES_256_CM_HMAC_SHA1_32"] == (32, 14)
    assert lengths["AEAD_AES_128_GCM"] == (16, 12)
    assert lengths["AEAD_AES_256_GCM"] == (32, 12)
    with pytest.raises(SdpLocalError):
        generate_key_salt("NULL_NULL")


def test_inline_base64_padding() -> None:
    key_salt = bytes(range(28))  # AEAD_AES_128_GCM: 28 bytes -> 40 chars with "=="
    padded = base64.b64encode(key_salt).decode()
    assert padded.endswith("==") and len(padded) == 40
    for text in (padded, padded.rstrip("=")):
        crypto = SdpCrypto.parse(f"1 AEAD_AES_128_GCM inline:{text}")
        assert crypto.keys[0].key_salt == key_salt
    assert str(crypto).endswith(padded)
    thirty = base64.b64encode(bytes(30)).decode()
    assert len(thirty) == 40 and "=" not in thirty


def test_unknown_suite_keeps_key_without_length_check() -> None:
    crypto = SdpCrypto.parse("5 SEED_CTR_128_HMAC_SHA1_80 inline:QUJD")
    assert crypto.keys[0].key_salt == b"ABC"


def test_decimal_lifetime_and_other_key_method() -> None:
    key = SdesKeyParam.parse("inline:" + "A" * 40 + "|1048576", "AES_CM_128_HMAC_SHA1_80")
    assert key.lifetime == 2**20
    assert str(key).endswith("|2^20")  # powers of two are written as 2^n
    assert str(SdesKeyParam.parse("inline:" + "A" * 40 + "|1000", "x")).endswith("|1000")
    other = SdesKeyParam.parse("uri:https://kms.example/k1", "AES_CM_128_HMAC_SHA1_80")
    assert (other.method, other.info, str(other)) == (
        "uri",
        "https://kms.example/k1",
        "uri:https://kms.example/k1",
    )


KEY40 = "A" * 40


@pytest.mark.parametrize(
    "line",
    [
        "1 AES_CM_128_HMAC_SHA1_80",
        f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY40}",
        f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}",
        f"1 AES-CM inline:{KEY40}",
        "1 AES_CM_128_HMAC_SHA1_80 inline:",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" + "*" * 40,
        "1 AES_CM_128_HMAC_SHA1_80 inline:A",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|2^20|1:4|9",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|1:4|2^20",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|2^65",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|0",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|1:0",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|1:129",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}|256:1",
        f"1 AES_CM_128_HMAC_SHA1_80 {KEY40}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40} " + " ".join(["WSH=64"] * 17),
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40} KDR=\x7f",
    ],
)
def test_crypto_invalid(line: str) -> None:
    with pytest.raises(SdpRemoteError) as info:
        SdpCrypto.parse(line)
    assert info.value.status == 400
    assert KEY40[:16] not in str(info.value)  # the reason is logged: never the key


def test_crypto_tab_separated_and_duplicate_tags() -> None:
    assert SdpCrypto.parse(f"1\tAES_CM_128_HMAC_SHA1_80  inline:{KEY40}").tag == 1
    media = media_with(
        f"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY40}",
        f"crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY40}",
    ).media[0]
    with pytest.raises(SdpRemoteError, match="duplicate crypto tag"):
        cryptos(media)


def test_key_material_not_in_repr() -> None:
    crypto = SdpCrypto.parse(RFC4568_LINE)
    assert "WVNf" not in repr(crypto)
    assert repr(crypto.keys[0].key_salt) not in repr(crypto)


# --- a=fingerprint (RFC 8122) ------------------------------------------------------------


def test_fingerprint_rfc8122_example() -> None:
    session = vector("rfc8122_s3_4.sdp")
    sha256, sha1 = fingerprints(session.media[0], session)
    assert (sha256.hash_func, len(sha256.value), sha256.usable) == ("sha-256", 32, True)
    assert (sha1.hash_func, len(sha1.value)) == ("sha-1", 20)
    assert str(sha256) == session.media[0].get_attributes("fingerprint")[0].value
    assert sha256.value.startswith(bytes.fromhex("12DF3E5D"))


def test_fingerprint_match_and_weak_hashes() -> None:
    der = b"0\x82\x01\x0afake-der-certificate"
    fp = SdpFingerprint.from_certificate(der)
    assert SdpFingerprint.parse(str(fp)) == fp
    assert fingerprints_match(der, [fp]) and not fingerprints_match(der + b"x", [fp])
    md5 = SdpFingerprint.parse("md5 " + ":".join(f"{b:02X}" for b in hashlib.md5(der).digest()))
    assert not md5.usable
    assert not fingerprints_match(der, [md5])  # RFC 8122 §5: MUST NOT use MD5
    sha1 = SdpFingerprint("sha-1", hashlib.sha1(der).digest())
    assert not sha1.usable and not fingerprints_match(der, [sha1])  # below SHA-256
    assert not SdpFingerprint.parse("MD2 " + ":".join(["00"] * 16)).usable
    assert not SdpFingerprint.parse("x-hash 01:02").usable
    assert SdpFingerprint.parse("sha-1 " + ":".join(["ab"] * 20)).value == b"\xab" * 20


@pytest.mark.parametrize(
    "value",
    ["SHA-256 12:DF", "SHA-256", "SHA-256 1:2", "SHA-256 GG:00", "SHA-256 00::01", "SH@ 00"],
)
def test_fingerprint_invalid(value: str) -> None:
    with pytest.raises(SdpRemoteError):
        SdpFingerprint.parse(value)


def test_session_level_fingerprint_applies_without_media_level() -> None:
    fp = "SHA-1 " + ":".join(["4A"] * 20)
    session = media_with(session_attrs=f"a=fingerprint:{fp}\r\n")
    assert [str(f) for f in fingerprints(session.media[0], session)] == [fp]


# --- a=setup / a=connection (RFC 4145) ---------------------------------------------------


def test_setup_and_connection_from_rfc4145() -> None:
    offer, answer = vector("rfc4145_offer.sdp"), vector("rfc4145_answer.sdp")
    assert setup(offer.media[0], offer) is SdpSetup.PASSIVE
    assert setup(answer.media[0], answer) is SdpSetup.ACTIVE
    assert tcp_connection(offer.media[0], offer) is SdpTcpConnection.NEW
    plain = media_with()
    assert setup(plain.media[0], plain) is None and tcp_connection(plain.media[0]) is None
    session = media_with(session_attrs="a=setup:actpass\r\na=connection:existing\r\n")
    assert setup(session.media[0], session) is SdpSetup.ACTPASS
    assert tcp_connection(session.media[0], session) is SdpTcpConnection.EXISTING


@pytest.mark.parametrize("attribute", ["setup:both", "setup", "setup:"])
def test_setup_invalid(attribute: str) -> None:
    with pytest.raises(SdpRemoteError, match="invalid a=setup"):
        setup(media_with(attribute).media[0])


@pytest.mark.parametrize("attribute", ["connection:old", "connection"])
def test_connection_invalid(attribute: str) -> None:
    with pytest.raises(SdpRemoteError, match="invalid a=connection"):
        tcp_connection(media_with(attribute).media[0])


def test_setup_repeated() -> None:
    with pytest.raises(SdpRemoteError, match="repeated a=setup"):
        setup(media_with("setup:active", "setup:passive").media[0])


# --- a=key-mgmt (RFC 4567) ---------------------------------------------------------------


def test_key_mgmt_from_tshark_sample() -> None:
    session = vector("tshark_sip_keymgmt.sdp")
    (km,) = key_mgmts(session.media[0], session)
    assert km.protocol == "mikey"
    assert km.data[0] == 1  # MIKEY version 1 (RFC 3830 §6.1)
    assert str(km) == session.attributes[0].value
    assert "AQAF" not in repr(km)


def test_key_mgmt_forms() -> None:
    assert SdpKeyMgmt.parse(" mikey AQID").data == b"\x01\x02\x03"
    session = media_with("key-mgmt:mikey BAUG", session_attrs="a=key-mgmt:mikey AQID\r\n")
    assert [k.data for k in key_mgmts(session.media[0], session)] == [b"\x04\x05\x06"]
    for bad in ("mikey", "mikey !!!", "mi-key AQID", ""):
        with pytest.raises(SdpRemoteError):
            SdpKeyMgmt.parse(bad)


# --- a=rtcp / a=rtcp-mux -----------------------------------------------------------------


def test_rtcp_attribute() -> None:
    assert rtcp(vector("baresip_offer.sdp").media[0]) == SdpRtcp(20045)
    full = SdpRtcp.parse("53020 IN IP4 126.16.64.4")
    assert full == SdpRtcp(53020, SdpConnection("126.16.64.4"))
    assert str(full) == "53020 IN IP4 126.16.64.4"
    for bad in ("70000", "x", "5 IN IP4"):
        with pytest.raises(SdpRemoteError):
            SdpRtcp.parse(bad)
    assert rtcp_mux(media_with("rtcp-mux").media[0])
    assert not rtcp_mux(media_with().media[0])
