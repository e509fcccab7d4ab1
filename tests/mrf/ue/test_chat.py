"""``mrf ue``'s chat events (mrf.ue.chat.UeChat), fed by an in-memory MSRP peer."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from mrf.msrp.connection import MsrpConnection
from mrf.msrp.cpim import CPIM_TYPE, CpimMessage
from mrf.msrp.message import MsrpByteRange
from mrf.msrp.uri import MsrpUri
from mrf.tls import ensure_certificate
from mrf.ue.chat import UeChat

ROOM = "sip:chat@127.0.0.1"
FOCUS = MsrpUri.parse("msrps://127.0.0.1:2855/focus1;tcp")


@pytest.fixture
def ue(tmp_path: Path) -> tuple[UeChat, MsrpConnection, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    chat = UeChat("127.0.0.1", "sip:bob@127.0.0.1", *ensure_certificate(tmp_path), events.append)
    chat.local = MsrpUri.parse(f"msrps://127.0.0.1:40000/{chat.session_id};tcp")
    chat.room = ROOM
    chat.msrp.bind(chat.local, (FOCUS,))
    focus = MsrpConnection(resolver=lambda local, path: 200)
    focus.bind(FOCUS, (chat.local,))
    return chat, focus, events


def deliver(chat: UeChat, focus: MsrpConnection) -> None:
    chat.msrp.receive_data(focus.data_to_send(), 0.0)
    chat._events()


def cpim(sender: str, to: str, text: str) -> bytes:
    headers = [("From", sender), ("To", to), ("DateTime", "2024-05-01T10:00:00Z")]
    return bytes(CpimMessage(headers, [("Content-Type", "text/plain;charset=utf-8")],
                             text.encode()))  # fmt: skip


def test_a_room_message_becomes_a_chat_event(ue: Any) -> None:
    chat, focus, events = ue
    body = cpim('"Carö" <sip:carol@127.0.0.1>', f"<{ROOM}>", "Grüße ☃")
    focus.send_message(FOCUS, CPIM_TYPE, body, 0.0)
    deliver(chat, focus)
    content = "Grüße ☃".encode()
    assert events == [{
        "event": "chat", "from": "sip:carol@127.0.0.1", "nickname": "Carö", "private": False,
        "text": "Grüße ☃", "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
    }]  # fmt: skip


def test_a_private_message_is_marked(ue: Any) -> None:
    chat, focus, events = ue
    focus.send_message(FOCUS, CPIM_TYPE, cpim("<sip:alice@127.0.0.1>",
                                              "<sip:bob@127.0.0.1>", "psst"), 0.0)  # fmt: skip
    deliver(chat, focus)
    assert events[0]["private"] is True and events[0]["nickname"] is None


def test_a_chunked_message_arrives_whole(ue: Any) -> None:
    chat, focus, events = ue
    text = "x☃" * 100000
    focus.send_message(FOCUS, CPIM_TYPE, cpim("<sip:alice@127.0.0.1>", f"<{ROOM}>", text), 0.0)
    data = focus.data_to_send()
    for offset in range(0, len(data), 1000):  # any split of the stream
        chat.msrp.receive_data(data[offset : offset + 1000], 0.0)
    chat._events()
    assert [e["text"] for e in events] == [text]


def test_a_message_that_is_not_cpim_is_shown_raw(ue: Any) -> None:
    chat, focus, events = ue
    focus.send_message(FOCUS, "text/plain", b"plain words", 0.0)
    deliver(chat, focus)
    assert events[0]["from"] is None and events[0]["text"] == "plain words"


def test_delivery_outcomes_become_sent_and_error_events(ue: Any) -> None:
    chat, focus, events = ue
    sent = chat.msrp.send_message(chat.local, CPIM_TYPE, b"x", 0.0)
    failed = chat.msrp.send_message(chat.local, CPIM_TYPE, b"y", 0.0)
    focus.receive_data(chat.msrp.data_to_send(), 0.0)
    assert focus.next_event() is not None  # both arrived at the focus
    # the focus then reports a failure for the second one (RFC 4975 §7.1.2)
    focus.send_report(FOCUS, failed, 408, MsrpByteRange(1, 1, 1))
    deliver(chat, focus)
    assert {"event": "sent", "message_id": sent} in events
    assert {"event": "error", "status": 408, "detail": "REPORT", "message_id": failed} in events
    # no response at all within 30 s: 408 (§7.1.1)
    lost = chat.msrp.send_message(chat.local, CPIM_TYPE, b"z", 100.0)
    chat.msrp.data_to_send()
    chat.msrp.handle_timer(131.0)
    chat._events()
    assert events[-1]["status"] == 408 and events[-1]["message_id"] == lost
