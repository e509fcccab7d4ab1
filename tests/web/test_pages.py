"""web.pages without a browser: forms post, redirect, and show what they did."""

from __future__ import annotations

from starlette.testclient import TestClient

from focus.store import ConferenceStore

from .conftest import FakeDialOut, FakeServices, csrf_of, sign_in

ALICE = "sip:alice@127.0.0.1"


def _conference(store: ConferenceStore, owner: str = "alice") -> int:
    account = store.get_account(owner)
    assert account is not None
    return store.create_conference("retro", [ALICE], owner_id=account.id).id


def test_pages_redirect_to_sign_in(client: TestClient) -> None:
    for path in ("/", "/conferences", "/conferences/1"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login"


def test_create_update_role_and_mikey(
    client: TestClient, store: ConferenceStore, services: FakeServices
) -> None:
    csrf = sign_in(client, "alice")
    created = client.post("/conferences", data={"csrf_token": csrf, "name": "retro"})
    assert created.status_code == 200 and "Conference created: sip:retro@127.0.0.1" in created.text
    info = store.get_conference("retro")
    assert info is not None and info.owner_id == store.get_account("alice").id  # type: ignore[union-attr]
    assert info.policy.key_modes == ("sdes", "mikey-ticket", "dtls", "fingerprint")
    base = f"/conferences/{info.id}"
    client.post(
        f"{base}/participants", data={"csrf_token": csrf, "uri": ALICE, "role": "participant"}
    )
    page = client.post(
        f"{base}/participants/update",
        data={"csrf_token": csrf, "uri": ALICE, "role": "chair", "use_mikey": "on"},
    )
    assert f"Updated {ALICE}" in page.text
    assert store.get_conference("retro").participants[0].to_json() == {  # type: ignore[union-attr]
        "uri": ALICE,
        "role": "chair",
        "use_mikey": True,
    }
    assert services.focus.applied == ["retro", "retro"], "each change is applied live"
    bad = client.post(
        f"{base}/policy", data={"csrf_token": csrf, "notify_protection": "optional"},
        follow_redirects=False,
    )  # fmt: skip
    assert bad.status_code == 303, "a refused form redirects too (post/redirect/get)"
    shown = client.get(base).text
    assert "Tick at least one key mode" in shown and 'aria-invalid="true"' in shown
    assert "key_modes must be" not in shown, "no developer message"
    unknown = client.post(
        f"{base}/participants/remove", data={"csrf_token": csrf, "uri": "sip:x@y"}
    )
    assert unknown.status_code == 200 and "sip:x@y is not on the list" in unknown.text


def test_call_button_dials_out_or_says_why_not(
    client: TestClient, store: ConferenceStore, services: FakeServices
) -> None:
    conference_id = _conference(store)
    csrf = sign_in(client, "alice")
    url = f"/conferences/{conference_id}/call"
    unavailable = client.post(url, data={"csrf_token": csrf, "uri": ALICE})
    assert unavailable.history[0].status_code == 303
    assert "dial-out is not available" in unavailable.text
    assert 'class="error" role="alert"' in unavailable.text, "an error, in the error style"
    services.focus.dialout = FakeDialOut(store)
    placed = client.post(url, data={"csrf_token": csrf, "uri": ALICE})
    assert placed.status_code == 200 and f"Calling {ALICE}" in placed.text
    assert services.focus.dialout.started == [("retro", ALICE)]
    refused = client.post(url, data={"csrf_token": csrf, "uri": "sip:eve@127.0.0.1"})
    assert refused.history[0].status_code == 303 and "not on the authorized list" in refused.text


def test_oversized_and_malformed_forms(client: TestClient, store: ConferenceStore) -> None:
    csrf = sign_in(client, "alice")
    big = client.post("/conferences", data={"csrf_token": csrf, "name": "x" * 70_000})
    assert big.status_code == 413
    many = "&".join(f"f{i}=1" for i in range(100))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/conferences", content=many, headers=headers).status_code == 400
    assert client.post("/conferences", content=b"\xff\xfe", headers=headers).status_code == 400


def test_refused_forms_redirect_with_errors_at_their_fields_once(
    client: TestClient, store: ConferenceStore
) -> None:
    """Post/redirect/get: the error is next to its field, typed values come back, once."""
    conference_id = _conference(store)
    csrf = sign_in(client, "alice")
    base = f"/conferences/{conference_id}"
    refused = client.post(
        f"{base}/participants",
        data={"csrf_token": csrf, "uri": "bob", "role": "chair", "use_mikey": "on"},
        follow_redirects=False,
    )
    assert refused.status_code == 303 and refused.headers["location"] == f"{base}#add-title"
    page = client.get(base).text
    assert 'aria-describedby="add-uri-error add-help"' in page
    assert '<p class="field-error" id="add-uri-error">“bob” has no “@”' in page
    assert 'value="bob"' in page, "what was typed is kept"
    assert '<option value="chair" selected>' in page and 'name="use_mikey" checked' in page
    again = client.get(base).text
    assert "add-uri-error" not in again, "a reload shows the page, not the error again"
    # duplicates by AOR, and the same but for letter case, are refused
    client.post(
        f"{base}/participants",
        data={
            "csrf_token": csrf,
            "uri": "sips:Bob@Example.COM:5061;transport=tls",
            "role": "participant",
        },
    )
    stored = store.get_conference("retro")
    assert stored is not None and [e.uri for e in stored.participants] == [
        ALICE,
        "sip:Bob@example.com",
    ]
    for twice, words in (
        ("sip:Bob@example.com", "is on the list already"),
        ("SIP:bob@example.com", "only in letter case"),
    ):
        shown = client.post(
            f"{base}/participants", data={"csrf_token": csrf, "uri": twice, "role": "participant"}
        )
        assert words in shown.text, twice
    assert len(store.get_conference("retro").participants) == 2  # type: ignore[union-attr]


def test_normalised_uri_is_said_and_sign_in_failure_is_an_error(
    client: TestClient, store: ConferenceStore
) -> None:
    conference_id = _conference(store)
    csrf = sign_in(client, "alice")
    base = f"/conferences/{conference_id}"
    page = client.post(
        f"{base}/participants",
        data={"csrf_token": csrf, "uri": "sips:Carol@Example.com:5061", "role": "participant"},
    )
    said = (
        "Authorized sip:Carol@example.com as participant (saved as sip:Carol@example.com, "
        "not “sips:Carol@Example.com:5061”: sips: is stored as sip:"
    )
    assert said in page.text
    assert "the port and parameters are not part of an identity" in page.text
    assert "the host name was lower-cased" in page.text
    fresh = TestClient(client.app, base_url="http://127.0.0.1")
    form = fresh.get("/login").text
    wrong = fresh.post(
        "/login",
        data={"csrf_token": csrf_of(form), "name": "alice", "password": "nope-nope"},
        follow_redirects=False,
    )
    assert wrong.status_code == 303 and wrong.headers["location"] == "/login"
    shown = fresh.get("/login").text
    assert 'class="field-error" id="password-error">Wrong account name or password' in shown
    assert 'class="notice"' not in shown, "not in the success style"
    assert 'value="alice"' in shown and " autofocus" not in shown


def test_delete_and_removing_a_connected_participant_ask_first(
    client: TestClient, store: ConferenceStore, services: FakeServices
) -> None:
    conference_id = _conference(store)
    csrf = sign_in(client, "alice")
    base = f"/conferences/{conference_id}"
    asked = client.post(f"{base}/delete", data={"csrf_token": csrf})
    assert store.get_conference("retro") is not None, "not deleted without the confirmation"
    assert "Tick the box to confirm" in asked.text
    services.focus.rosters["retro"] = [
        {
            "uri": ALICE,
            "role": "participant",
            "state": "connected",
            "joined_by": "dial-in",
            "reason": None,
            "media": [],
        }
    ]
    asked = client.post(f"{base}/participants/remove", data={"csrf_token": csrf, "uri": ALICE})
    assert "Remove and hang up" in asked.text and "is in the conference now" in asked.text
    assert [e.uri for e in store.get_conference("retro").participants] == [ALICE]  # type: ignore[union-attr]
    assert services.focus.applied == []
    done = client.post(
        f"{base}/participants/remove", data={"csrf_token": csrf, "uri": ALICE, "confirm": "yes"}
    )
    assert f"Removed {ALICE} from the list" in done.text
    assert store.get_conference("retro").participants == ()  # type: ignore[union-attr]
    gone = client.post(f"{base}/delete", data={"csrf_token": csrf, "confirm": "yes"})
    assert "Conference retro deleted" in gone.text and store.get_conference("retro") is None
