"""Conference data as the rest of the focus sees it: frozen snapshots, policy, AORs.

:mod:`focus.store` persists these; the SIP service, the notifier and the web
layer only ever get the frozen dataclasses defined here, never a database row.

Policy (TS 33.328 G.3.1, "conference creation and policy control"):

* ``allow_anonymous`` — admit callers without an identity (default no).
* ``require_media_security`` — refuse plain RTP and TCP MSRP/BFCP (default yes).
* ``key_modes`` — accepted key management: ``sdes`` (RFC 4568), ``mikey-ticket``
  (RFC 6043 / TS 33.328) and ``dtls`` for RTP; ``fingerprint`` (RFC 8122) and
  ``mikey-ticket`` (TLS-PSK, Annex H) for MSRP/BFCP.  One list covers both.  The
  default is every mode (:data:`DEFAULT_KEY_MODES`): a conference made without a
  choice admits whatever secure keying the caller and the running server share
  (MIKEY-TICKET needs a KMS); a policy narrows the list.  Conferences stored
  before this default keep the list they stored (migration 0003).
* ``notify_protection`` — ``optional`` or ``required`` PSK S/MIME for
  conference-event NOTIFY bodies (Annex I).
* ``locked`` — while true, no new participant is admitted (403 with a Warning);
  whoever is in stays (migration 0004).
* ``chair_uri`` — a chair's AOR, if any (stored by earlier versions; the web and
  the REST API now set the chair as the participant's role, and the JSON reports
  the first chair of the list as ``chair_uri``).

Identity comparison uses :func:`normalize_aor`, i.e. :attr:`focus.sip.uri.SipUri.aor`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from focus.sip.message import SipRemoteError
from focus.sip.uri import SipUri

ROLES = ("participant", "chair")
KEY_MODES = ("sdes", "mikey-ticket", "dtls", "fingerprint")
DEFAULT_KEY_MODES = KEY_MODES  # every secure key mode; policies narrow it
NOTIFY_PROTECTIONS = ("optional", "required")
MAX_NAME_LENGTH = 64

_NAME = re.compile(r"[a-z0-9._-]{1,64}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


class StoreError(Exception):
    """Base of the conference store's errors."""


class InvalidInput(StoreError, ValueError):
    """A name, URI, role or policy value is not acceptable; the message says why."""


class ConferenceExists(StoreError):
    """A conference with that name exists already."""


class ConferenceNotFound(StoreError, LookupError):
    """No conference with that name or id."""


def validate_conference_name(name: object) -> str:
    """1-64 characters of ``a-z 0-9 . _ -``: safe unescaped in a SIP URI user part."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid conference name {name!r}: use 1-{MAX_NAME_LENGTH} characters "
            "of lower-case a-z, 0-9, '.', '_' and '-'"
        )
    return name


def is_conference_name(text: object) -> bool:
    """True for a valid conference name (the only names the store holds or looks up)."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def conference_name(user: str | None) -> str | None:
    """The conference a Request-URI's user part names, or ``None`` when it names none.

    Names are lower-case ASCII, so ASCII letters are folded (``Room`` reaches
    ``room``); anything that cannot be a name (other characters, escaped octets
    that were not UTF-8, NUL) is ``None`` and never reaches a store query.
    """
    if user is None or not user.isascii():
        return None
    folded = user.lower()
    return folded if is_conference_name(folded) else None


