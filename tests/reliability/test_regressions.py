"""Crashes the hostile-input runs found, kept as regression tests (issue 10).

1. KMS (focus/kms/core.py): a REQUEST_INIT from an enrolled user whose common
   header names an unknown PRF (RFC 3830 §6.1 "PRF func", here 127) made the
   Error-message path derive keys with that PRF again and raise out of
   ``KmsCore.handle``: the HTTP connection got no answer and the server logged
   a traceback.  Now the refusal is an unauthenticated MIKEY Error message.
"""

from __future__ import annotations

import time
from pathlib import Path

from focus.kms.core import KmsCore
from focus.kms.keys import KmsKeys
from focus.mikey.constants import MikeyDataType
from focus.mikey.initiator import MikeyTicketRequest
from focus.mikey.message import MikeyMessage

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
