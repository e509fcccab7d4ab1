"""The connection's shortcuts (whole SENDs and plain 200s) answer and report exactly
as the normal path does, on usual input and on every near miss (RFC 4975 §7.3)."""

from __future__ import annotations

import re
from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.msrp.connection import MsrpConfig, MsrpConnection
from mrf.msrp.events import MsrpMessageReceived
from mrf.msrp.uri import MsrpUri

A = MsrpUri.parse("msrps://127.0.0.1:1001/alice1;tcp")
B = MsrpUri.parse("msrps://127.0.0.1:1002/bob2;tcp")
CONFIG = MsrpConfig(max_message_size=64, accept_types=("message/cpim",), max_incomplete=2)


def receiver(shortcuts: bool) -> MsrpConnection:
    connection = MsrpConnection(CONFIG, lambda local, path: 200 if local == B else 481)
    if not shortcuts:
        connection._parser.send_sink = None  # noqa: SLF001 (the normal path alone)
        connection._parser.ok_sink = None  # noqa: SLF001
    return connection


def send(tid: str, body: bytes, *, to: str = str(B), frm: str = str(A), mid: str = "m1234",
         byte_range: str | None = None, ctype: str = "message/cpim", extra: str = "",
         flag: str = "$") -> bytes:  # fmt: skip
    byte_range = byte_range or f"1-{len(body)}/{len(body)}"
    head = f"MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {frm}\r\n"
    head += f"Message-ID: {mid}\r\n{extra}Byte-Range: {byte_range}\r\nContent-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + body + f"\r\n-------{tid}{flag}\r\n".encode()


BIND = f"MSRP bind1 SEND\r\nTo-Path: {B}\r\nFrom-Path: {A}\r\nMessage-ID: m0000\r\n"
BIND += "Byte-Range: 1-0/0\r\n-------bind1$\r\n"
FIRST = send("first", b"warm", mid="mfirst")  # the content type is then known


def outcome(connection: MsrpConnection) -> tuple[bytes, list[tuple[object, ...]]]:
    events = []
    while (event := connection.next_event()) is not None:
        values = [getattr(event, f.name) for f in fields(event) if f.name != "reassembly"]
        if isinstance(event, MsrpMessageReceived):
            values.append(event.reassembly.read(0, event.size))
        events.append((type(event).__name__, *values))
    # REPORTs carry fresh random transaction ids (new_ident): compared as "<id>"
    return re.sub(rb"[0-9a-f]{32}", b"<id>", connection.data_to_send()), events


def same_as_normal_path(stream: bytes, pieces: int = 1) -> tuple[bytes, list[tuple[object, ...]]]:
    results = []
    for shortcuts in (True, False):
        connection = receiver(shortcuts)
        step = max(1, len(stream) // pieces)
        for offset in range(0, len(stream), step):
            connection.receive_data(stream[offset : offset + step], 0.0)
        results.append(outcome(connection) + (connection.failed,))
    assert results[0] == results[1]
    return results[0][:2]


NEAR_MISSES = [
    send("tid02", b"hello"),  # the usual form: taken
    send("tid03", b"hello", to=str(A)),  # not our session: 481
    send("tid04", b"hello", frm="msrps://127.0.0.1:9/eve;tcp"),  # another peer path
    send("tid05", b"hello", byte_range="1-5/9"),  # not the whole message
    send("tid06", b"hello", byte_range="1-4/5"),  # wrong end
    send("tid07", b"hello", ctype="text/plain"),  # 415
    send("tid08", b"x" * 65),  # beyond a=max-size: 413
    send("tid09", b"hello", byte_range="1-5/65"),  # declared beyond a=max-size
    send("tid0a", b"hello", extra="Success-Report: yes\r\n"),  # a success REPORT is due
    send("tid0b", b"hello", extra="Failure-Report: no\r\n"),  # no 200 wanted
    send("tid0c", b"hello", mid="mpart", byte_range="1-5/10", flag="+"),  # a first chunk
    send("tid0d", b"hello", mid="mpart"),  # a message id in progress
    send("tid0e", b"hello", ctype="message/cpim "),  # trailing space in the value
    send("tid0f", b"hello", frm=str(A).upper()),  # the same URI, written otherwise
]


def test_near_misses_are_answered_as_by_the_normal_path() -> None:
    for variant in NEAR_MISSES:
        data, events = same_as_normal_path(BIND.encode() + FIRST + variant)
        assert data.count(b"\r\nMSRP ") + data.startswith(b"MSRP ") >= 1


def test_the_usual_form_is_taken_by_the_shortcut() -> None:
    connection = receiver(True)
    taken: list[bytes] = []
    sink = connection._parser.send_sink  # noqa: SLF001
    assert sink is not None

    def spy(tid: bytes, head: bytes, body: bytes) -> bool:
        result = sink(tid, head, body)
        if result:
            taken.append(tid)
        return result

    connection._parser.send_sink = spy  # noqa: SLF001
    connection.receive_data(BIND.encode() + FIRST, 0.0)
    connection.receive_data(b"".join(NEAR_MISSES), 0.0)
    assert taken == [b"tid02"]
    answers, events = outcome(connection)
    assert b"MSRP tid02 200 OK\r\n" in answers and b"MSRP tid07 415" in answers


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(NEAR_MISSES), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=40),
)
def test_any_mix_split_anywhere_is_answered_as_by_the_normal_path(
    variants: list[bytes], pieces: int
) -> None:
    same_as_normal_path(BIND.encode() + FIRST + b"".join(variants), pieces)
