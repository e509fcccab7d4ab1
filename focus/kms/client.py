"""KMS client: POST a MIKEY message to the KMS URL, return the MIKEY response (decision (c)).

``await kms_exchange(url, message_bytes)`` on asyncio streams (http and https),
bounded by ``timeout``.  ``KmsUnavailable`` means the KMS could not be reached
or answered something other than 200 ``application/mikey`` (the focus answers
the call 503 with Retry-After); MIKEY-level refusals come back as a MIKEY
Error message in the body and are the caller's to interpret.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from focus.mikey.exchange import MIKEY_CONTENT_TYPE

MAX_RESPONSE_SIZE = 65536


class KmsUnavailable(Exception):
    """The KMS could not be reached or did not answer with a MIKEY message."""


async def kms_exchange(
    url: str, body: bytes, *, timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None
) -> bytes:
    """POST ``body`` as ``application/mikey`` to ``url``; the response body."""
    try:
        return await asyncio.wait_for(_exchange(url, body, ssl_context), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        raise KmsUnavailable(f"KMS {url}: {exc or type(exc).__name__}") from exc


async def _exchange(url: str, body: bytes, ssl_context: ssl.SSLContext | None) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("KMS URL must be http:// or https://")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    context = (ssl_context or ssl.create_default_context()) if secure else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        host = parts.netloc.rsplit("@", 1)[-1]
        head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: {MIKEY_CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        return await _response(reader)
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise ValueError(f"HTTP status {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("content-type", "").split(";")[0].strip().lower() != MIKEY_CONTENT_TYPE:
        raise ValueError("response is not application/mikey")
    length = int(headers.get("content-length", "-1"))
    if not 0 < length <= MAX_RESPONSE_SIZE:
        raise ValueError(f"bad Content-Length {length}")
    return await reader.readexactly(length)
