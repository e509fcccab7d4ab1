"""Changes made from the web page and the REST API alike, and their live effect.

Every change to a conference's policy or authorized list is stored first and
then applied to the running conference with ``focus.apply_policy(name)``: a
participant no longer admitted gets a BYE and its keys are dropped (issue 4
"live policy", TS 33.328 G.3.1).  Deleting a conference disconnects everyone.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from focus.conference import (
    AuthorizedEntry,
    ConferenceInfo,
    ConferencePolicy,
    InvalidInput,
    coerce_participants,
    normalize_aor,
)
from focus.dialout import DialOutError
from web.auth import Principal
from web.state import call_store, web_state

logger = logging.getLogger(__name__)

MAX_PARTICIPANTS = 1000
DIAL_OUT_UNAVAILABLE = "dial-out is not available in this server (no focus.dialout)"
# DialOutError.status -> (HTTP status, error code)
DIAL_OUT_ERRORS = {
    400: (422, "invalid_input"), 403: (403, "not_authorized"), 404: (404, "not_found"),
    503: (503, "unavailable"),
}  # fmt: skip


class DialOutRefused(Exception):
    """Dial-out could not start: HTTP ``status``, error ``code``, ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def dial_out(request: Request, info: ConferenceInfo, target: object) -> dict[str, object]:
    """Have the focus INVITE ``target`` (TS 33.328 G.1); its roster entry (``dialing``).

    The focus only dials identities on the authorized list; progress (ringing,
    connected, failed with the SIP status) shows in the roster.
    """
    dialer = web_state(request).services.focus.dialout
    if dialer is None:
        raise DialOutRefused(501, "not_implemented", DIAL_OUT_UNAVAILABLE)
    if not isinstance(target, str) or not target.strip() or len(target) > 512:
        raise DialOutRefused(422, "invalid_input", "uri must be a SIP URI")
    try:
        call = dialer.start(info.name, target)
    except DialOutError as exc:
        status, code = DIAL_OUT_ERRORS.get(exc.status, (422, "invalid_input"))
        raise DialOutRefused(status, code, exc.detail) from None
    logger.info("conference %s: dial-out to %s", info.name, call.participant)
    entry: dict[str, object] = call.roster_entry()
    return entry


async def create_conference(
    request: Request,
    who: Principal,
    name: str,
    policy: ConferencePolicy,
    participants: tuple[AuthorizedEntry, ...] = (),
) -> ConferenceInfo:
    store = web_state(request).store
    info = await call_store(
        request, lambda: store.create_conference(
            name, participants, owner_id=who.account.id, policy=policy
        ),
    )  # fmt: skip
    logger.info("account %s created conference %s", who.account.name, name)
    return info


async def _applied(request: Request, name: str) -> None:
    gone = await web_state(request).services.focus.apply_policy(name)
    if gone:
        logger.info("conference %s: disconnected %s after a change", name, ", ".join(gone))


async def update_policy(
    request: Request, info: ConferenceInfo, fields: dict[str, object]
) -> ConferenceInfo:
    store = web_state(request).store
    updated = await call_store(request, lambda: store.update_policy(info.name, **fields))
    await _applied(request, info.name)
    return updated


def validate_participants(items: object) -> tuple[AuthorizedEntry, ...]:
    """An authorized list from JSON-like items (``{"uri", "role", "use_mikey"}``)."""
    if not isinstance(items, list):
        raise InvalidInput("participants must be a list")
    if len(items) > MAX_PARTICIPANTS:
        raise InvalidInput(f"at most {MAX_PARTICIPANTS} participants")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"each participant must be an object with a uri, got {item!r}")
        unknown = sorted(set(item) - {"uri", "role", "use_mikey"})
        if unknown:
            raise InvalidInput(f"unknown participant field {unknown[0]!r}")
        if "uri" not in item:
            raise InvalidInput("each participant needs a uri")
        entries.append(
            AuthorizedEntry(
                item["uri"], item.get("role", "participant"), item.get("use_mikey", False)
            )
        )
    return coerce_participants(entries)


def chair_from_policy(
    policy: dict[str, Any], entries: tuple[AuthorizedEntry, ...]
) -> tuple[dict[str, Any], tuple[AuthorizedEntry, ...] | None]:
    """Map the API's ``policy.chair_uri`` onto the participant's role (one place for the chair).

    A ``chair_uri`` must name an identity on the authorized list (``entries``), which
    then gets the role ``chair``; it is not stored separately (the conference's JSON
    reports the first chair of the list as ``chair_uri``).  ``null`` changes no role.
    Returns the policy fields to store and the changed list (None: unchanged).
    """
    if "chair_uri" not in policy:
        return policy, None
    fields = {**policy, "chair_uri": None}
    if policy["chair_uri"] is None:
        return fields, None
    aor = normalize_aor(policy["chair_uri"])
    if aor not in {e.uri for e in entries}:
        raise InvalidInput(
            f"chair_uri {aor} is not on the authorized list: add it to participants "
            "with the role chair (the role is where the chair is set)"
        )
    changed = tuple(
        AuthorizedEntry(e.uri, "chair", e.use_mikey) if e.uri == aor else e for e in entries
    )
    return fields, changed


