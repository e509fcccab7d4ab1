"""``GET /api/conferences/{id}`` names the conference's home node while it is live."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.testclient import TestClient

from focus.homes import ConferenceHomes
from focus.homing import FocusHoming
from focus.store import ConferenceStore

from .conftest import FakeServices

Auth = Callable[[str], dict[str, str]]


def test_home_is_shown_while_live_and_from_any_node(
    client: TestClient, token: Auth, services: FakeServices, store: ConferenceStore
) -> None:
    alice = token("alice")
    created = client.post("/api/conferences", json={"name": "retro"}, headers=alice).json()
    clock = [1_800_000_000.0]

    def homing(name: str) -> FocusHoming:
        homes = ConferenceHomes(store.engine, name, f"sip:{name}.invalid:5060", 6.0)
        return FocusHoming(homes, set, clock=lambda: clock[0])

    services.focus.homing = homing("mrf-2")  # this web server runs on node mrf-2
    url = f"/api/conferences/{created['id']}"
    assert "home" not in client.get(url, headers=alice).json(), "not live: no home"
    assert homing("mrf-1").redirect("retro") is None  # a call made mrf-1 its home
    assert client.get(url, headers=alice).json()["home"] == "mrf-1"
    clock[0] += 7  # mrf-1 stopped renewing
    assert "home" not in client.get(url, headers=alice).json()


class FakeBus:
    """Stands in for mrf.cluster.bus.ClusterBus: records requests, answers as the home."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, object]]] = []

    async def request(self, node: str, op: str, **arguments: object) -> dict[str, object]:
        from mrf.cluster.bus import BusError

        self.asked.append((node, op, arguments))
        if op == "roster":
            return {"participants": [{"uri": "sip:alice@127.0.0.1", "call_id": "c1"}]}
        if op == "mute":
            if arguments["call_id"] != "c1":
                raise BusError("not_found", "no such participant in this conference")
            return {"entry": {"uri": "sip:alice@127.0.0.1", "muted": arguments["muted"]}}
        if arguments["uri"] == "sip:mallory@127.0.0.1":
            raise BusError("dial-out:403", "sip:mallory@127.0.0.1 is not on the authorized list")
        if arguments["uri"] == "sip:slow@127.0.0.1":
            raise BusError("unavailable", "no answer from mrf-1 within 5 s")
        return {"entry": {"uri": arguments["uri"], "state": "dialing"}}


def test_actions_on_a_conference_homed_elsewhere_go_to_its_home(
    client: TestClient, token: Auth, services: FakeServices, store: ConferenceStore
) -> None:
    alice = token("alice")
    created = client.post("/api/conferences", json={"name": "retro"}, headers=alice).json()
    homes = {n: ConferenceHomes(store.engine, n, f"sip:{n}.invalid:5060", 60.0)
             for n in ("mrf-1", "mrf-2")}  # fmt: skip
    services.focus.homing = FocusHoming(homes["mrf-2"], set)  # this web server is mrf-2
    services.bus = bus = FakeBus()  # type: ignore[attr-defined]
    base = f"/api/conferences/{created['id']}"
    local = client.get(f"{base}/roster", headers=alice).json()
    assert local["participants"] == [] and bus.asked == [], "no live home: answered here"
    homes["mrf-1"].claim("retro", time.time())  # a call made mrf-1 the home
    roster = client.get(f"{base}/roster", headers=alice).json()
    assert roster["conference"] == "sip:retro@127.0.0.1"
    assert roster["participants"] == [{"uri": "sip:alice@127.0.0.1", "call_id": "c1"}]
    muted = client.patch(f"{base}/roster/c1", json={"muted": True}, headers=alice)
    assert muted.status_code == 200 and muted.json()["muted"] is True
    gone = client.patch(f"{base}/roster/c9", json={"muted": True}, headers=alice)
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    placed = client.post(f"{base}/dial-out", json={"uri": "sip:bob@127.0.0.1"}, headers=alice)
    assert placed.status_code == 202 and placed.json()["participant"]["state"] == "dialing"
    stranger = client.post(f"{base}/dial-out", json={"uri": "sip:mallory@127.0.0.1"},
                           headers=alice)  # fmt: skip
    assert stranger.status_code == 403 and stranger.json()["error"] == "not_authorized"
    slow = client.post(f"{base}/dial-out", json={"uri": "sip:slow@127.0.0.1"}, headers=alice)
    assert slow.status_code == 503 and "mrf-1" in slow.json()["detail"]
    ops = ["roster", "mute", "mute", "dial-out", "dial-out", "dial-out"]
    assert bus.asked and [(n, op) for n, op, _ in bus.asked] == [("mrf-1", op) for op in ops]


def test_dial_out_with_no_live_home_claims_it_here(
    client: TestClient, token: Auth, services: FakeServices, store: ConferenceStore
) -> None:
    alice = token("alice")
    created = client.post("/api/conferences", json={"name": "retro"}, headers=alice).json()
    homes = ConferenceHomes(store.engine, "mrf-2", "sip:mrf-2.invalid:5060", 60.0)
    services.focus.homing = FocusHoming(homes, set)
    services.bus = bus = FakeBus()  # type: ignore[attr-defined]
    client.post(f"/api/conferences/{created['id']}/dial-out", json={"uri": "sip:bob@127.0.0.1"},
                headers=alice)  # fmt: skip
    assert bus.asked == [] and homes.get("retro") is not None
    assert homes.get("retro").node == "mrf-2"  # type: ignore[union-attr]
