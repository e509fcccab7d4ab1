"""DTLS-SRTP in SDP (RFC 5763 §5, RFC 5764 §8, RFC 8122 §5, RFC 4145 §4)."""

from __future__ import annotations

import hashlib

import pytest

from focus.sdp.attributes import SdpFingerprint, SdpSetup
from focus.sdp.dtls import DtlsRejected, dtls_answer_attributes, is_dtls, plan_dtls
from focus.sdp.session import SdpSession

FP_A = SdpFingerprint("sha-256", hashlib.sha256(b"certificate A").digest())
FP_B = SdpFingerprint("sha-256", hashlib.sha256(b"certificate B").digest())
MD5 = SdpFingerprint("md5", hashlib.md5(b"certificate A").digest())


def offer(media: str = "", session: str = "", proto: str = "UDP/TLS/RTP/SAVP") -> SdpSession:
    return SdpSession.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        f"{session}m=audio 5000 {proto} 0\r\n{media}"
    )


def plan_of(sdp: SdpSession, previous=None):  # type: ignore[no-untyped-def]
    return plan_dtls(sdp, sdp.media[0], previous)


@pytest.mark.parametrize(
    ("offered", "ours"),
    [
        ("a=setup:actpass\r\n", SdpSetup.ACTIVE),  # RFC 5763 §5: the answerer SHOULD be active
        ("a=setup:passive\r\n", SdpSetup.ACTIVE),
        ("a=setup:active\r\n", SdpSetup.PASSIVE),
        ("", SdpSetup.PASSIVE),  # RFC 4145 §4: absent means active
    ],
)
def test_setup_role_table(offered: str, ours: SdpSetup) -> None:
    plan = plan_of(offer(f"{offered}a=fingerprint:{FP_A}\r\n"))
    assert plan.setup is ours and plan.client is (ours is SdpSetup.ACTIVE)
    assert plan.remote_fingerprints == (FP_A,)


def test_protos() -> None:
    assert is_dtls(offer(proto="UDP/TLS/RTP/SAVPF").media[0])
    assert is_dtls(offer().media[0])
    assert not is_dtls(offer(proto="RTP/SAVP").media[0])


def test_fingerprint_is_required() -> None:
    with pytest.raises(DtlsRejected, match="fingerprint"):
        plan_of(offer("a=setup:actpass\r\n"))


def test_only_unusable_hashes_are_refused_and_usable_ones_kept() -> None:
    with pytest.raises(DtlsRejected, match="fingerprint"):
        plan_of(offer(f"a=setup:actpass\r\na=fingerprint:{MD5}\r\n"))
    plan = plan_of(offer(f"a=fingerprint:{MD5}\r\na=fingerprint:{FP_B}\r\n"))
    assert plan.remote_fingerprints == (FP_B,)


def test_malformed_fingerprint_or_setup_is_rejected_not_crashing() -> None:
    with pytest.raises(DtlsRejected):
        plan_of(offer("a=fingerprint:sha-256 ZZ:00\r\n"))
    with pytest.raises(DtlsRejected):
        plan_of(offer(f"a=setup:sideways\r\na=fingerprint:{FP_A}\r\n"))


def test_holdconn_is_refused() -> None:
    with pytest.raises(DtlsRejected, match="holdconn"):
        plan_of(offer(f"a=setup:holdconn\r\na=fingerprint:{FP_A}\r\n"))


def test_session_level_fingerprint_and_media_level_override() -> None:
    session = f"a=fingerprint:{FP_A}\r\na=setup:active\r\n"
    plan = plan_of(offer("", session))
    assert plan.remote_fingerprints == (FP_A,) and plan.setup is SdpSetup.PASSIVE
    plan = plan_of(offer(f"a=fingerprint:{FP_B}\r\na=setup:passive\r\n", session))
    assert plan.remote_fingerprints == (FP_B,) and plan.setup is SdpSetup.ACTIVE


def test_reoffer_keeps_the_role_while_fingerprints_stay() -> None:
    first = plan_of(offer(f"a=setup:active\r\na=fingerprint:{FP_A}\r\n"))
    assert first.setup is SdpSetup.PASSIVE
    again = plan_of(offer(f"a=setup:actpass\r\na=fingerprint:{FP_A}\r\n"), first)
    assert again.setup is SdpSetup.PASSIVE and again == first  # same association
    new = plan_of(offer(f"a=setup:actpass\r\na=fingerprint:{FP_B}\r\n"), first)
    assert new.setup is SdpSetup.ACTIVE and new.remote_fingerprints == (FP_B,)


def test_answer_attributes() -> None:
    plan = plan_of(offer(f"a=setup:actpass\r\na=fingerprint:{FP_A}\r\n"))
    attributes = dtls_answer_attributes(plan, FP_B)
    assert [(a.name, a.value) for a in attributes] == [
        ("setup", "active"),
        ("fingerprint", str(FP_B)),
    ]
    assert SdpFingerprint.parse(str(FP_B)) == FP_B
