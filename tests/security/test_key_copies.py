"""After a re-key and after hang-up, no key is left anywhere Python can reach.

README "Keys in memory": each SRTP key is one :class:`~focus.sdp.secret.SecretBytes`
that the plan and the media plane's SRTP contexts share, wiped at re-key and
at hang-up.  The focus runs in this process (:mod:`tests.focus.test_service`'s
rig: the real FocusService, SipEndpoint and MediaPlane over UDP) so every
object the garbage collector tracks can be searched for the raw key bytes:
during the call the keys sit in their holders (the control that the search
finds them), after a re-INVITE with new keys the old ones are nowhere, after
the BYE neither are the new ones.  The test keeps the call and its first plan
alive on purpose, as a roster, a log record or a late task might: what
outlives a key must hold it wiped, not merely drop it for the garbage
collector (which frees memory without overwriting it).  The participant's
own copies (this test's locals) are excluded by identity; copies Python cannot reach -- libsrtp's,
freed memory, the base64 text of the SDP -- are the README's to state.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
from pathlib import Path

from focus.sdp.secret import SecretBytes
from tests.focus.test_service import (
    ack,
    answer_key_and_port,
    call,
    invite,
    media_socket,
    offer_sdp,
    rig,
)
from tests.security.table import RefusalLog


def _copies(keys: list[bytes], mine: set[int]) -> dict[str, int]:
    """Reachable objects holding any of ``keys``: {"SecretBytes": n, "other": n}.

    CPython stops tracking tuples and dicts that hold only plain values, so
    ``gc.get_objects()`` never lists them: the search looks inside the untracked
    containers a tracked object refers to (three levels deep)."""
    gc.collect()
    found = {"SecretBytes": 0, "other": 0}
    walked: set[int] = set()

    def search(owner: object, depth: int) -> None:
        for held in gc.get_referents(owner):
            if isinstance(held, (tuple, dict, list)) and not gc.is_tracked(held):
                if depth < 3 and id(held) not in walked:
                    walked.add(id(held))
                    search(held, depth + 1)
                continue
            if id(held) in mine or not isinstance(held, (bytes, bytearray)):
                continue
            if any(key in held for key in keys):
                found["SecretBytes" if isinstance(owner, SecretBytes) else "other"] += 1

    for owner in gc.get_objects():
        search(owner, 0)
    return found


def test_no_key_copy_survives_rekey_and_hang_up(tmp_path: Path, refusal: RefusalLog) -> None:
    seen: dict[str, dict[str, int]] = {}

    async def main() -> None:
        async with rig(tmp_path) as r:
            sock, _, port = await media_socket()
            try:
                first = secrets.token_bytes(30)
                request = invite(r, "udp", "retro", offer_sdp(port, first))
                response = await call(r, request)
                focus_first = answer_key_and_port(response)[0]
                dialog = ack(r, request, response, "udp")
                (kept_call,) = r.focus.calls  # outlives the call, on purpose
                kept_plan = kept_call.plan  # outlives the re-key, on purpose
                old = [first, focus_first]
                mine = {id(first), id(focus_first)}
                seen["call"] = _copies(old, mine)
                second = secrets.token_bytes(30)
                rekey = dialog.create_request("INVITE", body=offer_sdp(port, second))
                reply = await r.client.request(rekey, r.addresses["udp"])
                assert reply.status == 200
                focus_second = answer_key_and_port(reply)[0]
                new = [second, focus_second]
                mine |= {id(second), id(focus_second)}
                seen["re-key: old keys"] = _copies(old, mine)
                seen["re-key: new keys"] = _copies(new, mine)
                bye = dialog.create_request("BYE")
                assert (await r.client.request(bye, r.addresses["udp"])).status == 200
                await asyncio.sleep(0)  # let the media plane finish closing
                seen["hang-up"] = _copies(old + new, mine)
                assert kept_call.plan is not None and kept_plan is not None
            finally:
                sock.close()

    asyncio.run(main())
    refusal.record("key copies after re-key and hang-up",
                   "SDES call, re-INVITE with new keys, BYE; search every object the GC "
                   "tracks for the raw keys",
                   "; ".join(f"{stage}: {n['SecretBytes']} holders, {n['other']} other copies"
                             for stage, n in seen.items()))  # fmt: skip
    assert seen["call"] == {"SecretBytes": 2, "other": 0}  # the search finds the holders
    assert seen["re-key: new keys"] == {"SecretBytes": 2, "other": 0}
    assert seen["re-key: old keys"] == {"SecretBytes": 0, "other": 0}
    assert seen["hang-up"] == {"SecretBytes": 0, "other": 0}
