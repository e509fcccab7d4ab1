"""Property tests: arbitrary input parses or raises SdpRemoteError, nothing else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focus.sdp.attributes import (
    SdpCrypto,
    SdpFingerprint,
    SdpKeyMgmt,
    SdpRtcp,
    SdpRtpmap,
    cryptos,
    direction,
    fingerprints,
    fmtps,
    key_mgmts,
    ptime,
    rtcp,
    rtpmaps,
    setup,
    tcp_connection,
)
from focus.sdp.offer_answer import SdpFocusPolicy, build_answer, plan_answer
from focus.sdp.session import SdpRemoteError, SdpSession

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sdp"
SEED_LINES = sorted(
    {
        line
        for path in VECTORS.glob("*.sdp")
        for line in path.read_bytes().decode("utf-8").split("\r\n")
        if line
    }
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_remote_error(data: str | bytes) -> SdpSession | None:
    try:
        session = SdpSession.parse(data)
    except SdpRemoteError as exc:
        assert exc.status == 400
        return None
    assert SdpSession.parse(str(session)) == session  # what we parse, we re-serialise
    return session


def exercise(session: SdpSession) -> None:
    """Every accessor and the whole offer/answer path on a parsed session."""
    for media in session.media:
        for accessor in (rtpmaps, fmtps, cryptos, ptime, rtcp):
            try:
                accessor(media)
            except SdpRemoteError:
                pass
        for both in (direction, fingerprints, setup, tcp_connection, key_mgmts):
            try:
                both(media, session)
            except SdpRemoteError:
                pass
    for policy in (SdpFocusPolicy(), SdpFocusPolicy(require_security=False)):
        try:
            plan = plan_answer(session, policy)
        except SdpRemoteError as exc:
            assert exc.status in (400, 488)
            continue
        ports = {s.index: 40000 for s in plan.accepted}
        answer = build_answer(
            session, plan, local_host="192.0.2.1", ports=ports, session_id=1, session_version=1
        )
        assert SdpSession.parse(str(answer)) == answer


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_or_remote_error(data)


@FUZZ
@given(st.text(max_size=2048))
def test_arbitrary_text(data: str) -> None:
    parse_or_remote_error(data)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(SEED_LINES),
            st.builds(
                lambda kind, value: f"{kind}={value}",
                st.sampled_from("vosicbtrzkam"),
                st.text(
                    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=60
                ),
            ),
        ),
        max_size=40,
    ),
    st.sampled_from(["\r\n", "\n"]),
)
def test_mutated_vector_lines(lines: list[str], eol: str) -> None:
    session = parse_or_remote_error(eol.join(["v=0", "o=- 1 1 IN IP4 192.0.2.1", *lines]) + eol)
    if session is not None:
        exercise(session)


POSITIVE = sorted(p for p in VECTORS.glob("*.sdp") if not p.name.startswith("neg_"))
MUTATIONS = st.tuples(
    st.sampled_from(["drop", "copy", "replace", "corrupt"]),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(SEED_LINES),
    st.text(alphabet=" :/=0129aAxZ|^;\t", max_size=3),
)


def mutate(lines: list[str], mutation: tuple[str, int, str, str]) -> None:
    action, index, seed, noise = mutation
    index %= len(lines)
    if action == "drop" and len(lines) > 1:
        del lines[index]
    elif action == "copy":
        lines.insert(index, lines[index])
    elif action == "replace":
        lines[index] = seed
    elif action == "corrupt":
        at = len(lines[index]) // 2 + index % 3
        lines[index] = lines[index][:at] + noise + lines[index][at + 1 :]


@FUZZ
@given(st.sampled_from(POSITIVE), st.lists(MUTATIONS, max_size=6))
def test_mutated_vectors(path: Path, mutations: list[tuple[str, int, str, str]]) -> None:
    lines = path.read_bytes().decode("utf-8").split("\r\n")[:-1]
    for mutation in mutations:
        mutate(lines, mutation)
    session = parse_or_remote_error("\r\n".join(lines) + "\r\n")
    if session is not None:
        exercise(session)


@FUZZ
@given(st.text(max_size=300))
def test_attribute_codecs(value: str) -> None:
    for codec in (SdpCrypto, SdpFingerprint, SdpKeyMgmt, SdpRtcp, SdpRtpmap):
        try:
            parsed = codec.parse(value)
        except SdpRemoteError:
            continue
        assert codec.parse(str(parsed)) == parsed


@FUZZ
@given(
    st.sampled_from(
        ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM", "AES_256_CM_HMAC_SHA1_32", "X_SUITE"]
    ),
    st.text(alphabet="AQUIBCDwxyz019+/=|^:;2 ", max_size=120),
)
def test_crypto_lines_near_the_grammar(suite: str, tail: str) -> None:
    try:
        crypto = SdpCrypto.parse(f"1 {suite} inline:{tail}")
    except SdpRemoteError:
        return
    assert SdpCrypto.parse(str(crypto)) == crypto
