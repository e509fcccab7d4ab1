"""The PSK S/MIME key from MIKEY-TICKET carried in the SUBSCRIBE (notify.mikey, mrf.ue.notify).

In one process on 127.0.0.1: the embedded KMS over HTTP, the real focus +
notifier, and ``mrf ue``'s subscription as the MIKEY Initiator.  The KEK each
side derived is the same, every protected body opens with ``openssl cms`` under
the dumped KEK and key id (the SPI) and validates against the RFC 4575 schema;
the refusals (403, 488, 503) happen before any key is derived.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from focus.endpoint import SipEndpoint
from focus.kms.http import KmsHttpServer, start_embedded_kms
from focus.kms.keys import KmsKeys
from focus.mikey.constants import MikeyProtType
from focus.mikey.initiator import MikeyTicketRequest, MikeyTransferInitiator
from focus.mikey.message import MikeyGenericIdEntry
from mrf.ue.notify import UeSubscription, UeSubscriptionOptions
from mrf.ue.watch import UeWatcher
from notify.kek import (
    CallKekProvider,
    ChainedKekProvider,
    StaticKekProvider,
    format_key_mgmt,
    key_mgmt_message,
)
from notify.mikey import NotifyMikeyExchange, same_identity
from notify.subscription import NotifyRemoteError
from tests.interop.harness import free_port
from tests.notify.rig import (
    ALICE,
    BOB,
    HOST,
    MALLORY,
    Rig,
    assert_valid,
    openssl_decrypt,
    rig,
    until,
    xmllint_validates,
)

CONFERENCE = f"sip:retro@{HOST}"


@dataclass
class Kms:
    url: str
    keys: KmsKeys
    server: KmsHttpServer


@asynccontextmanager
async def mikey_rig(tmp_path: Path, **kwargs: object) -> AsyncIterator[tuple[Rig, Kms]]:
    """The notifier rig with the embedded KMS and the SUBSCRIBE key exchange installed."""
    data_dir = tmp_path / "var"
    keys = KmsKeys.in_data_dir(data_dir)
    for user in (ALICE, BOB, MALLORY, CONFERENCE):
        keys.enroll(user)
    url = f"http://{HOST}:{free_port(tcp_and_udp=False)}/kms"
    server = await start_embedded_kms(url, data_dir)
    try:
        async with rig(tmp_path, **kwargs) as r:  # type: ignore[arg-type]

            def credentials(identity: bytes) -> bytes | None:
                return keys.user_key(identity) or keys.enroll(identity.decode())

            r.notify.key_exchange = NotifyMikeyExchange(url, credentials)
            yield r, Kms(url, keys, server)
    finally:
        await server.close()


def user_key(kms: Kms, user: str) -> str:
    key = kms.keys.user_key(user.encode())
    assert key is not None
    return key.hex()


async def watcher(r: Rig, options: UeSubscriptionOptions) -> tuple[UeSubscription, list[dict]]:  # type: ignore[type-arg]
    events: list[dict] = []  # type: ignore[type-arg]
    handler = UeWatcher()
    endpoint = SipEndpoint(handler)
    await endpoint.listen_udp(HOST, 0)
    subscription = handler.subscription = UeSubscription(endpoint, options, events.append)
    await subscription.subscribe()
    return subscription, events


def options(r: Rig, kms: Kms, tmp_path: Path, **kwargs: object) -> UeSubscriptionOptions:
    values: dict[str, object] = {
        "conference": CONFERENCE, "identity": ALICE, "target": r.address, "mikey": True,
        "kms_url": kms.url, "kms_key": user_key(kms, ALICE),
        "key_dump": tmp_path / "keys.txt", "save_notify": tmp_path / "bodies",
    }  # fmt: skip
    values.update(kwargs)
    return UeSubscriptionOptions(**values)  # type: ignore[arg-type]


def test_protected_subscriber_sees_a_join_and_every_body_opens_with_openssl(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with mikey_rig(tmp_path) as (r, kms):
            subscription, events = await watcher(r, options(r, kms, tmp_path))
            try:
                assert events[0]["event"] == "subscribed" and events[0]["protected"] is True
                await until(lambda: any(e["event"] == "notify" for e in events))
                await r.dial_in("retro", BOB)
                await until(lambda: any(e.get("users", {}).get(BOB) == "connected"
                                        for e in events))  # fmt: skip
                notifies = [e for e in events if e["event"] == "notify"]
                assert [n["version"] for n in notifies] == list(range(1, len(notifies) + 1))
                assert all(n["protected"] for n in notifies)
                assert notifies[0]["state"] == "full" and notifies[-1]["state"] == "partial"
                (subscriber,) = r.notify.subscribers.values()
                assert subscriber.kek is not None and subscription.kek is not None
                assert subscriber.kek.kek == subscription.kek.kek  # both ends derived one TEK
                assert subscriber.kek.key_id == subscription.kek.key_id != b""
            finally:
                await subscription.unsubscribe()
                await subscription.endpoint.close()
            assert events[-1]["event"] == "unsubscribed"
            assert r.notify.stats["protected"] >= 2

        _, _, spi, kek = (tmp_path / "keys.txt").read_text().split()
        bodies = sorted((tmp_path / "bodies").glob("*.der"))
        assert len(bodies) >= 2
        for index, body in enumerate(bodies):
            entity = openssl_decrypt(body.read_bytes(), bytes.fromhex(kek), bytes.fromhex(spi),
                                     tmp_path)  # fmt: skip
            head, _, document = entity.partition(b"\r\n\r\n")
            assert b"application/conference-info+xml" in head
            assert_valid(document)
            xml = tmp_path / f"plain-{index}.xml"
            xml.write_bytes(document)
            result = xmllint_validates(xml)
            assert result.returncode == 0, result.stderr

    asyncio.run(main())


def test_initiator_identity_must_be_the_subscriber(tmp_path: Path) -> None:
    """From: alice, but the ticket is bob's (enrolled, authorized): 403 before any key."""

    async def main() -> None:
        async with mikey_rig(tmp_path) as (r, kms):
            wrong = options(r, kms, tmp_path, kms_identity=BOB, kms_key=user_key(kms, BOB))
            subscription, events = await watcher(r, wrong)
            await subscription.endpoint.close()
            assert events[-1]["event"] == "refused" and events[-1]["status"] == 403
            assert not r.notify.subscribers and subscription.kek is None

            mallory = options(r, kms, tmp_path, identity=MALLORY, kms_key=user_key(kms, MALLORY))
            unlisted, events = await watcher(r, mallory)
            await unlisted.endpoint.close()
            assert events[-1]["status"] == 403  # not on the list at all

    asyncio.run(main())


