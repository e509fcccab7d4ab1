"""Fuzz CMS ``AuthEnvelopedData`` decryption (RFC 5083, RFC 5084, RFC 3394) with a fixed KEK.

Expected: :class:`SmimeRemoteError`. Seeds are genuine messages under the
fixed KEK (AES-128-GCM and AES-256-GCM content), so mutations reach the key
unwrap and the GCM tag check, not only the DER decoder.
"""

from __future__ import annotations

import sys

import atheris
from harness import main

with atheris.instrument_imports(include=["notify"]):
    from notify.smime import (
        SmimeContentAlgorithm,
        SmimeRemoteError,
        decrypt_auth_enveloped,
        encrypt_auth_enveloped,
    )

EXPECTED = (SmimeRemoteError,)
KEK = bytes(range(16))


def one_input(data: bytes) -> None:
    try:
        decrypt_auth_enveloped(data, KEK)
    except EXPECTED:
        pass


def seeds() -> list[bytes]:
    return [
        encrypt_auth_enveloped(b"<conference-info/>", KEK, b"\x01\x02\x03\x04", algorithm=algorithm)
        for algorithm in SmimeContentAlgorithm
    ]


if __name__ == "__main__":
    main("cms", one_input, seeds, sys.argv)
