"""Two MsrpConnection cores wired in memory (explicit ``now``, no sockets)."""

from __future__ import annotations

import random

from mrf.msrp.connection import MsrpConfig, MsrpConnection
from mrf.msrp.errors import MsrpLocalError
from mrf.msrp.events import (
    MsrpDeliveryFailed,
    MsrpMessageAborted,
    MsrpMessageDelivered,
    MsrpMessageReceived,
    MsrpNicknameRequested,
    MsrpReportReceived,
    MsrpSessionBound,
)
from mrf.msrp.message import MsrpRequest, new_ident
from mrf.msrp.parser import MsrpStreamParser
from mrf.msrp.uri import MsrpUri

A = MsrpUri.parse("msrps://127.0.0.1:1001/alice1;tcp")
B = MsrpUri.parse("msrps://127.0.0.1:1002/bob2;tcp")


def pair(**config: object) -> tuple[MsrpConnection, MsrpConnection]:
    sender = MsrpConnection(MsrpConfig(**config))  # type: ignore[arg-type]
    receiver = MsrpConnection(MsrpConfig(**config), lambda local, path: 200 if local == B else 481)  # type: ignore[arg-type]
    sender.bind(A, (B,))
    return sender, receiver


def events(connection: MsrpConnection) -> list[object]:
    out = []
    while (event := connection.next_event()) is not None:
        out.append(event)
    return out


def responses(data: bytes) -> list[int]:
    return [getattr(m, "status", 0) for m in MsrpStreamParser().feed(data)]


def test_chunked_message_with_success_report() -> None:
    sender, receiver = pair(chunk_size=2048)
    body = "héllo wörld ☃ ".encode() * 500
    message_id = sender.send_message(A, "text/plain", body, 0.0, success_report=True)
    receiver.receive_data(sender.data_to_send(), 0.0)
    got = events(receiver)
    assert isinstance(got[0], MsrpSessionBound)
    (message,) = [e for e in got if isinstance(e, MsrpMessageReceived)]
    assert message.reassembly.read(0, message.size) == body and message.message_id == message_id
    sender.receive_data(receiver.data_to_send(), 0.0)
    back = events(sender)
    assert MsrpMessageDelivered(A, message_id) in back
    assert any(isinstance(e, MsrpReportReceived) and e.status == 200 for e in back)


def chunks(body: bytes, size: int, message_id: str) -> list[bytes]:
    out = []
    for offset in range(0, len(body), size):
        piece = body[offset : offset + size]
        last = offset + size >= len(body)
        headers = [("Message-ID", message_id),
                   ("Byte-Range", f"{offset + 1}-{offset + len(piece)}/{len(body)}"),
                   ("Content-Type", "text/plain")]  # fmt: skip
        request = MsrpRequest(new_ident(), "SEND", (B,), (A,), headers, piece, "$" if last else "+")
        out.append(bytes(request))
    return out


def test_out_of_order_chunks_reassemble() -> None:
    _, receiver = pair()
    body = bytes(random.Random(4).randbytes(10000))
    frames = chunks(body, 1000, "msgid1")
    random.Random(5).shuffle(frames)
    for frame in frames:
        receiver.receive_data(frame, 0.0)
    (message,) = [e for e in events(receiver) if isinstance(e, MsrpMessageReceived)]
    assert message.reassembly.read(0, message.size) == body
    assert responses(receiver.data_to_send()) == [200] * 10


def test_interrupted_message_is_aborted() -> None:
    _, receiver = pair()
    first = chunks(b"a" * 3000, 1000, "msgid2")[0]
    abort = MsrpRequest(new_ident(), "SEND", (B,), (A,), [("Message-ID", "msgid2"),
                        ("Byte-Range", "1001-1000/3000")], b"", "#")  # fmt: skip
    receiver.receive_data(first + bytes(abort), 0.0)
    assert any(isinstance(e, MsrpMessageAborted) for e in events(receiver))


def test_status_codes_413_415_481_501() -> None:
    _, receiver = pair(max_message_size=100, accept_types=("message/cpim",))
    headers = [("Message-ID", "m1"), ("Byte-Range", "1-200/200"), ("Content-Type", "message/cpim")]
    big = MsrpRequest(new_ident(), "SEND", (B,), (A,), headers, b"x" * 200)
    wrong_type = MsrpRequest(new_ident(), "SEND", (B,), (A,), [("Message-ID", "m2"),
                             ("Content-Type", "text/html")], b"<p>")  # fmt: skip
    other = MsrpUri.parse("msrps://127.0.0.1:1002/nosuch;tcp")
    unknown = MsrpRequest(new_ident(), "SEND", (other,), (A,), [("Message-ID", "m3"),
                          ("Content-Type", "message/cpim")], b"x")  # fmt: skip
    method = MsrpRequest(new_ident(), "FROB", (B,), (A,))
    for request in (big, wrong_type, unknown, method):
        receiver.receive_data(bytes(request), 0.0)
    assert responses(receiver.data_to_send()) == [413, 415, 481, 501]


