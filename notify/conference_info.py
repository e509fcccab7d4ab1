"""conference-info documents (RFC 4575 §4, §5): snapshots in, XML bytes out.

Sans-I/O core.  The notifier turns the focus's live state into a frozen
:class:`ConferenceInfoSnapshot`; this module renders

* :func:`render_full` — the whole state (``state="full"``), sent on the NOTIFY
  that a SUBSCRIBE triggers (RFC 4575 §3.2);
* :func:`render_partial` — only what changed between two snapshots
  (``state="partial"``, §4.4): new users and endpoints in full, removed ones as
  ``state="deleted"``, changed endpoints replaced whole (``state="full"``), and
  ``conference-state`` / ``conference-description`` whenever they changed;
* :func:`render_deleted` — the conference is gone (§4.6).

Every document carries the subscription's ``version`` (§5.2: +1 for each
notification).  Media elements say which key management protects the stream
in an extension element of our own namespace (:data:`MEDIA_SECURITY_NS`), which
``media-type`` admits through its ``<xs:any namespace="##other">``::

    <media id="0"><type>audio</type><status>sendrecv</status>
      <msec:protection key-mode="sdes" suite="AES_CM_128_HMAC_SHA1_80"/></media>

No endpoint carries ``call-info``: its ``<sip>`` element (RFC 4575 §5.6.2,
optional per §5.7.3) would hand every subscriber each participant's Call-ID
and tags, the dialog ID an in-dialog BYE or re-INVITE names.  The focus
refuses such requests from anyone but the dialog's own flow anyway
(``focus.sip.dialog.SipDialog.accepts_from``); not publishing the identifiers
keeps them from being worth copying, and keeps one document per conference
for every subscriber.

RFC 4575 has no floor control element either: an endpoint holding or queued
for a BFCP floor (RFC 8855) carries one element of :data:`FLOOR_CONTROL_NS`
per floor at its end (``endpoint-type`` ends with the same
``<xs:any namespace="##other">``)::

    <mfloor:floor id="1" status="granted"/>          (or "queued" queue-position="2", "pending")

Nor has it a talker indication: an audio stream the mixer hears as an active
speaker carries, after the protection element, one element of
:data:`TALKER_NS` (absent while the participant is not talking)::

    <mtalk:talking>true</mtalk:talking>

:func:`parse_conference_info` is the subscriber's side (tests, ``mrf ue``): the
root attributes and each user's endpoints and their status, size-capped.  A
document type declaration is refused by the parser itself, after decoding
(:class:`_NoDoctypeBuilder`), so no encoding (UTF-16, a declared one) carries
a DTD, an entity declaration or an external entity past it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

CONFERENCE_INFO_NS = "urn:ietf:params:xml:ns:conference-info"  # RFC 4575 §4.1
MEDIA_SECURITY_NS = "urn:mrf:params:xml:ns:media-security"  # ours, see module docstring
FLOOR_CONTROL_NS = "urn:mrf:params:xml:ns:floor-control"  # ours, see module docstring
TALKER_NS = "urn:mrf:params:xml:ns:talker"  # ours, see module docstring
CONFERENCE_INFO_CONTENT_TYPE = "application/conference-info+xml"  # RFC 4575 §3.4
MAX_CONFERENCE_INFO_SIZE = 262_144  # bytes a subscriber agrees to parse

ENDPOINT_STATUSES = (
    "pending", "dialing-out", "dialing-in", "alerting", "on-hold", "connected",
    "muted-via-focus", "disconnecting", "disconnected",
)  # fmt: skip  # RFC 4575 §5.6.2 / endpoint-status-type
JOINING_METHODS = ("dialed-in", "dialed-out", "focus-owner")  # RFC 4575 §5.6.2 / joining-type
DISCONNECTION_METHODS = ("departed", "booted", "failed", "busy")  # disconnection-type
MEDIA_STATUSES = ("recvonly", "sendonly", "sendrecv", "inactive")  # media-status-type
FLOOR_STATUSES = ("granted", "queued", "pending")  # ours: BFCP Granted / Accepted / Pending

ET.register_namespace("msec", MEDIA_SECURITY_NS)
ET.register_namespace("mfloor", FLOOR_CONTROL_NS)
ET.register_namespace("mtalk", TALKER_NS)


class ConferenceInfoError(ValueError):
    """A received conference-info document is malformed (subscriber side)."""


@dataclass(frozen=True, slots=True)
class ConferenceInfoMedia:
    """One media stream of an endpoint (RFC 4575 §5.6.2 ``media``, keyed by ``id``)."""

    id: str
    type: str = "audio"
    status: str | None = None
    key_mode: str = "none"  # "sdes", "mikey-ticket", "dtls", "fingerprint", "none"
    suite: str | None = None
    talking: bool = False  # an active speaker of the mixer (our extension, see above)


@dataclass(frozen=True, slots=True)
class ConferenceInfoFloor:
    """A BFCP floor the endpoint's user holds or waits for (our extension, see above)."""

    id: int
    status: str  # FLOOR_STATUSES
    queue_position: int | None = None

    def __post_init__(self) -> None:
        if self.status not in FLOOR_STATUSES:
            raise ValueError(f"floor status {self.status!r}")