def normalize_aor(text: object) -> str:
    """Canonical address of record for authorization lists and identity checks.

    Accepts ``sip:alice@example.com``, ``sips:...``, ``<sip:...>`` (a display
    name before ``<`` and parameters after ``>`` are ignored),
    ``alice@example.com`` (taken as ``sip:``) and ``tel:+1-555-0100``, and
    returns :attr:`focus.sip.uri.SipUri.aor` of it, so that an authorized entry
    compares equal to the identity :mod:`focus.policy` derives from a request:
    ``sips`` becomes ``sip``; the user part is kept case-sensitive (RFC 3261
    §19.1.4) with canonical escaping, a password is dropped; the host is
    lower-cased; port, parameters and headers are dropped.  A SIP URI needs a
    user part; a ``tel`` URI must be a global number and loses its visual
    separators (RFC 3966 §5.1.1).  Anything else raises :class:`InvalidInput`.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"URI must be a string, got {text!r}")
    value = text.strip()
    if "<" in value or ">" in value:
        start, end = value.find("<"), value.find(">")
        if start < 0 or end < start:
            raise InvalidInput(f"unbalanced '<...>' in URI {text!r}")
        value = value[start + 1 : end].strip()
    scheme = _SCHEME.match(value)
    if scheme is None:
        if "@" not in value:
            raise InvalidInput(f"not a SIP or tel URI: {text!r}")
        value = f"sip:{value}"
    elif scheme.group(1).lower() not in ("sip", "sips", "tel"):
        raise InvalidInput(
            f"unsupported URI scheme {scheme.group(1)!r} in {text!r}: use sip or tel"
        )
    try:
        uri = SipUri.parse(value)
    except SipRemoteError as exc:
        raise InvalidInput(f"invalid URI {text!r}: {exc.reason}") from None
    if uri.scheme == "tel" and not (uri.user or "").startswith("+"):
        raise InvalidInput(f"tel URI must be a global number such as tel:+15550100: {text!r}")
    if uri.scheme != "tel" and not uri.user:
        raise InvalidInput(f"SIP URI needs user@host: {text!r}")
    return uri.aor


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ConferencePolicy:
    """A conference's admission and media-security policy (see the module docstring)."""

    allow_anonymous: bool = False
    require_media_security: bool = True
    key_modes: tuple[str, ...] = DEFAULT_KEY_MODES
    notify_protection: str = "optional"
    chair_uri: str | None = None
    locked: bool = False

    def __post_init__(self) -> None:
        _flag("allow_anonymous", self.allow_anonymous)
        _flag("locked", self.locked)
        _flag("require_media_security", self.require_media_security)
        object.__setattr__(self, "key_modes", _key_modes(self.key_modes))
        if self.notify_protection not in NOTIFY_PROTECTIONS:
            raise InvalidInput(
                f"notify_protection must be one of {', '.join(NOTIFY_PROTECTIONS)}, "
                f"got {self.notify_protection!r}"
            )
        if self.chair_uri is not None:
            object.__setattr__(self, "chair_uri", normalize_aor(self.chair_uri))

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ConferencePolicy:
        """Build from a JSON object; unknown keys are an :class:`InvalidInput`."""
        return cls().updated(**data)

    def updated(self, **fields: object) -> ConferencePolicy:
        """A copy with ``fields`` changed, validated."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InvalidInput(
                f"unknown policy field {unknown[0]!r}: use {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **fields)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {
            "allow_anonymous": self.allow_anonymous,
            "require_media_security": self.require_media_security,
            "key_modes": list(self.key_modes),
            "notify_protection": self.notify_protection,
            "chair_uri": self.chair_uri,
            "locked": self.locked,
        }


def _key_modes(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise InvalidInput(f"key_modes must be a non-empty list, got {value!r}")
    for mode in value:
        if mode not in KEY_MODES:
            raise InvalidInput(f"unknown key mode {mode!r}: use {', '.join(KEY_MODES)}")
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class AuthorizedEntry:
    """One authorized participant: normalised AOR, role, and whether it keys with MIKEY."""

    uri: str
    role: str = "participant"
    use_mikey: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", normalize_aor(self.uri))
        if self.role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        _flag("use_mikey", self.use_mikey)

    @classmethod
    def coerce(cls, item: object) -> AuthorizedEntry:
        """Accept an entry, ``"uri"``, ``(uri, role)`` or ``(uri, role, use_mikey)``."""
        if isinstance(item, AuthorizedEntry):
            return item
        if isinstance(item, str):
            return cls(item)
        if isinstance(item, (tuple, list)) and 1 <= len(item) <= 3:
            return cls(*item)
        raise InvalidInput(f"participant must be a URI or (uri, role), got {item!r}")

    def to_json(self) -> dict[str, object]:
        return {"uri": self.uri, "role": self.role, "use_mikey": self.use_mikey}


def coerce_participants(items: object) -> tuple[AuthorizedEntry, ...]:
    """Validate an authorized list; the same AOR twice is an error."""
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise InvalidInput(f"participants must be a list, got {items!r}")
    entries: dict[str, AuthorizedEntry] = {}
    for item in items:
        entry = AuthorizedEntry.coerce(item)
        if entry.uri in entries:
            raise InvalidInput(f"participant {entry.uri} is listed twice")
        entries[entry.uri] = entry
    return tuple(entries.values())


@dataclass(frozen=True, slots=True)
class ConferenceInfo:
    """Snapshot of one stored conference (never a live database row)."""

    id: int
    name: str
    owner_id: int | None
    policy: ConferencePolicy
    participants: tuple[AuthorizedEntry, ...] = ()
    created_at: datetime = field(compare=False, default=datetime.min)
    updated_at: datetime = field(compare=False, default=datetime.min)

    def uri(self, domain: str) -> str:
        """The conference URI, ``sip:<name>@<domain>`` (interfaces contract)."""
        return f"sip:{self.name}@{domain}"

    def authorized(self) -> dict[str, str]:
        """``{aor: role}`` for :func:`focus.policy.admit`."""
        return {entry.uri: entry.role for entry in self.participants}

    def chair(self) -> str | None:
        """The first participant with the role ``chair`` (else a stored ``chair_uri``)."""
        chairs = [entry.uri for entry in self.participants if entry.role == "chair"]
        return chairs[0] if chairs else self.policy.chair_uri

    def to_json(self, domain: str) -> dict[str, object]:
        """JSON-ready dict (the CLI's ``conference list`` line, the REST body)."""
        return {
            "id": self.id,
            "name": self.name,
            "uri": self.uri(domain),
            "owner_id": self.owner_id,
            "policy": {**self.policy.to_json(), "chair_uri": self.chair()},
            "participants": [entry.to_json() for entry in self.participants],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