def test_failure_report_no_and_partial() -> None:
    _, receiver = pair()
    for report in ("no", "partial"):
        headers = [("Message-ID", "m" + report), ("Failure-Report", report)]
        headers.append(("Content-Type", "text/plain"))
        request = MsrpRequest(new_ident(), "SEND", (B,), (A,), headers, b"hi")
        receiver.receive_data(bytes(request), 0.0)
    assert receiver.data_to_send() == b""


def test_no_response_within_30_s_is_408() -> None:
    sender, _ = pair()
    message_id = sender.send_message(A, "text/plain", b"hello", 10.0)
    assert sender.get_timer() == 40.0
    sender.handle_timer(40.0)
    assert events(sender) == [
        MsrpDeliveryFailed(A, message_id, 408, "no response within 30 s (§7.1.1)")
    ]


def test_nickname_request_and_answer() -> None:
    sender, receiver = pair()
    sender.send_nickname(A, 'Zoë "the" chair', 0.0)
    receiver.receive_data(sender.data_to_send(), 0.0)
    (request,) = [e for e in events(receiver) if isinstance(e, MsrpNicknameRequested)]
    assert request.nickname == 'Zoë "the" chair'
    receiver.respond(request.transaction_id, B, 425)
    sender.receive_data(receiver.data_to_send(), 0.0)
    assert [e.status for e in events(sender) if isinstance(e, MsrpDeliveryFailed)] == [425]


def test_malformed_nickname_is_424() -> None:
    _, receiver = pair()
    request = MsrpRequest(new_ident(), "NICKNAME", (B,), (A,), [("Use-Nickname", "bare")])
    receiver.receive_data(bytes(request), 0.0)
    assert responses(receiver.data_to_send()) == [424]


def test_framing_error_fails_the_connection_without_raising() -> None:
    _, receiver = pair()
    receiver.receive_data(b"GET / HTTP/1.1\r\n\r\n", 0.0)
    assert receiver.failed
    assert type(events(receiver)[-1]).__name__ == "MsrpConnectionFailed"


def test_delivery_failure_carries_the_senders_context() -> None:
    sender = MsrpConnection(MsrpConfig(delivered_events=False))
    receiver = MsrpConnection(
        MsrpConfig(accept_types=("message/cpim",)), lambda local, path: 200 if local == B else 481
    )
    sender.bind(A, (B,))
    note = object()
    refused = sender.send_chunk(A, "m1", "text/plain", 1, b"hi", 2, 0.0, last=True, context=note)
    accepted = sender.send_chunk(A, "m2", "message/cpim", 1, b"ok", 2, 0.0, last=True)
    receiver.receive_data(sender.data_to_send(), 0.0)
    answers = MsrpStreamParser().feed(receiver.data_to_send())
    assert [(m.transaction_id, getattr(m, "status", 0)) for m in answers] == [
        (refused, 415),
        (accepted, 200),
    ]
    sender.receive_data(b"".join(map(bytes, answers)), 0.0)
    (failed,) = events(sender)  # no MsrpMessageDelivered: delivered_events is off
    assert isinstance(failed, MsrpDeliveryFailed) and failed.status == 415
    assert failed.context is note and failed.message_id == "m1"


def test_sent_frames_are_what_the_message_model_writes() -> None:
    sender, _ = pair(chunk_size=7)
    sender.send_message(A, "text/plain; charset=utf-8", "Zoë -------x".encode(), 0.0,
                        success_report=True, failure_report="partial")  # fmt: skip
    sender.send_chunk(A, "m9", "message/cpim", 1, b"", None, 0.0, last=False)
    data = sender.data_to_send()
    frames = MsrpStreamParser().feed(data)
    assert len(frames) == 3 and b"".join(map(bytes, frames)) == data
    assert [f.header("Byte-Range") for f in frames] == ["1-7/13", "8-13/13", "1-0/*"]


def test_a_whole_message_in_one_chunk_is_not_copied_into_storage() -> None:
    stored: list[object] = []

    def storage() -> object:
        stored.append(True)
        raise AssertionError("a single whole chunk needs no storage")

    sender = MsrpConnection()
    receiver = MsrpConnection(None, lambda local, path: 200, storage)  # type: ignore[arg-type]
    sender.bind(A, (B,))
    sender.send_message(A, "text/plain", b"whole", 0.0)
    receiver.receive_data(sender.data_to_send(), 0.0)
    (message,) = [e for e in events(receiver) if isinstance(e, MsrpMessageReceived)]
    assert message.reassembly.read(0, 5) == b"whole" and not stored
    assert responses(receiver.data_to_send()) == [200]


