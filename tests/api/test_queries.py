from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service
from shared.settings import Settings
from tests.conftest import make_settings
from tests.helpers import drain, stored
from tests.llm_stub import ANSWER, llm_stub

QUERY = {"user_id": "user_123", "session_id": "session_abc", "query": "How do Redis streams work?"}


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with llm_stub() as url:
        yield url


def stub_client(redis: Service, mongo: Service, api_base: str, **overrides: object) -> tuple[TestClient, Settings]:
    settings = make_settings(redis, mongo, LLM_MOCK=False, LLM_API_BASE=api_base, LLM_API_KEY="stub-key",
                             LITELLM_MODEL="openai/stub-model", **overrides)
    return TestClient(create_app(settings)), settings


def test_mock_mode_answers_and_logs_the_exchange(client: TestClient, settings: Settings) -> None:
    response = client.post("/query", json=QUERY)

    assert response.status_code == 200
    body = response.json()
    assert body["model_used"] == "mock:gpt-4o-mini"
    assert body["source"] and all(set(s) == {"title", "url", "content", "rank"} for s in body["source"])
    assert [s["rank"] for s in body["source"]] == list(range(1, len(body["source"]) + 1))
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["_id"] == body["query_id"]
    assert document["response"] == body["response"]
    assert document["source"] == body["source"]
    for key in ("user_id", "session_id", "query"):
        assert document[key] == QUERY[key]
    assert document["latency_ms"] >= 0
    assert document["cost_usd"] == 0.0
    assert {"prompt_tokens", "completion_tokens", "timestamp"} <= document.keys()
    assert document["streamed"] is False
    status = client.get("/status").json()
    assert (status["llm_mock"], status["model"]) == (True, "mock:gpt-4o-mini")


def test_real_http_path_through_litellm(redis_server: Service, mongo_server: Service, stub_url: str) -> None:
    client, settings = stub_client(redis_server, mongo_server, f"{stub_url}/ok/v1")
    with client:
        response = client.post("/query", json=QUERY)

    assert response.status_code == 200
    assert response.json()["response"] == ANSWER
    assert response.json()["source"][0]["url"] == "https://redis.io/docs/latest/develop/data-types/streams/"
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["prompt_tokens"], document["completion_tokens"]) == (11, 7)
    assert document["model_used"] == "openai/stub-model"


def test_llm_failure_is_502_and_still_logged(redis_server: Service, mongo_server: Service, stub_url: str) -> None:
    client, settings = stub_client(redis_server, mongo_server, f"{stub_url}/fail/v1")
    with client:
        response = client.post("/query", json=QUERY)

    assert response.status_code == 502
    assert "LLM provider failed" in response.json()["error"]
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["error"] == response.json()["error"]
    assert document["response"] is None


def test_llm_timeout_is_504_and_still_logged(redis_server: Service, mongo_server: Service, stub_url: str) -> None:
    client, settings = stub_client(redis_server, mongo_server, f"{stub_url}/slow/v1", LLM_TIMEOUT_S=0.5)
    with client:
        response = client.post("/query", json=QUERY)

    assert response.status_code == 504
    assert "did not answer within 0.5 s" in response.json()["error"]
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["error"] == response.json()["error"]
    assert document["latency_ms"] < 4000


def test_query_requires_text(client: TestClient) -> None:
    response = client.post("/query", json={"user_id": "u", "query": ""})

    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "query"
