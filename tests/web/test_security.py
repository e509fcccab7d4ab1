"""Security of the web UI and API: XSS, CSRF, ownership, throttling, cookies, headers."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from focus.store import ConferenceStore
from web.app import CSP

from .conftest import PASSWORD, FakeServices, csrf_of, sign_in

Auth = Callable[[str], dict[str, str]]
XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "javascript:alert(1)",
    "x'onmouseover=alert(1)",
]


def assert_escaped(payload: str, page: str) -> None:
    if any(c in payload for c in "<>\"'"):
        assert payload not in page
    assert 'href="javascript' not in page and "<script>alert" not in page


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_are_escaped_in_every_field(
    client: TestClient, services: FakeServices, store: ConferenceStore, payload: str
) -> None:
    """Payloads in the SIP user part (valid URIs), names, and roster entries."""
    owner = store.get_account("alice")
    assert owner is not None
    safe = "'=()"
    uri = f"sip:{quote(payload, safe=safe)}@127.0.0.1"  # as a valid SIP URI
    info = store.create_conference("xss", [(uri, "chair")], owner_id=owner.id)
    store.update_policy("xss", chair_uri=uri)
    services.focus.rosters["xss"] = [
        {
            "uri": payload,
            "role": payload,
            "state": payload,
            "joined_by": "dial-in",
            "reason": None,
            "media": [{"type": payload, "key_mode": payload, "packets_in": 1, "packets_out": 1}],
        }
    ]
    services.focus.refused["xss"] = [
        {"uri": payload, "reason": payload, "status": 403, "at": payload}
    ]  # what a hostile caller can put in From reaches the refusals panel
    from .test_api import _FakeRelay

    relay = services.focus.chat = _FakeRelay()  # type: ignore[attr-defined]
    relay.messages = [{"from": payload, "nickname": payload, "to": payload, "text": payload,
                       "private": False, "at": payload}]  # fmt: skip
    csrf = sign_in(client, "alice")
    page = client.get(f"/conferences/{info.id}").text
    assert_escaped(payload, page)
    assert "<img src=x" not in page and "<svg" not in page
    assert page.count(str(escape(payload))) >= 9, "the roster, refusal and chat fields, escaped"
    # form fields echoed back after an error are escaped too
    echo = client.post("/conferences", data={"csrf_token": csrf, "name": payload})
    assert echo.history[0].status_code == 303 and "field-error" in echo.text
    assert_escaped(payload, echo.text)
    typed = client.post(
        f"/conferences/{info.id}/participants",
        data={"csrf_token": csrf, "uri": payload, "role": payload},
    )
    assert "field-error" in typed.text
    assert_escaped(payload, typed.text)
    added = client.post(
        f"/conferences/{info.id}/participants",
        data={"csrf_token": csrf, "uri": payload, "role": "participant"},
    )
    assert added.status_code in (200, 303, 422)
    assert_escaped(payload, client.get(f"/conferences/{info.id}").text)
    login = TestClient(client.app, base_url="http://127.0.0.1")
    page = login.get("/login")
    wrong = login.post(
        "/login", data={"csrf_token": csrf_of(page.text), "name": payload, "password": "x" * 8}
    )
    assert wrong.history[0].status_code == 303 and "Wrong account name" in wrong.text
    assert_escaped(payload, wrong.text)


def test_form_posts_without_or_with_a_wrong_csrf_token_are_refused(
    client: TestClient, store: ConferenceStore
) -> None:
    csrf = sign_in(client, "alice")
    for data in ({"name": "nocsrf"}, {"name": "badcsrf", "csrf_token": csrf[:-2] + "xx"}):
        response = client.post("/conferences", data=data)
        assert response.status_code == 403, data
    assert store.list_conferences() == []
    fresh = TestClient(client.app, base_url="http://127.0.0.1")
    refused = fresh.post("/login", data={"name": "alice", "password": PASSWORD})
    assert refused.status_code == 403, "even the sign-in form needs its token"
    ok = client.post(
        "/conferences", data={"name": "withcsrf", "csrf_token": csrf}, follow_redirects=False
    )
    assert ok.status_code == 303


def test_creators_see_and_change_only_their_own_conferences(
    client: TestClient, token: Auth, services: FakeServices
) -> None:
    bob = token("bob")
    conf = client.post("/api/conferences", json={"name": "bobs"}, headers=bob).json()
    alice = token("alice")
    base = f"/api/conferences/{conf['id']}"
    assert client.get("/api/conferences", headers=alice).json() == {"conferences": []}
    requests = [
        ("GET", base, None),
        ("PATCH", base, {"policy": {"allow_anonymous": True}}),
        ("DELETE", base, None),
        ("PUT", f"{base}/participants", {"participants": []}),
        ("POST", f"{base}/dial-out", {"uri": "sip:a@b"}),
        ("GET", f"{base}/roster", None),
        ("PATCH", f"{base}/roster", {"muted": True}),
        ("DELETE", f"{base}/roster/c1", None),
        ("GET", f"{base}/refusals", None),
        ("GET", f"{base}/chat", None),
        ("POST", f"{base}/chat", {"text": "as bob"}),
        ("GET", f"{base}/floors", None),
        ("POST", f"{base}/floors/1/requests/1", {"action": "grant"}),
    ]
    for method, url, body in requests:
        response = client.request(method, url, json=body, headers=alice)
        assert response.status_code == 404, (method, url, response.text)
    assert services.focus.applied == [], "nothing of bob's was touched"
    # through the UI as well
    csrf = sign_in(client, "alice")
    assert client.get(f"/conferences/{conf['id']}").status_code == 404
    assert "bobs" not in client.get("/conferences").text
    for action in ("policy", "participants", "participants/remove", "call", "delete", "lock",
                   "chat"):  # fmt: skip
        response = client.post(
            f"/conferences/{conf['id']}/{action}", data={"csrf_token": csrf, "uri": "sip:a@b"}
        )
        assert response.status_code == 404, action
    assert client.get(f"/conferences/{conf['id']}/events").status_code == 404
    # an administrator sees everything
    root = client.get("/api/conferences", headers=token("root")).json()["conferences"]
    assert [c["name"] for c in root] == ["bobs"]


def test_ten_wrong_passwords_throttle_sign_in(client: TestClient) -> None:
    page = client.get("/login")
    csrf = csrf_of(page.text)
    for attempt in range(10):
        wrong = client.post(
            "/login",
            data={"csrf_token": csrf, "name": "alice", "password": f"wrong-{attempt}"},
            follow_redirects=False,
        )
        assert wrong.status_code == 303, attempt
    throttled = client.post(
        "/login", data={"csrf_token": csrf, "name": "alice", "password": PASSWORD}
    )
    assert throttled.status_code == 429, "the right password is refused while throttled"
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in throttled.text
    assert client.get("/api/conferences").status_code == 401
    metrics = client.get("/metrics").text
    assert 'mrf_logins_total{result="throttled"} 1' in metrics.splitlines()


def test_session_cookie_attributes_and_logout(client: TestClient) -> None:
    page = client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    before = client.cookies.get("mrf_session")
    response = client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "name": "alice", "password": PASSWORD},
        follow_redirects=False,
    )
    assert client.cookies.get("mrf_session") != before, "a new session id on sign-in"
    assert "httponly" in response.headers["set-cookie"].lower()
    csrf = csrf_of(client.get("/conferences").text)
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/conferences", follow_redirects=False).headers["location"] == "/login"
    https = TestClient(client.app, base_url="https://127.0.0.1")
    assert "secure" in https.get("/login").headers["set-cookie"].lower()


def test_security_headers_everywhere(client: TestClient) -> None:
    sign_in(client, "alice")
    for path in ("/login", "/conferences", "/api/conferences", "/api/health", "/nowhere"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CSP, path
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store", path
    assert "no-store" not in client.get("/static/style.css").headers.get("cache-control", "")


def test_the_control_room_actions_need_the_csrf_token(
    client: TestClient, store: ConferenceStore, services: FakeServices
) -> None:
    """Lock (a form) and mute all / hang up (API with the session cookie) without a token."""
    owner = store.get_account("alice")
    assert owner is not None
    info = store.create_conference("room", owner_id=owner.id)
    csrf = sign_in(client, "alice")
    refused = client.post(f"/conferences/{info.id}/lock", data={"locked": "yes"})
    assert refused.status_code == 403
    assert store.get_conference("room").policy.locked is False  # type: ignore[union-attr]
    api = f"/api/conferences/{info.id}/roster"
    assert client.patch(api, json={"muted": True}).status_code == 403
    assert client.delete(f"{api}/c1").status_code == 403
    assert services.focus.hung_up == []
    done = client.post(f"/conferences/{info.id}/lock", data={"locked": "yes", "csrf_token": csrf})
    assert "Locked" in done.text and store.get_conference("room").policy.locked is True  # type: ignore[union-attr]
    ok = client.patch(api, json={"muted": True}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_account_forms_need_the_csrf_token_and_guesses_are_throttled(
    client: TestClient, store: ConferenceStore
) -> None:
    csrf = sign_in(client, "alice")
    for path, data in (
        ("/account/password", {"current": PASSWORD, "new": "x" * 12, "repeat": "x" * 12}),
        ("/account/tokens", {}),
        ("/account/tokens/revoke", {"token_id": "1"}),
    ):
        assert client.post(path, data=data).status_code == 403, path
    mallory = {"name": "mallory", "password": "x" * 12}
    admin_forms = (
        ("/admin/accounts/create", mallory),
        ("/admin/accounts/password", {"name": "bob", "password": "x" * 12}),
        ("/admin/accounts/disable", {"name": "bob", "disabled": "yes"}),
        ("/admin/accounts/sip-uri", {"name": "bob", "sip_uri": "sip:mallory@example.com"}),
    )
    for path, data in admin_forms:  # 404 for a creator, even with the token
        assert client.post(path, data={**data, "csrf_token": csrf}).status_code == 404, path
    root = TestClient(client.app, base_url="http://127.0.0.1")
    sign_in(root, "root")
    for path, data in admin_forms:  # 403 for an administrator without it
        assert root.post(path, data=data).status_code == 403, path
    assert store.get_account("mallory") is None
    bob = store.get_account("bob")
    assert bob is not None and not bob.disabled and bob.sip_uri is None
    assert store.authenticate("bob", PASSWORD) is not None
    assert store.authenticate("alice", PASSWORD) is not None and store.list_tokens("alice") == []
    for attempt in range(10):  # guessing the current password counts as failed sign-ins
        client.post("/account/password", data={"csrf_token": csrf, "current": f"guess-{attempt}",
                                                "new": "x" * 12, "repeat": "x" * 12})  # fmt: skip
    throttled = client.post("/account/password", data={
        "csrf_token": csrf, "current": PASSWORD, "new": "x" * 12, "repeat": "x" * 12})  # fmt: skip
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert store.authenticate("alice", PASSWORD) is not None, "not changed while throttled"
