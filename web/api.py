"""The REST API (interfaces contract "REST API"); described by :mod:`web.openapi`.

JSON in, JSON out.  Authentication: ``Authorization: Bearer <token>`` or the web
session cookie (then unsafe methods also need the ``X-CSRF-Token`` header).
Errors are ``{"error": code, "detail": text}``: 400 malformed JSON, 401 not signed
in, 403 CSRF, 404 unknown (or someone else's) conference, 409 name taken, 413
body too large, 415 not JSON, 422 invalid values, 501 dial-out (when the focus
has none), 503 dial-out while the SIP endpoint is down.  A 500 is a bug.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from focus.conference import (
    ConferenceExists,
    ConferenceInfo,
    ConferenceNotFound,
    ConferencePolicy,
    InvalidInput,
)
from web import actions, cluster
from web.auth import CSRF_HEADER, Principal, csrf_matches
from web.metrics import metrics
from web.openapi import OPENAPI
from web.state import (
    call_store,
    floor_states,
    principal,
    roster_document,
    visible_conference,
    web_state,
)

logger = logging.getLogger(__name__)
MAX_BODY_SIZE = 64 * 1024
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiError(Exception):
    """An API refusal: HTTP ``status``, machine ``code``, human ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="mrf"'} if status == 401 else None
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.detail)


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object (size-capped, content type checked)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_SIZE:
            raise ApiError(413, "body_too_large", f"the body may have {MAX_BODY_SIZE} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_input", "the body must be a JSON object")
    return data


