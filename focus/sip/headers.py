"""SIP header fields and the shared low-level grammar (RFC 3261 §7.3, §20, §25.1).

This is the lowest layer of :mod:`focus.sip`, so it also holds the SIP error
tree (re-exported by :mod:`focus.sip.message`)::

    SipError
    ├── SipLocalError    our own misuse of the API (raised at once, a bug)
    └── SipRemoteError   the peer's fault; carries the status to answer with

:class:`SipHeaders` is an ordered, case-insensitive multimap.  Compact forms
(RFC 3261 §7.3.3, e.g. ``v`` for ``Via``) are expanded to canonical names on
input.  A header field parsed from the wire remembers its raw text, so a
message that is not modified serialises back to the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

__all__ = [
    "COMPACT_FORMS",
    "LIST_HEADERS",
    "SipError",
    "SipHeaders",
    "SipLocalError",
    "SipRemoteError",
    "is_token",
    "normalize_name",
    "parse_params",
    "quote_string",
    "split_list",
    "split_params",
    "unquote_string",
]


class SipError(Exception):
    """Base class of every SIP error."""


class SipLocalError(SipError):
    """Our own misuse of the SIP API (a bug on this side)."""


class SipRemoteError(SipError):
    """The peer sent something we cannot accept.

    ``status``/``reason`` are the response to answer with (a request) or the
    reason the message is dropped (a response).  ``headers`` are extra header
    fields for that answer (e.g. ``Unsupported`` with a 420, RFC 3261 §8.2.2.3)
    and ``message`` is the partially parsed message when one could be built,
    so that a UAS can still answer it (RFC 3261 §8.2.6).
    """

    def __init__(
        self,
        status: int = 400,
        reason: str = "Bad Request",
        *,
        headers: Iterable[tuple[str, str]] = (),
        message: object | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        self.message = message


# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# A generic-param value that is not a quoted string: token / host (IPv6 reference).
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")

# RFC 3261 §7.3.3 and the IANA "Header Fields" registry compact forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL_NAMES = (
    "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
    "Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition "
    "Content-Encoding Content-Language Content-Length Content-Type CSeq Date Error-Info "
    "Event Expires From Identity Identity-Info In-Reply-To Max-Forwards MIME-Version "
    "Min-Expires Min-SE Organization P-Asserted-Identity P-Preferred-Identity Path Priority "
    "Privacy Proxy-Authenticate Proxy-Authorization Proxy-Require RAck Reason Record-Route "
    "Refer-To Referred-By Reject-Contact Replaces Reply-To Request-Disposition Require "
    "Retry-After Route RSeq Security-Client Security-Server Security-Verify Server "
    "Service-Route Session-Expires SIP-ETag SIP-If-Match Subject Subscription-State "
    "Supported Target-Dialog Timestamp To Unsupported User-Agent Via Warning WWW-Authenticate"
).split()

# Header fields whose value is a comma-separated list (RFC 3261 §7.3.1).
LIST_HEADERS: frozenset[str] = frozenset(
    name.lower()
    for name in (
        "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
        "Call-Info Contact Content-Encoding Content-Language Error-Info In-Reply-To Path "
        "P-Asserted-Identity P-Preferred-Identity Proxy-Require Reason Record-Route "
        "Reject-Contact Request-Disposition Require Route Security-Client Security-Server "
        "Security-Verify Service-Route Supported Unsupported Via Warning"
    ).split()
)

_NAME_CACHE: dict[str, tuple[str, str]] = {}
for _name in _CANONICAL_NAMES:
    _NAME_CACHE[_name.lower()] = (_name.lower(), _name)
for _short, _long in COMPACT_FORMS.items():
    _NAME_CACHE[_short] = (_long.lower(), _long)
_NAME_CACHE_LIMIT = 1024


def is_token(text: str) -> bool:
    """Whether ``text`` matches the RFC 3261 §25.1 ``token`` rule."""
    return _TOKEN_RE.fullmatch(text) is not None


def normalize_name(name: str) -> tuple[str, str]:
    """Return ``(key, display_name)`` for a header name; compact forms are expanded.

    ``key`` is the lower-case canonical name used for look-ups.  Raises
    :class:`SipRemoteError` if ``name`` is not a token (RFC 3261 §7.3.1).
    """
    lowered = name.lower()
    cached = _NAME_CACHE.get(lowered)
    if cached is not None:
        return cached[0], cached[1]
    if _TOKEN_RE.fullmatch(name) is None:
        raise SipRemoteError(400, "Invalid header field name")
    if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:
        _NAME_CACHE[lowered] = (lowered, name)
    return lowered, name


def unfold(value: str) -> str:
    """Replace folding LWS (CRLF followed by whitespace) with one SP (RFC 3261 §7.3.1)."""
    return _FOLD_RE.sub(" ", value) if "\n" in value else value


def unquote_string(text: str, start: int = 0) -> tuple[str, int]:
    """Parse the quoted-string beginning at ``text[start]`` (which must be ``"``).

    Returns the unescaped content and the index just past the closing quote.
    RFC 3261 §25.1: ``quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F)``.
    """
    out: list[str] = []
    i = start + 1
    end = len(text)
    while i < end:
        j = text.find('"', i)
        k = text.find("\\", i, j if j >= 0 else end)
        if k >= 0:
            if k + 1 >= end or text[k + 1] in "\r\n":
                break
            out.append(text[i:k])
            out.append(text[k + 1])
            i = k + 2
            continue
        if j < 0:
            break
        out.append(text[i:j])
        return "".join(out), j + 1
    raise SipRemoteError(400, "Unterminated quoted string")


def quote_string(value: str) -> str:
    """Serialise ``value`` as a quoted-string, escaping ``"`` and ``\\``."""
    if "\r" in value or "\n" in value:
        raise SipLocalError("CR/LF cannot be carried in a quoted string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_outside(value: str, sep: str, angle: bool) -> list[str]:
    """Split ``value`` on ``sep`` outside quoted strings (and ``<...>`` if ``angle``)."""
    parts: list[str] = []
    start = 0
    i = 0
    depth_quote = False
    depth_angle = False
    end = len(value)
    while i < end:
        ch = value[i]
        if depth_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                depth_quote = False
        elif ch == '"':
            depth_quote = True
        elif angle and ch == "<":
            depth_angle = True
        elif angle and ch == ">":
            depth_angle = False
        elif ch == sep and not depth_angle:
            parts.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    if depth_quote:
        raise SipRemoteError(400, "Unterminated quoted string")
    parts.append(value[start:].strip(" \t"))
    return parts


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value (RFC 3261 §7.3.1), respecting quotes and ``<>``.

    Empty elements are kept (as ``""``) so that callers can reject them; an
    entirely empty value yields ``[]``.
    """
    if "," not in value:
        stripped = value.strip(" \t")
        return [stripped] if stripped else []
    return _split_outside(value, ",", angle=True)


def split_params(text: str) -> list[str]:
    """Split ``text`` on ``;`` outside quoted strings."""
    if '"' not in text:
        return [part.strip(" \t") for part in text.split(";")]
    return _split_outside(text, ";", angle=False)


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``*(SEMI generic-param)`` text that follows a leading ``;`` (RFC 3261 §25.1).

    ``text`` is what comes after the first ``;``.  Names are lower-cased;
    valueless parameters map to ``None``; quoted values keep their quotes.
    """
    params: dict[str, str | None] = {}
    for part in split_params(text):
        name, eq, value = part.partition("=")
        name = name.strip(" \t")
        if _TOKEN_RE.fullmatch(name) is None:
            raise SipRemoteError(400, "Invalid header parameter")
        if not eq:
            params[name.lower()] = None
            continue
        value = value.strip(" \t")
        if value.startswith('"'):
            _, stop = unquote_string(value)
            if stop != len(value):
                raise SipRemoteError(400, "Invalid quoted parameter value")
        elif _GEN_VALUE_RE.fullmatch(value) is None:
            raise SipRemoteError(400, "Invalid header parameter value")
        params[name.lower()] = value
    return params


def _check_local(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise SipLocalError(f"CR/LF in the value of {name!r}")


type _Entry = tuple[str, str, str, str | None]  # key, name, value, raw field text


class SipHeaders:
    """Ordered, case-insensitive multimap of SIP header fields (RFC 3261 §7.3)."""

    __slots__ = ("_cache", "_entries")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._entries: list[_Entry] = []
        self._cache: dict[str, object] = {}
        for name, value in items:
            self.add(name, value)

    @staticmethod
    def _local_name(name: str) -> tuple[str, str]:
        try:
            return normalize_name(name)
        except SipRemoteError as exc:
            raise SipLocalError(f"invalid header name {name!r}") from exc

    def _append_parsed(self, key: str, name: str, value: str, raw: str) -> None:
        """Append a field read from the wire; ``raw`` is its exact text (no final CRLF)."""
        self._entries.append((key, name, value, raw))

    def cached[T](self, slot: str, factory: Callable[[], T]) -> T:
        """Memoise ``factory()`` until the next mutation (used for lazy parsing)."""
        try:
            return self._cache[slot]  # type: ignore[return-value]
        except KeyError:
            result = factory()
            self._cache[slot] = result
            return result

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (the first list element for list headers)."""
        key = self._local_name(name)[0]
        for entry in self._entries:
            if entry[0] == key:
                if key in LIST_HEADERS:
                    values = split_list(entry[2])
                    return values[0] if values else ""
                return entry[2]
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; list headers are split on commas."""
        key = self._local_name(name)[0]
        if key in LIST_HEADERS:
            out: list[str] = []
            for entry in self._entries:
                if entry[0] == key:
                    out.extend(split_list(entry[2]))
            return out
        return [entry[2] for entry in self._entries if entry[0] == key]

    def count(self, name: str) -> int:
        """How many header field lines carry ``name`` (not list elements)."""
        key = self._local_name(name)[0]
        return sum(1 for entry in self._entries if entry[0] == key)

    def add(self, name: str, value: str) -> None:
        """Append a header field."""
        key, display = self._local_name(name)
        _check_local(display, value)
        self._entries.append((key, display, value, None))
        self._cache.clear()

    def prepend(self, name: str, value: str) -> None:
        """Insert a header field before every other (e.g. a new top Via)."""
        key, display = self._local_name(name)
        _check_local(display, value)
        self._entries.insert(0, (key, display, value, None))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` field by one, kept at the first one's position."""
        key, display = self._local_name(name)
        _check_local(display, value)
        position = next((i for i, e in enumerate(self._entries) if e[0] == key), None)
        self._entries = [e for e in self._entries if e[0] != key]
        entry = (key, display, value, None)
        if position is None:
            self._entries.append(entry)
        else:
            self._entries.insert(position, entry)
        self._cache.clear()

    def remove(self, name: str) -> None:
        """Remove every ``name`` field (no error if absent)."""
        key = self._local_name(name)[0]
        self._entries = [e for e in self._entries if e[0] != key]
        self._cache.clear()

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._local_name(name)[0]
        return any(entry[0] == key for entry in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` for every header field line, in order."""
        return [(entry[1], entry[2]) for entry in self._entries]

    def copy(self) -> SipHeaders:
        """A shallow copy that keeps raw field text."""
        clone = SipHeaders()
        clone._entries = list(self._entries)
        return clone

    def copy_fields(self, other: SipHeaders, name: str) -> None:
        """Append every ``name`` field of ``other`` verbatim (RFC 3261 §8.2.6.2 copies)."""
        key = self._local_name(name)[0]
        self._entries.extend(e for e in other._entries if e[0] == key)
        self._cache.clear()

    def serialize_lines(self, content_length: int) -> list[str]:
        """Header lines for the wire, with exactly one correct Content-Length."""
        lines: list[str] = []
        wrote_length = False
        for key, name, value, raw in self._entries:
            if key == "content-length":
                if wrote_length:
                    continue
                wrote_length = True
                if raw is not None and value.strip(" \t") == str(content_length):
                    lines.append(raw)
                else:
                    lines.append(f"Content-Length: {content_length}")
                continue
            lines.append(raw if raw is not None else f"{name}: {value}")
        if not wrote_length:
            lines.append(f"Content-Length: {content_length}")
        return lines

    def __repr__(self) -> str:
        return f"SipHeaders({self.items()!r})"
