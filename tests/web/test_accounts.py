"""web.accounts: your password and tokens, the administrators' account page."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from focus.store import ConferenceStore

from .conftest import PASSWORD, csrf_of, sign_in

_TOKEN = re.compile(r'id="new-token" class="uri" value="(mrf_[^"]+)"')


def test_change_password_with_errors_at_the_fields(client: TestClient, store: ConferenceStore):
    csrf = sign_in(client, "alice")
    wrong = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current": "nope", "new": "short", "repeat": "short"},
    )
    assert wrong.history[0].status_code == 303
    assert 'id="current-password-error">That is not your current password' in wrong.text
    assert 'id="new-password-error">Too short' in wrong.text
    assert "nope" not in wrong.text, "passwords are never echoed"
    differ = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current": PASSWORD,
            "new": "a new long one",
            "repeat": "another",
        },
    )
    assert "The two new passwords differ" in differ.text
    done = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current": PASSWORD,
            "new": "a new long one",
            "repeat": "a new long one",
        },
    )
    assert "Password changed." in done.text
    assert store.authenticate("alice", "a new long one") is not None
    assert store.authenticate("alice", PASSWORD) is None


def test_tokens_are_shown_once_and_revoked(client: TestClient, store: ConferenceStore) -> None:
    csrf = sign_in(client, "alice")
    made = client.post("/account/tokens", data={"csrf_token": csrf})
    match = _TOKEN.search(made.text)
    assert match, "the new token is on the page right after"
    token = match.group(1)
    assert store.account_for_token(token) is not None
    again = client.get("/account").text
    assert token not in again, "shown only once"
    assert "Token " in again
    api = client.get("/api/conferences", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    ((token_id, _),) = store.list_tokens("alice")
    bob_token = store.create_token("bob")
    ((bob_id, _),) = store.list_tokens("bob")
    foreign = client.post("/account/tokens/revoke", data={"csrf_token": csrf, "token_id": bob_id})
    assert "No such token" in foreign.text and store.account_for_token(bob_token) is not None
    revoked = client.post("/account/tokens/revoke", data={"csrf_token": csrf, "token_id": token_id})
    assert "Token revoked" in revoked.text and store.account_for_token(token) is None
    assert client.post("/account/tokens", data={}).status_code == 403, "CSRF"
    assert store.list_tokens("alice") == []


def test_administrators_create_reset_and_disable_accounts(
    client: TestClient, store: ConferenceStore
) -> None:
    # a creator does not even see the page
    sign_in(client, "alice")
    assert client.get("/admin/accounts").status_code == 404
    csrf = csrf_of(client.get("/conferences").text)
    refused = client.post(
        "/admin/accounts/create", data={"csrf_token": csrf, "name": "x", "password": "long enough"}
    )
    assert refused.status_code == 404 and store.get_account("x") is None
    # an administrator
    root = TestClient(client.app, base_url="http://127.0.0.1")
    csrf = sign_in(root, "root")
    page = root.get("/admin/accounts")
    assert page.status_code == 200 and "alice" in page.text
    bad = root.post(
        "/admin/accounts/create",
        data={"csrf_token": csrf, "name": "with space", "password": "long enough"},
    )
    assert 'id="account-name-error"' in bad.text and store.get_account("with space") is None
    made = root.post(
        "/admin/accounts/create",
        data={"csrf_token": csrf, "name": "carol", "password": "long enough", "is_admin": "on"},
    )
    assert "Account carol created (administrator)" in made.text
    assert store.get_account("carol").is_admin  # type: ignore[union-attr]
    taken = root.post(
        "/admin/accounts/create",
        data={"csrf_token": csrf, "name": "carol", "password": "long enough"},
    )
    assert "exists already" in taken.text
    reset = root.post(
        "/admin/accounts/password",
        data={"csrf_token": csrf, "name": "alice", "password": "reset by root"},
    )
    assert "Password of alice reset" in reset.text
    assert store.authenticate("alice", "reset by root") is not None
    # disabling signs alice out and refuses her tokens
    token = store.create_token("alice")
    assert client.get("/conferences", follow_redirects=False).status_code == 200
    off = root.post(
        "/admin/accounts/disable", data={"csrf_token": csrf, "name": "alice", "disabled": "yes"}
    )
    assert "Account alice disabled" in off.text
    assert client.get("/conferences", follow_redirects=False).headers["location"] == "/login"
    assert (
        root.get("/api/conferences", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert store.authenticate("alice", "reset by root") is None
    own = root.post(
        "/admin/accounts/disable", data={"csrf_token": csrf, "name": "root", "disabled": "yes"}
    )
    assert "cannot disable your own account" in own.text
    assert not store.get_account("root").disabled  # type: ignore[union-attr]
    on = root.post(
        "/admin/accounts/disable", data={"csrf_token": csrf, "name": "alice", "disabled": "no"}
    )
    assert "Account alice enabled" in on.text
    assert (
        root.post("/admin/accounts/disable", data={"name": "bob", "disabled": "yes"}).status_code
        == 403
    )
    assert not store.get_account("bob").disabled  # type: ignore[union-attr]


def test_administrators_set_and_clear_an_accounts_sip_identity(
    client: TestClient, store: ConferenceStore
) -> None:
    alice = store.get_account("alice")
    assert alice is not None and alice.sip_uri is None
    sign_in(client, "alice")
    csrf = csrf_of(client.get("/conferences").text)
    mine = client.post(
        "/admin/accounts/sip-uri",
        data={"csrf_token": csrf, "name": "alice", "sip_uri": "sip:alice@example.com"},
    )
    assert mine.status_code == 404, "a creator cannot set even their own identity"
    assert store.get_account("alice").sip_uri is None  # type: ignore[union-attr]
    root = TestClient(client.app, base_url="http://127.0.0.1")
    csrf = sign_in(root, "root")
    field = f"sip-{alice.id}"
    page = root.get("/admin/accounts").text
    assert f'<label class="sr-only" for="{field}">SIP identity of alice' in page
    done = root.post(
        "/admin/accounts/sip-uri",
        data={"csrf_token": csrf, "name": "alice", "sip_uri": "sip:alice@example.com"},
    )
    assert done.history[0].status_code == 303
    assert "SIP identity of alice set to sip:alice@example.com." in done.text
    assert store.get_account("alice").sip_uri == "sip:alice@example.com"  # type: ignore[union-attr]
    assert f'id="{field}" name="sip_uri" maxlength="512" autocomplete="off" ' \
        'value="sip:alice@example.com"' in done.text  # fmt: skip
    # normalised visibly, as the other address forms do
    normalised = root.post(
        "/admin/accounts/sip-uri",
        data={"csrf_token": csrf, "name": "alice", "sip_uri": "sips:Alice@Example.COM:5061"},
    )
    assert (
        "SIP identity of alice set to sip:Alice@example.com (saved as sip:Alice@example.com, "
        "not “sips:Alice@Example.COM:5061”: sips: is stored as sip:" in normalised.text
    )
    assert store.get_account("alice").sip_uri == "sip:Alice@example.com"  # type: ignore[union-attr]
    # an invalid address is refused at its field, what was typed is shown again
    bad = root.post(
        "/admin/accounts/sip-uri", data={"csrf_token": csrf, "name": "alice", "sip_uri": "bob"}
    )
    assert bad.history[0].status_code == 303
    assert f'aria-invalid="true" aria-describedby="{field}-error"' in bad.text
    assert f'<p class="field-error" id="{field}-error">“bob” has no “@”' in bad.text
    assert 'value="bob"' in bad.text
    assert store.get_account("alice").sip_uri == "sip:Alice@example.com"  # type: ignore[union-attr]
    assert "field-error" not in root.get("/admin/accounts").text, "shown once"
    unknown = root.post(
        "/admin/accounts/sip-uri",
        data={"csrf_token": csrf, "name": "nobody", "sip_uri": "sip:n@example.com"},
    )
    assert 'id="form-error"' in unknown.text and "No account named nobody." in unknown.text
    # an empty field clears it
    cleared = root.post(
        "/admin/accounts/sip-uri", data={"csrf_token": csrf, "name": "alice", "sip_uri": " "}
    )
    assert "SIP identity of alice cleared" in cleared.text
    assert store.get_account("alice").sip_uri is None  # type: ignore[union-attr]
    # without the CSRF token nothing changes
    forged = root.post(
        "/admin/accounts/sip-uri", data={"name": "alice", "sip_uri": "sip:mallory@example.com"}
    )
    assert forged.status_code == 403
    assert store.get_account("alice").sip_uri is None  # type: ignore[union-attr]
