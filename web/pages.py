"""The web pages: sign in/out, conference list and creation, policy, participants.

Server-rendered HTML forms that work without JavaScript; only the live roster
and the copy button use a script (``static/roster.js``).  Every form carries the
session's CSRF token and every POST checks it (403 otherwise).  Pages for
someone else's conference answer 404, like unknown ones.  A POST that changes
something redirects (303) back to the page with a one-time notice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from focus.conference import (
    KEY_MODES,
    NOTIFY_PROTECTIONS,
    ROLES,
    AuthorizedEntry,
    ConferenceExists,
    ConferenceInfo,
    ConferenceNotFound,
    ConferencePolicy,
    StoreError,
)
from web import actions
from web.auth import CSRF_FIELD, Principal, WebSession, csrf_matches, set_session_cookie
from web.state import (
    call_store,
    current_session,
    principal,
    roster_document,
    visible_conference,
    web_state,
)

logger = logging.getLogger(__name__)

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
MAX_FORM_SIZE = 64 * 1024
MAX_FORM_FIELDS = 64


class FormRefused(Exception):
    """A form post without a valid CSRF token, or too large; answered with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


async def read_form(request: Request, session: WebSession | None) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body, CSRF-checked; values by name."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_SIZE:
            raise FormRefused(413, "the form is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "the form could not be read") from None
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    if not csrf_matches(session, form.get(CSRF_FIELD, [""])[0]):
        raise FormRefused(403, "the form's security token is missing or stale: reload the page")
    return form


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    return form.get(name, [default])[0].strip()


def render(
    request: Request, name: str, context: dict[str, object], status: int = 200,
    session: WebSession | None = None,
) -> Response:  # fmt: skip
    session = session or current_session(request)
    notices = list(session.flash) if session else []
    if session:
        session.flash.clear()
    context = {"csrf": session.csrf if session else "", "notices": notices, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, status: int, detail: str) -> Response:
    return render(request, "error.html", {"status": status, "detail": detail}, status)


type Handler = Callable[[Request, Principal], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Redirect to the sign-in page unless a session is signed in; refuse bad forms."""

    async def page(request: Request) -> Response:
        who = await principal(request)
        if who is None or who.via != "session":
            return redirect("/login")
        try:
            return await handler(request, who)
        except FormRefused as exc:
            return error_page(request, exc.status, str(exc))

    return page


def conference_page(
    handler: Callable[[Request, Principal, ConferenceInfo], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """:func:`signed_in`, plus the conference of the path (404 if not the caller's)."""

    async def with_conference(request: Request, who: Principal) -> Response:
        info = await visible_conference(request, who, request.path_params["id"])
        if info is None:
            return error_page(request, 404, "There is no such conference.")
        try:
            return await handler(request, who, info)
        except ConferenceNotFound:
            return error_page(request, 404, "The conference was deleted meanwhile.")

    return signed_in(with_conference)


def back(who: Principal, info: ConferenceInfo, notice: str) -> Response:
    if who.session is not None:
        who.session.flash.append(notice)
    return redirect(f"/conferences/{info.id}")


# --- sign in and out -----------------------------------------------------------


async def home(request: Request) -> Response:
    who = await principal(request)
    return redirect("/conferences" if who is not None and who.via == "session" else "/login")


async def login(request: Request) -> Response:
    state = web_state(request)
    session = current_session(request)
    if session is None:
        session = state.sessions.create()
    if request.method == "GET":
        response = render(request, "login.html", {"name": ""}, session=session)
        set_session_cookie(response, request, session)
        return response
    try:
        form = await read_form(request, session)
    except FormRefused as exc:
        return error_page(request, exc.status, str(exc))
    name, password = first(form, "name"), form.get("password", [""])[0]
    client = request.client.host if request.client else "unknown"
    keys = (f"name:{name.lower()}", f"addr:{client}")
    wait = state.throttle.retry_after(*keys)
    if wait > 0:
        state.logins["throttled"] += 1
        session.flash.append(f"Too many failed sign-ins: try again in {int(wait) + 1} seconds.")
        response = render(request, "login.html", {"name": name}, 429, session)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    account = await call_store(request, state.store.authenticate, name, password)
    if account is None:
        state.throttle.failed(*keys)
        state.logins["failed"] += 1
        logger.info("failed sign-in for %r from %s", name[:64], client)
        session.flash.append("Wrong account name or password.")
        return render(request, "login.html", {"name": name}, 401, session)
    state.throttle.succeeded(keys[0])
    state.logins["ok"] += 1
    state.sessions.delete(session.id)
    fresh = state.sessions.create(account.id)
    response = redirect("/conferences")
    set_session_cookie(response, request, fresh)
    return response


@signed_in
async def logout(request: Request, who: Principal) -> Response:
    assert who.session is not None
    await read_form(request, who.session)
    web_state(request).sessions.delete(who.session.id)
    response = redirect("/login")
    response.delete_cookie("mrf_session", path="/", httponly=True, samesite="strict")
    return response


# --- conferences -------------------------------------------------------------------


async def _list(request: Request, who: Principal) -> list[ConferenceInfo]:
    owner = None if who.account.is_admin else who.account.id
    return await call_store(request, web_state(request).store.list_conferences, owner)


@signed_in
async def conferences(request: Request, who: Principal) -> Response:
    state = web_state(request)
    error, name = None, ""
    if request.method == "POST":
        form = await read_form(request, who.session)
        name = first(form, "name")
        try:
            info = await actions.create_conference(request, who, name, ConferencePolicy())
        except (ConferenceExists, StoreError) as exc:
            error = str(exc)
        else:
            return back(who, info, f"Conference created: {info.uri(state.domain)}")
    rows = await _list(request, who)
    context = {"who": who, "conferences": rows, "domain": state.domain, "error": error,
               "name": name}  # fmt: skip
    return render(request, "conferences.html", context, 422 if error else 200)


def _detail(
    request: Request, who: Principal, info: ConferenceInfo, error: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    state = web_state(request)
    context = {
        "who": who, "conference": info, "uri": info.uri(state.domain), "error": error,
        "roster": roster_document(state, info)["participants"], "roles": ROLES,
        "key_modes": KEY_MODES, "notify_protections": NOTIFY_PROTECTIONS,
    }  # fmt: skip
    return render(request, "conference.html", context, status)


@conference_page
async def conference(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    return _detail(request, who, info)


@conference_page
async def policy(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    chair = first(form, "chair_uri")
    fields: dict[str, object] = {
        "allow_anonymous": "allow_anonymous" in form,
        "require_media_security": "require_media_security" in form,
        "key_modes": [m for m in form.get("key_modes", []) if m],
        "notify_protection": first(form, "notify_protection"),
        "chair_uri": chair or None,
    }
    try:
        info.policy.updated(**fields)
    except StoreError as exc:
        return _detail(request, who, info, f"Policy not saved: {exc}", 422)
    await actions.update_policy(request, info, fields)
    return back(who, info, "Policy saved.")


async def _replace(
    request: Request, who: Principal, info: ConferenceInfo,
    entries: list[AuthorizedEntry], notice: str,
) -> Response:  # fmt: skip
    try:
        await actions.set_participants(request, info, tuple(entries))
    except StoreError as exc:
        return _detail(request, who, info, f"Not saved: {exc}", 422)
    return back(who, info, notice)


@conference_page
async def add_participant(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    try:
        entry = AuthorizedEntry(first(form, "uri"), first(form, "role"), "use_mikey" in form)
    except StoreError as exc:
        return _detail(request, who, info, f"Participant not added: {exc}", 422)
    entries = [*info.participants, entry]
    return await _replace(request, who, info, entries, f"Authorized {entry.uri}.")


@conference_page
async def update_participant(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    uri = first(form, "uri")
    if uri not in {e.uri for e in info.participants}:
        return _detail(request, who, info, f"{uri} is not on the list.", 422)
    try:
        changed = AuthorizedEntry(uri, first(form, "role"), "use_mikey" in form)
    except StoreError as exc:
        return _detail(request, who, info, f"Not saved: {exc}", 422)
    entries = [changed if e.uri == uri else e for e in info.participants]
    return await _replace(request, who, info, entries, f"Updated {uri}.")


@conference_page
async def remove_participant(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    uri = first(form, "uri")
    entries = [e for e in info.participants if e.uri != uri]
    if len(entries) == len(info.participants):
        return _detail(request, who, info, f"{uri} is not on the list.", 422)
    return await _replace(request, who, info, entries, f"Removed {uri}; disconnected if in.")


@conference_page
async def call(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    try:
        entry = actions.dial_out(request, info, first(form, "uri"))
    except actions.DialOutRefused as exc:
        return _detail(request, who, info, f"Call not placed: {exc.detail}", exc.status)
    return back(who, info, f"Calling {entry['uri']}: see the roster for its progress.")


@conference_page
async def delete(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    await read_form(request, who.session)
    await actions.delete_conference(request, who, info)
    if who.session is not None:
        who.session.flash.append(f"Conference {info.name} deleted.")
    return redirect("/conferences")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/conferences", conferences, methods=["GET", "POST"]),
    Route("/conferences/{id:int}", conference, methods=["GET"]),
    Route("/conferences/{id:int}/policy", policy, methods=["POST"]),
    Route("/conferences/{id:int}/participants", add_participant, methods=["POST"]),
    Route("/conferences/{id:int}/participants/update", update_participant, methods=["POST"]),
    Route("/conferences/{id:int}/participants/remove", remove_participant, methods=["POST"]),
    Route("/conferences/{id:int}/call", call, methods=["POST"]),
    Route("/conferences/{id:int}/delete", delete, methods=["POST"]),
]
