"""Refusals that say why: a final status plus a ``Warning`` header (RFC 3261 §20.43).

Every 403, 404 and 488 the focus and the notifier send to an INVITE or a
SUBSCRIBE is a :class:`SipRefusal`: the status and, in plain words, what was
unacceptable ("not on the authorized list", "TCP/TLS/MSRP needs a=fingerprint
with SHA-256 or stronger").  ``SipRefusal(...).response(request, agent=...)``
writes ``Warning: <warn-code> <warn-agent> "<text>"``.  The warn-code is 399
(miscellaneous) unless a session-description code fits better (304 media type
not available, 305 incompatible media format, 306 attribute not understood:
:class:`SipWarnCode`); the warn-agent is the server's host name (the SIP
domain).

The text is for people and must never carry key material: callers name the
attribute or the rule, never echo a value.  :func:`warning_text` makes any
text safe for the header (no control characters or undecodable bytes, quotes
and length bounded) and, as a second line of defence, cuts what follows an
SDES ``inline:`` or a ``mikey`` key-mgmt token out of a text that quotes one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from focus.sip.headers import quote_string, unquote_string
from focus.sip.message import SipMessage, SipRemoteError, SipRequest, SipResponse, make_response

__all__ = [
    "EXPLAINED_STATUSES",
    "MAX_WARNING_TEXT",
    "SipRefusal",
    "SipWarnCode",
    "format_warning",
    "parse_warning",
    "warning_of",
    "warning_text",
]

MAX_WARNING_TEXT = 200  # characters of warn-text
EXPLAINED_STATUSES = frozenset({403, 404, 488})  # these always carry a Warning
# an SDES key (RFC 4568 §9.1 inline:) or a MIKEY message (RFC 4567 §3 "mikey" base64)
_KEY_MATERIAL = re.compile(r"(inline:|mikey\s+)[A-Za-z0-9+/=_-]{20,}", re.IGNORECASE)


class SipWarnCode(IntEnum):
    """warn-code values (RFC 3261 §20.43; IANA "SIP Warning Codes") the server uses."""

    MEDIA_TYPE_NOT_AVAILABLE = 304
    INCOMPATIBLE_MEDIA_FORMAT = 305
    ATTRIBUTE_NOT_UNDERSTOOD = 306
    MISCELLANEOUS = 399


def warning_text(text: str) -> str:
    """``text`` made safe for a warn-text: unprintable characters (controls, bytes that
    were not UTF-8) become ``?``, double quotes single ones, key material ``...``,
    at most 200 characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text).replace('"', "'")
    clean = _KEY_MATERIAL.sub(r"\1...", clean)
    return clean if len(clean) <= MAX_WARNING_TEXT else clean[: MAX_WARNING_TEXT - 3] + "..."


def format_warning(code: int, agent: str, text: str) -> str:
    """A ``Warning`` value: ``399 mrf.example.com "no conference named 'x'"``."""
    return f"{int(code)} {agent} {quote_string(warning_text(text))}"


def parse_warning(value: str) -> tuple[int, str, str] | None:
    """``(code, agent, text)`` of one ``Warning`` value, or ``None`` when malformed."""
    code, _, rest = value.strip().partition(" ")
    agent, _, quoted = rest.partition(" ")
    if not (len(code) == 3 and code.isdigit() and agent and quoted.startswith('"')):
        return None
    try:
        text, end = unquote_string(quoted)
    except SipRemoteError:
        return None
    return (int(code), agent, text) if not quoted[end:].strip() else None


def warning_of(message: SipMessage) -> str | None:
    """The text of ``message``'s Warning headers (``; ``-joined), or ``None`` (``mrf ue``)."""
    texts = []
    for value in message.headers.get_all("Warning"):  # a list header (RFC 3261 §7.3.1)
        parsed = parse_warning(value)
        texts.append(parsed[2] if parsed is not None else value.strip())
    return "; ".join(texts) if texts else None


@dataclass(frozen=True, slots=True)
class SipRefusal:
    """A final non-2xx answer to a request and, for its sender, why.

    ``warning`` is the plain-words reason (``None``: no Warning header, for
    statuses whose other headers say it all: 420 ``Unsupported``, 503
    ``Retry-After``); ``reason`` the reason phrase (default: RFC 3261 §21's).
    """

    status: int
    warning: str | None = None
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    code: int = SipWarnCode.MISCELLANEOUS

    def header(self, agent: str) -> tuple[str, str] | None:
        """The ``Warning`` header field, or ``None`` without a warning."""
        if self.warning is None:
            return None
        return ("Warning", format_warning(self.code, agent, self.warning))

    def response(
        self, request: SipRequest, *, agent: str, to_tag: str | None = None
    ) -> SipResponse:
        """The response to ``request`` (``to_tag`` for an out-of-dialog request)."""
        warning = self.header(agent)
        headers = [*self.headers, *([warning] if warning is not None else [])]
        return make_response(request, self.status, self.reason, to_tag=to_tag, headers=headers)
