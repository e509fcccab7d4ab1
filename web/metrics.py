"""``GET /metrics``: Prometheus text exposition format 0.0.4, written by hand.

Counters and gauges of the focus (calls, admissions, refusals by SIP status,
SRTP packets of live streams), the store (conferences, accounts) and the web
layer (responses by HTTP status, sign-ins, throttled sign-ins, live roster
streams), then the media plane's per-stream and per-mixer series
(:mod:`mrf.rtp.metrics`).

Who may read names: the endpoint needs no sign-in, so without an
``Authorization`` header the media series carry opaque labels
(:class:`~mrf.rtp.metrics.OpaqueNames`: ``conference="c-…"``,
``participant="p-…"``) and no series names a conference or a participant.
``Authorization: Bearer <scrape token>`` -- the token in
``web.metrics_token_file``, good for this endpoint only -- gets the
conference names and participant URIs instead.  Any other bearer token (or
one while no scrape token is configured) gets 401: a scraper with a wrong
token should fail loudly, not quietly lose its labels.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from web.auth import bearer_token
from web.state import WebState, web_state

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _family(name: str, kind: str, text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples]
    return lines


def _focus_lines(state: WebState) -> list[str]:
    focus = state.services.focus
    calls = list(getattr(focus, "calls", []))
    packets_in = packets_out = 0
    for call in calls:
        for stream in call.streams.values():
            packets_in += stream.packets_in
            packets_out += stream.packets_out
    stats = focus.stats
    refused = sorted(stats.refused.items())
    return [
        *_family("mrf_calls_active", "gauge", "Participants connected now.", [("", len(calls))]),
        *_family("mrf_invites_total", "counter", "Dial-in INVITEs received.",
                 [("", stats.invites)]),
        *_family("mrf_admitted_total", "counter", "Dial-in INVITEs answered 200.",
                 [("", stats.admitted)]),
        *_family("mrf_refused_total", "counter", "Requests refused, by SIP status.",
                 [(f'{{status="{s}"}}', n) for s, n in refused]),
        *_family("mrf_srtp_packets", "gauge", "SRTP packets of the live streams.",
                 [('{direction="in"}', packets_in), ('{direction="out"}', packets_out)]),
    ]  # fmt: skip


def render(state: WebState, conferences: int, accounts: int, *, names: bool = False) -> str:
    """The exposition; ``names`` puts conference names and participant URIs in labels."""
    lines = [
        *_family("mrf_conferences", "gauge", "Stored conferences.", [("", conferences)]),
        *_family("mrf_accounts", "gauge", "Web/API accounts.", [("", accounts)]),
        *_focus_lines(state),
        *_family("mrf_http_responses_total", "counter", "Web/API responses, by HTTP status.",
                 [(f'{{status="{s}"}}', n) for s, n in sorted(state.responses.items())]),
        *_family("mrf_logins_total", "counter", "Sign-in attempts, by result.",
                 [(f'{{result="{r}"}}', n) for r, n in sorted(state.logins.items())]),
        *_family("mrf_roster_streams", "gauge", "Open live-roster event streams.",
                 [("", state.sse_clients)]),
    ]  # fmt: skip
    return "\n".join(lines) + "\n" + _media_text(state, names)


def _media_text(state: WebState, names: bool) -> str:
    """Per-stream loss/jitter and mixer tick times (``mrf.rtp.metrics``), when serving."""
    focus = state.services.focus
    if not hasattr(focus, "calls") or not hasattr(focus.stats, "invites"):
        return ""
    # the media plane is optional here
    from mrf.rtp.metrics import PLAIN_NAMES, OpaqueNames, prometheus_text

    labels = PLAIN_NAMES if names else OpaqueNames(state.metrics_key)
    return prometheus_text(focus, getattr(state.services, "mixers", None), labels)


def _scraper(request: Request, state: WebState) -> bool | None:
    """True for the scrape token, False without Authorization, None for anything else."""
    if "authorization" not in request.headers:
        return False
    token, expected = bearer_token(request), state.metrics_token
    if token is None or expected is None:
        return None
    return hmac.compare_digest(token.encode(), expected.encode()) or None


async def metrics(request: Request) -> Response:
    state = web_state(request)
    names = _scraper(request, state)
    if names is None:
        detail = "GET /metrics takes the scrape token (web.metrics_token_file) or no token"
        return JSONResponse({"error": "unauthorized", "detail": detail}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="mrf-metrics"'})  # fmt: skip
    conferences = await run_in_threadpool(state.store.count_conferences)
    accounts = await run_in_threadpool(state.store.count_accounts)
    return Response(render(state, conferences, accounts, names=names), media_type=CONTENT_TYPE)
