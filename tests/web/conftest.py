"""Fixtures of the web tests: the app over a real store and a recording focus.

``FakeFocus`` stands in for :class:`focus.service.FocusService`: a settable
roster, subscribers, and a log of ``apply_policy`` calls (the real BYE on a
policy change is shown end to end by ``test_browser.py`` with baresip).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.testclient import TestClient

from focus.events import FocusEvent
from focus.store import ConferenceStore
from mrf.settings import Settings
from web import create_app

PASSWORD = "correct horse battery"


@dataclass
class FakeStats:
    invites: int = 0
    admitted: int = 0
    refused: dict[int, int] = field(default_factory=dict)


class FakeDialOut:
    """Records dial-outs; refuses URIs not on the list like focus.dialout does."""

    def __init__(self, store: ConferenceStore) -> None:
        self.store = store
        self.started: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.dismissed: list[str] = []

    def start(self, conference: str, target: str) -> Any:
        from focus.dialout import DialOutError

        info = self.store.get_conference(conference)
        if info is None:
            raise DialOutError(404, f"no conference {conference!r}")
        if target not in info.authorized():
            raise DialOutError(403, f"{target} is not on the authorized list")
        self.started.append((conference, target))
        return FakeCall(target)

    def cancel(self, call_id: str) -> bool:
        self.cancelled.append(call_id)
        return True

    def dismiss(self, call_id: str) -> bool:
        self.dismissed.append(call_id)
        return True


@dataclass
class FakeCall:
    participant: str

    def roster_entry(self) -> dict[str, object]:
        return {
            "uri": self.participant,
            "role": "participant",
            "state": "dialing",
            "joined_by": "dial-out",
            "reason": None,
            "media": [],
        }


class FakeFocus:
    def __init__(self) -> None:
        self.rosters: dict[str, list[dict[str, object]]] = {}
        self.listeners: list[Callable[[FocusEvent], None]] = []
        self.applied: list[str] = []
        self.stats = FakeStats()
        self.calls: list[Any] = []
        self.dialout: FakeDialOut | None = None
        self.hung_up: list[str] = []
        self.refused: dict[str, list[dict[str, object]]] = {}

    def roster(self, conference: str) -> list[dict[str, object]]:
        live = [c.roster_entry() for c in self.calls if c.conference.name == conference]
        return list(self.rosters.get(conference, [])) + live

    async def hang_up(self, call_id: str, reason: str) -> bool:
        self.hung_up.append(call_id)
        return self.find_call(call_id) is not None

    def refusals(self, conference: str) -> list[dict[str, object]]:
        return list(self.refused.get(conference, []))

    def find_call(self, call_id: str) -> Any:
        return next((c for c in self.calls if getattr(c, "call_id", None) == call_id), None)

    def set_muted(self, call_id: str, muted: bool) -> bool:
        call = self.find_call(call_id)
        if call is not None:
            call.muted = muted
        return call is not None

    def subscribe(self, listener: Callable[[FocusEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    async def apply_policy(self, conference: str) -> list[str]:
        self.applied.append(conference)
        return []


class FakeServices:
    def __init__(self, store: ConferenceStore) -> None:
        self.store = store
        self.focus = FakeFocus()
        self.up = {"sip-udp": True, "sip-tcp": True, "sip-tls": True, "media": True}

    def listeners(self) -> dict[str, bool]:
        return dict(self.up)


@pytest.fixture
def store(database_url: str) -> Iterator[ConferenceStore]:
    """Every web test runs on SQLite and on PostgreSQL (``database_url``)."""
    with ConferenceStore(database_url) as opened:
        opened.create_all()
        opened.create_account("alice", PASSWORD)
        opened.create_account("bob", PASSWORD)
        opened.create_account("root", PASSWORD, is_admin=True)
        yield opened


@pytest.fixture
def services(store: ConferenceStore) -> FakeServices:
    return FakeServices(store)


@pytest.fixture
def app(services: FakeServices) -> Any:
    return create_app(Settings(), services)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def token(store: ConferenceStore) -> Callable[[str], dict[str, str]]:
    """``token("alice")`` → an Authorization header with a fresh bearer token."""
    return lambda name: {"Authorization": f"Bearer {store.create_token(name)}"}


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in through the form; the session's CSRF token."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "name": name, "password": password},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/conferences").text)
