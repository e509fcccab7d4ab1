"""web.openapi: schemathesis drives the real app from its OpenAPI document.

Every operation gets generated valid and invalid requests (hypothesis); the
checks: no 5xx, every status and body as documented (response schema, content
type, headers), and invalid input rejected with a 4xx.  ``positive_data_acceptance``
is left out: the JSON Schema cannot say which strings are SIP URIs, so a
schema-valid ``"uri": "0"`` is rightly a 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from focus.store import ConferenceStore
from mrf.settings import Settings
from web import create_app
from web.openapi import OPENAPI

from .conftest import FakeDialOut, FakeServices
from .test_api import _FakeRelay


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[Any, dict[str, str]]]:
    with ConferenceStore("sqlite://") as store:
        store.create_all()
        owner = store.create_account("alice", "password-1")
        store.create_conference("retro", ["sip:alice@127.0.0.1"], owner_id=owner.id)
        headers = {"Authorization": f"Bearer {store.create_token('alice')}"}
        services = FakeServices(store)
        services.focus.dialout = FakeDialOut(store)  # mrf serve has one (focus.dialout)
        services.focus.chat = _FakeRelay()  # type: ignore[attr-defined]  # and a chat switch
        yield create_app(Settings(), services), headers


def _has_input(path: str, method: str) -> bool:
    item = OPENAPI["paths"][path]
    return "parameters" in item or "requestBody" in item[method]


# A schema-violating request may be refused for its size before it is read (413, the
# documented 64 KiB limit): schemathesis's default list of refusals lacks 413.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REFUSALS, "5xx"]}}}
)  # 5xx stays refused by not_a_server_error, which runs on every case

# negative (schema-violating) requests only where there is an input to violate
OPERATIONS = [
    (method, path, mode)
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method != "parameters"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or _has_input(path, method)
]


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_no_500_and_responses_as_documented(
    api: tuple[Any, dict[str, str]], method: str, path: str, mode: GenerationMode
) -> None:
    app, headers = api
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=CONFIG)
    operation = schema[path][method.upper()]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=dict(headers), excluded_checks=[positive_data_acceptance])

    run()


def test_the_document_is_served_and_lists_every_api_route(
    api: tuple[Any, dict[str, str]],
) -> None:
    from starlette.routing import Route
    from starlette.testclient import TestClient

    app = api[0]
    with TestClient(app) as client:
        assert client.get("/api/openapi.json").json() == OPENAPI
    served = {
        route.path.replace("{id:int}", "{id}")
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(("/api/conferences", "/api/h", "/m"))
    }
    assert served == set(OPENAPI["paths"])
