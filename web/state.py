"""What every route needs: the services, the sessions, and who is asking.

:class:`WebServices` is what :func:`web.create_app` needs of the server
(``mrf.server.Server`` provides it): the store, the focus, and a report of which
listeners are up.  Store calls are blocking (SQLAlchemy); routes run them in a
worker thread (:func:`call_store`) so the SIP and media work on the event loop
never waits for the database.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from focus.conference import ConferenceInfo
from focus.events import FocusEvent, ParticipantLeft
from focus.store import ConferenceStore
from mrf.settings import Settings, read_token_file
from web.auth import (
    SESSION_COOKIE,
    LoginThrottle,
    Principal,
    SessionStore,
    WebSession,
    bearer_token,
)

MAX_DATABASE_ID = 2**31 - 1  # PostgreSQL SERIAL; larger ids cannot exist
MAX_ENDED_KEPT = 20  # ended calls per conference in the roster's history
MAX_ENDED_CONFERENCES = 1000
ENDED_PREFIX = "ended-"  # roster call_id of an ended call (never a live Call-ID's form)


class FocusControl(Protocol):
    """What the web layer uses of :class:`focus.service.FocusService`."""

    def roster(self, conference: str) -> list[dict[str, object]]: ...
    def subscribe(self, listener: Callable[[FocusEvent], None]) -> Callable[[], None]: ...
    def apply_policy(self, conference: str) -> Awaitable[list[str]]: ...


class WebServices(Protocol):
    """What the web layer needs of the server (``mrf.server.Server``)."""

    @property
    def store(self) -> ConferenceStore: ...
    @property
    def focus(self) -> Any: ...
    def listeners(self) -> dict[str, bool]: ...


@dataclass(slots=True)
class WebState:
    """Per-application state (``request.app.state.web``)."""

    settings: Settings
    services: WebServices
    sessions: SessionStore = field(default_factory=SessionStore)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    responses: Counter[int] = field(default_factory=Counter)
    logins: Counter[str] = field(default_factory=Counter)
    sse_clients: int = 0
    sip_socket_refusals: int = 0  # refused upgrades on /sip (web.sip_socket)
    metrics_token: str | None = field(default=None, repr=False)  # the scrape token
    metrics_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    # calls that ended, per conference, for the roster's history (newest last)
    ended: dict[str, deque[dict[str, object]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        path = self.settings.web.metrics_token_file
        if path is not None and self.metrics_token is None:
            self.metrics_token = read_token_file(path)
        self.services.focus.subscribe(self._on_focus_event)

    def _on_focus_event(self, event: FocusEvent) -> None:
        """Keep each call that ended (BYE, hang-up, removal) for the roster's history."""
        if not isinstance(event, ParticipantLeft):
            return
        kept = self.ended.setdefault(event.conference, deque(maxlen=MAX_ENDED_KEPT))
        while len(self.ended) > MAX_ENDED_CONFERENCES:
            self.ended.pop(next(iter(self.ended)))
        kept.append({
            "uri": event.participant, "role": "participant", "state": "left",
            "joined_by": "dial-in", "reason": event.reason, "muted": False,
            "call_id": f"{ENDED_PREFIX}{event.call_id}", "media": [],
        })  # fmt: skip

    def dismiss_ended(self, conference: str, call_id: str) -> bool:
        kept = self.ended.get(conference, deque())
        for entry in list(kept):
            if entry["call_id"] == call_id:
                kept.remove(entry)
                return True
        return False

    @property
    def store(self) -> ConferenceStore:
        return self.services.store

    @property
    def domain(self) -> str:
        return self.settings.sip.domain


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


async def call_store[T](request: Request, function: Callable[..., T], *args: Any) -> T:
    """Run a blocking store call in a worker thread."""
    return await run_in_threadpool(function, *args)


def current_session(request: Request) -> WebSession | None:
    return web_state(request).sessions.get(request.cookies.get(SESSION_COOKIE))


async def principal(request: Request) -> Principal | None:
    """The signed-in account (bearer token first, then the session cookie), or None."""
    state = web_state(request)
    token = bearer_token(request)
    if token is not None:
        account = await call_store(request, state.store.account_for_token, token)
        return None if account is None else Principal(account, "token")
    session = current_session(request)
    if session is None or session.account_id is None:
        return None
    account = await call_store(request, state.store.get_account_by_id, session.account_id)
    if account is None or account.disabled:  # the account was removed or disabled meanwhile
        state.sessions.delete(session.id)
        return None
    return Principal(account, "session", session)


async def visible_conference(
    request: Request, who: Principal, conference_id: int
) -> ConferenceInfo | None:
    """The conference when it exists *and* ``who`` may see it (else None: a 404)."""
    if not 0 < conference_id <= MAX_DATABASE_ID:
        return None
    info = await call_store(request, web_state(request).store.get_conference_by_id, conference_id)
    if info is None or not who.may_see(info.owner_id):
        return None
    return info


def floor_states(state: WebState, info: ConferenceInfo) -> list[dict[str, object]]:
    """Per floor: holder and queue (:meth:`mrf.floor.FloorControl.floors`); [] without BFCP."""
    floors = getattr(getattr(state.services.focus, "floor", None), "floors", None)
    return list(floors(info.name)) if floors is not None else []


def roster_document(state: WebState, info: ConferenceInfo) -> dict[str, object]:
    """The live roster (interfaces contract) of ``info``, with chat nicknames and the
    floors (holder, queue) as extensions."""
    focus = state.services.focus
    entries = [dict(e) for e in focus.roster(info.name)]
    entries += [dict(e) for e in state.ended.get(info.name, ())]
    nicknames_of = getattr(getattr(focus, "chat", None), "nicknames", None)
    nicknames = nicknames_of(info.name) if nicknames_of is not None else {}
    for entry in entries:
        entry.setdefault("nickname", nicknames.get(str(entry.get("call_id"))))
        entry.setdefault("talking", False)
    return {
        "conference": info.uri(state.domain),
        "participants": entries,
        "floors": floor_states(state, info),
    }
