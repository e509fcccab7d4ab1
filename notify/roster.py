"""The focus's live calls as conference-info snapshots (RFC 4575 §5.6).

:class:`ConferenceRoster` follows one conference through the focus events:
when each call joined (``joining-info``) and how departed endpoints left
(``disconnection-method`` / ``disconnection-info``).  Departed endpoints stay in
the document as ``disconnected`` until ``max_departed`` newer departures push
them out (they are then reported ``deleted``).

Mapping (focus → RFC 4575):

* user ``entity`` = the participant's AOR (``sip:anonymous@anonymous.invalid``
  for anonymous ones), ``roles`` = its role on the authorized list;
* endpoint ``entity`` = the Contact of its dialog; ``status``: connecting →
  ``dialing-in`` / ``dialing-out``, connected → ``connected``, muted by the focus →
  ``muted-via-focus``, on hold → ``on-hold``; joining-method ``dialed-in`` or
  ``dialed-out``; no ``call-info``: the dialog's Call-ID and tags are nobody
  else's business (RFC 4575 §5.7.3 makes them optional; see
  :mod:`notify.conference_info`);
* media ``id`` = the m-line index, ``type`` = the media kind, ``status`` = the
  direction from the participant's side (the inverse of the focus's answer),
  and the key mode + suite in ``msec:protection``;
* disconnection-method: ``bye`` → departed, ``no ACK`` → failed, anything the
  focus decided (policy, API hang-up, shutdown) → booted;
* floors (BFCP, :func:`floor_states`): the floor requests of the call's BFCP
  user as beneficiary — Granted → ``granted``, Accepted → ``queued`` (with its
  queue position), Pending → ``pending`` — in ``mfloor:floor`` elements.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from focus.call import CallState, FocusCall
from focus.conference import ConferenceInfo
from mrf.bfcp.codes import BfcpRequestStatus
from notify.conference_info import (
    ConferenceInfoEndpoint,
    ConferenceInfoFloor,
    ConferenceInfoMedia,
    ConferenceInfoSnapshot,
    ConferenceInfoUser,
)

ANONYMOUS_ENTITY = "sip:anonymous@anonymous.invalid"
_INVERSE = {"sendonly": "recvonly", "recvonly": "sendonly"}
_DEPARTED = {"bye": "departed", "no ACK": "failed"}
_FLOOR_STATUS = {
    BfcpRequestStatus.GRANTED: "granted",
    BfcpRequestStatus.ACCEPTED: "queued",
    BfcpRequestStatus.PENDING: "pending",
}

type FloorStates = dict[str, tuple[ConferenceInfoFloor, ...]]  # call-id -> its floors


def floor_states(control: Any, conference: str) -> FloorStates:
    """The floors each call of ``conference`` holds or waits for (``mrf.floor.FloorControl``).

    Reads the floor server's requests (RFC 8855 §5.2.5 REQUEST-STATUS) and maps
    each beneficiary's User ID to the call bound to it.
    """
    state = control.server.find_conference(conference) if control is not None else None
    if state is None:
        return {}
    found: dict[str, list[ConferenceInfoFloor]] = {}
    for request in state.requests.values():
        status = _FLOOR_STATUS.get(request.status)
        session = control.sessions.get((state.conference_id, request.beneficiary))
        if status is None or session is None:
            continue
        position = request.queue_position if status == "queued" else None
        for floor_id in request.floors:
            found.setdefault(session.call_id, []).append(
                ConferenceInfoFloor(floor_id, status, position or None)
            )
    return {call_id: tuple(sorted(f, key=lambda x: x.id)) for call_id, f in found.items()}


def _status(call: FocusCall) -> str:
    if call.state is CallState.CONNECTING:
        return "dialing-out" if call.joined_by == "dial-out" else "dialing-in"
    if call.state is CallState.LEFT:
        return "disconnected"
    if call.muted:
        return "muted-via-focus"
    return "on-hold" if call.state is CallState.ON_HOLD else "connected"


def _media(call: FocusCall) -> tuple[ConferenceInfoMedia, ...]:
    if call.plan is None:
        return ()
    return tuple(
        ConferenceInfoMedia(
            id=str(stream.index),
            type=stream.kind,
            status=_INVERSE.get(str(stream.direction_answer), str(stream.direction_answer)),
            key_mode=stream.key_mode,
            suite=stream.crypto.suite if stream.crypto else None,
            talking=stream.index in call.talking_streams,
        )
        for stream in call.plan.streams
        if stream.accepted
    )


def endpoint_entity(call: FocusCall) -> str:
    """The endpoint key: the Contact of the participant's dialog (else its Call-ID)."""
    if call.dialog is not None:
        return call.dialog.remote_target
    return f"{call.participant};call-id={call.call_id}"


