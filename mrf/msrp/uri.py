"""MSRP URIs (RFC 4975 §6) and their comparison (§6.1).

``MsrpUri.parse("msrps://127.0.0.1:2855/s3cr3t;tcp")``; ``str(uri)`` writes it
back.  Equality follows §6.1: scheme, host and transport case-insensitive, the
port must match exactly, the session-id is case-sensitive, userinfo ignored.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field

from mrf.msrp.errors import MsrpRemoteError

__all__ = ["MsrpUri", "parse_path"]

_URI = re.compile(
    r"^(?P<scheme>msrps?)://(?:(?P<user>[^@/;]*)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/(?P<session>[A-Za-z0-9\-._~+=/%]+))?;(?P<rest>.+)$",
    re.IGNORECASE,
)
_PARAM = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,=:]+$")
MAX_URI_SIZE = 1024
MAX_PATH_URIS = 16


@dataclass(frozen=True, slots=True)
class MsrpUri:
    """An MSRP URI; ``host`` holds IPv6 without brackets."""

    scheme: str
    host: str
    port: int | None
    session_id: str | None
    transport: str = "tcp"
    user: str | None = None
    params: tuple[str, ...] = field(default=())
    _key: tuple[str, str, int | None, str | None, str] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # §6.1 comparison key, computed once: every dict lookup by URI hashes it
        key = (self.scheme, _canonical_host(self.host), self.port, self.session_id, self.transport)
        object.__setattr__(self, "_key", key)

    @classmethod
    def parse(cls, text: str) -> MsrpUri:
        """Parse one URI; ``MsrpRemoteError(400)`` when it is not RFC 4975 §9 syntax."""
        if len(text) > MAX_URI_SIZE:
            raise MsrpRemoteError(400, "MSRP URI too long")
        match = _URI.match(text.strip())
        if match is None:
            raise MsrpRemoteError(400, f"malformed MSRP URI {text[:80]!r}")
        host = match["host"]
        if host.startswith("["):
            host = _ipv6(host[1:-1])
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 0 < port <= 65535:
            raise MsrpRemoteError(400, f"bad port in MSRP URI {text[:80]!r}")
        transport, *params = match["rest"].split(";")
        if not transport.isalnum() or not all(_PARAM.match(p) for p in params):
            raise MsrpRemoteError(400, f"bad transport or parameter in {text[:80]!r}")
        return cls(
            scheme=match["scheme"].lower(),
            host=host.lower(),
            port=port,
            session_id=match["session"],
            transport=transport.lower(),
            user=match["user"],
            params=tuple(params),
        )

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        session = f"/{self.session_id}" if self.session_id else ""
        params = "".join(f";{p}" for p in self.params)
        return f"{self.scheme}://{user}{host}{port}{session};{self.transport}{params}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MsrpUri):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def key(self) -> tuple[str, str, int | None, str | None, str]:
        """What §6.1 compares (userinfo and URI parameters are ignored)."""
        return self._key

    @property
    def secure(self) -> bool:
        return self.scheme == "msrps"


def _ipv6(text: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError as exc:
        raise MsrpRemoteError(400, f"bad IPv6 address {text[:60]!r}") from exc


@functools.lru_cache(maxsize=1024)
def _canonical_host(host: str) -> str:
    """The §6.1 comparison form of a host (cached: every hash and ``==`` needs it)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def parse_path(value: str) -> tuple[MsrpUri, ...]:
    """A To-Path / From-Path / ``a=path`` value: one or more URIs separated by spaces.

    Every request and response of a session carries the same paths: values of
    usual length are parsed once (the result, a tuple of frozen URIs, is
    immutable; errors are not cached; the cache is bounded in entries and size).
    """
    if len(value) <= _CACHED_PATH_SIZE:
        return _parse_path_cached(value)
    return _parse_path(value)


_CACHED_PATH_SIZE = 512


@functools.lru_cache(maxsize=4096)
def _parse_path_cached(value: str) -> tuple[MsrpUri, ...]:
    return _parse_path(value)


def _parse_path(value: str) -> tuple[MsrpUri, ...]:
    parts = value.split()
    if not parts:
        raise MsrpRemoteError(400, "empty path")
    if len(parts) > MAX_PATH_URIS:
        raise MsrpRemoteError(400, "too many URIs in path")
    return tuple(MsrpUri.parse(part) for part in parts)
