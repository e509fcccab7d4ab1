"""Fuzz MSRP framing (RFC 4975 §7, §9): ``parse_one`` and ``MsrpStreamParser`` in splits.

Expected: :class:`MsrpRemoteError` (400/413). Body pieces legitimately depend
on where the stream is cut, so only the error behaviour is compared.
"""

from __future__ import annotations

import sys

import atheris
from harness import feed_all, main, split_points

with atheris.instrument_imports(include=["mrf"]):
    from mrf.msrp.errors import MsrpRemoteError
    from mrf.msrp.parser import MsrpStreamParser, parse_one

EXPECTED = (MsrpRemoteError,)


def one_input(data: bytes) -> None:
    pattern, body = data[:4], data[4:]
    try:
        bytes(parse_one(body))
    except EXPECTED:
        pass
    for message in feed_all(
        lambda: MsrpStreamParser(piece_size=64), split_points(body, pattern), EXPECTED
    )[0]:
        bytes(message)


def seeds() -> list[bytes]:
    return [
        b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
        b"From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\nMessage-ID: 87652491\r\n"
        b"Byte-Range: 1-25/25\r\nContent-Type: text/plain\r\n\r\nHey Bob, are you there?\r\n"
        b"-------a786hjs2$\r\n"
    ]


if __name__ == "__main__":
    main("msrp", one_input, seeds, sys.argv)
