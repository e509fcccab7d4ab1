"""RFC 3261 §17 SIP transactions, sans-I/O (with the RFC 6026 "Accepted" states).

The core is driven like aioquic's ``QuicConnection``: the adapter feeds parsed
messages with :meth:`SipTransactionLayer.receive` (and the current time ``now``),
then drains :meth:`~SipTransactionLayer.next_event` and
:meth:`~SipTransactionLayer.datagrams_to_send`, and re-arms ONE timer at
:meth:`~SipTransactionLayer.get_timer`, calling
:meth:`~SipTransactionLayer.handle_timer` when it fires.

Client transactions (§17.1): INVITE uses timers A (unreliable only), B and D;
non-INVITE uses E (unreliable only), F and K; a 2xx moves an INVITE client
transaction to Accepted (RFC 6026 §7.2, timer M) so 2xx retransmissions still
reach the TU, which re-sends its ACK.  The ACK for a non-2xx final response is
built here (§17.1.1.3).

Server transactions (§17.2): INVITE uses G (unreliable only), H, I and L
(RFC 6026 §7.1); non-INVITE uses J.  Matching follows §17.2.3 (magic-cookie
branch + sent-by + method, ACK matching the INVITE) with the RFC 2543 fallback.
Retransmitted requests are absorbed and the last response is re-sent.  A CANCEL
(§9.2) is a non-INVITE server transaction answered here (200, or 481 when no
INVITE matches) and reported to the TU as :class:`CancelReceived`.  An INVITE
server transaction sends 100 Trying when the TU stays silent for 200 ms (§17.2.1).

Responses are routed per §18.2.2 and RFC 3581: the layer stamps ``received``
and ``rport`` on the top Via of every request and sends responses over UDP to
those values; over TCP/TLS the destination is the source of the request, so the
adapter finds the connection by address.  Reliable transports never retransmit
and timers D, I, J and K are zero.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import secrets
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto

from focus.sip.message import (
    SipHeaders,
    SipLocalError,
    SipRemoteError,
    SipRequest,
    SipResponse,
    SipVia,
    make_response,
)

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}  # RFC 3261 §19.1.2

type SipMessage = SipRequest | SipResponse


@dataclass(frozen=True, slots=True)
class SipAddress:
    """A transport address: ``transport`` is ``"udp"``, ``"tcp"`` or ``"tls"``."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """TCP and TLS are reliable (RFC 3261 §17.1.1.2: no retransmissions)."""
        return self.transport != "udp"


@dataclass(frozen=True, slots=True)
class SipTimerConfig:
    """Timer values of RFC 3261 §17 Table 4 (seconds) and the layer's caps."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0  # §17.1.1.2: at least 32 s over unreliable transports
    trying_delay: float = 0.2  # §17.2.1: 100 Trying if the TU is silent this long
    max_transactions: int = 100_000  # ~64*T1 of state at 1500 calls/s


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request (not ACK, not CANCEL) created server transaction ``key``."""

    request: SipRequest
    source: SipAddress
    key: str


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx (outside any transaction, §17.2.1 / RFC 6026) for the TU."""

    request: SipRequest
    source: SipAddress


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched the INVITE server transaction ``invite_key`` (§9.2).

    The CANCEL itself was already answered with 200; the TU answers the INVITE
    (normally 487).
    """

    request: SipRequest
    source: SipAddress
    invite_key: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for client transaction ``key`` (retransmitted 2xx included)."""

    response: SipResponse
    key: str


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F or H fired (§17.1.1.2, §17.1.2.2, §17.2.1)."""

    key: str


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The adapter reported a transport error for transaction ``key`` (§17.1.4)."""

    key: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """Transaction ``key`` reached the Terminated state and was forgotten."""

    key: str


type SipTransactionEvent = (
    RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransportFailed
    | TransactionTerminated
)


class SipTransactionState(Enum):
    """States of the four §17 state machines (plus RFC 6026 Accepted)."""

    CALLING = auto()
    TRYING = auto()
    PROCEEDING = auto()
    COMPLETED = auto()
    ACCEPTED = auto()
    CONFIRMED = auto()
    TERMINATED = auto()


_State = SipTransactionState


@dataclass(slots=True, eq=False)
class _Transaction:
    key: str
    server: bool
    invite: bool
    request: SipRequest
    peer: SipAddress  # client: destination; server: where responses go (§18.2.2)
    state: SipTransactionState
    timers: dict[str, float] = field(default_factory=dict)
    interval: float = 0.0  # current retransmission interval (A, E or G)
    last_response: SipResponse | None = None
    ack: SipRequest | None = None  # client INVITE: ACK for the non-2xx final