@dataclass(frozen=True, slots=True)
class ConferenceInfoEndpoint:
    """One device of a user (§5.6.2 ``endpoint``, keyed by ``entity``)."""

    entity: str
    status: str
    joining_method: str = "dialed-in"
    joined_at: datetime | None = None
    disconnection_method: str | None = None
    disconnected_at: datetime | None = None
    disconnection_reason: str | None = None
    media: tuple[ConferenceInfoMedia, ...] = ()
    floors: tuple[ConferenceInfoFloor, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in ENDPOINT_STATUSES:
            raise ValueError(f"endpoint status {self.status!r}")
        if self.joining_method not in JOINING_METHODS:
            raise ValueError(f"joining method {self.joining_method!r}")
        if self.disconnection_method not in (None, *DISCONNECTION_METHODS):
            raise ValueError(f"disconnection method {self.disconnection_method!r}")


@dataclass(frozen=True, slots=True)
class ConferenceInfoUser:
    """A participant (§5.6 ``user``, keyed by ``entity``, its AOR)."""

    entity: str
    display_text: str | None = None
    roles: tuple[str, ...] = ()
    endpoints: tuple[ConferenceInfoEndpoint, ...] = ()

    @property
    def present(self) -> bool:
        return any(e.status != "disconnected" for e in self.endpoints)


@dataclass(frozen=True, slots=True)
class ConferenceInfoSnapshot:
    """The whole conference state at one moment."""

    entity: str  # the conference URI
    display_text: str
    conf_uris: tuple[str, ...] = ()
    host_display_text: str = "mrf conference focus"
    host_uris: tuple[str, ...] = ()
    available_media: tuple[str, ...] = ("audio",)
    active: bool = True
    locked: bool = False
    users: tuple[ConferenceInfoUser, ...] = ()

    @property
    def user_count(self) -> int:
        return sum(1 for user in self.users if user.present)


@dataclass(frozen=True, slots=True)
class ConferenceInfoNotice:
    """What a subscriber reads from one document (:func:`parse_conference_info`)."""

    entity: str
    state: str
    version: int
    user_count: int | None
    users: dict[str, str] = field(default_factory=dict)  # entity -> user state attribute
    endpoints: dict[str, str] = field(default_factory=dict)  # endpoint entity -> status
    endpoint_users: dict[str, str] = field(default_factory=dict)  # endpoint entity -> user
    floors: dict[str, str] = field(default_factory=dict)  # endpoint entity -> floor status
    talking: set[str] = field(default_factory=set)  # endpoint entities with a talking stream


def _q(name: str) -> str:
    """Element names are written unprefixed; the root declares the default namespace."""
    return name


def _n(name: str) -> str:
    """A parsed element's qualified name."""
    return f"{{{CONFERENCE_INFO_NS}}}{name}"


def _text(parent: ET.Element, name: str, value: str) -> ET.Element:
    child = ET.SubElement(parent, _q(name))
    child.text = value
    return child


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _root(entity: str, state: str, version: int) -> ET.Element:
    if not 0 <= version <= 0xFFFFFFFF:
        raise ValueError(f"version {version} is not an unsignedInt (RFC 4575 §5.2)")
    attributes = {"xmlns": CONFERENCE_INFO_NS, "entity": entity, "state": state}
    return ET.Element("conference-info", {**attributes, "version": str(version)})


def _serialize(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True))


