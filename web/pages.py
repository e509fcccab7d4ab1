"""The web pages: sign in/out, conference list and creation, policy, participants.

Server-rendered HTML forms that work without JavaScript; the live roster, the
copy button and moving the focus to the first error use scripts
(``static/roster.js``, ``static/forms.js``).  Every form carries the session's
CSRF token and every POST checks it (403 otherwise).  Pages for someone else's
conference answer 404, like unknown ones.  Post/redirect/get after every form
(:mod:`web.forms`): a POST that changes something redirects (303) back with a
one-time notice; a refused one redirects (303) back too, with its errors at the
fields and what was typed.  The chair is set in one place, the participant's
role.  Removing someone who is connected and deleting a conference ask for a
confirmation first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
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
    InvalidInput,
    StoreError,
)
from web import actions
from web.auth import Principal, WebSession, set_session_cookie
from web.forms import (
    NAME_RULE,
    FormRefused,
    duplicate_problem,
    first,
    normalised_note,
    parse_uri,
    read_form,
    redirect,
    refuse,
    take_refused,
)
from web.invite import invite_panel
from web.state import (
    call_store,
    current_session,
    principal,
    roster_document,
    visible_conference,
    web_state,
)

logger = logging.getLogger(__name__)

# U+2011 (a hyphen no line breaks at) keeps MIKEY-TICKET and DTLS-SRTP whole
KEY_MODE_HELP = {
    "sdes": "SDES (RFC 4568): the SRTP key travels in the SDP. Every softphone (baresip, Linphone, "
    "Zoiper) does it; the key is only private when SIP runs over TLS or through a trusted proxy.",
    "mikey-ticket": "MIKEY‑TICKET (RFC 6043, TS 33.328 Annex H): keys from the KMS, never in the "
    "SDP. IMS clients and mrf ue; needs a KMS. Also keys chat and floor control by TLS-PSK.",
    "dtls": "DTLS‑SRTP (RFC 5763): keys agreed in a DTLS handshake on the media path, checked "
    "against the SDP fingerprint. Browsers (WebRTC) and modern softphones.",
    "fingerprint": "Chat (MSRP) and floor control (BFCP) over TLS, the certificate checked against "
    "the SDP a=fingerprint. Without it, chat and floors need MIKEY‑TICKET.",
}

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


def render(
    request: Request, name: str, context: dict[str, object], status: int = 200,
    session: WebSession | None = None,
) -> Response:  # fmt: skip
    """``name`` with the session's notices and the errors of a form refused just before."""
    session = session or current_session(request)
    notices = list(session.flash) if session else []
    if session:
        session.flash.clear()
    errors, values = take_refused(session)
    context = {
        "csrf": session.csrf if session else "", "notices": notices, "errors": errors,
        "values": values, **context,
    }  # fmt: skip
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(
    request: Request, status: int, detail: str, who: Principal | None = None
) -> Response:
    """An error page that keeps the navigation of whoever is signed in."""
    return render(request, "error.html", {"status": status, "detail": detail, "who": who}, status)


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
            return error_page(request, exc.status, str(exc), who)

    return page


