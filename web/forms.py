"""Reading the web forms and saying, in plain words, what is wrong with them.

Every form post either succeeds and redirects (303) with a notice, or is
refused and *also* redirects (303) back to its page, carrying the errors and
what was typed in the session (:attr:`web.auth.WebSession.refused`): reloading
the page never resubmits a form, the typed values are shown again, each error
sits next to its field (``aria-describedby``), and ``static/forms.js`` moves
the focus to the first one.  Errors are keyed by the id of the field they
belong to (``"add-uri"``, ``"key-modes"``, ...), ``"form"`` for the form as a
whole.  The texts say what to do, not which check failed: a participant's
address, not ``normalize_aor``'s message.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from focus.conference import AuthorizedEntry, InvalidInput, normalize_aor
from web.auth import CSRF_FIELD, WebSession, csrf_matches

MAX_FORM_SIZE = 64 * 1024
MAX_FORM_FIELDS = 64
MAX_ECHO = 512  # characters of a typed value kept for the next page


class FormRefused(Exception):
    """A form post without a valid CSRF token, or too large; answered with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


async def read_form(request: Request, session: WebSession | None) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body, CSRF-checked; values by name."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_SIZE:
            raise FormRefused(413, "the form is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "the form could not be read") from None
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    if not csrf_matches(session, form.get(CSRF_FIELD, [""])[0]):
        raise FormRefused(403, "the form's security token is missing or stale: reload the page")
    return form


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    return form.get(name, [default])[0].strip()


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def refuse(
    session: WebSession | None, path: str, errors: dict[str, str],
    values: dict[str, object] | None = None,
) -> Response:  # fmt: skip
    """Redirect to ``path``, which shows ``errors`` at their fields and ``values`` again."""
    if session is not None:
        kept = {k: v[:MAX_ECHO] if isinstance(v, str) else v for k, v in (values or {}).items()}
        session.refused = {"errors": dict(errors), "values": kept}
    return redirect(path)


def take_refused(session: WebSession | None) -> tuple[dict[str, str], dict[str, object]]:
    """The errors and values of the form refused just before (once)."""
    if session is None or not session.refused:
        return {}, {}
    refused, session.refused = session.refused, {}
    errors = {str(k): str(v) for k, v in refused.get("errors", {}).items()}
    return errors, dict(refused.get("values", {}))


# --- plain words -------------------------------------------------------------------

NAME_RULE = (
    "Use 1 to 64 lower-case letters, digits, “.”, “_” or “-” (no spaces or capitals), "
    "for example “team-retro”."
)
URI_EXAMPLE = "sip:alice@example.com"


def uri_problem(typed: str) -> str:
    """Why ``typed`` is not a participant address, in words a person can act on."""
    if not typed:
        return f"Enter the participant's SIP address, for example {URI_EXAMPLE}."
    if "@" not in typed and not typed.lower().startswith("tel:"):
        return f"“{typed}” has no “@”: a SIP address is user@host, for example {URI_EXAMPLE}."
    if typed.lower().startswith("tel:"):
        return "A tel: address must be an international number, for example tel:+15550100."
    return (
        f"“{typed}” is not a SIP address. Write it as sip:user@host "
        f"(for example {URI_EXAMPLE}) or tel:+number."
    )


def parse_uri(typed: str) -> str:
    """The address of record of ``typed``; :class:`InvalidInput` with plain words."""
    try:
        return normalize_aor(typed)
    except InvalidInput:
        raise InvalidInput(uri_problem(typed)) from None


def normalised_note(typed: str, aor: str) -> str:
    """What was changed between ``typed`` and the stored ``aor`` ("" when nothing)."""
    if typed == aor:
        return ""
    changes = []
    text = typed.strip().strip("<>")
    if text.lower().startswith("sips:"):
        changes.append("sips: is stored as sip: (the conference's policy decides about TLS)")
    elif ":" not in text.split("@")[0]:
        changes.append("sip: was added")
    rest = text.split(":", 1)[1] if ":" in text.split("@")[0] else text
    host = rest.split("@", 1)[1] if "@" in rest else rest
    if any(c in host for c in ";:?"):
        changes.append("the port and parameters are not part of an identity")
    if host.split(";")[0].split(":")[0] != host.split(";")[0].split(":")[0].lower():
        changes.append("the host name was lower-cased")
    if text[:4].lower() in ("sip:", "sips") and not text.startswith(("sip:", "sips:")):
        changes.append("the scheme was lower-cased")
    if not changes:
        changes.append("written in its canonical form")
    return f"saved as {aor}, not “{typed}”: " + "; ".join(changes)


def duplicate_problem(aor: str, entries: tuple[AuthorizedEntry, ...]) -> str | None:
    """Why ``aor`` cannot be added next to ``entries`` (same AOR, or same but for case)."""
    for entry in entries:
        if entry.uri == aor:
            return f"{aor} is on the list already: change its role in its row instead."
        if entry.uri.lower() == aor.lower():
            return (
                f"{aor} differs from {entry.uri}, which is on the list already, only in "
                "letter case: edit that entry instead, or type the address exactly."
            )
    return None
