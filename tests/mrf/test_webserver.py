"""mrf.webserver inside mrf.server: the web listener on the server's loop, and restarts.

The restart test runs on SQLite and PostgreSQL: accounts, tokens, conferences,
policies and authorized lists written through the REST API are all there after
the server is stopped and started again on the same database.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mrf.server import Server, start
from mrf.settings import MediaSettings, Settings, SipSettings, WebSettings


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var", database_url=database_url,
        sip=SipSettings(port=0, tls_port=0), web=WebSettings(port=0),
        media=MediaSettings(rtp_ports=(31000, 31099)),
    )  # fmt: skip


def _http(
    server: Server, method: str, path: str, token: str | None = None, body: object = None
) -> tuple[int, Any]:
    assert server.web is not None
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.web.port}{path}", data=data, method=method
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def _call(server: Server, *args: Any) -> tuple[int, Any]:
    return await asyncio.to_thread(_http, server, *args)


async def _first_run(settings: Settings) -> str:
    server = await start(settings)
    try:
        status, health = await _call(server, "GET", "/api/health")
        assert status == 200 and all(health["listeners"].values()), health
        token = await asyncio.to_thread(server.store.create_token, "admin")
        body = {"name": "retro", "policy": {"allow_anonymous": True, "key_modes": ["sdes"]},
                "participants": [{"uri": "sip:ana@127.0.0.1", "role": "chair",
                                  "use_mikey": True}]}  # fmt: skip
        status, created = await _call(server, "POST", "/api/conferences", token, body)
        assert status == 201, created
        return token
    finally:
        await server.close()


async def _second_run(settings: Settings, token: str) -> None:
    server = await start(settings)
    try:
        status, listing = await _call(server, "GET", "/api/conferences", token)
        assert status == 200, listing
        (conference,) = listing["conferences"]
        assert conference["policy"]["allow_anonymous"] is True
        assert conference["policy"]["key_modes"] == ["sdes"]
        assert conference["participants"] == [
            {"uri": "sip:ana@127.0.0.1", "role": "chair", "use_mikey": True}
        ]
        assert await asyncio.to_thread(server.store.authenticate, "admin", "first-admin-pw")
    finally:
        await server.close()
    assert server.web is not None and not server.web.up


def test_restart_loses_nothing(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRF_ADMIN_PASSWORD", "first-admin-pw")
    settings = _settings(tmp_path, database_url)
    token = asyncio.run(_first_run(settings))
    asyncio.run(_second_run(settings, token))


def test_first_admin_password_is_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MRF_ADMIN_PASSWORD", raising=False)
    settings = _settings(tmp_path, f"sqlite:///{tmp_path}/mrf.db")

    async def once() -> None:
        server = await start(settings)
        await server.close()

    asyncio.run(once())
    printed = capsys.readouterr().out
    assert "first admin account 'admin' created" in printed
    password = printed.rsplit(": ", 1)[1].strip()
    asyncio.run(once())
    assert capsys.readouterr().out == "", "printed only on the first start"
    from focus.store import ConferenceStore

    with ConferenceStore(settings.database_url) as store:
        assert store.authenticate("admin", password) is not None


def test_a_taken_web_port_fails_the_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = _settings(tmp_path, f"sqlite:///{tmp_path}/mrf.db")
        settings = Settings(**{**{f: getattr(settings, f) for f in settings.__slots__},
                               "web": WebSettings(port=port)})  # fmt: skip
        with pytest.raises(OSError):
            asyncio.run(start(settings))
