"""The Via header field value (RFC 3261 §20.42, §18.2.1; RFC 3581 ``rport``)."""

from __future__ import annotations

import re

from focus.sip.headers import SipRemoteError, is_token, split_params
from focus.sip.uri import SipUri, format_host

_VIA_RE = re.compile(
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+([^;]+)(?:;(.*))?",
    re.DOTALL,
)
_VIA_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")


class SipVia:
    """One Via header field value (RFC 3261 §20.42, RFC 3581 ``rport``).

    ``params`` maps names (lower-case) to values; a parameter without value
    maps to ``""``, so ``params.get("rport")`` is ``None`` (absent), ``""``
    (requested, RFC 3581 §3) or the digits filled in by the server.
    """

    __slots__ = ("host", "params", "port", "transport")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.transport = transport.upper()
        self.host = host
        self.port = port
        self.params: dict[str, str] = dict(params or {})

    @classmethod
    def parse(cls, text: str) -> SipVia:
        """Parse one via-parm; :class:`SipRemoteError` 400 when malformed."""
        match = _VIA_RE.fullmatch(text.strip(" \t"))
        if match is None:
            raise SipRemoteError(400, "Invalid Via")
        name, version, transport, sent_by, param_text = match.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise SipRemoteError(400, "Unsupported Via protocol")
        host_text, port_text = _split_sent_by(sent_by.strip(" \t"))
        host, port = _parse_sent_by(host_text, port_text)
        params: dict[str, str] = {}
        if param_text is not None:
            for part in split_params(param_text):
                key, eq, value = part.partition("=")
                key, value = key.strip(" \t"), value.strip(" \t")
                if not is_token(key) or (eq and _VIA_VALUE_RE.fullmatch(value) is None):
                    raise SipRemoteError(400, "Invalid Via parameter")
                params[key.lower()] = value
        return cls(transport, host, port, params)

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (RFC 3261 §8.1.1.7)."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (RFC 3261 §18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> str | None:
        """``None`` absent, ``""`` requested, else the port filled in (RFC 3581 §4)."""
        return self.params.get("rport")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written in the Via."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        params = "".join(f";{k}={v}" if v else f";{k}" for k, v in self.params.items())
        return f"SIP/2.0/{self.transport} {self.sent_by}{params}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipVia):
            return NotImplemented
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"SipVia({str(self)!r})"


def _split_sent_by(sent_by: str) -> tuple[str, str | None]:
    """Split ``host [SWS ":" SWS port]``; IPv6 references keep their brackets here."""
    if sent_by.startswith("["):
        close = sent_by.find("]")
        host, rest = sent_by[: close + 1], sent_by[close + 1 :].strip(" \t")
    else:
        host, colon, port = sent_by.partition(":")
        host, rest = host.rstrip(" \t"), (":" + port) if colon else ""
    if not rest:
        return host, None
    if not rest.startswith(":"):
        raise SipRemoteError(400, "Invalid Via sent-by")
    return host, rest[1:].strip(" \t")


def _parse_sent_by(host: str, port: str | None) -> tuple[str, int | None]:
    try:
        uri = SipUri.parse(f"sip:{host}" if port is None else f"sip:{host}:{port}")
    except SipRemoteError as exc:
        raise SipRemoteError(400, "Invalid Via sent-by") from exc
    if uri.params or uri.headers or uri.user is not None:
        raise SipRemoteError(400, "Invalid Via sent-by")
    return uri.host, uri.port
