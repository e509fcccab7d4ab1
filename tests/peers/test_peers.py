"""The peers' own plumbing: template rendering and the pcap files tshark reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.peers import render
from tests.peers.pcap import ipv4_packet, tshark_fields, write_pcap


def test_render_fills_every_placeholder(tmp_path: Path) -> None:
    out = render("kamailio/tls.cfg.in", tmp_path / "tls.cfg", KEY="/k.pem", CERT="/c.pem")
    text = out.read_text()
    assert "private_key = /k.pem" in text and "certificate = /c.pem" in text
    assert "@" not in text


def test_render_refuses_a_missing_or_an_unused_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no value for \['CERT'\]"):
        render("kamailio/tls.cfg.in", tmp_path / "a", KEY="k")
    with pytest.raises(ValueError, match=r"no placeholder for \['PORT'\]"):
        render("kamailio/tls.cfg.in", tmp_path / "b", KEY="k", CERT="c", PORT=1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.interop
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_tshark_accepts_our_packets_with_checksums_checked(tmp_path: Path, transport: str) -> None:
    message = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    packet = ipv4_packet(transport, 50000, 5060, message)
    corrupted = packet[:-1] + bytes([packet[-1] ^ 1])  # the payload no longer fits the checksum
    pcap = write_pcap(tmp_path / "p.pcap", [packet, corrupted])
    argv = ["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE",
            "-o", f"{transport}.check_checksum:TRUE", "-T", "fields",
            "-e", "ip.checksum.status", "-e", f"{transport}.checksum.status"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    statuses = [line.split("\t") for line in result.stdout.splitlines()]
    # Wireshark's checksum status: 0 bad, 1 good
    assert statuses == [["1", "1"], ["1", "0"]], result.stdout
    method = tshark_fields(message, "sip", ["sip.Method"], transport=transport, port=5060)
    assert method == ["OPTIONS"]
