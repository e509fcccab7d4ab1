"""Dial-out outcomes on the roster, through the REST API and the web page.

The whole ``mrf serve`` composition runs in the test's loop (``mrf.server.start``)
with its web listener; everything the test does goes through HTTP like an
operator would: an admin bearer token creates the conference, authorizes the
callee and ``POST``\\ s three dial-outs to real sipp UAS peers (486 Busy Here,
603 Decline, and one that rings forever); ``GET .../roster`` then shows each as
``failed`` with the SIP status as ``reason`` (the ringing one ``ringing`` first,
then ``408 ring timeout`` after ``sip.ring_timeout`` and our CANCEL), and the
conference page shows the same states and reasons.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mrf.server import start
from mrf.settings import load_settings
from tests.peers import SIPP_DIR

from .harness import Artifacts, BackgroundProcess, free_port, require_peer, tail

pytestmark = pytest.mark.interop

SIPP_IP = "127.0.0.5"
BOB = f"sip:bob@{SIPP_IP}"
PASSWORD = "dial-out-roster-test-password"
EXPECTED = {
    "uas_dialout_busy.xml": "486 Busy Here",
    "uas_dialout_decline.xml": "603 Decline",
    "uas_dialout_ring.xml": "408 ring timeout",
}


class Api:
    """A tiny JSON client (stdlib only) with a bearer token or a session cookie."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base, token
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def call(self, method: str, path: str, body: object = None, form: dict[str, str] | None = None
             ) -> tuple[int, Any]:  # fmt: skip
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with self.opener.open(request, timeout=10) as response:
                status, raw = response.status, response.read()
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in kind else raw.decode()


def _sipp_uas(artifacts: Artifacts, scenario: str, port: int) -> BackgroundProcess:
    argv = [require_peer("sipp"), "-sf", str(SIPP_DIR / scenario), "-i", SIPP_IP, "-p", str(port),
            "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error", "-trace_logs",
            "-log_file", str(artifacts.path(f"{scenario}.log"))]  # fmt: skip
    return BackgroundProcess(argv, artifacts.path(f"{scenario}.out"))


def test_ring_timeout_486_and_603_on_the_rest_roster_and_the_page(
    tmp_path: Path, artifacts: Artifacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRF_ADMIN_PASSWORD", PASSWORD)  # the first admin (mrf.webserver)
    low = 27000 + (free_port() % 40) * 20
    config = tmp_path / "mrf.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\n[sip]\nport = 0\ntls_port = 0\nring_timeout = 2.0\n'
        f"[media]\nrtp_ports = [{low}, {low + 19}]\n[msrp]\nport = 0\n[bfcp]\nport = 0\n"
        '[web]\nhost = "127.0.0.1"\nport = 0\n'
    )
    ports = {scenario: free_port(SIPP_IP) for scenario in EXPECTED}
    peers = [_sipp_uas(artifacts, scenario, port) for scenario, port in ports.items()]

    async def main() -> None:
        server = await start(load_settings(config, environ={}))
        try:
            assert server.web is not None
            base = f"http://127.0.0.1:{server.web.port}"
            async with asyncio.timeout(60):
                await _scenario(server, base, ports)
        finally:
            await server.close()

    try:
        asyncio.run(main())
        for peer, scenario in zip(peers, EXPECTED, strict=True):
            assert peer.wait(10) == 0, tail(artifacts.path(f"{scenario}.log"), 40)
    finally:
        for peer in peers:
            peer.stop(grace=2)


async def _scenario(server: Any, base: str, ports: dict[str, int]) -> None:
    token = server.store.create_token("admin")
    api = Api(base, token)
    status, conference = await asyncio.to_thread(api.call, "POST", "/api/conferences",
                                                 {"name": "conf1"})  # fmt: skip
    assert status == 201, conference
    cid = conference["id"]
    body = {"participants": [{"uri": BOB, "role": "participant"}]}
    status, _ = await asyncio.to_thread(api.call, "PUT", f"/api/conferences/{cid}/participants",
                                        body)  # fmt: skip
    assert status == 200
    for port in ports.values():
        status, placed = await asyncio.to_thread(
            api.call, "POST", f"/api/conferences/{cid}/dial-out", {"uri": f"{BOB}:{port}"}
        )
        assert status == 202, placed
        assert placed["participant"]["state"] in ("dialing", "ringing", "failed"), placed
    seen: dict[str, set[str]] = {}
    deadline = time.monotonic() + 15
    while True:
        status, roster = await asyncio.to_thread(api.call, "GET", f"/api/conferences/{cid}/roster")
        assert status == 200 and roster["conference"] == conference["uri"]
        for entry in roster["participants"]:
            seen.setdefault(entry["call_id"], set()).add(entry["state"])
        reasons = sorted(e["reason"] or "" for e in roster["participants"])
        if all(e["state"] == "failed" for e in roster["participants"]) and len(reasons) == 3:
            break
        assert time.monotonic() < deadline, roster
        await asyncio.sleep(0.1)
    assert reasons == sorted(EXPECTED.values()), roster
    for entry in roster["participants"]:
        assert (entry["uri"], entry["joined_by"], entry["media"]) == (BOB, "dial-out", [])
    ringing = next(e for e in roster["participants"] if e["reason"] == "408 ring timeout")
    assert "ringing" in seen[ringing["call_id"]], seen  # the 180 showed before the CANCEL
    await _page_shows_reasons(base, cid)


async def _page_shows_reasons(base: str, cid: int) -> None:
    """The conference page (signed in as the admin) lists each failure with its reason."""
    browser = Api(base)
    _, login = await asyncio.to_thread(browser.call, "GET", "/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert csrf, login
    form = {"csrf_token": csrf.group(1), "name": "admin", "password": PASSWORD}
    status, _ = await asyncio.to_thread(browser.call, "POST", "/login", None, form)
    assert status == 200  # the 303 to /conferences, followed
    status, page = await asyncio.to_thread(browser.call, "GET", f"/conferences/{cid}")
    assert status == 200
    for reason in EXPECTED.values():
        assert f"failed · {reason}" in page, page
