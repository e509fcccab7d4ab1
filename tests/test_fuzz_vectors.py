"""Regression vectors found by the atheris harnesses in ``bench/fuzz/``.

Every ``tests/vectors/<proto>/fuzz-<sha1>.bin`` is an input that once crashed
a parser (an exception other than the protocol's documented error). Each must
now raise exactly that protocol error, never anything else; the
table maps each vectors directory to the harness's parser and error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.message import MikeyMessage
from focus.sdp.session import SdpRemoteError, SdpSession
from focus.sip.headers import SipRemoteError
from focus.sip.message import parse_message
from mrf.bfcp.errors import BfcpRemoteError
from mrf.bfcp.message import BfcpMessage
from mrf.msrp.errors import MsrpRemoteError
from mrf.msrp.parser import parse_one
from mrf.rtp.packet import RtpPacket, RtpRemoteError, parse_rtcp
from notify.conference_info import ConferenceInfoError, parse_conference_info
from notify.smime import SmimeRemoteError, decrypt_auth_enveloped

VECTORS = Path(__file__).parent / "vectors"
FUZZ_KEK = bytes(range(16))  # the fixed KEK of bench/fuzz/fuzz_cms.py


def _rtp_and_rtcp(data: bytes) -> None:
    """What ``fuzz_rtp.py`` does: decode (and re-encode) as RTCP, then as RTP."""
    for packet in parse_rtcp(data):
        bytes(packet)
    bytes(RtpPacket.parse(data))


PARSERS: dict[str, tuple[Callable[[bytes], object], type[Exception]]] = {
    "sip": (parse_message, SipRemoteError),
    "sdp": (SdpSession.parse, SdpRemoteError),
    "msrp": (parse_one, MsrpRemoteError),
    "bfcp": (BfcpMessage.parse, BfcpRemoteError),
    "mikey": (MikeyMessage.parse, MikeyRemoteError),
    "cms": (lambda data: decrypt_auth_enveloped(data, FUZZ_KEK), SmimeRemoteError),
    "conference_info": (parse_conference_info, ConferenceInfoError),
    "rtp": (_rtp_and_rtcp, RtpRemoteError),
}

FUZZ_VECTORS = sorted(VECTORS.glob("*/fuzz-*.bin"))


def test_every_fuzz_vector_directory_has_a_parser() -> None:
    assert {p.parent.name for p in FUZZ_VECTORS} <= set(PARSERS)


@pytest.mark.parametrize("path", FUZZ_VECTORS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_vector_raises_only_the_protocol_error(path: Path) -> None:
    parse, error = PARSERS[path.parent.name]
    with pytest.raises(error):
        parse(path.read_bytes())


def test_unknown_xml_encoding_is_a_conference_info_error() -> None:
    data = b'<?xml version="1.0" encoding="UTF-6"?><conference-info version="1"/>'
    with pytest.raises(ConferenceInfoError, match="unknown encoding"):
        parse_conference_info(data)


@pytest.mark.parametrize("count", ["\u00b2", "9" * 5000])
def test_odd_user_count_is_ignored(count: str) -> None:
    data = (
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="e" version="1">'
        f"<conference-state><user-count>{count}</user-count></conference-state></conference-info>"
    ).encode()
    assert parse_conference_info(data).user_count is None


def test_rtcp_padding_not_a_multiple_of_four_is_refused() -> None:
    """RFC 3550 §6.4.1: the padding count "will be a multiple of four"; 3 octets
    used to leave an unaligned body that could not be re-encoded."""
    data = bytes.fromhex("a0c90002000000050000ee03")
    with pytest.raises(RtpRemoteError, match="padding"):
        parse_rtcp(data)
