"""``GET /api/conferences/{id}`` names the conference's home node while it is live."""

from __future__ import annotations

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
