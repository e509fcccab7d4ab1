"""``create_app(settings, services)``: the Starlette application of the web UI and API.

Served by uvicorn inside ``mrf serve`` on the server's event loop
(:mod:`mrf.server` loads this package by name; nothing imports ``web``).
Routes: :mod:`web.pages` (HTML), :mod:`web.api` (REST), :mod:`web.roster` (live
roster events), ``/static``.  Every response carries the security headers of
:data:`SECURITY_HEADERS` (a CSP without ``unsafe-inline``: no inline script or
style anywhere) and ``Cache-Control: no-store`` (static files excepted).
Errors: JSON ``{"error", "detail"}`` under ``/api`` and ``/metrics``, an HTML
page elsewhere; an unexpected exception is logged and answered 500 without
details.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mrf.settings import Settings
from web import accounts, api, invites, pages
from web.msrp_socket import msrp_socket
from web.roster import roster_events
from web.sip_socket import sip_socket
from web.state import WebServices, WebState

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` (and no-store) to every response; counts statuses."""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.responses[int(message["status"])] += 1
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ] if not static else list(message.get("headers", []))  # fmt: skip
                own = {k.lower() for k, _ in headers}  # a route may widen one (join page: mic)
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in own]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/metrics"))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response: Response
    if _wants_json(request):
        codes = {404: "not_found", 405: "method_not_allowed"}
        response = api.error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )
    else:
        response = pages.error_page(request, exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    logger.exception("web: unexpected error on %s %s", request.method, request.url.path)
    return api.error_response(500, "internal_error", "unexpected server error (logged)")


def create_app(settings: Settings, services: WebServices) -> Starlette:
    """The application for ``settings`` over ``services`` (the running server)."""
    state = WebState(settings, services)
    routes = [
        *pages.routes,
        *accounts.routes,
        Route("/conferences/{id:int}/events", roster_events, methods=["GET"]),
        *invites.routes,
        *api.routes,
        WebSocketRoute("/sip", sip_socket),
        WebSocketRoute("/msrp", msrp_socket),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    handlers = {
        **api.exception_handlers, HTTPException: http_error, Exception: server_error,
    }  # fmt: skip
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.web = state
    app.add_middleware(SecurityHeaders, state=state)
    return app