def test_send_single_writes_the_frame_send_chunk_writes() -> None:
    sender, receiver = pair()
    body = "héllo -------x".encode()
    tid = sender.send_single(A, "message/cpim", body, 0.0)
    (frame,) = MsrpStreamParser().feed(single := sender.data_to_send())
    assert isinstance(frame, MsrpRequest) and frame.transaction_id == tid
    assert bytes(frame) == single and frame.body == body and frame.flag == "$"
    assert frame.header("Byte-Range") == f"1-{len(body)}/{len(body)}"
    assert frame.content_type == "message/cpim" and frame.to_path == (B,)
    receiver.receive_data(single, 0.0)
    assert [e.reassembly.read(0, len(body)) for e in events(receiver)
            if isinstance(e, MsrpMessageReceived)] == [body]  # fmt: skip
    for bad in (b"", b"x" * (MsrpConfig().chunk_size + 1)):
        try:
            sender.send_single(A, "message/cpim", bad, 0.0)
        except MsrpLocalError:
            continue
        raise AssertionError("send_single took an empty or oversized body")


def test_plain_200s_complete_sends_like_any_response() -> None:
    """The parser's shortcut for plain 200s changes nothing observable (RFC 4975 §7.2)."""
    sender, receiver = pair()
    slow: list[str] = []
    on_response = sender._on_response
    sender._on_response = lambda r: (slow.append(r.transaction_id), on_response(r))[1]  # type: ignore[method-assign]
    for split in (False, True):  # whole, then byte by byte (the rest is awaited)
        ids = [sender.send_single(A, "message/cpim", b"m%d" % i, 0.0) for i in range(3)]
        receiver.receive_data(sender.data_to_send(), 0.0)
        answers = receiver.data_to_send()
        assert answers.count(b" 200 OK\r\n") == 3
        for piece in [answers[i : i + 1] for i in range(len(answers))] if split else [answers]:
            sender.receive_data(piece, 0.0)
        assert len([e for e in events(sender) if isinstance(e, MsrpMessageDelivered)]) == 3
        assert sender.get_timer() is None  # no transaction left waiting
        assert slow == [] and len(ids) == 3
        slow.clear()
    # a 200 whose paths are not the ones we sent to goes the long way, with the same result
    tid = sender.send_single(A, "message/cpim", b"odd", 0.0)
    sender.data_to_send()
    odd = f"MSRP {tid} 200 OK\r\nTo-Path: {A}\r\nFrom-Path: msrps://[::1]:9/x;tcp\r\n-------{tid}$\r\n"
    sender.receive_data(odd.encode(), 0.0)
    assert sender.get_timer() is None and not sender.failed
    assert slow == [tid]


def test_parser_offers_only_plain_200s_to_the_sink() -> None:
    offered: list[tuple[bytes, bytes, bytes]] = []
    parser = MsrpStreamParser()
    parser.ok_sink = lambda tid, to, frm: offered.append((tid, to, frm)) or tid != b"keep1"
    ok = "MSRP {0} 200 OK\r\nTo-Path: {1}\r\nFrom-Path: {2}\r\n-------{0}$\r\n"
    data = (
        ok.format("take1", A, B) + ok.format("keep1", A, B)  # the sink declines keep1
        + f"MSRP refu1 403 Forbidden\r\nTo-Path: {A}\r\nFrom-Path: {B}\r\n-------refu1$\r\n"
    ).encode()  # fmt: skip
    messages = parser.feed(data)
    assert [(m.transaction_id, getattr(m, "status", 0)) for m in messages] == [
        ("keep1", 200),
        ("refu1", 403),
    ]
    assert [o[0] for o in offered] == [b"take1", b"keep1"]
    assert offered[0][1:] == (str(A).encode(), str(B).encode())


def test_every_send_is_written_as_msrp_request_writes_it() -> None:
    """send_chunk (with and without report and extra headers), send_single and send_bind
    go through the one SEND writer: the bytes MsrpRequest.__bytes__ makes of the frame."""
    sender, _ = pair()
    sender.send_chunk(A, "m1", "text/plain", 1, b"abc", 3, 0.0, last=True)
    sender.send_chunk(A, "m2", "text/plain", 4, b"de", None, 0.0, last=False,
                      success_report=True, failure_report="partial",
                      extra_headers=[("X-Note", "1"), ("Content-Type", "text/html")])  # fmt: skip
    sender.send_single(A, "message/cpim", b"whole", 0.0)
    sender.send_bind(A, 0.0)
    data = sender.data_to_send()
    frames = MsrpStreamParser().feed(data)
    assert [f.transaction_id for f in frames if isinstance(f, MsrpRequest)] and len(frames) == 4
    assert b"".join(bytes(frame) for frame in frames) == data
    chunk, extra, single, bind = frames
    assert isinstance(extra, MsrpRequest) and extra.content_type == "text/html"
    assert extra.header("Byte-Range") == "4-5/*" and extra.flag == "+"
    assert extra.success_report and extra.failure_report == "partial"
    assert isinstance(bind, MsrpRequest) and not bind.body and bind.content_type is None
    assert bind.header("Byte-Range") == "1-0/0" and bind.message_id
