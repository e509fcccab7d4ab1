"""Key material held once, borrowed by its users, wiped once (README "Keys in memory").

A :class:`SecretBytes` is the one mutable copy of a key the focus keeps for a
stream: an SRTP master key||salt (RFC 3711 §8.2) of an SDES line or of a
MIKEY-TICKET crypto session, a TLS-PSK, a PSK S/MIME TEK.  The SDP plan, the
MIKEY key set and the SRTP context of the media plane all hold the *same*
object, so :meth:`SecretBytes.wipe` -- at hang-up and when a re-offer
replaces the key -- zeroes the key everywhere this process keeps it.

What Python cannot promise, and this class does not pretend to: the
immutable ``bytes`` a key passes through on its way in and out -- the random
draw, the base64 decode of an ``a=crypto`` line, the SDP text of the offer
and the answer, the TEKs the MIKEY KDF returns, the copy pylibsrtp and the
``ssl`` module insist on -- are freed by the garbage collector without being
overwritten.  ``bytes(secret)`` makes such a copy on purpose, for those APIs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Buffer

__all__ = ["SecretBytes"]


class SecretBytes:
    """One key's bytes in a ``bytearray``; compared in constant time, never shown.

    It is a read-only bytes-like object (PEP 688 ``__buffer__``): ``base64``,
    ``hmac``, ``hashlib`` and ``cryptography`` read it in place, without a copy.
    """

    __slots__ = ("_data", "_wiped")

    def __init__(self, data: Buffer) -> None:
        self._data = bytearray(data)
        self._wiped = False

    @classmethod
    def random(cls, length: int) -> SecretBytes:
        """``length`` bytes from the CSPRNG (RFC 4568 §6.1: a fresh key per stream)."""
        return cls(secrets.token_bytes(length))

    def view(self) -> memoryview:
        """A read-only view for a borrower (no copy); empty once wiped."""
        return memoryview(self._data if not self._wiped else b"").toreadonly()

    def __buffer__(self, flags: int) -> memoryview:
        return self.view()

    def wipe(self) -> None:
        """Zero the bytes in place, then drop them; borrowers see an empty key."""
        self._data[:] = bytes(len(self._data))
        self._wiped = True
        try:
            self._data.clear()
        except BufferError:  # a view is still out: it sees zeros
            pass

    @property
    def wiped(self) -> bool:
        return self._wiped

    def __len__(self) -> int:
        return 0 if self._wiped else len(self._data)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __bytes__(self) -> bytes:
        """An immutable copy for APIs that take nothing else (it cannot be wiped)."""
        return bytes(self.view())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretBytes):
            return hmac.compare_digest(self.view(), other.view())
        if isinstance(other, (bytes, bytearray, memoryview)):
            return hmac.compare_digest(self.view(), other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable: not a dict key

    def __repr__(self) -> str:
        return "<SecretBytes wiped>" if self._wiped else f"<SecretBytes {len(self._data)} bytes>"
