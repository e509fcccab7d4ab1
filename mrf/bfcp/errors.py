"""The BFCP error tree (house style §4)::

BfcpError
 +-- BfcpLocalError    our own misuse of the API (raised at once)
 +-- BfcpRemoteError   the peer's fault; ``code`` is the ERROR-CODE to answer
                       with (RFC 8855 §5.2.6), ``details`` its error-specific
                       octets (the unknown types for code 4), ``fatal`` when
                       the byte stream cannot be resynchronised (RFC 8855
                       §6.1: close the connection)
"""

from __future__ import annotations

from mrf.bfcp.codes import BfcpErrorCode

__all__ = ["BfcpError", "BfcpLocalError", "BfcpRemoteError"]


class BfcpError(Exception):
    """Base of every BFCP error."""


class BfcpLocalError(BfcpError):
    """The caller misused the API (bad argument, wrong state)."""


class BfcpRemoteError(BfcpError):
    """The peer sent something we cannot accept."""

    def __init__(
        self,
        code: BfcpErrorCode,
        reason: str,
        *,
        details: bytes = b"",
        fatal: bool = False,
    ) -> None:
        super().__init__(f"{int(code)} {reason}")
        self.code = code
        self.reason = reason
        self.details = details
        self.fatal = fatal
