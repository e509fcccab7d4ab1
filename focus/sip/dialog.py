"""RFC 3261 §12 SIP dialogs (UAC and UAS side), sans-I/O.

A :class:`SipDialog` holds the dialog state of §12.1 (Call-ID, tags, local and
remote URI, remote target, route set, CSeq numbers), builds in-dialog requests
(§12.2.1.1, including strict-router handling) and the ACK for a 2xx (§13.2.2.4),
checks incoming in-dialog requests (§12.2.2: a CSeq lower than the remote one
is answered 500), tells whether a request came over the dialog's flow
(:meth:`SipDialog.accepts_from`), and, on the UAS side, retransmits the 2xx to an INVITE until
the ACK arrives (§13.3.1.4: T1 doubling up to T2, giving up after 64*T1 with
:class:`AckTimedOut` so the TU can send BYE).

Timers follow the transaction layer's convention: :meth:`SipDialog.get_timer`
returns the next deadline, :meth:`SipDialog.handle_timer` is called with ``now``.
"""

from __future__ import annotations

import dataclasses
import heapq
import ipaddress
import itertools
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import Enum, auto

from focus.sip.message import (
    SipHeaders,
    SipLocalError,
    SipRemoteError,
    SipRequest,
    SipResponse,
)
from focus.sip.transaction import DEFAULT_PORTS, SipAddress, SipTimerConfig
from focus.sip.uri import SipNameAddr, SipUri

# RFC 3261 §12.2 / RFC 3311, RFC 6665, RFC 3515: requests that refresh the target.
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class SipDialogState(Enum):
    """§12: a dialog is early (1xx with a To tag) or confirmed (2xx)."""

    EARLY = auto()
    CONFIRMED = auto()
    TERMINATED = auto()


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """No ACK arrived for the UAS 2xx within 64*T1 (§13.3.1.4): the TU sends BYE."""

    dialog: SipDialog


def uri_address(uri: SipUri) -> SipAddress:
    """The transport address for ``uri`` without DNS (RFC 3263 §4 defaults)."""
    transport = (uri.params.get("transport") or "").lower()
    if uri.scheme == "sips":
        transport = "tls"
    elif transport not in DEFAULT_PORTS:
        transport = "udp"
    host = uri.params.get("maddr") or uri.host
    return SipAddress(transport, host, uri.port or DEFAULT_PORTS[transport])


def incoming_dialog_id(message: SipRequest | SipResponse) -> tuple[str, str, str]:
    """The dialog id (Call-ID, local tag, remote tag) seen by the receiver (§12).

    A request arrives at the UAS (local tag in To); a response arrives at the
    UAC (local tag in From).
    """
    from_tag, to_tag = message.from_addr.tag or "", message.to_addr.tag or ""
    if isinstance(message, SipRequest):
        return (message.call_id, to_tag, from_tag)
    return (message.call_id, from_tag, to_tag)


def _contact_uri(message: SipRequest | SipResponse) -> str | None:
    contact = message.headers.get("Contact")
    return str(SipNameAddr.parse(contact).uri) if contact else None


