"""Fuzz RTP and RTCP decoding (RFC 3550 §5.1, §6): ``RtpPacket.parse``, ``parse_rtcp``.

Expected: :class:`RtpRemoteError`. A packet that parsed must encode again.
"""

from __future__ import annotations

import sys

import atheris
from harness import main

with atheris.instrument_imports(include=["mrf"]):
    from mrf.rtp.packet import RtpPacket, RtpRemoteError, is_rtcp, parse_rtcp

EXPECTED = (RtpRemoteError,)


def one_input(data: bytes) -> None:
    is_rtcp(data)
    try:
        bytes(RtpPacket.parse(data))
    except EXPECTED:
        pass
    try:
        for packet in parse_rtcp(data):
            bytes(packet)
    except EXPECTED:
        pass


def seeds() -> list[bytes]:
    rtp = bytes(
        RtpPacket(
            0,
            1,
            160,
            0x1234,
            b"\xff" * 160,
            csrc=(7,),
            extension_profile=0xBEDE,
            extension=b"\x10\x01\x00\x00",
        )
    )
    sr = bytes.fromhex("80c80006000012340000000100000002000000a0000000010000000a")
    rr_sdes_bye = bytes.fromhex(
        "81c9000700001234000056780000000000000001000000000000000081ca00030000123401036162630000"[
            :-2
        ]
        + "00"
        + "81cb000100001234"
    )
    return [rtp, sr, rr_sdes_bye]


if __name__ == "__main__":
    main("rtp", one_input, seeds, sys.argv)