def _description(parent: ET.Element, snapshot: ConferenceInfoSnapshot) -> None:
    description = ET.SubElement(parent, _q("conference-description"))
    _text(description, "display-text", snapshot.display_text)
    if snapshot.conf_uris:
        uris = ET.SubElement(description, _q("conf-uris"))
        for uri in snapshot.conf_uris:
            entry = ET.SubElement(uris, _q("entry"))
            _text(entry, "uri", uri)
            _text(entry, "purpose", "participation")
    if snapshot.available_media:
        media = ET.SubElement(description, _q("available-media"))
        for index, kind in enumerate(snapshot.available_media):
            entry = ET.SubElement(media, _q("entry"), {"label": str(index)})
            _text(entry, "type", kind)
            _text(entry, "status", "sendrecv")


def _host(parent: ET.Element, snapshot: ConferenceInfoSnapshot) -> None:
    host = ET.SubElement(parent, _q("host-info"))
    _text(host, "display-text", snapshot.host_display_text)
    if snapshot.host_uris:
        uris = ET.SubElement(host, _q("uris"))
        for uri in snapshot.host_uris:
            _text(ET.SubElement(uris, _q("entry")), "uri", uri)


def _conference_state(parent: ET.Element, snapshot: ConferenceInfoSnapshot) -> None:
    state = ET.SubElement(parent, _q("conference-state"))
    _text(state, "user-count", str(snapshot.user_count))
    _text(state, "active", "true" if snapshot.active else "false")
    _text(state, "locked", "true" if snapshot.locked else "false")


def _execution(parent: ET.Element, name: str, when: datetime | None, reason: str | None) -> None:
    info = ET.SubElement(parent, _q(name))
    if when is not None:
        _text(info, "when", _when(when))
    if reason:
        _text(info, "reason", reason)


def _media(parent: ET.Element, media: ConferenceInfoMedia) -> None:
    element = ET.SubElement(parent, _q("media"), {"id": media.id})
    _text(element, "type", media.type)
    if media.status is not None:
        _text(element, "status", media.status)
    attributes = {"key-mode": media.key_mode}
    if media.suite:
        attributes["suite"] = media.suite
    ET.SubElement(element, f"{{{MEDIA_SECURITY_NS}}}protection", attributes)
    if media.talking:
        ET.SubElement(element, f"{{{TALKER_NS}}}talking").text = "true"


def _endpoint(parent: ET.Element, endpoint: ConferenceInfoEndpoint, state: str = "full") -> None:
    element = ET.SubElement(parent, _q("endpoint"), {"entity": endpoint.entity, "state": state})
    if state == "deleted":
        return
    _text(element, "status", endpoint.status)
    _text(element, "joining-method", endpoint.joining_method)
    _execution(element, "joining-info", endpoint.joined_at, None)
    if endpoint.disconnection_method is not None:
        _text(element, "disconnection-method", endpoint.disconnection_method)
        _execution(
            element, "disconnection-info", endpoint.disconnected_at, endpoint.disconnection_reason
        )
    for media in endpoint.media:
        _media(element, media)
    for floor in endpoint.floors:
        attributes = {"id": str(floor.id), "status": floor.status}
        if floor.queue_position is not None:
            attributes["queue-position"] = str(floor.queue_position)
        ET.SubElement(element, f"{{{FLOOR_CONTROL_NS}}}floor", attributes)


def _user_head(parent: ET.Element, user: ConferenceInfoUser, state: str) -> ET.Element:
    element = ET.SubElement(parent, _q("user"), {"entity": user.entity, "state": state})
    if state == "deleted":
        return element
    if user.display_text:
        _text(element, "display-text", user.display_text)
    if user.roles:
        roles = ET.SubElement(element, _q("roles"))
        for role in user.roles:
            _text(roles, "entry", role)
    return element


def _user(parent: ET.Element, user: ConferenceInfoUser) -> None:
    element = _user_head(parent, user, "full")
    for endpoint in user.endpoints:
        _endpoint(element, endpoint)


def render_full(snapshot: ConferenceInfoSnapshot, version: int) -> bytes:
    """The full document (§5.2: at least conference-description and users)."""
    root = _root(snapshot.entity, "full", version)
    _description(root, snapshot)
    _host(root, snapshot)
    _conference_state(root, snapshot)
    users = ET.SubElement(root, _q("users"), {"state": "full"})
    for user in snapshot.users:
        _user(users, user)
    return _serialize(root)


def _description_key(s: ConferenceInfoSnapshot) -> tuple[object, ...]:
    return (s.display_text, s.conf_uris, s.available_media)


def _state_key(s: ConferenceInfoSnapshot) -> tuple[object, ...]:
    return (s.user_count, s.active, s.locked)


