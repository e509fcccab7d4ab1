"""mrf/cluster/bus.py: two nodes' buses on one PostgreSQL ask each other's homes."""

from __future__ import annotations

import asyncio
import base64
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from focus.dialout import DialOutError
from mrf.cluster.bus import MAX_PAYLOAD, BusError, ClusterBus, decode, encode


@dataclass
class Conf:
    name: str


@dataclass
class Call:
    call_id: str
    conference: Conf
    participant: str
    muted: bool = False

    def roster_entry(self) -> dict[str, object]:
        return {"uri": self.participant, "call_id": self.call_id, "muted": self.muted}


class Dialer:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start(self, conference: str, target: str) -> Call:
        if "stranger" in target:
            raise DialOutError(403, "sip:stranger@h is not on the authorized list")
        self.started.append((conference, target))
        return Call("out-1", Conf(conference), target)


@dataclass
class Focus:
    calls: list[Call] = field(default_factory=list)
    dialout: Dialer = field(default_factory=Dialer)
    homing: Any = None

    def roster(self, conference: str) -> list[dict[str, object]]:
        return [c.roster_entry() for c in self.calls if c.conference.name == conference]

    def find_call(self, call_id: str) -> Call | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    def set_muted(self, call_id: str, muted: bool) -> bool:
        call = self.find_call(call_id)
        assert call is not None
        call.muted = muted
        return True


def conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_requests_reach_the_home_and_refusals_come_back(postgresql_url: str) -> None:
    asyncio.run(_exchange(conninfo(postgresql_url)))


async def _exchange(url: str) -> None:
    home_focus = Focus([Call("c1", Conf("retro"), "sip:alice@h")])
    home = ClusterBus(url, "mrf-2", home_focus, timeout=3)
    other = ClusterBus(url, "mrf-1", Focus(), timeout=3)
    await home.start()
    await other.start()
    try:
        roster = await other.request("mrf-2", "roster", conference="retro")
        assert roster == {"participants": [{"uri": "sip:alice@h", "call_id": "c1",
                                            "muted": False}]}  # fmt: skip
        muted = await other.request("mrf-2", "mute", conference="retro", call_id="c1", muted=True)
        assert muted["entry"]["muted"] is True and home_focus.calls[0].muted
        placed = await other.request("mrf-2", "dial-out", conference="retro", uri="sip:bob@h:5")
        assert placed["entry"]["uri"] == "sip:bob@h:5"
        assert home_focus.dialout.started == [("retro", "sip:bob@h:5")]
        with pytest.raises(BusError) as refused:
            await other.request("mrf-2", "dial-out", conference="retro", uri="sip:stranger@h")
        assert refused.value.code == "dial-out:403"
        with pytest.raises(BusError) as missing:
            await other.request("mrf-2", "mute", conference="retro", call_id="nope", muted=True)
        assert missing.value.code == "not_found"
        with pytest.raises(BusError) as unknown:
            await other.request("mrf-2", "reboot", conference="retro")
        assert unknown.value.code == "invalid"
        with pytest.raises(BusError) as silent:  # nobody listens on mrf-9's channel
            await other.request("mrf-9", "roster", conference="retro")
        assert silent.value.code == "unavailable"
        # junk on a node's channel is dropped; the node keeps answering
        assert other._sender is not None  # noqa: SLF001
        await other._sender.execute("SELECT pg_notify('mrf.mrf-2', 'not base64 !')")  # noqa: SLF001
        assert (await other.request("mrf-2", "roster", conference="none")) == {"participants": []}
    finally:
        await other.close()
        await home.close()


def test_codec_round_trips_and_refuses_bombs() -> None:
    message = {"op": "roster", "id": 1, "participants": ["x" * 50] * 200}
    assert decode(encode(message)) == message
    assert len(encode(message)) < MAX_PAYLOAD  # compressible rosters fit one NOTIFY
    bomb = base64.b64encode(zlib.compress(b"[" + b" " * (4 << 20) + b"]")).decode()
    with pytest.raises(ValueError, match="inflates"):
        decode(bomb)
    with pytest.raises(ValueError):
        decode(base64.b64encode(zlib.compress(b"[1, 2]")).decode())  # not an object
