"""The third-party test peers' configurations, scenarios and drivers (see README.md here).

Everything a test needs to run a peer lives in this folder: kamailio, baresip
and linphone configuration templates, the sipp scenarios, the libre BFCP codec
driver (C), the TLS-PSK client and the pcap helpers for tshark.  Templates
carry ``@NAME@`` placeholders that :func:`render` fills in per run (ports,
addresses, certificate paths); nothing here is written to at test time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrf.tls import ensure_certificate

PEERS = Path(__file__).resolve().parent
SIPP_DIR = PEERS / "sipp"
# Where Debian's baresip-core installs its modules.
BARESIP_MODULES = "/usr/lib/baresip/modules"

_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def render(template: str, destination: Path, **values: object) -> Path:
    """Write ``PEERS/template`` to ``destination`` with every ``@NAME@`` replaced.

    A placeholder without a value, or a value no placeholder uses, is a
    ``ValueError``: a template and its caller cannot drift apart silently.
    """
    text = (PEERS / template).read_text()
    names = set(_PLACEHOLDER.findall(text))
    missing, unused = names - values.keys(), values.keys() - names
    if missing or unused:
        raise ValueError(
            f"{template}: no value for {sorted(missing)}, no placeholder for {sorted(unused)}"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text))
    return destination


@dataclass(frozen=True)
class Certificate:
    """A throw-away self-signed loopback certificate (SANs 127.0.0.1, ::1, localhost)."""

    key: Path
    cert: Path
    combined: Path  # key then certificate in one PEM file, as baresip wants it


def write_certificate(directory: Path) -> Certificate:
    """Create (or keep) a certificate under ``directory`` for a peer to present.

    Made by the server's own :func:`mrf.tls.ensure_certificate`: the peers only
    need some certificate, and the tests pin it by fingerprint where it matters.
    """
    cert, key = ensure_certificate(directory)
    combined = directory / "combined.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    return Certificate(key, cert, combined)


def make_conf(out: Path) -> Path:
    """A certificate under ``out``/certs (:func:`write_certificate`), ``out``/kamailio/tls.cfg."""
    certificate = write_certificate(out / "certs")
    render("kamailio/tls.cfg.in", out / "kamailio" / "tls.cfg",
           KEY=certificate.key, CERT=certificate.cert)  # fmt: skip
    return out


def write_baresip_config(
    confdir: Path, certificate: Certificate, *, sip_port: int, ctrl_port: int
) -> Path:
    """A baresip config dir (``baresip -f confdir``): config, accounts, empty contacts.

    baresip writes into it (``uuid``), so it is per run.  SIP listens on
    ``sip_port`` (UDP, TCP) and ``sip_port + 1`` (TLS); ctrl_tcp on ``ctrl_port``.
    """
    render("baresip/config.in", confdir / "config", SIP_PORT=sip_port, CTRL_PORT=ctrl_port,
           CERTIFICATE=certificate.combined, MODULE_PATH=BARESIP_MODULES)  # fmt: skip
    shutil.copyfile(PEERS / "baresip" / "accounts", confdir / "accounts")
    (confdir / "contacts").write_text("")
    return confdir


def build_bfcp_codec(directory: Path) -> Path:
    """Compile ``bfcp_codec.c`` against libre; fail (never skip) when a tool is missing."""
    for tool, package in (("gcc", "gcc"), ("pkg-config", "pkg-config")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install the Debian package {package}", pytrace=False)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libre"], capture_output=True, text=True, check=False
    )
    if flags.returncode != 0:
        pytest.fail("libre not found by pkg-config: install libre-dev", pytrace=False)
    binary = directory / "bfcp_codec"
    # libre's re_types.h needs to be told which C99 headers exist
    command = ["gcc", "-O2", "-Wall", "-DHAVE_INTTYPES_H", "-DHAVE_STDBOOL_H", "-o", str(binary),
               str(PEERS / "bfcp_codec.c"), *flags.stdout.split()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return binary


__all__ = [
    "BARESIP_MODULES",
    "PEERS",
    "SIPP_DIR",
    "Certificate",
    "build_bfcp_codec",
    "make_conf",
    "render",
    "write_baresip_config",
    "write_certificate",
]
