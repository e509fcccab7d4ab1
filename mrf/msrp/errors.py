"""The MSRP error tree (house style §4)::

MsrpError
 +-- MsrpLocalError    our own misuse of the API (raised at once)
 +-- MsrpRemoteError   the peer's fault; ``status`` is the MSRP response code
                       to answer with (RFC 4975 §10), ``transaction_id`` the
                       transaction to answer when it is known
"""

from __future__ import annotations

__all__ = ["MsrpError", "MsrpLocalError", "MsrpRemoteError"]


class MsrpError(Exception):
    """Base of every MSRP error."""


class MsrpLocalError(MsrpError):
    """The caller misused the API (bad argument, wrong state)."""


class MsrpRemoteError(MsrpError):
    """The peer sent something we cannot accept."""

    def __init__(self, status: int, reason: str, *, transaction_id: str | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.transaction_id = transaction_id
