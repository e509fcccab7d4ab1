"""Fuzz BFCP (RFC 8855 §5): ``BfcpMessage.parse`` and ``BfcpStreamParser`` in splits.

Expected: :class:`BfcpRemoteError` (error codes 10, 12, 13). The stream
parser must cut the same frames however the bytes are split; every frame it
returns is then decoded too.
"""

from __future__ import annotations

import sys

import atheris
from harness import check_split_invariance, main

with atheris.instrument_imports(include=["mrf"]):
    from mrf.bfcp.errors import BfcpRemoteError
    from mrf.bfcp.message import BfcpMessage, BfcpStreamParser

EXPECTED = (BfcpRemoteError,)


def _decode(frame: bytes) -> bytes:
    try:
        BfcpMessage.parse(frame)
    except EXPECTED:
        pass
    return frame


def one_input(data: bytes) -> None:
    pattern, body = data[:4], data[4:]
    try:
        BfcpMessage.parse(body)
    except EXPECTED:
        pass
    check_split_invariance(BfcpStreamParser, body, pattern, EXPECTED, _decode)


def seeds() -> list[bytes]:
    return []


if __name__ == "__main__":
    main("bfcp", one_input, seeds, sys.argv)
