"""The floor control server and the connection core, wired in memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.bfcp.attribute import BfcpAttribute, BfcpErrorValue, BfcpGroup, BfcpStatus
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpErrorCode as E
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.codes import BfcpRequestStatus as S
from mrf.bfcp.connection import BfcpConnection, BfcpRole
from mrf.bfcp.events import (
    BfcpConnectionFailed,
    BfcpMessageRefused,
    BfcpNotificationReceived,
    BfcpRequestReceived,
    BfcpResponseReceived,
)
from mrf.bfcp.message import BfcpMessage
from mrf.bfcp.server import BfcpFloorServer, BfcpOutgoing


def _setup(chair: bool) -> tuple[BfcpFloorServer, int, list[int]]:
    server = BfcpFloorServer(random_id=lambda: 77)
    conf = server.add_conference("room", {1: "audio"})
    users = [server.add_user(conf, f"sip:u{i}@x") for i in range(3)]
    if chair:
        users.append(server.add_user(conf, "sip:chair@x", chair=True))
        server.set_connected(conf, users[-1], True)
    return server, conf, users


def _status(out: list[BfcpOutgoing], user: int) -> list[tuple[int, int, int]]:
    """(request id, status, queue position) of FloorRequestStatus messages to ``user``."""
    found = []
    for item in out:
        if item.user_id == user and item.message.primitive == P.FLOOR_REQUEST_STATUS:
            fri = item.message.values(T.FLOOR_REQUEST_INFORMATION)[0]
            assert isinstance(fri, BfcpGroup)
            overall = fri.first(T.OVERALL_REQUEST_STATUS)
            assert overall is not None and isinstance(overall.value, BfcpGroup)
            value = overall.value.first(T.REQUEST_STATUS)
            assert value is not None and isinstance(value.value, BfcpStatus)
            found.append((fri.id, value.value.status, value.value.queue_position))
    return found


def _error(out: list[BfcpOutgoing]) -> int:
    assert len(out) == 1 and out[0].message.primitive == P.ERROR
    value = out[0].message.values(T.ERROR_CODE)[0]
    assert isinstance(value, BfcpErrorValue)
    return value.code


def _request(conf: int, user: int, tid: int = 1, *extra: BfcpAttribute) -> BfcpMessage:
    return BfcpMessage(P.FLOOR_REQUEST, conf, tid, user, (BfcpAttribute(T.FLOOR_ID, 1), *extra))


def _chair(conf: int, chair: int, request_id: int, status: S, tid: int = 9) -> BfcpMessage:
    inner = BfcpGroup(request_id, (BfcpAttribute(T.FLOOR_REQUEST_STATUS, BfcpGroup(1, (
        BfcpAttribute(T.REQUEST_STATUS, BfcpStatus(status)),))),))  # fmt: skip
    return BfcpMessage(
        P.CHAIR_ACTION, conf, tid, chair, (BfcpAttribute(T.FLOOR_REQUEST_INFORMATION, inner),)
    )


def test_without_a_chair_the_floor_is_granted_in_turn() -> None:
    server, conf, (a, b, c) = _setup(chair=False)
    out = server.handle(_request(conf, a))
    assert out[0].message.transaction_id == 1 and _status(out, a) == [
        (1, S.PENDING, 0),
        (1, S.GRANTED, 0),
    ]
    out = server.handle(_request(conf, b))
    assert _status(out, b)[-1] == (2, S.ACCEPTED, 1)
    out = server.handle(_request(conf, c, 1, BfcpAttribute(T.PRIORITY, 7)))
    assert _status(out, c)[-1] == (3, S.ACCEPTED, 1)  # highest priority first
    assert _status(out, b) == [(2, S.ACCEPTED, 2)]
    out = server.handle(
        BfcpMessage(P.FLOOR_RELEASE, conf, 2, a, (BfcpAttribute(T.FLOOR_REQUEST_ID, 1),))
    )
    assert _status(out, a) == [(1, S.RELEASED, 0)]
    assert _status(out, c) == [(3, S.GRANTED, 0)] and _status(out, b) == [(2, S.ACCEPTED, 1)]
    out = server.remove_user(conf, c)  # release on leave
    assert _status(out, b) == [(2, S.GRANTED, 0)]


def test_a_chair_decides_and_only_a_chair() -> None:
    server, conf, (a, b, _, chair) = _setup(chair=True)
    assert _status(server.handle(_request(conf, a)), a) == [(1, S.PENDING, 0)]
    assert _error(server.handle(_chair(conf, b, 1, S.GRANTED))) == E.UNAUTHORIZED_OPERATION
    out = server.handle(_chair(conf, chair, 1, S.ACCEPTED))
    assert out[0].message.primitive == P.CHAIR_ACTION_ACK and _status(out, a) == [(1, S.GRANTED, 0)]
    server.handle(_request(conf, b, 2))
    assert _status(server.handle(_chair(conf, chair, 2, S.DENIED)), b) == [(2, S.DENIED, 0)]
    assert _status(server.handle(_chair(conf, chair, 1, S.REVOKED)), a) == [(1, S.REVOKED, 0)]
    assert (
        _error(server.handle(_chair(conf, chair, 1, S.REVOKED)))
        == E.FLOOR_REQUEST_ID_DOES_NOT_EXIST
    )
    server.set_connected(conf, chair, False)  # the chair is gone: automatic again
    assert _status(server.handle(_request(conf, b, 3)), b)[-1][1] == S.GRANTED


def test_decide_is_a_chair_action_from_outside_bfcp() -> None:
    """The web control room's Grant/Deny: the same rules and notifications as ChairAction."""
    import pytest

    from mrf.bfcp.errors import BfcpLocalError

    server, conf, (a, b, c) = _setup(chair=False)
    server.handle(_request(conf, a))  # granted: nobody held the floor
    server.handle(_request(conf, b, 2))
    server.handle(_request(conf, c, 3))  # queued behind b
    out = server.decide(conf, 3, S.GRANTED)
    assert _status(out, c) == [(3, S.ACCEPTED, 1)] and _status(out, b) == [(2, S.ACCEPTED, 2)]
    out = server.decide(conf, 2, S.DENIED)
    assert _status(out, b) == [(2, S.DENIED, 0)]
    with pytest.raises(BfcpLocalError):
        server.decide(conf, 2, S.DENIED)  # over already
    with pytest.raises(BfcpLocalError):
        server.decide(conf, 1, S.DENIED)  # a granted request cannot be denied, only revoked
    with pytest.raises(BfcpLocalError):
        server.decide(conf + 1, 3, S.GRANTED)
    out = server.handle(
        BfcpMessage(P.FLOOR_RELEASE, conf, 4, a, (BfcpAttribute(T.FLOOR_REQUEST_ID, 1),))
    )
    assert _status(out, c) == [(3, S.GRANTED, 0)]


