"""Schema fuzzing (issue 14 item 6): schemathesis generates requests for every operation of the server's own
OpenAPI schema (``/docs/openapi.json``) and sends them to the live server.

Checks on every response: no 5xx (``not_a_server_error``); when the status is documented, the body conforms to
its schema (``response_schema_conformance``) and the content type to the documented one
(``content_type_conformance``). Undocumented 4xx statuses are expected (the error table is in README/docs, not
in each operation), so ``status_code_conformance`` is not run; every error body is still checked to be the
typed JSON shape. Bounded: ``MAX_EXAMPLES`` cases per operation, derandomised (the same cases every run).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.service.conftest import LiveServer

MAX_EXAMPLES = 12


@pytest.fixture(scope="session")
def api_schema(live_server: LiveServer) -> Any:
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/docs/openapi.json", headers=headers, timeout=60)
    schema.config.base_url = live_server.url
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_responses_conform(case: Any, live_server: LiveServer) -> None:
    response = case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_server.api_key}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=120,
    )
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code"}, response.text
        assert error["message"]
