"""A minimal HTTP/1.1 client for the web UI and REST API of the running server.

Keeps the session cookie the server sets (``mrf_session``), never follows
redirects (a 303 is an answer to judge), and reads the CSRF token from the
hidden ``csrf_token`` field of a page (RFC 9110 methods, RFC 6265 cookies).
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class WebResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, f"no CSRF token on the page ({self.status})"
        return found[1]


@dataclass
class WebClient:
    """One browser-like client: its own cookies, optionally a bearer token."""

    base: str
    token: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> WebResponse:
        url = urlsplit(self.base)
        sent = dict(headers or {})
        body: bytes | None = None
        if json_body is not None:
            body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            found = WebResponse(response.status, response.headers, response.read())
        finally:
            connection.close()
        for value in found.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return found

    def sign_in(self, name: str, password: str) -> str:
        """The sign-in form (with its token); the signed-in session's CSRF token."""
        page = self.request("GET", "/login")
        done = self.request("POST", "/login", form={"csrf_token": page.csrf(), "name": name,
                                                    "password": password})  # fmt: skip
        assert done.status == 303, (done.status, done.text[:300])
        return self.request("GET", "/conferences").csrf()
