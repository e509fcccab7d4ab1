"""The OpenAPI 3.0 document of the REST API, served at ``/api/openapi.json``.

Written by hand from the same constants the handlers validate with
(:mod:`focus.conference`); ``tests/web/test_openapi.py`` runs schemathesis over
it against the real application, which checks that every response (status and
body) is the one documented here.
"""

from __future__ import annotations

from typing import Any

from focus.conference import (
    DEFAULT_KEY_MODES,
    KEY_MODES,
    MAX_NAME_LENGTH,
    NOTIFY_PROTECTIONS,
    ROLES,
)
from mrf import __version__

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "malformed JSON", 401: "not signed in (no or unknown bearer token)",
        403: "session without X-CSRF-Token, or (dial-out) a URI not on the authorized list",
        404: "no such conference (or not yours)",
        409: "a conference with that name exists", 413: "body larger than 64 KiB",
        415: "body not application/json", 422: "invalid values",
        501: "this server has no dial-out", 503: "the SIP endpoint is not running",
    }  # fmt: skip
    return {str(s): _json(_ref("Error"), texts[s]) for s in statuses}


_ID = {
    "name": "id", "in": "path", "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}  # fmt: skip
_BODY_ERRORS = (400, 401, 403, 404, 413, 415, 422)

_POLICY_PROPERTIES: dict[str, Any] = {
    "allow_anonymous": {"type": "boolean"},
    "require_media_security": {"type": "boolean"},
    "key_modes": {
        "type": "array", "minItems": 1, "items": {"type": "string", "enum": list(KEY_MODES)},
        "default": list(DEFAULT_KEY_MODES),
        "description": "accepted key management; a new conference accepts every mode",
    },
    "notify_protection": {"type": "string", "enum": list(NOTIFY_PROTECTIONS)},
    "chair_uri": {"type": "string", "nullable": True, "example": "sip:carol@127.0.0.1",
                  "description": "must be on the authorized list; sets that participant's "
                  "role to chair (reported: the first chair of the list)"},
    "locked": {"type": "boolean", "default": False,
               "description": "while true, new joins get 403 with a Warning"},
}  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    },
    "Policy": {
        "type": "object", "properties": _POLICY_PROPERTIES,
        "required": list(_POLICY_PROPERTIES),
    },
    "PolicyChange": {
        "type": "object", "properties": _POLICY_PROPERTIES, "additionalProperties": False,
        "description": "any subset of the policy fields",
    },
    "Participant": {
        "type": "object", "required": ["uri"], "additionalProperties": False,
        "properties": {
            "uri": {"type": "string", "example": "sip:alice@127.0.0.1"},
            "role": {"type": "string", "enum": list(ROLES), "default": "participant"},
            "use_mikey": {"type": "boolean", "default": False},
        },
    },
    "Participants": {"type": "array", "maxItems": 1000, "items": _ref("Participant")},
    "Conference": {
        "type": "object",
        "required": ["id", "name", "uri", "owner_id", "policy", "participants",
                     "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "uri": {"type": "string", "example": "sip:retro@127.0.0.1"},
            "owner_id": {"type": "integer", "nullable": True},
            "policy": _ref("Policy"), "participants": _ref("Participants"),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "home": {"type": "string", "description": "the node running it, while live "
                     "(several nodes, docs/scaling.md)"},
        },
    },
    "ConferenceList": {
        "type": "object", "required": ["conferences"],
        "properties": {"conferences": {"type": "array", "items": _ref("Conference")}},
    },
    "ConferenceCreate": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": f"^[a-z0-9._-]{{1,{MAX_NAME_LENGTH}}}$"},
            "policy": _ref("PolicyChange"), "participants": _ref("Participants"),
        },
    },
    "ConferenceChange": {
        "type": "object", "additionalProperties": False,
        "properties": {"policy": _ref("PolicyChange"), "participants": _ref("Participants")},
    },
    "ParticipantsPut": {
        "type": "object", "required": ["participants"], "additionalProperties": False,
        "properties": {"participants": _ref("Participants")},
    },
    "DialOut": {
        "type": "object", "required": ["uri"], "additionalProperties": False,
        "properties": {"uri": {"type": "string", "example": "sip:bob@127.0.0.1:5070"}},
    },
    "DialOutStarted": {
        "type": "object", "required": ["conference", "participant"],
        "properties": {"conference": {"type": "string"}, "participant": _ref("RosterEntry")},
    },
    "Refusal": {
        "type": "object", "required": ["uri", "reason", "at"],
        "properties": {"uri": {"type": "string"}, "reason": {"type": "string"},
                       "status": {"type": "integer"},
                       "at": {"type": "string", "format": "date-time"}},
    },
    "CallEnded": {
        "type": "object", "required": ["action"],
        "properties": {"action": {"type": "string",
                                  "enum": ["hung-up", "cancelled", "dismissed"]}},
    },
    "Stream": {
        "type": "object", "required": ["type", "key_mode"],
        "properties": {
            "type": {"type": "string", "example": "audio"},
            "key_mode": {"type": "string", "example": "sdes"},
            "packets_in": {"type": "integer"}, "packets_out": {"type": "integer"},
        },
    },
    "RosterEntry": {
        "type": "object", "required": ["uri", "role", "state", "joined_by", "reason", "media"],
        "properties": {
            "uri": {"type": "string"}, "role": {"type": "string", "enum": list(ROLES)},
            "state": {"type": "string", "enum": ["dialing", "ringing", "connecting",
                                                   "connected", "on-hold", "failed", "left"]},
            "joined_by": {"type": "string", "enum": ["dial-in", "dial-out"]},
            "reason": {"type": "string", "nullable": True},
            "muted": {"type": "boolean"}, "call_id": {"type": "string"},
            "talking": {"type": "boolean"},  # one of the mixer's active speakers now
            "last_dtmf": {  # the latest RFC 4733 telephone-event the participant sent
                "type": "object", "nullable": True,
                "properties": {"event": {"type": "string", "example": "5"},
                               "duration_ms": {"type": "integer"},
                               "at": {"type": "string", "format": "date-time"}},
            },
            "media": {"type": "array", "items": _ref("Stream")},
        },
    },
    "Mute": {
        "type": "object", "required": ["muted"], "additionalProperties": False,
        "properties": {"muted": {"type": "boolean"}},
    },
    "Roster": {
        "type": "object", "required": ["conference", "participants"],
        "properties": {
            "conference": {"type": "string"},
            "participants": {"type": "array", "items": _ref("RosterEntry")},
            "floors": {"type": "array", "items": _ref("Floor")},
        },
    },
    "InviteCreate": {
        "type": "object", "required": ["uri"], "additionalProperties": False,
        "properties": {
            "uri": {"type": "string", "example": "sip:carol@127.0.0.1",
                    "description": "an identity on the conference's authorized list"},
            "expires_in": {"type": "integer", "minimum": 60, "maximum": 30 * 24 * 3600,
                           "default": 24 * 3600, "description": "seconds"},
        },
    },
    "InviteCreated": {
        "type": "object", "required": ["id", "url", "expires_at"],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string", "description": "<web base>/join/<token>; shown only here"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
    },
    "Invite": {
        "type": "object", "required": ["id", "uri", "state", "created_at", "expires_at"],
        "properties": {
            "id": {"type": "integer"}, "uri": {"type": "string"},
            "state": {"type": "string", "enum": ["unused", "opened", "expired", "revoked"]},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
            "revoked_at": {"type": "string", "format": "date-time", "nullable": True},
            "opened_at": {"type": "string", "format": "date-time", "nullable": True},
            "disconnected": {"type": "integer",
                             "description": "DELETE only: calls ended by the revocation"},
        },
    },
    "Floor": {
        "type": "object", "required": ["floor_id", "holder", "queue"],
        "properties": {
            "floor_id": {"type": "integer"},
            "holder": {"type": "string", "nullable": True},
            "queue": {"type": "array", "items": {
                "type": "object", "required": ["request_id", "uri"],
                "properties": {"request_id": {"type": "integer"},
                               "uri": {"type": "string", "nullable": True},
                               "status": {"type": "string", "enum": ["pending", "queued"]}},
            }},
        },
    },
    "ChatMessage": {
        "type": "object", "required": ["from", "to", "text", "at"],
        "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                       "text": {"type": "string", "nullable": True},
                       "nickname": {"type": "string", "nullable": True},
                       "private": {"type": "boolean"},
                       "at": {"type": "string", "format": "date-time"}},
    },
    "ChatPost": {
        "type": "object", "required": ["text"], "additionalProperties": False,
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 1000}},
    },
    "FloorDecision": {
        "type": "object", "required": ["action"], "additionalProperties": False,
        "properties": {"action": {"type": "string", "enum": ["grant", "deny"]}},
    },
    "Health": {
        "type": "object", "required": ["status", "listeners"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "listeners": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    },
}  # fmt: skip


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


