"""tshark's ``mikey`` dissector decodes the RFC 3830 parts of our messages.

tshark 4.0 knows RFC 3830 payloads and IDR but not RFC 6043: it shows data types
11-18 as "Unknown", does not know the GENERIC-ID map (type 2) and stops there,
and cannot parse TR/RANDR/TP/TICKET.  So the full RFC 3830 check runs on a PSK
I_MESSAGE built by our codec (HDR with SRTP-ID map, T, RAND, IDR, SP, KEMAC),
and on our TRANSFER_INIT only the HDR fields before the map are checked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[3]
DECODE = ROOT.parent / "shared" / "oracles" / "tshark" / "decode.sh"
VECTORS = ROOT / "tests" / "vectors" / "mikey"


def decode(name: str, *fields: str) -> list[str]:
    if shutil.which("tshark") is None or shutil.which("text2pcap") is None:
        pytest.fail("tshark is missing (a Debian test peer, see the Makefile PEERS)")
    args = ["bash", str(DECODE), str(VECTORS / f"{name}.bin"), "mikey", "udp", "2269"]
    args += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for field in fields:
        args += ["-e", field]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.rstrip("\n").splitlines()[-1].split("\t")


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
