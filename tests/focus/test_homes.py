"""focus/homes.py and focus/homing.py: one live home per conference, claimed atomically."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from focus.homes import ConferenceHomes
from focus.homing import FocusHoming
from focus.store import ConferenceStore

LEASE = 6.0
NOW = 1_800_000_000.0


@pytest.fixture
def store(database_url: str) -> Iterator[ConferenceStore]:
    with ConferenceStore(database_url) as store:
        store.create_all()
        yield store


def node(store: ConferenceStore, name: str) -> ConferenceHomes:
    number = int(name.removeprefix("n"))
    return ConferenceHomes(store.engine, name, f"sip:127.0.0.{10 + number}:5060", LEASE)


def test_the_first_claim_wins_and_others_see_the_home(store: ConferenceStore) -> None:
    a, b = node(store, "n1"), node(store, "n2")
    assert a.claim("retro", NOW).node == "n1"
    home = b.claim("retro", NOW + 1)
    assert (home.node, home.contact) == ("n1", "sip:127.0.0.11:5060")
    assert b.live_home("retro", NOW + 1) == home
    assert a.claim("retro", NOW + 2).node == "n1", "the home re-claims (renews) its own"


def test_a_lease_not_renewed_is_lost_to_the_next_claim(store: ConferenceStore) -> None:
    a, b = node(store, "n1"), node(store, "n2")
    a.claim("retro", NOW)
    assert b.claim("retro", NOW + LEASE - 0.5).node == "n1"
    assert b.live_home("retro", NOW + LEASE + 0.5) is None
    assert b.claim("retro", NOW + LEASE + 0.5).node == "n2"
    assert a.renew({"retro"}, NOW + LEASE + 1) == set(), "the old home no longer holds it"
    assert a.claim("retro", NOW + LEASE + 1).node == "n2"


def test_renewal_keeps_the_home(store: ConferenceStore) -> None:
    a, b = node(store, "n1"), node(store, "n2")
    a.claim("retro", NOW)
    assert a.renew({"retro", "other"}, NOW + LEASE - 1) == {"retro"}
    assert b.claim("retro", NOW + LEASE + 1).node == "n1"


def test_release_frees_only_this_nodes_homes(store: ConferenceStore) -> None:
    a, b = node(store, "n1"), node(store, "n2")
    a.claim("retro", NOW)
    b.claim("daily", NOW)
    assert a.release() == 1
    assert a.get("retro") is None and a.get("daily") is not None


def test_concurrent_claims_elect_exactly_one_home(store: ConferenceStore) -> None:
    nodes = [node(store, f"n{i}") for i in range(1, 9)]
    barrier = threading.Barrier(len(nodes))
    results: dict[str, str] = {}

    def run(homes: ConferenceHomes, now: float, conference: str) -> None:
        barrier.wait()
        results[homes.node] = homes.claim(conference, now).node

    for conference, now in (("fresh", NOW), ("fresh", NOW + LEASE + 1)):
        # first: nobody holds it (racing INSERTs); then: the lease ran out (racing UPDATEs)
        threads = [threading.Thread(target=run, args=(h, now, conference)) for h in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        winners = set(results.values())
        assert len(results) == len(nodes) and len(winners) == 1, results
        stored = nodes[0].get(conference)
        assert stored is not None and {stored.node} == winners
        results.clear()


def test_homing_redirects_to_the_live_home_with_a_302(store: ConferenceStore) -> None:
    clock = [NOW]
    one = FocusHoming(node(store, "n1"), set, clock=lambda: clock[0])
    two = FocusHoming(node(store, "n2"), set, clock=lambda: clock[0])
    assert one.redirect("retro") is None
    refusal = two.redirect("retro")
    assert refusal is not None and refusal.status == 302
    assert refusal.headers == (("Contact", "<sip:retro@127.0.0.11:5060>"),)
    assert two.home_of("retro") == "n1"
    clock[0] += LEASE + 1  # n1 did not renew (dead): the next join makes n2 the home
    assert two.redirect("retro") is None
    assert one.home_of("retro") == "n2"


def test_homing_renews_live_conferences_and_releases_idle_ones(store: ConferenceStore) -> None:
    clock = [NOW]
    live = {"retro"}
    one = FocusHoming(node(store, "n1"), lambda: set(live), clock=lambda: clock[0])
    one.redirect("retro")
    one.redirect("idle")
    for _ in range(4):  # well past one lease, renewed every round
        clock[0] += LEASE / 2
        one.renew()
    assert one.home_of("retro") == "n1"
    assert one.homes.get("idle") is None, "a conference without calls is released"
    live.clear()
    one.renew()
    assert one.homes.get("retro") is None


def test_a_restarted_node_gives_up_its_old_homes_and_keeps_others(
    store: ConferenceStore,
) -> None:
    import asyncio

    old, other = node(store, "n1"), node(store, "n2")
    old.claim("stale", NOW)  # held by n1 before it was killed
    other.claim("moved", NOW)  # taken by n2 meanwhile

    async def restart() -> None:
        homing = FocusHoming(node(store, "n1"), set, clock=lambda: NOW + 1)
        homing.start()
        await homing.close()

    asyncio.run(restart())
    assert old.get("stale") is None, "the restarted node holds no calls: no home"
    moved = old.get("moved")
    assert moved is not None and moved.node == "n2"
    assert FocusHoming(node(store, "n1"), set, clock=lambda: NOW + 2).redirect("moved") is not None


def test_a_young_lease_answers_without_the_database(store: ConferenceStore) -> None:
    clock = [NOW]
    homing = FocusHoming(node(store, "n1"), set, clock=lambda: clock[0])
    assert homing.redirect("retro") is None
    calls: list[str] = []
    real = homing.homes.claim
    homing.homes.claim = lambda c, now: calls.append(c) or real(c, now)  # type: ignore[method-assign]
    clock[0] += LEASE / 2 - 0.5
    assert homing.redirect("retro") is None and calls == [], "no round trip per INVITE"
    clock[0] += 1.0  # past half the lease: claimed (renewed) in the database again
    assert homing.redirect("retro") is None and calls == ["retro"]
    stored = homing.homes.get("retro")
    assert stored is not None and stored.expires_at == clock[0] + LEASE
