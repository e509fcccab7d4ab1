"""Reassembly of chunked MSRP messages by Byte-Range (RFC 4975 §7.3), sans-I/O.

Chunks may arrive out of order and overlap (the last data received wins); the
``$`` chunk (or a Byte-Range total) fixes the size.  The data goes to a
:class:`MsrpStorage` chosen by the caller: memory by default, a spooled
temporary file in the relay, so that a large message is never held whole in
memory.  ``max_message_size`` (``a=max-size``) caps every message: beyond it
the chunk is refused with 413.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mrf.msrp.errors import MsrpRemoteError

__all__ = ["MsrpBytesStorage", "MsrpMemoryStorage", "MsrpReassembly", "MsrpStorage"]


class MsrpStorage(Protocol):
    """Random-access byte storage for one message being reassembled."""

    def write_at(self, offset: int, data: bytes) -> None: ...
    def read_at(self, offset: int, size: int) -> bytes: ...
    def close(self) -> None: ...


class MsrpMemoryStorage:
    """A bytearray; fine for messages up to the memory cap."""

    def __init__(self) -> None:
        self._data = bytearray()

    def write_at(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > len(self._data):
            self._data.extend(bytes(end - len(self._data)))
        self._data[offset:end] = data

    def read_at(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def close(self) -> None:
        self._data = bytearray()


class MsrpBytesStorage:
    """A message that arrived whole in one chunk: its body, read in place."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def write_at(self, offset: int, data: bytes) -> None:
        raise TypeError("a whole message is read-only")

    def read_at(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]

    def close(self) -> None:
        self._data = b""


@dataclass(slots=True)
class MsrpReassembly:
    """One message's received byte intervals (0-based, half-open) and its storage."""

    message_id: str
    storage: MsrpStorage
    max_message_size: int
    content_type: str | None = None
    total: int | None = None
    intervals: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def whole(
        cls,
        message_id: str,
        body: bytes,
        max_message_size: int,
        *,
        content_type: str | None,
        declared_total: int | None,
    ) -> MsrpReassembly:
        """A message in one ``$`` chunk from byte 1: no copy, the same caps as :meth:`add`."""
        size = len(body)
        if declared_total is not None and declared_total > max_message_size:
            raise MsrpRemoteError(413, f"message of {declared_total} bytes exceeds a=max-size")
        if size > max_message_size:
            raise MsrpRemoteError(413, "message exceeds a=max-size")
        reassembly = cls(message_id, MsrpBytesStorage(body), max_message_size, content_type, size)
        if size:
            reassembly.intervals.append((0, size))
        return reassembly

    def add(self, start: int, data: bytes, *, last: bool, declared_total: int | None) -> None:
        """Store ``data`` at 1-based ``start``; ``last`` for the ``$`` piece of a chunk."""
        offset = start - 1
        end = offset + len(data)
        if declared_total is not None and declared_total > self.max_message_size:
            raise MsrpRemoteError(413, f"message of {declared_total} bytes exceeds a=max-size")
        if end > self.max_message_size:
            raise MsrpRemoteError(413, "message exceeds a=max-size")
        if last:  # §7.3: the "$" chunk fixes the size, whatever the Byte-Range total said
            self.total = end
        elif self.total is not None and end > self.total:
            raise MsrpRemoteError(423, "chunk beyond the end of the message")
        if data:
            self.storage.write_at(offset, data)
            self._merge(offset, end)

    def _merge(self, start: int, end: int) -> None:
        merged: list[tuple[int, int]] = []
        for low, high in sorted([*self.intervals, (start, end)]):
            if merged and low <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        self.intervals = merged

    @property
    def received(self) -> int:
        return sum(high - low for low, high in self.intervals)

    @property
    def complete(self) -> bool:
        if self.total is None:
            return False
        return self.total == 0 or self.intervals == [(0, self.total)]

    def read(self, offset: int, size: int) -> bytes:
        return self.storage.read_at(offset, size)

    def close(self) -> None:
        self.storage.close()
