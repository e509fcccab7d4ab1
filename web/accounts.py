"""Account pages: your password and API tokens (``/account``), and for administrators
the accounts (``/admin/accounts``): create, reset a password, disable or enable,
set or clear the SIP identity a signed-in browser joins as.

The same rules as every other form (:mod:`web.forms`): CSRF-checked, post/
redirect/get with the errors at their fields.  A new API token is shown once,
on the page right after it was made (carried in the session for that one
page), and stored only as its digest.  ``/admin/...`` answers 404 to anyone
who is not an administrator, like a conference that is not theirs.  An
administrator cannot disable their own account (nor lock everyone out that
way); disabling ends the account's sessions and refuses its tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from focus.accounts import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    AccountExists,
    AccountNotFound,
)
from focus.conference import InvalidInput
from web.auth import Principal
from web.forms import first, normalised_note, parse_uri, read_form, redirect, refuse
from web.pages import Handler, error_page, render, signed_in
from web.state import call_store, web_state

logger = logging.getLogger(__name__)

PASSWORD_RULE = f"Use at least {MIN_PASSWORD_LENGTH} characters."
MAX_TOKENS = 20


def _notice(who: Principal, text: str) -> None:
    if who.session is not None:
        who.session.flash.append(text)


def _password_problem(password: str, repeat: str | None = None) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Too short: {PASSWORD_RULE}"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Too long: use at most {MAX_PASSWORD_LENGTH} characters."
    if repeat is not None and repeat != password:
        return "The two new passwords differ: type the same one twice."
    return None


# --- your account ----------------------------------------------------------------------


@signed_in
async def account(request: Request, who: Principal) -> Response:
    tokens = await call_store(request, web_state(request).store.list_tokens, who.account.name)
    return render(request, "account.html", {"who": who, "tokens": tokens})


@signed_in
async def change_password(request: Request, who: Principal) -> Response:
    form = await read_form(request, who.session)
    current = form.get("current", [""])[0]
    new, repeat = form.get("new", [""])[0], form.get("repeat", [""])[0]
    state = web_state(request)
    store = state.store
    key = f"name:{who.account.name.lower()}"  # the sign-in throttle's: guesses count there too
    wait = state.throttle.retry_after(key)
    if wait > 0:
        response = render(request, "account.html", {
            "who": who, "tokens": [], "errors": {"current-password": "Too many wrong "
            f"passwords: try again in {int(wait) + 1} seconds."},
        }, 429)  # fmt: skip
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    errors: dict[str, str] = {}
    if await call_store(request, store.authenticate, who.account.name, current) is None:
        state.throttle.failed(key)
        errors["current-password"] = "That is not your current password."
    problem = _password_problem(new, repeat)
    if problem:
        errors["new-password"] = problem
    if errors:
        return refuse(who.session, "/account", errors)
    await call_store(request, store.set_password, who.account.name, new)
    logger.info("account %s changed its password", who.account.name)
    _notice(who, "Password changed.")
    return redirect("/account")


@signed_in
async def create_token(request: Request, who: Principal) -> Response:
    await read_form(request, who.session)
    store = web_state(request).store
    if len(await call_store(request, store.list_tokens, who.account.name)) >= MAX_TOKENS:
        return refuse(who.session, "/account", {"form": f"At most {MAX_TOKENS} tokens: "
                                                "revoke one first."})  # fmt: skip
    token = await call_store(request, store.create_token, who.account.name)
    logger.info("account %s created an API token", who.account.name)
    return refuse(who.session, "/account", {}, {"new-token": token})  # shown on that page only


@signed_in
async def revoke_token(request: Request, who: Principal) -> Response:
    form = await read_form(request, who.session)
    try:
        token_id = int(first(form, "token_id"))
    except ValueError:
        token_id = 0
    store = web_state(request).store
    if not await call_store(request, store.revoke_token, who.account.name, token_id):
        return refuse(who.session, "/account", {"form": "No such token (revoked already?)."})
    logger.info("account %s revoked an API token", who.account.name)
    _notice(who, "Token revoked: it no longer works.")
    return redirect("/account")


# --- administrators: the accounts ------------------------------------------------------


def admin_only(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """:func:`web.pages.signed_in` for administrators; 404 for everyone else."""

    async def page(request: Request, who: Principal) -> Response:
        if not who.account.is_admin:
            return error_page(request, 404, "There is no such page.", who)
        return await handler(request, who)

    return signed_in(page)


@admin_only
async def accounts(request: Request, who: Principal) -> Response:
    rows = await call_store(request, web_state(request).store.list_accounts)
    return render(request, "accounts.html", {"who": who, "accounts": rows})


@admin_only
async def create_account(request: Request, who: Principal) -> Response:
    form = await read_form(request, who.session)
    name, password = first(form, "name"), form.get("password", [""])[0]
    is_admin = "is_admin" in form
    errors: dict[str, str] = {}
    problem = _password_problem(password)
    if problem:
        errors["account-password"] = problem
    if not errors:
        try:
            await call_store(
                request, lambda: web_state(request).store.create_account(
                    name, password, is_admin=is_admin
                ),
            )  # fmt: skip
        except AccountExists:
            errors["account-name"] = f"An account named “{name}” exists already."
        except InvalidInput:
            errors["account-name"] = (
                "Use 1 to 64 letters, digits, “.”, “_”, “@” or “-” (no spaces)."
            )
    if errors:
        return refuse(who.session, "/admin/accounts", errors,
                      {"account-name": name, "account-admin": is_admin})  # fmt: skip
    logger.info("account %s created account %s%s", who.account.name, name,
                " (admin)" if is_admin else "")  # fmt: skip
    _notice(who, f"Account {name} created{' (administrator)' if is_admin else ''}.")
    return redirect("/admin/accounts")


@admin_only
async def reset_password(request: Request, who: Principal) -> Response:
    form = await read_form(request, who.session)
    name, password = first(form, "name"), form.get("password", [""])[0]
    problem = _password_problem(password)
    if problem:
        return refuse(who.session, "/admin/accounts", {"form": f"Password of {name} not "
                                                       f"reset: {problem}"})  # fmt: skip
    try:
        await call_store(request, web_state(request).store.set_password, name, password)
    except AccountNotFound:
        return refuse(who.session, "/admin/accounts", {"form": f"No account named {name}."})
    logger.info("account %s reset the password of %s", who.account.name, name)
    _notice(who, f"Password of {name} reset.")
    return redirect("/admin/accounts")


@admin_only
async def set_disabled(request: Request, who: Principal) -> Response:
    form = await read_form(request, who.session)
    name, disabled = first(form, "name"), first(form, "disabled") == "yes"
    state = web_state(request)
    if disabled and name == who.account.name:
        return refuse(who.session, "/admin/accounts",
                      {"form": "You cannot disable your own account."})  # fmt: skip
    try:
        changed = await call_store(request, state.store.set_disabled, name, disabled)
    except AccountNotFound:
        return refuse(who.session, "/admin/accounts", {"form": f"No account named {name}."})
    if disabled:
        state.sessions.drop_account(changed.id)
    logger.info("account %s %s account %s", who.account.name,
                "disabled" if disabled else "enabled", name)  # fmt: skip
    done = "disabled: signed out, its tokens refused" if disabled else "enabled"
    _notice(who, f"Account {name} {done}.")
    return redirect("/admin/accounts")


@admin_only
async def set_sip_uri(request: Request, who: Principal) -> Response:
    """Set (an empty field: clear) an account's SIP identity; the error sits at its field."""
    form = await read_form(request, who.session)
    name, typed = first(form, "name"), first(form, "sip_uri")
    store = web_state(request).store
    target = await call_store(request, store.get_account, name)
    if target is None:
        return refuse(who.session, "/admin/accounts", {"form": f"No account named {name}."})
    field = f"sip-{target.id}"
    aor: str | None = None
    if typed:
        try:
            aor = parse_uri(typed)
        except InvalidInput as exc:
            return refuse(who.session, "/admin/accounts", {field: str(exc)}, {field: typed})
    try:
        await call_store(request, store.set_sip_uri, name, aor)
    except AccountNotFound:
        return refuse(who.session, "/admin/accounts", {"form": f"No account named {name}."})
    logger.info("account %s set the SIP identity of %s to %s", who.account.name, name, aor)
    if aor is None:
        _notice(who, f"SIP identity of {name} cleared: it can no longer join from the browser "
                     "as a signed-in account.")  # fmt: skip
    else:
        note = normalised_note(typed, aor)
        _notice(who, f"SIP identity of {name} set to {aor}" + (f" ({note})." if note else "."))
    return redirect("/admin/accounts")


routes = [
    Route("/account", account, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/tokens", create_token, methods=["POST"]),
    Route("/account/tokens/revoke", revoke_token, methods=["POST"]),
    Route("/admin/accounts", accounts, methods=["GET"]),
    Route("/admin/accounts/create", create_account, methods=["POST"]),
    Route("/admin/accounts/password", reset_password, methods=["POST"]),
    Route("/admin/accounts/disable", set_disabled, methods=["POST"]),
    Route("/admin/accounts/sip-uri", set_sip_uri, methods=["POST"]),
]
