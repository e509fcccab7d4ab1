"""tshark's ``mikey`` dissector decodes the RFC 3830 parts of our messages.

tshark 4.0 knows RFC 3830 payloads and IDR but not RFC 6043: it shows data types
11-18 as "Unknown", does not know the GENERIC-ID map (type 2) and stops there,
and cannot parse TR/RANDR/TP/TICKET.  So the full RFC 3830 check runs on a PSK
I_MESSAGE built by our codec (HDR with SRTP-ID map, T, RAND, IDR, SP, KEMAC),
and on our TRANSFER_INIT only the HDR fields before the map are checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.pcap import tshark_fields

pytestmark = pytest.mark.interop

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "mikey"


def decode(name: str, *fields: str) -> list[str]:
    """tshark's ``mikey`` fields of a vector sent as one UDP datagram to port 2269."""
    message = (VECTORS / f"{name}.bin").read_bytes()
    options = ("-E", "occurrence=a", "-E", "aggregator=,")
    return tshark_fields(message, "mikey", fields, port=2269, options=options)


def test_rfc3830_psk_message_decodes_without_errors() -> None:
    fields = decode(
        "psk_i_message", "_ws.malformed", "_ws.expert", "mikey.version", "mikey.type",
        "mikey.csb_id", "mikey.cs_id_map_type", "mikey.next_payload", "mikey.id.role",
        "mikey.id.data", "mikey.sp.proto_type", "mikey.kemac.encr_alg", "mikey.kemac.mac_alg",
        "mikey.rand.len", "mikey.sp.encr_alg",
    )  # fmt: skip
    malformed, expert, version, data_type, csb, map_type, nexts, role, uri = fields[:9]
    assert (malformed, expert) == ("", "")
    assert (version, data_type, csb, map_type) == ("1", "0", "0x12345678", "0")
    assert nexts == "5,11,14,10,1,0"  # T, RAND, IDR, SP, KEMAC, last
    assert (role, uri) == ("1", "sip:alice@127.0.0.1")
    assert fields[9:] == ["0", "1", "1", "16", "1"]  # SRTP, AES-CM, HMAC-SHA-1, 16, AES-CM


def test_transfer_init_header_decodes() -> None:
    fields = decode("transfer_init", "mikey.version", "mikey.type", "mikey.csb_id", "mikey.v")
    assert fields[:3] == ["1", "14", "0x0a0b0c0d"]
