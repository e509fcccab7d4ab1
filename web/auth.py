"""Who is asking: browser sessions, bearer tokens, CSRF tokens, login throttling.

* Sessions live in memory (a restart signs everyone out; accounts and tokens are
  in the database).  The cookie carries 256 random bits, is ``HttpOnly``,
  ``SameSite=Strict`` and ``Secure`` when the request came over https.  A visitor
  gets an anonymous session on the sign-in page so that form has a CSRF token too;
  signing in replaces the session id (no fixation).
* CSRF: one synchronizer token per session, in a hidden field of every form and,
  for the REST API used with the session cookie, the ``X-CSRF-Token`` header
  (bearer-token requests carry no ambient credential and need none).
* Login throttling: 10 failed attempts for one account name, or from one client
  address, within 15 minutes refuse further attempts (429) until the oldest of
  them is 15 minutes old; a successful sign-in clears the name's failures.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from focus.accounts import AccountInfo

SESSION_COOKIE = "mrf_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 10_000
MAX_FAILURES = 10
FAILURE_WINDOW = 15 * 60.0
MAX_THROTTLE_KEYS = 10_000


@dataclass(slots=True)
class WebSession:
    """One browser session: signed in (``account_id``) or anonymous."""

    id: str
    csrf: str
    expires: float
    account_id: int | None = None
    flash: list[str] = field(default_factory=list)
    invite_id: int | None = None  # an opened invite link (web.invites): join as its identity
    # a refused form, carried across its post/redirect/get (web.pages.refuse):
    # {"errors": {field id: plain words}, "values": {field id: what was typed}}
    refused: dict[str, dict[str, object]] = field(default_factory=dict)


class SessionStore:
    """In-memory sessions with a TTL and an LRU bound (oldest evicted first)."""

    def __init__(
        self, *, ttl: float = SESSION_TTL, max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str | None) -> WebSession | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[session_id]
            return None
        self._sessions.move_to_end(session_id)
        return session

    def create(self, account_id: int | None = None) -> WebSession:
        session = WebSession(
            id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
            expires=self._clock() + self.ttl, account_id=account_id,
        )  # fmt: skip
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def drop_account(self, account_id: int) -> None:
        """Sign out every session of a disabled account."""
        for key in [k for k, s in self._sessions.items() if s.account_id == account_id]:
            del self._sessions[key]

    def drop_invite(self, invite_id: int) -> None:
        """Forget a revoked invite: its sessions can no longer open a SIP WebSocket."""
        for session in self._sessions.values():
            if session.invite_id == invite_id:
                session.invite_id = None


def set_session_cookie(response: Response, request: Request, session: WebSession) -> None:
    response.set_cookie(
        SESSION_COOKIE, session.id, max_age=int(SESSION_TTL), path="/", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip


def csrf_matches(session: WebSession | None, presented: object) -> bool:
    """Constant-time comparison of a presented CSRF token with the session's."""
    if session is None or not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode("utf-8", "replace"))


class LoginThrottle:
    """Failed sign-ins per key (``name:<account>``, ``addr:<ip>``) in a sliding window."""

    def __init__(
        self, *, max_failures: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.throttled = 0

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> float:
        """Seconds until an attempt for ``keys`` is allowed again; 0 when it is now."""
        wait = 0.0
        for key in keys:
            failures = self._recent(key)
            if len(failures) >= self.max_failures:
                wait = max(wait, failures[-self.max_failures] + self.window - self._clock())
        return wait

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            failures = self._failures.setdefault(key, deque(maxlen=self.max_failures))
            failures.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_THROTTLE_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True, slots=True)
class Principal:
    """The account behind a request and how it proved it (``session`` or ``token``)."""

    account: AccountInfo
    via: str
    session: WebSession | None = None

    def may_see(self, owner_id: int | None) -> bool:
        """Creators see their own conferences; administrators see all."""
        return self.account.is_admin or owner_id == self.account.id


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (RFC 6750 §2.1)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
