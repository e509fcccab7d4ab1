"""libre's BFCP codec (``tests/peers/bfcp_codec.c``), an encoder/decoder independent of ours.

Built once per session into a temporary directory with gcc and libre-dev
(Debian packages ``gcc``, ``pkg-config``, ``libre-dev``, installed by ``make
test``); a missing tool fails the tests that use it, naming the package.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import build_bfcp_codec


@pytest.fixture(scope="session")
def bfcp_codec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bfcp_codec(tmp_path_factory.mktemp("bfcp-codec"))
