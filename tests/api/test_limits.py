"""Every input limit comes from settings: the API enforces, and its OpenAPI schema shows, the configured values."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service
from tests.conftest import make_settings

TIGHT = {"MAX_ID_CHARS": 5, "MAX_EVENT_TYPE_CHARS": 3, "MAX_URL_CHARS": 12, "MAX_QUERY_CHARS": 4,
         "MAX_EXTRA_DEPTH": 2, "MAX_EXTRA_KEYS": 8, "MAX_EVENT_BYTES": 2048, "MAX_BATCH_BYTES": 4096}


@pytest.fixture
def tight(redis_server: Service, mongo_server: Service) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(redis_server, mongo_server, **TIGHT))) as client:
        yield client


def _refusal(client: TestClient, body: dict) -> tuple[int, str]:
    response = client.post("/log_event", json=body)
    return response.status_code, response.json().get("error", "")


def test_configured_limits_are_enforced(tight: TestClient) -> None:
    ok = {"user_id": "12345", "event_type": "abc"}
    assert tight.post("/log_event", json={**ok, "target_url": "https://x.io", "query": "four",
                                          "extra_data": {"a": {"b": 1}}}).status_code == 202

    assert _refusal(tight, {**ok, "user_id": "123456"}) == (422, "user_id: String should have at most 5 characters")
    assert _refusal(tight, {**ok, "session_id": "123456"})[1].startswith("session_id: String should have at most 5")
    assert _refusal(tight, {**ok, "event_type": "abcd"})[1].startswith("event_type: String should have at most 3")
    assert _refusal(tight, {**ok, "page_url": "https://x.io/"})[1].startswith("page_url: String should have at most 12")
    assert _refusal(tight, {**ok, "query": "fives"})[1].startswith("query: String should have at most 4")
    assert _refusal(tight, {**ok, "extra_data": {"a": {"b": {}}}}) == (
        422, "extra_data.a.b: is nested deeper than 2 levels")
    assert _refusal(tight, {**ok, "extra_data": dict.fromkeys("abcdefg", 1)}) == (
        422, "body: has more than 8 keys in total")
    assert _refusal(tight, {**ok, "extra_data": {"blob": "x" * 2048}}) == (413, "request body is larger than 2048 bytes")
    query = tight.post("/query", json={"user_id": "u", "query": "fives"})
    assert query.status_code == 422 and query.json()["fields"] == [
        {"field": "query", "message": "String should have at most 4 characters"}]


def test_openapi_shows_the_configured_limits(tight: TestClient) -> None:
    schema = tight.get("/openapi.json").json()
    body = schema["paths"]["/log_event"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body["properties"]["user_id"]["maxLength"] == 5
    assert body["properties"]["event_type"]["maxLength"] == 3
    assert body["properties"]["page_url"]["anyOf"][0]["maxLength"] == 12
    assert "x-limit" not in str(schema)