def _changed_user(users: ET.Element, old: ConferenceInfoUser, new: ConferenceInfoUser) -> None:
    element = _user_head(users, new, "partial")
    old_endpoints = {e.entity: e for e in old.endpoints}
    new_entities = {e.entity for e in new.endpoints}
    for endpoint in new.endpoints:
        if old_endpoints.get(endpoint.entity) != endpoint:
            _endpoint(element, endpoint)
    for entity, endpoint in old_endpoints.items():
        if entity not in new_entities:
            _endpoint(element, endpoint, "deleted")


def render_partial(
    previous: ConferenceInfoSnapshot, current: ConferenceInfoSnapshot, version: int
) -> bytes | None:
    """Only what changed from ``previous`` to ``current`` (§4.4); None if nothing did."""
    if previous == current:
        return None
    root = _root(current.entity, "partial", version)
    if _description_key(previous) != _description_key(current):
        _description(root, current)
    if _state_key(previous) != _state_key(current):
        _conference_state(root, current)
    old_users = {u.entity: u for u in previous.users}
    new_entities = {u.entity for u in current.users}
    changed = [u for u in current.users if old_users.get(u.entity) != u]
    removed = [u for u in previous.users if u.entity not in new_entities]
    if changed or removed:
        users = ET.SubElement(root, _q("users"), {"state": "partial"})
        for user in changed:
            old = old_users.get(user.entity)
            if old is None:
                _user(users, user)
            else:
                _changed_user(users, old, user)
        for user in removed:
            _user_head(users, user, "deleted")
    return _serialize(root)


def render_deleted(entity: str, version: int) -> bytes:
    """The conference is gone (``state="deleted"``, §4.6: the subscriber stops)."""
    return _serialize(_root(entity, "deleted", version))


def _count(text: str | None) -> int | None:
    """``<user-count>`` when it is a plain ASCII number (``"²".isdigit()`` is true)."""
    if text and text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    return None


class _DoctypeRefused(Exception):
    """Raised from inside the parser at the first ``<!DOCTYPE``."""


class _NoDoctypeBuilder(ET.TreeBuilder):
    """A tree builder whose parser stops at a document type declaration.

    expat calls ``doctype()`` when it meets ``<!DOCTYPE`` in the decoded text,
    before the internal subset, so an ``<!ENTITY`` (only legal inside one) is
    never declared and nothing external is fetched or expanded.
    """

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeRefused


def parse_conference_info(data: bytes) -> ConferenceInfoNotice:
    """Read a document's root attributes, users and endpoint statuses (subscriber side)."""
    if len(data) > MAX_CONFERENCE_INFO_SIZE:
        raise ConferenceInfoError(f"document of {len(data)} bytes exceeds the cap")
    parser = ET.XMLParser(target=_NoDoctypeBuilder())
    try:
        parser.feed(data)
        root = parser.close()
    except _DoctypeRefused:
        raise ConferenceInfoError("DTDs and entity declarations are refused") from None
    except (ET.ParseError, LookupError, ValueError) as exc:
        # LookupError/ValueError: an XML declaration naming an unknown or
        # unsupported encoding (found by bench/fuzz/fuzz_conference_info.py)
        raise ConferenceInfoError(f"not well-formed XML: {exc}") from None
    if root.tag != _n("conference-info"):
        raise ConferenceInfoError(f"root element {root.tag!r} is not conference-info")
    try:
        version = int(root.get("version", ""))
    except ValueError:
        raise ConferenceInfoError("missing or invalid version attribute") from None
    count = root.findtext(f"{_n('conference-state')}/{_n('user-count')}")
    notice = ConferenceInfoNotice(
        entity=root.get("entity", ""),
        state=root.get("state", "full"),
        version=version,
        user_count=_count(count),
    )
    for user in root.iterfind(f"{_n('users')}/{_n('user')}"):
        notice.users[user.get("entity", "")] = user.get("state", "full")
        for endpoint in user.iterfind(_n("endpoint")):
            status = endpoint.findtext(_n("status"))
            state = endpoint.get("state", "full")
            entity = endpoint.get("entity", "")
            notice.endpoints[entity] = "deleted" if state == "deleted" else (status or "")
            notice.endpoint_users[entity] = user.get("entity", "")
            floor = endpoint.find(f"{{{FLOOR_CONTROL_NS}}}floor")
            if floor is not None:
                notice.floors[entity] = floor.get("status", "")
            if endpoint.find(f"{_n('media')}/{{{TALKER_NS}}}talking") is not None:
                notice.talking.add(entity)
    return notice
