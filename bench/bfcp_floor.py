"""Floor requests handled per second by the floor control server, N participants contending.

In process, no sockets: each round registers N participants subscribed to the
floor (FloorQuery, untimed), then times every participant sending a
FloorRequest (parsed from bytes, grammar checked, handled, every answer and
notification encoded to bytes) and the holder releasing in turn until all have
had the floor.  Each change notifies the parties of every request whose status
or queue position changed (FloorRequestStatus) and every subscriber
(FloorStatus listing the floor's requests, RFC 8855 §13.5), so one operation
sends about 1.5 N messages.  Reported against a bare encode/decode loop of a
FloorRequest measured in the same run (house style §6).  Not part of the suite:

    .venv/bin/python bench/bfcp_floor.py [--participants 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

from mrf.bfcp.attribute import BfcpAttribute
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.message import BfcpMessage, check_grammar
from mrf.bfcp.server import BfcpFloorServer


def _handle(server: BfcpFloorServer, message: BfcpMessage) -> int:
    """Parse ``message`` from its bytes, handle it, encode every output; messages sent."""
    request = BfcpMessage.parse(bytes(message))
    check_grammar(request)
    out = server.handle(request)
    for item in out:
        bytes(item.message)
    return len(out)


def floor_round(participants: int) -> tuple[int, int, float]:
    """One contention round: (operations, messages sent, seconds spent on the operations)."""
    server = BfcpFloorServer()
    conf = server.add_conference("bench", {1: "audio"})
    users = [server.add_user(conf, f"sip:u{i}@bench.example") for i in range(participants)]
    for user in users:
        server.handle(BfcpMessage(P.FLOOR_QUERY, conf, 1, user, (BfcpAttribute(T.FLOOR_ID, 1),)))
    sent = 0
    start = time.perf_counter()
    for tid, user in enumerate(users, start=2):
        sent += _handle(
            server, BfcpMessage(P.FLOOR_REQUEST, conf, tid, user, (BfcpAttribute(T.FLOOR_ID, 1),))
        )
    for request_id, user in enumerate(users, start=1):
        release = (BfcpAttribute(T.FLOOR_REQUEST_ID, request_id),)
        sent += _handle(server, BfcpMessage(P.FLOOR_RELEASE, conf, 9, user, release))
    return 2 * participants, sent, time.perf_counter() - start


def codec_loop(count: int) -> float:
    """Encode + decode + grammar check of one FloorRequest, per second."""
    message = BfcpMessage(P.FLOOR_REQUEST, 1, 2, 3, (BfcpAttribute(T.FLOOR_ID, 1),))
    start = time.perf_counter()
    for _ in range(count):
        check_grammar(BfcpMessage.parse(bytes(message)))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    operations = messages = 0
    elapsed = 0.0
    for _ in range(args.rounds):
        ops, sent, seconds = floor_round(args.participants)
        operations, messages, elapsed = operations + ops, messages + sent, elapsed + seconds
    floor_rate = operations / elapsed
    codec_rate = codec_loop(20000)
    print(f"floor requests+releases/s with {args.participants} contending: {floor_rate:,.0f}")
    print(f"messages sent per operation: {messages / operations:.1f} "
          f"({messages / elapsed:,.0f} messages/s encoded)")  # fmt: skip
    print(f"bare FloorRequest encode+decode/s: {codec_rate:,.0f}")
    print(f"ratio floor/codec: {floor_rate / codec_rate:.4f}")


if __name__ == "__main__":
    main()
