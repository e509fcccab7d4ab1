"""Runs the ``mrf`` command line while writing down every secret the process makes.

For tests/reliability/test_log_secrets.py: the server under test is the real
``mrf serve`` (the same ``main()``, the same logging set-up, its stderr is the
operator's log), started as::

    python -c BOOT RECORD-FILE serve --config mrf.toml

Before ``mrf`` is imported, the functions that produce key material are wrapped
so that each value they return is appended (hex, one per line, with its kind)
to RECORD-FILE as it is made:

* ``secrets.token_bytes`` (and so ``token_urlsafe`` / ``token_hex``): SDES
  master keys and salts of our answers, KMS user keys, ticket secrets, MPKs and
  TGKs, web session ids, CSRF tokens, API tokens, generated passwords;
* ``focus.mikey.kdf.prf``: every key MIKEY derives (TEKs and salts for SRTP,
  TLS-PSK and PSK S/MIME, message keys, forked keys);
* ``focus.sdp.sdes.decode_base64`` for ``a=crypto`` inline keys: the master
  keys and salts participants offer.

Values shorter than :data:`MIN_SIZE` bytes (Call-ID parts, tags, SPIs) are not
recorded: they are identifiers, not keys.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIN_SIZE = 16
BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from tests.reliability.secret_recorder import main; sys.exit(main(sys.argv[1:]))"
)


class SecretRecorder:
    """Appends ``<kind> <hex>`` lines to ``path``; safe from any thread."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._out = Path(path).open("a", buffering=1, encoding="ascii")

    def record(self, kind: str, value: bytes) -> None:
        if len(value) >= MIN_SIZE:
            with self._lock:
                self._out.write(f"{kind} {value.hex()}\n")

    def wrap(self, kind: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def recording(*args: Any, **kwargs: Any) -> Any:
            value = function(*args, **kwargs)
            self.record(kind, bytes(value))
            return value

        return recording


def install(path: Path) -> SecretRecorder:
    """Wrap the secret makers (before anything imported them by name)."""
    recorder = SecretRecorder(path)
    secrets.token_bytes = recorder.wrap("random", secrets.token_bytes)

    from focus.mikey import kdf
    from focus.sdp import sdes

    kdf.prf = recorder.wrap("mikey-kdf", kdf.prf)
    decode = sdes.decode_base64

    def decode_recording(text: str, what: str) -> bytes:
        value = decode(text, what)
        if what == "crypto inline key":
            recorder.record("sdes-offered", value)
        return value

    sdes.decode_base64 = decode_recording
    original = sdes.generate_key_salt
    wrapped = recorder.wrap("sdes-answered", original)
    for module in list(sys.modules.values()):  # focus.sdp imported it by name already
        if getattr(module, "generate_key_salt", None) is original:
            module.generate_key_salt = wrapped  # type: ignore[attr-defined]
    return recorder


def read_records(path: Path) -> dict[str, set[bytes]]:
    """``{kind: {value, ...}}`` from a record file."""
    found: dict[str, set[bytes]] = {}
    if path.exists():
        for line in path.read_text(encoding="ascii").splitlines():
            kind, _, value = line.partition(" ")
            found.setdefault(kind, set()).add(bytes.fromhex(value))
    return found


def main(argv: list[str]) -> int:
    """``RECORD-FILE MRF-ARGS...``: install the recorder, then run ``mrf``."""
    install(Path(argv[0]))
    from mrf.__main__ import main as mrf_main

    return mrf_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
