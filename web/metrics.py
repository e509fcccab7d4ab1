"""``GET /metrics``: Prometheus text exposition format 0.0.4, written by hand.

Counters and gauges of the focus (calls, admissions, refusals by SIP status,
SRTP packets of live streams), the store (conferences, accounts) and the web
layer (responses by HTTP status, sign-ins, throttled sign-ins, live roster
streams).  No conference or participant names: the endpoint needs no sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

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


def render(state: WebState, conferences: int, accounts: int) -> str:
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
    return "\n".join(lines) + "\n" + _media_text(state)


def _media_text(state: WebState) -> str:
    """Per-stream loss/jitter and mixer tick times (``mrf.rtp.metrics``), when serving."""
    focus = state.services.focus
    if not hasattr(focus, "calls") or not hasattr(focus.stats, "invites"):
        return ""
    from mrf.rtp.metrics import prometheus_text  # the media plane is optional here

    return prometheus_text(focus, getattr(state.services, "mixers", None))


async def metrics(request: Request) -> Response:
    state = web_state(request)
    conferences = await run_in_threadpool(state.store.count_conferences)
    accounts = await run_in_threadpool(state.store.count_accounts)
    return Response(render(state, conferences, accounts), media_type=CONTENT_TYPE)
