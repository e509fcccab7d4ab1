"""The KMS's own keys file: enrolled users' PSKs and the ticket secrets (its own trust domain).

``<data_dir>/kms/keys.json`` (mode 0600, written atomically)::

    {"version": 1, "current_secret": 1, "ticket_secrets": {"1": "<hex>"},
     "users": {"sip:alice@example.com": "<hex>"}}

The file is separate from the conference database on purpose: the KMS is its
own trust domain (TS 33.328; decision (c)).  Keys are never logged.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

KEYS_FILE = "kms/keys.json"
USER_KEY_LENGTH = 32
SECRET_LENGTH = 32


class KmsKeysError(ValueError):
    """The keys file is unreadable or malformed."""


class KmsKeys:
    """Load, enrol and persist KMS keys."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.users: dict[bytes, bytes] = {}
        self.ticket_secrets: dict[int, bytes] = {}
        self.current_secret = 1
        self._mtime = 0
        if self.path.exists():
            self._load()
        else:
            self.ticket_secrets = {1: secrets.token_bytes(SECRET_LENGTH)}
            self.save()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> KmsKeys:
        return cls(Path(data_dir) / KEYS_FILE)

    def _load(self) -> None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            self.users = {u.encode(): bytes.fromhex(k) for u, k in document["users"].items()}
            self.ticket_secrets = {
                int(i): bytes.fromhex(k) for i, k in document["ticket_secrets"].items()
            }
            self.current_secret = int(document["current_secret"])
            self._mtime = self.path.stat().st_mtime_ns
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KmsKeysError(f"{self.path}: unusable KMS keys file ({exc})") from exc
        if self.current_secret not in self.ticket_secrets:
            raise KmsKeysError(f"{self.path}: current_secret has no ticket secret")

    def save(self) -> None:
        document = {
            "version": 1,
            "current_secret": self.current_secret,
            "ticket_secrets": {str(i): k.hex() for i, k in self.ticket_secrets.items()},
            "users": {u.decode(): k.hex() for u, k in sorted(self.users.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
        os.replace(temporary, self.path)
        self._mtime = self.path.stat().st_mtime_ns

    def enroll(self, identity: str) -> bytes:
        """A fresh key for ``identity`` (replacing any previous one), saved at once."""
        key = secrets.token_bytes(USER_KEY_LENGTH)
        self.users[identity.encode()] = key
        self.save()
        return key

    def user_key(self, identity: bytes) -> bytes | None:
        """The key of ``identity``; re-reads the file when ``mrf kms enroll`` changed it."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            mtime = self._mtime
        if mtime != self._mtime:
            self._load()
        return self.users.get(identity)