def only(data: dict[str, Any], *allowed: str, required: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(422, "invalid_input", f"unknown field {unknown[0]!r}")
    for name in required:
        if name not in data:
            raise ApiError(422, "invalid_input", f"the field {name!r} is required")


async def authenticated(request: Request) -> Principal:
    who = await principal(request)
    if who is None:
        raise ApiError(401, "unauthorized", "sign in or send Authorization: Bearer <token>")
    if who.via == "session" and request.method in UNSAFE:
        if not csrf_matches(who.session, request.headers.get(CSRF_HEADER)):
            raise ApiError(403, "csrf", "a session-authenticated change needs X-CSRF-Token")
    return who


async def conference_of(request: Request, who: Principal) -> ConferenceInfo:
    info = await visible_conference(request, who, request.path_params["id"])
    if info is None:
        raise ApiError(404, "not_found", "no such conference")
    return info


def conference_json(request: Request, info: ConferenceInfo) -> dict[str, object]:
    return info.to_json(web_state(request).domain)


def _policy_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("policy must be an object")
    return value


def policy_of(value: object, base: ConferencePolicy) -> ConferencePolicy:
    if not isinstance(value, dict):
        raise InvalidInput("policy must be an object")
    return base.updated(**value)


async def create(request: Request) -> Response:
    who = await authenticated(request)
    data = await read_json(request)
    only(data, "name", "policy", "participants", required=("name",))
    entries = actions.validate_participants(data.get("participants", []))
    fields, chaired = actions.chair_from_policy(_policy_object(data.get("policy", {})), entries)
    policy = policy_of(fields, ConferencePolicy())
    entries = chaired or entries
    try:
        info = await actions.create_conference(request, who, data["name"], policy, entries)
    except ConferenceExists as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    location = str(request.url_for("api_conference", id=info.id).path)
    return JSONResponse(conference_json(request, info), 201, headers={"Location": location})


async def listing(request: Request) -> Response:
    who = await authenticated(request)
    store = web_state(request).store
    owner = None if who.account.is_admin else who.account.id
    rows = await call_store(request, store.list_conferences, owner)
    return JSONResponse({"conferences": [conference_json(request, info) for info in rows]})


async def conference(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    if request.method == "GET":
        body = conference_json(request, info)
        homing = getattr(web_state(request).services.focus, "homing", None)
        if homing is not None:  # several nodes: where it runs while live (docs/scaling.md)
            home = await call_store(request, homing.home_of, info.name)
            if home is not None:
                body["home"] = home
        return JSONResponse(body)
    if request.method == "DELETE":
        await actions.delete_conference(request, who, info)
        return Response(status_code=204)
    data = await read_json(request)
    only(data, "policy", "participants")
    entries = None
    if "participants" in data:
        entries = actions.validate_participants(data["participants"])
    fields: dict[str, Any] | None = None
    if "policy" in data:
        fields, chaired = actions.chair_from_policy(
            _policy_object(data["policy"]), entries or info.participants
        )
        policy_of(fields, info.policy)  # validate before changing anything
        entries = chaired or entries
    if fields is not None:
        info = await actions.update_policy(request, info, fields)
    if entries is not None:
        info = await actions.set_participants(request, info, entries)
    return JSONResponse(conference_json(request, info))


async def participants(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    data = await read_json(request)
    only(data, "participants", required=("participants",))
    entries = actions.validate_participants(data["participants"])
    info = await actions.set_participants(request, info, entries)
    return JSONResponse(conference_json(request, info))


async def dial_out(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    data = await read_json(request)
    only(data, "uri", required=("uri",))
    remote = await cluster.forward(request, info, "dial-out", claim=True, uri=data["uri"])
    if remote is not None:  # homed on another node: placed by the home (docs/scaling.md)
        body = {"conference": info.uri(web_state(request).domain), "participant": remote["entry"]}
        return JSONResponse(body, status_code=202)
    try:
        entry = actions.dial_out(request, info, data["uri"])
    except actions.DialOutRefused as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from None
    body = {"conference": info.uri(web_state(request).domain), "participant": entry}
    return JSONResponse(body, status_code=202)


async def roster(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    remote = await cluster.forward(request, info, "roster")
    if remote is not None:  # homed on another node: its roster (docs/scaling.md)
        domain = web_state(request).domain
        return JSONResponse(
            {"conference": info.uri(domain), "participants": remote["participants"]}
        )
    return JSONResponse(roster_document(web_state(request), info))


async def roster_entry(request: Request) -> Response:
    """``PATCH /api/conferences/{id}/roster/{call_id}`` ``{"muted": bool}``: mute or unmute."""
    who = await authenticated(request)
    info = await conference_of(request, who)
    data = await read_json(request)
    only(data, "muted", required=("muted",))
    if not isinstance(data["muted"], bool):
        raise ApiError(422, "invalid_input", "muted must be true or false")
    call_id = request.path_params["call_id"]
    remote = await cluster.forward(request, info, "mute", call_id=call_id, muted=data["muted"])
    if remote is not None:  # homed on another node: muted there (docs/scaling.md)
        return JSONResponse(remote["entry"])
    focus = web_state(request).services.focus
    call = focus.find_call(call_id)
    if call is None or call.conference.name != info.name:
        raise ApiError(404, "not_found", "no such participant in this conference")
    focus.set_muted(call_id, data["muted"])
    return JSONResponse(call.roster_entry())


async def mute_all(request: Request) -> Response:
    """``PATCH /api/conferences/{id}/roster`` ``{"muted": bool}``: everyone connected."""
    who = await authenticated(request)
    info = await conference_of(request, who)
    data = await read_json(request)
    only(data, "muted", required=("muted",))
    if not isinstance(data["muted"], bool):
        raise ApiError(422, "invalid_input", "muted must be true or false")
    actions.set_all_muted(request, info, data["muted"])
    return JSONResponse(roster_document(web_state(request), info))


async def end_call(request: Request) -> Response:
    """``DELETE /api/conferences/{id}/roster/{call_id}``: hang up, cancel or dismiss."""
    who = await authenticated(request)
    info = await conference_of(request, who)
    action = await actions.end_call(request, info, request.path_params["call_id"])
    if action is None:
        raise ApiError(404, "not_found", "no such call in this conference")
    return JSONResponse({"action": action})


async def refusals(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    return JSONResponse(actions.refusals(request, info))


async def floors(request: Request) -> Response:
    who = await authenticated(request)
    info = await conference_of(request, who)
    return JSONResponse(floor_states(web_state(request), info))


async def floor_decision(request: Request) -> Response:
    """``POST …/floors/{floor_id}/requests/{request_id}`` ``{"action": "grant"|"deny"}``.

    The web user acts as the conference's chair: only its owner or an administrator
    reaches it (anyone else gets 404, like for every other route of a conference)."""
    who = await authenticated(request)
    info = await conference_of(request, who)
    data = await read_json(request)
    only(data, "action", required=("action",))
    if data["action"] not in ("grant", "deny"):
        raise ApiError(422, "invalid_input", "action must be grant or deny")
    try:
        floor_id = int(request.path_params["floor_id"])
        request_id = int(request.path_params["request_id"])
    except ValueError:
        raise ApiError(404, "not_found", "no such waiting floor request") from None
    control = getattr(web_state(request).services.focus, "floor", None)
    decide = getattr(control, "decide", None)
    if decide is None or not decide(info.name, floor_id, request_id, data["action"] == "grant"):
        raise ApiError(404, "not_found", "no such waiting floor request")
    logger.info("conference %s: floor %d request %d %s by %s", info.name, floor_id,
                request_id, data["action"], who.account.name)  # fmt: skip
    return JSONResponse(floor_states(web_state(request), info))


async def chat(request: Request) -> Response:
    """``GET``: the room's recent messages; ``POST {"text"}``: send as the conference."""
    who = await authenticated(request)
    info = await conference_of(request, who)
    if request.method == "GET":
        return JSONResponse(actions.chat_history(request, info))
    data = await read_json(request)
    only(data, "text", required=("text",))
    try:
        sent = actions.post_chat(request, info, data["text"])
    except actions.ChatRefused as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from None
    return JSONResponse({"sent_to": sent}, status_code=201)


async def health(request: Request) -> Response:
    listeners = web_state(request).services.listeners()
    listeners["web"] = True  # this answer comes from it
    up = all(listeners.values())
    body = {"status": "ok" if up else "degraded", "listeners": listeners}
    return JSONResponse(body, status_code=200 if up else 503)


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


async def invalid_input(request: Request, exc: Exception) -> Response:
    return error_response(422, "invalid_input", str(exc))


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, "not_found", str(exc))


routes = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/api/conferences", create, methods=["POST"]),
    Route("/api/conferences", listing, methods=["GET"]),
    Route(
        "/api/conferences/{id:int}",
        conference,
        methods=["GET", "PATCH", "DELETE"],
        name="api_conference",
    ),  # fmt: skip
    Route("/api/conferences/{id:int}/participants", participants, methods=["PUT"]),
    Route("/api/conferences/{id:int}/dial-out", dial_out, methods=["POST"]),
    Route("/api/conferences/{id:int}/roster", roster, methods=["GET"]),
    Route("/api/conferences/{id:int}/roster", mute_all, methods=["PATCH"]),
    Route("/api/conferences/{id:int}/roster/{call_id}", roster_entry, methods=["PATCH"]),
    Route("/api/conferences/{id:int}/roster/{call_id}", end_call, methods=["DELETE"]),
    Route("/api/conferences/{id:int}/refusals", refusals, methods=["GET"]),
    Route("/api/conferences/{id:int}/floors", floors, methods=["GET"]),
    Route("/api/conferences/{id:int}/chat", chat, methods=["GET", "POST"]),
    Route(
        "/api/conferences/{id:int}/floors/{floor_id}/requests/{request_id}",
        floor_decision,
        methods=["POST"],
    ),
]


async def forward_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, cluster.ForwardRefused)
    return error_response(exc.status, exc.code, exc.detail)


exception_handlers = {
    ApiError: api_error,
    cluster.ForwardRefused: forward_refused,
    InvalidInput: invalid_input,
    ConferenceNotFound: not_found,
}