_ANSWERED = SipRequest("ANSWERED", "sip:answered.invalid")  # stub for answered requests


def client_key(request: SipRequest) -> str:
    """The client transaction key of ``request`` (§17.1.3: branch + method)."""
    branch = request.vias[0].params.get("branch") or ""
    return f"c|{branch}|{request.method}"


def new_branch() -> str:
    """A fresh RFC 3261 branch (§8.1.1.7) with 64 random bits."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def response_address(via: SipVia, source: SipAddress) -> SipAddress:
    """Where responses to a request with top Via ``via`` go (§18.2.2, RFC 3581)."""
    if source.reliable:
        return source
    host = via.params.get("maddr") or via.params.get("received") or via.host
    rport = via.params.get("rport")
    port = int(rport) if rport and rport.isdigit() else (via.port or DEFAULT_PORTS["udp"])
    return SipAddress("udp", host, port)


def _same_host(sent_by: str, source: str) -> bool:
    if sent_by == source:  # the usual case, without parsing (``source`` is an IP address)
        return True
    try:
        return ipaddress.ip_address(sent_by) == ipaddress.ip_address(source)
    except ValueError:
        return False  # a domain name in sent-by always gets "received" (§18.2.1)


def _stamp_via(request: SipRequest, via: SipVia, source: SipAddress) -> SipVia:
    """Add ``received`` / fill ``rport`` on the top Via (§18.2.1, RFC 3581 §4)."""
    rport_empty = via.params.get("rport", None) == ""
    if not rport_empty and _same_host(via.host, source.host):
        return via
    via.params["received"] = source.host
    if rport_empty:
        via.params["rport"] = str(source.port)
    values = request.headers.get_all("Via")
    values[0] = str(via)
    request.headers.remove("Via")
    for value in reversed(values):
        request.headers.prepend("Via", value)
    return via


def _server_key(request: SipRequest, via: SipVia, method: str) -> str:
    """The §17.2.3 server transaction key, with the RFC 2543 fallback."""
    branch = via.params.get("branch") or ""
    sent_by = f"{via.host.lower()}:{via.port or ''}"
    if branch.startswith(MAGIC_COOKIE):
        return f"s|{branch}|{sent_by}|{method}"
    cseq_number, _ = request.cseq
    return "|".join(
        (
            "s2543",
            request.uri,
            request.from_addr.tag or "",
            request.call_id,
            str(cseq_number),
            branch,
            sent_by,
            method,
        )
    )


def _ack_for(request: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a non-2xx final response to ``request`` (§17.1.1.3)."""
    cseq_number, _ = request.cseq
    ack = SipRequest("ACK", request.uri, SipHeaders())
    ack.headers.add("Via", request.headers.get_all("Via")[0])
    for route in request.headers.get_all("Route"):
        ack.headers.add("Route", route)
    ack.headers.add("Max-Forwards", "70")
    ack.headers.copy_fields(request.headers, "From")
    ack.headers.copy_fields(response.headers, "To")
    ack.headers.add("Call-ID", request.call_id)
    ack.headers.add("CSeq", f"{cseq_number} ACK")
    return ack


def cancel_request(invite: SipRequest) -> SipRequest:
    """The CANCEL for a pending INVITE we sent (§9.1): same top Via and CSeq number."""
    cancel = SipRequest("CANCEL", invite.uri, SipHeaders())
    cancel.headers.add("Via", invite.headers.get_all("Via")[0])
    for name in ("Route", "From", "To", "Call-ID"):
        cancel.headers.copy_fields(invite.headers, name)
    cancel.headers.add("Max-Forwards", "70")
    cancel.headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    return cancel


