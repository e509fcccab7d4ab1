"""Forwarding to a conference's home node (several nodes, docs/scaling.md).

When this node runs conference homes (``node.homes``) and the bus is up,
a roster read, a dial-out or a mute of a conference homed on another node is
sent there (:mod:`mrf.cluster.bus`) and its answer returned as if it were
local.  Without homes, or when the conference is homed here, every helper
returns ``None`` and the caller acts locally.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from focus.conference import ConferenceInfo
from web.actions import DIAL_OUT_ERRORS
from web.state import call_store, web_state

# a bus error code -> (HTTP status, error code) of the API
BUS_ERRORS = {
    "not_found": (404, "not_found"), "invalid": (422, "invalid_input"),
    "not_implemented": (501, "not_implemented"), "too_large": (503, "unavailable"),
    "unavailable": (503, "unavailable"),
}  # fmt: skip


def _cluster(request: Request) -> tuple[Any, Any] | None:
    services = web_state(request).services
    homing = getattr(services.focus, "homing", None)
    bus = getattr(services, "bus", None)
    return (homing, bus) if homing is not None and bus is not None else None


async def forward(
    request: Request, info: ConferenceInfo, op: str, *, claim: bool = False, **arguments: Any
) -> dict[str, Any] | None:
    """The home's result of ``op`` when another node is the home; ``None``: act here.

    ``claim``: an action that makes the conference live (dial-out) claims the
    home for this node when no node holds it.
    """
    cluster = _cluster(request)
    if cluster is None:
        return None
    homing, bus = cluster
    if claim:
        home = (await call_store(request, homing.claim, info.name)).node
    else:
        home = await call_store(request, homing.home_of, info.name)
    if home is None or home == homing.node:
        return None
    from mrf.cluster.bus import BusError  # the bus is the server's; only its error here

    try:
        result: dict[str, Any] = await bus.request(home, op, conference=info.name, **arguments)
    except BusError as exc:
        if exc.code.startswith("dial-out:"):  # the home's focus refused it: as if local
            focus_status = int(exc.code.split(":", 1)[1])
            status, code = DIAL_OUT_ERRORS.get(focus_status, (422, "invalid_input"))
            raise ForwardRefused(status, code, exc.detail) from None
        status, code = BUS_ERRORS.get(exc.code, (503, "unavailable"))
        raise ForwardRefused(status, code, f"home node {home}: {exc.detail}") from None
    return result


class ForwardRefused(Exception):
    """The home (or the bus) refused: HTTP ``status``, error ``code``, ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
