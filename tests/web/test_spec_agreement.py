"""The OpenAPI spec and the server agree on the predict form."""

from __future__ import annotations

import pytest

PREDICT = "/api/v1/predict"


@pytest.fixture(scope="module")
def form_schema(client):
    body = client.get("/openapi.json").json()["paths"][PREDICT]["post"]["requestBody"]
    return body["content"]["multipart/form-data"]["schema"]


def test_the_spec_limits_the_files_as_the_server_does(form_schema, web_settings):
    assert form_schema["properties"]["file"]["maxItems"] == web_settings.max_files
    assert form_schema["properties"]["file"]["minItems"] == 1
