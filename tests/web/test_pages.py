"""web.pages without a browser: forms post, redirect, and show what they did."""

from __future__ import annotations

from starlette.testclient import TestClient

from focus.store import ConferenceStore

from .conftest import FakeDialOut, FakeServices, sign_in

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
    bad = client.post(f"{base}/policy", data={"csrf_token": csrf, "notify_protection": "optional"})
    assert bad.status_code == 422 and "key_modes" in bad.text, "no key mode ticked"
    unknown = client.post(
        f"{base}/participants/remove", data={"csrf_token": csrf, "uri": "sip:x@y"}
    )
    assert unknown.status_code == 422


def test_call_button_dials_out_or_says_why_not(
    client: TestClient, store: ConferenceStore, services: FakeServices
) -> None:
    conference_id = _conference(store)
    csrf = sign_in(client, "alice")
    url = f"/conferences/{conference_id}/call"
    unavailable = client.post(url, data={"csrf_token": csrf, "uri": ALICE})
    assert unavailable.status_code == 501 and "dial-out is not available" in unavailable.text
    services.focus.dialout = FakeDialOut(store)
    placed = client.post(url, data={"csrf_token": csrf, "uri": ALICE})
    assert placed.status_code == 200 and f"Calling {ALICE}" in placed.text
    assert services.focus.dialout.started == [("retro", ALICE)]
    refused = client.post(url, data={"csrf_token": csrf, "uri": "sip:eve@127.0.0.1"})
    assert refused.status_code == 403 and "not on the authorized list" in refused.text


def test_oversized_and_malformed_forms(client: TestClient, store: ConferenceStore) -> None:
    csrf = sign_in(client, "alice")
    big = client.post("/conferences", data={"csrf_token": csrf, "name": "x" * 70_000})
    assert big.status_code == 413
    many = "&".join(f"f{i}=1" for i in range(100))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/conferences", content=many, headers=headers).status_code == 400
    assert client.post("/conferences", content=b"\xff\xfe", headers=headers).status_code == 400