async def transfer_init(kms: Kms, prot_type: int) -> bytes:
    """A TRANSFER_INIT from alice to the conference with one crypto session of ``prot_type``."""
    from focus.kms.client import kms_exchange

    now = time.time()
    request = MikeyTicketRequest.build(ALICE.encode(), bytes.fromhex(user_key(kms, ALICE)),
                                       responders=[CONFERENCE.encode()], now=now)  # fmt: skip
    granted = request.process_response(await kms_exchange(kms.url, bytes(request.message)),
                                       now=now)  # fmt: skip
    session = MikeyGenericIdEntry(1, prot_type)
    transfer = MikeyTransferInitiator.build(granted, CONFERENCE.encode(), [session], [], now=now)
    return bytes(transfer.message)


def test_refusals_are_488_and_503(tmp_path: Path) -> None:
    async def main() -> None:
        async with mikey_rig(tmp_path) as (r, kms):
            srtp = await transfer_init(kms, MikeyProtType.SRTP)
            header = ("Key-Mgmt", format_key_mgmt("mikey", srtp))
            response = await r.subscribe("retro", from_uri=ALICE, headers=(header,))
            assert response.status == 488
            assert "PSK S/MIME" in (response.headers.get("Warning") or "")

            junk = base64.b64encode(b"x" * 40).decode()
            garbage = ("Key-Mgmt", f'prot=mikey; data="{junk}"')
            response = await r.subscribe("retro", from_uri=ALICE, headers=(garbage,))
            assert response.status == 488

            other = ("Key-Mgmt", 'prot=sdes; data="AAAA"')
            assert (await r.subscribe("retro", from_uri=ALICE, headers=(other,))).status == 488

            good = await transfer_init(kms, 242)
            exchange = r.notify.key_exchange
            assert isinstance(exchange, NotifyMikeyExchange)
            exchange.kms_url = f"http://{HOST}:{free_port(tcp_and_udp=False)}/kms"  # nobody there
            header = ("Key-Mgmt", format_key_mgmt("mikey", good))
            response = await r.subscribe("retro", from_uri=ALICE, headers=(header,))
            assert response.status == 503 and response.headers.get("Retry-After") == "10"
            assert not r.notify.subscribers

    asyncio.run(main())


