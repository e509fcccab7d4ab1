"""The notifier end to end in one process: SUBSCRIBE/NOTIFY over UDP on 127.0.0.1
against the real focus, with dial-ins changing the roster.  Every protected body
is opened by ``openssl cms`` and validated by ``xmllint --schema``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from focus.sip.message import SipRequest
from notify.conference_info import parse_conference_info
from notify.smime import SMIME_CONTENT_TYPE, decrypt_auth_enveloped, parse_mime_entity
from notify.subscription import SubscriptionConfig
from tests.notify.rig import (
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    assert_valid,
    openssl_decrypt,
    rig,
    until,
    xmllint_validates,
)

KEK = bytes(range(16))
KEY_ID = bytes.fromhex("a1b2c3d4")  # the PSK S/MIME crypto session's SPI (decision b)


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def plain(notify: SipRequest) -> bytes:
    assert notify.headers.get("Content-Type") == "application/conference-info+xml"
    assert_valid(notify.body)
    return notify.body


def test_subscribe_full_then_partial_on_join_and_leave(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            response = await r.subscribe("retro", from_uri=BOB)
            assert response.status == 200 and response.headers.get("Expires") == "600"
            assert ";isfocus" in (response.headers.get("Contact") or "")
            call_id = response.call_id
            await until(lambda: len(r.subscriber.for_call(call_id)) == 1)
            first = r.subscriber.for_call(call_id)[0]
            assert first.headers.get("Event") == "conference"
            assert first.headers.get("Subscription-State", "").startswith("active;expires=")
            notice = parse_conference_info(plain(first))
            assert (notice.state, notice.version, notice.user_count) == ("full", 1, 0)

            dialog, _ = await r.dial_in("retro", ALICE)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 2)
            joined = parse_conference_info(plain(r.subscriber.for_call(call_id)[1]))
            assert (joined.state, joined.version, joined.user_count) == ("partial", 2, 1)
            assert joined.users == {ALICE: "full"}
            assert list(joined.endpoints.values()) == ["connected"]

            await r.hang_up(dialog)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 3)
            left_doc = plain(r.subscriber.for_call(call_id)[2])
            left = parse_conference_info(left_doc)
            assert (left.state, left.version, left.user_count) == ("partial", 3, 0)
            assert list(left.endpoints.values()) == ["disconnected"]
            assert b"<disconnection-method>departed</disconnection-method>" in left_doc

    run(main())


def test_refusals(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            assert (await r.subscribe("retro", from_uri=MALLORY)).status == 403
            anonymous = "sip:anonymous@anonymous.invalid"
            assert (await r.subscribe("retro", from_uri=anonymous)).status == 403
            assert (await r.subscribe("nope")).status == 404
            bad = await r.subscribe("retro", event="presence")
            assert bad.status == 489 and bad.headers.get("Allow-Events") == "conference"
            brief = await r.subscribe("retro", expires=5)
            assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
            capped = await r.subscribe("retro", expires=99999)
            assert capped.status == 200 and capped.headers.get("Expires") == "3600"
            accept = await r.subscribe("retro", headers=(("Accept", "text/plain"),))
            assert accept.status == 406
            assert r.notify.stats["refused"] == 6

    run(main())


def test_a_contact_without_a_uri_is_refused_with_400(tmp_path: Path) -> None:
    """An empty or unparseable Contact is the subscriber's fault: 400 with a
    Warning, and the notifier goes on (a fuzzed SUBSCRIBE once raised here)."""

    async def main() -> None:
        async with rig(tmp_path) as r:
            for contact in ("", "  ", "<>;;"):
                request = r.subscribe_request("retro")
                request.headers.set("Contact", contact)
                response = await r.client.request(request, r.address)
                assert response.status == 400, contact
                if not contact.strip():
                    assert response.reason == "Missing Contact"
                    assert response.headers.get("Warning", "").startswith("399 ")
            assert r.notify.stats["refused"] == 2 and not r.notify.subscribers
            assert (await r.subscribe("retro")).status == 200

    run(main())


def test_unsubscribe_and_refresh(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            response = await r.subscribe("retro")
            dialog = r.dialogs[response.call_id]
            await until(lambda: len(r.subscriber.for_call(response.call_id)) == 1)
            refreshed = await r.subscribe("retro", dialog=dialog, expires=120)
            assert refreshed.status == 200 and refreshed.headers.get("Expires") == "120"
            await until(lambda: len(r.subscriber.for_call(response.call_id)) == 2)
            again = r.subscriber.for_call(response.call_id)[1]
            assert parse_conference_info(plain(again)).state == "full"  # RFC 4575 §3.2
            assert parse_conference_info(again.body).version == 2
            gone = await r.subscribe("retro", dialog=dialog, expires=0)
            assert gone.status == 200
            await until(lambda: len(r.subscriber.for_call(response.call_id)) == 3)
            final = r.subscriber.for_call(response.call_id)[2]
            assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
            assert not r.notify.subscribers
            stale = await r.subscribe("retro", dialog=dialog, expires=60)
            assert stale.status == 481

    run(main())


def test_expiry_sends_terminated_timeout(tmp_path: Path) -> None:
    config = SubscriptionConfig(min_expires=1, default_expires=1, max_expires=1)

    async def main() -> None:
        async with rig(tmp_path, subscription=config) as r:
            response = await r.subscribe("retro", expires=1)
            assert response.headers.get("Expires") == "1"
            await until(lambda: len(r.subscriber.for_call(response.call_id)) == 2, timeout=5)
            final = r.subscriber.for_call(response.call_id)[1]
            assert final.headers.get("Subscription-State") == "terminated;reason=timeout"

    run(main())


def test_rate_cap_coalesces_changes(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, min_notify_interval=2.0) as r:  # wide: loaded machines are slow
            response = await r.subscribe("retro", from_uri=CAROL)
            call_id = response.call_id
            await until(lambda: len(r.subscriber.for_call(call_id)) == 1)
            await r.dial_in("retro", ALICE)
            await r.dial_in("retro", BOB)  # both joins inside one interval
            await asyncio.sleep(0.3)
            assert len(r.subscriber.for_call(call_id)) == 1  # held back by the cap
            await until(lambda: len(r.subscriber.for_call(call_id)) == 2, timeout=8)
            await asyncio.sleep(0.8)
            notices = [parse_conference_info(plain(n)) for n in r.subscriber.for_call(call_id)]
            assert len(notices) == 2, "two joins, one coalesced partial NOTIFY"
            assert set(notices[1].users) == {ALICE, BOB} and notices[1].version == 2

    run(main())


def test_conference_deleted_and_subscriber_removed(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            alice = await r.subscribe("retro", from_uri=ALICE)
            bob = await r.subscribe("retro", from_uri=BOB)
            await until(lambda: len(r.subscriber.notifies) == 2)
            r.store.set_participants("retro", [(BOB, "participant")])
            await r.focus.apply_policy("retro")
            await until(lambda: len(r.subscriber.for_call(alice.call_id)) == 2)
            final = r.subscriber.for_call(alice.call_id)[1]
            assert final.headers.get("Subscription-State") == "terminated;reason=rejected"
            r.store.delete_conference("retro")
            await r.focus.apply_policy("retro")
            await until(lambda: len(r.subscriber.for_call(bob.call_id)) == 2)
            deleted = r.subscriber.for_call(bob.call_id)[1]
            assert deleted.headers.get("Subscription-State") == "terminated;reason=noresource"
            assert parse_conference_info(plain(deleted)).state == "deleted"
            assert not r.notify.subscribers

    run(main())


def test_required_protection_refuses_a_subscriber_without_a_key(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, protection="required") as r:
            refused = await r.subscribe("retro", from_uri=BOB)
            assert refused.status == 488 and "PSK S/MIME" in (refused.headers.get("Warning") or "")
            r.notify.keys.set("retro", BOB, KEK, KEY_ID)  # type: ignore[attr-defined]
            assert (await r.subscribe("retro", from_uri=BOB)).status == 200

    run(main())


def test_protected_notifies_open_with_openssl_and_validate(tmp_path: Path) -> None:
    """Required policy, keys set directly: every body is PSK S/MIME (Annex I)."""

    async def main() -> list[SipRequest]:
        async with rig(tmp_path, protection="required") as r:
            r.notify.keys.set("retro", CAROL, KEK, KEY_ID)  # type: ignore[attr-defined]
            response = await r.subscribe("retro", from_uri=CAROL)
            call_id = response.call_id
            await until(lambda: len(r.subscriber.for_call(call_id)) == 1)
            dialog, _ = await r.dial_in("retro", ALICE)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 2)
            r.focus.set_muted(dialog.call_id, True)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 3)
            await r.hang_up(dialog)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 4)
            await r.subscribe("retro", dialog=r.dialogs[call_id], expires=0)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 5)
            return r.subscriber.for_call(call_id)

    notifies = asyncio.run(main())
    documents = [n for n in notifies if n.body]
    assert len(documents) == 4
    statuses = []
    for index, notify in enumerate(documents):
        assert notify.headers.get("Content-Type") == SMIME_CONTENT_TYPE
        assert b"conference-info" not in notify.body  # nothing readable on the wire
        opened = openssl_decrypt(notify.body, KEK, KEY_ID, tmp_path)
        assert opened == decrypt_auth_enveloped(notify.body, KEK, KEY_ID)
        content_type, document = parse_mime_entity(opened)
        assert content_type == "application/conference-info+xml"
        path = tmp_path / f"doc{index}.xml"
        path.write_bytes(document)
        lint = xmllint_validates(path)
        assert lint.returncode == 0 and "validates" in lint.stderr, lint.stderr
        notice = parse_conference_info(document)
        assert notice.version == index + 1
        statuses.append(list(notice.endpoints.values()))
    assert statuses == [[], ["connected"], ["muted-via-focus"], ["disconnected"]]
    assert notifies[-1].headers.get("Subscription-State") == "terminated;reason=timeout"


def test_join_and_leave_inside_one_interval_still_reported(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path, min_notify_interval=0.5) as r:
            response = await r.subscribe("retro", from_uri=CAROL)
            call_id = response.call_id
            await until(lambda: len(r.subscriber.for_call(call_id)) == 1)
            dialog, _ = await r.dial_in("retro", ALICE)
            await r.hang_up(dialog)
            await until(lambda: len(r.subscriber.for_call(call_id)) == 2, timeout=8)
            notice = parse_conference_info(plain(r.subscriber.for_call(call_id)[1]))
            assert notice.users == {ALICE: "full"}
            assert list(notice.endpoints.values()) == ["disconnected"]

    run(main())


def test_changes_inside_the_interval_keep_one_timer_and_send_the_latest_state(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with rig(tmp_path, min_notify_interval=2.0) as r:  # wide: loaded machines are slow
            response = await r.subscribe("retro", from_uri=CAROL)
            call_id = response.call_id
            await until(lambda: len(r.subscriber.for_call(call_id)) == 1)
            [subscriber] = r.notify.subscribers.values()
            await until(lambda: subscriber.core.in_flight == 0)
            await r.dial_in("retro", ALICE)  # a change: the coalesced NOTIFY is armed
            await until(lambda: subscriber.core.pending_change)
            timer = subscriber.timer
            assert timer is not None
            for _ in range(50):  # a busy conference: every event re-arms the subscription
                r.notify.conference_changed("retro")
            assert subscriber.timer is timer and not timer.cancelled()
            dialog, _ = await r.dial_in("retro", BOB)
            await r.hang_up(dialog)
            assert subscriber.timer is timer
            await until(lambda: len(r.subscriber.for_call(call_id)) == 2, timeout=8)
            await until(lambda: subscriber.core.in_flight == 0)
            assert not subscriber.core.pending_change  # nothing left to send: no third NOTIFY
            notices = [parse_conference_info(plain(n)) for n in r.subscriber.for_call(call_id)]
            assert len(notices) == 2 and [n.version for n in notices] == [1, 2]
            assert notices[1].state == "partial" and set(notices[1].users) == {ALICE, BOB}
            bob = [e for e, user in notices[1].endpoint_users.items() if user == BOB]
            assert [notices[1].endpoints[e] for e in bob] == ["disconnected"]

    run(main())