def conference_page(
    handler: Callable[[Request, Principal, ConferenceInfo], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """:func:`signed_in`, plus the conference of the path (404 if not the caller's)."""

    async def with_conference(request: Request, who: Principal) -> Response:
        info = await visible_conference(request, who, request.path_params["id"])
        if info is None:
            return error_page(request, 404, "There is no such conference.", who)
        try:
            return await handler(request, who, info)
        except ConferenceNotFound:
            return error_page(request, 404, "The conference was deleted meanwhile.", who)

    return signed_in(with_conference)


def back(who: Principal, info: ConferenceInfo, notice: str) -> Response:
    if who.session is not None:
        who.session.flash.append(notice)
    return redirect(f"/conferences/{info.id}")


# --- sign in and out -----------------------------------------------------------


async def home(request: Request) -> Response:
    who = await principal(request)
    return redirect("/conferences" if who is not None and who.via == "session" else "/login")


WRONG_PASSWORD = "Wrong account name or password. Check both and try again."


async def login(request: Request) -> Response:
    state = web_state(request)
    session = current_session(request)
    if session is None:
        session = state.sessions.create()
    if request.method == "GET":
        response = render(request, "login.html", {}, session=session)
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
    if wait > 0:  # answered at once with 429 + Retry-After (RFC 6585 §4), not redirected
        state.logins["throttled"] += 1
        seconds = int(wait) + 1
        errors = {"password": f"Too many failed sign-ins: try again in {seconds} seconds."}
        response = render(
            request, "login.html", {"errors": errors, "values": {"name": name[:64]}}, 429,
            session,
        )  # fmt: skip
        response.headers["Retry-After"] = str(seconds)
        return response
    account = await call_store(request, state.store.authenticate, name, password)
    if account is None:
        state.throttle.failed(*keys)
        state.logins["failed"] += 1
        logger.info("failed sign-in for %r from %s", name[:64], client)
        return refuse(session, "/login", {"password": WRONG_PASSWORD}, {"name": name[:64]})
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
    if request.method == "POST":
        form = await read_form(request, who.session)
        name = first(form, "name")
        try:
            info = await actions.create_conference(request, who, name, ConferencePolicy())
        except ConferenceExists:
            problem = f"A conference named “{name}” exists already: pick another name."
        except StoreError:
            problem = NAME_RULE
        else:
            return back(who, info, f"Conference created: {info.uri(state.domain)}")
        return refuse(who.session, "/conferences", {"new-name": problem}, {"new-name": name})
    rows = await _list(request, who)
    context = {"who": who, "conferences": rows, "domain": state.domain}
    return render(request, "conferences.html", context)


def _detail(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    state = web_state(request)
    context = {
        "who": who, "conference": info, "uri": info.uri(state.domain),
        "roster": roster_document(state, info)["participants"], "roles": ROLES,
        "key_modes": KEY_MODES, "notify_protections": NOTIFY_PROTECTIONS,
        "invite": invite_panel(state, info), "refusals": actions.refusals(request, info),
        "listed": {e.uri for e in info.participants}, "key_help": KEY_MODE_HELP,
        "chat": actions.chat_history(request, info),
    }  # fmt: skip
    return render(request, "conference.html", context)


@conference_page
async def conference(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    return _detail(request, who, info)


def _page(info: ConferenceInfo, anchor: str = "") -> str:
    return f"/conferences/{info.id}" + (f"#{anchor}" if anchor else "")


@conference_page
async def policy(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    fields: dict[str, object] = {
        "allow_anonymous": "allow_anonymous" in form,
        "require_media_security": "require_media_security" in form,
        "key_modes": [m for m in form.get("key_modes", []) if m],
        "notify_protection": first(form, "notify_protection"),
    }
    errors: dict[str, str] = {}
    if not fields["key_modes"]:
        errors["key-modes"] = "Tick at least one key mode: with none, no participant could join."
    elif any(m not in KEY_MODES for m in fields["key_modes"]):  # type: ignore[attr-defined]
        errors["key-modes"] = "Tick key modes from the list only."
    if fields["notify_protection"] not in NOTIFY_PROTECTIONS:
        errors["notify-optional"] = "Choose whether NOTIFY protection is optional or required."
    if not errors:
        try:
            info.policy.updated(**fields)
        except StoreError:
            errors["form"] = "The policy could not be saved: check the fields below."
    if errors:
        values = {
            "allow-anonymous": fields["allow_anonymous"],
            "require-media-security": fields["require_media_security"],
            "key-modes": fields["key_modes"], "notify-protection": fields["notify_protection"],
        }  # fmt: skip
        return refuse(who.session, _page(info, "policy-title"), errors, values)
    await actions.update_policy(request, info, fields)
    return back(who, info, "Policy saved.")


async def _replace(
    request: Request, who: Principal, info: ConferenceInfo,
    entries: list[AuthorizedEntry], notice: str,
) -> Response:  # fmt: skip
    try:
        await actions.set_participants(request, info, tuple(entries))
    except StoreError as exc:
        return refuse(who.session, _page(info), {"form": f"Not saved: {exc}"})
    return back(who, info, notice)


@conference_page
async def add_participant(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    typed, role = first(form, "uri"), first(form, "role")
    values: dict[str, object] = {"add-uri": typed, "add-role": role,
                                 "add-mikey": "use_mikey" in form}  # fmt: skip
    errors: dict[str, str] = {}
    try:
        aor = parse_uri(typed)
    except InvalidInput as exc:
        errors["add-uri"] = str(exc)
    else:
        problem = duplicate_problem(aor, info.participants)
        if problem:
            errors["add-uri"] = problem
    if role not in ROLES:
        errors["add-role"] = "Choose participant or chair."
    if errors:
        return refuse(who.session, _page(info, "add-title"), errors, values)
    entry = AuthorizedEntry(aor, role, "use_mikey" in form)
    note = normalised_note(typed, aor)
    notice = f"Authorized {aor} as {role}" + (f" ({note})." if note else ".")
    return await _replace(request, who, info, [*info.participants, entry], notice)


@conference_page
async def update_participant(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    uri, role = first(form, "uri"), first(form, "role")
    if uri not in {e.uri for e in info.participants}:
        return refuse(who.session, _page(info), {"form": f"{uri} is not on the list (any more)."})
    if role not in ROLES:
        return refuse(who.session, _page(info), {"form": "Choose participant or chair."})
    changed = AuthorizedEntry(uri, role, "use_mikey" in form)
    entries = [changed if e.uri == uri else e for e in info.participants]
    return await _replace(request, who, info, entries, f"Updated {uri}: {role}.")


def connected(request: Request, info: ConferenceInfo, aor: str) -> bool:
    """Whether ``aor`` is in a call of ``info`` now (or being called)."""
    roster = roster_document(web_state(request), info)["participants"]
    live = ("connected", "on-hold", "ringing", "dialing")
    return any(p.get("uri") == aor and p.get("state") in live for p in roster)  # type: ignore[attr-defined]


@conference_page
async def remove_participant(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    uri = first(form, "uri")
    entries = [e for e in info.participants if e.uri != uri]
    if len(entries) == len(info.participants):
        return refuse(who.session, _page(info), {"form": f"{uri} is not on the list (any more)."})
    if connected(request, info, uri) and first(form, "confirm") != "yes":
        return refuse(who.session, _page(info), {}, {"confirm-remove": uri})
    return await _replace(request, who, info, entries, f"Removed {uri} from the list; "
                          "disconnected if in the conference.")  # fmt: skip


@conference_page
async def call(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    target = first(form, "uri")
    try:
        entry = actions.dial_out(request, info, target)
    except actions.DialOutRefused as exc:
        return refuse(who.session, _page(info), {"form": f"Call to {target} not placed: "
                                                 f"{exc.detail}."})  # fmt: skip
    return back(who, info, f"Calling {entry['uri']}: see the roster for its progress.")


@conference_page
async def post_chat(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    text = first(form, "text")
    try:
        sent = actions.post_chat(request, info, text)
    except actions.ChatRefused as exc:
        problem = "Write the message first." if exc.status == 422 and not text else exc.detail
        return refuse(who.session, _page(info, "chat-title"), {"chat-text": problem},
                      {"chat-text": text})  # fmt: skip
    return back(who, info, f"Sent to the room as the conference ({sent} in the chat).")


@conference_page
async def lock(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    locked = first(form, "locked") == "yes"
    await actions.update_policy(request, info, {"locked": locked})
    notice = ("Locked: nobody new can join (those in stay)." if locked
              else "Unlocked: authorized participants can join again.")  # fmt: skip
    return back(who, info, notice)


@conference_page
async def delete(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await read_form(request, who.session)
    if first(form, "confirm") != "yes":
        problem = "Tick the box to confirm: deleting disconnects everyone and cannot be undone."
        return refuse(who.session, _page(info, "delete-title"), {"delete-confirm": problem})
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
    Route("/conferences/{id:int}/lock", lock, methods=["POST"]),
    Route("/conferences/{id:int}/chat", post_chat, methods=["POST"]),
    Route("/conferences/{id:int}/delete", delete, methods=["POST"]),
]