def test_errors_for_bad_ids_floors_and_beneficiaries() -> None:
    server, conf, (a, b, _, chair) = _setup(chair=True)
    assert _error(server.handle(_request(conf + 1, a))) == E.CONFERENCE_DOES_NOT_EXIST
    assert _error(server.handle(_request(conf, 999))) == E.USER_DOES_NOT_EXIST
    bad_floor = BfcpMessage(P.FLOOR_REQUEST, conf, 1, a, (BfcpAttribute(T.FLOOR_ID, 5),))
    assert _error(server.handle(bad_floor)) == E.INVALID_FLOOR_ID
    assert (
        _error(server.handle(_request(conf, a, 1, BfcpAttribute(T.BENEFICIARY_ID, b))))
        == E.UNAUTHORIZED_OPERATION
    )
    out = server.handle(_request(conf, chair, 1, BfcpAttribute(T.BENEFICIARY_ID, b)))
    assert _status(out, b) == [(1, S.PENDING, 0)]  # the beneficiary is told
    release = BfcpMessage(P.FLOOR_RELEASE, conf, 3, a, (BfcpAttribute(T.FLOOR_REQUEST_ID, 1),))
    assert _error(server.handle(release)) == E.UNAUTHORIZED_OPERATION
    for _ in range(8):
        server.handle(_request(conf, a))
    assert _error(server.handle(_request(conf, a))) == E.MAX_FLOOR_REQUESTS_REACHED
    query = BfcpMessage(
        P.FLOOR_REQUEST_QUERY, conf, 4, a, (BfcpAttribute(T.FLOOR_REQUEST_ID, 500),)
    )
    assert _error(server.handle(query)) == E.FLOOR_REQUEST_ID_DOES_NOT_EXIST


def test_queries_and_subscriptions() -> None:
    server, conf, (a, b, _, chair) = _setup(chair=True)
    hello = server.handle(BfcpMessage(P.HELLO, conf, 1, a))[0].message
    assert hello.primitive == P.HELLO_ACK and hello.values(T.SUPPORTED_PRIMITIVES)[0] == tuple(
        range(1, 14)
    )
    status = server.handle(BfcpMessage(P.FLOOR_QUERY, conf, 2, b, (BfcpAttribute(T.FLOOR_ID, 1),)))
    assert [o.message.primitive for o in status] == [P.FLOOR_STATUS]
    out = server.handle(_request(conf, a))
    watchers = [o for o in out if o.message.primitive == P.FLOOR_STATUS]
    assert watchers and all(o.user_id == b and o.message.transaction_id == 0 for o in watchers)
    user = server.handle(
        BfcpMessage(P.USER_QUERY, conf, 3, chair, (BfcpAttribute(T.BENEFICIARY_ID, a),))
    )
    assert user[0].message.primitive == P.USER_STATUS
    assert len(user[0].message.all(T.FLOOR_REQUEST_INFORMATION)) == 1
    other = BfcpMessage(P.USER_QUERY, conf, 4, b, (BfcpAttribute(T.BENEFICIARY_ID, a),))
    assert _error(server.handle(other)) == E.UNAUTHORIZED_OPERATION
    bye = server.handle(BfcpMessage(P.GOODBYE, conf, 5, a))
    assert bye[0].message.primitive == P.GOODBYE_ACK and _status(bye, a) == [(1, S.CANCELLED, 0)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["request", "release", "accept", "deny", "revoke",
                                           "leave", "chair"]),
                          st.integers(0, 3), st.integers(1, 12)), max_size=40))  # fmt: skip