def _endpoint(
    call: FocusCall, joined_at: datetime | None, floors: tuple[ConferenceInfoFloor, ...] = ()
) -> ConferenceInfoEndpoint:
    return ConferenceInfoEndpoint(
        entity=endpoint_entity(call),
        status=_status(call),
        joining_method="dialed-out" if call.joined_by == "dial-out" else "dialed-in",
        joined_at=joined_at,
        media=_media(call),
        floors=floors,
    )


class ConferenceRoster:
    """One conference's join times and departures; builds snapshots."""

    def __init__(self, name: str, *, max_departed: int = 100) -> None:
        self.name = name
        self.max_departed = max_departed
        self.joined_at: dict[str, datetime] = {}  # call-id -> when
        self._entities: dict[str, tuple[str, ConferenceInfoEndpoint]] = {}  # call-id -> last seen
        self._departed: OrderedDict[str, tuple[str, ConferenceInfoEndpoint]] = OrderedDict()

    def joined(self, call: FocusCall, now: datetime | None = None) -> None:
        self.joined_at[call.call_id] = now or datetime.now(UTC)

    def seen(self, call: FocusCall, floors: tuple[ConferenceInfoFloor, ...] = ()) -> None:
        """Remember the call's last endpoint (its entity survives the dialog)."""
        user = call.identity.aor or ANONYMOUS_ENTITY
        endpoint = _endpoint(call, self.joined_at.get(call.call_id), floors)
        self._entities[call.call_id] = (user, endpoint)

    def left(self, call_id: str, reason: str, now: datetime | None = None) -> None:
        """The call ended: keep it as a disconnected endpoint (capped)."""
        self.joined_at.pop(call_id, None)
        last = self._entities.pop(call_id, None)
        if last is None:
            return
        user, endpoint = last
        gone = replace(
            endpoint,
            status="disconnected",
            disconnection_method=_DEPARTED.get(reason, "booted"),
            disconnected_at=now or datetime.now(UTC),
            disconnection_reason=reason,
            media=(),
            floors=(),
        )
        self._departed[call_id] = (user, gone)
        while len(self._departed) > self.max_departed:
            self._departed.popitem(last=False)

    def snapshot(
        self,
        info: ConferenceInfo,
        calls: list[FocusCall],
        conference_uri: str,
        host_uri: str,
        floors: FloorStates | None = None,
    ) -> ConferenceInfoSnapshot:
        """The conference as RFC 4575 describes it, live calls first."""
        roles = info.authorized()
        users: dict[str, list[ConferenceInfoEndpoint]] = {}
        live: set[str] = set()
        for call in calls:
            self.seen(call, (floors or {}).get(call.call_id, ()))
            user, endpoint = self._entities[call.call_id]
            users.setdefault(user, []).append(endpoint)
            live.add(endpoint.entity)
        for user, endpoint in reversed(self._departed.values()):  # newest first
            if endpoint.entity not in live:
                users.setdefault(user, []).append(endpoint)
        return ConferenceInfoSnapshot(
            entity=conference_uri,
            display_text=info.name,
            conf_uris=(conference_uri,),
            host_uris=(host_uri,),
            locked=info.policy.locked,  # RFC 4575 §5.5 conference-state/locked
            users=tuple(
                ConferenceInfoUser(
                    entity=user,
                    roles=(roles[user],) if user in roles else (),
                    endpoints=_unique(endpoints),
                )
                for user, endpoints in users.items()
            ),
        )


def _unique(endpoints: list[ConferenceInfoEndpoint]) -> tuple[ConferenceInfoEndpoint, ...]:
    """Endpoints are keyed by entity (RFC 4575 §4.5): keep the first of each."""
    seen: dict[str, ConferenceInfoEndpoint] = {}
    for endpoint in endpoints:
        seen.setdefault(endpoint.entity, endpoint)
    return tuple(seen.values())
