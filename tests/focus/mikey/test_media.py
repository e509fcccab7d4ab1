"""Crypto sessions ↔ m-lines and SRTP policies ↔ suites (focus.mikey.media)."""

from __future__ import annotations

import pytest

from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode, MikeyProtTypes, MikeySrtpParam
from focus.mikey.media import (
    MikeyStreamKeys,
    assign_crypto_sessions,
    responder_sessions,
    srtp_policy,
    srtp_suite,
)
from focus.mikey.message import MikeyGenericIdEntry
from focus.mikey.payload import MikeySecurityPolicy

TYPES = MikeyProtTypes()
SUITES = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM",
          "AEAD_AES_256_GCM"]  # fmt: skip


@pytest.mark.parametrize("suite", SUITES)
def test_srtp_policy_round_trips_to_its_suite(suite: str) -> None:
    assert srtp_suite(srtp_policy(3, suite)) == suite


def test_absent_parameters_are_the_rfc3830_defaults() -> None:
    assert srtp_suite(MikeySecurityPolicy(0, 0)) == "AES_CM_128_HMAC_SHA1_80"


@pytest.mark.parametrize(
    "params",
    [
        ((MikeySrtpParam.SRTP_ENCRYPTION, b"\x00"),),  # encryption off
        ((MikeySrtpParam.SRTP_AUTHENTICATION, b"\x00"),),
        ((MikeySrtpParam.KEY_DERIVATION_RATE, b"\x10"),),
        ((MikeySrtpParam.ENCR_ALG, b"\x02"),),  # AES-F8
        ((MikeySrtpParam.ENCR_ALG, b"\x06"),),  # AES-GCM without the 12-byte salt
        ((MikeySrtpParam.SESSION_ENCR_KEY_LENGTH, b"\x20"),),  # AES-256-CM
    ],
)
def test_unsupported_srtp_policies_are_invalid_sppar(params: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises(MikeyRemoteError) as info:
        srtp_suite(MikeySecurityPolicy(0, 0, params))
    assert info.value.code == MikeyErrorCode.INVALID_SPPAR


def test_assignment_pairs_srtp_per_audio_line_and_tls_per_stream() -> None:
    entries = [MikeyGenericIdEntry(1, 0), MikeyGenericIdEntry(2, 0), MikeyGenericIdEntry(3, 241),
               MikeyGenericIdEntry(4, 242)]  # fmt: skip
    lines = [(0, "RTP/SAVP"), (1, "TCP/TLS/MSRP"), (2, "TCP/TLS/BFCP")]
    assert assign_crypto_sessions(entries, lines, TYPES) == [
        MikeyStreamKeys(0, (1, 2)),
        MikeyStreamKeys(1, tls=3),
    ]
    one = assign_crypto_sessions(entries[:1], [(0, "RTP/SAVP")], TYPES)
    assert one == [MikeyStreamKeys(0, (1,))]


def test_assignment_refuses_sessions_without_lines() -> None:
    with pytest.raises(MikeyRemoteError):
        assign_crypto_sessions([MikeyGenericIdEntry(1, 0)] * 3, [(0, "RTP/SAVP")], TYPES)
    with pytest.raises(MikeyRemoteError):
        assign_crypto_sessions([MikeyGenericIdEntry(1, 241)], [(0, "RTP/SAVP")], TYPES)


def test_responder_sessions_fill_policy_session_data_and_spi() -> None:
    offered = [srtp_policy(0, "AEAD_AES_128_GCM")]
    entries = [MikeyGenericIdEntry(1, 0, (0,), bytes.fromhex("0000abcd")),
               MikeyGenericIdEntry(2, 0, ()), MikeyGenericIdEntry(3, 241, ())]  # fmt: skip
    sessions, ours = responder_sessions(entries, offered, TYPES, {2: 0x12345678})
    assert [s.policy_nos for s in sessions] == [(0,), (1,), (2,)]  # #P = 1 each
    assert [p.prot_type for p in ours] == [0, 241]
    assert srtp_suite(ours[0]) == "AES_CM_128_HMAC_SHA1_80"
    assert sessions[0].session_data == bytes.fromhex("0000abcd")  # echoed
    assert sessions[1].session_data == bytes.fromhex("12345678")  # our SSRC
    assert all(len(s.spi) == 4 for s in sessions)


def test_responder_refuses_when_no_offered_policy_is_acceptable() -> None:
    bad = MikeySecurityPolicy(0, 0, ((MikeySrtpParam.ENCR_ALG, b"\x02"),))
    with pytest.raises(MikeyRemoteError) as info:
        responder_sessions([MikeyGenericIdEntry(1, 0, (0,))], [bad], TYPES, {})
    assert info.value.code == MikeyErrorCode.INVALID_SP
