"""Invite links, the join pages and the account page (web/invites.py) over the real store."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from focus.store import ConferenceStore

from .conftest import csrf_of, sign_in

CAROL = "sip:carol@127.0.0.1"
_LINK = re.compile(r'id="invite-link" class="uri" value="http://127\.0\.0\.1/join/(inv_[^"]+)"')


def _room(store: ConferenceStore, owner: str = "alice") -> int:
    account = store.get_account(owner)
    assert account is not None
    return store.create_conference("room", [CAROL], owner_id=account.id).id


def test_an_owner_creates_an_invite_on_the_page_and_sees_its_state(
    client: TestClient, store: ConferenceStore, app: Any
) -> None:
    room = _room(store)
    csrf = sign_in(client, "alice")
    page = client.get(f"/conferences/{room}")
    assert f'href="/conferences/{room}/invites"' in page.text
    assert f'href="/conferences/{room}/join"' in page.text
    listing = client.get(f"/conferences/{room}/invites")
    assert listing.status_code == 200 and "No invites yet." in listing.text
    made = client.post(f"/conferences/{room}/invites",
                       data={"csrf_token": csrf, "uri": CAROL, "expires_in": "3600"})  # fmt: skip
    assert made.status_code == 201, made.text
    found = _LINK.search(made.text)
    assert found, "the new link is not shown"
    token = found[1]
    assert token not in client.get(f"/conferences/{room}/invites").text, "shown only once"
    [invite] = store.list_invites(room)
    assert invite.state(invite.created_at) == "unused"

    with TestClient(app, base_url="http://127.0.0.1") as guest:
        joined = guest.get(f"/join/{token}")
        assert joined.status_code == 200 and CAROL in joined.text
        assert "ws://127.0.0.1/sip" in joined.text
        assert "mrf_session" in guest.cookies, "the invite is bound to a web session"
    listing = client.get(f"/conferences/{room}/invites")
    assert re.search(
        rf'data-invite="{invite.id}">\s*<td><code>{CAROL}</code></td><td>opened', listing.text
    )

    revoked = client.post(f"/conferences/{room}/invites/revoke",
                          data={"csrf_token": csrf, "invite_id": str(invite.id)},
                          follow_redirects=False)  # fmt: skip
    assert revoked.status_code == 303
    listing = client.get(f"/conferences/{room}/invites")
    assert "revoked; 0 call(s) ended" in listing.text
    assert f"Revoke the invite for {CAROL}" not in listing.text
    with TestClient(app, base_url="http://127.0.0.1") as late:
        assert late.get(f"/join/{token}").status_code == 404


def test_the_invite_forms_refuse_bad_input(client: TestClient, store: ConferenceStore) -> None:
    room = _room(store)
    csrf = sign_in(client, "alice")
    forged = client.post(f"/conferences/{room}/invites", data={"uri": CAROL, "expires_in": "3600"})
    assert forged.status_code == 403, "no CSRF token"
    unlisted = client.post(f"/conferences/{room}/invites",
                           data={"csrf_token": csrf, "uri": "sip:eve@127.0.0.1",
                                 "expires_in": "3600"})  # fmt: skip
    assert (
        unlisted.status_code == 422
        and "not on the conference&#39;s authorized list" in unlisted.text
    )
    long_form = {"csrf_token": csrf, "uri": CAROL, "expires_in": "99999999"}
    too_long = client.post(f"/conferences/{room}/invites", data=long_form)
    assert too_long.status_code == 422
    for bad in ("0", "-1", "x", "99999999999999"):
        answer = client.post(f"/conferences/{room}/invites/revoke",
                             data={"csrf_token": csrf, "invite_id": bad})  # fmt: skip
        assert answer.status_code == 404, bad
    assert store.list_invites(room) == []


def test_the_api_creates_lists_and_revokes(
    client: TestClient, store: ConferenceStore, token: Callable[[str], dict[str, str]]
) -> None:
    room = _room(store)
    ana = token("alice")
    made = client.post(f"/api/conferences/{room}/invites", json={"uri": CAROL}, headers=ana)
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == {"id", "url", "expires_at"}
    assert body["url"].startswith("http://127.0.0.1/join/inv_")
    listed = client.get(f"/api/conferences/{room}/invites", headers=ana).json()
    assert [i["state"] for i in listed] == ["unused"] and "url" not in listed[0]
    bob = token("bob")
    assert client.get(f"/api/conferences/{room}/invites", headers=bob).status_code == 404
    assert client.delete(f"/api/conferences/{room}/invites/{body['id']}",
                         headers=bob).status_code == 404  # fmt: skip
    for bad in ({"uri": "sip:eve@127.0.0.1"}, {"uri": CAROL, "expires_in": 10},
                {"uri": CAROL, "expires_in": True}, {"uri": CAROL, "extra": 1}):  # fmt: skip
        answer = client.post(f"/api/conferences/{room}/invites", json=bad, headers=ana)
        assert answer.status_code == 422, bad
    assert client.delete(f"/api/conferences/{room}/invites/abc", headers=ana).status_code == 404
    gone = client.delete(f"/api/conferences/{room}/invites/{body['id']}", headers=ana)
    assert gone.status_code == 200 and gone.json()["state"] == "revoked"
    assert gone.json()["disconnected"] == 0
    assert client.get(f"/join/{body['url'].rsplit('/', 1)[1]}").status_code == 404


def test_the_account_page_and_the_own_join_page(client: TestClient, store: ConferenceStore) -> None:
    room = _room(store)
    sign_in(client, "alice")
    assert "None yet" in client.get("/account").text
    assert client.get(f"/conferences/{room}/join").status_code == 409
    store.set_sip_uri("alice", CAROL)
    page = client.get("/account")
    assert f'<p class="uri" id="sip-uri">{CAROL}</p>' in page.text
    joined = client.get(f"/conferences/{room}/join")
    assert joined.status_code == 200 and CAROL in joined.text
    assert client.get("/conferences/999/join").status_code == 404
    csrf_of(joined.text)


def test_an_unknown_or_malformed_token_is_one_404(client: TestClient) -> None:
    for token in ("inv_nope", "x", "inv_" + "a" * 200, "%00"):
        answer = client.get(f"/join/{token}")
        assert answer.status_code == 404 and "This invite link is not valid." in answer.text
