"""Floor control state of one conference (RFC 8855 §4, §13): floors, users, requests.

Pure data plus the queue and the grant rule; :mod:`mrf.bfcp.server` changes
it in answer to messages.  A request's life (RFC 8855 §5.2.5)::

    Pending --(chair accepts, or no chair present)--> Accepted --(capacity)--> Granted
    Pending/Accepted --(chair denies)--> Denied
    Pending/Accepted --(participant releases)--> Cancelled
    Granted --(participant releases)--> Released,  --(chair revokes)--> Revoked

The queue orders accepted requests by priority (Highest first; a PRIORITY
above 4 counts as 4, RFC 8855 §5.2.4), then by arrival.  Each floor has at
most ``max_holders`` granted requests; a request for several floors is granted
when all of them have room.  Queue positions (REQUEST-STATUS, RFC 8855 §5.2.5)
are the 1-based place among the accepted, not yet granted, requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from mrf.bfcp.attribute import BfcpAttribute, BfcpGroup, BfcpStatus, push_attributes, push_group
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpPriority
from mrf.bfcp.codes import BfcpRequestStatus as S

__all__ = [
    "ACTIVE",
    "BfcpConference",
    "BfcpFloorConfig",
    "BfcpFloorRequest",
    "BfcpUser",
    "clip",
]

ACTIVE = frozenset({S.PENDING, S.ACCEPTED, S.GRANTED})
MAX_STATUS_INFO = 40  # octets of a chair's STATUS-INFO kept in FLOOR-REQUEST-INFORMATION
MAX_FLOORS = 16  # floors per conference: each adds 8 octets to a FLOOR-REQUEST-INFORMATION


@lru_cache(maxsize=2048)
def _request_status(status: S, queue_position: int) -> tuple[BfcpAttribute, bytes]:
    """REQUEST-STATUS (RFC 8855 §5.2.5) and its encoding, shared by every request in that state."""
    attribute = BfcpAttribute(T.REQUEST_STATUS, BfcpStatus(status, queue_position))
    return attribute, push_attributes((attribute,))


@lru_cache(maxsize=4096)
def _floor_request_status(
    floor_id: int, status: S, queue_position: int
) -> tuple[BfcpAttribute, bytes]:
    """FLOOR-REQUEST-STATUS (RFC 8855 §5.2.17) for one floor, shared like REQUEST-STATUS."""
    inner, inner_bytes = _request_status(status, queue_position)
    attribute = BfcpAttribute(T.FLOOR_REQUEST_STATUS, BfcpGroup(floor_id, (inner,)))
    return attribute, push_group(T.FLOOR_REQUEST_STATUS, floor_id, inner_bytes)


def clip(text: str, max_size: int) -> str:
    """``text`` cut to at most ``max_size`` UTF-8 octets, never inside a character."""
    return text.encode("utf-8")[: max(max_size, 0)].decode("utf-8", "ignore")


@dataclass(frozen=True, slots=True)
class BfcpFloorConfig:
    """Limits of the floor control server."""

    max_holders: int = 1  # granted requests per floor
    max_requests_per_user: int = 8  # ongoing requests (Error 8 beyond)
    max_users: int = 4096  # per conference
    max_conferences: int = 10000


@dataclass(slots=True)
class BfcpUser:
    """A participant of the conference as BFCP sees it (RFC 8855 §3: User ID)."""

    user_id: int
    uri: str
    display_name: str = ""
    chair: bool = False
    connected: bool = False
    subscriptions: set[int] = field(default_factory=set)  # floors of its FloorQuery

    def information(
        self, type_: int = T.BENEFICIARY_INFORMATION, *, full: bool = True
    ) -> BfcpAttribute:
        """BENEFICIARY-/REQUESTED-BY-INFORMATION (RFC 8855 §5.2.14, §5.2.16).

        Within the one-octet Length of a grouped attribute: the URI is kept
        whole up to 240 octets, the display name only when it fits beside it
        (and never without ``full``).
        """
        uri = clip(self.uri, 240)
        inner = []
        room = 255 - 4 - (2 + len(uri.encode("utf-8")) + 3) - (2 + 3)  # padded members
        if full and self.display_name and room > 0:
            inner.append(BfcpAttribute(T.USER_DISPLAY_NAME, clip(self.display_name, room)))
        inner.append(BfcpAttribute(T.USER_URI, uri))
        return BfcpAttribute(type_, BfcpGroup(self.user_id, tuple(inner)))


@dataclass(slots=True)
class BfcpFloorRequest:
    """One floor request (RFC 8855 §4: Floor Request ID)."""

    request_id: int
    requester: int
    beneficiary: int
    floors: tuple[int, ...]
    priority: int
    sequence: int
    status: S = S.PENDING
    queue_position: int = 0
    info: str = ""  # PARTICIPANT-PROVIDED-INFO
    status_info: str = ""  # STATUS-INFO from the chair
    # FLOOR-REQUEST-INFORMATION and its encoding, valid while ``_encoded_key`` holds
    _encoded_key: tuple[object, ...] | None = field(default=None, init=False, repr=False)
    _encoded: tuple[BfcpAttribute, bytes] | None = field(default=None, init=False, repr=False)
    _static: tuple[tuple[bool, bool], tuple[BfcpAttribute, ...], bytes] | None = field(
        default=None, init=False, repr=False
    )

    @property
    def parties(self) -> set[int]:
        return {self.requester, self.beneficiary}


@dataclass(slots=True)
class BfcpConference:
    """Floors, users and requests of one conference (RFC 8855 §3: Conference ID)."""

    conference_id: int
    name: str
    floors: dict[int, str]  # floor ID -> a=label of the stream it controls
    users: dict[int, BfcpUser] = field(default_factory=dict)
    requests: dict[int, BfcpFloorRequest] = field(default_factory=dict)
    finished: list[BfcpFloorRequest] = field(default_factory=list)  # ended in this step
    _next_request_id: int = 1
    _sequence: int = 0

    @property
    def chair_present(self) -> bool:
        """A chair is present when a chair user has a bound BFCP connection."""
        return any(u.chair and u.connected for u in self.users.values())

    def new_request_id(self) -> int:
        while self._next_request_id in self.requests or self._next_request_id == 0:
            self._next_request_id = self._next_request_id % 0xFFFF + 1
        request_id = self._next_request_id
        self._next_request_id = request_id % 0xFFFF + 1
        return request_id

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def finish(self, request: BfcpFloorRequest, status: S) -> None:
        """End ``request`` with a final status; it is notified once, then forgotten."""
        request.status, request.queue_position = status, 0
        self.requests.pop(request.request_id, None)
        self.finished.append(request)

    def queue(self) -> list[BfcpFloorRequest]:
        """Accepted, not yet granted requests in service order."""
        waiting = [r for r in self.requests.values() if r.status is S.ACCEPTED]
        return sorted(waiting, key=lambda r: (-r.priority, r.sequence))

    def holders(self, floor_id: int) -> list[BfcpFloorRequest]:
        return [r for r in self.requests.values() if r.status is S.GRANTED and floor_id in r.floors]

    def advance(self, max_holders: int) -> None:
        """Grant what fits, in queue order, and renumber the queue positions.

        One pass over the queue with a holder count per floor: O(n log n) for
        n requests (the sort), not a holder scan per queued request.
        """
        held: dict[int, int] = {}
        for request in self.requests.values():
            if request.status is S.GRANTED:
                for floor in request.floors:
                    held[floor] = held.get(floor, 0) + 1
        position = 0
        for request in self.queue():
            if all(held.get(f, 0) < max_holders for f in request.floors):
                request.status, request.queue_position = S.GRANTED, 0
                for floor in request.floors:
                    held[floor] = held.get(floor, 0) + 1
            else:
                position += 1
                request.queue_position = min(position, 255)

    def snapshot(self) -> dict[int, tuple[S, int, str]]:
        return {
            r.request_id: (r.status, r.queue_position, r.status_info)
            for r in self.requests.values()
        }

    def encoded_information(self, request: BfcpFloorRequest) -> tuple[BfcpAttribute, bytes]:
        """:meth:`information` and its wire form, rebuilt only when the request changed.

        A change of one request re-announces every request of the floor in
        FloorStatus (RFC 8855 §13.5); caching each request's encoding keeps that
        a concatenation instead of n attribute encodings per change, and the
        part that never changes (who, priority, provided info) is encoded once.
        """
        key = (request.status, request.queue_position, request.status_info, self._present(request))
        if request._encoded is None or request._encoded_key != key:
            dynamic, dynamic_bytes = self._status_members(request)
            static, static_bytes = self._static_members(request)
            attribute = BfcpAttribute(
                T.FLOOR_REQUEST_INFORMATION, BfcpGroup(request.request_id, dynamic + static)
            )
            members = dynamic_bytes + static_bytes
            encoded = push_group(T.FLOOR_REQUEST_INFORMATION, request.request_id, members)
            request._encoded_key, request._encoded = key, (attribute, encoded)
        return request._encoded

    def information(self, request: BfcpFloorRequest) -> BfcpAttribute:
        """FLOOR-REQUEST-INFORMATION for ``request`` (RFC 8855 §5.2.15)."""
        return self.encoded_information(request)[0]

    def _present(self, request: BfcpFloorRequest) -> tuple[bool, bool]:
        return request.beneficiary in self.users, request.requester in self.users

    @staticmethod
    def _status_members(request: BfcpFloorRequest) -> tuple[tuple[BfcpAttribute, ...], bytes]:
        """OVERALL-REQUEST-STATUS and one FLOOR-REQUEST-STATUS per floor (the changing part)."""
        status, status_bytes = _request_status(request.status, request.queue_position)
        overall, overall_bytes = [status], status_bytes
        if request.status_info:
            info = BfcpAttribute(T.STATUS_INFO, clip(request.status_info, MAX_STATUS_INFO))
            overall.append(info)
            overall_bytes += push_attributes((info,))
        members = [
            BfcpAttribute(T.OVERALL_REQUEST_STATUS, BfcpGroup(request.request_id, tuple(overall)))
        ]
        encoded = [push_group(T.OVERALL_REQUEST_STATUS, request.request_id, overall_bytes)]
        for floor in request.floors:
            attribute, attribute_bytes = _floor_request_status(
                floor, request.status, request.queue_position
            )
            members.append(attribute)
            encoded.append(attribute_bytes)
        return tuple(members), b"".join(encoded)

    def _static_members(self, request: BfcpFloorRequest) -> tuple[tuple[BfcpAttribute, ...], bytes]:
        """BENEFICIARY-/REQUESTED-BY-INFORMATION, PRIORITY, PARTICIPANT-PROVIDED-INFO.

        A grouped attribute's Length is one octet (RFC 8855 §5.2), so the whole
        FLOOR-REQUEST-INFORMATION must fit 255 octets: the user information
        loses its display name, then is left out, when it does not fit beside
        the worst-case status part.  Cached per request and user presence.
        """
        present = self._present(request)
        if request._static is not None and request._static[0] == present:
            return request._static[1], request._static[2]
        overall = 4 + 4 + (2 + MAX_STATUS_INFO + 3)  # with the longest STATUS-INFO, padded
        budget = 255 - 4 - overall - 8 * len(request.floors) - 4  # and PRIORITY
        parts: list[BfcpAttribute] = []
        wanted: list[tuple[int, int]] = [(request.beneficiary, T.BENEFICIARY_INFORMATION)]
        if request.requester != request.beneficiary:
            wanted.append((request.requester, T.REQUESTED_BY_INFORMATION))
        for user_id, type_ in wanted:
            user = self.users.get(user_id)
            for full in (True, False):
                candidate = user.information(type_, full=full) if user else None
                size = len(push_attributes((candidate,))) if candidate else 0
                if candidate is not None and size <= budget:
                    parts.append(candidate)
                    budget -= size
                    break
        parts.append(BfcpAttribute(T.PRIORITY, min(request.priority, BfcpPriority.HIGHEST)))
        if request.info:
            info = BfcpAttribute(T.PARTICIPANT_PROVIDED_INFO, clip(request.info, budget - 5))
            if budget >= 8:
                parts.append(info)
        static = tuple(parts)
        encoded = push_attributes(static)
        request._static = (present, static, encoded)
        return static, encoded

    def floor_attributes(self, floor_id: int) -> tuple[BfcpAttribute, ...]:
        """FloorStatus contents for one floor: FLOOR-ID then its requests (RFC 8855 §5.3.8)."""
        return self.floor_status(floor_id)[0]

    def floor_status(self, floor_id: int) -> tuple[tuple[BfcpAttribute, ...], bytes]:
        """FloorStatus contents for one floor and their encoding (one per change, any watchers).

        Granted requests first, then the queue in order, then the pending ones,
        then those that ended in this step (RFC 8855 §13.5).
        """
        order = {S.GRANTED: 0, S.ACCEPTED: 1, S.PENDING: 2}
        current = sorted(
            (r for r in self.requests.values() if floor_id in r.floors),
            key=lambda r: (order.get(r.status, 3), r.queue_position, r.sequence),
        )
        ended = [r for r in self.finished if floor_id in r.floors]
        floor = BfcpAttribute(T.FLOOR_ID, floor_id)
        attributes, chunks = [floor], [push_attributes((floor,))]
        for request in [*current, *ended]:
            attribute, encoded = self.encoded_information(request)
            attributes.append(attribute)
            chunks.append(encoded)
        return tuple(attributes), b"".join(chunks)
