"""Fuzz the SIP parsers: ``parse_message`` and ``SipStreamParser`` in random splits.

Expected: :class:`SipRemoteError` (RFC 3261 §21.4: 400/505/513). Also checks
that the stream parser frames the same messages however the bytes are split.
"""

from __future__ import annotations

import sys

import atheris
from harness import check_split_invariance, main

with atheris.instrument_imports(include=["focus"]):
    from focus.sip.headers import SipRemoteError
    from focus.sip.message import SipStreamParser, parse_message

EXPECTED = (SipRemoteError,)


def one_input(data: bytes) -> None:
    pattern, body = data[:4], data[4:]
    try:
        message = parse_message(body)
        bytes(message)
    except EXPECTED:
        pass
    check_split_invariance(SipStreamParser, body, pattern, EXPECTED, bytes)


def seeds() -> list[bytes]:
    return [
        b"OPTIONS sip:focus@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:focus@example.com>\r\nCall-ID: c\r\n"
        b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ]


if __name__ == "__main__":
    main("sip", one_input, seeds, sys.argv)