def test_replayed_transfer_init_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with mikey_rig(tmp_path) as (r, kms):
            header = ("Key-Mgmt", format_key_mgmt("mikey", await transfer_init(kms, 242)))
            first = await r.subscribe("retro", from_uri=ALICE, headers=(header,))
            assert first.status == 200
            assert first.headers.get("Key-Mgmt", "").startswith("prot=mikey; data=")
            again = await r.subscribe("retro", from_uri=ALICE, headers=(header,))
            assert again.status == 488  # RFC 3830 §5.4 replay cache

    asyncio.run(main())


def test_required_policy_accepts_a_mikey_subscriber(tmp_path: Path) -> None:
    async def main() -> None:
        async with mikey_rig(tmp_path, protection="required") as (r, kms):
            assert (await r.subscribe("retro", from_uri=ALICE)).status == 488  # no key at all
            subscription, events = await watcher(r, options(r, kms, tmp_path))
            try:
                await until(lambda: any(e["event"] == "notify" for e in events))
                assert [e for e in events if e["event"] == "notify"][0]["protected"] is True
            finally:
                await subscription.unsubscribe()
                await subscription.endpoint.close()

    asyncio.run(main())


def test_kek_of_an_invite_crypto_session_and_the_chain() -> None:
    aor = SimpleNamespace(aor="sip:alice@example.com")
    call = SimpleNamespace(conference=SimpleNamespace(name="retro"), identity=aor,
                           mikey=SimpleNamespace(smime=(bytes(16), b"\x01\x02")))  # fmt: skip
    plain = SimpleNamespace(conference=SimpleNamespace(name="retro"), identity=aor, mikey=None)
    calls = CallKekProvider(lambda: [plain, call])
    found = calls.lookup("retro", ALICE)
    assert found is not None and found.key_id == b"\x01\x02"
    assert calls.lookup("other", ALICE) is None and calls.lookup("retro", BOB) is None
    static = StaticKekProvider()
    chain = ChainedKekProvider([static, calls])
    chain.set("retro", ALICE, bytes(range(16)), b"\x09")
    assert chain.lookup("retro", ALICE).key_id == b"\x09"  # type: ignore[union-attr]
    static.remove("retro", ALICE)
    assert chain.lookup("retro", ALICE).key_id == b"\x01\x02"  # type: ignore[union-attr]


def test_kms_identity_comparison() -> None:
    assert same_identity(b"sip:alice@example.com", ALICE)
    assert same_identity(b"sips:alice@example.com:5061;transport=tls", ALICE)
    assert not same_identity(b"sip:bob@example.com", ALICE)
    assert not same_identity(b"\xff\xfe", ALICE)
    assert not same_identity(b"not a uri", ALICE)


@given(st.text(max_size=300))
def test_any_key_mgmt_value_is_a_message_or_488(value: str) -> None:
    try:
        key_mgmt_message(value)
    except NotifyRemoteError as exc:
        assert exc.status == 488


@given(st.binary(max_size=2000))
def test_key_mgmt_round_trip(message: bytes) -> None:
    if message:
        assert key_mgmt_message(format_key_mgmt("mikey", message)) == message
