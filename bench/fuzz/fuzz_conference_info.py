"""Fuzz the conference-info reader (RFC 4575 §5): ``parse_conference_info``.

Expected: :class:`ConferenceInfoError` (the module's documented error).
"""

from __future__ import annotations

import sys

import atheris
from harness import main

with atheris.instrument_imports(include=["notify"]):
    from notify.conference_info import ConferenceInfoError, parse_conference_info

EXPECTED = (ConferenceInfoError,)


def one_input(data: bytes) -> None:
    try:
        parse_conference_info(data)
    except EXPECTED:
        pass


def seeds() -> list[bytes]:
    return [
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        b'entity="sip:conf@example.com" state="full" version="1">'
        b"<conference-state><user-count>1</user-count></conference-state>"
        b'<users><user entity="sip:alice@example.com" state="full">'
        b'<endpoint entity="sip:alice@192.0.2.1"><status>connected</status>'
        b'<media id="1"><type>audio</type><status>sendrecv</status></media></endpoint>'
        b"</user></users></conference-info>",
        b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="e" '
        b'state="partial" version="2"><users><user entity="u" state="deleted"/></users>'
        b"</conference-info>",
    ]


if __name__ == "__main__":
    main("conference_info", one_input, seeds, sys.argv)