async def set_participants(
    request: Request, info: ConferenceInfo, entries: tuple[AuthorizedEntry, ...]
) -> ConferenceInfo:
    store = web_state(request).store
    updated = await call_store(request, store.set_participants, info.name, entries)
    await _applied(request, info.name)
    return updated


async def delete_conference(request: Request, who: Principal, info: ConferenceInfo) -> None:
    store = web_state(request).store
    await call_store(request, store.delete_conference, info.name)
    await _applied(request, info.name)
    logger.info("account %s deleted conference %s", who.account.name, info.name)


# --- the roster's actions (the control room) -----------------------------------------

LIVE_STATES = frozenset({"connected", "on-hold"})
RINGING_STATES = frozenset({"dialing", "ringing"})


def _entries(request: Request, info: ConferenceInfo) -> list[dict[str, Any]]:
    return list(web_state(request).services.focus.roster(info.name))


def set_all_muted(request: Request, info: ConferenceInfo, muted: bool) -> int:
    """Mute (or unmute) every connected call of ``info``; how many changed."""
    focus = web_state(request).services.focus
    changed = 0
    for entry in _entries(request, info):
        if entry.get("state") in LIVE_STATES and entry.get("call_id"):
            if bool(entry.get("muted")) != muted and focus.set_muted(entry["call_id"], muted):
                changed += 1
    logger.info("conference %s: %s %d participants", info.name,
                "muted" if muted else "unmuted", changed)  # fmt: skip
    return changed


async def end_call(request: Request, info: ConferenceInfo, call_id: str) -> str | None:
    """End one roster entry of ``info`` as its state allows; what was done (None: unknown).

    Connected: BYE (``hung-up``), the authorization is kept, so the participant
    may dial in again.  A dial-out still ringing: CANCEL (``cancelled``; it then
    shows as failed with 487).  An ended dial-out: removed from the history
    (``dismissed``).
    """
    focus = web_state(request).services.focus
    roster = _entries(request, info) + list(web_state(request).ended.get(info.name, ()))
    entry = next((e for e in roster if e.get("call_id") == call_id), None)
    if entry is None:
        return None
    state = entry.get("state")
    if web_state(request).dismiss_ended(info.name, call_id):
        return "dismissed"
    if state in RINGING_STATES and focus.dialout is not None:
        return "cancelled" if focus.dialout.cancel(call_id) else None
    if state in ("failed", "left") and focus.dialout is not None:
        return "dismissed" if focus.dialout.dismiss(call_id) else None
    if await focus.hang_up(call_id, "hung up from the web"):
        logger.info("conference %s: hung up %s", info.name, entry.get("uri"))
        return "hung-up"
    return None


def refusals(request: Request, info: ConferenceInfo) -> list[dict[str, object]]:
    focus = web_state(request).services.focus
    recorded = getattr(focus, "refusals", None)
    return list(recorded(info.name)) if recorded is not None else []


# --- the chat pane ---------------------------------------------------------------------

MAX_CHAT_TEXT = 1000  # characters the web posts at once


class ChatRefused(Exception):
    """A chat post that cannot go out: HTTP ``status``, error ``code``, ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def chat_history(request: Request, info: ConferenceInfo) -> list[dict[str, object]]:
    relay = getattr(web_state(request).services.focus, "chat", None)
    history = getattr(relay, "history", None)
    return list(history(info.name)) if history is not None else []


def post_chat(request: Request, info: ConferenceInfo, text: object) -> int:
    """Send ``text`` to the room as the conference URI (CPIM From); recipients reached."""
    relay = getattr(web_state(request).services.focus, "chat", None)
    if relay is None or not hasattr(relay, "post"):
        raise ChatRefused(501, "not_implemented", "this server has no chat (MSRP) switch")
    if not isinstance(text, str) or not text.strip():
        raise ChatRefused(422, "invalid_input", "text must be a non-empty string")
    if len(text) > MAX_CHAT_TEXT:
        raise ChatRefused(422, "invalid_input", f"text may have {MAX_CHAT_TEXT} characters")
    state = web_state(request)
    try:
        sent = int(relay.post(info.name, info.uri(state.domain), text.strip()))
    except ValueError as exc:
        raise ChatRefused(422, "invalid_input", str(exc)) from None
    logger.info("conference %s: chat message posted as the conference to %d", info.name, sent)
    return sent
