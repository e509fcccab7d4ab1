"""message/cpim (RFC 3862) as used by the MSRP switch (RFC 7701 §6).

::

    From: "nick" <sip:alice@example.com>
    To: <sip:conf@example.com>
    DateTime: 2024-05-01T10:00:00Z

    Content-Type: text/plain;charset=utf-8

    hello

``CpimMessage.parse(data)`` / ``bytes(message)``; ``CpimMessage.parse_head``
parses only the headers of a large message and returns where its content
starts, so the relay can re-wrap a message without reading it whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mrf.msrp.errors import MsrpRemoteError

__all__ = ["CPIM_TYPE", "CpimMessage"]

CPIM_TYPE = "message/cpim"
MAX_CPIM_HEAD = 8192
MAX_CPIM_HEADERS = 32


@dataclass(slots=True)
class CpimMessage:
    """A CPIM message: message headers, content headers, content."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    content_headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def sender(self) -> str | None:
        return self.header("From")

    @property
    def content_type(self) -> str:
        ct = next((v for n, v in self.content_headers if n.lower() == "content-type"), None)
        return ct or "text/plain"

    def head(self) -> bytes:
        """Everything before the content."""
        lines = [f"{n}: {v}" for n, v in self.headers] + [""]
        lines += [f"{n}: {v}" for n, v in self.content_headers] + ["", ""]
        return "\r\n".join(lines).encode("utf-8")

    def __bytes__(self) -> bytes:
        return self.head() + self.content

    @classmethod
    def parse_head(cls, data: bytes) -> tuple[CpimMessage, int]:
        """Headers of ``data`` (content left empty) and the offset of the content."""
        first = data.find(b"\r\n\r\n")
        if first < 0 or first > MAX_CPIM_HEAD:
            raise MsrpRemoteError(400, "CPIM: no end of message headers")
        second = data.find(b"\r\n\r\n", first + 4)
        if second < 0 or second > MAX_CPIM_HEAD:
            raise MsrpRemoteError(400, "CPIM: no end of content headers")
        message = cls(_headers(data[:first]), _headers(data[first + 4 : second]))
        return message, second + 4

    @classmethod
    def parse(cls, data: bytes) -> CpimMessage:
        message, offset = cls.parse_head(data)
        message.content = data[offset:]
        return message


def _headers(block: bytes) -> list[tuple[str, str]]:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MsrpRemoteError(400, "CPIM headers are not UTF-8") from exc
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n") if text else []:
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name or len(headers) >= MAX_CPIM_HEADERS:
            raise MsrpRemoteError(400, f"CPIM: bad header line {line[:60]!r}")
        headers.append((name, value.strip()))
    return headers
