"""Admission decisions on the wire, with sipp as the caller (UDP and TCP).

Contract (interfaces.md "SIP behaviour users rely on"): 404 unknown conference,
403 anonymous (``Privacy: id`` RFC 3323 §4.2, or an anonymous URI) unless the
policy allows it, 403 not on the authorized list, 488 an offer without secure
audio, else 200 with RTP/SAVP and an RFC 4568 a=crypto answer: the offer's tag
and suite, a fresh key of the server's own per call.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from .conftest import ServerFactory, finish_server, start_server
from .harness import Artifacts, Conference, MrfServer
from .peers import SIPP_OFFER_CRYPTO, Sipp

pytestmark = pytest.mark.interop

ALICE = "sip:alice@example.com"
MALLORY = "sip:mallory@example.com"
ANONYMOUS = "sip:anonymous@anonymous.invalid"
SDES_80 = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + SIPP_OFFER_CRYPTO["1"][1] + "|2^20|1:4"
TRANSPORTS = ["u1", "t1"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MrfServer]:
    """One server for the module: conf1 (alice, chair), open1 (anonymous allowed)."""
    conferences = [
        Conference("conf1", (ALICE, "sip:chair@example.com,chair")),
        Conference("open1", (ALICE,), allow_anonymous=True),
    ]
    started = start_server(tmp_path_factory.mktemp("mrf-sipp"), conferences)
    yield started
    finish_server(started)


@pytest.fixture
def sipp_on(server: MrfServer, artifacts: Artifacts, sipp: Sipp) -> Sipp:
    """sipp, with the module server's log attached to a failing test's report."""
    artifacts.logs["server stderr"] = server.log
    return sipp


def _keys(server: MrfServer, conference: str, **overrides: str) -> dict[str, str]:
    keys = {
        "ruri": server.request_uri(conference),
        "from_uri": ALICE,
        "pai_uri": ALICE,
        "privacy": "none",
        "proto": "RTP/SAVP",
        "media_attr": SDES_80,
    }
    keys.update(overrides)
    return keys


def _refused(sipp: Sipp, server: MrfServer, transport: str, expected: str, **keys: str) -> None:
    conference = keys.pop("conference", "conf1")
    run = sipp.run(
        "uac_invite_refused.xml",
        f"{server.host}:{server.port}",
        keys=_keys(server, conference, **keys),
        transport=transport,
    )
    assert run.returncode == 0 and run.finals() == [expected], (
        f"expected a {expected} final response, got {run.finals()}\n{run.explain()}"
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_privacy_id_is_anonymous_and_refused(
    sipp_on: Sipp, server: MrfServer, transport: str
) -> None:
    # From and PAI name an authorized user, but Privacy: id asks to be anonymous.
    _refused(sipp_on, server, transport, "403", privacy="id")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_anonymous_uri_is_refused(sipp_on: Sipp, server: MrfServer, transport: str) -> None:
    _refused(sipp_on, server, transport, "403", from_uri=ANONYMOUS, pai_uri=ANONYMOUS)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unauthorized_from_is_refused(sipp_on: Sipp, server: MrfServer, transport: str) -> None:
    # The PAI names alice, but this source is no trusted proxy: only From counts.
    _refused(sipp_on, server, transport, "403", from_uri=MALLORY)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_conference_is_404(sipp_on: Sipp, server: MrfServer, transport: str) -> None:
    _refused(sipp_on, server, transport, "404", conference="nosuchconf")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_plain_rtp_offer_is_488(sipp_on: Sipp, server: MrfServer, transport: str) -> None:
    _refused(sipp_on, server, transport, "488", proto="RTP/AVP", media_attr="a=ptime:20")


def _check_answers(answers: list[dict[str, str]]) -> list[str]:
    """Each answer: the offer's tag and suite, a new 30-byte key; the keys."""
    keys = []
    offered = {key for _, key in SIPP_OFFER_CRYPTO.values()}
    for answer in answers:
        assert answer["tag"] in SIPP_OFFER_CRYPTO, f"answer tag not offered: {answer}"
        assert answer["suite"] == SIPP_OFFER_CRYPTO[answer["tag"]][0], f"suite mismatch: {answer}"
        assert answer["key"] not in offered, f"the answer echoes an offered key: {answer}"
        raw = base64.b64decode(answer["key"], validate=True)
        assert len(raw) == 30, f"AES_CM_128 master key+salt must be 30 bytes: {answer}"
        keys.append(answer["key"])
    return keys


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_authorized_caller_gets_sdes_answer(
    sipp_on: Sipp, server: MrfServer, transport: str
) -> None:
    before = len(server.media_summaries(ALICE))
    run = sipp_on.run(
        "uac_invite_accept.xml",
        f"{server.host}:{server.port}",
        keys={k: v for k, v in _keys(server, "conf1").items() if k not in ("proto", "media_attr")},
        transport=transport,
        calls=2,
        pause_ms=300,
    )
    assert run.returncode == 0, run.explain()
    answers = run.log_records("ANSWER ")
    assert len(answers) == 2, run.explain()
    keys = _check_answers(answers)
    assert keys[0] != keys[1], f"the same SRTP key was answered to two calls: {keys}"
    summaries = server.wait_media_summary(ALICE, count=before + 2)
    for row in summaries[-2:]:
        assert row["conference"] == server.conference_uri("conf1"), row
        assert row["kind"] == "audio" and row["key_mode"] == "sdes", row
        assert row["suite"] in {suite for suite, _ in SIPP_OFFER_CRYPTO.values()}, row
        assert int(row["packets_out"]) > 0, f"no comfort silence sent: {row}"
        assert int(row["packets_in"]) == 0, f"sipp sent no RTP: {row}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_anonymous_admitted_when_policy_allows(
    sipp_on: Sipp, server: MrfServer, transport: str
) -> None:
    run = sipp_on.run(
        "uac_invite_accept.xml",
        f"{server.host}:{server.port}",
        keys={
            "ruri": server.request_uri("open1"),
            "from_uri": ANONYMOUS,
            "pai_uri": ANONYMOUS,
            "privacy": "id",
        },
        transport=transport,
    )
    assert run.returncode == 0, run.explain()
    _check_answers(run.log_records("ANSWER "))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_options_answered(sipp_on: Sipp, server: MrfServer, transport: str) -> None:
    run = sipp_on.run(
        "uac_options.xml",
        f"{server.host}:{server.port}",
        keys={"ruri": f"sip:{server.host}:{server.port}", "from_uri": ALICE},
        transport=transport,
    )
    assert run.returncode == 0, run.explain()
    allow = " ".join(line for line in run.logs.splitlines() if line.startswith("ALLOW "))
    assert "INVITE" in allow and "BYE" in allow, f"Allow lacks INVITE/BYE: {allow!r}"


def test_sigint_stops_cleanly(mrf_server: ServerFactory) -> None:
    server = mrf_server([Conference("conf1", (ALICE,))])
    status = server.stop()
    assert status in (0, 130), f"mrf serve exited with {status} on SIGINT:\n{server.log_text()}"
