"""Sans-I/O SIP (RFC 3261): URIs, header fields, messages, transactions and dialogs.

The message layer is re-exported here; transactions and dialogs live in
:mod:`focus.sip.transaction` and :mod:`focus.sip.dialog`.
"""

from focus.sip.headers import SipError, SipHeaders, SipLocalError, SipRemoteError
from focus.sip.message import (
    SipRequest,
    SipResponse,
    SipStreamParser,
    SipVia,
    make_response,
    parse_message,
    validate_request,
)
from focus.sip.uri import SipNameAddr, SipUri

__all__ = [
    "SipError",
    "SipHeaders",
    "SipLocalError",
    "SipNameAddr",
    "SipRemoteError",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "SipUri",
    "SipVia",
    "make_response",
    "parse_message",
    "validate_request",
]
