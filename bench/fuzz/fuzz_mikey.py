"""Fuzz MIKEY (RFC 3830 §6, RFC 6043 §6): ``MikeyMessage.parse`` then re-encode.

Expected: :class:`MikeyRemoteError`. A message that parsed must encode again.
"""

from __future__ import annotations

import sys

import atheris
from harness import main

with atheris.instrument_imports(include=["focus"]):
    from focus.mikey.buffer import MikeyRemoteError
    from focus.mikey.message import MikeyMessage

EXPECTED = (MikeyRemoteError,)


def one_input(data: bytes) -> None:
    try:
        message = MikeyMessage.parse(data)
    except EXPECTED:
        return
    bytes(message)


def seeds() -> list[bytes]:
    return []


if __name__ == "__main__":
    main("mikey", one_input, seeds, sys.argv)
