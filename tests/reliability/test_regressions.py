"""Crashes the hostile-input runs found, kept as regression tests (issue 10).

1. KMS (focus/kms/core.py): a REQUEST_INIT from an enrolled user whose common
   header names an unknown PRF (RFC 3830 §6.1 "PRF func", here 127) made the
   Error-message path derive keys with that PRF again and raise out of
   ``KmsCore.handle``: the HTTP connection got no answer and the server logged
   a traceback.  Now the refusal is an unauthenticated MIKEY Error message.
2. MSRP (mrf/chat.py, mrf/msrp/connection.py): when a connection closed, the
   relay cancelled its transaction timer and kept its partial messages: a
   recipient vanishing mid-delivery left the sender without a failure REPORT
   (RFC 4975 §7.1.2), and a sender vanishing mid-message leaked the spooled
   file.  ``MsrpConnection.connection_lost`` now drops partial messages and
   fails every pending send at once (408); tests/reliability/test_msrp_bfcp_faults.py
   covers the relay end to end.
"""

from __future__ import annotations

import time
from pathlib import Path

from focus.kms.core import KmsCore
from focus.kms.keys import KmsKeys
from focus.mikey.constants import MikeyDataType
from focus.mikey.initiator import MikeyTicketRequest
from focus.mikey.message import MikeyMessage
from mrf.msrp.connection import MsrpConnection
from mrf.msrp.events import MsrpDeliveryFailed
from mrf.msrp.uri import MsrpUri

PRF_OFFSET = 3  # version, data type, next payload, V|PRF func (RFC 3830 §6.1)


def test_kms_answers_an_unknown_prf_with_an_error_message(tmp_path: Path) -> None:
    keys = KmsKeys.in_data_dir(tmp_path)
    alice = keys.enroll("sip:alice@127.0.0.1")
    core = KmsCore(keys.user_key, keys.ticket_secrets, keys.current_secret)
    now = time.time()
    request = bytearray(
        MikeyTicketRequest.build(
            b"sip:alice@127.0.0.1", alice, responders=[b"sip:fuzz@127.0.0.1"], now=now
        ).message.__bytes__()
    )
    request[PRF_OFFSET] = 0x7F
    answer = MikeyMessage.parse(core.handle(bytes(request), now))
    assert answer.data_type == MikeyDataType.ERROR


def test_msrp_connection_lost_fails_pending_sends_and_drops_partial_messages() -> None:
    alice = MsrpUri.parse("msrps://127.0.0.1:1001/alice1;tcp")
    bob = MsrpUri.parse("msrps://127.0.0.1:1002/bob2;tcp")
    sender = MsrpConnection()
    receiver = MsrpConnection(resolver=lambda local, path: 200 if local == bob else 481)
    sender.bind(alice, (bob,))
    first = sender.send_message(alice, "text/plain", b"x" * 40_000, 1.0)  # 3 chunks
    wire = sender.data_to_send()
    receiver.receive_data(wire[: len(wire) // 2], 1.0)  # the receiver got part of it
    assert receiver._incoming  # noqa: SLF001
    while receiver.next_event() is not None:  # the session was bound
        pass
    receiver.connection_lost()
    assert not receiver._incoming  # noqa: SLF001 (the partial message is dropped)
    receiver.receive_data(wire[len(wire) // 2 :], 2.0)  # nothing more is taken in
    assert receiver.next_event() is None
    sender.connection_lost()
    failed = sender.next_event()
    assert isinstance(failed, MsrpDeliveryFailed) and (failed.message_id, failed.status) == (
        first,
        408,
    )
    assert sender.next_event() is None and sender.get_timer() is None