def test_any_sequence_keeps_the_invariants(steps: list[tuple[str, int, int]]) -> None:
    server, conf, users = _setup(chair=True)
    chair = users[-1]
    for tid, (action, who, number) in enumerate(steps, start=1):
        user = users[who]
        if action == "leave":
            server.remove_user(conf, user)
            if conf not in server.conferences:
                return
            continue
        if action == "chair":
            server.set_connected(conf, chair, number % 2 == 0)
            continue
        if action == "request":
            message = _request(conf, user, tid)
        elif action == "release":
            message = BfcpMessage(
                P.FLOOR_RELEASE, conf, tid, user, (BfcpAttribute(T.FLOOR_REQUEST_ID, number),)
            )
        else:
            decision = {"accept": S.ACCEPTED, "deny": S.DENIED, "revoke": S.REVOKED}[action]
            message = _chair(conf, chair if number % 3 else user, number, decision, tid)
        out = server.handle(message)
        answers = [o for o in out if o.message.transaction_id == tid]
        assert len(answers) == 1 and answers[0].user_id == message.user_id  # answered once
        room = server.conferences[conf]
        assert len(room.holders(1)) <= 1
        assert all(r.status in (S.PENDING, S.ACCEPTED, S.GRANTED) for r in room.requests.values())
        assert not room.finished
        if not room.chair_present:
            assert all(r.status is not S.PENDING for r in room.requests.values())
        if room.requests and not room.holders(1):
            assert all(r.status is S.PENDING for r in room.requests.values())


def _pair() -> tuple[BfcpConnection, BfcpConnection]:
    return BfcpConnection(BfcpRole.CLIENT), BfcpConnection(BfcpRole.SERVER)


def test_connection_transactions_and_notifications() -> None:
    client, server = _pair()
    sent = client.send_request(P.HELLO, 7, 3, now=0.0)
    server.receive_data(client.data_to_send(), 0.0)
    event = server.next_event()
    assert isinstance(event, BfcpRequestReceived) and event.message == sent
    supported = (BfcpAttribute(T.SUPPORTED_PRIMITIVES, (1, 2)),
                 BfcpAttribute(T.SUPPORTED_ATTRIBUTES, (1,)))  # fmt: skip
    server.send(BfcpMessage(P.HELLO_ACK, 7, sent.transaction_id, 3, supported))
    server.send(BfcpMessage(P.FLOOR_STATUS, 7, 0, 3, (BfcpAttribute(T.FLOOR_ID, 1),)))
    data = server.data_to_send()
    for byte in data:  # one byte at a time
        client.receive_data(bytes([byte]), 0.1)
    response, notification = client.next_event(), client.next_event()
    assert isinstance(response, BfcpResponseReceived) and response.request == sent
    assert isinstance(notification, BfcpNotificationReceived)
    assert client.outstanding == 0 and client.get_timer() is None


def test_server_connection_answers_bad_messages_with_errors() -> None:
    _, server = _pair()
    unknown = bytes.fromhex("202a00000000000712340042")
    server.receive_data(
        unknown + bytes.fromhex("2001000200000007123400420504000 1c9020000".replace(" ", "")), 0
    )
    data = server.data_to_send()
    first = BfcpMessage.parse(data[: 12 + int.from_bytes(data[2:4]) * 4])
    errors = [first]
    assert errors[0].primitive == P.ERROR and errors[0].transaction_id == 0x1234
    events = [server.next_event(), server.next_event()]
    assert [e.code for e in events if isinstance(e, BfcpMessageRefused)] == [
        E.UNKNOWN_PRIMITIVE,
        E.UNKNOWN_MANDATORY_ATTRIBUTE,
    ]
    server.receive_data(b"\x00" * 12, 0)
    assert isinstance(server.next_event(), BfcpConnectionFailed) and server.closed


def test_client_times_out_a_transaction() -> None:
    client, _ = _pair()
    client.send_request(P.FLOOR_QUERY, 1, 1, now=5.0)
    deadline = client.get_timer()
    assert deadline == 35.0
    client.handle_timer(deadline)
    assert client.next_event().__class__.__name__ == "BfcpTransactionTimedOut"
