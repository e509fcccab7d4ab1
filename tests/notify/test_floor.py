"""Floor control state (BFCP) in conference-info: our ``mfloor:floor`` extension element.

The mapping from the floor server's requests (RFC 8855 §5.2.5) to endpoints,
the rendering (schema-valid, inside ``endpoint``'s ``##other`` wildcard), and
the notifier reacting to ``FloorControl.on_floor_change`` with partial NOTIFYs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from mrf.bfcp.codes import BfcpRequestStatus as S
from mrf.bfcp.floor import BfcpFloorConfig, BfcpFloorRequest
from mrf.bfcp.server import BfcpFloorServer
from notify.conference_info import (
    FLOOR_CONTROL_NS,
    ConferenceInfoEndpoint,
    ConferenceInfoFloor,
    ConferenceInfoSnapshot,
    ConferenceInfoUser,
    parse_conference_info,
    render_full,
    render_partial,
)
from notify.roster import floor_states
from tests.notify.rig import ALICE, BOB, assert_valid, rig, until


class FakeFloorControl:
    """What the notifier reads of ``mrf.floor.FloorControl``: server, sessions, listeners."""

    def __init__(self) -> None:
        self.server = BfcpFloorServer(BfcpFloorConfig(), random_id=lambda: 7)
        self.sessions: dict[tuple[int, int], SimpleNamespace] = {}
        self.listeners: list[Callable[[], None]] = []

    def on_floor_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def user(self, conference: str, call_id: str) -> int:
        found = self.server.find_conference(conference)
        conference_id = (
            found.conference_id if found else self.server.add_conference(conference, {1: "audio"})
        )
        user_id = self.server.add_user(conference_id, call_id)
        self.sessions[(conference_id, user_id)] = SimpleNamespace(call_id=call_id)
        return user_id

    def request(self, conference: str, user_id: int, status: S, position: int = 0) -> None:
        state = self.server.find_conference(conference)
        assert state is not None
        request_id = state.new_request_id()
        state.requests[request_id] = BfcpFloorRequest(
            request_id, user_id, user_id, (1,), 0, state.next_sequence(), status, position
        )

    def changed(self) -> None:
        for listener in list(self.listeners):
            listener()


def snapshot(*floors: ConferenceInfoFloor) -> ConferenceInfoSnapshot:
    endpoint = ConferenceInfoEndpoint("sip:alice@127.0.0.1:5070", "connected", floors=floors)
    user = ConferenceInfoUser(ALICE, endpoints=(endpoint,))
    return ConferenceInfoSnapshot("sip:retro@example.com", "retro", users=(user,))


def test_floor_elements_are_schema_valid_and_parse_back() -> None:
    granted = render_full(snapshot(ConferenceInfoFloor(1, "granted")), 1)
    assert_valid(granted)
    assert f'xmlns:mfloor="{FLOOR_CONTROL_NS}"'.encode() in granted
    assert b'<mfloor:floor id="1" status="granted" />' in granted
    notice = parse_conference_info(granted)
    assert notice.floors == {"sip:alice@127.0.0.1:5070": "granted"}
    assert notice.endpoint_users == {"sip:alice@127.0.0.1:5070": ALICE}

    queued = render_partial(snapshot(), snapshot(ConferenceInfoFloor(1, "queued", 2)), 2)
    assert queued is not None
    assert_valid(queued)
    assert b'status="queued" queue-position="2"' in queued
    released = render_partial(snapshot(ConferenceInfoFloor(1, "granted")), snapshot(), 3)
    assert released is not None and b"mfloor" not in released
    assert parse_conference_info(released).floors == {}

    with pytest.raises(ValueError):
        ConferenceInfoFloor(1, "revoked")


def test_floor_states_map_requests_to_calls() -> None:
    control = FakeFloorControl()
    alice = control.user("retro", "call-a")
    bob = control.user("retro", "call-b")
    control.user("retro", "call-c")
    control.request("retro", alice, S.GRANTED)
    control.request("retro", bob, S.ACCEPTED, 1)
    assert floor_states(control, "retro") == {
        "call-a": (ConferenceInfoFloor(1, "granted"),),
        "call-b": (ConferenceInfoFloor(1, "queued", 1),),
    }
    assert floor_states(control, "other") == {}
    assert floor_states(None, "retro") == {}


def test_floor_changes_reach_subscribers_as_partial_notifies(tmp_path: Path) -> None:
    async def main() -> None:
        async with rig(tmp_path) as r:
            control = FakeFloorControl()
            r.notify.watch_floor(control)
            dialog, _ = await r.dial_in("retro", BOB)
            response = await r.subscribe("retro", from_uri=ALICE)
            call_id = response.call_id
            await until(lambda: len(r.subscriber.for_call(call_id)) == 1)
            user_id = control.user("retro", dialog.call_id)
            control.request("retro", user_id, S.GRANTED)
            control.changed()
            await until(lambda: len(r.subscriber.for_call(call_id)) == 2)
            body = r.subscriber.for_call(call_id)[1].body
            assert_valid(body)
            notice = parse_conference_info(body)
            assert notice.state == "partial" and list(notice.floors.values()) == ["granted"]

            control.changed()  # nothing changed: no NOTIFY
            state = control.server.find_conference("retro")
            assert state is not None
            state.requests.clear()  # released
            control.changed()
            await until(lambda: len(r.subscriber.for_call(call_id)) == 3)
            await asyncio.sleep(0.1)
            assert len(r.subscriber.for_call(call_id)) == 3
            released = parse_conference_info(r.subscriber.for_call(call_id)[2].body)
            assert released.version == 3 and released.floors == {}
            assert list(released.endpoints.values()) == ["connected"]

    asyncio.run(main())
