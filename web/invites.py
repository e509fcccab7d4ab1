"""Invite links and the browser join page (interfaces "Accounts, invites and the browser").

* ``POST /api/conferences/{id}/invites`` ``{"uri", "expires_in"}`` → 201
  ``{"id", "url", "expires_at"}``: the URL's token is shown only here (stored as
  its SHA-256, :mod:`focus.invites`); the URI must be on the authorized list.
  ``GET`` lists the invites with their state (``unused``, ``opened``,
  ``expired``, ``revoked``), never a token.  ``DELETE …/invites/{invite_id}``
  revokes one, ends the calls made with it (BYE over their WebSocket) and closes
  its connections; the answer is the invite with ``"disconnected": <calls>``.
  Owner or administrator only, like every conference route (404 otherwise).
* ``GET /join/<token>``: a usable invite binds the visitor's web session to it
  and serves the join page; anything else is a 404 page that does not say
  whether the token ever existed.
* ``GET /conferences/{id}/join`` (signed in): the join page for the account's
  own SIP identity.  ``GET /account``: the signed-in account and its identity.
* ``/conferences/{id}/invites``: the same as a page (linked from the conference
  page): the invites with their state, a form to create one (the link is shown
  on that answer only) and a revoke button per usable invite.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from focus.conference import ConferenceInfo, InvalidInput
from focus.invites import DEFAULT_INVITE_LIFETIME, InviteInfo, InviteNotFound
from focus.tables import utcnow
from web import forms, pages
from web.api import ApiError, authenticated, conference_of, only, read_json
from web.auth import Principal, set_session_cookie
from web.state import (
    MAX_DATABASE_ID,
    WebState,
    call_store,
    current_session,
    visible_conference,
    web_state,
)

JOIN_PERMISSIONS = "camera=(), microphone=(self), geolocation=()"  # the join page's microphone
INVITE_LIFETIMES = ((3600, "1 hour"), (24 * 3600, "1 day"), (7 * 24 * 3600, "1 week"))


async def create_invite(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    data = await read_json(request)
    only(data, "uri", "expires_in", required=("uri",))
    store = web_state(request).store
    try:
        invite, token = await call_store(
            request, store.create_invite, info.id, data["uri"],
            data.get("expires_in", DEFAULT_INVITE_LIFETIME),
        )  # fmt: skip
    except InvalidInput as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    url = f"{str(request.base_url).rstrip('/')}/join/{token}"
    body = {"id": invite.id, "url": url, "expires_at": invite.expires_at.isoformat()}
    return JSONResponse(body, status_code=201)


async def list_invites(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    invites = await call_store(request, web_state(request).store.list_invites, info.id)
    now = utcnow()
    return JSONResponse([invite.to_json(now) for invite in invites])


async def revoke_invite(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    state = web_state(request)
    text = str(request.path_params["invite_id"])
    invite_id = int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0
    if not 0 < invite_id <= MAX_DATABASE_ID:
        raise ApiError(404, "not_found", "no such invite")
    try:
        invite = await call_store(request, state.store.revoke_invite, info.id, invite_id)
    except InviteNotFound:
        raise ApiError(404, "not_found", "no such invite") from None
    ended = await _disconnect(state, invite.id)
    return JSONResponse({**invite.to_json(utcnow()), "disconnected": ended})


async def _disconnect(state: WebState, invite_id: int) -> int:
    """A revoked invite: its sessions lose it, its calls end, its connections close."""
    state.sessions.drop_invite(invite_id)
    focus = state.services.focus
    endpoint = getattr(focus, "endpoint", None)
    flows = [] if endpoint is None else [
        flow.remote for flow in endpoint.websocket_flows() if flow.binding.invite_id == invite_id
    ]  # fmt: skip
    return int(await focus.disconnect_flows(flows, reason="invite revoked")) if flows else 0


def _join_page(
    request: Request, who: Principal | None, conference: str, identity: str, status: int = 200
) -> Response:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    state = web_state(request)
    context: dict[str, object] = {
        "who": who, "conference": conference, "identity": identity,
        "conference_uri": f"sip:{conference}@{state.domain}",
        "socket_url": f"{scheme}://{request.url.netloc}/sip",
    }  # fmt: skip
    response = pages.render(request, "join.html", context, status)
    response.headers["permissions-policy"] = JOIN_PERMISSIONS
    return response


async def join_invite(request: Request) -> Response:
    state = web_state(request)
    invite = await call_store(request, state.store.open_invite, request.path_params["token"])
    conference = None
    if invite is not None:
        conference = await call_store(
            request, state.store.get_conference_by_id, invite.conference_id
        )
    if invite is None or conference is None:
        return pages.error_page(request, 404, "This invite link is not valid.")
    session = current_session(request) or state.sessions.create()
    session.invite_id = invite.id
    response = _join_page(request, None, conference.name, invite.uri)
    set_session_cookie(response, request, session)
    return response


async def join_conference(request: Request, who: Principal) -> Response:
    info = await visible_conference(request, who, request.path_params["id"])
    if info is None:
        return pages.error_page(request, 404, "There is no such conference.")
    if who.account.sip_uri is None:
        return pages.error_page(
            request, 409, "Your account has no SIP identity: ask an administrator to set one."
        )
    if who.session is not None:
        who.session.invite_id = None  # join as the account, not as an invite opened earlier
    return _join_page(request, who, info.name, who.account.sip_uri)


def _invites_page(
    request: Request, who: Principal, info: ConferenceInfo, invites: list[InviteInfo],
    *, link: str | None = None, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    now = utcnow()
    rows = [{**i.to_json(now), "usable": i.usable(now)} for i in invites]
    context: dict[str, object] = {
        "who": who, "conference": info, "invites": rows, "link": link, "error": error,
        "lifetimes": INVITE_LIFETIMES,
    }  # fmt: skip
    if error is not None:
        context["errors"] = {"form": error}  # shown by base.html in the error style
    return pages.render(request, "invites.html", context, status)


@pages.conference_page
async def invites_page(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    found = await call_store(request, web_state(request).store.list_invites, info.id)
    return _invites_page(request, who, info, found)


@pages.conference_page
async def invite_form(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    """Create one; the link is shown on this answer only (no redirect: it is not kept)."""
    form = await forms.read_form(request, who.session)
    store = web_state(request).store
    lifetime = forms.first(form, "expires_in")
    try:
        seconds = int(lifetime) if lifetime.isdigit() and len(lifetime) < 9 else 0
        _, token = await call_store(
            request, store.create_invite, info.id, forms.first(form, "uri"), seconds
        )
    except InvalidInput as exc:
        found = await call_store(request, store.list_invites, info.id)
        return _invites_page(request, who, info, found, error=f"No invite: {exc}", status=422)
    link = f"{str(request.base_url).rstrip('/')}/join/{token}"
    found = await call_store(request, store.list_invites, info.id)
    return _invites_page(request, who, info, found, link=link, status=201)


@pages.conference_page
async def revoke_form(request: Request, who: Principal, info: ConferenceInfo) -> Response:
    form = await forms.read_form(request, who.session)
    text = forms.first(form, "invite_id")
    invite_id = int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0
    state = web_state(request)
    try:
        if not 0 < invite_id <= MAX_DATABASE_ID:
            raise InviteNotFound("no such invite")
        invite = await call_store(request, state.store.revoke_invite, info.id, invite_id)
    except InviteNotFound:
        found = await call_store(request, state.store.list_invites, info.id)
        return _invites_page(request, who, info, found, error="No such invite.", status=404)
    ended = await _disconnect(state, invite.id)
    if who.session is not None:
        who.session.flash.append(f"Invite for {invite.uri} revoked; {ended} call(s) ended.")
    return forms.redirect(f"/conferences/{info.id}/invites")


routes = [
    Route("/api/conferences/{id:int}/invites", create_invite, methods=["POST"]),
    Route("/api/conferences/{id:int}/invites", list_invites, methods=["GET"]),
    Route("/api/conferences/{id:int}/invites/{invite_id}", revoke_invite, methods=["DELETE"]),
    Route("/join/{token:str}", join_invite, methods=["GET"]),
    Route("/conferences/{id:int}/join", pages.signed_in(join_conference), methods=["GET"]),
    Route("/conferences/{id:int}/invites", invites_page, methods=["GET"]),
    Route("/conferences/{id:int}/invites", invite_form, methods=["POST"]),
    Route("/conferences/{id:int}/invites/revoke", revoke_form, methods=["POST"]),
]
