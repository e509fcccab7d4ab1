"""``mrf ue``'s subscriber (mrf.ue.notify): the merged roster, refresh, bad bodies, the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from focus.endpoint import SipEndpoint
from mrf.__main__ import build_parser
from mrf.ue.notify import UeRoster, UeSubscription, UeSubscriptionOptions
from mrf.ue.watch import UeWatcher, options_from
from notify.conference_info import (
    ConferenceInfoEndpoint,
    ConferenceInfoSnapshot,
    ConferenceInfoUser,
    parse_conference_info,
    render_full,
    render_partial,
)
from notify.subscription import SubscriptionConfig
from tests.notify.rig import ALICE, BOB, HOST, rig, until


def snapshot(**users: str) -> ConferenceInfoSnapshot:
    return ConferenceInfoSnapshot("sip:retro@example.com", "retro", users=tuple(
        ConferenceInfoUser(f"sip:{name}@example.com",
                           endpoints=(ConferenceInfoEndpoint(f"sip:{name}@h:1", status),))
        for name, status in users.items()
    ))  # fmt: skip


def test_roster_merges_full_and_partial_documents() -> None:
    roster = UeRoster()
    first, second = snapshot(alice="connected"), snapshot(alice="on-hold", bob="dialing-in")
    assert roster.apply(parse_conference_info(render_full(first, 1)))
    partial = render_partial(first, second, 2)
    assert partial is not None and roster.apply(parse_conference_info(partial))
    summary = roster.summary()
    assert summary["users"] == {ALICE: "on-hold", BOB: "dialing-in"}
    assert summary["endpoints"] == {"sip:alice@h:1": "on-hold", "sip:bob@h:1": "dialing-in"}
    gone = render_partial(second, snapshot(bob="connected"), 3)
    assert gone is not None and roster.apply(parse_conference_info(gone))
    assert roster.summary()["users"] == {BOB: "connected"}
    skipped = render_partial(snapshot(bob="connected"), snapshot(), 5)
    assert skipped is not None and not roster.apply(parse_conference_info(skipped))  # gap


def test_subscribe_arguments() -> None:
    args = build_parser().parse_args(
        ["ue", "subscribe", "sip:retro@127.0.0.1", "--as", ALICE, "--proxy", "127.0.0.1:5070",
         "--mikey", "--kms", "http://127.0.0.1:8090/kms", "--kms-key", "00" * 32,
         "--expires", "120", "--key-dump", "k.txt", "--save-notify", "bodies"]
    )  # fmt: skip
    options = options_from(args)
    assert (options.target.host, options.target.port, options.expires) == ("127.0.0.1", 5070, 120)
    assert options.mikey and options.key_dump == Path("k.txt")
    join = build_parser().parse_args(["ue", "join", "sip:retro@127.0.0.1", "--as", ALICE,
                                      "--subscribe"])  # fmt: skip
    assert join.subscribe and options_from(join).target.port == 5060


def test_refresh_keeps_the_subscription_and_plain_bodies_parse(tmp_path: Path) -> None:
    limits = SubscriptionConfig(
        min_notify_interval=0, min_expires=1, default_expires=2, max_expires=2
    )

    async def main() -> None:
        async with rig(tmp_path, subscription=limits) as r:
            events: list[dict[str, Any]] = []
            handler = UeWatcher()
            endpoint = SipEndpoint(handler)
            await endpoint.listen_udp(HOST, 0)
            options = UeSubscriptionOptions(f"sip:retro@{HOST}", ALICE, r.address, expires=2,
                                            save_notify=tmp_path / "bodies")  # fmt: skip
            subscription = handler.subscription = UeSubscription(endpoint, options, events.append)
            try:
                assert await subscription.subscribe()
                await asyncio.sleep(3.0)  # past the 2 s expiry: refreshed at 1.6 s
                assert r.notify.subscribers and not subscription.terminated.is_set()
                notifies = [e for e in events if e["event"] == "notify"]
                assert [n["state"] for n in notifies][:2] == ["full", "full"]
                assert not notifies[0]["protected"]
                assert not [e for e in events if e["event"] == "error"]
            finally:
                await subscription.unsubscribe()
                await endpoint.close()
            assert events[-1]["event"] == "unsubscribed"
            assert sorted((tmp_path / "bodies").glob("*.xml"))

    asyncio.run(main())


def test_a_protected_body_without_a_key_is_an_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            r.notify.keys.set("retro", ALICE, bytes(16), b"\x01")  # type: ignore[attr-defined]
            events: list[dict[str, Any]] = []
            handler = UeWatcher()
            endpoint = SipEndpoint(handler)
            await endpoint.listen_udp(HOST, 0)
            options = UeSubscriptionOptions(f"sip:retro@{HOST}", ALICE, r.address)
            subscription = handler.subscription = UeSubscription(endpoint, options, events.append)
            try:
                assert await subscription.subscribe()
                await until(lambda: any(e["event"] == "notify" for e in events))
                assert any("no KEK" in e.get("detail", "") for e in events)
                assert [e for e in events if e["event"] == "notify"][0]["version"] is None
            finally:
                await subscription.unsubscribe()
                await endpoint.close()

    asyncio.run(main())
