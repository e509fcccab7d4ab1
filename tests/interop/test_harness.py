"""The harness's own parsers and probes (no third-party peer involved)."""

from __future__ import annotations

import re
import socket
import threading

from .harness import parse_media_summaries, sip_options

LINE = (
    "2026-11-27 00:50:50,486 INFO focus.call: media-summary conference=sip:conf1@127.0.0.1 "
    "participant=sip:alice@example.com stream=0 kind=audio key_mode=sdes "
    "suite=AES_CM_128_HMAC_SHA1_80 packets_in=7 packets_out=16 auth_failures=0 replays=0"
)


def test_media_summary_lines_are_parsed_after_a_log_prefix() -> None:
    rows = parse_media_summaries(f"noise\n{LINE}\nmedia-summary-ish but not\n")
    assert rows == [
        {
            "conference": "sip:conf1@127.0.0.1",
            "participant": "sip:alice@example.com",
            "stream": "0",
            "kind": "audio",
            "key_mode": "sdes",
            "suite": "AES_CM_128_HMAC_SHA1_80",
            "packets_in": "7",
            "packets_out": "16",
            "auth_failures": "0",
            "replays": "0",
        }
    ]


def _responder(sock: socket.socket, replies: list[bytes]) -> None:
    data, addr = sock.recvfrom(65535)
    branch = re.search(rb"branch=([^;\r\n]+)", data)
    assert branch is not None
    for reply in replies:
        sock.sendto(reply.replace(b"BRANCH", branch[1]), addr)


def _probe_with(replies: list[bytes]) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        thread = threading.Thread(target=_responder, args=(sock, replies))
        thread.start()
        status = sip_options("127.0.0.1", sock.getsockname()[1], timeout=1.0)
        thread.join(2)
    return status


def test_options_probe_takes_the_final_response_of_its_own_transaction() -> None:
    replies = [
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKother\r\n\r\n",  # not ours
        b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP x;branch=BRANCH\r\n\r\n",  # provisional
        b"SIP/2.0 483 Too Many Hops\r\nVia: SIP/2.0/UDP x;branch=BRANCH\r\n\r\n",
    ]
    assert _probe_with(replies) == 483


def test_options_probe_without_answer_is_none() -> None:
    assert _probe_with([b"garbage"]) is None
