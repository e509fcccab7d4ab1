"""The floor control server, sans-I/O (RFC 8855 §12–§13; RFC 4582 §12–§13 for version 1).

:class:`BfcpFloorServer` keeps the conferences the focus created
(:meth:`add_conference`, :meth:`add_user`, :meth:`remove_user`) and answers
the requests a :class:`~mrf.bfcp.connection.BfcpConnection` delivered
(:meth:`handle`).  Every call returns :class:`BfcpOutgoing` messages: answers
(the request's IDs) and notifications (Transaction ID 0, RFC 8855 §8):

* FloorRequestStatus to the requester and beneficiary whenever a request's
  status or queue position changes;
* FloorStatus to every user subscribed to a floor (its last FloorQuery) whenever
  a request on that floor changes.

Policy: with no chair present (no chair user with a bound connection) accepted
requests are granted automatically in queue order; with one, requests stay
Pending until a ChairAction accepts or denies them, and the chair may revoke a
granted floor.  Only a chair may send ChairAction, request for a beneficiary
(BENEFICIARY-ID) or query another user (Error 5 otherwise, RFC 8855 §13.1.1).

The adapter guarantees that the message's Conference ID and User ID are those
bound to the connection (RFC 8855 §9); the server still answers Error 1 / 2 for
IDs it does not know.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mrf.bfcp.attribute import BfcpAttribute, BfcpGroup, BfcpStatus
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpErrorCode as E
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.codes import BfcpPriority
from mrf.bfcp.codes import BfcpRequestStatus as S
from mrf.bfcp.connection import error_message
from mrf.bfcp.errors import BfcpLocalError, BfcpRemoteError
from mrf.bfcp.floor import MAX_FLOORS, BfcpConference, BfcpFloorConfig, BfcpFloorRequest, BfcpUser
from mrf.bfcp.message import MESSAGES, BfcpMessage

__all__ = ["SUPPORTED_PRIMITIVES", "BfcpFloorServer", "BfcpOutgoing"]

# What HelloAck announces over TCP/TLS: 1..13 (14..17 belong to UDP, RFC 8855 §5.3.12).
SUPPORTED_PRIMITIVES = tuple(p for p in MESSAGES if p <= P.ERROR)
SUPPORTED_ATTRIBUTES = tuple(int(t) for t in T)


@dataclass(frozen=True, slots=True)
class BfcpOutgoing:
    """A message for the connection bound to (``conference_id``, ``user_id``)."""

    conference_id: int
    user_id: int
    message: BfcpMessage


type _Handler = Callable[[BfcpConference, BfcpUser, BfcpMessage], list[BfcpOutgoing]]


class BfcpFloorServer:
    """All conferences' floor state; pure, driven by :meth:`handle`."""

    def __init__(
        self,
        config: BfcpFloorConfig | None = None,
        random_id: Callable[[], int] | None = None,
    ) -> None:
        self.config = config or BfcpFloorConfig()
        self.conferences: dict[int, BfcpConference] = {}
        self._random_id = random_id or (lambda: secrets.randbits(32))
        self._handlers: dict[int, _Handler] = {
            P.FLOOR_REQUEST: self._handle_floor_request,
            P.FLOOR_RELEASE: self._handle_floor_release,
            P.FLOOR_REQUEST_QUERY: self._handle_floor_request_query,
            P.USER_QUERY: self._handle_user_query,
            P.FLOOR_QUERY: self._handle_floor_query,
            P.CHAIR_ACTION: self._handle_chair_action,
            P.HELLO: self._handle_hello,
            P.GOODBYE: self._handle_goodbye,
        }

    # -- the focus's side -------------------------------------------------------------

    def add_conference(self, name: str, floors: dict[int, str]) -> int:
        """A new conference with ``floors`` (floor ID -> stream label); its random ID."""
        if len(self.conferences) >= self.config.max_conferences:
            raise BfcpLocalError("too many conferences")
        if not 0 < len(floors) <= MAX_FLOORS or not all(0 < f <= 0xFFFF for f in floors):
            raise BfcpLocalError(f"invalid floors {floors!r} (1..{MAX_FLOORS} IDs in 1..65535)")
        conference_id = 0
        while conference_id == 0 or conference_id in self.conferences:
            conference_id = self._random_id() & 0xFFFFFFFF
        self.conferences[conference_id] = BfcpConference(conference_id, name, dict(floors))
        return conference_id

    def find_conference(self, name: str) -> BfcpConference | None:
        return next((c for c in self.conferences.values() if c.name == name), None)

    def decide(
        self, conference_id: int, request_id: int, decision: S, status_info: str = ""
    ) -> list[BfcpOutgoing]:
        """A chair decision taken outside BFCP (the web control room), as a ChairAction
        would take it (RFC 8855 §5.3.9): ``GRANTED`` puts a waiting request at the head
        of the queue, ``DENIED`` ends it, ``REVOKED`` takes a granted floor back.
        :class:`BfcpLocalError` for an unknown request or a decision its state forbids."""
        conference = self.conferences.get(conference_id)
        request = conference.requests.get(request_id) if conference is not None else None
        if conference is None or request is None:
            raise BfcpLocalError(f"no floor request {request_id} in conference {conference_id}")
        before = conference.snapshot()
        try:
            self._apply_decision(conference, request, decision)
        except BfcpRemoteError as exc:
            raise BfcpLocalError(exc.reason) from None
        request.status_info = status_info
        return self._settle(conference, before, request.floors)

    def add_user(
        self, conference_id: int, uri: str, display_name: str = "", *, chair: bool = False
    ) -> int:
        """Register a participant; returns its User ID (unique in the conference, never 0)."""
        conference = self.conferences.get(conference_id)
        if conference is None or len(conference.users) >= self.config.max_users:
            raise BfcpLocalError(f"cannot add a user to conference {conference_id}")
        user_id = 1
        while user_id in conference.users:
            user_id += 1
        conference.users[user_id] = BfcpUser(user_id, uri, display_name, chair)
        return user_id

    def remove_user(self, conference_id: int, user_id: int) -> list[BfcpOutgoing]:
        """The participant left: its requests end (RFC 8855 §13: release on leave)."""
        conference = self.conferences.get(conference_id)
        if conference is None or user_id not in conference.users:
            return []
        before = conference.snapshot()
        for request in [r for r in conference.requests.values() if user_id in r.parties]:
            conference.finish(request, S.RELEASED if request.status is S.GRANTED else S.CANCELLED)
        del conference.users[user_id]
        out = self._settle(conference, before)
        if not conference.users:
            del self.conferences[conference_id]
        return out

    def set_connected(
        self, conference_id: int, user_id: int, connected: bool
    ) -> list[BfcpOutgoing]:
        """A connection was bound to (or lost by) the user; a chair's presence matters."""
        conference = self.conferences.get(conference_id)
        user = conference.users.get(user_id) if conference else None
        if conference is None or user is None:
            return []
        before = conference.snapshot()
        user.connected = connected
        return self._settle(conference, before)

    # -- messages -----------------------------------------------------------------------

    def handle(self, message: BfcpMessage) -> list[BfcpOutgoing]:
        """Answer one well-formed request (grammar already checked by the connection)."""
        conference = self.conferences.get(message.conference_id)
        if conference is None:
            return [self._error(message, E.CONFERENCE_DOES_NOT_EXIST, "unknown Conference ID")]
        user = conference.users.get(message.user_id)
        if user is None:
            return [self._error(message, E.USER_DOES_NOT_EXIST, "unknown User ID")]
        handler = self._handlers.get(message.primitive)
        if handler is None:
            return [self._error(message, E.UNKNOWN_PRIMITIVE, f"primitive {message.primitive}")]
        try:
            return handler(conference, user, message)
        except BfcpRemoteError as exc:
            conference.finished.clear()
            return [self._error(message, exc.code, exc.reason, exc.details)]

    def _error(
        self, message: BfcpMessage, code: int, info: str, details: bytes = b""
    ) -> BfcpOutgoing:
        return BfcpOutgoing(
            message.conference_id, message.user_id, error_message(message, code, info, details)
        )

    @staticmethod
    def _answer(
        request: BfcpMessage, primitive: int, attributes: tuple[BfcpAttribute, ...]
    ) -> BfcpOutgoing:
        message = BfcpMessage(
            primitive, request.conference_id, request.transaction_id, request.user_id, attributes
        )
        return BfcpOutgoing(request.conference_id, request.user_id, message)

    def _handle_hello(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        attributes = (
            BfcpAttribute(T.SUPPORTED_PRIMITIVES, SUPPORTED_PRIMITIVES),
            BfcpAttribute(T.SUPPORTED_ATTRIBUTES, SUPPORTED_ATTRIBUTES),
        )
        return [self._answer(message, P.HELLO_ACK, attributes)]

    def _handle_goodbye(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        before = conference.snapshot()
        for request in [r for r in conference.requests.values() if user.user_id in r.parties]:
            conference.finish(request, S.RELEASED if request.status is S.GRANTED else S.CANCELLED)
        user.subscriptions.clear()
        return [self._answer(message, P.GOODBYE_ACK, ()), *self._settle(conference, before)]

    def _handle_floor_request(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        floors = tuple(dict.fromkeys(message.ints(T.FLOOR_ID)))
        unknown = [f for f in floors if f not in conference.floors]
        if unknown:
            raise BfcpRemoteError(E.INVALID_FLOOR_ID, f"no floor {unknown[0]} in this conference")
        beneficiary = self._beneficiary(conference, user, message)
        ongoing = [r for r in conference.requests.values() if beneficiary in r.parties]
        if len(ongoing) >= self.config.max_requests_per_user:
            raise BfcpRemoteError(E.MAX_FLOOR_REQUESTS_REACHED, "too many ongoing floor requests")
        priority = message.ints(T.PRIORITY)
        request = BfcpFloorRequest(
            conference.new_request_id(), user.user_id, beneficiary, floors,
            min(priority[0], BfcpPriority.HIGHEST) if priority else BfcpPriority.NORMAL,
            conference.next_sequence(),
            info=message.text(T.PARTICIPANT_PROVIDED_INFO) or "",
        )  # fmt: skip
        conference.requests[request.request_id] = request
        answer = self._answer(message, P.FLOOR_REQUEST_STATUS, (conference.information(request),))
        before = conference.snapshot()
        if request.beneficiary != request.requester:
            before.pop(request.request_id)  # the beneficiary learns of it by notification
        return [answer, *self._settle(conference, before, floors)]

    def _beneficiary(self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage) -> int:
        named = message.ints(T.BENEFICIARY_ID)
        if not named or named[0] == user.user_id:
            return user.user_id
        if not user.chair:
            raise BfcpRemoteError(E.UNAUTHORIZED_OPERATION, "only a chair may name a beneficiary")
        if named[0] not in conference.users:
            raise BfcpRemoteError(E.USER_DOES_NOT_EXIST, f"no user {named[0]}")
        return named[0]

    def _request(
        self, conference: BfcpConference, user: BfcpUser, request_id: int, *, chair_ok: bool = True
    ) -> BfcpFloorRequest:
        request = conference.requests.get(request_id)
        if request is None:
            raise BfcpRemoteError(
                E.FLOOR_REQUEST_ID_DOES_NOT_EXIST, f"no floor request {request_id}"
            )
        if user.user_id not in request.parties and not (chair_ok and user.chair):
            raise BfcpRemoteError(
                E.UNAUTHORIZED_OPERATION, f"floor request {request_id} is not yours"
            )
        return request

    def _handle_floor_release(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        request_id = message.ints(T.FLOOR_REQUEST_ID)[0]
        request = self._request(conference, user, request_id, chair_ok=False)
        before = conference.snapshot()
        conference.finish(request, S.RELEASED if request.status is S.GRANTED else S.CANCELLED)
        answer = self._answer(message, P.FLOOR_REQUEST_STATUS, (conference.information(request),))
        before.pop(request_id)  # the answer told the releasing user; others are notified
        out = self._settle(conference, before, request.floors, skip=(request_id, user.user_id))
        return [answer, *out]

    def _handle_floor_request_query(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        request_id = message.ints(T.FLOOR_REQUEST_ID)[0]
        request = self._request(conference, user, request_id)
        return [self._answer(message, P.FLOOR_REQUEST_STATUS, (conference.information(request),))]

    def _handle_user_query(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        target = self._beneficiary(conference, user, message)
        who = conference.users[target]
        requests = [r for r in conference.requests.values() if target in r.parties]
        attributes = (who.information(),) + tuple(conference.information(r) for r in requests)
        return [self._answer(message, P.USER_STATUS, attributes)]

    def _handle_floor_query(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        floors = tuple(dict.fromkeys(message.ints(T.FLOOR_ID)))
        unknown = [f for f in floors if f not in conference.floors]
        if unknown:
            raise BfcpRemoteError(E.INVALID_FLOOR_ID, f"no floor {unknown[0]} in this conference")
        user.subscriptions = set(floors)  # RFC 8855 §13.5: the last FloorQuery wins
        first = conference.floor_attributes(floors[0]) if floors else ()
        out = [self._answer(message, P.FLOOR_STATUS, first)]
        for floor in floors[1:]:
            out.append(
                self._notification(
                    conference, user.user_id, P.FLOOR_STATUS, conference.floor_attributes(floor)
                )
            )
        return out

    def _handle_chair_action(
        self, conference: BfcpConference, user: BfcpUser, message: BfcpMessage
    ) -> list[BfcpOutgoing]:
        if not user.chair:
            raise BfcpRemoteError(
                E.UNAUTHORIZED_OPERATION, "ChairAction from a user who is not a chair"
            )
        group = message.values(T.FLOOR_REQUEST_INFORMATION)[0]
        assert isinstance(group, BfcpGroup)
        request = self._request(conference, user, group.id)
        decision, info = self._decision(conference, group)
        before = conference.snapshot()
        self._apply_decision(conference, request, decision)
        request.status_info = info
        return [
            self._answer(message, P.CHAIR_ACTION_ACK, ()),
            *self._settle(conference, before, request.floors),
        ]

    @staticmethod
    def _apply_decision(conference: BfcpConference, request: BfcpFloorRequest, decision: S) -> None:
        """Accept (queue), grant (queue head), deny or revoke (RFC 8855 §5.3.9)."""
        waiting = request.status in (S.PENDING, S.ACCEPTED)
        if decision in (S.ACCEPTED, S.GRANTED) and request.status is not S.GRANTED:
            request.status = S.ACCEPTED
            if decision is S.GRANTED:
                request.priority = BfcpPriority.HIGHEST + 1  # ahead of every participant
        elif decision is S.DENIED and waiting:
            conference.finish(request, S.DENIED)
        elif decision is S.REVOKED and request.status is S.GRANTED:
            conference.finish(request, S.REVOKED)
        elif not (decision in (S.ACCEPTED, S.GRANTED) and request.status is S.GRANTED):
            raise BfcpRemoteError(
                E.GENERIC_ERROR, f"cannot make a {request.status.name} request {decision.name}"
            )

    @staticmethod
    def _decision(conference: BfcpConference, group: BfcpGroup) -> tuple[S, str]:
        """The chair's REQUEST-STATUS: the overall one, else the first per-floor one."""
        for attribute in group.all(T.FLOOR_REQUEST_STATUS):
            assert isinstance(attribute.value, BfcpGroup)
            if attribute.value.id not in conference.floors:
                raise BfcpRemoteError(E.INVALID_FLOOR_ID, f"no floor {attribute.value.id}")
        holders = [
            a.value for a in group.all(T.OVERALL_REQUEST_STATUS) + group.all(T.FLOOR_REQUEST_STATUS)
        ]
        for holder in holders:
            assert isinstance(holder, BfcpGroup)
            status = holder.first(T.REQUEST_STATUS)
            if status is not None and isinstance(status.value, BfcpStatus):
                text = holder.first(T.STATUS_INFO)
                try:
                    return S(status.value.status), str(text.value) if text else ""
                except ValueError:
                    break
        raise BfcpRemoteError(
            E.UNABLE_TO_PARSE_MESSAGE, "ChairAction without a valid REQUEST-STATUS"
        )

    # -- notifications ---------------------------------------------------------------

    def _notification(
        self,
        conference: BfcpConference,
        user_id: int,
        primitive: int,
        attributes: tuple[BfcpAttribute, ...],
        payload: bytes | None = None,
    ) -> BfcpOutgoing:
        message = BfcpMessage(
            primitive, conference.conference_id, 0, user_id, attributes, payload=payload
        )
        return BfcpOutgoing(conference.conference_id, user_id, message)

    def _settle(
        self,
        conference: BfcpConference,
        before: dict[int, tuple[S, int, str]],
        touched: tuple[int, ...] = (),
        skip: tuple[int, int] | None = None,
    ) -> list[BfcpOutgoing]:
        """Apply the policy, then notify every change since ``before``."""
        if not conference.chair_present:
            for request in conference.requests.values():
                if request.status is S.PENDING:
                    request.status = S.ACCEPTED
        conference.advance(self.config.max_holders)
        after = conference.snapshot()
        changed = [
            r
            for r in conference.requests.values()
            if before.get(r.request_id) != after[r.request_id]
        ]
        changed += conference.finished
        out: list[BfcpOutgoing] = []
        for request in changed:
            attribute, encoded = conference.encoded_information(request)
            for party in sorted(request.parties):
                if party in conference.users and (request.request_id, party) != skip:
                    out.append(
                        self._notification(
                            conference, party, P.FLOOR_REQUEST_STATUS, (attribute,), encoded
                        )
                    )
        floors = set(touched) | {f for r in changed for f in r.floors}
        for floor in sorted(floors):
            watchers = [u.user_id for u in conference.users.values() if floor in u.subscriptions]
            if not watchers:
                continue
            attributes, payload = conference.floor_status(floor)  # encoded once for all
            cid = conference.conference_id
            out += [
                BfcpOutgoing(
                    cid, w, BfcpMessage(P.FLOOR_STATUS, cid, 0, w, attributes, payload=payload)
                )
                for w in watchers
            ]
        conference.finished.clear()
        return out
