"""SIP, SIPS and tel URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1; RFC 3966).

Components are stored unescaped (``%75se%72`` is the user ``user``; RFC 3261
§19.1.4) and re-escaped canonically by ``str()``; escaping is undone exactly
once, so ``v%61lue%25%34%31`` is the value ``value%41`` (RFC 4475 §3.1.1.3).
Nulls survive unescaping intact (RFC 4475 §3.1.1.4).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from focus.sip.headers import (
    SipRemoteError,
    is_token,
    parse_params,
    quote_string,
    unquote_string,
)

__all__ = ["SipNameAddr", "SipUri"]

_ESC = r"|%[0-9A-Fa-f]{2}"
# RFC 3261 §25.1 character classes (unreserved, user-unreserved, param-unreserved, ...).
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]" + _ESC + r")+")
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]" + _ESC + r")*")
_PARAM_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]" + _ESC + r")+")
_HNAME_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]" + _ESC + r")+")
_HVALUE_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]" + _ESC + r")*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")
_TEL_SEPARATORS = str.maketrans("", "", "-.()")

_USER_SAFE = "!~*'()&=+$,;?/"
_PASSWORD_SAFE = "!~*'()&=+$,"
_PARAM_SAFE = "!~*'()[]/:&+$"
_HEADER_SAFE = "!~*'()[]/?:+$"


def _unescape(text: str) -> str:
    return unquote(text, errors="surrogateescape") if "%" in text else text


def _escape(text: str, safe: str) -> str:
    return quote(text, safe=safe, errors="surrogateescape")


def _parse_host(hostport: str) -> tuple[str, int | None]:
    """Parse ``host [":" port]`` (RFC 3261 §25.1 hostport); IPv6 loses its brackets."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise SipRemoteError(400, "Invalid IPv6 reference")
        host, rest = hostport[1:close], hostport[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise SipRemoteError(400, "Invalid IPv6 reference") from exc
        if rest and not rest.startswith(":"):
            raise SipRemoteError(400, "Invalid host")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_raw = hostport.partition(":")
        if _HOSTNAME_RE.fullmatch(host) is None:
            raise SipRemoteError(400, "Invalid host")
        port_text = port_text_raw if colon else None
    port = None
    if port_text is not None:
        if _PORT_RE.fullmatch(port_text) is None or int(port_text) > 65535:
            raise SipRemoteError(400, "Invalid port")
        port = int(port_text)
    return host.lower(), port


def format_host(host: str) -> str:
    """``host`` as it appears in a URI or Via: IPv6 addresses get brackets."""
    return f"[{host}]" if ":" in host else host


def _parse_uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if _PARAM_RE.fullmatch(name) is None or (eq and _PARAM_RE.fullmatch(value) is None):
            raise SipRemoteError(400, "Invalid URI parameter")
        params[_unescape(name).lower()] = _unescape(value) if eq else None
    return params


def _parse_uri_headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not eq or _HNAME_RE.fullmatch(name) is None or _HVALUE_RE.fullmatch(value) is None:
            raise SipRemoteError(400, "Invalid URI header")
        headers[_unescape(name)] = _unescape(value)
    return headers


@dataclass(slots=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI (RFC 3261 §19.1.1, RFC 3966).

    For ``tel:`` the telephone number is held in ``user`` and ``host`` is empty.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; :class:`SipRemoteError` 416 for other schemes, 400 if malformed."""
        scheme, colon, rest = text.partition(":")
        if not colon or _SCHEME_RE.fullmatch(scheme) is None:
            raise SipRemoteError(400, "Invalid URI")
        scheme = scheme.lower()
        if scheme == "tel":
            return cls._parse_tel(rest)
        if scheme not in ("sip", "sips"):
            raise SipRemoteError(416, "Unsupported URI Scheme")
        return cls._parse_sip(scheme, rest)

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str) -> SipUri:
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user_text, colon, password_text = userinfo.partition(":")
            if _USER_RE.fullmatch(user_text) is None:
                raise SipRemoteError(400, "Invalid URI user part")
            if colon and _PASSWORD_RE.fullmatch(password_text) is None:
                raise SipRemoteError(400, "Invalid URI password")
            user = _unescape(user_text)
            password = _unescape(password_text) if colon else None
        rest, question, header_text = rest.partition("?")
        hostport, semi, param_text = rest.partition(";")
        host, port = _parse_host(hostport)
        params = _parse_uri_params(param_text) if semi else {}
        headers = _parse_uri_headers(header_text) if question else {}
        return cls(scheme, user, password, host, port, params, headers)

    @classmethod
    def _parse_tel(cls, rest: str) -> SipUri:
        number, semi, param_text = rest.partition(";")
        if _TEL_NUMBER_RE.fullmatch(number) is None or not any(c.isdigit() for c in number):
            raise SipRemoteError(400, "Invalid tel URI")
        params = _parse_uri_params(param_text) if semi else {}
        if not number.startswith("+") and "phone-context" not in params:
            raise SipRemoteError(400, "Local tel URI without phone-context")
        return cls("tel", number, None, "", None, params, {})

    @property
    def aor(self) -> str:
        """Address of record for identity comparison: ``sip:user@host`` (RFC 3261 §10.3).

        ``sips`` maps to ``sip``; port, parameters and headers are dropped and
        the user part is canonically escaped.  tel URIs lose visual separators.
        """
        if self.scheme == "tel":
            return "tel:" + (self.user or "").translate(_TEL_SEPARATORS)
        host = format_host(self.host)
        if self.user is None:
            return f"sip:{host}"
        return f"sip:{_escape(self.user, _USER_SAFE)}@{host}"

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.scheme == "tel":
            parts.append(self.user or "")
        else:
            if self.user is not None:
                parts.append(_escape(self.user, _USER_SAFE))
                if self.password is not None:
                    parts += [":", _escape(self.password, _PASSWORD_SAFE)]
                parts.append("@")
            parts.append(format_host(self.host))
            if self.port is not None:
                parts.append(f":{self.port}")
        for name, value in self.params.items():
            parts += [";", _escape(name, _PARAM_SAFE)]
            if value is not None:
                parts += ["=", _escape(value, _PARAM_SAFE)]
        if self.headers:
            pairs = (
                f"{_escape(k, _HEADER_SAFE)}={_escape(v, _HEADER_SAFE)}"
                for k, v in self.headers.items()
            )
            parts += ["?", "&".join(pairs)]
        return "".join(parts)


def _parse_display_name(text: str) -> str | None:
    """``display-name = *(token LWS) / quoted-string`` before ``<`` (RFC 3261 §25.1).

    No LWS is required before ``<`` (RFC 4475 §3.1.1.6).
    """
    text = text.strip(" \t")
    if not text:
        return None
    if text.startswith('"'):
        name, stop = unquote_string(text)
        if stop != len(text):
            raise SipRemoteError(400, "Invalid display name")
        return name
    if not all(is_token(word) for word in text.split()):
        raise SipRemoteError(400, "Invalid display name")
    return text


@dataclass(slots=True)
class SipNameAddr:
    """``(name-addr / addr-spec) *(SEMI generic-param)`` as in From/To/Contact (RFC 3261 §20)."""

    display_name: str | None
    uri: SipUri
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or ``None``."""
        return self.params.get("tag")

    @classmethod
    def parse(cls, text: str) -> SipNameAddr:
        """Parse a header value; :class:`SipRemoteError` (400/416) when malformed."""
        text = text.strip(" \t")
        if text.startswith('"'):
            display, stop = unquote_string(text)
            lt = text.find("<", stop)
            if lt < 0 or text[stop:lt].strip(" \t"):
                raise SipRemoteError(400, "Invalid name-addr")
            display_name: str | None = display
        else:
            lt = text.find("<")
            display_name = _parse_display_name(text[:lt]) if lt >= 0 else None
        if lt < 0:
            return cls._parse_addr_spec(text)
        gt = text.find(">", lt)
        if gt < 0:
            raise SipRemoteError(400, "Unterminated <URI>")
        uri = SipUri.parse(text[lt + 1 : gt])
        rest = text[gt + 1 :].strip(" \t")
        if rest and not rest.startswith(";"):
            raise SipRemoteError(400, "Invalid text after <URI>")
        return cls(display_name, uri, parse_params(rest[1:]) if rest else {})

    @classmethod
    def _parse_addr_spec(cls, text: str) -> SipNameAddr:
        """Without ``<>``, ``;`` starts header parameters and ``?``/``,`` are illegal (§20)."""
        uri_text, semi, param_text = text.partition(";")
        uri_text = uri_text.rstrip(" \t")
        if "?" in uri_text or "," in uri_text or " " in uri_text or "\t" in uri_text:
            raise SipRemoteError(400, "URI with ?, comma or space must be enclosed in <>")
        uri = SipUri.parse(uri_text)
        return cls(None, uri, parse_params(param_text) if semi else {})

    def __str__(self) -> str:
        head = f"{quote_string(self.display_name)} " if self.display_name is not None else ""
        params = "".join(
            f";{name}" if value is None else f";{name}={value}"
            for name, value in self.params.items()
        )
        return f"{head}<{self.uri}>{params}"
