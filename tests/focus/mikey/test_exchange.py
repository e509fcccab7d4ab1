"""MIKEY-TICKET end to end in memory: Initiator, KMS core and Responder with an explicit ``now``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from focus.kms.core import KmsConfig, KmsCore
from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode, MikeyTicketFlag
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.message import MikeyGenericIdEntry, MikeyMessage
from focus.mikey.payload import MikeySecurityPolicy
from focus.mikey.responder import MikeyTransferResponder
from focus.mikey.timestamp import MikeyReplayCache
from focus.mikey.tp import MikeyTicket

NOW = 1_800_000_000.0
ALICE, CONF, MALLORY = b"sip:alice@127.0.0.1", b"sip:retro@127.0.0.1", b"sip:mallory@127.0.0.1"
SESSIONS = [MikeyGenericIdEntry(1, 0, (0,)), MikeyGenericIdEntry(2, 241, ())]
ANSWER = [
    MikeyGenericIdEntry(1, 0, (0,), bytes.fromhex("00001234"), b"\x01"),
    MikeyGenericIdEntry(2, 241, (1,), b"", b"\x02"),
]


@dataclass
class World:
    users: dict[bytes, bytes]
    kms: KmsCore
    cache: MikeyReplayCache


def world(fork: bool = True) -> World:
    users = {ALICE: b"A" * 32, CONF: b"C" * 32, MALLORY: b"M" * 32}
    return World(
        users, KmsCore(users.get, {7: b"S" * 32}, 7, KmsConfig(fork_keys=fork)), MikeyReplayCache()
    )


def transfer(w: World, responders=(b"?@?",), now: float = NOW) -> MikeyTransferInitiator:
    request = MikeyTicketRequest.build(ALICE, w.users[ALICE], responders=list(responders), now=now)
    granted = request.process_response(w.kms.handle(bytes(request.message), now), now=now)
    policy = MikeySecurityPolicy(0, 0, ())
    return MikeyTransferInitiator.build(granted, CONF, SESSIONS, [policy], now=now)


def respond(w: World, data: bytes, *, now: float = NOW, identity: bytes = CONF):
    responder = MikeyTransferResponder.receive(
        data, identity_r=identity, kms_key=w.users[identity], now=now, cache=w.cache
    )
    resolved = responder.process_resolve_response(
        w.kms.handle(bytes(responder.resolve), now), now=now
    )
    return responder, resolved


@pytest.mark.parametrize("fork", [True, False])
def test_both_sides_derive_the_same_keys(fork: bool) -> None:
    w = world(fork)
    initiator = transfer(w, responders=[CONF])
    assert initiator.granted.ticket.has(MikeyTicketFlag.I) is fork
    responder, resolved = respond(w, bytes(initiator.message))
    assert resolved.initiator == ALICE
    answer, keys = responder.build_response(
        resolved, ANSWER, [MikeySecurityPolicy(1, 241, ())], now=NOW
    )
    assert initiator.process_response(bytes(answer), now=NOW) == keys
    assert keys[1][0] == 0 and len(keys[1][1]) == 16 and len(keys[1][2]) == 14
    assert keys[2][0] == 241 and len(keys[2][1]) == 16 and keys[2][2] == b""
    assert keys[1][1] != keys[2][1]


def test_wildcard_forks_keys_by_the_resolver_identity() -> None:
    """TS 33.328 §6.2.3.5: ?@? lets any resolver in, each gets keys forked by its identity."""
    w = world(fork=False)
    first = transfer(w)
    assert first.granted.ticket.has(MikeyTicketFlag.I)  # forced by the wildcard
    r1, res1 = respond(w, bytes(first.message))
    second = MikeyTransferInitiator.build(first.granted, MALLORY, SESSIONS, [], now=NOW)
    r2, res2 = respond(w, bytes(second.message), identity=MALLORY)
    assert res1.tgk != res2.tgk and res1.mac_key != res2.mac_key and res1.mpk_i == res2.mpk_i


def refusal(call) -> MikeyErrorCode:
    with pytest.raises(MikeyRemoteError) as info:
        call()
    return info.value.code


def test_replayed_transfer_init_is_refused() -> None:
    w = world()
    data = bytes(transfer(w).message)
    respond(w, data)
    assert refusal(lambda: respond(w, data)) == MikeyErrorCode.INVALID_TS


def test_tampered_transfer_init_mac_is_refused() -> None:
    w = world()
    data = bytearray(bytes(transfer(w).message))
    data[-1] ^= 1
    assert refusal(lambda: respond(w, bytes(data))) == MikeyErrorCode.INVALID_MAC


def test_tampered_ticket_is_refused_by_the_kms() -> None:
    w = world()
    message = transfer(w).message
    ticket = message.find(MikeyTicket)
    assert ticket is not None
    data = bytes(message).replace(ticket.ticket_data, ticket.ticket_data[:-1] + b"\x00")
    assert refusal(lambda: respond(w, data)) == MikeyErrorCode.INVALID_MAC


def test_expired_ticket_is_refused() -> None:
    w = world()
    later = NOW + 3600 + 60  # default validity 3600 s
    initiator = transfer(w)
    again = MikeyTransferInitiator.build(initiator.granted, CONF, SESSIONS, [], now=later)
    assert (
        refusal(lambda: respond(w, bytes(again.message), now=later))
        == MikeyErrorCode.INVALID_TICKET
    )


def test_ticket_for_another_responder_is_refused() -> None:
    w = world()
    data = bytes(transfer(w, responders=[b"sip:bob@127.0.0.1"]).message)
    assert refusal(lambda: respond(w, data)) == MikeyErrorCode.INVALID_ID


def test_unknown_kms_user_is_refused() -> None:
    w = world()
    request = MikeyTicketRequest.build(b"sip:eve@x", b"E" * 32, responders=[CONF], now=NOW)
    reply = w.kms.handle(bytes(request.message), NOW)
    assert refusal(lambda: request.process_response(reply, now=NOW)) == MikeyErrorCode.INVALID_ID


def test_wrong_user_key_and_replayed_request_are_refused() -> None:
    w = world()
    bad = MikeyTicketRequest.build(ALICE, b"x" * 32, responders=[CONF], now=NOW)
    reply = w.kms.handle(bytes(bad.message), NOW)
    assert MikeyMessage.parse(reply).data_type == 6
    good = MikeyTicketRequest.build(ALICE, w.users[ALICE], responders=[CONF], now=NOW)
    good.process_response(w.kms.handle(bytes(good.message), NOW), now=NOW)
    replay = w.kms.handle(bytes(good.message), NOW)
    assert refusal(lambda: good.process_response(replay, now=NOW)) == MikeyErrorCode.INVALID_TS


def test_stale_timestamp_is_refused() -> None:
    w = world()
    data = bytes(transfer(w, now=NOW - 301).message)
    responder = lambda: MikeyTransferResponder.receive(  # noqa: E731
        data, identity_r=CONF, kms_key=w.users[CONF], now=NOW, cache=w.cache
    )
    assert refusal(responder) == MikeyErrorCode.INVALID_TS


def test_forged_initiator_identity_is_refused() -> None:
    """Mallory reuses Alice's ticket but claims to be Mallory: IDRi differs from the ticket's."""
    w = world()
    granted = transfer(w).granted
    from dataclasses import replace

    forged = MikeyTransferInitiator.build(
        replace(granted, identity=MALLORY), CONF, SESSIONS, [], now=NOW
    )
    assert refusal(lambda: respond(w, bytes(forged.message))) == MikeyErrorCode.INVALID_ID


def test_tampered_transfer_resp_is_refused_by_the_initiator() -> None:
    w = world()
    initiator = transfer(w)
    responder, resolved = respond(w, bytes(initiator.message))
    answer, _ = responder.build_response(resolved, ANSWER, [], now=NOW)
    data = bytearray(bytes(answer))
    data[-5] ^= 0x40
    assert (
        refusal(lambda: initiator.process_response(bytes(data), now=NOW))
        == MikeyErrorCode.INVALID_MAC
    )


@pytest.mark.parametrize("junk", [b"", b"\x01", b"\x01\x0b" + bytes(40), bytes(range(256))])
def test_kms_answers_junk_with_a_mikey_error(junk: bytes) -> None:
    reply = MikeyMessage.parse(world().kms.handle(junk, NOW))
    assert reply.data_type == 6


def test_replay_cache_is_bounded_and_expires() -> None:
    cache = MikeyReplayCache(window=10, max_entries=2)
    cache.check_and_add(0, b"a")
    cache.check_and_add(0, b"b")
    with pytest.raises(MikeyRemoteError, match="full"):
        cache.check_and_add(0, b"c")
    cache.check_and_add(25, b"a")  # expired after 2 windows
    assert len(cache) == 1
