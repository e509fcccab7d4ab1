"""The libre BFCP codec oracle (``../shared/oracles/bfcp/bfcp_codec.c``, oracles README §6).

Built once per session into a temporary directory with gcc and libre-dev
(Debian packages ``gcc``, ``pkg-config``, ``libre-dev``, installed by ``make
test``); a missing tool fails the tests that use it, naming the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ORACLES = Path(
    os.environ.get("MRF_ORACLES", str(Path(__file__).resolve().parents[4] / "shared" / "oracles"))
)


def build_bfcp_codec(directory: Path) -> Path:
    """Compile bfcp_codec.c against libre; fail (never skip) when a tool is missing."""
    for tool, package in (("gcc", "gcc"), ("pkg-config", "pkg-config")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install the Debian package {package}", pytrace=False)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libre"], capture_output=True, text=True, check=False
    )
    if flags.returncode != 0:
        pytest.fail("libre not found by pkg-config: install libre-dev", pytrace=False)
    binary = directory / "bfcp_codec"
    source = ORACLES / "bfcp" / "bfcp_codec.c"
    command = ["gcc", "-O2", "-DHAVE_INTTYPES_H", "-DHAVE_STDBOOL_H", "-o", str(binary),
               str(source), *flags.stdout.split()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return binary


@pytest.fixture(scope="session")
def bfcp_codec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bfcp_codec(tmp_path_factory.mktemp("bfcp-codec"))
