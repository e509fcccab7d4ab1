"""web.api: the REST API of the interfaces contract, its errors, and live policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from focus.store import ConferenceStore
from mrf.settings import Settings, WebSettings
from web import create_app

from .conftest import FakeDialOut, FakeServices, sign_in

Auth = Callable[[str], dict[str, str]]
ALICE_URI = "sip:alice@127.0.0.1"


def create(client: TestClient, headers: dict[str, str], name: str = "retro", **body: object):
    response = client.post("/api/conferences", json={"name": name, **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_read_list_delete(client: TestClient, token: Auth, services: FakeServices) -> None:
    alice = token("alice")
    created = create(
        client,
        alice,
        policy={"allow_anonymous": True},
        participants=[{"uri": ALICE_URI, "role": "chair", "use_mikey": True}],
    )
    assert created["uri"] == "sip:retro@127.0.0.1"
    assert created["policy"]["allow_anonymous"] is True
    assert created["participants"] == [{"uri": ALICE_URI, "role": "chair", "use_mikey": True}]
    one = client.get(f"/api/conferences/{created['id']}", headers=alice)
    assert one.status_code == 200 and one.json() == created
    listed = client.get("/api/conferences", headers=alice).json()["conferences"]
    assert [c["name"] for c in listed] == ["retro"]
    gone = client.delete(f"/api/conferences/{created['id']}", headers=alice)
    assert gone.status_code == 204
    assert services.focus.applied == ["retro"], "deleting disconnects everyone (apply_policy)"
    assert client.get(f"/api/conferences/{created['id']}", headers=alice).status_code == 404


def test_patch_and_put_apply_the_policy_live(
    client: TestClient, token: Auth, services: FakeServices
) -> None:
    alice = token("alice")
    conf = create(client, alice, participants=[{"uri": ALICE_URI}, {"uri": "sip:b@x"}])
    url = f"/api/conferences/{conf['id']}"
    every_mode = ["sdes", "mikey-ticket", "dtls", "fingerprint"]
    assert conf["policy"]["key_modes"] == every_mode, "no key_modes in the body: every mode"
    patched = client.patch(url, json={"policy": {"key_modes": ["sdes"]}}, headers=alice)
    assert patched.status_code == 200 and patched.json()["policy"]["key_modes"] == ["sdes"]
    put = client.put(
        f"{url}/participants", json={"participants": [{"uri": ALICE_URI}]}, headers=alice
    )
    assert put.status_code == 200
    assert [p["uri"] for p in put.json()["participants"]] == [ALICE_URI]
    assert services.focus.applied == ["retro", "retro"]


def test_roster_comes_from_the_focus(client: TestClient, token: Auth, services: FakeServices):
    alice = token("alice")
    conf = create(client, alice)
    entry = {
        "uri": ALICE_URI,
        "role": "participant",
        "state": "connected",
        "joined_by": "dial-in",
        "reason": None,
        "media": [{"type": "audio", "key_mode": "sdes", "packets_in": 5, "packets_out": 4}],
    }
    services.focus.rosters["retro"] = [entry]
    roster = client.get(f"/api/conferences/{conf['id']}/roster", headers=alice)
    extended = {**entry, "nickname": None, "talking": False}  # what the focus did not say
    assert roster.json() == {
        "conference": "sip:retro@127.0.0.1",
        "participants": [extended],
        "floors": [],
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Bad Name"}, 422, "invalid_input"),
        ({"name": "ok", "extra": 1}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
        ({"name": "ok", "policy": {"key_modes": []}}, 422, "invalid_input"),
        ({"name": "ok", "policy": {"allow_anonymous": "yes"}}, 422, "invalid_input"),
        ({"name": "ok", "policy": {"nope": 1}}, 422, "invalid_input"),
        ({"name": "ok", "policy": []}, 422, "invalid_input"),
        ({"name": "ok", "participants": [{"uri": "http://x"}]}, 422, "invalid_input"),
        (
            {"name": "ok", "participants": [{"uri": "sip:a@x"}, {"uri": "sip:a@x"}]},
            422,
            "invalid_input",
        ),
        (
            {"name": "ok", "participants": [{"uri": "sip:a@x", "role": "king"}]},
            422,
            "invalid_input",
        ),
        ({"name": "ok", "participants": "sip:a@x"}, 422, "invalid_input"),
        ({"name": 5}, 422, "invalid_input"),
    ],
)
def test_invalid_input_is_a_clear_422(
    client: TestClient, token: Auth, body: dict[str, object], status: int, code: str
) -> None:
    response = client.post("/api/conferences", json=body, headers=token("alice"))
    assert response.status_code == status, response.text
    assert response.json()["error"] == code and response.json()["detail"]


def test_malformed_bodies(client: TestClient, token: Auth) -> None:
    alice = token("alice")
    headers = {**alice, "Content-Type": "application/json"}
    assert client.post("/api/conferences", content=b"{", headers=headers).status_code == 400
    assert client.post("/api/conferences", content=b"[1]", headers=headers).status_code == 422
    deep = b"[" * 100_000
    assert client.post("/api/conferences", content=deep, headers=headers).status_code == 413
    nested = b"[" * 20_000 + b"]" * 20_000
    assert client.post("/api/conferences", content=nested, headers=headers).status_code == 400
    plain = client.post("/api/conferences", content=b"name=x", headers=alice)
    assert plain.status_code == 415 and plain.json()["error"] == "unsupported_media_type"
    assert client.post("/api/conferences", content=b"\xff", headers=headers).status_code == 400


def test_conflict_unknown_and_unauthenticated(client: TestClient, token: Auth) -> None:
    alice = token("alice")
    create(client, alice)
    again = client.post("/api/conferences", json={"name": "retro"}, headers=alice)
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    for path in (
        "/api/conferences/999",
        "/api/conferences/99999999999999999999",
        "/api/conferences/abc",
        "/api/nothing",
    ):
        response = client.get(path, headers=alice)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    anonymous = client.get("/api/conferences")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    bad = client.get("/api/conferences", headers={"Authorization": "Bearer mrf_nope"})
    assert bad.status_code == 401
    wrong_method = client.put("/api/conferences", headers=alice)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


def test_dial_out_without_a_dialer_is_an_honest_501(client: TestClient, token: Auth) -> None:
    alice = token("alice")
    conf = create(client, alice, participants=[{"uri": ALICE_URI}])
    response = client.post(
        f"/api/conferences/{conf['id']}/dial-out", json={"uri": ALICE_URI}, headers=alice
    )
    assert response.status_code == 501
    assert response.json() == {
        "error": "not_implemented",
        "detail": "dial-out is not available in this server (no focus.dialout)",
    }


def test_dial_out_through_the_focus(
    client: TestClient, token: Auth, services: FakeServices, store: ConferenceStore
) -> None:
    services.focus.dialout = FakeDialOut(store)
    alice = token("alice")
    conf = create(client, alice, participants=[{"uri": ALICE_URI}])
    url = f"/api/conferences/{conf['id']}/dial-out"
    started = client.post(url, json={"uri": ALICE_URI}, headers=alice)
    assert started.status_code == 202
    assert started.json()["participant"]["state"] == "dialing"
    assert services.focus.dialout.started == [("retro", ALICE_URI)]
    refused = client.post(url, json={"uri": "sip:eve@127.0.0.1"}, headers=alice)
    assert refused.status_code == 403 and refused.json()["error"] == "not_authorized"
    assert client.post(url, json={"uri": 7}, headers=alice).status_code == 422


def test_session_cookie_works_for_the_api_with_a_csrf_header(client: TestClient) -> None:
    csrf = sign_in(client, "alice")
    assert client.get("/api/conferences").status_code == 200
    refused = client.post("/api/conferences", json={"name": "x1"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf"
    ok = client.post("/api/conferences", json={"name": "x1"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201


def test_health_and_metrics(client: TestClient, services: FakeServices, token: Auth) -> None:
    assert client.get("/api/health").json() == {
        "status": "ok",
        "listeners": {
            "sip-udp": True,
            "sip-tcp": True,
            "sip-tls": True,
            "media": True,
            "web": True,
        },
    }
    services.up["sip-tls"] = False
    down = client.get("/api/health")
    assert down.status_code == 503 and down.json()["status"] == "degraded"
    create(client, token("alice"))
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    assert "mrf_conferences 1" in lines and "mrf_accounts 3" in lines
    assert 'mrf_http_responses_total{status="201"} 1' in lines
    assert "# TYPE mrf_srtp_packets gauge" in lines


def test_metrics_name_people_only_for_the_scrape_token(
    services: FakeServices, tmp_path: Path
) -> None:
    """interfaces.md: without ``Authorization: Bearer <token>`` no conference or
    participant is named; the scrape token (``web.metrics_token_file``) names them."""
    token_file = tmp_path / "scrape.token"
    token_file.write_text("s" * 40)
    settings = Settings(web=WebSettings(metrics_token_file=token_file))
    stream = SimpleNamespace(packets_in=3, packets_out=2, packets_lost=0, jitter_ms=0.0,
                             auth_failures=0, replays=0)  # fmt: skip
    services.focus.calls = [SimpleNamespace(
        conference=SimpleNamespace(name="secret-room"), participant=ALICE_URI,
        call_id="call-1", streams={0: stream}, roster_entry=dict,
    )]  # fmt: skip
    with TestClient(create_app(settings, services), base_url="http://127.0.0.1") as client:
        anonymous = client.get("/metrics")
        named = client.get("/metrics", headers={"Authorization": "Bearer " + "s" * 40})
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 40})
        basic = client.get("/metrics", headers={"Authorization": "Basic YTpi"})
    assert anonymous.status_code == 200
    assert "mrf_rtp_packets_received_total{" in anonymous.text
    assert "secret-room" not in anonymous.text and ALICE_URI not in anonymous.text
    assert named.status_code == 200
    assert 'conference="secret-room"' in named.text and f'participant="{ALICE_URI}"' in named.text
    for refused in (wrong, basic):
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "secret-room" not in refused.text


class _LiveCall:
    """A connected participant as the focus holds it (focus.call.FocusCall's surface)."""

    def __init__(self, conference: str, call_id: str) -> None:
        self.call_id, self.muted = call_id, False
        self.conference = type("Info", (), {"name": conference})()

    def roster_entry(self) -> dict[str, object]:
        return {"uri": ALICE_URI, "role": "participant", "state": "connected",
                "joined_by": "dial-in", "reason": None, "muted": self.muted,
                "call_id": self.call_id, "media": []}  # fmt: skip


def test_mute_and_unmute_a_participant(client: TestClient, token: Auth, services: FakeServices):
    alice = token("alice")
    conf = create(client, alice)
    call = _LiveCall("retro", "c1@host")
    services.focus.calls.append(call)
    url = f"/api/conferences/{conf['id']}/roster/c1@host"
    muted = client.patch(url, json={"muted": True}, headers=alice)
    assert muted.status_code == 200 and muted.json()["muted"] is True and call.muted
    unmuted = client.patch(url, json={"muted": False}, headers=alice)
    assert unmuted.json()["muted"] is False and not call.muted
    assert client.patch(url, json={"muted": "yes"}, headers=alice).status_code == 422
    assert client.patch(url, json={"deaf": True}, headers=alice).status_code in (400, 422)
    missing = client.patch(url.replace("c1@host", "nobody"), json={"muted": True}, headers=alice)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    other = _LiveCall("elsewhere", "c2@host")
    services.focus.calls.append(other)
    wrong = client.patch(url.replace("c1@host", "c2@host"), json={"muted": True}, headers=alice)
    assert wrong.status_code == 404 and not other.muted
    bob = token("bob")
    assert client.patch(url, json={"muted": True}, headers=bob).status_code == 404


def test_chair_uri_is_the_role_of_a_listed_participant(client: TestClient, token: Auth) -> None:
    """One place for the chair: ``policy.chair_uri`` sets the role; unlisted is a 422."""
    alice = token("alice")
    unlisted = client.post(
        "/api/conferences",
        json={"name": "retro", "policy": {"chair_uri": "sip:carol@127.0.0.1"}},
        headers=alice,
    )
    assert unlisted.status_code == 422 and "not on the authorized list" in unlisted.json()["detail"]
    conf = create(client, alice, participants=[{"uri": ALICE_URI}, {"uri": "sip:b@x"}],
                  policy={"chair_uri": "<sips:b@X>"})  # fmt: skip
    assert conf["participants"][1] == {"uri": "sip:b@x", "role": "chair", "use_mikey": False}
    assert conf["policy"]["chair_uri"] == "sip:b@x"
    url = f"/api/conferences/{conf['id']}"
    patched = client.patch(url, json={"policy": {"chair_uri": ALICE_URI}}, headers=alice)
    assert patched.status_code == 200, patched.text
    roles = {p["uri"]: p["role"] for p in patched.json()["participants"]}
    assert roles == {ALICE_URI: "chair", "sip:b@x": "chair"}
    refused = client.patch(url, json={"policy": {"chair_uri": "sip:eve@x"}}, headers=alice)
    assert refused.status_code == 422
    demoted = client.put(f"{url}/participants", json={"participants": [{"uri": ALICE_URI}]},
                         headers=alice)  # fmt: skip
    assert demoted.json()["policy"]["chair_uri"] is None, "no stale chair beside the roles"


def test_mute_all_hang_up_cancel_dismiss_and_refusals(
    client: TestClient, token: Auth, services: FakeServices, store: ConferenceStore
) -> None:
    alice = token("alice")
    conf = create(client, alice, participants=[{"uri": ALICE_URI}])
    base = f"/api/conferences/{conf['id']}"
    calls = [_LiveCall("retro", "c1@host"), _LiveCall("retro", "c2@host")]
    services.focus.calls += calls
    muted = client.patch(f"{base}/roster", json={"muted": True}, headers=alice)
    assert muted.status_code == 200 and all(c.muted for c in calls)
    assert all(p["muted"] for p in muted.json()["participants"])
    assert client.patch(f"{base}/roster", json={"muted": 1}, headers=alice).status_code == 422
    client.patch(f"{base}/roster", json={"muted": False}, headers=alice)
    assert not any(c.muted for c in calls)
    # Hang up keeps the authorization: a BYE, the list untouched
    ended = client.delete(f"{base}/roster/c1@host", headers=alice)
    assert ended.status_code == 200 and ended.json() == {"action": "hung-up"}
    assert services.focus.hung_up == ["c1@host"] and services.focus.applied == []
    assert store.get_conference("retro").authorized() == {ALICE_URI: "participant"}  # type: ignore[union-attr]
    services.focus.dialout = FakeDialOut(store)
    services.focus.rosters["retro"] = [
        {"uri": ALICE_URI, "role": "participant", "state": "ringing", "joined_by": "dial-out",
         "reason": None, "call_id": "d1", "media": []},
        {"uri": ALICE_URI, "role": "participant", "state": "failed", "joined_by": "dial-out",
         "reason": "486 Busy Here", "call_id": "d2", "media": []},
    ]  # fmt: skip
    cancel = client.delete(f"{base}/roster/d1", headers=alice)
    assert cancel.json() == {"action": "cancelled"} and services.focus.dialout.cancelled == ["d1"]
    dismiss = client.delete(f"{base}/roster/d2", headers=alice)
    assert dismiss.json() == {"action": "dismissed"}
    assert services.focus.dialout.dismissed == ["d2"]
    assert client.delete(f"{base}/roster/nobody", headers=alice).status_code == 404
    services.focus.calls.append(_LiveCall("elsewhere", "c9@host"))
    assert client.delete(f"{base}/roster/c9@host", headers=alice).status_code == 404
    assert "c9@host" not in services.focus.hung_up
    # refusals, newest first, as the focus keeps them
    eve = {"uri": "sip:eve@127.0.0.1", "reason": "the identity in From is not on the "
           "authorized list", "status": 403, "at": "2026-12-07T23:00:00+00:00"}  # fmt: skip
    services.focus.refused["retro"] = [eve]
    assert client.get(f"{base}/refusals", headers=alice).json() == [eve]
    # the lock is a policy field
    locked = client.patch(base, json={"policy": {"locked": True}}, headers=alice)
    assert locked.status_code == 200 and locked.json()["policy"]["locked"] is True
    assert services.focus.applied == ["retro"], "applied live (the NOTIFY says locked)"
    bob = token("bob")
    for method, path, body in (("PATCH", f"{base}/roster", {"muted": True}),
                               ("DELETE", f"{base}/roster/c2@host", None),
                               ("GET", f"{base}/refusals", None)):  # fmt: skip
        assert client.request(method, path, json=body, headers=bob).status_code == 404
    assert services.focus.hung_up == ["c1@host"] and not calls[1].muted


class _FakeFloor:
    """mrf.floor.FloorControl's floors()/decide() surface, with one pending request."""

    def __init__(self) -> None:
        self.decided: list[tuple[str, int, int, bool]] = []
        self.queue = [{"request_id": 7, "uri": ALICE_URI, "status": "pending"}]

    def floors(self, conference: str) -> list[dict[str, object]]:
        return [{"floor_id": 1, "holder": "sip:b@x", "queue": list(self.queue)}]

    def decide(self, conference: str, floor_id: int, request_id: int, grant: bool) -> bool:
        if (floor_id, request_id) != (1, 7) or not self.queue:
            return False
        self.decided.append((conference, floor_id, request_id, grant))
        self.queue = []
        return True


def test_floors_and_the_owners_grant_or_deny(
    client: TestClient, token: Auth, services: FakeServices
) -> None:
    alice = token("alice")
    conf = create(client, alice)
    base = f"/api/conferences/{conf['id']}"
    assert client.get(f"{base}/floors", headers=alice).json() == [], "no BFCP: no floors"
    floor = services.focus.floor = _FakeFloor()  # type: ignore[attr-defined]
    listed = client.get(f"{base}/floors", headers=alice).json()
    assert listed == [{"floor_id": 1, "holder": "sip:b@x", "queue": floor.queue}]
    assert client.get(f"{base}/roster", headers=alice).json()["floors"] == listed
    url = f"{base}/floors/1/requests/7"
    assert client.post(url, json={"action": "maybe"}, headers=alice).status_code == 422
    assert client.post(url, json={"action": "grant"}, headers=token("bob")).status_code == 404
    assert floor.decided == [], "only the owner (or an admin) decides"
    done = client.post(url, json={"action": "deny"}, headers=alice)
    assert done.status_code == 200 and done.json()[0]["queue"] == []
    assert floor.decided == [("retro", 1, 7, False)]
    again = client.post(url, json={"action": "grant"}, headers=token("root"))
    assert again.status_code == 404, "nothing is waiting any more"
    assert client.post(f"{base}/floors/x/requests/7", json={"action": "grant"},
                       headers=alice).status_code == 404  # fmt: skip


class _FakeRelay:
    """mrf.chat.ChatRelay's history()/post() surface."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []
        self.messages: list[dict[str, object]] = [
            {"from": ALICE_URI, "nickname": "ana", "to": "sip:retro@127.0.0.1",
             "text": "hi", "private": False, "at": "2026-12-07T23:00:00+00:00"},
        ]  # fmt: skip

    def history(self, conference: str) -> list[dict[str, object]]:
        return list(self.messages)

    def post(self, conference: str, conference_uri: str, text: str) -> int:
        self.posted.append((conference, conference_uri, text))
        return 2

    def nicknames(self, conference: str) -> dict[str, str]:
        return {"c1@host": "ana"}


def test_chat_history_and_posting_as_the_conference(
    client: TestClient, token: Auth, services: FakeServices
) -> None:
    alice = token("alice")
    conf = create(client, alice)
    url = f"/api/conferences/{conf['id']}/chat"
    assert client.get(url, headers=alice).json() == []
    assert client.post(url, json={"text": "x"}, headers=alice).status_code == 501
    relay = services.focus.chat = _FakeRelay()  # type: ignore[attr-defined]
    assert client.get(url, headers=alice).json() == relay.messages
    services.focus.calls.append(_LiveCall("retro", "c1@host"))
    roster = client.get(f"/api/conferences/{conf['id']}/roster", headers=alice).json()
    assert [p["nickname"] for p in roster["participants"]] == ["ana"], "the chat nickname"
    sent = client.post(url, json={"text": " welcome "}, headers=alice)
    assert sent.status_code == 201 and sent.json() == {"sent_to": 2}
    assert relay.posted == [("retro", "sip:retro@127.0.0.1", "welcome")]
    for bad in ({"text": ""}, {"text": 5}, {"text": "x" * 1001}, {"words": "x"}):
        assert client.post(url, json=bad, headers=alice).status_code == 422, bad
    bob = token("bob")
    assert client.get(url, headers=bob).status_code == 404
    assert client.post(url, json={"text": "spoof"}, headers=bob).status_code == 404
    assert len(relay.posted) == 1
    # the page's form: post/redirect/get, CSRF-checked
    csrf = sign_in(client, "alice")
    page = f"/conferences/{conf['id']}"
    assert client.post(f"{page}/chat", data={"text": "no token"}).status_code == 403
    shown = client.post(f"{page}/chat", data={"text": "from the page", "csrf_token": csrf})
    assert "Sent to the room as the conference" in shown.text and "“ana”" in shown.text
    empty = client.post(f"{page}/chat", data={"text": "", "csrf_token": csrf})
    assert "Write the message first" in empty.text and len(relay.posted) == 2


def test_calls_that_ended_are_in_the_history_until_dismissed(
    client: TestClient, token: Auth, services: FakeServices
) -> None:
    from focus.events import ParticipantLeft

    alice = token("alice")
    conf = create(client, alice)
    base = f"/api/conferences/{conf['id']}/roster"
    for listener in list(services.focus.listeners):
        listener(ParticipantLeft("retro", "c7@host", ALICE_URI, "bye"))
        listener(ParticipantLeft("elsewhere", "c8@host", ALICE_URI, "bye"))
    (ended,) = client.get(base, headers=alice).json()["participants"]
    assert (ended["uri"], ended["state"], ended["reason"]) == (ALICE_URI, "left", "bye")
    assert ended["call_id"] == "ended-c7@host"
    assert client.delete(f"{base}/ended-c8@host", headers=alice).status_code == 404
    gone = client.delete(f"{base}/ended-c7@host", headers=alice)
    assert gone.json() == {"action": "dismissed"}
    assert client.get(base, headers=alice).json()["participants"] == []
    assert services.focus.hung_up == [], "dismissing is not hanging up"