class SipTransactionLayer:
    """All client and server transactions of one SIP element (RFC 3261 §17)."""

    def __init__(self, config: SipTimerConfig | None = None) -> None:
        self.config = config or SipTimerConfig()
        self.stats: dict[str, int] = {"refused": 0, "rejected": 0, "stray_responses": 0}
        self._transactions: dict[str, _Transaction] = {}
        self._heap: list[tuple[float, int, _Transaction, str]] = []
        self._sequence = itertools.count()
        self._events: deque[SipTransactionEvent] = deque()
        self._outgoing: list[tuple[SipMessage, SipAddress]] = []

    # -- adapter interface -------------------------------------------------

    def next_event(self) -> SipTransactionEvent | None:
        """Pop the oldest pending event, or ``None``."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[tuple[SipMessage, SipAddress]]:
        """Messages to transmit (the adapter serialises them) and empty the queue."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction timer, or ``None``."""
        heap = self._heap
        while heap and not self._timer_valid(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._timer_valid(entry):
                txn, name = entry[2], entry[3]
                del txn.timers[name]
                _TIMER_HANDLERS[name](self, txn, now)

    def __len__(self) -> int:
        return len(self._transactions)

    def peer(self, key: str) -> SipAddress | None:
        """Destination (client) or response address (server) of transaction ``key``."""
        txn = self._transactions.get(key)
        return txn.peer if txn is not None else None

    def needs_final_response(self, key: str) -> bool:
        """True while server transaction ``key`` still awaits the TU's final response."""
        txn = self._transactions.get(key)
        return txn is not None and txn.server and txn.state in (_State.TRYING, _State.PROCEEDING)

    def receive(self, message: SipMessage, source: SipAddress, now: float) -> None:
        """Process a parsed message from ``source``; peer errors never escape."""
        try:
            if isinstance(message, SipRequest):
                self._receive_request(message, source, now)
            else:
                self._receive_response(message, now)
        except SipRemoteError as exc:
            self._reject(message, source, exc)

    def send_request(self, request: SipRequest, dest: SipAddress, now: float) -> str:
        """Start a client transaction for ``request`` (top Via with a z9hG4bK branch)."""
        if request.method == "ACK":
            raise SipLocalError("ACK has no client transaction: use send_stateless()")
        vias = request.vias
        if not vias or not (vias[0].params.get("branch") or "").startswith(MAGIC_COOKIE):
            raise SipLocalError("request needs a top Via with a z9hG4bK branch")
        key = client_key(request)
        if key in self._transactions:
            raise SipLocalError(f"client transaction {key} already exists")
        if len(self._transactions) >= self.config.max_transactions:
            raise SipLocalError("too many concurrent transactions")
        invite = request.method == "INVITE"
        state = _State.CALLING if invite else _State.TRYING
        txn = _Transaction(key, False, invite, request, dest, state, interval=self.config.t1)
        self._transactions[key] = txn
        self._outgoing.append((request, dest))
        if not dest.reliable:
            self._arm(txn, "A" if invite else "E", self.config.t1, now)
        self._arm(txn, "B" if invite else "F", 64 * self.config.t1, now)
        return key

    def send_response(self, response: SipResponse, now: float, *, key: str | None = None) -> None:
        """Send ``response`` through its server transaction (found by ``key`` or Via)."""
        if key is None:
            via = response.vias[0]
            branch, sent_by = via.params.get("branch") or "", f"{via.host.lower()}:{via.port or ''}"
            key = f"s|{branch}|{sent_by}|{response.cseq[1]}"
        txn = self._transactions.get(key)
        if txn is None or not txn.server:
            raise SipLocalError(f"no server transaction {key}")
        if txn.invite:
            self._respond_invite(txn, response, now)
        else:
            self._respond_non_invite(txn, response, now)
        if response.status >= 200:
            # the request is not needed after the final response (retransmissions are
            # matched by key): keep only a stub, so the up-to-64*T1 lingering of
            # Completed/Accepted transactions costs little memory at high call rates
            txn.request = _ANSWERED

    def send_stateless(self, message: SipMessage, dest: SipAddress) -> None:
        """Transmit outside any transaction (ACK for 2xx, 2xx retransmissions)."""
        self._outgoing.append((message, dest))

    def transport_error(self, key: str) -> None:
        """The adapter could not deliver for transaction ``key`` (§17.1.4, §17.2.4)."""
        txn = self._transactions.get(key)
        if txn is not None:
            self._events.append(TransportFailed(key))
            self._terminate(txn)

    # -- timers ------------------------------------------------------------

    def _arm(self, txn: _Transaction, name: str, delay: float, now: float) -> None:
        when = now + delay
        txn.timers[name] = when
        heapq.heappush(self._heap, (when, next(self._sequence), txn, name))

    def _linger(self, txn: _Transaction, name: str, delay: float, now: float) -> None:
        """Arm a Completed-state timer, or terminate at once when it is zero (§17)."""
        if txn.peer.reliable or delay <= 0:
            self._terminate(txn)
        else:
            self._arm(txn, name, delay, now)

    @staticmethod
    def _timer_valid(entry: tuple[float, int, _Transaction, str]) -> bool:
        when, _, txn, name = entry
        return txn.state is not _State.TERMINATED and txn.timers.get(name) == when

    def _terminate(self, txn: _Transaction) -> None:
        txn.state = _State.TERMINATED
        txn.timers.clear()
        if self._transactions.get(txn.key) is txn:
            del self._transactions[txn.key]
        self._events.append(TransactionTerminated(txn.key))

    def _timed_out(self, txn: _Transaction, now: float) -> None:
        self._events.append(TransactionTimedOut(txn.key))
        self._terminate(txn)

    def _expire(self, txn: _Transaction, now: float) -> None:
        self._terminate(txn)

    def _retransmit_request(self, txn: _Transaction, now: float) -> None:
        """Timers A (doubling, §17.1.1.2) and E (capped at T2, §17.1.2.2)."""
        self._outgoing.append((txn.request, txn.peer))
        if txn.invite:
            txn.interval *= 2
        elif txn.state is _State.TRYING:
            txn.interval = min(2 * txn.interval, self.config.t2)
        else:
            txn.interval = self.config.t2
        self._arm(txn, "A" if txn.invite else "E", txn.interval, now)

    def _retransmit_response(self, txn: _Transaction, now: float) -> None:
        """Timer G (§17.2.1): resend the final response, interval capped at T2."""
        assert txn.last_response is not None
        self._outgoing.append((txn.last_response, txn.peer))
        txn.interval = min(2 * txn.interval, self.config.t2)
        self._arm(txn, "G", txn.interval, now)

    def _send_trying(self, txn: _Transaction, now: float) -> None:
        """§17.2.1: 100 Trying when the TU has not answered within 200 ms."""
        if txn.state is _State.PROCEEDING and txn.last_response is None:
            txn.last_response = make_response(txn.request, 100)
            self._outgoing.append((txn.last_response, txn.peer))

    # -- server side -------------------------------------------------------

    def _receive_request(self, request: SipRequest, source: SipAddress, now: float) -> None:
        vias = request.vias
        if not vias:
            raise SipRemoteError(400, "Missing Via")
        number, method = request.cseq  # §8.1.1: the mandatory fields must be usable
        if method != request.method:
            raise SipRemoteError(400, "CSeq method does not match the Request-Line")
        request.call_id, request.from_addr, request.to_addr  # noqa: B018
        via = _stamp_via(request, vias[0], source)
        if request.method == "ACK":
            self._receive_ack(request, via, source, now)
            return
        key = _server_key(request, via, request.method)
        txn = self._transactions.get(key)
        if txn is not None:
            if txn.state in (_State.PROCEEDING, _State.COMPLETED) and txn.last_response:
                self._outgoing.append((txn.last_response, txn.peer))
            return
        peer = response_address(via, source)
        if len(self._transactions) >= self.config.max_transactions:
            self.stats["refused"] += 1
            refusal = make_response(request, 503, headers=[("Retry-After", "5")])
            self._outgoing.append((refusal, peer))
            return
        invite = request.method == "INVITE"
        state = _State.PROCEEDING if invite else _State.TRYING
        txn = _Transaction(key, True, invite, request, peer, state, interval=self.config.t1)
        self._transactions[key] = txn
        if invite:
            self._arm(txn, "trying", self.config.trying_delay, now)
        if request.method == "CANCEL":
            self._receive_cancel(txn, via, source, now)
        else:
            self._events.append(RequestReceived(request, source, key))

    def _receive_ack(self, ack: SipRequest, via: SipVia, source: SipAddress, now: float) -> None:
        txn = self._transactions.get(_server_key(ack, via, "INVITE"))
        if txn is None or not txn.server or txn.state is _State.ACCEPTED:
            self._events.append(AckReceived(ack, source))
        elif txn.state is _State.COMPLETED:
            txn.state = _State.CONFIRMED  # §17.2.1: absorb, then timer I
            txn.timers.clear()
            self._linger(txn, "I", self.config.t4, now)

    def _receive_cancel(
        self, txn: _Transaction, via: SipVia, source: SipAddress, now: float
    ) -> None:
        """§9.2: answer the CANCEL here and tell the TU about the INVITE."""
        invite_key = _server_key(txn.request, via, "INVITE")
        invite = self._transactions.get(invite_key)
        if invite is None or not invite.server:
            self._respond_non_invite(txn, make_response(txn.request, 481), now)
            return
        sent = invite.last_response
        to_tag = sent.to_addr.tag if sent is not None else None
        answer = make_response(txn.request, 200, to_tag=to_tag or secrets.token_hex(8))
        self._respond_non_invite(txn, answer, now)
        if invite.state is _State.PROCEEDING:
            self._events.append(CancelReceived(txn.request, source, invite_key))

    def _respond_invite(self, txn: _Transaction, response: SipResponse, now: float) -> None:
        """The TU side of the INVITE server transaction (§17.2.1, RFC 6026 §7.1)."""
        status = response.status
        if txn.state is _State.ACCEPTED and 200 <= status < 300:
            self._outgoing.append((response, txn.peer))  # TU's 2xx retransmission
            return
        if txn.state is not _State.PROCEEDING:
            raise SipLocalError(f"INVITE transaction {txn.key} already answered")
        self._outgoing.append((response, txn.peer))
        txn.last_response = response
        if status < 200:
            txn.timers.pop("trying", None)
            return
        txn.timers.clear()
        if status < 300:
            txn.state = _State.ACCEPTED
            self._arm(txn, "L", 64 * self.config.t1, now)
            return
        txn.state = _State.COMPLETED
        if not txn.peer.reliable:
            self._arm(txn, "G", self.config.t1, now)
        self._arm(txn, "H", 64 * self.config.t1, now)

    def _respond_non_invite(self, txn: _Transaction, response: SipResponse, now: float) -> None:
        """The TU side of the non-INVITE server transaction (§17.2.2)."""
        if txn.state not in (_State.TRYING, _State.PROCEEDING):
            raise SipLocalError(f"transaction {txn.key} already answered")
        self._outgoing.append((response, txn.peer))
        txn.last_response = response
        if response.status < 200:
            txn.state = _State.PROCEEDING
            return
        txn.state = _State.COMPLETED
        self._linger(txn, "J", 64 * self.config.t1, now)

    def _reject(self, message: SipMessage, source: SipAddress, exc: SipRemoteError) -> None:
        """Answer a bad request statelessly with the error's status, else drop it."""
        self.stats["rejected"] += 1
        if not isinstance(message, SipRequest) or message.method == "ACK":
            return
        try:
            response = make_response(message, exc.status, exc.reason, headers=exc.headers)
        except SipRemoteError:
            return
        try:
            peer = response_address(message.vias[0], source)
        except (SipRemoteError, IndexError):
            peer = source  # unreadable Via: answer where the request came from
        self._outgoing.append((response, peer))

    # -- client side -------------------------------------------------------

    def _receive_response(self, response: SipResponse, now: float) -> None:
        vias = response.vias
        if len(vias) != 1:  # §18.1.2: not for us (or broken)
            self.stats["stray_responses"] += 1
            return
        key = f"c|{vias[0].params.get('branch') or ''}|{response.cseq[1]}"
        txn = self._transactions.get(key)
        if txn is None:
            self.stats["stray_responses"] += 1
        elif txn.invite:
            self._client_invite_response(txn, response, now)
        elif txn.state in (_State.TRYING, _State.PROCEEDING):
            self._events.append(ResponseReceived(response, key))
            if response.status < 200:
                txn.state = _State.PROCEEDING
            else:
                txn.state = _State.COMPLETED
                txn.timers.clear()
                self._linger(txn, "K", self.config.t4, now)

    def _client_invite_response(self, txn: _Transaction, response: SipResponse, now: float) -> None:
        """§17.1.1.2 and RFC 6026 §7.2; retransmitted non-2xx finals re-ACKed."""
        status, state = response.status, txn.state
        if state is _State.ACCEPTED:
            if 200 <= status < 300:
                self._events.append(ResponseReceived(response, txn.key))
            return
        if state is _State.COMPLETED:
            if status >= 300 and txn.ack is not None:
                self._outgoing.append((txn.ack, txn.peer))
            return
        self._events.append(ResponseReceived(response, txn.key))
        if status < 200:
            txn.state = _State.PROCEEDING
            txn.timers.clear()
            return
        txn.timers.clear()
        if status < 300:
            txn.state = _State.ACCEPTED
            self._arm(txn, "M", 64 * self.config.t1, now)
            return
        txn.state = _State.COMPLETED
        txn.ack = _ack_for(txn.request, response)
        self._outgoing.append((txn.ack, txn.peer))
        self._linger(txn, "D", self.config.timer_d, now)


_TIMER_HANDLERS = {
    "A": SipTransactionLayer._retransmit_request,
    "E": SipTransactionLayer._retransmit_request,
    "G": SipTransactionLayer._retransmit_response,
    "B": SipTransactionLayer._timed_out,
    "F": SipTransactionLayer._timed_out,
    "H": SipTransactionLayer._timed_out,
    "D": SipTransactionLayer._expire,
    "I": SipTransactionLayer._expire,
    "J": SipTransactionLayer._expire,
    "K": SipTransactionLayer._expire,
    "L": SipTransactionLayer._expire,
    "M": SipTransactionLayer._expire,
    "trying": SipTransactionLayer._send_trying,
}