PATHS: dict[str, Any] = {
    "/api/conferences": {
        "get": {
            "operationId": "listConferences", "summary": "your conferences (all, for an admin)",
            "responses": {"200": _json(_ref("ConferenceList"), "the list"), **_errors(401)},
        },
        "post": {
            "operationId": "createConference", "summary": "create a conference",
            "requestBody": _body("ConferenceCreate"),
            "responses": {"201": _json(_ref("Conference"), "created"),
                          **_errors(*_BODY_ERRORS, 409)},
        },
    },
    "/api/conferences/{id}": {
        "parameters": [_ID],
        "get": {
            "operationId": "getConference", "summary": "one conference",
            "responses": {"200": _json(_ref("Conference"), "the conference"),
                          **_errors(401, 404)},
        },
        "patch": {
            "operationId": "changeConference",
            "summary": "change the policy and/or the authorized list (applied live)",
            "requestBody": _body("ConferenceChange"),
            "responses": {"200": _json(_ref("Conference"), "changed"), **_errors(*_BODY_ERRORS)},
        },
        "delete": {
            "operationId": "deleteConference", "summary": "delete; everyone is disconnected",
            "responses": {"204": {"description": "deleted"}, **_errors(401, 403, 404)},
        },
    },
    "/api/conferences/{id}/participants": {
        "parameters": [_ID],
        "put": {
            "operationId": "setParticipants",
            "summary": "replace the authorized list; removed participants get a BYE",
            "requestBody": _body("ParticipantsPut"),
            "responses": {"200": _json(_ref("Conference"), "changed"), **_errors(*_BODY_ERRORS)},
        },
    },
    "/api/conferences/{id}/dial-out": {
        "parameters": [_ID],
        "post": {
            "operationId": "dialOut",
            "summary": "have the focus INVITE an authorized participant; progress in the roster",
            "requestBody": _body("DialOut"),
            "responses": {"202": _json(_ref("DialOutStarted"), "dialling"),
                          **_errors(*_BODY_ERRORS, 501, 503)},
        },
    },
    "/api/conferences/{id}/roster": {
        "parameters": [_ID],
        "get": {
            "operationId": "getRoster", "summary": "who is in, with media and packet counts",
            "responses": {"200": _json(_ref("Roster"), "the live roster"), **_errors(401, 404)},
        },
        "patch": {
            "operationId": "setAllMuted",
            "summary": "mute or unmute everyone connected (mute all)",
            "requestBody": _body("Mute"),
            "responses": {"200": _json(_ref("Roster"), "the roster after the change"),
                          **_errors(*_BODY_ERRORS)},
        },
    },
    "/api/conferences/{id}/chat": {
        "parameters": [_ID],
        "get": {
            "operationId": "getChat",
            "summary": "the room's recent chat messages (private ones without their text)",
            "responses": {"200": _json({"type": "array", "items": _ref("ChatMessage")},
                                       "messages, oldest first"), **_errors(401, 404)},
        },
        "post": {
            "operationId": "postChat",
            "summary": "send a message to the room as the conference (CPIM From: its URI)",
            "requestBody": _body("ChatPost"),
            "responses": {"201": _json({"type": "object", "required": ["sent_to"],
                                        "properties": {"sent_to": {"type": "integer"}}},
                                       "sent"), **_errors(*_BODY_ERRORS, 501)},
        },
    },
    "/api/conferences/{id}/floors": {
        "parameters": [_ID],
        "get": {
            "operationId": "getFloors", "summary": "per BFCP floor: who holds it, who waits",
            "responses": {"200": _json({"type": "array", "items": _ref("Floor")}, "floors"),
                          **_errors(401, 404)},
        },
    },
    "/api/conferences/{id}/floors/{floor_id}/requests/{request_id}": {
        "parameters": [_ID,
                       {"name": "floor_id", "in": "path", "required": True,
                        "schema": {"type": "integer"}},
                       {"name": "request_id", "in": "path", "required": True,
                        "schema": {"type": "integer"}}],
        "post": {
            "operationId": "decideFloorRequest",
            "summary": "grant (to the head of the queue) or deny a waiting floor request, "
            "as the conference's chair (its owner or an administrator)",
            "requestBody": _body("FloorDecision"),
            "responses": {"200": _json({"type": "array", "items": _ref("Floor")},
                                       "the floors after the decision"),
                          **_errors(*_BODY_ERRORS)},
        },
    },
    "/api/conferences/{id}/refusals": {
        "parameters": [_ID],
        "get": {
            "operationId": "getRefusals",
            "summary": "the last refused join attempts, newest first (kept in memory)",
            "responses": {"200": _json({"type": "array", "items": _ref("Refusal")},
                                       "refusals"), **_errors(401, 404)},
        },
    },
    "/api/conferences/{id}/roster/{call_id}": {
        "parameters": [_ID, {"name": "call_id", "in": "path", "required": True,
                             "schema": {"type": "string"}}],
        "delete": {
            "operationId": "endCall",
            "summary": "hang up a connected call (the authorization stays), cancel a ringing "
            "dial-out, or dismiss an ended one from the history",
            "responses": {"200": _json(_ref("CallEnded"), "done"), **_errors(401, 403, 404)},
        },
        "patch": {
            "operationId": "setMuted",
            "summary": "mute or unmute a participant (the mixer drops its audio)",
            "requestBody": _body("Mute"),
            "responses": {"200": _json(_ref("RosterEntry"), "changed"),
                          **_errors(*_BODY_ERRORS)},
        },
    },
    "/api/conferences/{id}/invites": {
        "parameters": [_ID],
        "post": {
            "operationId": "createInvite",
            "summary": "an invite link for one authorized identity (browser join)",
            "requestBody": _body("InviteCreate"),
            "responses": {"201": _json(_ref("InviteCreated"), "created; the token is in url"),
                          **_errors(*_BODY_ERRORS)},
        },
        "get": {
            "operationId": "listInvites", "summary": "the conference's invites, without tokens",
            "responses": {"200": _json({"type": "array", "items": _ref("Invite")}, "invites"),
                          **_errors(401, 404)},
        },
    },
    "/api/conferences/{id}/invites/{invite_id}": {
        "parameters": [_ID, {"name": "invite_id", "in": "path", "required": True,
                             "schema": {"type": "integer", "minimum": 1,
                                        "maximum": 2**31 - 1}}],
        "delete": {
            "operationId": "revokeInvite",
            "summary": "revoke an invite; whoever joined with it is disconnected",
            "responses": {"200": _json(_ref("Invite"), "revoked"), **_errors(401, 403, 404)},
        },
    },
    "/api/health": {
        "get": {
            "operationId": "health", "summary": "200 when every listener is up",
            "security": [],
            "responses": {"200": _json(_ref("Health"), "all up"),
                          "503": _json(_ref("Health"), "a listener is down")},
        },
    },
    "/metrics": {
        "get": {
            "operationId": "metrics", "summary": "Prometheus text format",
            "description": "Without Authorization the media series carry opaque labels; "
            "the scrape token (web.metrics_token_file) gets conference and participant "
            "names; any other token is 401.",
            "security": [{}, {"scrape": []}],
            "responses": {"200": {"description": "metrics",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          "401": _json(_ref("Error"), "a bearer token that is not the "
                                       "scrape token")},
        },
    },
}  # fmt: skip

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "mrf conference API", "version": __version__,
        "description": "Conferences, their policy and authorized participants (TS 33.328 "
        "G.3.1), and the live roster.  Errors are {\"error\": code, \"detail\": text}.",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "a token from `mrf admin token NAME`"},
            "session": {"type": "apiKey", "in": "cookie", "name": "mrf_session",
                        "description": "the web session; changes also need X-CSRF-Token"},
            "scrape": {"type": "http", "scheme": "bearer",
                       "description": "GET /metrics only: the token in web.metrics_token_file"},
        },
    },
    "security": [{"bearer": []}, {"session": []}],
}  # fmt: skip