@dataclass(eq=False, slots=True)
class SipDialog:
    """One dialog (§12.1); ``local_uri``/``remote_uri`` carry the tags."""

    call_id: str
    local_uri: SipNameAddr
    remote_uri: SipNameAddr
    remote_target: str
    route_set: list[str]
    local_cseq: int
    remote_cseq: int | None
    is_uas: bool
    secure: bool = False
    state: SipDialogState = SipDialogState.CONFIRMED
    local_target: str | None = None  # our Contact URI, sent on target refreshes
    flow: SipAddress | None = None  # the transport flow the dialog was made over
    config: SipTimerConfig = field(default_factory=SipTimerConfig)
    _pending_2xx: SipResponse | None = None
    _retransmit_at: float = 0.0
    _give_up_at: float = 0.0
    _interval: float = 0.0

    @property
    def local_tag(self) -> str:
        return self.local_uri.tag or ""

    @property
    def remote_tag(self) -> str:
        return self.remote_uri.tag or ""

    @property
    def id(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag), comparable with :func:`incoming_dialog_id`."""
        return (self.call_id, self.local_tag, self.remote_tag)

    # -- requests we send (§12.2.1) -------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        via: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """A new in-dialog request (BYE, re-INVITE, REFER, NOTIFY, ...) with CSeq+1.

        Without ``via`` the caller (the endpoint) adds one with a fresh branch.
        """
        if method in ("ACK", "CANCEL"):
            raise SipLocalError(f"{method} reuses the INVITE CSeq: use create_ack()/CANCEL")
        if self.state is SipDialogState.TERMINATED:
            raise SipLocalError("dialog is terminated")
        self.local_cseq += 1
        request = self._build(method, self.local_cseq, via)
        if self.local_target and method in TARGET_REFRESH_METHODS:
            request.headers.add("Contact", f"<{self.local_target}>")
        for name, value in headers:
            request.headers.add(name, value)
        if body:
            request.headers.add("Content-Type", content_type or "application/sdp")
            request.body = body
        return request

    def create_ack(self, response: SipResponse, *, via: str | None = None) -> SipRequest:
        """The ACK for a 2xx to our (re-)INVITE (§13.2.2.4): same CSeq number."""
        number, method = response.cseq
        if method != "INVITE" or not 200 <= response.status < 300:
            raise SipLocalError("create_ack() is for 2xx responses to INVITE")
        return self._build("ACK", number, via)

    def next_hop(self) -> SipUri:
        """Where in-dialog requests go: the first route, else the remote target."""
        if self.route_set:
            return SipNameAddr.parse(self.route_set[0]).uri
        return SipUri.parse(self.remote_target)

    def destination(self) -> SipAddress:
        """Where in-dialog requests go: a WebSocket dialog's own flow (RFC 7118 §5:
        the client's Contact host is ``.invalid``, it is reachable over that
        connection only), else the next hop (§12.2.1.1)."""
        if self.flow is not None and self.flow.transport in ("ws", "wss"):
            return self.flow
        return uri_address(self.next_hop())

    def _build(self, method: str, cseq: int, via: str | None) -> SipRequest:
        uri, routes = self._target_and_routes()
        request = SipRequest(method, uri, SipHeaders())
        if via is not None:
            request.headers.add("Via", via)
        for route in routes:
            request.headers.add("Route", route)
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(self.local_uri))
        request.headers.add("To", str(self.remote_uri))
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{cseq} {method}")
        return request

    def _target_and_routes(self) -> tuple[str, list[str]]:
        """Request-URI and Route values per §12.2.1.1 (loose or strict first hop)."""
        if not self.route_set:
            return self.remote_target, []
        first = SipNameAddr.parse(self.route_set[0]).uri
        if "lr" in first.params:
            return self.remote_target, list(self.route_set)
        request_uri = dataclasses.replace(first, headers={})
        return str(request_uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    # -- messages we receive ---------------------------------------------------

    def accepts_from(self, source: SipAddress, trusted_proxies: Collection[str] = ()) -> bool:
        """Whether an in-dialog request from ``source`` may act on this dialog.

        The dialog ID (Call-ID and tags) is no secret -- RFC 4575 §5.7.3 even
        publishes it -- so it proves nothing about who sends.  A request belongs
        to the dialog when it comes over the ``flow`` the dialog was made on
        (RFC 5626 §3: for TCP and TLS the connection, named by its remote address
        and port; for UDP the source address and port), or from a trusted proxy
        that was that flow or is on the dialog's route set (its Record-Route):
        the proxy vouches for its side.  A dialog without a flow accepts nothing.
        """
        flow = self.flow
        if flow is None:
            return False
        if source == flow:
            return True
        if source.host not in trusted_proxies:
            return False
        hosts = [flow.host, *(_route_host(route) for route in self.route_set)]
        return any(_same_host(host, source.host) for host in hosts if host)

    def receive_request(self, request: SipRequest) -> None:
        """Check and absorb an in-dialog request (§12.2.2).

        Raises ``SipRemoteError(481)`` for another dialog and ``SipRemoteError(500)``
        for a CSeq lower than the last one; a target refresh updates the remote target.
        """
        if incoming_dialog_id(request) != self.id:
            raise SipRemoteError(481, "Call/Transaction Does Not Exist")
        number, method = request.cseq
        if method in ("ACK", "CANCEL"):
            return
        if self.remote_cseq is not None and number < self.remote_cseq:
            raise SipRemoteError(500, "CSeq Out of Order")
        self.remote_cseq = number
        if method in TARGET_REFRESH_METHODS:
            self.remote_target = _contact_uri(request) or self.remote_target

    def receive_response(self, response: SipResponse) -> None:
        """UAC: a response in this dialog confirms it / refreshes the target (§12.2.1.2)."""
        _, method = response.cseq
        if 200 <= response.status < 300 and self.state is SipDialogState.EARLY:
            self.state = SipDialogState.CONFIRMED
            self.route_set = list(reversed(response.headers.get_all("Record-Route")))
        if method in TARGET_REFRESH_METHODS and 101 <= response.status < 300:
            self.remote_target = _contact_uri(response) or self.remote_target

    def terminate(self) -> None:
        """BYE sent or received (§15): the dialog is over."""
        self.state = SipDialogState.TERMINATED
        self._pending_2xx = None

    # -- UAS 2xx retransmission (§13.3.1.4) -------------------------------------

    def start_2xx_retransmission(self, response: SipResponse, now: float) -> None:
        """Arm the 2xx retransmissions after sending ``response`` to an INVITE."""
        self.state = SipDialogState.CONFIRMED
        self._pending_2xx = response
        self._interval = self.config.t1
        self._retransmit_at = now + self.config.t1
        self._give_up_at = now + 64 * self.config.t1

    @property
    def awaiting_ack(self) -> bool:
        return self._pending_2xx is not None

    def ack_received(self, ack: SipRequest) -> bool:
        """Stop retransmitting when ``ack`` acknowledges the pending 2xx."""
        pending = self._pending_2xx
        if pending is None or ack.cseq[0] != pending.cseq[0]:
            return False
        self._pending_2xx = None
        return True

    def get_timer(self) -> float | None:
        if self._pending_2xx is None:
            return None
        return min(self._retransmit_at, self._give_up_at)

    def handle_timer(self, now: float) -> SipResponse | AckTimedOut | None:
        """The 2xx to retransmit now, :class:`AckTimedOut` at 64*T1, or nothing."""
        pending = self._pending_2xx
        if pending is None:
            return None
        if now >= self._give_up_at:
            self._pending_2xx = None
            return AckTimedOut(self)
        if now < self._retransmit_at:
            return None
        self._interval = min(2 * self._interval, self.config.t2)
        self._retransmit_at += self._interval
        return pending


def _route_host(route: str) -> str | None:
    try:
        return SipNameAddr.parse(route).uri.host
    except SipRemoteError:
        return None


def _same_host(host: str, address: str) -> bool:
    """``host`` (from a URI or a flow) is the IP address ``address``, in any notation."""
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return host.lower() == address.lower()


def _is_secure(invite: SipRequest, transport: str | None) -> bool:
    return invite.request_uri.scheme == "sips" and transport == "tls"


def _state_for(response: SipResponse) -> SipDialogState:
    if 101 <= response.status < 200:
        return SipDialogState.EARLY
    if 200 <= response.status < 300:
        return SipDialogState.CONFIRMED
    raise SipLocalError(f"a {response.status} response does not create a dialog")


def dialog_from_uas(
    invite: SipRequest,
    response: SipResponse,
    *,
    transport: str | None = None,
    flow: SipAddress | None = None,
    config: SipTimerConfig | None = None,
) -> SipDialog:
    """The UAS dialog created by sending ``response`` (with a To tag) (§12.1.1).

    ``flow`` is where ``invite`` came from (see :meth:`SipDialog.accepts_from`).
    """
    if not response.to_addr.tag:
        raise SipLocalError("the dialog-creating response needs a To tag")
    remote_target = _contact_uri(invite)
    if remote_target is None:
        raise SipRemoteError(400, "Missing Contact")
    return SipDialog(
        call_id=invite.call_id,
        local_uri=response.to_addr,
        remote_uri=invite.from_addr,
        remote_target=remote_target,
        route_set=list(invite.headers.get_all("Record-Route")),
        local_cseq=0,
        remote_cseq=invite.cseq[0],
        is_uas=True,
        secure=_is_secure(invite, transport),
        state=_state_for(response),
        local_target=_contact_uri(response),
        flow=flow,
        config=config or SipTimerConfig(),
    )


def dialog_from_uac(
    invite: SipRequest,
    response: SipResponse,
    *,
    transport: str | None = None,
    flow: SipAddress | None = None,
    config: SipTimerConfig | None = None,
) -> SipDialog:
    """The UAC dialog created by receiving ``response`` to ``invite`` (§12.1.2).

    ``flow`` is where ``invite`` went (see :meth:`SipDialog.accepts_from`).
    """
    if not response.to_addr.tag:
        raise SipRemoteError(400, "dialog-creating response without To tag")
    remote_target = _contact_uri(response) or invite.uri
    return SipDialog(
        call_id=invite.call_id,
        local_uri=invite.from_addr,
        remote_uri=response.to_addr,
        remote_target=remote_target,
        route_set=list(reversed(response.headers.get_all("Record-Route"))),
        local_cseq=invite.cseq[0],
        remote_cseq=None,
        is_uas=False,
        secure=_is_secure(invite, transport),
        state=_state_for(response),
        local_target=_contact_uri(invite),
        flow=flow,
        config=config or SipTimerConfig(),
    )


class SipAckWaiters:
    """UAS dialogs whose 2xx to INVITE awaits its ACK (§13.3.1.4), one merged timer.

    ``add()`` after sending the 2xx; ``ack_received()`` for every ACK outside a
    transaction; ``handle_timer(now)`` returns the 2xx retransmissions to send
    (with their destination) and an :class:`AckTimedOut` per dialog given up.
    """

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, str], tuple[SipDialog, SipAddress]] = {}
        self._heap: list[tuple[float, int, SipDialog]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, dialog: SipDialog, response: SipResponse, dest: SipAddress, now: float) -> None:
        dialog.start_2xx_retransmission(response, now)
        self._waiting[dialog.id] = (dialog, dest)
        self._push(dialog)

    def ack_received(self, ack: SipRequest) -> bool:
        """True when ``ack`` stopped a pending 2xx (the heap entry then goes stale)."""
        entry = self._waiting.get(incoming_dialog_id(ack))
        if entry is None or not entry[0].ack_received(ack):
            return False
        del self._waiting[entry[0].id]
        return True

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].get_timer() != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> list[tuple[SipResponse, SipAddress] | AckTimedOut]:
        out: list[tuple[SipResponse, SipAddress] | AckTimedOut] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, dialog = heapq.heappop(heap)
            entry = self._waiting.get(dialog.id)
            if dialog.get_timer() != when or entry is None:
                continue
            result = dialog.handle_timer(now)
            if isinstance(result, AckTimedOut):
                del self._waiting[dialog.id]
                out.append(result)
            elif result is not None:
                out.append((result, entry[1]))
            self._push(dialog)
        return out

    def _push(self, dialog: SipDialog) -> None:
        when = dialog.get_timer()
        if when is not None:
            heapq.heappush(self._heap, (when, next(self._sequence), dialog))
