"""Retries, fallbacks and failure mapping, through LiteLLM's real HTTP path against the local stub."""

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.conditions import default_condition
from api.llm import LlmClient
from api.main import create_app
from scripts.devstack import Service
from shared.settings import Settings
from tests.api.conftest import PRICED, expected_cost, stub_settings
from tests.helpers import drain, stored
from tests.llm_stub import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, LlmStub

QUERY = {"user_id": "user_123", "session_id": "session_abc", "query": "How do Redis streams work?"}


def ask(settings: Settings, body: dict | None = None) -> tuple[int, dict, dict]:
    with TestClient(create_app(settings)) as client:
        response = client.post("/query", json=body or QUERY)
    return response.status_code, response.json(), dict(response.headers)


def test_fallback_answers_when_the_primary_fails(redis_server: Service, mongo_server: Service, stub: LlmStub,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    stub.behave("primary", status=500)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_FALLBACKS=PRICED)

    status, body, _ = ask(settings)

    [warning] = [r for r in caplog.records if r.getMessage() == "llm fallback answered"]
    assert (warning.model, warning.attempted_fallbacks) == ("openai/primary", 1)

    assert status == 200
    assert (body["response"], body["model_used"]) == (ANSWER, PRICED)
    assert (stub.calls("primary"), stub.calls("gpt-4o-mini")) == (1, 1)
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["model_requested"], document["model_used"]) == ("openai/primary", PRICED)
    assert document["cost_usd"] == pytest.approx(expected_cost())
    assert "error" not in document


def test_fallbacks_are_tried_in_order(redis_server: Service, mongo_server: Service, stub: LlmStub) -> None:
    stub.behave("primary", status=500)
    stub.behave("first-backup", status=503)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_FALLBACKS=f"openai/first-backup, {PRICED}")

    status, body, _ = ask(settings)

    assert (status, body["model_used"]) == (200, PRICED)
    assert [r["model"] for r in stub.requests] == ["primary", "first-backup", "gpt-4o-mini"]


def test_each_model_is_retried_before_its_fallback(redis_server: Service, mongo_server: Service, stub: LlmStub) -> None:
    stub.behave("primary", status=500)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_NUM_RETRIES=1, LLM_FALLBACKS=PRICED)

    status, body, _ = ask(settings)

    assert (status, body["model_used"]) == (200, PRICED)
    assert (stub.calls("primary"), stub.calls("gpt-4o-mini")) == (2, 1)


def test_retries_exhausted_without_fallback_is_502_and_logged(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("primary", status=500)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_NUM_RETRIES=2)

    status, body, _ = ask(settings)

    assert status == 502
    assert body["error"] == "the LLM provider failed: InternalServerError"
    assert stub.calls("primary") == 3
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["error"], document["response"], document["streamed"]) == (body["error"], None, False)
    assert document["model_used"] == "openai/primary"


def test_provider_rate_limit_is_429_with_its_retry_after(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("primary", status=429, retry_after_s=7)
    settings = stub_settings(redis_server, mongo_server, stub)

    status, body, headers = ask(settings)

    assert status == 429
    assert headers["retry-after"] == "7"
    assert body["error"] == "the LLM provider is rate limiting requests; retry later"
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["error"] == body["error"]


def test_rate_limit_without_retry_after_has_no_header(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("primary", status=429)
    status, _, headers = ask(stub_settings(redis_server, mongo_server, stub))

    assert status == 429
    assert "retry-after" not in headers


def test_timeout_is_504_and_logged(redis_server: Service, mongo_server: Service, stub: LlmStub) -> None:
    stub.behave("primary", hang_s=3)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_TIMEOUT_S=0.5)

    status, body, _ = ask(settings)

    assert status == 504
    assert body["error"] == "the LLM did not answer within 0.5 s"
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["error"] == body["error"]


def test_record_holds_the_condition_and_the_measurements(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    settings = stub_settings(redis_server, mongo_server, stub, LITELLM_MODEL=PRICED, LLM_TEMPERATURE=0.3)

    status, body, _ = ask(settings)

    assert status == 200
    assert stub.requests[-1]["temperature"] == 0.3
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["temperature"] == 0.3
    assert document["system_prompt_hash"] == default_condition(settings).system_prompt_hash
    assert (document["finish_reason"], document["streamed"]) == ("stop", False)
    assert (document["prompt_tokens"], document["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert document["cost_usd"] == pytest.approx(expected_cost())
    assert document["latency_ms"] > 0


def test_unknown_model_cost_is_none(redis_server: Service, mongo_server: Service, stub: LlmStub) -> None:
    settings = stub_settings(redis_server, mongo_server, stub)

    assert ask(settings)[0] == 200
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["cost_usd"] is None


async def test_an_arm_model_unknown_at_start_is_served_with_the_fallbacks(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("arm-model", status=500)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_FALLBACKS=PRICED)
    condition = default_condition(settings)
    llm = LlmClient(settings)

    answer = await llm.answer([{"role": "user", "content": "hi"}], replace(condition, model="openai/arm-model"))

    assert answer.model_used == PRICED
    assert [r["model"] for r in stub.requests] == ["arm-model", "gpt-4o-mini"]
