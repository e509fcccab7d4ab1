"""The live roster for the web page: Server-Sent Events (WHATWG HTML §9.2).

``GET /conferences/{id}/events`` streams ``event: roster`` messages whose data
is the roster JSON (the same document as ``GET /api/conferences/{id}/roster``),
and ``event: chat`` messages with the room's recent chat (``GET …/chat``)
whenever a message was relayed or posted.
A message goes out when the focus reports a participant of this conference
joining, changing or leaving (:meth:`focus.service.FocusService.subscribe`), and
otherwise at most once a second when the SRTP packet counters moved.  A comment
line every 15 s keeps idle connections open; a stream lasts at most an hour (the
browser's EventSource reconnects by itself).  When the conference is deleted the
stream sends ``event: gone`` and ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from focus.events import FocusEvent
from web.state import WebState, principal, roster_document, visible_conference, web_state

MAX_STREAMS = 200
REFRESH_INTERVAL = 1.0
KEEPALIVE_INTERVAL = 15.0
MAX_STREAM_SECONDS = 3600.0


def _message(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _stream(state: WebState, conference_id: int, name: str) -> AsyncIterator[str]:
    wake = asyncio.Event()

    def listener(event: FocusEvent) -> None:
        if event.conference == name:
            wake.set()

    unsubscribe = state.services.focus.subscribe(listener)
    relay = getattr(state.services.focus, "chat", None)
    on_chat = getattr(relay, "on_chat", None)
    history = getattr(relay, "history", None)
    unsubscribe_chat = on_chat(lambda conference: wake.set() if conference == name else None) if (
        on_chat is not None
    ) else (lambda: None)  # fmt: skip
    previous_chat = None
    state.sse_clients += 1
    started = last_sent = time.monotonic()
    previous = None
    try:
        yield "retry: 2000\n\n"
        while time.monotonic() - started < MAX_STREAM_SECONDS:
            info = await asyncio.to_thread(state.store.get_conference_by_id, conference_id)
            if info is None:
                yield _message("gone", {"conference": name})
                return
            if history is not None:
                chat_text = _message("chat", history(name))
                if chat_text != previous_chat:
                    previous_chat = chat_text
                    yield chat_text
            text = _message("roster", roster_document(state, info))
            if text != previous:
                previous, last_sent = text, time.monotonic()
                yield text
            elif time.monotonic() - last_sent >= KEEPALIVE_INTERVAL:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), REFRESH_INTERVAL)
            except TimeoutError:
                pass
    finally:
        unsubscribe()
        unsubscribe_chat()
        state.sse_clients -= 1


async def roster_events(request: Request) -> Response:
    who = await principal(request)
    if who is None:
        return JSONResponse({"error": "unauthorized", "detail": "sign in first"}, 401)
    info = await visible_conference(request, who, request.path_params["id"])
    if info is None:
        return JSONResponse({"error": "not_found", "detail": "no such conference"}, 404)
    state = web_state(request)
    if state.sse_clients >= MAX_STREAMS:
        return JSONResponse({"error": "busy", "detail": "too many live rosters open"}, 503)
    return StreamingResponse(
        _stream(state, info.id, info.name),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
