"""The web UI and REST API refuse forged and foreign requests (README "Web UI and REST API").

Over HTTP to the running server's web port.  CSRF: ana is signed in (session
cookie); a form post without or with a wrong ``csrf_token``, and an API change
with the cookie but no ``X-CSRF-Token``, try to open ``room`` to anonymous
callers without media security.  Each gets 403 and the policy stays as it
was; the same session with its token still works.  Cross-account: ben (a
creator) reads or edits ana's conference; the API answers 404 (interfaces.md:
errors are ``{"error", "detail"}``; README: "Creators see only their own
conferences (others are 404)") and nothing of ana's changes.
"""

from __future__ import annotations

import secrets

import pytest

from tests.security.rig import PASSWORD, SecurityServer
from tests.security.table import RefusalLog
from tests.security.web_probe import WebClient, WebResponse

FORGED_POLICY = {"allow_anonymous": "on", "key_modes": "sdes", "notify_protection": "optional"}


def _conference(server: SecurityServer) -> dict[str, object]:
    api = WebClient(server.web, token=server.ana_token)
    found = api.request("GET", f"/api/conferences/{server.room_id}")
    assert found.status == 200, found.text
    return dict(found.json())


def _forge(server: SecurityServer, browser: WebClient, csrf: str, variant: str) -> WebResponse:
    path = f"/conferences/{server.room_id}/policy"
    if variant == "form-without-token":
        return browser.request("POST", path, form=FORGED_POLICY)
    if variant == "form-wrong-token":
        return browser.request("POST", path, form={**FORGED_POLICY, "csrf_token": csrf[::-1]})
    return browser.request("PATCH", f"/api/conferences/{server.room_id}",
                           json_body={"policy": {"allow_anonymous": True}})  # fmt: skip


@pytest.mark.parametrize(
    ("variant", "tried"),
    [
        ("form-without-token", "policy form POST (allow anonymous, no media security), no token"),
        ("form-wrong-token", "the same form POST with a wrong csrf_token"),
        (
            "api-without-header",
            "PATCH /api/conferences/{id} with the session cookie, no X-CSRF-Token",
        ),
    ],  # fmt: skip
    ids=["form-without-token", "form-wrong-token", "api-without-header"],
)
def test_csrf_is_refused(
    security_server: SecurityServer, refusal: RefusalLog, variant: str, tried: str
) -> None:
    server = security_server
    before = _conference(server)
    browser = WebClient(server.web)
    csrf = browser.sign_in("ana", PASSWORD)
    forged = _forge(server, browser, csrf, variant)
    after = _conference(server)
    # the control: the same session with its token creates (and the API deletes) a conference
    name = f"csrf-ok-{secrets.token_hex(3)}"
    created = browser.request("POST", "/conferences", form={"csrf_token": csrf, "name": name})
    api = WebClient(server.web, token=server.ana_token)
    mine = [c for c in api.request("GET", "/api/conferences").json()["conferences"]
            if c["name"] == name]  # fmt: skip
    removed = api.request("DELETE", f"/api/conferences/{mine[0]['id']}") if mine else None
    detail = forged.json()["error"] if variant.startswith("api") else "error page"
    unchanged = after["policy"] == before["policy"]
    refusal.record(
        "CSRF",
        tried,
        f"HTTP {forged.status} ({detail}), policy unchanged: {unchanged}; "
        f"the session with its token: HTTP {created.status}",
    )
    assert forged.status == 403, (forged.status, forged.text[:300])
    if variant.startswith("api"):
        assert forged.json()["error"] == "csrf", forged.text
    assert after["policy"] == before["policy"] and after["policy"]["allow_anonymous"] is False
    assert created.status == 303 and mine and removed is not None and removed.status == 204


@pytest.mark.parametrize("action", ["read", "edit"])
def test_cross_account_access_is_404(
    security_server: SecurityServer, refusal: RefusalLog, action: str
) -> None:
    server = security_server
    before = _conference(server)
    ben = WebClient(server.web, token=server.ben_token)
    base = f"/api/conferences/{server.room_id}"
    if action == "read":
        requests: list[tuple[str, str, object]] = [("GET", base, None),
                                                   ("GET", f"{base}/roster", None)]  # fmt: skip
    else:
        requests = [
            ("PATCH", base, {"policy": {"allow_anonymous": True}}),
            ("PUT", f"{base}/participants", {"participants": [{"uri": "sip:ben@127.0.0.1"}]}),
            ("POST", f"{base}/dial-out", {"uri": "sip:alice@127.0.0.1"}),
            ("DELETE", base, None),
        ]
    answers = [ben.request(method, path, json_body=body) for method, path, body in requests]
    listed = ben.request("GET", "/api/conferences").json()["conferences"]
    page_status = None
    if action == "read":  # and through the pages, signed in as ben
        browser = WebClient(server.web)
        browser.sign_in("ben", PASSWORD)
        page_status = browser.request("GET", f"/conferences/{server.room_id}").status
    after = _conference(server)
    statuses = [a.status for a in answers]
    errors = {a.json().get("error") for a in answers if a.body.startswith(b"{")}
    tried = ", ".join(f"{method} …{path[len(base) :]}" for method, path, _ in requests)
    page = f", page {page_status}" if page_status else ""
    refusal.record(
        "cross-account API access",
        f"ben's token on ana's /api/conferences/{{id}}…: {tried}",
        f"HTTP {'/'.join(map(str, statuses))} {', '.join(sorted(map(str, errors)))}{page}; "
        f"ana's conference unchanged: {after == before}",
    )
    assert statuses == [404] * len(requests), [(a.status, a.text[:200]) for a in answers]
    assert errors == {"not_found"}
    assert [c for c in listed if c["id"] == server.room_id] == []
    assert page_status in (None, 404)
    assert after == before, "ben changed ana's conference"
