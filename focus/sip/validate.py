"""What a UAS must refuse in a readable request (RFC 3261 §8.2; RFC 4475 expectations).

Kept apart from the parser: :func:`focus.sip.message.parse_message` checks
framing and syntax, :func:`validate_request` the rules a UAS applies before it
processes a request (mandatory header fields, CSeq method, URI scheme, Require,
body type).  ``focus.sip.message`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Collection

from focus.sip.headers import SipRemoteError
from focus.sip.message import SipRequest
from focus.sip.uri import SipNameAddr

_SINGLE_HEADERS = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Type")
_MAGIC_COOKIE = "z9hG4bK"


def _check_structure(request: SipRequest) -> None:
    """Mandatory and single-valued header fields (RFC 3261 §8.1.1, §7.3.1; RFC 4475 §3.3)."""
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in request.headers:
            raise SipRemoteError(400, f"Missing {name} header")
    for name in _SINGLE_HEADERS:
        if request.headers.count(name) > 1:
            raise SipRemoteError(400, f"Multiple {name} header fields")
    vias = request.vias
    if not vias:
        raise SipRemoteError(400, "Missing Via header")
    if vias[0].branch == _MAGIC_COOKIE:
        raise SipRemoteError(400, "Via branch has no transaction identifier")
    request.call_id  # noqa: B018 - validates the syntax
    request.from_addr  # noqa: B018
    request.to_addr  # noqa: B018
    number, _ = request.cseq
    if number >= 2**31:
        raise SipRemoteError(400, "CSeq sequence number out of range")
    request.max_forwards  # noqa: B018


def _check_contacts(request: SipRequest) -> None:
    """Contact values must parse; ``*`` only alone in REGISTER (RFC 3261 §10.2.2, §20.10)."""
    contacts = request.headers.get_all("Contact")
    for value in contacts:
        if value == "*":
            if request.method != "REGISTER" or len(contacts) != 1:
                raise SipRemoteError(400, "Invalid wildcard Contact")
            continue
        try:
            SipNameAddr.parse(value)
        except SipRemoteError as exc:
            raise SipRemoteError(400, f"Invalid Contact header: {exc.reason}") from exc


def _check_request_uri(request: SipRequest) -> None:
    """416 for schemes other than sip/sips/tel; no headers in a Request-URI (§19.1.5)."""
    uri = request.request_uri
    if uri.headers:
        raise SipRemoteError(400, "Request-URI must not contain headers")


def validate_request(
    request: SipRequest,
    *,
    allowed_methods: Collection[str] | None = None,
    supported: Collection[str] = (),
    accepted_content_types: Collection[str] | None = None,
) -> None:
    """Refuse a syntactically readable request that a UAS must not process (RFC 3261 §8.2).

    Raises :class:`SipRemoteError` with the status to answer: 400 for missing,
    repeated or malformed mandatory headers, an out-of-range CSeq, a CSeq method
    differing from the Request-Line, a bare ``z9hG4bK`` branch or a Request-URI
    carrying headers; 501 (with Allow) for a method outside ``allowed_methods``;
    416 for an unsupported Request-URI scheme; 420 (with Unsupported) for
    Require option tags outside ``supported``; 415 (with Accept) for a body type
    outside ``accepted_content_types``.  The expectations of each RFC 4475
    torture message are tabulated in ``tests/focus/sip/test_torture.py``.
    """
    _check_structure(request)
    if allowed_methods is not None and request.method not in allowed_methods:
        allow = ", ".join(sorted(allowed_methods))
        raise SipRemoteError(501, "Not Implemented", headers=[("Allow", allow)])
    if request.cseq[1] != request.method:
        raise SipRemoteError(400, "CSeq method does not match the Request-Line")
    _check_request_uri(request)
    _check_contacts(request)
    if request.method not in ("ACK", "CANCEL"):
        unknown = [tag for tag in request.headers.get_all("Require") if tag not in supported]
        if unknown:
            headers = [("Unsupported", ", ".join(unknown))]
            raise SipRemoteError(420, "Bad Extension", headers=headers)
    content_type = request.content_type
    if request.body and accepted_content_types is not None:
        if content_type not in accepted_content_types:
            accept = ", ".join(accepted_content_types)
            raise SipRemoteError(415, "Unsupported Media Type", headers=[("Accept", accept)])
