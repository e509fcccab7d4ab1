"""Fuzz SDP: ``SdpSession.parse`` then ``plan_answer`` on what parsed (RFC 8866, RFC 3264).

Expected: :class:`SdpRemoteError` (400 malformed, 488 nothing acceptable).
"""

from __future__ import annotations

import sys

import atheris
from harness import main

with atheris.instrument_imports(include=["focus"]):
    from focus.sdp.offer_answer import plan_answer
    from focus.sdp.session import SdpRemoteError, SdpSession

EXPECTED = (SdpRemoteError,)


def one_input(data: bytes) -> None:
    try:
        offer = SdpSession.parse(data)
        str(offer)
        plan_answer(offer)
    except EXPECTED:
        pass


def seeds() -> list[bytes]:
    return [
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    ]


if __name__ == "__main__":
    main("sdp", one_input, seeds, sys.argv)
